//! `canonicalize`: local simplifications that never change values, run on the
//! e-graph driver with the `canonical` rule set (see `egraph/rules/canonical.rs` for
//! the table of rules: reshape/transpose chains, identity reshape/transpose/slice/
//! concat/requantize, mul by 1, add/sub of 0, quantize(dequantize(q)) -> q).
//!
//! Contract: every value keeps its exact type (encoding included); the extracted
//! program is the cheapest under the QNN cost model, never more expensive than the
//! input; dead ops are erased.

use mllm_ir::Function;

use crate::egraph::{rewrite_function, rules::canonical, Limits, LIMIT_OPTIONS};
use crate::pass::{Anchor, FuncContext, Pass, PassError, PassResult};
use crate::registry::{Options, PassInfo};

/// The pass.
pub struct Canonicalize {
    limits: Limits,
}

/// Registry entry.
pub const INFO: PassInfo = PassInfo {
    name: "canonicalize",
    summary: "Fold reshape/transpose chains and identity ops (e-graph rules `canonical`)",
    anchor: Anchor::Function,
    options: &LIMIT_OPTIONS,
    create: |o: &Options| {
        Ok(Box::new(Canonicalize {
            limits: Limits::from_options(o),
        }))
    },
};

impl Pass for Canonicalize {
    fn name(&self) -> &'static str {
        "canonicalize"
    }
    fn anchor(&self) -> Anchor {
        Anchor::Function
    }
    fn run_on_function(
        &mut self,
        f: &mut Function,
        ctx: &mut FuncContext<'_>,
    ) -> Result<PassResult, PassError> {
        let changed =
            rewrite_function(f, canonical::RULES, self.limits, ctx.stats, "canonicalize")?;
        Ok(PassResult::from_changed(changed))
    }
}
