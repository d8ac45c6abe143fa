//! Host-overhead benchmark of the scheduler and a memory-bandwidth baseline (used by
//! `mllm bench runtime`).
//!
//! Runs decode steps of a model-shaped no-op executor (the graph does nothing, so everything
//! measured is the runtime's own work: KV commit, mask update, I/O table setup, sampling).
//! The no-op graph can also stream through a large buffer ([`NoopExecutor::evicting`]), so
//! the runtime's work runs with the caches as cold as after a real graph execution.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rayon::prelude::*;

use crate::error::Result;
use crate::executor::{DType, Executor, GraphDesc, ModelDims, Quant, TensorDesc};
use crate::sampler::{Sampler, SamplerConfig};
use crate::scheduler::{GraphSelect, Scheduler, SchedulerConfig};

/// An executor whose graphs follow the contract for `dims` and whose `execute` does nothing
/// (outputs keep whatever bytes they hold).
#[derive(Clone, Debug)]
pub struct NoopExecutor {
    graphs: Vec<GraphDesc>,
    /// Read in full by every `execute` (evicts the caches like a real graph does).
    evict: Arc<Vec<u64>>,
    /// Nanoseconds spent in `execute` so far (shared with the benchmark).
    exec_ns: Arc<AtomicU64>,
}

impl NoopExecutor {
    /// Graphs `model.0.s{S}` for each S in `ar_lens`, quantized layout (u8 KV with offset -128,
    /// u16 mask, u16 logits).
    pub fn quantized(dims: &ModelDims, ar_lens: &[usize]) -> NoopExecutor {
        let kvq = Quant::PerTensor {
            scale: 0.05,
            offset: -128,
        };
        let lq = Quant::PerTensor {
            scale: 0.001,
            offset: -32768,
        };
        NoopExecutor {
            graphs: ar_lens
                .iter()
                .map(|&s| {
                    contract_graph(
                        &format!("model.0.s{s}"),
                        s,
                        dims,
                        DType::U8,
                        kvq,
                        DType::U16,
                        DType::U16,
                        lq,
                    )
                })
                .collect(),
            evict: Arc::new(Vec::new()),
            exec_ns: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Makes every `execute` read `bytes` of memory (a buffer allocated here, 0: nothing),
    /// like a graph that streams its weights and the KV cache.
    pub fn evicting(mut self, bytes: usize) -> NoopExecutor {
        self.evict = Arc::new((0..bytes / 8).map(|i| i as u64).collect());
        self
    }

    /// Total time spent in `execute` so far.
    pub fn execute_time(&self) -> Duration {
        Duration::from_nanos(self.exec_ns.load(Ordering::Relaxed))
    }
}

/// Builds a contract-conforming graph description (inputs and outputs in contract order).
#[allow(clippy::too_many_arguments)]
pub fn contract_graph(
    name: &str,
    s: usize,
    dims: &ModelDims,
    kv: DType,
    kv_quant: Quant,
    mask: DType,
    logits: DType,
    logits_quant: Quant,
) -> GraphDesc {
    let ModelDims {
        layers,
        kv_heads: h,
        head_dim: d,
        context: c,
        vocab: v,
    } = *dims;
    let t = |n: String, shape: Vec<usize>| TensorDesc::new(n, kv, shape).with_quant(kv_quant);
    let mut inputs = vec![
        TensorDesc::new("sequence", DType::I32, vec![1, s]),
        TensorDesc::new("position_ids", DType::I32, vec![s]),
        TensorDesc::new("causal_mask", mask, vec![1, 1, s, c]),
    ];
    inputs.extend((0..layers).map(|l| t(format!("past_key_{l}"), vec![1, h, c - s, d])));
    inputs.extend((0..layers).map(|l| t(format!("past_value_{l}"), vec![1, h, c - s, d])));
    let mut outputs =
        vec![TensorDesc::new("logits", logits, vec![1, s, v]).with_quant(logits_quant)];
    outputs.extend((0..layers).map(|l| t(format!("present_key_{l}"), vec![1, h, s, d])));
    outputs.extend((0..layers).map(|l| t(format!("present_value_{l}"), vec![1, h, s, d])));
    GraphDesc {
        name: name.into(),
        ar_len: s,
        inputs,
        outputs,
    }
}

impl Executor for NoopExecutor {
    fn name(&self) -> &str {
        "noop"
    }
    fn graphs(&self) -> &[GraphDesc] {
        &self.graphs
    }
    fn execute(&mut self, graph: usize, inputs: &[&[u8]], outputs: &mut [&mut [u8]]) -> Result<()> {
        let t = Instant::now();
        if let Some(g) = self.graphs.get(graph) {
            g.check_buffers(inputs, outputs)?;
        }
        if !self.evict.is_empty() {
            let sum = self
                .evict
                .par_chunks(1 << 16)
                .map(|c| c.iter().fold(0u64, |a, &x| a ^ x))
                .reduce(|| 0, |a, b| a ^ b);
            std::hint::black_box(sum);
        }
        self.exec_ns
            .fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
        Ok(())
    }
}

/// Result of [`bench_decode_overhead`].
#[derive(Clone, Debug)]
pub struct OverheadReport {
    /// Dimensions benchmarked.
    pub dims: ModelDims,
    /// Decode steps measured.
    pub steps: usize,
    /// Bytes each no-op `execute` streamed through (0: warm caches).
    pub evict_bytes: usize,
    /// Mean host time per decode step, excluding `execute`.
    pub per_step: Duration,
    /// Fastest single step, host time between two streamed tokens minus that step's
    /// `execute` time.
    pub min_step: Duration,
    /// Part of a step: committing one new K/V entry of every layer (measured in isolation;
    /// with `evict_bytes`, each commit after the same read, like a step).
    pub commit_per_step: Duration,
    /// Part of a step: greedy argmax over one u16 logits row (measured in isolation; cold
    /// like the commit).
    pub argmax_per_step: Duration,
    /// Heap allocations per decode step, if an allocation counter was supplied.
    pub allocs_per_step: Option<f64>,
}

impl std::fmt::Display for OverheadReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let d = &self.dims;
        let us = |t: Duration| t.as_secs_f64() * 1e6;
        let caches = if self.evict_bytes == 0 {
            "warm caches".to_string()
        } else {
            format!(
                "cold caches: {} MiB read by each execute",
                self.evict_bytes >> 20
            )
        };
        write!(
            f,
            "scheduler overhead (L {}, Hkv {}, D {}, C {}, V {}, u8 KV, {caches}): {:.1} us/step \
             mean over {} steps, fastest step {:.1} us (in isolation: KV commit {:.1} us, u16 \
             argmax {:.1} us)",
            d.layers,
            d.kv_heads,
            d.head_dim,
            d.context,
            d.vocab,
            us(self.per_step),
            self.steps,
            us(self.min_step),
            us(self.commit_per_step),
            us(self.argmax_per_step),
        )?;
        if let Some(a) = self.allocs_per_step {
            write!(f, ", {a:.2} allocations/step")?;
        }
        Ok(())
    }
}

