//! Constant folding of weight chains into static QNN tensor data.
//!
//! Weights reach the backend as chains of data-movement ops (`tensor.slice`,
//! `tensor.transpose`, `tensor.reshape`) over `builtin.weight` or
//! `builtin.constant`. The lowering evaluates such a chain on bytes, one weight at a
//! time, and hands the result to QNN as a static tensor.
//!
//! # Byte representation
//!
//! A folded value is laid out exactly like the IR storage of its type (and like the
//! QNN buffer of the mapped data type): row-major, little-endian; `f32` 4 bytes,
//! `f16` 2 bytes, `i1` one byte (0 / 1), integers in their width, quantized values as
//! their integer codes in the storage width.
//!
//! # Weight-store payload convention
//!
//! A `builtin.weight` whose IR type is
//! - `f32`: the store holds f32, f16 or bf16 (converted to f32);
//! - `f16`: the store holds f16, f32 or bf16 (converted to f16, round to nearest);
//! - quantized with storage `u8` / `u16` / `i16` / `i32`: the store holds the integer
//!   codes in that exact dtype;
//! - quantized with storage `i8` or `i4`: the store holds `i8` bytes with the integer
//!   values (`i4` values -8..=7, one per byte, range-checked);
//! - quantized, store holding floats (f32/f16/bf16): the real values are quantized at
//!   lowering time with the type's encoding (round half away from zero, clamp);
//! - `i32`: i32 (or i64, range-checked); `i1`: u8/i8 (non-zero = true); other plain
//!   integer types: the same dtype.

use std::borrow::Cow;

use mllm_ir::attr::AttrsExt;
use mllm_ir::{ElemType, Encoding, OpKind, QuantType, Type, WDType, Weight};

/// Element size of the folded representation of `elem`.
pub fn elem_size(elem: &ElemType) -> usize {
    elem.byte_size()
}

/// Where the scale and offset of element `i` of a quantized tensor of `shape` come
/// from: returns `(scale, offset)` for that element.
pub fn element_scale(q: &QuantType, shape: &[usize], i: usize) -> Result<(f32, i32), String> {
    match &q.encoding {
        Encoding::PerTensor { scale, offset } => Ok((*scale, *offset)),
        Encoding::PerAxis {
            axis,
            scales,
            offsets,
        } => {
            let (c, _) = channel_of(shape, *axis as usize, i)?;
            let s = scales
                .get(c)
                .ok_or("per-axis scales shorter than the channel axis")?;
            let o = offsets
                .get(c)
                .ok_or("per-axis offsets shorter than the channel axis")?;
            Ok((*s, *o))
        }
        Encoding::Blockwise {
            axis,
            block_size,
            block_scales,
            channel_scales,
            ..
        } => {
            let (c, pos) = channel_of(shape, *axis as usize, i)?;
            let ch = channel_scales.len().max(1);
            let nb = block_scales.len() / ch;
            let b = pos / (*block_size as usize).max(1);
            let bs = block_scales
                .get(c * nb + b)
                .ok_or("blockwise block scales do not cover the tensor")?;
            let cs = channel_scales
                .get(c)
                .ok_or("blockwise channel scales shorter than the channel axis")?;
            Ok((*cs * f32::from(*bs), 0))
        }
    }
}

/// Channel index of element `i` along `axis`, and its position within the channel's
/// row-major flattening of the other axes.
fn channel_of(shape: &[usize], axis: usize, i: usize) -> Result<(usize, usize), String> {
    if axis >= shape.len() {
        return Err(format!(
            "encoding axis {axis} out of range for shape {shape:?}"
        ));
    }
    let inner: usize = shape[axis + 1..].iter().product();
    let ch = shape[axis];
    let c = (i / inner.max(1)) % ch.max(1);
    let outer = i / (inner.max(1) * ch.max(1));
    Ok((c, outer * inner + i % inner.max(1)))
}

/// Quantizes `real` to the integer code of storage `q` with `(scale, offset)`:
/// `clamp(round_half_away(real / scale) - offset, min, max)`.
pub fn quantize_one(real: f32, scale: f32, offset: i32, q: &QuantType) -> i64 {
    let r = (real / scale).round();
    let v = if r.is_nan() { 0.0 } else { r as f64 } - offset as f64;
    v.clamp(q.storage.min() as f64, q.storage.max() as f64) as i64
}

/// Appends the code `v` in the storage width of `q`.
fn push_code(out: &mut Vec<u8>, v: i64, q: &QuantType) {
    match q.storage.byte_size() {
        1 => out.push(v as u8),
        2 => out.extend_from_slice(&(v as u16).to_le_bytes()),
        _ => out.extend_from_slice(&(v as u32).to_le_bytes()),
    }
}

