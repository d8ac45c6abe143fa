//! `cse`: common-subexpression elimination.
//!
//! Contract: two pure ops with the same kind, operands (after earlier replacements),
//! attributes and result types compute the same values; every later one is erased
//! and its uses take the first one's results. `builtin.weight` ops naming the same
//! weight with the same type are merged too. Side-effecting ops (`func.return`) are
//! never touched. One forward walk; O(ops).

use std::collections::HashMap;

use mllm_ir::{Attrs, Function, OpKind, Type, ValueId};

use crate::pass::{Anchor, FuncContext, Pass, PassError, PassResult};
use crate::registry::{Options, PassInfo};

/// The pass.
pub struct Cse;

/// Registry entry.
pub const INFO: PassInfo = PassInfo {
    name: "cse",
    summary: "Eliminate common subexpressions",
    anchor: Anchor::Function,
    options: &[],
    create: |_: &Options| Ok(Box::new(Cse)),
};

#[derive(PartialEq, Eq, Hash)]
struct Key {
    kind: OpKind,
    operands: Vec<ValueId>,
    attrs: Attrs,
    types: Vec<Type>,
}

/// Runs CSE on a function; returns whether anything changed.
pub fn cse(f: &mut Function) -> bool {
    let mut seen: HashMap<Key, Vec<ValueId>> = HashMap::new();
    let mut subst: HashMap<ValueId, ValueId> = HashMap::new();
    let mut changed = false;
    for op in f.op_ids() {
        if !subst.is_empty() {
            let o = f.op_mut(op);
            for v in o.operands.iter_mut() {
                if let Some(n) = subst.get(v) {
                    *v = *n;
                }
            }
        }
        let o = f.op(op);
        if !o.kind.info().pure || o.results.is_empty() {
            continue;
        }
        let key = Key {
            kind: o.kind,
            operands: o.operands.to_vec(),
            attrs: o.attrs.clone(),
            types: o.results.iter().map(|r| f.ty(*r).clone()).collect(),
        };
        match seen.get(&key) {
            Some(prev) => {
                for (r, p) in o.results.clone().iter().zip(prev.clone()) {
                    subst.insert(*r, p);
                }
                f.unlink(op);
                changed = true;
            }
            None => {
                seen.insert(key, o.results.to_vec());
            }
        }
    }
    changed
}

impl Pass for Cse {
    fn name(&self) -> &'static str {
        "cse"
    }
    fn anchor(&self) -> Anchor {
        Anchor::Function
    }
    fn run_on_function(
        &mut self,
        f: &mut Function,
        _: &mut FuncContext<'_>,
    ) -> Result<PassResult, PassError> {
        Ok(PassResult::from_changed(cse(f)))
    }
}
