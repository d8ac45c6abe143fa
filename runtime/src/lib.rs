//! `mllm-runtime`: everything between a compiled model and generated text.
//!
//! * [`executor`] — the [`Executor`] trait the CPU reference executor and the QNN executor
//!   implement, the I/O description types and [`GraphBindings`], which resolves a graph's
//!   tensors by name against the hybrid-mode I/O contract.
//! * [`kv`] — the KV cache manager ("smart mask"): in-place cache buffers the graphs read
//!   directly, incremental mask, re-striding between prefill and decode layouts.
//! * [`scheduler`] — hybrid scheduling: chunked prefill, decode, stop conditions, statistics.
//! * [`sampler`] — greedy / temperature / top-k / top-p / repetition penalty, seeded.
//! * [`tokenizer`] — `tokenizer.json` wrapper, Qwen3 chat template, streaming detokenizer.
//! * [`npy`] — `.npy` writer for recorded logits.
//! * [`qnn`] — the QNN executor: runs the graphs of a compiled context binary (verified
//!   against its manifest) with zero-copy, allocation-free execution.
//! * [`bench`](mod@bench) — host-overhead benchmark of the scheduler.
//!
//! Nothing here allocates per generated token once a generation has started.
//!
//! # Example
//!
//! Generation with a model-shaped no-op executor (a real run uses the CPU or QNN executor
//! and a [`Tokenizer`]):
//!
//! ```
//! use mllm_runtime::bench::NoopExecutor;
//! use mllm_runtime::{ModelDims, Sampler, SamplerConfig, Scheduler, SchedulerConfig};
//!
//! let dims = ModelDims { layers: 2, kv_heads: 2, head_dim: 8, context: 64, vocab: 100 };
//! // Graphs `model.0.s16` (prefill) and `model.0.s1` (decode) following the I/O contract.
//! let exec = NoopExecutor::quantized(&dims, &[16, 1]);
//! let cfg = SchedulerConfig { max_new_tokens: 5, ..Default::default() };
//! let mut sched = Scheduler::new(exec, cfg)?;
//! let mut sampler = Sampler::new(SamplerConfig::greedy(), dims.vocab)?;
//! let prompt: Vec<u32> = (1..=20).collect();
//! let stats = sched.generate(&prompt, &mut sampler, |_token| true)?;
//! assert_eq!(stats.generated.len(), 5);
//! assert_eq!(stats.prefill_steps, 2); // 20 tokens in chunks of 16, the last one padded
//! assert_eq!(sched.kv().n_past(), 20 + 3); // the last step's entries are committed lazily
//! # Ok::<(), mllm_runtime::RuntimeError>(())
//! ```
#![deny(unsafe_code)]

pub mod bench;
pub mod buffer;
pub mod cpu;
pub mod error;
pub mod executor;
pub mod kv;
pub mod npy;
pub mod qnn;
pub mod sampler;
pub mod scheduler;
pub mod tokenizer;

pub use buffer::AlignedBytes;
pub use error::{Result, RuntimeError};
pub use executor::{
    CacheWrite, DType, Executor, ExtrasDone, GraphBindings, GraphDesc, GraphInput, InputRole,
    ModelDims, Quant, StepExtras, TensorDesc,
};
pub use kv::KvCache;
pub use qnn::{QnnExecutor, QnnOptions};
pub use sampler::{Sampler, SamplerConfig};
pub use scheduler::{GenerationStats, Scheduler, SchedulerConfig, StopReason};
pub use tokenizer::{ChatSession, StreamDecoder, Tokenizer};
