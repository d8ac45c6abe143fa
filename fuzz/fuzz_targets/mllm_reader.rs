//! Arbitrary bytes into the `.mllm` v2 reader: it must return `Ok` or `Err`, never panic.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use mllm_frontends::mllm_file;

fuzz_target!(|data: &[u8]| {
    if let Ok(header) = mllm_file::parse(data, Path::new("fuzz.mllm")) {
        // Everything the reader accepted must be addressable without panicking.
        for t in &header.tensors {
            let start = t.info.offset as usize;
            let end = start + t.info.len as usize;
            assert!(end <= data.len());
            let _ = t.info.numel();
        }
    }
});
