//! Per-op-kind wall time of one float prefill (and one decode step) of a checkpoint on
//! the CPU reference executor: where `mllm bench runtime`'s prefill time goes.
//!
//! `cargo run --release -p mllm-tools --example prefill_profile -- target/bench-models/qwen3_0_6b [S] [C]`

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use mllm_frontends::qwen3::BuildOptions;
use mllm_runtime::cpu::{CpuExecutor, NumericMode};
use mllm_runtime::Executor;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let ckpt = PathBuf::from(
        args.next()
            .unwrap_or_else(|| "target/bench-models/qwen3_0_6b".into()),
    );
    let s: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(128);
    let c: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(1024);
    let (_, m) = mllm_tools::quantize::load_module(
        &ckpt,
        None,
        BuildOptions {
            ar_len: s,
            context_len: c,
            num_shards: 1,
        },
    )?;
    let t = Instant::now();
    let mut exec = CpuExecutor::new(&m, NumericMode::Float)?;
    println!("executor built in {:.2} s", t.elapsed().as_secs_f64());
    let graphs = exec.graphs().to_vec();
    for (g, desc) in graphs.iter().enumerate() {
        let ins: Vec<Vec<u8>> = desc
            .inputs
            .iter()
            .map(|d| vec![0u8; d.byte_size()])
            .collect();
        let mut outs: Vec<Vec<u8>> = desc
            .outputs
            .iter()
            .map(|d| vec![0u8; d.byte_size()])
            .collect();
        let inr: Vec<&[u8]> = ins.iter().map(|v| v.as_slice()).collect();
        // Warm up once, then profile the second run.
        {
            let mut outr: Vec<&mut [u8]> = outs.iter_mut().map(|v| v.as_mut_slice()).collect();
            exec.execute(g, &inr, &mut outr)?;
        }
        if let Some(p) = exec.program_mut(g) {
            p.set_profiling(true);
        }
        let t = Instant::now();
        {
            let mut outr: Vec<&mut [u8]> = outs.iter_mut().map(|v| v.as_mut_slice()).collect();
            exec.execute(g, &inr, &mut outr)?;
        }
        let wall = t.elapsed().as_secs_f64();
        let Some(p) = exec.program(g) else { continue };
        let mut by: BTreeMap<String, (f64, usize)> = BTreeMap::new();
        for (_, kind, name, d) in p.profile() {
            let tag = match name {
                Some(n) if kind == mllm_ir::OpKind::Linear || kind == mllm_ir::OpKind::MatMul => {
                    let leaf = n.rsplit('.').next().unwrap_or(n);
                    format!("{kind:?} {leaf}")
                }
                _ => format!("{kind:?}"),
            };
            let e = by.entry(tag).or_default();
            e.0 += d.as_secs_f64();
            e.1 += 1;
        }
        let mut v: Vec<_> = by.into_iter().collect();
        v.sort_by(|a, b| b.1 .0.total_cmp(&a.1 .0));
        println!("== {} (ar_len {}): {:.3} s", desc.name, desc.ar_len, wall);
        for (k, (t, n)) in v.iter().take(25) {
            println!(
                "  {:>8.1} ms {:>5.1}%  x{:<5} {k}",
                t * 1e3,
                100.0 * t / wall,
                n
            );
        }
        if let Some(p) = exec.program_mut(g) {
            p.set_profiling(false);
        }
    }
    Ok(())
}
