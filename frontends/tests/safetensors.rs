//! Safetensors reading (single, directory, sharded), conversions, the writer, and checkpoint
//! errors.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use half::{bf16, f16};
use mllm_frontends::{Checkpoint, CheckpointFormat, DType, Error, SafetensorsWriter, TensorSpec};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mllm-frontends-st-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Serialises with the reference `safetensors` crate (an independent writer).
fn reference_file(path: &Path, tensors: &[(&str, safetensors::Dtype, Vec<usize>, Vec<u8>)]) {
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
        .iter()
        .map(|(n, d, s, b)| {
            (
                n.to_string(),
                safetensors::tensor::TensorView::new(*d, s.clone(), b).unwrap(),
            )
        })
        .collect();
    safetensors::serialize_to_file(views, &None, path).unwrap();
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

#[test]
fn reads_files_written_by_the_reference_crate_and_converts_to_f32() {
    use safetensors::Dtype as S;
    let dir = scratch("reference");
    let vals = [1.5f32, -2.25, 0.0, 1e-3, 65504.0, -0.0];
    let tensors = vec![
        ("f32", S::F32, vec![2, 3], f32_bytes(&vals)),
        (
            "bf16",
            S::BF16,
            vec![6],
            vals.iter()
                .flat_map(|&x| bf16::from_f32(x).to_le_bytes())
                .collect(),
        ),
        (
            "f16",
            S::F16,
            vec![3, 2],
            vals.iter()
                .flat_map(|&x| f16::from_f32(x).to_le_bytes())
                .collect(),
        ),
        ("i8", S::I8, vec![3], vec![0xff, 0x7f, 0x80]),
        ("u8", S::U8, vec![2], vec![200, 1]),
        ("i16", S::I16, vec![1], (-300i16).to_le_bytes().to_vec()),
        ("u16", S::U16, vec![1], 60000u16.to_le_bytes().to_vec()),
        ("i32", S::I32, vec![1], (-70000i32).to_le_bytes().to_vec()),
        ("i64", S::I64, vec![1], (-5i64).to_le_bytes().to_vec()),
    ];
    let path = dir.join("model.safetensors");
    reference_file(&path, &tensors);
    // File, directory and format detection all give the same checkpoint.
    for p in [path.clone(), dir.clone()] {
        let ck = Checkpoint::open(&p).unwrap();
        assert_eq!(ck.format(), CheckpointFormat::Safetensors);
        assert_eq!(ck.len(), tensors.len());
        for (name, _, shape, bytes) in &tensors {
            let t = ck.tensor(name).unwrap();
            assert_eq!(t.shape, &shape[..]);
            assert_eq!(t.bytes, &bytes[..], "{name}");
        }
        let get = |n: &str| ck.tensor(n).unwrap().to_f32_vec().unwrap();
        // bf16 rounds 1e-3 and 65504; compare with half's own rounding of the inputs.
        let want_bf16: Vec<f32> = vals.iter().map(|&x| bf16::from_f32(x).to_f32()).collect();
        assert_eq!(get("f32"), vals);
        assert_eq!(get("bf16"), want_bf16);
        assert_eq!(get("f16")[4], 65504.0);
        assert_eq!(get("i8"), [-1.0, 127.0, -128.0]);
        assert_eq!(get("u8"), [200.0, 1.0]);
        assert_eq!(get("i16"), [-300.0]);
        assert_eq!(get("u16"), [60000.0]);
        assert_eq!(get("i32"), [-70000.0]);
        assert_eq!(get("i64"), [-5.0]);
        assert_eq!(ck.tensor("u16").unwrap().to_u16_vec().unwrap(), [60000]);
        assert_eq!(
            DType::from_safetensors(S::BF16),
            Some(ck.tensor("bf16").unwrap().dtype)
        );
    }
}

#[test]
fn writer_output_is_accepted_by_the_reference_crate() {
    let dir = scratch("writer");
    let path = dir.join("w.safetensors");
    let specs = [
        TensorSpec::new("a", DType::BF16, vec![2, 2]),
        TensorSpec::new("b", DType::Bool, vec![3]),
        TensorSpec::new("c", DType::U64, vec![1]),
    ];
    let meta = BTreeMap::from([("k".to_string(), "v".to_string())]);
    let mut w = SafetensorsWriter::create(&path, &specs, &meta).unwrap();
    assert_eq!(w.next_tensor(), Some("a"));
    // Chunks that straddle tensor boundaries.
    w.write(&[1, 2, 3]).unwrap();
    w.write(&[4, 5, 6, 7, 8, 1, 0]).unwrap();
    assert_eq!(w.next_tensor(), Some("b"));
    w.write(&[1]).unwrap();
    w.write_tensor("zzz", &[0; 8]).unwrap_err();
    w.write(&[9, 0, 0, 0, 0, 0, 0, 0]).unwrap();
    w.finish().unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    assert_eq!(st.tensor("a").unwrap().data(), &[1, 2, 3, 4, 5, 6, 7, 8]);
    assert_eq!(st.tensor("b").unwrap().data(), &[1, 0, 1]);
    assert_eq!(st.tensor("c").unwrap().data(), &9u64.to_le_bytes());
    let (_, meta_back) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    assert_eq!(
        meta_back.metadata().as_ref().unwrap().get("k").unwrap(),
        "v"
    );
}

fn write_shard(path: &Path, tensors: &[(&str, Vec<f32>)]) {
    use safetensors::Dtype as S;
    let t: Vec<_> = tensors
        .iter()
        .map(|(n, v)| (*n, S::F32, vec![v.len()], f32_bytes(v)))
        .collect();
    reference_file(path, &t);
}

fn write_index(dir: &Path, map: &[(&str, &str)]) {
    let weight_map: serde_json::Map<String, serde_json::Value> = map
        .iter()
        .map(|(k, v)| (k.to_string(), serde_json::Value::String(v.to_string())))
        .collect();
    let index = serde_json::json!({"metadata": {"total_size": 20}, "weight_map": weight_map});
    std::fs::write(
        dir.join("model.safetensors.index.json"),
        serde_json::to_string(&index).unwrap(),
    )
    .unwrap();
}

#[test]
fn sharded_checkpoints() {
    let dir = scratch("sharded");
    write_shard(
        &dir.join("model-00001-of-00002.safetensors"),
        &[("a", vec![1.0, 2.0]), ("b", vec![3.0])],
    );
    write_shard(
        &dir.join("model-00002-of-00002.safetensors"),
        &[("c", vec![4.0, 5.0])],
    );
    write_index(
        &dir,
        &[
            ("a", "model-00001-of-00002.safetensors"),
            ("b", "model-00001-of-00002.safetensors"),
            ("c", "model-00002-of-00002.safetensors"),
        ],
    );
    for p in [dir.clone(), dir.join("model.safetensors.index.json")] {
        let ck = Checkpoint::open(&p).unwrap();
        assert_eq!(ck.format(), CheckpointFormat::ShardedSafetensors);
        assert_eq!(ck.len(), 3);
        assert_eq!(ck.tensor("c").unwrap().to_f32_vec().unwrap(), [4.0, 5.0]);
        assert_eq!(ck.tensor("a").unwrap().to_f32_vec().unwrap(), [1.0, 2.0]);
        assert_eq!(
            ck.metadata().get("total_size").map(String::as_str),
            Some("20")
        );
        assert!(matches!(ck.tensor("zz"), Err(Error::TensorNotFound { .. })));
    }

    // Index says a tensor lives in the wrong shard.
    write_index(
        &dir,
        &[
            ("a", "model-00001-of-00002.safetensors"),
            ("b", "model-00002-of-00002.safetensors"),
            ("c", "model-00002-of-00002.safetensors"),
        ],
    );
    let e = Checkpoint::open(&dir).unwrap_err().to_string();
    assert!(e.contains("tensor b") && e.contains("index"), "{e}");

    // Index names a tensor its shard lacks.
    write_index(
        &dir,
        &[
            ("a", "model-00001-of-00002.safetensors"),
            ("b", "model-00001-of-00002.safetensors"),
            ("c", "model-00002-of-00002.safetensors"),
            ("d", "model-00002-of-00002.safetensors"),
        ],
    );
    let e = Checkpoint::open(&dir).unwrap_err().to_string();
    assert!(e.contains("tensor d"), "{e}");

    // Path traversal in a shard name.
    write_index(&dir, &[("a", "../model-00001-of-00002.safetensors")]);
    let e = Checkpoint::open(&dir).unwrap_err().to_string();
    assert!(e.contains("not a plain file name"), "{e}");

    // Missing shard file.
    write_index(&dir, &[("a", "nope.safetensors")]);
    let e = Checkpoint::open(&dir).unwrap_err().to_string();
    assert!(e.contains("nope.safetensors"), "{e}");

    // Same tensor in two shards.
    write_shard(&dir.join("dup.safetensors"), &[("a", vec![0.0, 0.0])]);
    write_index(
        &dir,
        &[
            ("a", "model-00001-of-00002.safetensors"),
            ("b", "dup.safetensors"),
        ],
    );
    assert!(Checkpoint::open(&dir).is_err());
}

#[test]
fn corrupt_files_name_file_and_tensor() {
    let dir = scratch("corrupt");
    let path = dir.join("bad.safetensors");
    let header = r#"{"w":{"dtype":"BF16","shape":[4],"data_offsets":[0,6]}}"#;
    let mut b = (header.len() as u64).to_le_bytes().to_vec();
    b.extend_from_slice(header.as_bytes());
    b.extend_from_slice(&[0; 6]);
    std::fs::write(&path, &b).unwrap();
    let e = Checkpoint::open(&path).unwrap_err();
    assert!(matches!(e, Error::Safetensors { .. }));
    let s = e.to_string();
    assert!(
        s.contains("bad.safetensors") && s.contains("tensor w") && s.contains("needs 8 bytes"),
        "{s}"
    );

    // Empty file and a directory without a checkpoint.
    let empty = dir.join("empty.safetensors");
    std::fs::write(&empty, b"").unwrap();
    assert!(Checkpoint::open(&empty)
        .unwrap_err()
        .to_string()
        .contains("too short"));
    let sub = dir.join("nothing");
    std::fs::create_dir_all(&sub).unwrap();
    assert!(matches!(
        Checkpoint::open(&sub),
        Err(Error::Checkpoint { .. })
    ));
    assert!(matches!(
        Checkpoint::open(dir.join("missing")),
        Err(Error::Io { .. })
    ));
}

#[test]
fn scan_counts_non_finite_values() {
    use safetensors::Dtype as S;
    let dir = scratch("scan");
    let path = dir.join("s.safetensors");
    let nan_bf16: Vec<u8> = [1.0f32, f32::NAN, f32::INFINITY, 2.0]
        .iter()
        .flat_map(|&x| bf16::from_f32(x).to_le_bytes())
        .collect();
    reference_file(
        &path,
        &[
            ("ok", S::F32, vec![2], f32_bytes(&[1.0, 2.0])),
            ("bad", S::BF16, vec![4], nan_bf16),
            ("ints", S::I32, vec![1], vec![0xff; 4]),
        ],
    );
    let ck = Checkpoint::open(&path).unwrap();
    let r = ck.scan();
    assert_eq!(r.tensors, 3);
    assert_eq!(r.bytes, 8 + 8 + 4);
    assert_eq!(r.non_finite, vec![("bad".to_string(), 2)]);
}
