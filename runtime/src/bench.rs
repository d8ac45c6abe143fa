//! Host-overhead benchmark of the scheduler (used by `mllm bench runtime`).
//!
//! Runs decode steps of a model-shaped no-op executor (the graph does nothing, so everything
//! measured is the runtime's own work: KV commit, mask update, I/O table setup, sampling).

use std::time::{Duration, Instant};

use crate::error::Result;
use crate::executor::{DType, Executor, GraphDesc, ModelDims, Quant, TensorDesc};
use crate::sampler::{Sampler, SamplerConfig};
use crate::scheduler::{GraphSelect, Scheduler, SchedulerConfig};

/// An executor whose graphs follow the contract for `dims` and whose `execute` does nothing
/// (outputs keep whatever bytes they hold).
#[derive(Clone, Debug)]
pub struct NoopExecutor {
    graphs: Vec<GraphDesc>,
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
        }
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
    inputs.extend((0..layers).map(|l| t(format!("past_key_{l}"), vec![1, h, d, c - s])));
    inputs.extend((0..layers).map(|l| t(format!("past_value_{l}"), vec![1, h, c - s, d])));
    let mut outputs =
        vec![TensorDesc::new("logits", logits, vec![1, s, v]).with_quant(logits_quant)];
    outputs.extend((0..layers).map(|l| t(format!("present_key_{l}"), vec![1, h, d, s])));
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
        if let Some(g) = self.graphs.get(graph) {
            g.check_buffers(inputs, outputs)?;
        }
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
    /// Mean host time per decode step, excluding `execute`.
    pub per_step: Duration,
    /// Fastest single step, wall time between two streamed tokens (the no-op `execute`
    /// included).
    pub min_step: Duration,
    /// Heap allocations per decode step, if an allocation counter was supplied.
    pub allocs_per_step: Option<f64>,
}

impl std::fmt::Display for OverheadReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let d = &self.dims;
        write!(
            f,
            "scheduler overhead (L {}, Hkv {}, D {}, C {}, V {}, u8 KV): {:.1} us/step mean over {} steps, \
             {:.1} us fastest step",
            d.layers,
            d.kv_heads,
            d.head_dim,
            d.context,
            d.vocab,
            self.per_step.as_secs_f64() * 1e6,
            self.steps,
            self.min_step.as_secs_f64() * 1e6
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
/// (`steps + 1 <= dims.context`). `alloc_count`, if given, returns the process' allocation
/// count so far (a counting global allocator installed by the caller); allocations are counted
/// across the whole decode loop, after the first token.
pub fn bench_decode_overhead(
    dims: ModelDims,
    steps: usize,
    alloc_count: Option<&dyn Fn() -> u64>,
) -> Result<OverheadReport> {
    let exec = NoopExecutor::quantized(&dims, &[1]);
    let cfg = SchedulerConfig {
        max_new_tokens: steps + 1,
        eos_ids: vec![],
        prefill: GraphSelect::Disabled,
        ..Default::default()
    };
    let mut sched = Scheduler::new(exec, cfg)?;
    let mut sampler = Sampler::new(SamplerConfig::greedy(), dims.vocab)?;
    let mut first_allocs = None;
    let mut last_allocs = 0;
    let mut count = 0usize;
    let mut min_step = Duration::MAX;
    let mut last = Instant::now();
    let stats = sched.generate(&[1], &mut sampler, |_| {
        let now = Instant::now();
        if count >= 1 {
            min_step = min_step.min(now - last);
        }
        count += 1;
        if let Some(f) = alloc_count {
            let a = f();
            first_allocs.get_or_insert(a);
            last_allocs = a;
        }
        last = Instant::now();
        true
    })?;
    let allocs_per_step = first_allocs.map(|a0| {
        let n = stats.decode_steps.max(1) as f64;
        (last_allocs - a0) as f64 / n
    });
    Ok(OverheadReport {
        dims,
        steps: stats.decode_steps,
        per_step: stats.host_overhead_per_step(),
        min_step,
        allocs_per_step,
    })
}
