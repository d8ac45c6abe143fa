//! The `Pass` trait, what a pass returns, and the context it runs in.

use mllm_ir::{Function, IrError, Module, WeightStore};

/// What a successful pass did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PassResult {
    /// The IR changed.
    Changed,
    /// The IR is exactly as before.
    Unchanged,
}

impl PassResult {
    /// `Changed` if `b`.
    pub fn from_changed(b: bool) -> PassResult {
        if b {
            PassResult::Changed
        } else {
            PassResult::Unchanged
        }
    }
    /// Combines two results (changed if either changed).
    pub fn or(self, other: PassResult) -> PassResult {
        PassResult::from_changed(self == PassResult::Changed || other == PassResult::Changed)
    }
}

/// Errors of pass pipelines and passes.
#[derive(Debug, thiserror::Error)]
pub enum PassError {
    /// The pipeline text is malformed or names unknown passes/options.
    #[error("invalid pass pipeline: {0}")]
    Pipeline(String),
    /// A pass failed on some op.
    #[error("pass '{pass}' failed: {message}")]
    Failed {
        /// Pass name.
        pass: String,
        /// What went wrong (names the op).
        message: String,
    },
    /// The IR did not verify after a pass.
    #[error("verification failed after pass '{pass}': {source}")]
    Verify {
        /// Pass name.
        pass: String,
        /// Verifier diagnostic.
        source: IrError,
    },
    /// Another IR error.
    #[error(transparent)]
    Ir(#[from] IrError),
}

/// Which op a pass is anchored on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anchor {
    /// Runs on the whole `builtin.module`.
    Module,
    /// Runs on each `func.func`.
    Function,
}

impl Anchor {
    /// The op name of the anchor.
    pub fn op_name(self) -> &'static str {
        match self {
            Anchor::Module => "builtin.module",
            Anchor::Function => "func.func",
        }
    }
}

/// Statistics a pass reports (shown by `--timing`), e.g. e-graph sizes.
#[derive(Debug, Clone, Default)]
pub struct PassStats {
    /// `(name, value)` pairs in the order reported.
    pub entries: Vec<(String, String)>,
}

impl PassStats {
    /// Records one statistic.
    pub fn record(&mut self, name: impl Into<String>, value: impl ToString) {
        self.entries.push((name.into(), value.to_string()));
    }
}

/// What a function pass may touch besides the function.
pub struct FuncContext<'a> {
    /// The module's weight store (passes may add weights, e.g. slices).
    pub weights: &'a mut WeightStore,
    /// Statistics sink.
    pub stats: &'a mut PassStats,
}

/// A pass. Function passes implement [`Pass::run_on_function`]; module passes
/// implement [`Pass::run_on_module`].
pub trait Pass: Send {
    /// Registered (kebab-case) name.
    fn name(&self) -> &'static str;
    /// Op the pass is anchored on.
    fn anchor(&self) -> Anchor;
    /// Runs on one function (function passes).
    fn run_on_function(
        &mut self,
        _f: &mut Function,
        _ctx: &mut FuncContext<'_>,
    ) -> Result<PassResult, PassError> {
        Err(PassError::Failed {
            pass: self.name().into(),
            message: "this pass does not run on functions".into(),
        })
    }
    /// Runs on the module (module passes).
    fn run_on_module(
        &mut self,
        _m: &mut Module,
        _stats: &mut PassStats,
    ) -> Result<PassResult, PassError> {
        Err(PassError::Failed {
            pass: self.name().into(),
            message: "this pass does not run on modules".into(),
        })
    }
}
