//! The runtime's error type.

use std::path::PathBuf;

/// Every error the runtime returns. Messages name the graph, tensor or file concerned.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// A graph's inputs/outputs do not follow the I/O contract (missing, misnamed or mis-shaped tensor).
    #[error("graph `{graph}`: {msg}")]
    Contract {
        /// Name of the offending graph.
        graph: String,
        /// What is wrong, naming the tensor.
        msg: String,
    },
    /// A buffer handed to an executor or to the KV manager has the wrong size or count.
    #[error("{what}: expected {expected} bytes, got {got}")]
    BufferSize {
        /// Which buffer (graph and tensor name).
        what: String,
        /// Expected size in bytes.
        expected: usize,
        /// Actual size in bytes.
        got: usize,
    },
    /// An executor failed while running a graph.
    #[error("executor `{executor}` failed on graph `{graph}`: {msg}")]
    Execute {
        /// Executor name.
        executor: String,
        /// Graph name.
        graph: String,
        /// Cause.
        msg: String,
    },
    /// No graph matches the request (e.g. an `--ar_len` the context does not hold).
    #[error("{msg}; available graphs: {available}")]
    GraphNotFound {
        /// What was asked for.
        msg: String,
        /// The graphs the executor offers, as `name (ar_len N)`.
        available: String,
    },
    /// The prompt does not fit in the context window.
    #[error("prompt of {prompt} tokens does not fit in the context of {context} tokens{detail}")]
    PromptTooLong {
        /// Tokens that would have to be in the cache (reused history + new prompt).
        prompt: usize,
        /// Context length C.
        context: usize,
        /// Extra explanation (may be empty).
        detail: String,
    },
    /// The KV cache cannot hold what was asked of it.
    #[error("KV cache: {0}")]
    Cache(String),
    /// Invalid configuration value.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// Tokenizer load / encode / decode failure.
    #[error("tokenizer `{path}`: {msg}")]
    Tokenizer {
        /// The tokenizer file (or `<memory>`).
        path: String,
        /// Cause.
        msg: String,
    },
    /// File system error.
    #[error("{path}: {source}")]
    Io {
        /// File concerned.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
}

/// Shorthand result type.
pub type Result<T, E = RuntimeError> = std::result::Result<T, E>;
