//! Layout rules for the HTP.
//!
//! | rule               | root      | rewrite                                                                  |
//! |--------------------|-----------|--------------------------------------------------------------------------|
//! | `linear-to-conv2d` | nn.linear | linear(x[..,K], W[N,K]) -> reshape(conv2d(reshape(x,[1,1,M,K]),          |
//! |                    |           |   reshape(transpose(W,[1,0]),[1,1,K,N]) (HWIO)), [..,N])                 |
//!
//! The weight's transpose/reshape are data movement on a static tensor: the backend
//! folds them when it writes the weight (no copy in the IR), and the LPBQ/per-axis
//! encoding moves with them (axis 0 of [N,K] becomes axis 3 of HWIO [1,1,K,N]).

use egg::Id;
use mllm_ir::infer::moved_elem;
use mllm_ir::{attrs, Attr, Attrs, OpKind, Type};

use crate::egraph::rules::canonical::rule;
use crate::egraph::{Build, EGraph, EGraphExt, Node, Rule};

/// The rule table.
pub static RULES: &[&dyn Rule] = &[&LinearToConv2d];

fn data_move(
    kind: OpKind,
    a: Attrs,
    input: &Type,
    shape: Vec<usize>,
    child: Build,
) -> Option<(Type, Build)> {
    let elem = moved_elem(kind, &a, input, &shape).ok()?;
    let ty = Type::tensor(shape, elem);
    Some((ty.clone(), Build::op(kind, a, ty, vec![child])))
}

fn reshape_attrs(shape: &[usize]) -> Attrs {
    attrs([(
        "shape",
        Attr::Ints(shape.iter().map(|d| *d as i64).collect()),
    )])
}

rule!(
    LinearToConv2d,
    "linear-to-conv2d",
    OpKind::Linear,
    |eg, class, node| {
        let (x, w) = (node.children[0], node.children[1]);
        let (xt, wt) = (eg.ty(x).clone(), eg.ty(w).clone());
        let out = eg.ty(class).clone();
        let k = *xt.shape().last()?;
        let n = wt.shape()[0];
        let m = xt.numel() / k;
        let (_, x4) = data_move(
            OpKind::Reshape,
            reshape_attrs(&[1, 1, m, k]),
            &xt,
            vec![1, 1, m, k],
            Build::Class(x),
        )?;
        let (wkn_t, wkn) = data_move(
            OpKind::Transpose,
            attrs([("perm", Attr::Ints(vec![1, 0]))]),
            &wt,
            vec![k, n],
            Build::Class(w),
        )?;
        let (_, hwio) = data_move(
            OpKind::Reshape,
            reshape_attrs(&[1, 1, k, n]),
            &wkn_t,
            vec![1, 1, k, n],
            wkn,
        )?;
        let mut children = vec![x4, hwio];
        if let Some(b) = node.children.get(2) {
            children.push(Build::Class(*b));
        }
        let conv_ty = Type::tensor(vec![1, 1, m, n], out.elem().clone());
        let conv = Build::op(OpKind::Conv2d, Attrs::new(), conv_ty, children).named(eg.name(class));
        Some(Build::op(
            OpKind::Reshape,
            reshape_attrs(out.shape()),
            out,
            vec![conv],
        ))
    }
);