/// Encodes real values (`values.len()` is 1 for a splat, or `ty.numel()`) into the
/// folded representation of `ty` (used for `builtin.constant` and for float weights
/// with a quantized IR type).
pub fn encode_values(values: &[f32], ty: &Type) -> Result<Vec<u8>, String> {
    let n = ty.numel();
    if values.len() != 1 && values.len() != n {
        return Err(format!(
            "{} values for a tensor of {n} elements",
            values.len()
        ));
    }
    let at = |i: usize| {
        if values.len() == 1 {
            values[0]
        } else {
            values[i]
        }
    };
    let mut out = Vec::with_capacity(n * ty.elem().byte_size());
    match ty.elem() {
        ElemType::F32 => (0..n).for_each(|i| out.extend_from_slice(&at(i).to_le_bytes())),
        ElemType::F16 => {
            (0..n).for_each(|i| out.extend_from_slice(&half::f16::from_f32(at(i)).to_le_bytes()))
        }
        ElemType::BF16 => {
            (0..n).for_each(|i| out.extend_from_slice(&half::bf16::from_f32(at(i)).to_le_bytes()))
        }
        ElemType::Bool => (0..n).for_each(|i| out.push(u8::from(at(i) != 0.0))),
        ElemType::I8 => (0..n).for_each(|i| out.push(at(i) as i8 as u8)),
        ElemType::U8 => (0..n).for_each(|i| out.push(at(i) as u8)),
        ElemType::I16 => (0..n).for_each(|i| out.extend_from_slice(&(at(i) as i16).to_le_bytes())),
        ElemType::U16 => (0..n).for_each(|i| out.extend_from_slice(&(at(i) as u16).to_le_bytes())),
        ElemType::I32 => (0..n).for_each(|i| out.extend_from_slice(&(at(i) as i32).to_le_bytes())),
        ElemType::I64 => (0..n).for_each(|i| out.extend_from_slice(&(at(i) as i64).to_le_bytes())),
        ElemType::Quant(q) => {
            for i in 0..n {
                let (s, o) = element_scale(q, ty.shape(), i)?;
                push_code(&mut out, quantize_one(at(i), s, o, q), q);
            }
        }
    }
    Ok(out)
}

/// Converts a stored weight into the folded representation of the IR type `ty`
/// (see the module docs for the accepted combinations).
///
/// Borrowed (straight from the store, e.g. a memory-mapped checkpoint) whenever the
/// stored bytes already have the folded representation; converted otherwise.
pub fn weight_bytes<'w>(w: &'w Weight, ty: &Type) -> Result<Cow<'w, [u8]>, String> {
    if w.numel() != ty.numel() {
        return Err(format!(
            "the store holds {:?} {:?}, the IR declares {}",
            w.dtype,
            w.shape,
            mllm_ir::print::type_to_string(ty)
        ));
    }
    let is_float_store = matches!(w.dtype, WDType::F32 | WDType::F16 | WDType::BF16);
    let same = |want: WDType| -> Result<Cow<'w, [u8]>, String> {
        if w.dtype == want {
            Ok(w.bytes())
        } else {
            Err(format!(
                "store dtype {:?} cannot hold IR type {} (expected {want:?})",
                w.dtype,
                mllm_ir::print::type_to_string(ty)
            ))
        }
    };
    match ty.elem() {
        ElemType::F32 => match w.dtype {
            WDType::F32 => Ok(w.bytes()),
            WDType::F16 | WDType::BF16 => Ok(Cow::Owned(
                w.to_f32().iter().flat_map(|v| v.to_le_bytes()).collect(),
            )),
            d => Err(format!("store dtype {d:?} cannot hold an f32 weight")),
        },
        ElemType::F16 => match w.dtype {
            WDType::F16 => Ok(w.bytes()),
            WDType::F32 | WDType::BF16 => Ok(Cow::Owned(
                w.to_f32()
                    .iter()
                    .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
                    .collect(),
            )),
            d => Err(format!("store dtype {d:?} cannot hold an f16 weight")),
        },
        ElemType::BF16 => same(WDType::BF16),
        ElemType::Bool => match w.dtype {
            WDType::U8 | WDType::I8 => Ok(Cow::Owned(
                w.bytes().iter().map(|b| u8::from(*b != 0)).collect(),
            )),
            d => Err(format!("store dtype {d:?} cannot hold an i1 weight")),
        },
        ElemType::I8 => same(WDType::I8),
        ElemType::U8 => same(WDType::U8),
        ElemType::I16 => same(WDType::I16),
        ElemType::U16 => same(WDType::U16),
        ElemType::I64 => same(WDType::I64),
        ElemType::I32 => match w.dtype {
            WDType::I32 => Ok(w.bytes()),
            WDType::I64 => {
                let b = w.bytes();
                let mut out = Vec::with_capacity(b.len() / 2);
                for c in b.chunks_exact(8) {
                    let mut a = [0u8; 8];
                    a.copy_from_slice(c);
                    let v = i32::try_from(i64::from_le_bytes(a))
                        .map_err(|_| "i64 value does not fit i32".to_string())?;
                    out.extend_from_slice(&v.to_le_bytes());
                }
                Ok(Cow::Owned(out))
            }
            d => Err(format!("store dtype {d:?} cannot hold an i32 weight")),
        },
        ElemType::Quant(q) => {
            if is_float_store {
                return encode_values(&w.to_f32(), ty).map(Cow::Owned);
            }
            use mllm_ir::Storage as S;
            let want = match q.storage {
                S::U8 => WDType::U8,
                S::U16 => WDType::U16,
                S::I8 | S::I4 => WDType::I8,
                S::I16 => WDType::I16,
                S::I32 => WDType::I32,
            };
            let bytes = same(want)?;
            if q.storage == S::I4 {
                if let Some(pos) = bytes.iter().position(|b| !(-8..=7).contains(&(*b as i8))) {
                    return Err(format!(
                        "element {pos} holds {} which is outside the i4 range -8..=7",
                        bytes[pos] as i8
                    ));
                }
            }
            Ok(bytes)
        }
    }
}

