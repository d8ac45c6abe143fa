//! Property test: any set of tensors written as `.mllm` (both layouts) and safetensors reads back
//! identically, and converting between the formats preserves every byte.

use std::collections::BTreeMap;
use std::path::PathBuf;

use mllm_frontends::mllm_file::{self, ConvertOptions, MllmLayout, MllmWriter};
use mllm_frontends::{Checkpoint, DType, SafetensorsWriter, TensorSpec};
use proptest::prelude::*;

/// dtypes both formats can hold.
const DTYPES: [DType; 12] = [
    DType::F32,
    DType::F16,
    DType::BF16,
    DType::I8,
    DType::I16,
    DType::I32,
    DType::I64,
    DType::U8,
    DType::U16,
    DType::U32,
    DType::U64,
    DType::Bool,
];

fn tensors() -> impl Strategy<Value = Vec<(TensorSpec, Vec<u8>)>> {
    let one = (
        "[a-z][a-z0-9_.]{0,20}",
        0..DTYPES.len(),
        prop::collection::vec(0usize..5, 0..4),
        any::<u64>(),
    )
        .prop_map(|(name, d, shape, seed)| {
            let spec = TensorSpec::new(name, DTYPES[d], shape);
            let n = spec.byte_len().unwrap() as usize;
            let bytes = (0..n)
                .map(|i| (seed.wrapping_mul(i as u64 + 1) >> 13) as u8)
                .collect();
            (spec, bytes)
        });
    prop::collection::vec(one, 0..12).prop_map(|mut v| {
        // Names must be unique.
        let mut seen = std::collections::HashSet::new();
        v.retain(|(s, _)| seen.insert(s.name.clone()));
        v
    })
}

fn scratch(case: usize) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("mllm-frontends-prop-{}-{case}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn check(ck: &Checkpoint, tensors: &[(TensorSpec, Vec<u8>)]) {
    assert_eq!(ck.len(), tensors.len());
    for ((spec, bytes), view) in tensors.iter().zip(ck.tensors()) {
        assert_eq!(view.name, spec.name);
        assert_eq!(view.dtype, spec.dtype);
        assert_eq!(view.shape, &spec.shape[..]);
        assert_eq!(view.bytes, &bytes[..]);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn write_read_convert(tensors in tensors(), case in any::<usize>()) {
        let dir = scratch(case);
        let specs: Vec<TensorSpec> = tensors.iter().map(|t| t.0.clone()).collect();
        for layout in [MllmLayout::Static, MllmLayout::Streaming] {
            let path = dir.join("m.mllm");
            let mut w = MllmWriter::create(&path, "prop", &specs, layout).unwrap();
            for (s, b) in &tensors {
                w.write_tensor(&s.name, b).unwrap();
            }
            w.finish().unwrap();
            let ck = Checkpoint::open(&path).unwrap();
            check(&ck, &tensors);

            let st = dir.join("m.safetensors");
            mllm_file::convert(&path, &st, &ConvertOptions::default(), &mut |_| {}).unwrap();
            let ck = Checkpoint::open(&st).unwrap();
            // Safetensors orders by payload offset; zero-sized tensors may sit anywhere among
            // equal offsets, so compare by name.
            for (spec, bytes) in &tensors {
                let v = ck.tensor(&spec.name).unwrap();
                prop_assert_eq!(v.dtype, spec.dtype);
                prop_assert_eq!(v.shape, &spec.shape[..]);
                prop_assert_eq!(v.bytes, &bytes[..]);
            }
        }
        // Direct safetensors write matches the reference crate's reading.
        let st = dir.join("d.safetensors");
        let mut w = SafetensorsWriter::create(&st, &specs, &BTreeMap::new()).unwrap();
        for (s, b) in &tensors {
            w.write_tensor(&s.name, b).unwrap();
        }
        w.finish().unwrap();
        let raw = std::fs::read(&st).unwrap();
        let reference = safetensors::SafeTensors::deserialize(&raw).unwrap();
        prop_assert_eq!(reference.len(), tensors.len());
        for (spec, bytes) in &tensors {
            let t = reference.tensor(&spec.name).unwrap();
            prop_assert_eq!(t.data(), &bytes[..]);
            prop_assert_eq!(t.shape(), &spec.shape[..]);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
