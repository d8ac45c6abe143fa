//! Helpers shared by the tools' QNN integration tests.

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
