//! Error type of the crate: every failure names the function, file, tensor or
//! op involved, and library failures carry the QNN code and message.

use std::path::PathBuf;

/// Command that installs the QNN libraries into the project.
pub const INSTALL_HINT: &str = "scripts/setup-qnn.sh";

/// Errors of the QNN wrappers.
#[derive(Debug, thiserror::Error)]
pub enum QnnError {
    /// No directory holding the QNN libraries was found.
    #[error(
        "QNN library {library} not found (searched: {searched}). Install it with \
         `{INSTALL_HINT}`, or point --qnn-lib-dir / MLLM_QNN_LIB_DIR / QNN_SDK_ROOT at an existing copy"
    )]
    LibraryNotFound {
        /// File name that was looked for.
        library: &'static str,
        /// Human-readable list of the places searched.
        searched: String,
    },
    /// An explicitly requested directory does not hold the library.
    #[error(
        "{library} not found in {dir} (given by {source_name}). Install the QNN libraries with \
         `{INSTALL_HINT}` or fix the path"
    )]
    NotInDir {
        /// File name that was looked for.
        library: &'static str,
        /// Directory that was given.
        dir: PathBuf,
        /// Where the directory came from (flag, env var).
        source_name: String,
    },
    /// `dlopen` failed.
    #[error("failed to load {path}: {source} (missing dependency? re-run `{INSTALL_HINT}`)")]
    Load {
        /// Library path.
        path: PathBuf,
        /// Loader error.
        #[source]
        source: libloading::Error,
    },
    /// An entry point is missing from a library.
    #[error("{path} does not export {symbol}: {source}")]
    MissingSymbol {
        /// Library path.
        path: PathBuf,
        /// Symbol name.
        symbol: &'static str,
        /// Loader error.
        #[source]
        source: libloading::Error,
    },
    /// No provider with a compatible API version.
    #[error(
        "{path}: no compatible QNN provider: need {api} API {need_major}.>={need_minor}, found {found}"
    )]
    Version {
        /// Library path.
        path: PathBuf,
        /// "core" or "system".
        api: &'static str,
        /// Required major version.
        need_major: u32,
        /// Minimum minor version.
        need_minor: u32,
        /// Description of the providers that were found.
        found: String,
    },
    /// A function-table slot is empty.
    #[error("QNN function {function} is not provided by this library")]
    MissingFunction {
        /// Function name.
        function: &'static str,
    },
    /// A QNN call returned an error.
    #[error("{function} failed{}: QNN error {code} ({message}){}",
        subject_suffix(.subject), log_suffix(.log))]
    Api {
        /// QNN function name.
        function: &'static str,
        /// What the call was about (graph, tensor, op name), possibly empty.
        subject: String,
        /// Error code (low 16 bits of the error handle).
        code: u16,
        /// Full error handle.
        handle: u64,
        /// Text from `errorGetMessage`.
        message: String,
        /// Error/warning lines the library logged during the call.
        log: Vec<String>,
    },
    /// Input rejected before calling into the library.
    #[error("invalid argument for {subject}: {reason}")]
    InvalidArgument {
        /// Graph, tensor or op the argument belongs to.
        subject: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A caller buffer does not have the tensor's exact byte size.
    #[error("buffer for tensor '{tensor}' of graph '{graph}' has {actual} bytes, expected exactly {expected}")]
    BufferSize {
        /// Graph name.
        graph: String,
        /// Tensor name.
        tensor: String,
        /// Required size in bytes.
        expected: usize,
        /// Given size in bytes.
        actual: usize,
    },
    /// Data returned by the library could not be interpreted.
    #[error("unexpected data from {function}: {reason}")]
    Malformed {
        /// QNN function that returned it.
        function: &'static str,
        /// What is wrong.
        reason: String,
    },
}

fn subject_suffix(subject: &str) -> String {
    if subject.is_empty() {
        String::new()
    } else {
        format!(" for {subject}")
    }
}

fn log_suffix(log: &[String]) -> String {
    if log.is_empty() {
        String::new()
    } else {
        format!("; library log: {}", log.join(" | "))
    }
}

impl QnnError {
    /// The QNN error code when this is a library error.
    pub fn code(&self) -> Option<u16> {
        match self {
            QnnError::Api { code, .. } => Some(*code),
            _ => None,
        }
    }

    pub(crate) fn invalid(subject: impl Into<String>, reason: impl Into<String>) -> Self {
        QnnError::InvalidArgument {
            subject: subject.into(),
            reason: reason.into(),
        }
    }
}

/// Result alias of the crate.
pub type Result<T, E = QnnError> = std::result::Result<T, E>;
