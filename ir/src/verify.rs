//! The verifier: structural checks (SSA dominance, terminators), per-op checks
//! (arity, attributes, shapes, element types) and encoding checks. Errors carry the
//! op's source location when it was parsed.

use std::collections::HashSet;

use crate::attr::AttrsExt;
use crate::function::{Function, OpId, ValueId};
use crate::infer::{fmt_shape, infer_shape};
use crate::module::Module;
use crate::ops::OpKind;
use crate::types::{ElemType, Encoding, Storage, Type};
use crate::{Diagnostic, IrError, Location};

/// Verifies every function of a module.
pub fn verify_module(m: &Module) -> Result<(), IrError> {
    let mut names = HashSet::new();
    for f in &m.functions {
        if !names.insert(f.name.as_str()) {
            return Err(err(
                f.src.clone(),
                format!("redefinition of function @{}", f.name),
            ));
        }
        verify_function(f)?;
    }
    Ok(())
}

/// Verifies that every `builtin.weight` of the module names a weight of its store
/// with a matching element count.
pub fn verify_weights(m: &Module) -> Result<(), IrError> {
    for f in &m.functions {
        for op in f.op_ids() {
            let o = f.op(op);
            if o.kind != OpKind::Weight {
                continue;
            }
            let name = o.attrs.str("name").unwrap_or_default();
            let ty = f.ty(o.results[0]);
            match m.weights.get(name) {
                None => {
                    return Err(op_err(
                        f,
                        op,
                        format!("weight \"{name}\" is not in the weight store"),
                    ))
                }
                Some(w) if w.numel() != ty.numel() => {
                    return Err(op_err(
                        f,
                        op,
                        format!(
                            "weight \"{name}\" has shape {:?} in the store but the IR declares {}",
                            w.shape,
                            fmt_shape(ty.shape())
                        ),
                    ))
                }
                _ => {}
            }
        }
    }
    Ok(())
}

fn err(loc: Option<Location>, message: String) -> IrError {
    IrError::Verify(Diagnostic { loc, message })
}

fn op_err(f: &Function, op: OpId, msg: String) -> IrError {
    let o = f.op(op);
    let who = match &o.name {
        Some(n) => format!("'{}' op (\"{n}\")", o.kind.name()),
        None => format!("'{}' op", o.kind.name()),
    };
    err(
        o.src.clone().or_else(|| f.src.clone()),
        format!("{who} {msg}"),
    )
}

/// Verifies one function.
pub fn verify_function(f: &Function) -> Result<(), IrError> {
    let region = &f.regions[f.body];
    if region.blocks.len() != 1 {
        return Err(err(
            f.src.clone(),
            format!("function @{} must have exactly one block", f.name),
        ));
    }
    if f.arg_names.len() != f.args().len() {
        return Err(err(
            f.src.clone(),
            "argument names out of sync with arguments".into(),
        ));
    }
    let mut defined: HashSet<ValueId> = f.args().iter().copied().collect();
    for a in f.args() {
        check_type(f.ty(*a)).map_err(|m| err(f.src.clone(), format!("argument type: {m}")))?;
    }
    let mut arg_names = HashSet::new();
    for n in f.arg_names.iter().flatten() {
        if !arg_names.insert(n) {
            return Err(err(f.src.clone(), format!("duplicate argument name %{n}")));
        }
    }
    let ops = f.op_ids();
    let Some(last) = ops.last() else {
        return Err(err(
            f.src.clone(),
            format!("function @{} has no func.return", f.name),
        ));
    };
    for op in &ops {
        let o = f.op(*op);
        if o.kind.is_terminator() && op != last {
            return Err(op_err(f, *op, "must be the last op of its block".into()));
        }
        for (i, v) in o.operands.iter().enumerate() {
            if !defined.contains(v) {
                return Err(op_err(
                    f,
                    *op,
                    format!("operand #{i} does not dominate this use (used before it is defined)"),
                ));
            }
        }
        verify_op(f, *op)?;
        for r in &o.results {
            defined.insert(*r);
        }
    }
    if f.op(*last).kind != OpKind::Return {
        return Err(op_err(
            f,
            *last,
            "is not a terminator: the block must end with func.return".into(),
        ));
    }
    if f.result_names.len() != f.op(*last).operands.len() {
        return Err(op_err(
            f,
            *last,
            format!(
                "returns {} values but the function declares {} results",
                f.op(*last).operands.len(),
                f.result_names.len()
            ),
        ));
    }
    Ok(())
}