/// Dimensions of the default benchmark: Qwen3-1.7B-like (28 layers, 8 KV heads, head dim 128),
/// context 1024, vocabulary 151936.
pub const BENCH_DIMS: ModelDims = ModelDims {
    layers: 28,
    kv_heads: 8,
    head_dim: 128,
    context: 1024,
    vocab: 151_936,
};

/// Measures the scheduler's host overhead per decode step (greedy sampling on u16 logits
/// included, `execute` excluded) with a no-op executor of `dims`, over `steps` decode steps
/// (generations of at most `C - 1` steps are repeated, after a cache reset, until `steps` are
/// done). `alloc_count`, if given, returns the process' (or thread's) allocation count so far —
/// a counting global allocator installed by the caller; allocations are counted between the
/// first and the last streamed token of each generation, i.e. across decode steps only.
pub fn bench_decode_overhead(
    dims: ModelDims,
    steps: usize,
    alloc_count: Option<&dyn Fn() -> u64>,
) -> Result<OverheadReport> {
    bench_decode_overhead_with(dims, steps, alloc_count, 0)
}

/// Like [`bench_decode_overhead`], with every `execute` reading `evict_bytes` of memory
/// first ([`NoopExecutor::evicting`]), so the scheduler finds the caches as a real graph
/// execution leaves them.
pub fn bench_decode_overhead_with(
    dims: ModelDims,
    steps: usize,
    alloc_count: Option<&dyn Fn() -> u64>,
    evict_bytes: usize,
) -> Result<OverheadReport> {
    let exec = NoopExecutor::quantized(&dims, &[1]).evicting(evict_bytes);
    let exec_ns = exec.exec_ns.clone();
    let evict = exec.evict.clone();
    let exec_time = || Duration::from_nanos(exec_ns.load(Ordering::Relaxed));
    let per_gen = dims.context.saturating_sub(1).max(1);
    let cfg = SchedulerConfig {
        max_new_tokens: steps.min(per_gen) + 1,
        eos_ids: vec![],
        prefill: GraphSelect::Disabled,
        ..Default::default()
    };
    let mut sched = Scheduler::new(exec, cfg)?;
    let mut sampler = Sampler::new(SamplerConfig::greedy(), dims.vocab)?;
    let mut done = 0usize;
    let mut host = Duration::ZERO;
    let mut allocs = 0u64;
    let mut min_step = Duration::MAX;
    while done < steps {
        sched.reset();
        sched.config_mut().max_new_tokens = (steps - done).min(per_gen) + 1;
        let mut first_allocs = None;
        let mut last_allocs = 0;
        let mut count = 0usize;
        let mut last = (Instant::now(), exec_time());
        let stats = sched.generate(&[1], &mut sampler, |_| {
            let now = (Instant::now(), exec_time());
            if count >= 1 {
                min_step = min_step.min((now.0 - last.0).saturating_sub(now.1 - last.1));
            }
            count += 1;
            if let Some(f) = alloc_count {
                let a = f();
                first_allocs.get_or_insert(a);
                last_allocs = a;
            }
            last = (Instant::now(), exec_time());
            true
        })?;
        if stats.decode_steps == 0 {
            break;
        }
        done += stats.decode_steps;
        host += stats.decode_time.saturating_sub(stats.decode_execute_time);
        allocs += first_allocs.map_or(0, |a0| last_allocs - a0);
    }
    // The two dominant parts, in isolation (each after the graph's read when cold).
    let cold = || {
        if !evict.is_empty() {
            let sum = evict
                .par_chunks(1 << 16)
                .map(|c| c.iter().fold(0u64, |a, &x| a ^ x))
                .reduce(|| 0, |a, b| a ^ b);
            std::hint::black_box(sum);
        }
    };
    let mut kv = crate::kv::KvCache::new(&dims, 1, DType::U16, &[1])?;
    let present = vec![0x5au8; dims.kv_heads * dims.head_dim];
    let n = if evict.is_empty() {
        steps.clamp(1, 1000)
    } else {
        steps.clamp(1, 50)
    };
    let mut commit_time = Duration::ZERO;
    for _ in 0..n {
        if !kv.has_room(1) {
            kv.reset();
        }
        cold();
        let t = Instant::now();
        kv.commit(1, 1, |_| (&present[..], &present[..]))?;
        commit_time += t.elapsed();
    }
    let commit_per_step = commit_time / n as u32;
    let row = vec![1u8; dims.vocab * 2];
    let mut argmax_time = Duration::ZERO;
    let mut sink = 0usize;
    for _ in 0..n {
        cold();
        let t = Instant::now();
        sink = sink.wrapping_add(crate::sampler::argmax_u16(std::hint::black_box(&row)));
        argmax_time += t.elapsed();
    }
    std::hint::black_box(sink);
    let argmax_per_step = argmax_time / n as u32;
    let denom = done.max(1);
    Ok(OverheadReport {
        dims,
        steps: done,
        evict_bytes,
        per_step: host / denom as u32,
        min_step,
        commit_per_step,
        argmax_per_step,
        allocs_per_step: alloc_count.map(|_| allocs as f64 / denom as f64),
    })
}