/// Row-major strides (in elements) of `shape`.
fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1usize; shape.len()];
    for d in (0..shape.len().saturating_sub(1)).rev() {
        s[d] = s[d + 1] * shape[d + 1];
    }
    s
}

/// Gathers elements of `es` bytes: output index (row-major over `out_shape`) maps to
/// input offset `sum(idx[d] * in_strides[d]) + base`.
fn gather(
    src: &[u8],
    es: usize,
    out_shape: &[usize],
    in_strides: &[usize],
    base: usize,
) -> Vec<u8> {
    let n: usize = out_shape.iter().product();
    let mut out = Vec::with_capacity(n * es);
    if n == 0 {
        return out;
    }
    let r = out_shape.len();
    if r == 0 {
        out.extend_from_slice(&src[base * es..(base + 1) * es]);
        return out;
    }
    // Copy contiguous runs of the innermost dimension when it is unit-strided.
    let last = out_shape[r - 1];
    let run = in_strides[r - 1] == 1;
    let mut idx = vec![0usize; r];
    let mut off = base;
    loop {
        if run {
            out.extend_from_slice(&src[off * es..(off + last) * es]);
        } else {
            for j in 0..last {
                let o = (off + j * in_strides[r - 1]) * es;
                out.extend_from_slice(&src[o..o + es]);
            }
        }
        // Advance the odometer over all but the last dimension.
        let mut d = r - 1;
        loop {
            if d == 0 {
                return out;
            }
            d -= 1;
            idx[d] += 1;
            off += in_strides[d];
            if idx[d] < out_shape[d] {
                break;
            }
            off -= in_strides[d] * out_shape[d];
            idx[d] = 0;
        }
    }
}

/// `tensor.transpose` on bytes.
pub fn transpose(src: &[u8], es: usize, in_shape: &[usize], perm: &[usize]) -> Vec<u8> {
    let st = strides(in_shape);
    let out_shape: Vec<usize> = perm.iter().map(|p| in_shape[*p]).collect();
    let in_strides: Vec<usize> = perm.iter().map(|p| st[*p]).collect();
    gather(src, es, &out_shape, &in_strides, 0)
}

/// `tensor.slice` on bytes (starts, positive steps; `out_shape` is the result shape).
pub fn slice(
    src: &[u8],
    es: usize,
    in_shape: &[usize],
    starts: &[usize],
    steps: &[usize],
    out_shape: &[usize],
) -> Vec<u8> {
    let st = strides(in_shape);
    let base: usize = starts.iter().zip(&st).map(|(a, b)| a * b).sum();
    let in_strides: Vec<usize> = st.iter().zip(steps).map(|(a, b)| a * b).collect();
    gather(src, es, out_shape, &in_strides, base)
}

