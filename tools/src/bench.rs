//! `mllm bench`: benchmarks that print figures (nothing here asserts on time).
//!
//! - `mllm bench ir`: parse/verify/print/cse+dce of a synthetic Qwen3-1.7B-shaped module.
//! - `mllm bench runtime`: CPU executor kernels (GFLOP/s of a `[128x2048]x[2048x2048]`
//!   GEMM, GB/s of a decode GEMV), the scheduler's host overhead per decode step (and
//!   heap allocations per step), and float prefill/decode throughput of a synthetic
//!   checkpoint (`--preset`, default qwen3-0.6b) on the CPU reference: once with the NPU
//!   graphs' context (`--context-len`, 1024: every step attends over the whole context)
//!   and once with graphs sized to the job (`--job-context-len`, default the prompt and
//!   decode steps rounded up to 128).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, Subcommand};
use mllm_frontends::qwen3::BuildOptions;
use mllm_frontends::synth::{self, Preset};
use mllm_frontends::DType;
use mllm_ir::WDType;
use mllm_runtime::cpu::{CpuExecutor, NumericMode};
use mllm_runtime::scheduler::GraphSelect;
use mllm_runtime::{Sampler, SamplerConfig, Scheduler, SchedulerConfig};

/// `mllm bench` subcommands.
#[derive(Debug, Subcommand)]
pub enum BenchCmd {
    /// IR benchmark: parse, verify, print, cse+dce of a Qwen3-1.7B-shaped module.
    Ir(crate::bench_ir::BenchIrArgs),
    /// Runtime benchmark: kernels, scheduler overhead, model prefill/decode on the CPU reference.
    Runtime(BenchRuntimeArgs),
}

/// Arguments of `mllm bench runtime`.
#[derive(Debug, Clone, Args)]
pub struct BenchRuntimeArgs {
    /// Synthetic model preset.
    #[arg(long, default_value = "qwen3-0.6b")]
    pub preset: Preset,
    /// Use this checkpoint instead of generating the preset.
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// Where generated presets are cached.
    #[arg(long, default_value = "target/bench-models")]
    pub cache: PathBuf,
    /// Prompt length (the prefill graph's ar_len too).
    #[arg(long = "prompt-len", default_value_t = 128)]
    pub prompt_len: usize,
    /// Decode steps to time.
    #[arg(long = "decode-tokens", default_value_t = 16)]
    pub decode_tokens: usize,
    /// Context length of the graphs (the NPU graphs' shape: every step attends over the
    /// whole context, masked).
    #[arg(long = "context-len", default_value_t = 1024)]
    pub context_len: usize,
    /// Then run the model again with graphs sized to the job: this context length
    /// (default: the prompt and the decode steps rounded up to a multiple of 128, i.e. the
    /// attention work of a framework that attends only over filled cache entries); 0 skips.
    #[arg(long = "job-context-len")]
    pub job_context_len: Option<usize>,
    /// Skip the model run (kernels and scheduler only).
    #[arg(long)]
    pub skip_model: bool,
}

/// Runs a bench subcommand; `alloc_count` reads the process' allocation counter (the
/// `mllm` binary installs a counting allocator).
pub fn run(cmd: BenchCmd, alloc_count: &dyn Fn() -> u64) -> anyhow::Result<()> {
    match cmd {
        BenchCmd::Ir(a) => crate::bench_ir::run(a),
        BenchCmd::Runtime(a) => runtime(&a, alloc_count),
    }
}

/// Best and median of `runs` timings of one product (each run packs the weight once and
/// times one product after a warm-up).
fn gemm_runs(m: usize, k: usize, n: usize, bf16: bool, runs: usize) -> (f64, f64) {
    let mut g: Vec<f64> = (0..runs.max(1))
        .map(|_| mllm_runtime::cpu::bench::bench_linear(m, k, n, bf16, 1).gflops)
        .collect();
    g.sort_by(f64::total_cmp);
    (g[g.len() - 1], g[g.len() / 2])
}

