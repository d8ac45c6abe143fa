//! Helpers shared by the tools' QNN integration tests.
// Each test crate uses its own subset of these helpers.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use clap::Parser;

#[derive(Parser)]
struct QuantizeCli {
    #[command(flatten)]
    args: mllm_tools::quantize::QuantizeArgs,
}

/// Quantizes the checkpoint `ckpt` into `out` (built-in calibration text, 8 samples of 64
/// tokens, graphs for `ar_len` and 1, context `context`) and returns the quantized IR's path
/// and the module after the demo's NPU pass pipeline, with its weights loaded.
pub fn quantize_for_npu(
    ckpt: &Path,
    tok: &Path,
    out: &Path,
    ar_len: usize,
    context: usize,
) -> (PathBuf, mllm_ir::Module) {
    let argv = [
        "quantize".to_string(),
        ckpt.display().to_string(),
        "--num-samples".into(),
        "8".into(),
        "--max-length".into(),
        "64".into(),
        "--ar-len".into(),
        ar_len.to_string(),
        "--context-len".into(),
        context.to_string(),
        "-t".into(),
        tok.display().to_string(),
        "-o".into(),
        out.display().to_string(),
        "--quiet".into(),
    ];
    let q = QuantizeCli::try_parse_from(argv).expect("quantize arguments");
    let qs = mllm_tools::quantize::run(&q.args).expect("quantize");
    let text = std::fs::read_to_string(&qs.ir).unwrap();
    let mut m = mllm_ir::parse::parse_verified(&text, "model.mlir").unwrap();
    mllm_frontends::qwen3::load_weights(&mut m, qs.ir.parent()).unwrap();
    let mut pm = mllm_passes::PassManager::parse(
        mllm_tools::demo::NPU_PIPELINE,
        &mllm_passes::Registry::with_all(),
    )
    .unwrap();
    pm.run(&mut m, &mut []).unwrap();
    (qs.ir, m)
}

/// A fresh scratch directory `$CARGO_TARGET_TMPDIR/{prefix}_{pid}`; directories of earlier
/// runs whose process is gone (`/proc/<pid>` absent, Linux only) are removed first.
pub fn fresh_root(prefix: &str) -> PathBuf {
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    if cfg!(target_os = "linux") {
        if let Ok(entries) = std::fs::read_dir(&tmp) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let stale = name
                    .strip_prefix(prefix)
                    .and_then(|r| r.strip_prefix('_'))
                    .filter(|pid| pid.parse::<u32>().is_ok())
                    .is_some_and(|pid| !Path::new("/proc").join(pid).exists());
                if stale {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
    }
    let root = tmp.join(format!("{prefix}_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    root
}

/// Writes the tiny synthetic Qwen3 checkpoint (seed 0, bf16) to `root/checkpoint` with the
/// bundled Qwen3 tokenizer beside it; returns `(checkpoint dir, tokenizer.json)`.
pub fn tiny_checkpoint(root: &Path) -> (PathBuf, PathBuf) {
    let ckpt = root.join("checkpoint");
    mllm_frontends::synth::generate(
        mllm_frontends::synth::Preset::Tiny,
        0,
        mllm_frontends::DType::BF16,
        &ckpt,
        &mut |_| {},
    )
    .unwrap();
    let tokenizer = ckpt.join("tokenizer.json");
    std::fs::write(&tokenizer, mllm_tools::demo::QWEN3_TOKENIZER).unwrap();
    (ckpt, tokenizer)
}
