//! Shape rules: the result shape of every op from its operand types and attributes.
//! Used by the builder (to create results) and by the verifier (to check them).

use crate::attr::{Attrs, AttrsExt};
use crate::ops::OpKind;
use crate::types::{ElemType, Type};

/// Normalizes a possibly negative axis against `rank`.
pub fn norm_axis(axis: i64, rank: usize) -> Result<usize, String> {
    let r = rank as i64;
    let a = if axis < 0 { axis + r } else { axis };
    if a < 0 || a >= r.max(1) {
        return Err(format!("axis {axis} is out of range for rank {rank}"));
    }
    Ok(a as usize)
}

/// Numpy broadcasting of two shapes.
pub fn broadcast(a: &[usize], b: &[usize]) -> Result<Vec<usize>, String> {
    let n = a.len().max(b.len());
    let mut out = vec![0; n];
    for i in 0..n {
        let da = if i + a.len() >= n {
            a[i + a.len() - n]
        } else {
            1
        };
        let db = if i + b.len() >= n {
            b[i + b.len() - n]
        } else {
            1
        };
        out[i] = if da == db || db == 1 {
            da
        } else if da == 1 {
            db
        } else {
            return Err(format!(
                "shapes {} and {} do not broadcast",
                fmt_shape(a),
                fmt_shape(b)
            ));
        };
    }
    Ok(out)
}

/// `[1x2x3]`-style shape for diagnostics.
pub fn fmt_shape(s: &[usize]) -> String {
    let inner: Vec<String> = s.iter().map(|d| d.to_string()).collect();
    format!("[{}]", inner.join("x"))
}

fn want_ints<'a>(attrs: &'a Attrs, key: &str) -> Result<&'a [i64], String> {
    attrs
        .ints(key)
        .ok_or_else(|| format!("missing integer-list attribute '{key}'"))
}