fn runtime(a: &BenchRuntimeArgs, alloc_count: &dyn Fn() -> u64) -> anyhow::Result<()> {
    let bw = mllm_runtime::bench::memory_bandwidth(1 << 30, 3);
    let threads = bw.threads;
    println!(
        "== memory bandwidth ({threads} threads, {} MiB buffer, best of 3): read {:.1} GB/s, \
         copy {:.1} GB/s (read + written)",
        bw.bytes >> 20,
        bw.read_gbps,
        bw.copy_gbps
    );
    println!("== CPU executor kernels");
    for bf16 in [false, true] {
        let (best, median) = gemm_runs(128, 2048, 2048, bf16, 15);
        println!(
            "  GEMM [128x2048] x [2048x2048], {} weights: best {best:.1} GFLOP/s, median \
             {median:.1} over 15 runs (PyTorch eager baseline: scripts/bench-pytorch.py)",
            if bf16 { "bf16" } else { "f32" }
        );
    }
    for r in mllm_runtime::cpu::bench::standard(5).iter().skip(2) {
        let w = if r.bf16 { "bf16" } else { "f32" };
        let place = if r.copies > 1 {
            format!(
                "streaming {} distinct copies, {:.0}% of the read bandwidth",
                r.copies,
                100.0 * r.weight_gbps / bw.read_gbps
            )
        } else {
            "weight cache-resident".to_string()
        };
        println!(
            "  GEMV [{}x{}] x [{}x{}], {w} weights: {:.2} ms, {:.1} GB/s of weights ({place})",
            r.m,
            r.k,
            r.k,
            r.n,
            r.seconds * 1e3,
            r.weight_gbps
        );
    }
    println!("== scheduler host overhead per decode step (no-op executor, execute excluded)");
    let dims = mllm_runtime::bench::BENCH_DIMS;
    let rep = mllm_runtime::bench::bench_decode_overhead(dims, 2000, Some(alloc_count))?;
    println!("  {rep}");
    let rep = mllm_runtime::bench::bench_decode_overhead_with(dims, 200, None, 256 << 20)?;
    println!("  {rep}");
    if a.skip_model {
        return Ok(());
    }
    let ckpt = match &a.checkpoint {
        Some(c) => c.clone(),
        None => {
            let dir = a.cache.join(format!("{:?}", a.preset).to_lowercase());
            if !dir.join("model.safetensors").exists() {
                println!(
                    "== generating the {:?} preset into {} (once)",
                    a.preset,
                    dir.display()
                );
                synth::generate(a.preset, 0, DType::BF16, &dir, &mut |_| {})?;
            }
            dir
        }
    };
    let job = a
        .job_context_len
        .unwrap_or_else(|| (a.prompt_len + a.decode_tokens + 1).div_ceil(128) * 128);
    model_run(a, &ckpt, a.context_len, "the NPU graph shape", &bw)?;
    if job > 0 && job != a.context_len {
        model_run(a, &ckpt, job, "graphs sized to the job", &bw)?;
    }
    Ok(())
}

/// Loads `ckpt` with graphs of context `context_len` and times a prefill and decode steps.
fn model_run(
    a: &BenchRuntimeArgs,
    ckpt: &std::path::Path,
    context_len: usize,
    what: &str,
    bw: &mllm_runtime::bench::Bandwidth,
) -> anyhow::Result<()> {
    let t = Instant::now();
    let (cfg, m) = crate::quantize::load_module(
        ckpt,
        None,
        BuildOptions {
            ar_len: a.prompt_len,
            context_len,
            num_shards: 1,
        },
    )?;
    // Parameters, and the bytes the CPU executor streams per decode step: every weight once
    // (bf16 checkpoints are packed as bf16, exactly; other floats as f32), except a token
    // embedding that is only gathered (one row) when the model has its own lm_head.
    let params: usize = m.weights.iter().map(|(_, w)| w.numel()).sum();
    let has_lm_head = m.weights.iter().any(|(n, _)| n.contains("lm_head"));
    let weight_bytes: usize = m
        .weights
        .iter()
        .filter(|(n, _)| !(has_lm_head && n.contains("embed_tokens")))
        .map(|(_, w)| w.numel() * if w.dtype == WDType::BF16 { 2 } else { 4 })
        .sum();
    // The decode graph reads its whole K/V inputs (f32 in float mode) every step.
    let kv_bytes =
        2 * cfg.num_hidden_layers * cfg.num_key_value_heads * cfg.head_dim * (context_len - 1) * 4;
    let exec = CpuExecutor::new(&m, NumericMode::Float)?;
    println!(
        "== model {} ({} layers, hidden {}, {:.2} B parameters), context {context_len} ({what}), \
         loaded and weights decoded in {:.1} s",
        ckpt.display(),
        cfg.num_hidden_layers,
        cfg.hidden_size,
        params as f64 / 1e9,
        t.elapsed().as_secs_f64()
    );
    let mut sched = Scheduler::new(
        exec,
        SchedulerConfig {
            max_new_tokens: a.decode_tokens + 1,
            eos_ids: vec![],
            prefill: GraphSelect::ArLen(a.prompt_len),
            ..Default::default()
        },
    )?;
    let mut sampler = Sampler::new(SamplerConfig::greedy(), cfg.vocab_size)?;
    let prompt: Vec<u32> = (0..a.prompt_len as u32)
        .map(|i| (i * 7919) % 150_000)
        .collect();
    // Two generations, as the PyTorch baseline does: the best prefill of the two, the
    // decode steps of the second.
    let mut prefill = Duration::MAX;
    let mut s = mllm_runtime::GenerationStats::default();
    for _ in 0..2 {
        sched.reset();
        s = sched
            .generate(&prompt, &mut sampler, |_| true)
            .context("generation")?;
        prefill = prefill.min(s.prefill_time);
    }
    let flops = 2.0 * params as f64 * a.prompt_len as f64;
    println!(
        "  prefill {} tokens (one s{} chunk, best of 2): {:.2} s, {:.1} tok/s ({:.1} GFLOP/s \
         over the weights)",
        s.prompt_tokens,
        a.prompt_len,
        prefill.as_secs_f64(),
        s.prompt_tokens as f64 / prefill.as_secs_f64(),
        flops / prefill.as_secs_f64() / 1e9
    );
    let per_tok = s.decode_time.as_secs_f64() / s.decode_steps.max(1) as f64;
    let gbps = weight_bytes as f64 / per_tok / 1e9;
    let all = (weight_bytes + kv_bytes) as f64 / per_tok / 1e9;
    println!(
        "  decode {} tokens: {:.2} tok/s, {:.1} ms/token; weights streamed per token {:.2} GB \
         -> {gbps:.1} GB/s ({:.0}% of the measured read bandwidth); with the f32 KV cache \
         ({:.2} GB read per step) {all:.1} GB/s ({:.0}%); host overhead {:.1} us/step after the first step (first step {:.0} us: the prompt's entries \
         re-strided into the decode layout)",
        s.decode_steps,
        s.decode_tok_per_s(),
        per_tok * 1e3,
        weight_bytes as f64 / 1e9,
        100.0 * gbps / bw.read_gbps,
        kv_bytes as f64 / 1e9,
        100.0 * all / bw.read_gbps,
        s.host_overhead_per_step().as_secs_f64() * 1e6,
        s.decode_first_host_time.as_secs_f64() * 1e6
    );
    step_extras_ab(&mut sched, &prompt, &mut sampler)
}

