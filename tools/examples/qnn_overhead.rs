//! Host overhead of a decode step through the QNN executor on a Qwen3-0.6B-shaped graph
//! (28 layers, 8 KV heads, head_dim 128, context 1024, vocabulary 151936: the real I/O
//! contract, 59 inputs and 57 outputs, 57 MB of u8 KV cache), with trivial compute inside
//! (each `present_*` is a one-column slice of its `past_*`, the logits a tiled mask), so the
//! emulator's `graphExecute` is short and the host side is what is measured:
//!
//! * scheduler overhead per decode step (outside `Executor::execute`: KV commit of 56
//!   tensors, mask update, sampling on raw u16 logits),
//! * executor overhead per call (inside `execute`, outside `graphExecute`: buffer checks,
//!   client-buffer patching),
//! * heap allocations per decode step (counting allocator; Rust allocations only, not the
//!   QNN library's own mallocs),
//! * load time of the binary (manifest, SHA-256, metadata, contextCreateFromBinary).
//!
//! `cargo run -p mllm-tools --release --example qnn_overhead [-- STEPS [MODEL.bin]]`
//! (needs the QNN libraries, `scripts/setup-qnn.sh`). With `MODEL.bin` (a real compiled
//! model, e.g. the Qwen3-0.6B preset from `mllm compile --no-weight-sharing`) that binary is
//! measured instead, with the same figures; its decode graph does the real work, so use few
//! steps (the emulator takes seconds per 0.6B step).

use std::path::Path;
use std::time::Instant;

use mllm_runtime::qnn::write_contract_binary;
use mllm_runtime::scheduler::GraphSelect;
use mllm_runtime::{
    ModelDims, QnnExecutor, QnnOptions, Sampler, SamplerConfig, Scheduler, SchedulerConfig,
};
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<std::alloc::System> = &INSTRUMENTED_SYSTEM;

/// Qwen3-0.6B: 28 layers, 8 KV heads, head_dim 128, context 1024, vocabulary 151936.
const DIMS: ModelDims = ModelDims {
    layers: 28,
    kv_heads: 8,
    head_dim: 128,
    context: 1024,
    vocab: 151_936,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let steps: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(64);
    if let Some(model) = std::env::args().nth(2) {
        return run(Path::new(&model), steps);
    }
    let dir = std::env::temp_dir().join(format!("qnn_overhead_{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let bin = dir.join("model.bin");
    let t = Instant::now();
    let m = write_contract_binary(&bin, &DIMS, None, 57)?;
    println!(
        "built a 0.6B-shaped decode graph ({} bytes) in {:.1} s",
        m.binary_size,
        t.elapsed().as_secs_f64()
    );
    let r = run(&bin, steps);
    let _ = std::fs::remove_dir_all(&dir);
    r
}

fn run(bin: &Path, steps: usize) -> Result<(), Box<dyn std::error::Error>> {
    let exec = QnnExecutor::open(bin, &QnnOptions::default())?;
    println!("load: {}", exec.load_report());
    let g = &mllm_runtime::Executor::graphs(&exec)[0];
    println!(
        "graph {}: {} inputs, {} outputs",
        g.name,
        g.inputs.len(),
        g.outputs.len()
    );
    let cfg = SchedulerConfig {
        max_new_tokens: steps + 1,
        eos_ids: vec![],
        prefill: GraphSelect::Disabled,
        ..Default::default()
    };
    let mut sched = Scheduler::new(exec, cfg)?;
    let mut sampler = Sampler::new(SamplerConfig::greedy(), sched.dims().vocab)?;
    // Warm-up: one prompt token and one generated (first executions set up the emulator).
    sched.generate(&[1], &mut sampler, |_| false)?;
    sched.reset();
    let before = sched.executor().overhead();
    let mut allocs = Vec::with_capacity(steps + 2);
    let mut region = Region::new(GLOBAL);
    let stats = sched.generate(&[1, 2, 3, 4], &mut sampler, |_| {
        allocs.push(region.change_and_reset().allocations);
        true
    })?;
    let o = sched.executor().overhead().since(&before);
    // Allocations between consecutive tokens = one decode step (the first entry includes
    // the prompt steps and the start of generate).
    let per_step: Vec<usize> = allocs.iter().skip(1).copied().collect();
    let total: usize = per_step.iter().sum();
    let sched_us = stats.host_overhead_per_step().as_secs_f64() * 1e6;
    let exec_us = o.per_call().as_secs_f64() * 1e6;
    let fastest_us = o.fastest.unwrap_or_default().as_secs_f64() * 1e6;
    println!(
        "{} decode steps: decode {:.1} tok/s, graphExecute {:.2} ms/call",
        stats.decode_steps,
        stats.decode_tok_per_s(),
        o.library_time.as_secs_f64() * 1e3 / o.calls.max(1) as f64
    );
    println!(
        "host overhead per decode step excluding graphExecute: {:.1} us (scheduler {sched_us:.1} us outside execute + executor {exec_us:.1} us inside execute; fastest executor call {fastest_us:.1} us)",
        sched_us + exec_us
    );
    println!(
        "heap allocations per decode step: {:.2} ({total} over {} steps)",
        total as f64 / per_step.len().max(1) as f64,
        per_step.len()
    );
    Ok(())
}
