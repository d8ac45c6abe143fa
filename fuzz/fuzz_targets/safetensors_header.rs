//! Arbitrary bytes into the safetensors header validation: it must return `Ok` or `Err`, never
//! panic, and whatever it accepts must be in range and convertible.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use mllm_frontends::safetensors;
use mllm_frontends::TensorView;

fuzz_target!(|data: &[u8]| {
    if let Ok(header) = safetensors::parse_header(data, Path::new("fuzz.safetensors")) {
        for t in &header.tensors {
            let start = t.offset as usize;
            let end = start + t.len as usize;
            assert!(end <= data.len());
            let view = TensorView {
                name: &t.name,
                dtype: t.dtype,
                shape: &t.shape,
                bytes: &data[start..end],
            };
            // Conversions must not panic either (they may fail for packed types).
            if view.numel() <= 1 << 16 {
                let _ = view.to_f32_vec();
            }
            let _ = view.count_non_finite();
        }
    }
});
