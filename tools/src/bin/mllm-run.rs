//! `mllm-run`: generate text with a model on the hybrid prefill/decode scheduler.

use std::process::ExitCode;

use clap::Parser;

/// Runs a model (QNN context binary, checkpoint or quantized IR) with chunked prefill and
/// token-by-token decode; `--compare` runs a binary against its CPU reference.
#[derive(Parser)]
#[command(name = "mllm-run", version)]
struct Cli {
    #[command(flatten)]
    args: mllm_tools::run::RunArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match mllm_tools::run::main_with(&cli.args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
