//! `mllm`: the umbrella tool of the compiler and runtime.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Compiler and runtime for LLMs on Qualcomm's Hexagon NPU (QNN).
#[derive(Parser)]
#[command(name = "mllm", version)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Write a deterministic synthetic Qwen3 checkpoint (config.json + model.safetensors).
    Synth(mllm_tools::synth::SynthArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let r = match cli.cmd {
        Cmd::Synth(a) => mllm_tools::synth::run(a),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
