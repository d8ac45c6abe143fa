//! Checkpoint benchmarks that print figures (no assertions):
//!
//! ```text
//! cargo run --release -p mllm-frontends --example checkpoint_bench -- synth <preset> <dtype> <seed> <out_dir>
//! cargo run --release -p mllm-frontends --example checkpoint_bench -- scan <checkpoint> [config.json]
//! cargo run --release -p mllm-frontends --example checkpoint_bench -- convert <input> <output> [static|streaming]
//! ```
//!
//! `synth` times the synthetic-checkpoint generator; `scan` times opening a checkpoint (header
//! validation), checking it against a config, and reading every payload byte once; `convert` times
//! the streaming safetensors <-> `.mllm` conversion (run it under `/usr/bin/time -v` for peak RSS).

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use mllm_frontends::mllm_file::{self, ConvertOptions};
use mllm_frontends::synth::{self, Preset};
use mllm_frontends::{Checkpoint, DType, MllmLayout, Qwen3Config};

fn run(args: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    match args {
        [cmd, preset, dtype, seed, out] if cmd == "synth" => {
            let preset: Preset = preset.parse()?;
            let dtype: DType = dtype.parse()?;
            let seed: u64 = seed.parse()?;
            let t = Instant::now();
            let s = synth::generate(preset, seed, dtype, Path::new(out), &mut |_| {})?;
            let secs = t.elapsed().as_secs_f64();
            println!(
                "synth {preset} {dtype}: {} tensors, {} params, {:.2} GB in {secs:.2} s ({:.0} MB/s)",
                s.tensors,
                s.params,
                s.bytes as f64 / 1e9,
                s.bytes as f64 / 1e6 / secs
            );
        }
        [cmd, path, rest @ ..] if cmd == "scan" && rest.len() <= 1 => {
            let t = Instant::now();
            let ckpt = Checkpoint::open(path)?;
            let open = t.elapsed().as_secs_f64();
            if let Some(cfg) = rest.first() {
                let config = Qwen3Config::from_file(cfg)?;
                let lm = config.check_checkpoint(&ckpt)?;
                println!("config check ok, lm_head from {}", lm.tensor_name());
            }
            let t = Instant::now();
            let report = ckpt.scan();
            let scan = t.elapsed().as_secs_f64();
            println!(
                "open+validate headers: {:.1} ms ({} tensors); read all {:.2} GB: {scan:.2} s ({:.0} MB/s); non-finite tensors: {}",
                open * 1e3,
                ckpt.len(),
                report.bytes as f64 / 1e9,
                report.bytes as f64 / 1e6 / scan,
                report.non_finite.len()
            );
        }
        [cmd, input, output, rest @ ..] if cmd == "convert" && rest.len() <= 1 => {
            let layout = match rest.first().map(String::as_str) {
                Some("static") => MllmLayout::Static,
                _ => MllmLayout::Streaming,
            };
            let opts = ConvertOptions {
                layout,
                model_name: None,
            };
            let t = Instant::now();
            let s = mllm_file::convert(Path::new(input), Path::new(output), &opts, &mut |_| {})?;
            let secs = t.elapsed().as_secs_f64();
            println!(
                "convert {:?}: {} tensors, {:.2} GB in {secs:.2} s ({:.0} MB/s)",
                s.direction,
                s.tensors,
                s.bytes as f64 / 1e9,
                s.bytes as f64 / 1e6 / secs
            );
        }
        _ => return Err("usage: checkpoint_bench synth <preset> <dtype> <seed> <out_dir> | scan <checkpoint> [config.json] | convert <input> <output> [static|streaming]".into()),
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("checkpoint_bench: error: {e}");
            ExitCode::FAILURE
        }
    }
}
