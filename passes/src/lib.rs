//! `mllm-passes`: the pass infrastructure (trait, managers, MLIR pipeline grammar,
//! registry with typed options, instrumentation) and the transform passes.

pub mod dot;
pub mod driver;
pub mod egraph;
pub mod manager;
pub mod pass;
pub mod pipeline;
pub mod quant;
pub mod registry;
pub mod transforms;

pub use manager::{Instrumentation, IrPrinter, IrUnit, PassFilter, PassManager, Timing};
pub use pass::{Anchor, FuncContext, Pass, PassError, PassResult, PassStats};
pub use registry::{NamedPipeline, OptKind, OptSpec, Options, PassInfo, Registry};

/// Registers every pass and named pipeline of this crate.
pub fn register_all(r: &mut Registry) {
    r.register(transforms::cse::INFO);
    r.register(transforms::dce::INFO);
    r.register(transforms::decompose::INFO);
    r.register(transforms::canonicalize::INFO);
    r.register(transforms::linear_to_conv2d::INFO);
    r.register(transforms::lpbq_fold::INFO);
    r.register(transforms::sha_split::INFO);
    r.register(transforms::quant_fix::INFO);
    r.register(transforms::split_graph::INFO);
    r.register(quant::mask_fill::INFO);
    r.register_pipeline(NamedPipeline {
        name: "cleanup",
        summary: "canonicalize, cse and dce on every function",
        elements: "func.func(canonicalize,cse,dce)",
    });
}