/// Checks a type's encoding is well formed for its shape.
pub fn check_type(t: &Type) -> Result<(), String> {
    let Some(q) = t.quant() else { return Ok(()) };
    let shape = t.shape();
    match &q.encoding {
        Encoding::PerTensor { scale, offset } => {
            check_scale(*scale)?;
            let zp = -(*offset as i64);
            if zp < q.storage.min() || zp > q.storage.max() {
                return Err(format!(
                    "offset {offset} puts the zero point outside the {} range",
                    q.storage.name()
                ));
            }
        }
        Encoding::PerAxis {
            axis,
            scales,
            offsets,
        } => {
            let a = *axis as usize;
            if a >= shape.len() {
                return Err(format!(
                    "per-axis axis {axis} out of range for rank {}",
                    shape.len()
                ));
            }
            if scales.len() != shape[a] || offsets.len() != shape[a] {
                return Err(format!(
                    "per-axis encoding has {} scales and {} offsets for {} channels",
                    scales.len(),
                    offsets.len(),
                    shape[a]
                ));
            }
            for s in scales.iter() {
                check_scale(*s)?;
            }
        }
        Encoding::Blockwise {
            axis,
            block_size,
            block_scale_bits,
            block_scales,
            channel_scales,
        } => {
            let a = *axis as usize;
            if !matches!(q.storage, Storage::I4 | Storage::I8) {
                return Err("blockwise encodings need i4 or i8 storage".into());
            }
            if a >= shape.len() {
                return Err(format!(
                    "blockwise axis {axis} out of range for rank {}",
                    shape.len()
                ));
            }
            let ch = shape[a];
            let per = t.numel() / ch.max(1);
            if *block_size == 0 || !per.is_multiple_of(*block_size as usize) {
                return Err(format!(
                    "block size {block_size} does not divide the {per} elements of a channel"
                ));
            }
            let nb = per / *block_size as usize;
            if channel_scales.len() != ch || block_scales.len() != ch * nb {
                return Err(format!(
                    "blockwise encoding needs {ch} channel scales and {} block scales, has {} and {}",
                    ch * nb,
                    channel_scales.len(),
                    block_scales.len()
                ));
            }
            if !(1..=8).contains(block_scale_bits) {
                return Err(format!("block scale bits {block_scale_bits} not in 1..=8"));
            }
            let max = 1u32 << block_scale_bits;
            if let Some(b) = block_scales.iter().find(|b| **b == 0 || **b as u32 > max) {
                return Err(format!("block scale {b} outside 1..={max}"));
            }
            for s in channel_scales.iter() {
                check_scale(*s)?;
            }
        }
    }
    Ok(())
}

fn check_scale(s: f32) -> Result<(), String> {
    if !(s.is_finite() && s > 0.0) {
        return Err(format!("scale {s} must be positive and finite"));
    }
    Ok(())
}

#[derive(PartialEq)]
enum Cat {
    Float(ElemType),
    Quant,
    Int,
    Bool,
}

fn cat(e: &ElemType) -> Cat {
    match e {
        ElemType::Quant(_) => Cat::Quant,
        ElemType::Bool => Cat::Bool,
        e if e.is_float() => Cat::Float(e.clone()),
        _ => Cat::Int,
    }
}

fn describe(e: &ElemType) -> String {
    match e.scalar_name() {
        Some(n) => n.to_string(),
        None => "a quantized type".to_string(),
    }
}

