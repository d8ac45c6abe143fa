//! Errors of the CPU executor. Every message names the op, tensor or weight concerned.

/// A failure to compile or run a function on the CPU.
#[derive(Debug, thiserror::Error)]
pub enum CpuError {
    /// An op (or a combination of types / attributes) the executor does not implement.
    #[error("function @{func}: op {op}: {msg}")]
    Unsupported {
        /// Function name.
        func: String,
        /// Op kind and symbolic name.
        op: String,
        /// What is not supported.
        msg: String,
    },
    /// A weight could not be decoded.
    #[error("weight \"{name}\": {msg}")]
    Weight {
        /// Weight name.
        name: String,
        /// Cause.
        msg: String,
    },
    /// A graph input has the wrong size, count or content.
    #[error("function @{func}: input `{tensor}`: {msg}")]
    Input {
        /// Function name.
        func: String,
        /// Input name.
        tensor: String,
        /// Cause.
        msg: String,
    },
    /// An index read at run time (gather / embedding) is out of range.
    #[error("function @{func}: op {op}: {msg}")]
    Index {
        /// Function name.
        func: String,
        /// Op kind and symbolic name.
        op: String,
        /// Which index.
        msg: String,
    },
    /// The function does not pass the IR verifier.
    #[error("function @{func} does not verify: {msg}")]
    Verify {
        /// Function name.
        func: String,
        /// The verifier's message.
        msg: String,
    },
    /// A graph or tensor does not exist.
    #[error("{0}")]
    NotFound(String),
}
