//! Smoke tests of the `mllm-convertor` binary: help, both directions, both layouts, errors.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use mllm_frontends::{DType, SafetensorsWriter, TensorSpec};

fn convertor(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mllm-convertor"))
        .args(args)
        .output()
        .expect("run mllm-convertor")
}

fn scratch(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("mllm-convertor-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A small safetensors file; returns its payload size.
fn sample(path: &Path) -> usize {
    let specs = [
        TensorSpec::new("model.embed_tokens.weight", DType::BF16, vec![8, 4]),
        TensorSpec::new("model.norm.weight", DType::F32, vec![4]),
        TensorSpec::new("zp", DType::I32, vec![1]),
    ];
    let meta = BTreeMap::from([("format".to_string(), "pt".to_string())]);
    let mut w = SafetensorsWriter::create(path, &specs, &meta).unwrap();
    let mut total = 0;
    for s in &specs {
        let n = s.byte_len().unwrap() as usize;
        w.write_tensor(
            &s.name,
            &(0..n).map(|i| (i * 13 + 5) as u8).collect::<Vec<_>>(),
        )
        .unwrap();
        total += n;
    }
    w.finish().unwrap();
    total
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn help_lists_mllm_flag_names() {
    let out = convertor(&["--help"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--input_path",
        "--output_path",
        "--static-layout",
        "--verbose",
        "input-path",
    ] {
        assert!(text.contains(flag), "help lacks {flag}:\n{text}");
    }
}

#[test]
fn converts_both_ways_in_both_layouts() {
    let dir = scratch("ok");
    let src = dir.join("model.safetensors");
    let payload = sample(&src);

    let streaming = dir.join("s.mllm");
    let out = convertor(&["--input_path", s(&src), "--output_path", s(&streaming)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::metadata(&streaming).unwrap().len() as usize,
        532 + 1024 * 352 + payload
    );

    let stat = dir.join("t.mllm");
    let out = convertor(&[
        "--input-path",
        s(&src),
        "--output-path",
        s(&stat),
        "--static-layout",
        "--verbose",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::metadata(&stat).unwrap().len() as usize,
        532 + 3 * 352 + payload
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("model.norm.weight f32 [4]"),
        "verbose listing:\n{err}"
    );

    for m in [&streaming, &stat] {
        let back = dir.join("back.safetensors");
        let out = convertor(&["--input_path", s(m), "--output_path", s(&back)]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(std::fs::read(&back).unwrap(), std::fs::read(&src).unwrap());
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn failures_exit_1_with_one_line() {
    let dir = scratch("bad");
    let missing = dir.join("missing.safetensors");
    let out = convertor(&[
        "--input_path",
        s(&missing),
        "--output_path",
        s(&dir.join("o.mllm")),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.starts_with("mllm-convertor: error:") && err.contains("missing.safetensors"),
        "{err}"
    );

    // Corrupt input: named in the message, and no output left behind.
    let bad = dir.join("bad.safetensors");
    let header = b"{\"a\":1}        ";
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header);
    std::fs::write(&bad, bytes).unwrap();
    let o = dir.join("o.mllm");
    let out = convertor(&["--input_path", s(&bad), "--output_path", s(&o)]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.safetensors") && err.contains("tensor a"),
        "{err}"
    );
    assert!(!o.exists());

    // No way to tell the direction from the output name.
    let src = dir.join("model.safetensors");
    sample(&src);
    let out = convertor(&[
        "--input_path",
        s(&src),
        "--output_path",
        s(&dir.join("o.bin")),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains(".mllm or .safetensors"));
    assert!(!dir.join("o.bin").exists());
    let _ = std::fs::remove_dir_all(dir);
}
