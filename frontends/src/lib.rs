//! Checkpoint frontends of the mllm QNN AOT flow.
//!
//! - [`safetensors`]: validated, memory-mapped safetensors reading (single file or sharded) and a
//!   streaming writer;
//! - [`mllm_file`]: the `.mllm` v2 parameter file (reader, writer in static and streaming layouts,
//!   streaming conversion to and from safetensors);
//! - [`checkpoint`]: the format-independent [`Checkpoint`] with zero-copy [`TensorView`]s;
//! - [`config`]: Hugging Face Qwen3 `config.json` parsing ([`Qwen3Config`]) and the check that a
//!   checkpoint has every tensor a config needs;
//! - [`synth`]: deterministic synthetic Qwen3 checkpoints for tests and benchmarks;
//! - [`dtype`]: the element types shared by all of the above.
//!
//! ```no_run
//! use mllm_frontends::{Checkpoint, Qwen3Config};
//! # fn main() -> mllm_frontends::Result<()> {
//! let config = Qwen3Config::from_file("model/config.json")?;
//! let ckpt = Checkpoint::open("model")?;
//! let lm_head = config.check_checkpoint(&ckpt)?;
//! let embed = ckpt.tensor("model.embed_tokens.weight")?.to_f32_vec()?;
//! # let _ = (lm_head, embed); Ok(()) }
//! ```

// The only `unsafe` is the memory-mapping of checkpoint files (checkpoint.rs, two functions).
#![deny(unsafe_code)]

pub mod checkpoint;
pub mod config;
pub mod dtype;
pub mod error;
pub mod mllm_file;
mod payload;
pub mod safetensors;
pub mod synth;
pub mod weights;

// Model builders on top of the IR (added by the model-builder work):
pub mod pymllm;
pub mod qwen3;

pub use checkpoint::{Checkpoint, CheckpointFormat, Progress, ScanReport, TensorInfo, TensorView};
pub use config::{LmHead, Qwen3Config};
pub use dtype::DType;
pub use error::{Error, Result};
pub use mllm_file::{MllmLayout, MllmWriter};
pub use safetensors::{SafetensorsWriter, TensorSpec};
