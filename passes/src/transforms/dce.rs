//! `dce`: dead-code elimination.
//!
//! Contract: a pure op none of whose results is used by a linked op is erased,
//! repeatedly, so whole dead chains go in one run (reverse walk with use counts).
//! Function arguments are never removed (they are the graph's I/O contract).

use mllm_ir::Function;

use crate::pass::{Anchor, FuncContext, Pass, PassError, PassResult};
use crate::registry::{Options, PassInfo};

/// The pass.
pub struct Dce;

/// Registry entry.
pub const INFO: PassInfo = PassInfo {
    name: "dce",
    summary: "Erase pure ops whose results are unused",
    anchor: Anchor::Function,
    options: &[],
    create: |_: &Options| Ok(Box::new(Dce)),
};

/// Runs DCE on a function; returns whether anything changed.
pub fn dce(f: &mut Function) -> bool {
    let mut uses = f.use_counts();
    let mut changed = false;
    let mut ops = f.op_ids();
    ops.reverse();
    for op in ops {
        let o = f.op(op);
        if !o.kind.info().pure || o.results.iter().any(|r| uses[r.index()] > 0) {
            continue;
        }
        for v in o.operands.clone() {
            uses[v.index()] -= 1;
        }
        f.unlink(op);
        changed = true;
    }
    changed
}

impl Pass for Dce {
    fn name(&self) -> &'static str {
        "dce"
    }
    fn anchor(&self) -> Anchor {
        Anchor::Function
    }
    fn run_on_function(
        &mut self,
        f: &mut Function,
        _: &mut FuncContext<'_>,
    ) -> Result<PassResult, PassError> {
        Ok(PassResult::from_changed(dce(f)))
    }
}
