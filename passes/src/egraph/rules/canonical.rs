//! Canonicalization rules: they never change values, only remove work.
//!
//! | rule                   | root              | rewrite                                              |
//! |------------------------|-------------------|------------------------------------------------------|
//! | `reshape-identity`     | tensor.reshape    | reshape(x) of x's own type -> x                      |
//! | `reshape-reshape`      | tensor.reshape    | reshape(reshape(x)) -> reshape(x)                    |
//! | `transpose-identity`   | tensor.transpose  | identity permutation -> x                            |
//! | `transpose-transpose`  | tensor.transpose  | transpose(transpose(x,p1),p2) -> transpose(x,p1[p2]) |
//! | `transpose-as-reshape` | tensor.transpose  | only size-1 dims move -> reshape                     |
//! | `concat-single`        | tensor.concat     | one input -> the input                               |
//! | `slice-whole`          | tensor.slice      | whole tensor, unit steps -> x                        |
//! | `mul-one`              | nn.mul            | x * splat(1) (shape unchanged) -> x                  |
//! | `add-zero`             | nn.add            | x + splat(0) (shape unchanged) -> x                  |
//! | `sub-zero`             | nn.sub            | x - splat(0) (shape unchanged) -> x                  |
//! | `quantize-dequantize`  | quant.quantize    | quantize(dequantize(q)) to q's own type -> q         |
//! | `requantize-identity`  | quant.requantize  | requantize to the input's own type -> x              |
//!
//! Every rewrite keeps the exact type (encoding included): the analysis rejects
//! anything else.

use egg::Id;
use mllm_ir::{attrs, Attr, AttrsExt, OpKind};

use crate::egraph::{Build, EGraph, EGraphExt, Node, Rule};

macro_rules! rule {
    ($ty:ident, $name:literal, $root:expr, |$eg:ident, $class:ident, $node:ident| $body:block) => {
        #[doc = concat!("`", $name, "`")]
        pub struct $ty;
        impl Rule for $ty {
            fn name(&self) -> &'static str {
                $name
            }
            fn root(&self) -> OpKind {
                $root
            }
            fn apply(&self, $eg: &EGraph, $class: Id, $node: &Node) -> Option<Build> $body
        }
    };
}
pub(crate) use rule;

/// The rule table.
pub static RULES: &[&dyn Rule] = &[
    &ReshapeIdentity,
    &ReshapeReshape,
    &TransposeIdentity,
    &TransposeTranspose,
    &TransposeAsReshape,
    &ConcatSingle,
    &SliceWhole,
    &MulOne,
    &AddZero,
    &SubZero,
    &QuantizeDequantize,
    &RequantizeIdentity,
];

/// The child itself when it has the class's type.
fn same(eg: &EGraph, class: Id, child: Id) -> Option<Build> {
    (eg.ty(class) == eg.ty(child)).then_some(Build::Class(child))
}

rule!(
    ReshapeIdentity,
    "reshape-identity",
    OpKind::Reshape,
    |eg, class, node| { same(eg, class, node.children[0]) }
);

rule!(
    ReshapeReshape,
    "reshape-reshape",
    OpKind::Reshape,
    |eg, class, node| {
        let inner = eg
            .nodes_of(node.children[0], OpKind::Reshape)
            .into_iter()
            .next()?;
        let ty = eg.ty(class).clone();
        let a = eg.attrs_of(node).clone();
        Some(Build::op(
            OpKind::Reshape,
            a,
            ty,
            vec![Build::Class(inner.children[0])],
        ))
    }
);

rule!(
    TransposeIdentity,
    "transpose-identity",
    OpKind::Transpose,
    |eg, class, node| {
        let perm = eg.attrs_of(node).ints("perm")?;
        if perm.iter().enumerate().all(|(i, p)| *p == i as i64) {
            same(eg, class, node.children[0])
        } else {
            None
        }
    }
);

rule!(
    TransposeTranspose,
    "transpose-transpose",
    OpKind::Transpose,
    |eg, class, node| {
        let perm = eg.attrs_of(node).ints("perm")?.to_vec();
        let inner = eg
            .nodes_of(node.children[0], OpKind::Transpose)
            .into_iter()
            .next()?;
        let p1 = eg.attrs_of(&inner).ints("perm")?;
        let composed: Vec<i64> = perm.iter().map(|p| p1[*p as usize]).collect();
        let ty = eg.ty(class).clone();
        Some(Build::op(
            OpKind::Transpose,
            attrs([("perm", Attr::Ints(composed))]),
            ty,
            vec![Build::Class(inner.children[0])],
        ))
    }
);

rule!(
    TransposeAsReshape,
    "transpose-as-reshape",
    OpKind::Transpose,
    |eg, class, node| {
        let perm = eg.attrs_of(node).ints("perm")?;
        let x = node.children[0];
        let shape = eg.ty(x).shape();
        let kept: Vec<i64> = perm
            .iter()
            .copied()
            .filter(|p| shape[*p as usize] != 1)
            .collect();
        if !kept.windows(2).all(|w| w[0] < w[1]) {
            return None;
        }
        let ty = eg.ty(class).clone();
        let s: Vec<i64> = ty.shape().iter().map(|d| *d as i64).collect();
        Some(Build::op(
            OpKind::Reshape,
            attrs([("shape", Attr::Ints(s))]),
            ty,
            vec![Build::Class(x)],
        ))
    }
);

rule!(
    ConcatSingle,
    "concat-single",
    OpKind::Concat,
    |eg, class, node| {
        if node.children.len() == 1 {
            same(eg, class, node.children[0])
        } else {
            None
        }
    }
);

rule!(
    SliceWhole,
    "slice-whole",
    OpKind::Slice,
    |eg, class, node| {
        let x = node.children[0];
        let unit = eg
            .attrs_of(node)
            .ints("steps")
            .is_none_or(|s| s.iter().all(|v| *v == 1));
        if unit && eg.ty(x).shape() == eg.ty(class).shape() {
            same(eg, class, x)
        } else {
            None
        }
    }
);

fn neutral(eg: &EGraph, class: Id, node: &Node, value: f64, commutative: bool) -> Option<Build> {
    let (a, b) = (node.children[0], node.children[1]);
    if eg.splat(b) == Some(value) {
        if let Some(r) = same(eg, class, a) {
            return Some(r);
        }
    }
    if commutative && eg.splat(a) == Some(value) {
        return same(eg, class, b);
    }
    None
}

rule!(MulOne, "mul-one", OpKind::Mul, |eg, class, node| {
    neutral(eg, class, node, 1.0, true)
});
rule!(AddZero, "add-zero", OpKind::Add, |eg, class, node| {
    neutral(eg, class, node, 0.0, true)
});
rule!(SubZero, "sub-zero", OpKind::Sub, |eg, class, node| {
    neutral(eg, class, node, 0.0, false)
});

rule!(
    QuantizeDequantize,
    "quantize-dequantize",
    OpKind::Quantize,
    |eg, class, node| {
        let dq = eg
            .nodes_of(node.children[0], OpKind::Dequantize)
            .into_iter()
            .next()?;
        same(eg, class, dq.children[0])
    }
);

rule!(
    RequantizeIdentity,
    "requantize-identity",
    OpKind::Requantize,
    |eg, class, node| { same(eg, class, node.children[0]) }
);
