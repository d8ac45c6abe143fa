//! Errors and source locations of the IR crate.

use std::fmt;
use std::sync::Arc;

/// A position in a source file (1-based line and column).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// File name (`<stdin>` when read from standard input).
    pub file: Arc<str>,
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub col: u32,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.col)
    }
}

/// A diagnostic: where and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Where, if known.
    pub loc: Option<Location>,
    /// What went wrong.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.loc {
            Some(l) => write!(f, "{l}: error: {}", self.message),
            None => write!(f, "error: {}", self.message),
        }
    }
}

/// Errors of the IR crate.
#[derive(Debug, thiserror::Error)]
pub enum IrError {
    /// The text could not be parsed.
    #[error("{0}")]
    Parse(Diagnostic),
    /// The module is not valid.
    #[error("{0}")]
    Verify(Diagnostic),
    /// A builder was misused (bad shapes or attributes).
    #[error("error: {0}")]
    Build(String),
    /// A weight-store problem.
    #[error("error: {0}")]
    Weight(String),
}

impl IrError {
    /// The diagnostic, for parse and verify errors.
    pub fn diagnostic(&self) -> Option<&Diagnostic> {
        match self {
            IrError::Parse(d) | IrError::Verify(d) => Some(d),
            _ => None,
        }
    }
}
