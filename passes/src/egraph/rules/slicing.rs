//! Slice propagation: a `tensor.slice` of an op's result becomes the op applied to
//! slices of its operands, so a slice taken at the end of a computation (one
//! attention head of the output) pulls back to its inputs (one head's rows of the
//! projection weights, one kv head of the cache). `sha-split` seeds the slices.
//!
//! | rule                | root         | rewrite                                                        |
//! |---------------------|--------------|----------------------------------------------------------------|
//! | `slice-slice`       | tensor.slice | slice(slice(x)) -> slice(x) with composed bounds               |
//! | `slice-reshape`     | tensor.slice | slice(reshape(x)) -> reshape(slice(x)) when the box maps back  |
//! | `slice-transpose`   | tensor.slice | slice(transpose(x)) -> transpose(slice(x))                     |
//! | `slice-elementwise` | tensor.slice | slice(f(a, b, ..)) -> f(slice a, slice b, ..) (broadcast-aware)|
//! | `slice-axis-op`     | tensor.slice | softmax/rms_norm/reduce_min/rope sliced off their axis         |
//! | `slice-matmul`      | tensor.slice | batch dims -> both operands, M -> lhs, N -> rhs (any transpose)|
//! | `slice-linear`      | tensor.slice | out features -> weight rows, other dims -> input               |
//! | `slice-concat`      | tensor.slice | off the concat axis -> concat of slices; inside one input -> it|
//!
//! Only unit-step slices are propagated. Every new value carries its exact type, with
//! per-axis/LPBQ encodings sliced along (`moved_elem`).

use egg::Id;
use mllm_ir::infer::moved_elem;
use mllm_ir::{attrs, Attr, AttrsExt, OpKind, Type};

use crate::egraph::rules::canonical::rule;
use crate::egraph::{Build, EGraph, EGraphExt, Node, Rule};

/// The rule table.
pub static RULES: &[&dyn Rule] = &[
    &SliceSlice,
    &SliceReshape,
    &SliceTranspose,
    &SliceElementwise,
    &SliceAxisOp,
    &SliceMatmul,
    &SliceLinear,
    &SliceConcat,
];

/// A box: per-dimension `[start, end)`.
pub type Bounds = Vec<(usize, usize)>;

/// The unit-step box of a slice node, if it is one.
pub fn slice_bounds(eg: &EGraph, node: &Node) -> Option<Bounds> {
    let a = eg.attrs_of(node);
    if a.ints("steps").is_some_and(|s| s.iter().any(|v| *v != 1)) {
        return None;
    }
    let s = a.ints("starts")?;
    let e = a.ints("ends")?;
    Some(
        s.iter()
            .zip(e)
            .map(|(s, e)| (*s as usize, *e as usize))
            .collect(),
    )
}

/// A slice of e-class/Build `x` (of type `ty`) to `b`; `x` itself if `b` is the whole tensor.
pub fn make_slice(ty: &Type, x: Build, b: &Bounds) -> Option<(Type, Build)> {
    if b.iter()
        .zip(ty.shape())
        .all(|((s, e), d)| *s == 0 && e == d)
    {
        return Some((ty.clone(), x));
    }
    let shape: Vec<usize> = b.iter().map(|(s, e)| e - s).collect();
    let a = attrs([
        (
            "starts",
            Attr::Ints(b.iter().map(|(s, _)| *s as i64).collect()),
        ),
        (
            "ends",
            Attr::Ints(b.iter().map(|(_, e)| *e as i64).collect()),
        ),
    ]);
    let elem = moved_elem(OpKind::Slice, &a, ty, &shape).ok()?;
    let t = Type::tensor(shape, elem);
    Some((t.clone(), Build::op(OpKind::Slice, a, t, vec![x])))
}

/// Slice of an operand that broadcasts against a result box: dimensions where the
/// operand has size 1 (or is missing) are not sliced.
fn broadcast_slice(eg: &EGraph, id: Id, out: &Bounds) -> Option<(Type, Build)> {
    let ty = eg.ty(id).clone();
    let r = ty.rank();
    let off = out.len().checked_sub(r)?;
    let b: Bounds = (0..r)
        .map(|d| {
            if ty.shape()[d] == 1 {
                (0, 1)
            } else {
                out[off + d]
            }
        })
        .collect();
    make_slice(&ty, Build::Class(id), &b)
}

