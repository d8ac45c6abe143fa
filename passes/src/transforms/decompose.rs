//! `decompose`: expands the ops the HTP has no kernel for into ops it has, so that
//! quantization can give every step its own encoding (as the NPU computes them):
//!
//! - `nn.rope(x, cos, sin)` -> `x1 = slice(x, [.., :D/2])`, `x2 = slice(x, [.., D/2:])`,
//!   `rot = concat(neg(x2), x1)`, `add(mul(x, cos), mul(rot, sin))`
//! - `nn.silu(x)` -> `mul(x, sigmoid(x))`
//!
//! Contract: values are unchanged (these are the ops' definitions); new ops are named
//! `<op name>.<step>`; element types are kept (run it before quantization).

use mllm_ir::{attrs, Attr, Builder, Function, OpKind, ValueId};

use crate::pass::{Anchor, FuncContext, Pass, PassError, PassResult};
use crate::registry::{Options, PassInfo};

/// The pass.
pub struct Decompose;

/// Registry entry.
pub const INFO: PassInfo = PassInfo {
    name: "decompose",
    summary: "Expand nn.rope and nn.silu into HTP ops (slice/neg/concat/mul/add, sigmoid/mul)",
    anchor: Anchor::Function,
    options: &[],
    create: |_: &Options| Ok(Box::new(Decompose)),
};

fn fail(f: &Function, what: String) -> PassError {
    PassError::Failed {
        pass: "decompose".into(),
        message: format!("@{}: {what}", f.name),
    }
}

/// Decomposes every rope and silu of `f`; returns whether anything changed.
pub fn decompose(f: &mut Function) -> Result<bool, PassError> {
    let mut changed = false;
    for op in f.op_ids() {
        let kind = f.op(op).kind;
        if !matches!(kind, OpKind::Rope | OpKind::Silu) {
            continue;
        }
        let o = f.op(op).clone();
        let base = o
            .name
            .clone()
            .unwrap_or_else(|| kind.name().replace('.', "_"));
        let res = o.results[0];
        let out_ty = f.ty(res).clone();
        let mut b = Builder::before(f, op);
        let step = |b: &mut Builder<'_>, v: ValueId, s: &str| {
            if let Some(d) = b.func.def_op(v) {
                b.func.op_mut(d).name = Some(format!("{base}.{s}"));
            }
            v
        };
        let new = match kind {
            OpKind::Silu => {
                let x = o.operands[0];
                let s = b
                    .unary(OpKind::Sigmoid, x)
                    .map_err(|e| fail(b.func, e.to_string()))?;
                step(&mut b, s, "sigmoid");
                let m = b
                    .binary(OpKind::Mul, x, s)
                    .map_err(|e| fail(b.func, e.to_string()))?;
                step(&mut b, m, "mul")
            }
            _ => {
                let (x, cos, sin) = (o.operands[0], o.operands[1], o.operands[2]);
                let shape = b.func.ty(x).shape().to_vec();
                let r = shape.len();
                let d = shape[r - 1];
                let mut starts = vec![0i64; r];
                let ends: Vec<i64> = shape.iter().map(|v| *v as i64).collect();
                let mut mid = ends.clone();
                mid[r - 1] = (d / 2) as i64;
                let x1 = b
                    .slice(x, &starts, &mid)
                    .map_err(|e| fail(b.func, e.to_string()))?;
                step(&mut b, x1, "x1");
                starts[r - 1] = (d / 2) as i64;
                let x2 = b
                    .slice(x, &starts, &ends)
                    .map_err(|e| fail(b.func, e.to_string()))?;
                step(&mut b, x2, "x2");
                let n2 = b
                    .unary(OpKind::Neg, x2)
                    .map_err(|e| fail(b.func, e.to_string()))?;
                step(&mut b, n2, "neg");
                let rot = b
                    .op(
                        OpKind::Concat,
                        &[n2, x1],
                        attrs([("axis", Attr::Int(r as i64 - 1))]),
                    )
                    .map_err(|e| fail(b.func, e.to_string()))?;
                step(&mut b, rot, "rotate_half");
                let a = b
                    .binary(OpKind::Mul, x, cos)
                    .map_err(|e| fail(b.func, e.to_string()))?;
                step(&mut b, a, "mul_cos");
                let c = b
                    .binary(OpKind::Mul, rot, sin)
                    .map_err(|e| fail(b.func, e.to_string()))?;
                step(&mut b, c, "mul_sin");
                let s = b
                    .binary(OpKind::Add, a, c)
                    .map_err(|e| fail(b.func, e.to_string()))?;
                step(&mut b, s, "add")
            }
        };
        if f.ty(new) != &out_ty {
            return Err(fail(
                f,
                format!("decomposing '{base}' changed its type to {}", f.ty(new)),
            ));
        }
        f.replace_all_uses(res, new);
        f.unlink(op);
        changed = true;
    }
    Ok(changed)
}

impl Pass for Decompose {
    fn name(&self) -> &'static str {
        "decompose"
    }
    fn anchor(&self) -> Anchor {
        Anchor::Function
    }
    fn run_on_function(
        &mut self,
        f: &mut Function,
        _: &mut FuncContext<'_>,
    ) -> Result<PassResult, PassError> {
        Ok(PassResult::from_changed(decompose(f)?))
    }
}
