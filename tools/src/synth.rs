//! `mllm synth`: write a deterministic synthetic Qwen3 checkpoint (`config.json` +
//! `model.safetensors`), plus the byte progress bar shared with `mllm-convertor`.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use mllm_frontends::synth::{self, Preset};
use mllm_frontends::{DType, Progress};

/// Arguments of `mllm synth`.
#[derive(Debug, Clone, Args)]
pub struct SynthArgs {
    /// Model shape: tiny, qwen3-0.6b, qwen3-1.7b or qwen3-4b.
    #[arg(long, default_value = "tiny")]
    pub preset: Preset,
    /// Seed of the weight generator; the same seed gives the same bytes.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Storage dtype of the weights: bf16, f16 or f32.
    #[arg(long, default_value = "bf16")]
    pub dtype: DType,
    /// Output directory (created if needed).
    #[arg(short = 'o', long = "output", value_name = "DIR")]
    pub output: PathBuf,
    /// Do not draw a progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// A progress bar over `total` bytes, drawn on stderr (hidden when stderr is not a terminal or
/// when `hidden`).
pub fn byte_progress_bar(total: u64, hidden: bool) -> ProgressBar {
    if hidden {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    let style = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} ({bytes_per_sec}, eta {eta}) {msg}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar
}

/// Advances `bar` from a frontends [`Progress`] report.
pub fn update_bar(bar: &ProgressBar, p: &Progress<'_>) {
    bar.set_length(p.bytes_total);
    bar.set_position(p.bytes_done);
    bar.set_message(format!(
        "{}/{} {}",
        p.tensors_done, p.tensors_total, p.tensor
    ));
}

/// Runs `mllm synth`.
pub fn run(args: SynthArgs) -> anyhow::Result<()> {
    let bar = byte_progress_bar(0, args.quiet);
    let start = std::time::Instant::now();
    let summary = synth::generate(args.preset, args.seed, args.dtype, &args.output, &mut |p| {
        update_bar(&bar, &p)
    })
    .with_context(|| {
        format!(
            "generating preset {} into {}",
            args.preset,
            args.output.display()
        )
    })?;
    bar.finish_and_clear();
    let secs = start.elapsed().as_secs_f64();
    println!(
        "wrote {} ({} tensors, {} parameters, {:.1} MB {}) and {} in {:.1} s ({:.0} MB/s)",
        summary.safetensors_path.display(),
        summary.tensors,
        summary.params,
        summary.bytes as f64 / 1e6,
        args.dtype,
        summary.config_path.display(),
        secs,
        summary.bytes as f64 / 1e6 / secs.max(1e-9),
    );
    Ok(())
}
