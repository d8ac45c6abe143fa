//! `mllm-convertor`: convert checkpoints between safetensors and `.mllm` v2, streaming tensor by
//! tensor. Flag names follow mllm's own convertor (`--input_path`, `--output_path`); the
//! dash-separated spellings are accepted too.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use mllm_frontends::mllm_file::{self, ConvertOptions, Direction};
use mllm_frontends::{Checkpoint, MllmLayout};
use mllm_tools::synth::{byte_progress_bar, update_bar};

/// Convert a checkpoint between safetensors and the .mllm v2 parameter format.
///
/// The direction comes from the extensions: an output ending in .mllm converts a safetensors
/// input (a .safetensors file, a *.safetensors.index.json, or a directory holding either) into
/// .mllm; an output ending in .safetensors converts a .mllm input into safetensors. Tensors are
/// copied one by one from a memory map, so memory use stays small whatever the model size; the
/// output appears only once complete.
#[derive(Debug, Parser)]
#[command(name = "mllm-convertor", version)]
struct Cli {
    /// Input checkpoint: .safetensors file, sharded index/directory, or .mllm file.
    #[arg(long = "input_path", visible_alias = "input-path", value_name = "PATH")]
    input_path: PathBuf,
    /// Output file: *.mllm or *.safetensors.
    #[arg(
        long = "output_path",
        visible_alias = "output-path",
        value_name = "PATH"
    )]
    output_path: PathBuf,
    /// Write the static .mllm layout (exactly N descriptors, data right after them) instead of the
    /// streaming layout mllm's convertor writes (1024 reserved descriptor slots).
    #[arg(long = "static-layout", visible_alias = "static_layout")]
    static_layout: bool,
    /// Model name stored in the .mllm header (default: the input's directory or file name).
    #[arg(long = "model_name", visible_alias = "model-name", value_name = "NAME")]
    model_name: Option<String>,
    /// Print every tensor (name, dtype, shape) and a summary.
    #[arg(short, long)]
    verbose: bool,
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let opts = ConvertOptions {
        layout: if cli.static_layout {
            MllmLayout::Static
        } else {
            MllmLayout::Streaming
        },
        model_name: cli.model_name.clone(),
    };
    if cli.verbose {
        let ckpt = Checkpoint::open(&cli.input_path)
            .with_context(|| format!("opening {}", cli.input_path.display()))?;
        eprintln!("{}: {} tensors", cli.input_path.display(), ckpt.len());
        for t in ckpt.infos() {
            eprintln!("  {} {} {:?}", t.name, t.dtype, t.shape);
        }
    }
    let bar = byte_progress_bar(0, false);
    let start = std::time::Instant::now();
    let summary = mllm_file::convert(&cli.input_path, &cli.output_path, &opts, &mut |p| {
        update_bar(&bar, &p)
    })
    .with_context(|| {
        format!(
            "converting {} to {}",
            cli.input_path.display(),
            cli.output_path.display()
        )
    })?;
    bar.finish_and_clear();
    if cli.verbose {
        let what = match summary.direction {
            Direction::SafetensorsToMllm => "safetensors -> .mllm",
            Direction::MllmToSafetensors => ".mllm -> safetensors",
        };
        eprintln!(
            "{what}: {} tensors, {:.1} MB in {:.2} s -> {}",
            summary.tensors,
            summary.bytes as f64 / 1e6,
            start.elapsed().as_secs_f64(),
            cli.output_path.display()
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mllm-convertor: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