/// Result of [`memory_bandwidth`].
#[derive(Clone, Copy, Debug)]
pub struct Bandwidth {
    /// Threads that read (rayon's pool).
    pub threads: usize,
    /// Bytes of the buffer read.
    pub bytes: usize,
    /// Best read bandwidth, GB/s: every thread folds its share of the buffer (what a decode
    /// GEMV does with the weights).
    pub read_gbps: f64,
    /// Best copy bandwidth of half the buffer into a second buffer, GB/s, counting the bytes
    /// read and written.
    pub copy_gbps: f64,
}

/// Measures the machine's streaming memory bandwidth with every rayon thread, on a buffer of
/// `bytes` (choose it larger than the last-level cache), best of `iters` runs after a
/// warm-up.
pub fn memory_bandwidth(bytes: usize, iters: usize) -> Bandwidth {
    let n = (bytes / 8).max(2);
    let src: Vec<u64> = (0..n as u64).collect();
    let mut dst: Vec<u64> = (0..n as u64 / 2).collect();
    const CHUNK: usize = 1 << 16;
    let (mut read, mut copy) = (f64::INFINITY, f64::INFINITY);
    for it in 0..iters.max(1) + 1 {
        let t = Instant::now();
        let sum = src
            .par_chunks(CHUNK)
            .map(|c| c.iter().fold(0u64, |a, &x| a ^ x))
            .reduce(|| 0, |a, b| a ^ b);
        std::hint::black_box(sum);
        let r = t.elapsed().as_secs_f64();
        let t = Instant::now();
        dst.par_chunks_mut(CHUNK)
            .zip(src.par_chunks(CHUNK))
            .for_each(|(d, s)| d.copy_from_slice(&s[..d.len()]));
        std::hint::black_box(&dst);
        let c = t.elapsed().as_secs_f64();
        if it > 0 {
            read = read.min(r);
            copy = copy.min(c);
        }
    }
    Bandwidth {
        threads: rayon::current_num_threads(),
        bytes: n * 8,
        read_gbps: (n * 8) as f64 / read / 1e9,
        copy_gbps: (dst.len() * 16) as f64 / copy / 1e9,
    }
}
