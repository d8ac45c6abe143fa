//! `canonicalize`: local simplifications that never change values.
//!
//! Contract (each rule keeps the replaced value's exact type, encoding included):
//! - `reshape-identity`: reshape to the input's shape -> input
//! - `reshape-reshape`: reshape(reshape(x)) -> reshape(x)
//! - `transpose-identity`: transpose with the identity permutation -> input
//! - `transpose-transpose`: transpose(transpose(x, p1), p2) -> transpose(x, p1[p2[i]])
//! - `transpose-as-reshape`: a transpose that only moves size-1 dimensions -> reshape
//! - `concat-single`: concat of one input -> input
//! - `slice-whole`: slice covering the whole tensor with unit steps -> input
//! - `mul-one`, `add-zero`, `sub-zero`: with a splat constant whose broadcast leaves
//!   the shape unchanged -> the other operand
//! - `quantize-dequantize`: quantize(dequantize(q)) back to q's own type -> q
//! - `requantize-identity`: requantize to the input's own type -> input
//!
//! Rules run to a fixpoint (bounded by `max-iterations`), then dead ops are erased.

use std::collections::HashMap;

use mllm_ir::{Attr, AttrsExt, Function, OpId, OpKind, ValueId};

use crate::pass::{Anchor, FuncContext, Pass, PassError, PassResult};
use crate::registry::{OptKind, OptSpec, Options, PassInfo};
use crate::transforms::dce::dce;

/// The pass.
pub struct Canonicalize {
    max_iterations: usize,
}

/// Registry entry.
pub const INFO: PassInfo = PassInfo {
    name: "canonicalize",
    summary: "Fold reshape/transpose chains and identity ops",
    anchor: Anchor::Function,
    options: &[OptSpec {
        name: "max-iterations",
        kind: OptKind::UInt,
        default: "10",
        help: "maximum number of rewrite sweeps",
    }],
    create: |o: &Options| {
        Ok(Box::new(Canonicalize {
            max_iterations: o.usize("max-iterations").max(1),
        }))
    },
};

fn splat(f: &Function, v: ValueId) -> Option<f64> {
    let op = f.def_op(v)?;
    let o = f.op(op);
    if o.kind != OpKind::Constant {
        return None;
    }
    let vals = o.attrs.floats("value")?;
    let first = *vals.first()?;
    vals.iter()
        .all(|x| x.to_bits() == first.to_bits())
        .then_some(first)
}

/// Tries one rule on `op`: returns a replacement value for its result, or mutates the
/// op in place (returning `Err(())` to signal an in-place change).
fn rewrite(f: &mut Function, op: OpId) -> Option<Result<ValueId, ()>> {
    let o = f.op(op);
    if o.results.len() != 1 {
        return None;
    }
    let res = o.results[0];
    let rty = f.ty(res).clone();
    let operands = o.operands.clone();
    let same_type = |f: &Function, v: ValueId| f.ty(v) == &rty;
    match o.kind {
        OpKind::Reshape => {
            let x = operands[0];
            if same_type(f, x) {
                return Some(Ok(x));
            }
            if let Some(d) = f.def_op(x) {
                if f.op(d).kind == OpKind::Reshape {
                    let y = f.op(d).operands[0];
                    f.op_mut(op).operands[0] = y;
                    return Some(Err(()));
                }
            }
            None
        }
        OpKind::Transpose => {
            let x = operands[0];
            let perm = o.attrs.ints("perm")?.to_vec();
            if perm.iter().enumerate().all(|(i, p)| *p == i as i64) && same_type(f, x) {
                return Some(Ok(x));
            }
            if let Some(d) = f.def_op(x) {
                if f.op(d).kind == OpKind::Transpose {
                    let inner = f.op(d).attrs.ints("perm")?.to_vec();
                    let y = f.op(d).operands[0];
                    let composed: Vec<i64> = perm.iter().map(|p| inner[*p as usize]).collect();
                    let o = f.op_mut(op);
                    o.operands[0] = y;
                    o.attrs.insert("perm".into(), Attr::Ints(composed));
                    return Some(Err(()));
                }
            }
            // Only size-1 dims move: same memory order, so it is a reshape.
            let in_shape = f.ty(x).shape().to_vec();
            let kept: Vec<i64> = perm
                .iter()
                .copied()
                .filter(|p| in_shape[*p as usize] != 1)
                .collect();
            if kept.windows(2).all(|w| w[0] < w[1]) {
                let shape: Vec<i64> = rty.shape().iter().map(|d| *d as i64).collect();
                let o = f.op_mut(op);
                o.kind = OpKind::Reshape;
                o.attrs.clear();
                o.attrs.insert("shape".into(), Attr::Ints(shape));
                return Some(Err(()));
            }
            None
        }
        OpKind::Concat if operands.len() == 1 && same_type(f, operands[0]) => Some(Ok(operands[0])),
        OpKind::Slice => {
            let x = operands[0];
            let whole = f.ty(x).shape() == rty.shape()
                && o.attrs
                    .ints("steps")
                    .is_none_or(|s| s.iter().all(|v| *v == 1));
            (whole && same_type(f, x)).then_some(Ok(x))
        }
        OpKind::Mul | OpKind::Add | OpKind::Sub => {
            let neutral = if o.kind == OpKind::Mul { 1.0 } else { 0.0 };
            let cands: &[(usize, usize)] = if o.kind == OpKind::Sub {
                &[(0, 1)]
            } else {
                &[(0, 1), (1, 0)]
            };
            for (keep, c) in cands {
                if splat(f, operands[*c]) == Some(neutral) && same_type(f, operands[*keep]) {
                    return Some(Ok(operands[*keep]));
                }
            }
            None
        }
        OpKind::Quantize => {
            let d = f.def_op(operands[0])?;
            if f.op(d).kind == OpKind::Dequantize {
                let q = f.op(d).operands[0];
                if same_type(f, q) {
                    return Some(Ok(q));
                }
            }
            None
        }
        OpKind::Requantize if same_type(f, operands[0]) => Some(Ok(operands[0])),
        _ => None,
    }
}

/// Runs the rules to a fixpoint; returns whether anything changed.
pub fn canonicalize(f: &mut Function, max_iterations: usize) -> bool {
    let mut changed = false;
    for _ in 0..max_iterations {
        let mut subst: HashMap<ValueId, ValueId> = HashMap::new();
        let mut sweep = false;
        for op in f.op_ids() {
            if !subst.is_empty() {
                for v in f.op_mut(op).operands.iter_mut() {
                    while let Some(n) = subst.get(v) {
                        *v = *n;
                    }
                }
            }
            match rewrite(f, op) {
                Some(Ok(repl)) => {
                    let r = f.op(op).results[0];
                    subst.insert(r, repl);
                    f.unlink(op);
                    sweep = true;
                }
                Some(Err(())) => sweep = true,
                None => {}
            }
        }
        changed |= sweep;
        if !sweep {
            break;
        }
    }
    changed | dce(f)
}

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
        _: &mut FuncContext<'_>,
    ) -> Result<PassResult, PassError> {
        Ok(PassResult::from_changed(canonicalize(
            f,
            self.max_iterations,
        )))
    }
}