fn full(b: &Bounds, shape: &[usize], d: usize) -> bool {
    b[d].0 == 0 && b[d].1 == shape[d]
}

/// The single slice node in `class` (the rule's root) and the sliced e-class.
fn sliced_op(eg: &EGraph, node: &Node, kind: OpKind) -> Option<(Bounds, Node)> {
    let b = slice_bounds(eg, node)?;
    let inner = eg.nodes_of(node.children[0], kind).into_iter().next()?;
    Some((b, inner))
}

rule!(
    SliceSlice,
    "slice-slice",
    OpKind::Slice,
    |eg, class, node| {
        let (b, inner) = sliced_op(eg, node, OpKind::Slice)?;
        let ib = slice_bounds(eg, &inner)?;
        let composed: Bounds = b
            .iter()
            .zip(&ib)
            .map(|((s, e), (is, _))| (is + s, is + e))
            .collect();
        let x = inner.children[0];
        let (t, r) = make_slice(eg.ty(x), Build::Class(x), &composed)?;
        (t == *eg.ty(class)).then_some(r)
    }
);

/// Maps a box over `out_shape` back through a reshape from `in_shape`: dimensions are
/// grouped into runs with equal products; in each group the box must be a contiguous
/// flattened range (leading dims single indices, one ranged dim, trailing dims full)
/// and that range must be such a box over the input group too.
pub fn reshape_back(in_shape: &[usize], out_shape: &[usize], b: &Bounds) -> Option<Bounds> {
    let mut res: Bounds = Vec::with_capacity(in_shape.len());
    let (mut i, mut o) = (0usize, 0usize);
    while i < in_shape.len() || o < out_shape.len() {
        // Grow a group until both sides have the same product.
        let (i0, o0) = (i, o);
        let (mut pi, mut po) = (1usize, 1usize);
        loop {
            if pi == po && i > i0 && o > o0 {
                break;
            }
            if (pi <= po || o >= out_shape.len()) && i < in_shape.len() {
                pi *= in_shape[i];
                i += 1;
            } else if o < out_shape.len() {
                po *= out_shape[o];
                o += 1;
            } else {
                break;
            }
        }
        // Absorb trailing unit dims on both sides into this group.
        while i < in_shape.len() && in_shape[i] == 1 && pi == po {
            i += 1;
        }
        while o < out_shape.len() && out_shape[o] == 1 && pi == po {
            o += 1;
        }
        if pi != po {
            return None;
        }
        let (lo, hi) = flat_range(&out_shape[o0..o], &b[o0..o])?;
        res.extend(unflatten(&in_shape[i0..i], lo, hi)?);
    }
    Some(res)
}

/// Flattened `[lo, hi)` of a contiguous box (leading dims single indices, one ranged
/// dim, trailing dims full), if it is one.
fn flat_range(shape: &[usize], b: &[(usize, usize)]) -> Option<(usize, usize)> {
    let n = shape.len();
    if n == 0 {
        return Some((0, 1));
    }
    let r = (0..n)
        .rev()
        .find(|d| !(b[*d].0 == 0 && b[*d].1 == shape[*d]))
        .unwrap_or(0);
    if (0..r).any(|d| b[d].1 - b[d].0 != 1) {
        return None;
    }
    let mut stride = 1usize;
    let mut lo = 0usize;
    let mut len = 0usize;
    for d in (0..n).rev() {
        lo += b[d].0 * stride;
        if d == r {
            len = (b[d].1 - b[d].0) * stride;
        }
        stride *= shape[d];
    }
    Some((lo, lo + len))
}

/// The box over `shape` whose flattened range is `[lo, hi)`, if there is one.
fn unflatten(shape: &[usize], lo: usize, hi: usize) -> Option<Bounds> {
    let n = shape.len();
    let mut strides = vec![1usize; n];
    for d in (0..n.saturating_sub(1)).rev() {
        strides[d] = strides[d + 1] * shape[d + 1];
    }
    let len = hi - lo;
    for r in 0..n {
        // dims after r full, r ranged, before r single.
        if strides[r] == 0 || !lo.is_multiple_of(strides[r]) || !len.is_multiple_of(strides[r]) {
            continue;
        }
        let start = (lo / strides[r]) % shape[r];
        let count = len / strides[r];
        if start + count > shape[r] {
            continue;
        }
        let mut b: Bounds = Vec::with_capacity(n);
        let mut rem = lo;
        for d in 0..n {
            let idx = rem / strides[d];
            rem %= strides[d];
            if d < r {
                b.push((idx, idx + 1));
            } else if d == r {
                b.push((start, start + count));
            } else {
                b.push((0, shape[d]));
            }
        }
        return Some(b);
    }
    if n == 0 && lo == 0 && hi == 1 {
        return Some(Vec::new());
    }
    None
}