fn verify_op(f: &Function, op: OpId) -> Result<(), IrError> {
    let o = f.op(op);
    let info = o.kind.info();
    let fail = |m: String| op_err(f, op, m);
    let n = o.operands.len();
    if n < info.min_operands || n > info.max_operands {
        let want = if info.min_operands == info.max_operands {
            format!("{}", info.min_operands)
        } else if info.max_operands == usize::MAX {
            format!("at least {}", info.min_operands)
        } else {
            format!("{} to {}", info.min_operands, info.max_operands)
        };
        return Err(fail(format!("expects {want} operands, got {n}")));
    }
    if o.results.len() != info.results {
        return Err(fail(format!(
            "expects {} results, got {}",
            info.results,
            o.results.len()
        )));
    }
    for (k, kind) in info.required_attrs {
        match o.attrs.get(*k) {
            None => return Err(fail(format!("requires attribute '{k}' ({})", kind.name()))),
            Some(a) if !kind.accepts(a) => {
                return Err(fail(format!(
                    "attribute '{k}' must be {}, got {}",
                    with_article(kind.name()),
                    with_article(a.kind())
                )))
            }
            _ => {}
        }
    }
    for (k, a) in &o.attrs {
        if k.contains('.') {
            continue; // dialect-prefixed, discardable
        }
        let known = info
            .required_attrs
            .iter()
            .chain(info.optional_attrs)
            .find(|(n, _)| n == k);
        match known {
            None => {
                let all: Vec<&str> = info
                    .required_attrs
                    .iter()
                    .chain(info.optional_attrs)
                    .map(|(n, _)| *n)
                    .collect();
                let expected = if all.is_empty() {
                    "it takes none".to_string()
                } else {
                    format!("expected one of: {}", all.join(", "))
                };
                return Err(fail(format!("has unknown attribute '{k}' ({expected})")));
            }
            Some((_, kind)) if !kind.accepts(a) => {
                return Err(fail(format!(
                    "attribute '{k}' must be {}, got {}",
                    with_article(kind.name()),
                    with_article(a.kind())
                )))
            }
            _ => {}
        }
    }
    let tys: Vec<&Type> = o.operands.iter().map(|v| f.ty(*v)).collect();
    let rtys: Vec<&Type> = o.results.iter().map(|v| f.ty(*v)).collect();
    for t in rtys.iter() {
        check_type(t).map_err(|m| fail(format!("result type {t}: {m}")))?;
    }
    if let Some(shape) = infer_shape(o.kind, &o.attrs, &tys).map_err(fail)? {
        if rtys[0].shape() != shape.as_slice() {
            return Err(fail(format!(
                "result shape {} does not match the inferred shape {}",
                fmt_shape(rtys[0].shape()),
                fmt_shape(&shape)
            )));
        }
    }
    use OpKind::*;
    match o.kind {
        Weight => {
            if o.attrs.str("name").is_none_or(str::is_empty) {
                return Err(fail("needs a non-empty 'name'".into()));
            }
        }
        Constant => {
            let v = match o.attrs.get("value") {
                Some(crate::Attr::Floats(v)) => v.len(),
                Some(crate::Attr::Ints(v)) => v.len(),
                _ => 0,
            };
            let numel = rtys[0].numel();
            if v != 1 && v != numel {
                return Err(fail(format!(
                    "has {v} values for a tensor of {numel} elements (expected 1 or {numel})"
                )));
            }
        }
        Return => {}
        Reshape | Transpose | Slice | Gather | Repeat => {
            let want = crate::infer::moved_elem(o.kind, &o.attrs, tys[0], rtys[0].shape())
                .map_err(&fail)?;
            if rtys[0].elem() != &want {
                return Err(fail(format!(
                    "must keep its input's element type (with its encoding moved along): {} vs {}",
                    tys[0], rtys[0]
                )));
            }
        }
        Concat => same_category(&tys, rtys[0]).map_err(fail)?,
        MatMul | Linear | Conv2d | RmsNorm | Softmax | Rope | Silu | Sigmoid | Neg | Add | Sub
        | Mul | ReduceMin => same_category(&tys, rtys[0]).map_err(fail)?,
        Equal => {
            same_category(&tys, tys[0]).map_err(fail)?;
            if rtys[0].elem() != &ElemType::Bool {
                return Err(fail("result must be i1".into()));
            }
        }
        Where => same_category(&tys[1..], rtys[0]).map_err(fail)?,
        Embedding => {
            if cat(rtys[0].elem()) != cat(tys[1].elem()) {
                return Err(fail(
                    "result element type must match the table's kind".into(),
                ));
            }
            if let (Some(_), false) = (tys[1].quant(), rtys[0].elem() == tys[1].elem()) {
                return Err(fail(
                    "a quantized table's lookup keeps the table's encoding".into(),
                ));
            }
        }
        Cast => {
            if tys[0].quant().is_some() || rtys[0].quant().is_some() {
                return Err(fail(
                    "casts plain types only; use quant.* for quantized types".into(),
                ));
            }
        }
        Quantize => {
            if !tys[0].elem().is_float() || rtys[0].quant().is_none() {
                return Err(fail("converts a float tensor to a quantized one".into()));
            }
        }
        Dequantize => {
            if tys[0].quant().is_none() || !rtys[0].elem().is_float() {
                return Err(fail("converts a quantized tensor to a float one".into()));
            }
        }
        Requantize => {
            if tys[0].quant().is_none() || rtys[0].quant().is_none() {
                return Err(fail("converts between quantized tensors".into()));
            }
        }
    }
    Ok(())
}

/// "an integer", "a bool", ... for diagnostics.
fn with_article(noun: &str) -> String {
    let an = noun.starts_with(['a', 'e', 'i', 'o', 'u']);
    format!("{} {noun}", if an { "an" } else { "a" })
}

/// All operands and the result are either one float type, or all quantized.
fn same_category(operands: &[&Type], result: &Type) -> Result<(), String> {
    let rc = cat(result.elem());
    if matches!(rc, Cat::Int | Cat::Bool) {
        return Err(format!(
            "result must be a float or quantized tensor, got {}",
            describe(result.elem())
        ));
    }
    for (i, t) in operands.iter().enumerate() {
        if cat(t.elem()) != rc {
            return Err(format!(
                "operand #{i} is {} but the result is {} (mixing needs an explicit quant.* op)",
                describe(t.elem()),
                describe(result.elem())
            ));
        }
    }
    Ok(())
}
