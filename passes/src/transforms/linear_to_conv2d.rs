//! `linear-to-conv2d`: every `nn.linear` against a `[N, K]` weight becomes a 1x1
//! `nn.conv2d` over NHWC `[1, 1, M, K]` with an HWIO `[1, 1, K, N]` weight, with the
//! reshapes around it (rule `linear-to-conv2d`, e-graph rule set `layout` plus
//! `canonical` so back-to-back reshapes/transposes cancel).
//!
//! Contract: values are unchanged (the conv computes the same sums); the weight's
//! transpose/reshape are static data movement folded by the backend, and an LPBQ or
//! per-axis encoding moves with it (axis 0 of `[N, K]` -> axis 3 of HWIO). HTP runs
//! LPBQ linears correctly only as this conv (see qnn-abi.md).

use mllm_ir::Function;

use crate::egraph::{rewrite_function, rules, Limits, Rule, LIMIT_OPTIONS};
use crate::pass::{Anchor, FuncContext, Pass, PassError, PassResult};
use crate::registry::{Options, PassInfo};

/// The pass.
pub struct LinearToConv2d {
    limits: Limits,
}

/// Registry entry.
pub const INFO: PassInfo = PassInfo {
    name: "linear-to-conv2d",
    summary: "Turn linear layers into 1x1 conv2d with HWIO weights (e-graph rules `layout` + `canonical`)",
    anchor: Anchor::Function,
    options: &LIMIT_OPTIONS,
    create: |o: &Options| {
        Ok(Box::new(LinearToConv2d {
            limits: Limits::from_options(o),
        }))
    },
};

impl Pass for LinearToConv2d {
    fn name(&self) -> &'static str {
        "linear-to-conv2d"
    }
    fn anchor(&self) -> Anchor {
        Anchor::Function
    }
    fn run_on_function(
        &mut self,
        f: &mut Function,
        ctx: &mut FuncContext<'_>,
    ) -> Result<PassResult, PassError> {
        let set: Vec<&dyn Rule> = rules::layout::RULES
            .iter()
            .chain(rules::canonical::RULES)
            .copied()
            .collect();
        let changed = rewrite_function(f, &set, self.limits, ctx.stats, "linear-to-conv2d")?;
        Ok(PassResult::from_changed(changed))
    }
}