rule!(
    SliceReshape,
    "slice-reshape",
    OpKind::Slice,
    |eg, class, node| {
        let (b, inner) = sliced_op(eg, node, OpKind::Reshape)?;
        let x = inner.children[0];
        let xt = eg.ty(x).clone();
        let out_ty = eg.node_ty(&inner).clone();
        let ib = reshape_back(xt.shape(), out_ty.shape(), &b)?;
        let (_, sx) = make_slice(&xt, Build::Class(x), &ib)?;
        let ty = eg.ty(class).clone();
        let shape: Vec<i64> = ty.shape().iter().map(|d| *d as i64).collect();
        Some(Build::op(
            OpKind::Reshape,
            attrs([("shape", Attr::Ints(shape))]),
            ty,
            vec![sx],
        ))
    }
);

rule!(
    SliceTranspose,
    "slice-transpose",
    OpKind::Slice,
    |eg, class, node| {
        let (b, inner) = sliced_op(eg, node, OpKind::Transpose)?;
        let perm = eg.attrs_of(&inner).ints("perm")?.to_vec();
        let x = inner.children[0];
        let xt = eg.ty(x).clone();
        let mut ib: Bounds = vec![(0, 0); perm.len()];
        for (i, p) in perm.iter().enumerate() {
            ib[*p as usize] = b[i];
        }
        let (_, sx) = make_slice(&xt, Build::Class(x), &ib)?;
        let ty = eg.ty(class).clone();
        Some(Build::op(
            OpKind::Transpose,
            attrs([("perm", Attr::Ints(perm))]),
            ty,
            vec![sx],
        ))
    }
);

const ELEMENTWISE: [OpKind; 13] = [
    OpKind::Add,
    OpKind::Sub,
    OpKind::Mul,
    OpKind::Equal,
    OpKind::Where,
    OpKind::Neg,
    OpKind::Silu,
    OpKind::Sigmoid,
    OpKind::Cast,
    OpKind::Quantize,
    OpKind::Dequantize,
    OpKind::Requantize,
    OpKind::Repeat,
];

rule!(
    SliceElementwise,
    "slice-elementwise",
    OpKind::Slice,
    |eg, class, node| {
        let b = slice_bounds(eg, node)?;
        let src = node.children[0];
        let inner = eg[src]
            .nodes
            .iter()
            .find(|n| n.kind().is_some_and(|k| ELEMENTWISE[..12].contains(&k)))?
            .clone();
        let kind = inner.kind()?;
        let mut children = Vec::new();
        for c in &inner.children {
            children.push(broadcast_slice(eg, *c, &b)?.1);
        }
        let ty = eg.ty(class).clone();
        Some(Build::op(kind, eg.attrs_of(&inner).clone(), ty, children).named(eg.name(src)))
    }
);