/// Applies one data-movement op (`kind` with `attrs`) to folded bytes.
pub fn apply_move(
    kind: OpKind,
    attrs: &mllm_ir::Attrs,
    src: Vec<u8>,
    in_ty: &Type,
    out_ty: &Type,
) -> Result<Vec<u8>, String> {
    let es = elem_size(in_ty.elem());
    if src.len() != in_ty.numel() * es {
        return Err(format!(
            "folded operand has {} bytes, its type needs {}",
            src.len(),
            in_ty.numel() * es
        ));
    }
    match kind {
        OpKind::Reshape => Ok(src),
        OpKind::Transpose => {
            let perm: Vec<usize> = attrs
                .ints("perm")
                .ok_or("transpose without perm")?
                .iter()
                .map(|p| *p as usize)
                .collect();
            if perm.len() != in_ty.rank() || perm.iter().any(|p| *p >= in_ty.rank()) {
                return Err(format!("bad perm {perm:?}"));
            }
            Ok(transpose(&src, es, in_ty.shape(), &perm))
        }
        OpKind::Slice => {
            let r = in_ty.rank();
            let starts: Vec<usize> = attrs
                .ints("starts")
                .ok_or("slice without starts")?
                .iter()
                .map(|v| (*v).max(0) as usize)
                .collect();
            let steps: Vec<usize> = match attrs.ints("steps") {
                Some(s) => s.iter().map(|v| (*v).max(1) as usize).collect(),
                None => vec![1; r],
            };
            if starts.len() != r || steps.len() != r || out_ty.rank() != r {
                return Err("slice attributes do not match the rank".into());
            }
            for d in 0..r {
                let last = starts[d] + (out_ty.shape()[d].max(1) - 1) * steps[d];
                if last >= in_ty.shape()[d] {
                    return Err(format!("slice out of range on axis {d}"));
                }
            }
            Ok(slice(
                &src,
                es,
                in_ty.shape(),
                &starts,
                &steps,
                out_ty.shape(),
            ))
        }
        k => Err(format!("'{}' cannot be folded", k.name())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mllm_ir::types::per_tensor;
    use mllm_ir::Storage;

    #[test]
    fn transpose_and_slice_move_bytes() {
        // 2x3 u8: [[0,1,2],[3,4,5]] -> transpose -> [[0,3],[1,4],[2,5]].
        let src: Vec<u8> = (0..6).collect();
        assert_eq!(transpose(&src, 1, &[2, 3], &[1, 0]), vec![0, 3, 1, 4, 2, 5]);
        // Slice rows 0..2 step 1, columns 1..3.
        assert_eq!(
            slice(&src, 1, &[2, 3], &[0, 1], &[1, 1], &[2, 2]),
            vec![1, 2, 4, 5]
        );
        // Column stride 2.
        assert_eq!(
            slice(&src, 1, &[2, 3], &[0, 0], &[1, 2], &[2, 2]),
            vec![0, 2, 3, 5]
        );
        // 2-byte elements, 3-d transpose [1,2,3] perm [2,0,1].
        let src16: Vec<u8> = (0..6u16).flat_map(|v| v.to_le_bytes()).collect();
        let t = transpose(&src16, 2, &[1, 2, 3], &[2, 0, 1]);
        let vals: Vec<u16> = t
            .chunks(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        assert_eq!(vals, vec![0, 3, 1, 4, 2, 5]);
    }

    #[test]
    fn constants_quantize_half_away_from_zero() {
        let ty = Type::tensor(vec![3], per_tensor(Storage::U8, 0.5, -128));
        // 0.25/0.5 = 0.5 -> 1 (away from zero) + 128; -0.25 -> -1 + 128; 1000 clamps.
        let b = encode_values(&[0.25, -0.25, 1000.0], &ty).unwrap();
        assert_eq!(b, vec![129, 127, 255]);
        assert!(encode_values(&[1.0, 2.0], &ty).is_err());
    }

    #[test]
    fn blockwise_scale_lookup_follows_channel_major_blocks() {
        // [K=4, N=2] with axis 1, block 2: element (k, n) -> channel n, block k / 2.
        let q = QuantType {
            storage: Storage::I4,
            expressed: mllm_ir::Expressed::F32,
            encoding: Encoding::Blockwise {
                axis: 1,
                block_size: 2,
                block_scale_bits: 4,
                block_scales: vec![1u8, 2, 3, 4].into(),
                channel_scales: vec![1.0f32, 10.0].into(),
            },
        };
        let shape = [4usize, 2];
        // Element index = k * 2 + n.
        assert_eq!(element_scale(&q, &shape, 0).unwrap(), (1.0, 0)); // k0 n0: b0 of c0
        assert_eq!(element_scale(&q, &shape, 3).unwrap(), (30.0, 0)); // k1 n1: c1 b0 = 3
        assert_eq!(element_scale(&q, &shape, 7).unwrap(), (40.0, 0)); // k3 n1: c1 b1 = 4
        assert_eq!(element_scale(&q, &shape, 5).unwrap(), (40.0, 0)); // k2 n1: c1 b1 = 4
        assert_eq!(element_scale(&q, &shape, 4).unwrap(), (2.0, 0)); // k2 n0: c0 b1 = 2
    }
}
