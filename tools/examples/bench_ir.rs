//! Temporary runner for `mllm bench ir` until it is wired into the `mllm` binary:
//! `cargo run --release -p mllm-tools --example bench_ir -- [--layers N ...]`.

use clap::Parser;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: mllm_tools::bench_ir::BenchIrArgs,
}

fn main() -> anyhow::Result<()> {
    mllm_tools::bench_ir::run(Cli::parse().args)
}