rule!(
    SliceAxisOp,
    "slice-axis-op",
    OpKind::Slice,
    |eg, class, node| {
        let b = slice_bounds(eg, node)?;
        let src = node.children[0];
        let inner = eg[src]
            .nodes
            .iter()
            .find(|n| {
                matches!(
                    n.kind(),
                    Some(OpKind::Softmax | OpKind::RmsNorm | OpKind::ReduceMin | OpKind::Rope)
                )
            })?
            .clone();
        let kind = inner.kind()?;
        let a = eg.attrs_of(&inner).clone();
        let x = inner.children[0];
        let xt = eg.ty(x).clone();
        let rank = xt.rank();
        let out_shape = eg.node_ty(&inner).shape().to_vec();
        let axes: Vec<usize> = match kind {
            OpKind::Softmax | OpKind::RmsNorm => {
                vec![mllm_ir::infer::norm_axis(a.int("axis").unwrap_or(-1), rank).ok()?]
            }
            OpKind::ReduceMin => a
                .ints("axes")?
                .iter()
                .map(|v| mllm_ir::infer::norm_axis(*v, rank).ok())
                .collect::<Option<Vec<_>>>()?,
            _ => vec![rank - 1],
        };
        if kind == OpKind::ReduceMin && !a.bool("keepdims").unwrap_or(true) {
            return None;
        }
        // A slice that also cuts the op's own axis: push the rest through the op and
        // keep that cut as an outer slice, `slice(op(slice(x, rest)), cut)`.
        let outer: Option<Bounds> = if axes.iter().any(|d| !full(&b, &out_shape, *d)) {
            if axes.iter().all(|d| !full(&b, &out_shape, *d)) && axes.len() == rank {
                return None;
            }
            Some(b.clone())
        } else {
            None
        };
        let b: Bounds = (0..rank)
            .map(|d| {
                if axes.contains(&d) {
                    (0, out_shape[d])
                } else {
                    b[d]
                }
            })
            .collect();
        if outer.is_some()
            && b.iter()
                .zip(&out_shape)
                .all(|((s, e), d)| *s == 0 && e == d)
        {
            return None;
        }
        // The input box: reduced axes full.
        let ib: Bounds = (0..rank)
            .map(|d| {
                if axes.contains(&d) {
                    (0, xt.shape()[d])
                } else {
                    b[d]
                }
            })
            .collect();
        let (_, sx) = make_slice(&xt, Build::Class(x), &ib)?;
        let mut children = vec![sx];
        for c in inner.children.iter().skip(1) {
            if kind == OpKind::Rope {
                children.push(broadcast_slice(eg, *c, &b)?.1);
            } else {
                children.push(Build::Class(*c));
            }
        }
        let name = eg.name(src);
        match outer {
            None => {
                let ty = eg.ty(class).clone();
                Some(Build::op(kind, a, ty, children).named(name))
            }
            Some(ob) => {
                let rt = eg.node_ty(&inner);
                let shape: Vec<usize> = b.iter().map(|(s, e)| e - s).collect();
                let mid_ty = Type::tensor(shape, rt.elem().clone());
                let mid = Build::op(kind, a, mid_ty.clone(), children).named(name);
                // The cut, relative to the pushed-through box.
                let rel: Bounds = ob
                    .iter()
                    .zip(&b)
                    .map(|((s, e), (bs, _))| (s - bs, e - bs))
                    .collect();
                let (t, r) = make_slice(&mid_ty, mid, &rel)?;
                (t == *eg.ty(class)).then_some(r)
            }
        }
    }
);

rule!(
    SliceMatmul,
    "slice-matmul",
    OpKind::Slice,
    |eg, class, node| {
        let (b, inner) = sliced_op(eg, node, OpKind::MatMul)?;
        let a = eg.attrs_of(&inner).clone();
        let ta = a.bool("transpose_a").unwrap_or(false);
        let tb = a.bool("transpose_b").unwrap_or(false);
        let (l, r) = (inner.children[0], inner.children[1]);
        let (lt, rt) = (eg.ty(l).clone(), eg.ty(r).clone());
        let n = b.len();
        let batch = &b[..n - 2];
        let side = |t: &Type, id: Id, last2: [(usize, usize); 2]| -> Option<Build> {
            let r = t.rank();
            let off = batch.len().checked_sub(r - 2)?;
            let mut bb: Bounds = (0..r - 2)
                .map(|d| {
                    if t.shape()[d] == 1 {
                        (0, 1)
                    } else {
                        batch[off + d]
                    }
                })
                .collect();
            bb.extend(last2);
            Some(make_slice(t, Build::Class(id), &bb)?.1)
        };
        // The contraction axis of each operand stays whole; rows (M) and columns (N) of
        // the result select along the other one, which `transpose_a/b` swap.
        let lr = lt.rank();
        let k = if ta {
            *lt.shape().get(lr.checked_sub(2)?)?
        } else {
            *lt.shape().last()?
        };
        let sl = if ta {
            side(&lt, l, [(0, k), b[n - 2]])?
        } else {
            side(&lt, l, [b[n - 2], (0, k)])?
        };
        let sr = if tb {
            side(&rt, r, [b[n - 1], (0, k)])?
        } else {
            side(&rt, r, [(0, k), b[n - 1]])?
        };
        let ty = eg.ty(class).clone();
        Some(Build::op(OpKind::MatMul, a, ty, vec![sl, sr]).named(eg.name(node.children[0])))
    }
);

