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
//! * [`bench`](mod@bench) — host-overhead benchmark of the scheduler.
//!
//! Nothing here allocates per generated token once a generation has started.
#![deny(unsafe_code)]

pub mod bench;
pub mod buffer;
pub mod cpu;
pub mod error;
pub mod executor;
pub mod kv;
pub mod npy;
pub mod sampler;
pub mod scheduler;
pub mod tokenizer;

pub use buffer::AlignedBytes;
pub use error::{Result, RuntimeError};
pub use executor::{
    DType, Executor, GraphBindings, GraphDesc, InputRole, ModelDims, Quant, TensorDesc,
};
pub use kv::KvCache;
pub use sampler::{Sampler, SamplerConfig};
pub use scheduler::{GenerationStats, Scheduler, SchedulerConfig, StopReason};
pub use tokenizer::{ChatSession, StreamDecoder, Tokenizer};
