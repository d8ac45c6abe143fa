//! The error type of the frontends crate.
//!
//! Every variant names the file and, where one is involved, the tensor, so a message printed once
//! at the top level is enough to find the problem.

use std::path::PathBuf;

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while reading, checking, converting or generating checkpoints.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An operating-system I/O error on `path`. The I/O error is part of the message (and
    /// deliberately not a `source()`, so that chained printing does not repeat it).
    #[error("{}: {error}", path.display())]
    Io {
        /// File or directory involved.
        path: PathBuf,
        /// The underlying error.
        error: std::io::Error,
    },
    /// A malformed safetensors file (header, offsets, dtype or shape).
    #[error("{}: invalid safetensors file: {msg}", path.display())]
    Safetensors {
        /// The file.
        path: PathBuf,
        /// What is wrong (names the tensor when one is involved).
        msg: String,
    },
    /// A malformed `.mllm` v2 file.
    #[error("{}: invalid .mllm file: {msg}", path.display())]
    Mllm {
        /// The file.
        path: PathBuf,
        /// What is wrong (names the tensor when one is involved).
        msg: String,
    },
    /// A `.mllm` descriptor whose dtype code this crate does not know.
    #[error("{}: unknown dtype code {code} for tensor {tensor}", path.display())]
    UnknownDtypeCode {
        /// The file.
        path: PathBuf,
        /// Tensor name.
        tensor: String,
        /// The dtype code found.
        code: u32,
    },
    /// A sharded checkpoint whose index is inconsistent, or a path that is no checkpoint.
    #[error("{}: invalid checkpoint: {msg}", path.display())]
    Checkpoint {
        /// The checkpoint path (file, directory or index).
        path: PathBuf,
        /// What is wrong.
        msg: String,
    },
    /// A tensor that was asked for by name and is not in the checkpoint.
    #[error("{}: no tensor named {name}", path.display())]
    TensorNotFound {
        /// The checkpoint path.
        path: PathBuf,
        /// The missing tensor.
        name: String,
    },
    /// An operation a tensor's dtype does not support (e.g. converting int4 to f32, or writing it
    /// to safetensors).
    #[error("tensor {tensor}: {msg}")]
    Tensor {
        /// Tensor name.
        tensor: String,
        /// What is wrong.
        msg: String,
    },
    /// An invalid `config.json`.
    #[error("{}: invalid config: {msg}", path.display())]
    Config {
        /// The config file.
        path: PathBuf,
        /// What is wrong.
        msg: String,
    },
    /// A `config.json` for an architecture this crate does not build.
    #[error("{}: unsupported model_type {model_type:?} (supported: \"qwen3\")", path.display())]
    UnsupportedModel {
        /// The config file.
        path: PathBuf,
        /// The `model_type` (or architecture) found.
        model_type: String,
    },
    /// A tensor the config needs and the checkpoint lacks.
    #[error("missing tensor {name} for config")]
    MissingTensor {
        /// Tensor name.
        name: String,
    },
    /// A tensor whose shape does not match the config.
    #[error("tensor {name} has shape {got:?}, config needs {want:?}")]
    ShapeMismatch {
        /// Tensor name.
        name: String,
        /// Shape in the checkpoint.
        got: Vec<usize>,
        /// Shape the config implies.
        want: Vec<usize>,
    },
    /// Misuse of a streaming writer, or a tensor that cannot be written to the target format.
    #[error("{}: {msg}", path.display())]
    Write {
        /// The output file.
        path: PathBuf,
        /// What is wrong.
        msg: String,
    },
}

impl Error {
    /// Wraps an I/O error with the path it happened on.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            error: source,
        }
    }
}
