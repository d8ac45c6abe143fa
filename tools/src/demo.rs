//! `mllm demo`: the whole flow on a built-in default, with no download: a tiny
//! synthetic Qwen3 checkpoint is generated, quantized (W4A16 LPBQ, u16 activations, u8
//! KV) with built-in calibration text, optimized for the NPU (decompose, sha-split,
//! linear-to-conv2d, quant-fix, mask-fill-const, cleanup), compiled to a QNN context
//! binary when the QNN libraries are installed (without weight sharing: the x86 emulator
//! cannot load weight-shared binaries), and run on a prompt with the real (bundled) Qwen3
//! tokenizer: through the QNN executor (the HTP emulator on x86) when the binary was
//! compiled, else on the CPU reference in fixed-point mode.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use mllm_frontends::synth::{self, Preset};
use mllm_frontends::DType;

/// The bundled Qwen3 tokenizer.
pub const QWEN3_TOKENIZER: &[u8] = include_bytes!("../../assets/qwen3/tokenizer.json");

/// Arguments of `mllm demo`.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Where the artifacts go.
    #[arg(short = 'o', long = "output", default_value = "mllm-demo")]
    pub output: PathBuf,
    /// Prompt.
    #[arg(
        short = 'p',
        long = "prompt",
        default_value = "Explain in one sentence what a compiler does."
    )]
    pub prompt: String,
    /// New tokens to generate.
    #[arg(long = "max-new-tokens", default_value_t = 16)]
    pub max_new_tokens: usize,
    /// Prefill chunk length of the compiled graphs.
    #[arg(long = "ar_len", alias = "ar-len", default_value_t = 32)]
    pub ar_len: usize,
    /// Context length.
    #[arg(long = "context-len", default_value_t = 256)]
    pub context_len: usize,
    /// Directory of the QNN libraries (default: discovery, see scripts/setup-qnn.sh).
    #[arg(long = "qnn_env_path", alias = "qnn-lib-dir")]
    pub qnn_env_path: Option<PathBuf>,
}

/// Pipeline run on the quantized module before it is compiled (the one `mllm compile` runs).
pub use crate::compile::NPU_PIPELINE;

/// Runs the demo.
pub fn main_with(args: &DemoArgs) -> anyhow::Result<()> {
    let t0 = Instant::now();
    let out = &args.output;
    std::fs::create_dir_all(out).with_context(|| format!("{}: cannot create", out.display()))?;
    let ckpt = out.join("checkpoint");
    eprintln!(
        "[1/4] synthetic tiny Qwen3 checkpoint -> {}",
        ckpt.display()
    );
    synth::generate(Preset::Tiny, 0, DType::BF16, &ckpt, &mut |_| {})?;
    let tok_path = ckpt.join("tokenizer.json");
    crate::translate::write_output(&tok_path, QWEN3_TOKENIZER)?;

    eprintln!(
        "[2/4] quantize (built-in calibration text) -> {}",
        out.join("quantized").display()
    );
    let q = crate::quantize::QuantizeArgs {
        checkpoint: ckpt.clone(),
        calib: None,
        num_samples: 16,
        max_length: 128,
        block_size: 16,
        aot_config: None,
        config: None,
        tokenizer: Some(tok_path.clone()),
        ar_len: args.ar_len,
        context_len: args.context_len,
        output: out.join("quantized"),
        quiet: true,
        report: Default::default(),
    };
    let qs = crate::quantize::run(&q)?;
    eprintln!(
        "      calibration {} tokens in {:.1} s; weight SQNR mean {:.1} dB, min {:.1} dB",
        qs.calib_tokens, qs.calib_secs, qs.mean_weight_sqnr, qs.min_weight_sqnr.0
    );

    eprintln!("[3/4] NPU passes: {NPU_PIPELINE}");
    let text = std::fs::read_to_string(&qs.ir)?;
    let mut m = mllm_ir::parse::parse_verified(&text, &qs.ir.display().to_string())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    mllm_frontends::qwen3::load_weights(&mut m, qs.ir.parent())?;
    let mut pm = mllm_passes::PassManager::parse(NPU_PIPELINE, &mllm_passes::Registry::with_all())?;
    pm.run(&mut m, &mut [])?;
    let npu_ir = out.join("quantized").join("model.npu.mlir");
    crate::translate::write_output(&npu_ir, mllm_ir::print::print_module(&m).as_bytes())?;
    let bin = out.join("model.bin");
    let compiled = match mllm_qnn_sys::QnnLibrary::load(args.qnn_env_path.as_deref()) {
        Ok(_) => {
            eprintln!(
                "      compiling a QNN context binary for SM8650 (HTP v75) -> {}",
                bin.display()
            );
            let t = Instant::now();
            crate::qnn::translate_to_qnn(&crate::qnn::ToQnnArgs {
                input: npu_ir.clone(),
                aot_config: None,
                qnn_env_path: args.qnn_env_path.clone(),
                soc: Some("SM8650".into()),
                vtcm_mb: None,
                weight_sharing: false,
                no_weight_sharing: true,
                optimization_level: 3,
                graphs: Vec::new(),
                output: bin.clone(),
                quiet: true,
            })?;
            eprintln!(
                "      compiled in {:.1} s ({} bytes)",
                t.elapsed().as_secs_f64(),
                std::fs::metadata(&bin).map(|m| m.len()).unwrap_or(0)
            );
            true
        }
        Err(e) => {
            eprintln!("      QNN libraries not available ({e});");
            eprintln!("      install them with scripts/setup-qnn.sh to compile a context binary; running on the CPU reference");
            false
        }
    };

    // The CPU reference runs the quantized IR before the layout rewrites (sha-split and
    // linear-to-conv2d are exact rewrites, checked by the test suite), which it executes
    // faster; the QNN executor runs the compiled binary.
    let mut run = crate::run::RunArgs::new(if compiled { bin.clone() } else { qs.ir.clone() });
    run.tokenizer = Some(tok_path.clone());
    run.config = Some(ckpt.join("config.json"));
    run.prompt = Some(args.prompt.clone());
    run.max_new_tokens = args.max_new_tokens;
    run.qnn_env_path = args.qnn_env_path.clone();
    run.reference = Some(qs.ir.clone());
    if compiled {
        eprintln!(
            "[4/4] run {} through the QNN executor (HTP emulator on x86): {:?}",
            bin.display(),
            args.prompt
        );
    } else {
        eprintln!(
            "[4/4] run on the CPU reference (fixed-point NPU emulation): {:?}",
            args.prompt
        );
    }
    crate::run::main_with(&run)?;
    eprintln!("\nartifacts:");
    eprintln!("  checkpoint      {}", ckpt.display());
    eprintln!("  tokenizer       {}", tok_path.display());
    eprintln!("  quantized IR    {}", qs.ir.display());
    eprintln!("  weights (.mllm) {}", qs.weights.display());
    eprintln!("  NPU-ready IR    {}", npu_ir.display());
    if compiled {
        eprintln!(
            "  QNN binary      {} (+ {}.json manifest; inspect with `mllm inspect`)",
            bin.display(),
            bin.display()
        );
        eprintln!(
            "run it again:     mllm-run -m {} -c {} -t {} -p \"...\"",
            bin.display(),
            ckpt.join("config.json").display(),
            tok_path.display()
        );
        eprintln!(
            "compare with CPU: mllm-run -m {} --reference {} --compare -p \"...\"",
            bin.display(),
            npu_ir.display()
        );
    }
    eprintln!(
        "demo finished in {:.1} s (the tiny model has random weights: its text is noise)",
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}