/// Decode with and without the step extras, alternated, the decode program profiled: the host
/// overhead per step and the work around the graph's steps inside `execute` (cache writes,
/// write-out of the outputs, greedy scan), so that what moved into `execute` is counted too.
fn step_extras_ab(
    sched: &mut Scheduler<CpuExecutor>,
    prompt: &[u32],
    sampler: &mut Sampler,
) -> anyhow::Result<()> {
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let g = sched
        .decode_bindings()
        .and_then(|b| b.first().map(|b| b.graph))
        .context("no decode graph")?;
    let set_profiling = |sched: &mut Scheduler<CpuExecutor>, on: bool| {
        if let Some(p) = sched.executor_mut().program_mut(g) {
            p.set_profiling(on);
        }
    };
    // [off, on]: per round, (host, cache writes, outputs written out, greedy scan) in us per
    // steady decode step.
    let mut figures: [Vec<[f64; 4]>; 2] = [Vec::new(), Vec::new()];
    for _round in 0..2 {
        for on in [false, true] {
            sched.set_step_extras(on);
            sched.reset();
            set_profiling(sched, true);
            let s = sched
                .generate(prompt, sampler, |_| true)
                .context("generation")?;
            let io = sched
                .executor()
                .program(g)
                .map(|p| p.io_profile())
                .unwrap_or_default();
            set_profiling(sched, false);
            let steps = s.decode_steps.max(1) as f64;
            figures[on as usize].push([
                us(s.host_overhead_per_step()),
                us(io[0]) / steps,
                us(io[1]) / steps,
                us(io[2]) / steps,
            ]);
        }
    }
    sched.set_step_extras(true);
    let list = |f: &[[f64; 4]], pick: &dyn Fn(&[f64; 4]) -> f64| {
        f.iter()
            .map(|x| format!("{:.1}", pick(x)))
            .collect::<Vec<_>>()
            .join(" / ")
    };
    let show = |f: &[[f64; 4]], k: usize| list(f, &|x| x[k]);
    let total = |f: &[[f64; 4]]| list(f, &|x| x[0] + x[1] + x[2]);
    let (off, on) = (&figures[0], &figures[1]);
    println!(
        "  step extras (decode graph profiled, 2 alternated rounds, us per decode step): \
         without them, host {} (K/V commit + sampling) + outputs written out in execute {} = \
         {}; with them (K/V entries written into the cache and the greedy token taken inside \
         execute), host {} + cache writes in execute {} + outputs written out {} (greedy \
         scan {}) = {}",
        show(off, 0),
        show(off, 2),
        total(off),
        show(on, 0),
        show(on, 1),
        show(on, 2),
        show(on, 3),
        total(on),
    );
    Ok(())
}
