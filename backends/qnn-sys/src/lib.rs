//! `mllm-qnn-sys`: the QNN C ABI (hand-written, layout-tested), library
//! discovery and loading, and safe wrappers used by both the compiler backend
//! (build graphs op by op, save a context binary) and the runtime (load a
//! binary, retrieve graphs, execute with caller buffers).
//!
//! Object graph and free order: a [`Graph`] keeps its [`Context`] alive, a
//! context keeps its [`Device`] and [`Backend`], a device its backend, and the
//! backend frees its log handle last. Every failing library call returns a
//! [`QnnError::Api`] with the function name, numeric code and
//! `errorGetMessage` text; arguments are validated before any call.
//!
//! ```no_run
//! use mllm_qnn_sys::*;
//! let lib = QnnLibrary::load(None)?;
//! let backend = Backend::new(&lib)?;
//! let device = Device::new(&backend, DeviceTarget::soc(57))?;
//! let ctx = Context::new(&backend, &device, ContextOptions::default())?;
//! let mut g = GraphBuilder::create(&ctx, "add", GraphOptions::default())?;
//! let q = Quant::ScaleOffset { scale: 1.0 / 65535.0, offset: 0 };
//! let a = g.add_tensor(TensorSpec::new("a", TensorKind::AppWrite, DataType::UFixed16, &[1, 4], q.clone()))?;
//! let b = g.add_tensor(TensorSpec::new("b", TensorKind::AppWrite, DataType::UFixed16, &[1, 4], q.clone()))?;
//! let y = g.add_tensor(TensorSpec::new("y", TensorKind::AppRead, DataType::UFixed16, &[1, 4], q))?;
//! g.add_node(OpSpec::new("add0", "ElementWiseAdd").inputs(&[a, b]).outputs(&[y]))?;
//! let mut graph = g.finalize()?;
//! let binary = ctx.binary()?;
//! # Ok::<(), QnnError>(())
//! ```

mod backend;
mod context;
pub mod discover;
mod error;
mod graph;
mod library;
pub mod manifest;
mod memory;
pub mod sys;
mod system;
mod types;

pub use backend::{Backend, Device, DeviceTarget, KNOWN_HTP_ARCHS, KNOWN_SOCS};
pub use context::{Context, ContextOptions};
pub use error::{QnnError, Result, INSTALL_HINT};
pub use graph::{
    Graph, GraphBuilder, GraphOptions, Input, OpSpec, Output, Param, TensorId, DEFAULT_PACKAGE,
    MAX_VTCM_MB,
};
pub use library::{
    describe_code, QnnLibrary, REQUIRED_CORE_MAJOR, REQUIRED_CORE_MINOR, REQUIRED_SYSTEM_MAJOR,
};
pub use memory::{release_pages, trim_heap};
pub use system::{BinaryInfo, GraphInfo, SystemContext};
pub use types::{DataType, Quant, ScalarValue, TensorInfo, TensorKind, TensorSpec, MAX_RANK};