/// Result shape of an op whose shape can be inferred; `None` for ops whose result
/// type is given explicitly (weights, constants, casts, quantize ops) — for those the
/// caller checks the shape itself.
pub fn infer_shape(
    kind: OpKind,
    attrs: &Attrs,
    operands: &[&Type],
) -> Result<Option<Vec<usize>>, String> {
    use OpKind::*;
    let s = |i: usize| operands[i].shape();
    let shape = match kind {
        Weight | Constant | Return => return Ok(None),
        Cast | Quantize | Dequantize | Requantize => s(0).to_vec(),
        Reshape => {
            let shape = want_ints(attrs, "shape")?;
            if shape.iter().any(|d| *d <= 0) {
                return Err(format!("reshape to non-positive dimension in {shape:?}"));
            }
            let out: Vec<usize> = shape.iter().map(|d| *d as usize).collect();
            let Some(n) = checked_numel(&out) else {
                return Err(format!("reshape to {shape:?}: too many elements"));
            };
            if n != operands[0].numel() {
                return Err(format!(
                    "reshape from {} ({} elements) to {} ({} elements)",
                    fmt_shape(s(0)),
                    operands[0].numel(),
                    fmt_shape(&out),
                    n
                ));
            }
            out
        }
        Transpose => {
            let perm = want_ints(attrs, "perm")?;
            let r = s(0).len();
            let mut seen = vec![false; r];
            if perm.len() != r {
                return Err(format!(
                    "perm {perm:?} has {} entries for rank {r}",
                    perm.len()
                ));
            }
            for p in perm {
                if *p < 0 || *p as usize >= r || seen[*p as usize] {
                    return Err(format!("perm {perm:?} is not a permutation of 0..{r}"));
                }
                seen[*p as usize] = true;
            }
            perm.iter().map(|p| s(0)[*p as usize]).collect()
        }
        Concat => {
            let r = s(0).len();
            let axis = norm_axis(attrs.int("axis").unwrap_or(0), r)?;
            let mut out = s(0).to_vec();
            for (i, t) in operands.iter().enumerate().skip(1) {
                let ts = t.shape();
                if ts.len() != r {
                    return Err(format!("operand {i} has rank {}, expected {r}", ts.len()));
                }
                for d in 0..r {
                    if d != axis && ts[d] != out[d] {
                        return Err(format!(
                            "operand {i} has shape {}, incompatible with {} outside axis {axis}",
                            fmt_shape(ts),
                            fmt_shape(s(0))
                        ));
                    }
                }
                out[axis] = out[axis]
                    .checked_add(ts[axis])
                    .ok_or("concat result has too many elements")?;
            }
            out
        }
        Slice => {
            let starts = want_ints(attrs, "starts")?;
            let ends = want_ints(attrs, "ends")?;
            let r = s(0).len();
            let steps: Vec<i64> = attrs
                .ints("steps")
                .map(|v| v.to_vec())
                .unwrap_or(vec![1; r]);
            if starts.len() != r || ends.len() != r || steps.len() != r {
                return Err(format!("slice needs {r} starts, ends and steps"));
            }
            let mut out = Vec::with_capacity(r);
            for d in 0..r {
                let (b, e, st) = (starts[d], ends[d], steps[d]);
                if st <= 0 || b < 0 || e > s(0)[d] as i64 || b >= e {
                    return Err(format!(
                        "slice [{b}, {e}) step {st} is invalid for dimension {d} of size {}",
                        s(0)[d]
                    ));
                }
                out.push(((e - b - 1) / st + 1) as usize);
            }
            out
        }
        Gather => {
            let r = s(0).len();
            let axis = norm_axis(attrs.int("axis").unwrap_or(0), r)?;
            if !matches!(operands[1].elem(), ElemType::I32 | ElemType::I64) {
                return Err("gather indices must be i32 or i64".into());
            }
            let mut out = s(0)[..axis].to_vec();
            out.extend_from_slice(s(1));
            out.extend_from_slice(&s(0)[axis + 1..]);
            out
        }
        Repeat => {
            let r = s(0).len();
            let axis = norm_axis(attrs.int("axis").unwrap_or(0), r)?;
            let times = attrs.int("times").unwrap_or(0);
            if times <= 0 {
                return Err(format!("repeat times must be positive, got {times}"));
            }
            let mut out = s(0).to_vec();
            out[axis] = out[axis]
                .checked_mul(times as usize)
                .ok_or("repeat result has too many elements")?;
            out
        }
        MatMul => {
            let (a, b) = (s(0), s(1));
            if a.len() < 2 || b.len() < 2 {
                return Err("matmul operands need rank >= 2".into());
            }
            let ta = attrs.bool("transpose_a").unwrap_or(false);
            let tb = attrs.bool("transpose_b").unwrap_or(false);
            let (m, k1) = if ta {
                (a[a.len() - 1], a[a.len() - 2])
            } else {
                (a[a.len() - 2], a[a.len() - 1])
            };
            let (k2, n) = if tb {
                (b[b.len() - 1], b[b.len() - 2])
            } else {
                (b[b.len() - 2], b[b.len() - 1])
            };
            if k1 != k2 {
                return Err(format!(
                    "matmul contraction mismatch: {} x {} (K {k1} vs {k2})",
                    fmt_shape(a),
                    fmt_shape(b)
                ));
            }
            let mut out = broadcast(&a[..a.len() - 2], &b[..b.len() - 2])?;
            out.push(m);
            out.push(n);
            out
        }
        Linear => {
            let (x, w) = (s(0), s(1));
            if w.len() != 2 || x.is_empty() {
                return Err("linear needs x of rank >= 1 and a weight of rank 2 [N, K]".into());
            }
            if x[x.len() - 1] != w[1] {
                return Err(format!(
                    "linear input {} does not match weight {} ([N, K])",
                    fmt_shape(x),
                    fmt_shape(w)
                ));
            }
            if operands.len() == 3 && s(2) != [w[0]] {
                return Err(format!("bias must have shape [{}]", w[0]));
            }
            let mut out = x.to_vec();
            let last = out.len() - 1;
            out[last] = w[0];
            out
        }
        Conv2d => {
            let (x, w) = (s(0), s(1));
            if x.len() != 4 || w.len() != 4 {
                return Err("conv2d needs NHWC input and HWIO weight (rank 4)".into());
            }
            let group = attrs.int("group").unwrap_or(1);
            if group != 1 {
                return Err("only group = 1 is supported".into());
            }
            let stride = attrs
                .ints("stride")
                .map(|v| v.to_vec())
                .unwrap_or(vec![1, 1]);
            let pad = attrs
                .ints("pad")
                .map(|v| v.to_vec())
                .unwrap_or(vec![0, 0, 0, 0]);
            let dil = attrs
                .ints("dilation")
                .map(|v| v.to_vec())
                .unwrap_or(vec![1, 1]);
            if stride.len() != 2 || pad.len() != 4 || dil.len() != 2 {
                return Err("stride and dilation need 2 entries, pad 4".into());
            }
            if stride.iter().chain(&dil).any(|v| *v <= 0) || pad.iter().any(|v| *v < 0) {
                return Err("stride/dilation must be positive and pad non-negative".into());
            }
            if x[3] != w[2] {
                return Err(format!(
                    "conv2d input channels {} do not match weight {} (HWIO)",
                    x[3],
                    fmt_shape(w)
                ));
            }
            let out_dim = |inp: usize,
                           k: usize,
                           p0: i64,
                           p1: i64,
                           st: i64,
                           d: i64|
             -> Result<usize, String> {
                let overflow = || "conv2d sizes overflow".to_string();
                let eff = (k as i64 - 1)
                    .checked_mul(d)
                    .and_then(|v| v.checked_add(1))
                    .ok_or_else(overflow)?;
                let span = (inp as i64)
                    .checked_add(p0)
                    .and_then(|v| v.checked_add(p1))
                    .and_then(|v| v.checked_sub(eff))
                    .ok_or_else(overflow)?;
                if span < 0 {
                    return Err("conv2d kernel larger than padded input".into());
                }
                Ok((span / st + 1) as usize)
            };
            let oh = out_dim(x[1], w[0], pad[0], pad[1], stride[0], dil[0])?;
            let ow = out_dim(x[2], w[1], pad[2], pad[3], stride[1], dil[1])?;
            if operands.len() == 3 && s(2) != [w[3]] {
                return Err(format!("bias must have shape [{}]", w[3]));
            }
            vec![x[0], oh, ow, w[3]]
        }
        RmsNorm => {
            let r = s(0).len();
            let axis = norm_axis(attrs.int("axis").unwrap_or(-1), r)?;
            if s(1) != [s(0)[axis]] {
                return Err(format!(
                    "rms_norm weight {} must be [{}]",
                    fmt_shape(s(1)),
                    s(0)[axis]
                ));
            }
            s(0).to_vec()
        }
        Softmax => {
            norm_axis(attrs.int("axis").unwrap_or(-1), s(0).len())?;
            s(0).to_vec()
        }
        Rope => {
            let x = s(0);
            if x.is_empty() || x[x.len() - 1] % 2 != 0 {
                return Err("rope needs an even last dimension".into());
            }
            for i in 1..3 {
                let b = broadcast(x, s(i))?;
                if b != x {
                    return Err(format!(
                        "rope table {} does not broadcast to {}",
                        fmt_shape(s(i)),
                        fmt_shape(x)
                    ));
                }
            }
            x.to_vec()
        }
        Silu | Sigmoid | Neg => s(0).to_vec(),
        Add | Sub | Mul | Equal => broadcast(s(0), s(1))?,
        Where => {
            if operands[0].elem() != &ElemType::Bool {
                return Err("where condition must be i1".into());
            }
            broadcast(&broadcast(s(0), s(1))?, s(2))?
        }
        ReduceMin => {
            let r = s(0).len();
            let axes = want_ints(attrs, "axes")?;
            let keep = attrs.bool("keepdims").unwrap_or(true);
            let mut red = vec![false; r];
            for a in axes {
                red[norm_axis(*a, r)?] = true;
            }
            let mut out = Vec::new();
            for (d, reduced) in red.iter().enumerate() {
                if *reduced {
                    if keep {
                        out.push(1)
                    }
                } else {
                    out.push(s(0)[d])
                }
            }
            out
        }
        Embedding => {
            if !matches!(operands[0].elem(), ElemType::I32 | ElemType::I64) {
                return Err("embedding ids must be i32 or i64".into());
            }
            if s(1).len() != 2 {
                return Err("embedding table must be [V, H]".into());
            }
            let mut out = s(0).to_vec();
            out.push(s(1)[1]);
            out
        }
    };
    if checked_numel(&shape).is_none() {
        return Err(format!(
            "result shape {} has too many elements",
            fmt_shape(&shape)
        ));
    }
    Ok(Some(shape))
}

