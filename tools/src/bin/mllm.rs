//! `mllm`: the umbrella tool of the compiler and runtime.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use stats_alloc::{StatsAlloc, INSTRUMENTED_SYSTEM};

/// The system allocator, instrumented: `mllm bench runtime` counts heap allocations per
/// decode step with it.
#[global_allocator]
static GLOBAL: &StatsAlloc<std::alloc::System> = &INSTRUMENTED_SYSTEM;

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
    /// Quantize a float checkpoint (W4A16 LPBQ, u16 activations, u8 KV) into IR + weights.
    Quantize(mllm_tools::quantize::QuantizeArgs),
    /// Compile a model (float checkpoint, .mllm, pymllm export or quantized IR) into QNN
    /// context binaries: import, quantize, NPU passes, lower + finalize, write.
    Compile(mllm_tools::compile::CompileArgs),
    /// Generate text with a model (same as mllm-run).
    Run(mllm_tools::run::RunArgs),
    /// The whole flow on a built-in tiny model: synthesize, quantize, optimize, run.
    Demo(mllm_tools::demo::DemoArgs),
    /// List the graphs, I/O tensors (shapes, types, encodings), SoC and QNN version of a context binary.
    Inspect(mllm_tools::qnn::InspectArgs),
    /// Benchmarks that print figures.
    #[command(subcommand)]
    Bench(mllm_tools::bench::BenchCmd),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let r = match cli.cmd {
        Cmd::Synth(a) => mllm_tools::synth::run(a),
        Cmd::Quantize(a) => mllm_tools::quantize::main_with(&a),
        Cmd::Compile(a) => mllm_tools::compile::main_with(&a),
        Cmd::Run(a) => mllm_tools::run::main_with(&a),
        Cmd::Demo(a) => mllm_tools::demo::main_with(&a),
        Cmd::Inspect(a) => mllm_tools::qnn::inspect(&a),
        Cmd::Bench(c) => mllm_tools::bench::run(c, &|| GLOBAL.stats().allocations as u64),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