rule!(
    SliceLinear,
    "slice-linear",
    OpKind::Slice,
    |eg, class, node| {
        let (b, inner) = sliced_op(eg, node, OpKind::Linear)?;
        let (x, w) = (inner.children[0], inner.children[1]);
        let (xt, wt) = (eg.ty(x).clone(), eg.ty(w).clone());
        let n = b.len();
        let mut xb = b.clone();
        xb[n - 1] = (0, *xt.shape().last()?);
        let (_, sx) = make_slice(&xt, Build::Class(x), &xb)?;
        let (_, sw) = make_slice(&wt, Build::Class(w), &vec![b[n - 1], (0, wt.shape()[1])])?;
        let mut children = vec![sx, sw];
        if let Some(bias) = inner.children.get(2) {
            let bt = eg.ty(*bias).clone();
            children.push(make_slice(&bt, Build::Class(*bias), &vec![b[n - 1]])?.1);
        }
        let ty = eg.ty(class).clone();
        Some(
            Build::op(OpKind::Linear, Default::default(), ty, children)
                .named(eg.name(node.children[0])),
        )
    }
);

/// Slice of a concatenation; with `keep_cache`, a concatenation with a graph input
/// (the KV cache) is left merged (`sha-split{q-only}`).
fn slice_concat(eg: &EGraph, class: Id, node: &Node, keep_cache: bool) -> Option<Build> {
    let (b, inner) = sliced_op(eg, node, OpKind::Concat)?;
    let is_input = |c: &Id| eg[*c].nodes.iter().any(|n| n.kind().is_none());
    if keep_cache && inner.children.iter().any(is_input) {
        return None;
    }
    let axis =
        mllm_ir::infer::norm_axis(eg.attrs_of(&inner).int("axis").unwrap_or(0), b.len()).ok()?;
    let (s, e) = b[axis];
    // Inside one input?
    let mut at = 0usize;
    let mut parts = Vec::new();
    for c in &inner.children {
        let ct = eg.ty(*c).clone();
        let len = ct.shape()[axis];
        let (ps, pe) = (s.max(at), e.min(at + len));
        if ps < pe {
            let mut cb = b.clone();
            cb[axis] = (ps - at, pe - at);
            parts.push(make_slice(&ct, Build::Class(*c), &cb)?.1);
        }
        at += len;
    }
    let ty = eg.ty(class).clone();
    if parts.len() == 1 {
        // A single input's slice keeps that input's element type only for equal encodings.
        let only = parts.pop()?;
        return match &only {
            Build::Class(c) if eg.ty(*c) == &ty => Some(only),
            Build::Op { ty: t, .. } if *t == ty => Some(only),
            _ => None,
        };
    }
    Some(Build::op(
        OpKind::Concat,
        eg.attrs_of(&inner).clone(),
        ty,
        parts,
    ))
}

rule!(
    SliceConcat,
    "slice-concat",
    OpKind::Slice,
    |eg, class, node| { slice_concat(eg, class, node, false) }
);

rule!(
    SliceConcatKeepCache,
    "slice-concat-keep-cache",
    OpKind::Slice,
    |eg, class, node| { slice_concat(eg, class, node, true) }
);

/// The slicing rules with `slice-concat-keep-cache` instead of `slice-concat`: slices
/// stop at the KV-cache concatenations, so K/V projections stay merged.
pub static RULES_KEEP_CACHE: &[&dyn Rule] = &[
    &SliceSlice,
    &SliceReshape,
    &SliceTranspose,
    &SliceElementwise,
    &SliceAxisOp,
    &SliceMatmul,
    &SliceLinear,
    &SliceConcatKeepCache,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reshape_back_maps_head_boxes() {
        // [1,S,H*D] <- [1,S,H,D]: head 2 of 4, D = 8, S = 3
        let b = vec![(0, 1), (0, 3), (2, 3), (0, 8)];
        assert_eq!(
            reshape_back(&[1, 3, 32], &[1, 3, 4, 8], &b),
            Some(vec![(0, 1), (0, 3), (16, 24)])
        );
        // GQA regroup: [1,Hq=4,S=3,D] -> [1,Hkv=2,G*S=6,D]: kv 1, rows 3..6 = head 3
        let b = vec![(0, 1), (1, 2), (3, 6), (0, 5)];
        assert_eq!(
            reshape_back(&[1, 4, 3, 5], &[1, 2, 6, 5], &b),
            Some(vec![(0, 1), (3, 4), (0, 3), (0, 5)])
        );
        // A box that is not contiguous in the flattened order does not map.
        let b = vec![(0, 2), (1, 2)];
        assert_eq!(reshape_back(&[6], &[2, 3], &b), None);
    }
}
