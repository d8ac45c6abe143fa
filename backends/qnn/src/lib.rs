//! `mllm-backend-qnn`: lowering of the IR to QNN graphs and emission of QNN context
//! binaries for the Hexagon NPU (HTP).
//!
//! - [`lower`]: one IR function -> one QNN graph (types, encodings, op mapping).
//! - [`fold`]: weight chains (slice/transpose/reshape over `builtin.weight` /
//!   `builtin.constant`) folded into static tensor bytes, one weight at a time.
//! - [`binary`]: a whole module -> one context binary (`model.bin`) and its manifest per
//!   shard (weight sharing on by default; shard file naming).
//! - [`manifest`]: the sidecar `model.bin.json` (no IR dependency; shared with the
//!   runtime) and its loader-side verification.
//!
//! LPBQ linears must be 1x1 `Conv2d` with HWIO weights (QNN's blockwise
//! `FullyConnected` is broken unless K == N): run the `linear-to-conv2d` pass before
//! lowering; an LPBQ `nn.linear` is reported as an error.

pub mod binary;
pub mod emulate;
pub mod fold;
pub mod lower;
/// The sidecar manifest (lives in `mllm-qnn-sys` so the runtime can read it).
pub use mllm_qnn_sys::manifest;

pub use binary::{
    compile_module, compile_module_with_progress, num_shards, shard_functions, shard_path,
    write_model, CompileError, CompileEvent, CompileOptions, Compiled, GraphStats,
};
pub use lower::{lower_function, qnn_type, IoTensor, LowerError, LoweredGraph};
pub use manifest::{verify_manifest, Manifest, ManifestError};