/// Number of elements of `shape` if it fits in an `i64` (the limit of a tensor type).
pub fn checked_numel(shape: &[usize]) -> Option<usize> {
    shape
        .iter()
        .try_fold(1usize, |a, d| a.checked_mul(*d))
        .filter(|n| *n <= i64::MAX as usize)
}

/// Element type of a data-movement op's result: the input's, with a per-axis or
/// blockwise encoding moved along (axis renumbered by transpose/reshape, scales sliced
/// by a slice along the channel axis). Errors when the encoding cannot follow (e.g.
/// a reshape that splits the channel axis, a slice across LPBQ blocks).
pub fn moved_elem(
    kind: OpKind,
    attrs: &Attrs,
    input: &Type,
    out_shape: &[usize],
) -> Result<ElemType, String> {
    use crate::types::{Encoding, QuantType};
    let Some(q) = input.quant() else {
        return Ok(input.elem().clone());
    };
    let (axis, is_block) = match &q.encoding {
        Encoding::PerTensor { .. } => return Ok(input.elem().clone()),
        Encoding::PerAxis { axis, .. } => (*axis as usize, false),
        Encoding::Blockwise { axis, .. } => (*axis as usize, true),
    };
    let in_shape = input.shape();
    let with_axis = |new_axis: usize, enc: Option<Encoding>| -> ElemType {
        let mut enc = enc.unwrap_or_else(|| q.encoding.clone());
        match &mut enc {
            Encoding::PerAxis { axis, .. } | Encoding::Blockwise { axis, .. } => {
                *axis = new_axis as u32
            }
            Encoding::PerTensor { .. } => {}
        }
        ElemType::Quant(QuantType {
            storage: q.storage,
            expressed: q.expressed,
            encoding: enc,
        })
    };
    match kind {
        OpKind::Transpose => {
            let perm = attrs.ints("perm").unwrap_or(&[]);
            let pos = perm
                .iter()
                .position(|p| *p as usize == axis)
                .ok_or("perm does not move the channel axis")?;
            if is_block {
                // The non-channel elements must keep their row-major order.
                let rest: Vec<i64> = perm
                    .iter()
                    .copied()
                    .filter(|p| *p as usize != axis && in_shape[*p as usize] != 1)
                    .collect();
                if !rest.windows(2).all(|w| w[0] < w[1]) {
                    return Err(
                        "a transpose that reorders the reduction axes of an LPBQ tensor".into(),
                    );
                }
            }
            Ok(with_axis(pos, None))
        }
        OpKind::Reshape => {
            let outer: usize = in_shape[..axis].iter().product();
            let ch = in_shape[axis];
            let mut acc = 1usize;
            for (j, d) in out_shape.iter().enumerate() {
                if acc == outer && *d == ch {
                    return Ok(with_axis(j, None));
                }
                acc *= d;
            }
            Err(format!("reshape to {} splits or merges the channel axis {axis} of a per-axis/blockwise encoding", fmt_shape(out_shape)))
        }
        OpKind::Slice => {
            let starts = attrs.ints("starts").unwrap_or(&[]);
            let steps = attrs.ints("steps");
            for (d, (i, o)) in in_shape.iter().zip(out_shape).enumerate() {
                if d != axis && i != o {
                    return Err(format!("slicing axis {d} of a per-axis/blockwise tensor (only the channel axis {axis} can be sliced)"));
                }
            }
            if steps.is_some_and(|s| s.iter().any(|v| *v != 1)) {
                return Err("strided slice of a per-axis/blockwise tensor".into());
            }
            let start = *starts.get(axis).unwrap_or(&0) as usize;
            let len = out_shape[axis];
            let enc = match &q.encoding {
                Encoding::PerAxis {
                    scales, offsets, ..
                } => Encoding::PerAxis {
                    axis: axis as u32,
                    scales: scales[start..start + len].into(),
                    offsets: offsets[start..start + len].into(),
                },
                Encoding::Blockwise {
                    block_size,
                    block_scale_bits,
                    block_scales,
                    channel_scales,
                    ..
                } => {
                    let nb = block_scales.len() / channel_scales.len().max(1);
                    Encoding::Blockwise {
                        axis: axis as u32,
                        block_size: *block_size,
                        block_scale_bits: *block_scale_bits,
                        block_scales: block_scales[start * nb..(start + len) * nb].into(),
                        channel_scales: channel_scales[start..start + len].into(),
                    }
                }
                Encoding::PerTensor { .. } => return Ok(input.elem().clone()),
            };
            Ok(with_axis(axis, Some(enc)))
        }
        _ => Err(format!(
            "'{}' cannot carry a per-axis or blockwise encoding",
            kind.name()
        )),
    }
}

/// Default result element type of an inferable op: what the builder uses when no
/// type is given.
pub fn default_elem(
    kind: OpKind,
    attrs: &Attrs,
    operands: &[&Type],
    out_shape: &[usize],
) -> ElemType {
    if kind.is_data_movement() && kind != OpKind::Gather {
        if let Ok(e) = moved_elem(kind, attrs, operands[0], out_shape) {
            return e;
        }
    }
    match kind {
        OpKind::Equal => ElemType::Bool,
        OpKind::Where => operands[1].elem().clone(),
        OpKind::Embedding => operands[1].elem().clone(),
        _ => operands
            .first()
            .map(|t| t.elem().clone())
            .unwrap_or(ElemType::F32),
    }
}
