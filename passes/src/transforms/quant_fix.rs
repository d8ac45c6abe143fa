//! `quant-fix`: makes every encoding of a quantized module legal for QNN HTP and
//! consistent, and reports each change (as pass statistics, shown by `--timing`; the
//! IR by `--print-ir-after-change`).
//!
//! Contract:
//! - `tensor.concat`: inputs and output share one per-tensor encoding, the union of
//!   their ranges; an input produced by data movement gets it at the op that computed
//!   it (so the data movement stays exact); a graph input that would have to change,
//!   or two fixed encodings that disagree, is an error naming the op;
//! - data-movement ops (reshape/transpose/slice/gather/repeat) keep their input's
//!   encoding (re-derived after every change);
//! - `nn.sigmoid` outputs have the fixed encoding scale 1/65536, offset 0;
//! - KV cache: each `past_*` input and the matching `present_*` output have equal
//!   encodings (u8, offset -128);
//! - per-tensor offsets are legal for their storage (u16: -65535..=0, u8: -255..=0);
//!   LPBQ block scales fit their bit width (1..=2^bits-1);
//! - every `builtin.weight` of a given name has the same type in every function (one
//!   context holds all graphs, sharing weights).
//!
//! Constants are re-encoded over their own value range when their type changes.

use std::collections::HashMap;

use mllm_ir::types::{per_tensor, ElemType, Encoding, Storage};
use mllm_ir::{AttrsExt, Function, Module, OpKind, ValueId};

use crate::pass::{Anchor, Pass, PassError, PassResult, PassStats};
use crate::registry::{Options, PassInfo};

/// The pass.
pub struct QuantFix;

/// Registry entry.
pub const INFO: PassInfo = PassInfo {
    name: "quant-fix",
    summary: "Make encodings legal for QNN and consistent (concat, data movement, sigmoid, KV cache, shared weights)",
    anchor: Anchor::Module,
    options: &[],
    create: |_: &Options| Ok(Box::new(QuantFix)),
};

fn fail(msg: String) -> PassError {
    PassError::Failed {
        pass: "quant-fix".into(),
        message: msg,
    }
}

/// Real range representable by a per-tensor encoding.
fn range_of(e: &ElemType) -> Option<(f32, f32, Storage)> {
    let q = e.quant()?;
    let (s, o) = q.encoding.per_tensor()?;
    let lo = (q.storage.min() as f32 + o as f32) * s;
    let hi = (q.storage.max() as f32 + o as f32) * s;
    Some((lo, hi, q.storage))
}

/// A per-tensor encoding of `storage` covering `[lo, hi]` (and 0).
fn covering(storage: Storage, lo: f32, hi: f32) -> ElemType {
    let (lo, hi) = (lo.min(0.0), hi.max(0.0));
    let levels = (storage.max() - storage.min()) as f32;
    let mut s = (hi - lo) / levels;
    if !(s > 0.0 && s.is_finite()) {
        s = 1.0 / levels;
    }
    let zp = (storage.min() as f32 - lo / s)
        .round()
        .clamp(storage.min() as f32, storage.max() as f32);
    // real = (q + offset) * s with q = zp at real 0  =>  offset = -zp
    per_tensor(storage, s, -(zp as i32))
}

fn op_label(f: &Function, v: ValueId) -> String {
    match f.def_op(v) {
        Some(op) => {
            let o = f.op(op);
            format!(
                "'{}' (\"{}\")",
                o.kind.name(),
                o.name.clone().unwrap_or_default()
            )
        }
        None => {
            let i = f.args().iter().position(|a| *a == v).unwrap_or(0);
            format!(
                "input %{}",
                f.arg_names[i].clone().unwrap_or_else(|| format!("arg{i}"))
            )
        }
    }
}

/// Gives value `v` the element type `e` at the op that computes it (walking back
/// through data movement). Returns the changes made.
fn set_elem(
    f: &mut Function,
    v: ValueId,
    e: &ElemType,
    changes: &mut Vec<String>,
) -> Result<(), String> {
    let mut cur = v;
    loop {
        let ty = f.ty(cur).clone();
        if ty.elem() == e {
            return Ok(());
        }
        match f.def_op(cur) {
            None => {
                return Err(format!(
                    "{} has a fixed encoding ({}) that differs from the one required ({})",
                    op_label(f, cur),
                    ty,
                    ty.with_elem(e.clone())
                ))
            }
            Some(op) => {
                let kind = f.op(op).kind;
                if kind.is_data_movement() {
                    cur = f.op(op).operands[0];
                    continue;
                }
                if matches!(kind, OpKind::Weight | OpKind::Sigmoid) {
                    return Err(format!(
                        "{} has a fixed encoding ({}) that differs from the one required ({})",
                        op_label(f, cur),
                        ty,
                        ty.with_elem(e.clone())
                    ));
                }
                changes.push(format!(
                    "{}: {} -> {}",
                    op_label(f, cur),
                    ty,
                    ty.with_elem(e.clone())
                ));
                f.set_ty(cur, ty.with_elem(e.clone()));
                return Ok(());
            }
        }
    }
}

/// Re-derives the result type of every data-movement op from its input.
fn propagate(f: &mut Function, changes: &mut Vec<String>) -> Result<bool, String> {
    let mut changed = false;
    for op in f.op_ids() {
        let o = f.op(op);
        if !o.kind.is_data_movement() {
            continue;
        }
        let input = f.ty(o.operands[0]).clone();
        let res = o.results[0];
        let rty = f.ty(res).clone();
        let want = mllm_ir::infer::moved_elem(o.kind, &o.attrs, &input, rty.shape())
            .map_err(|m| format!("{}: {m}", op_label(f, res)))?;
        if rty.elem() != &want {
            changes.push(format!(
                "{}: {} -> {}",
                op_label(f, res),
                rty,
                rty.with_elem(want.clone())
            ));
            f.set_ty(res, rty.with_elem(want));
            changed = true;
        }
    }
    Ok(changed)
}

fn fix_function(f: &mut Function, changes: &mut Vec<String>) -> Result<(), String> {
    let sig = per_tensor(Storage::U16, 1.0 / 65536.0, 0);
    for op in f.op_ids() {
        let o = f.op(op);
        if o.kind == OpKind::Sigmoid {
            let r = o.results[0];
            let t = f.ty(r).clone();
            if t.quant().is_some() && t.elem() != &sig {
                changes.push(format!(
                    "{}: {} -> {}",
                    op_label(f, r),
                    t,
                    t.with_elem(sig.clone())
                ));
                f.set_ty(r, t.with_elem(sig.clone()));
            }
        }
    }
    for _round in 0..16 {
        let mut any = propagate(f, changes)?;
        for op in f.op_ids() {
            let o = f.op(op).clone();
            if o.kind != OpKind::Concat {
                continue;
            }
            let vals: Vec<ValueId> = o
                .operands
                .iter()
                .copied()
                .chain(o.results.iter().copied())
                .collect();
            let elems: Vec<ElemType> = vals.iter().map(|v| f.ty(*v).elem().clone()).collect();
            if elems.iter().all(|e| e.quant().is_none()) || elems.windows(2).all(|w| w[0] == w[1]) {
                continue;
            }
            let mut lo = f32::INFINITY;
            let mut hi = f32::NEG_INFINITY;
            let mut storage = None;
            for (v, e) in vals.iter().zip(&elems) {
                let (l, h, s) = range_of(e).ok_or_else(|| {
                    format!(
                        "'tensor.concat' (\"{}\"): {} is not per-tensor quantized",
                        o.name.clone().unwrap_or_default(),
                        op_label(f, *v)
                    )
                })?;
                lo = lo.min(l);
                hi = hi.max(h);
                if *storage.get_or_insert(s) != s {
                    return Err(format!(
                        "'tensor.concat' (\"{}\"): inputs of different storage types cannot share an encoding",
                        o.name.clone().unwrap_or_default()
                    ));
                }
            }
            let storage = storage.unwrap_or(Storage::U16);
            // A fixed (graph input) encoding wins if there is one.
            let fixed: Option<ElemType> = vals
                .iter()
                .zip(&elems)
                .find(|(v, _)| f.def_op(**v).is_none())
                .map(|(_, e)| e.clone());
            let target = fixed.unwrap_or_else(|| covering(storage, lo, hi));
            for v in vals {
                set_elem(f, v, &target, changes).map_err(|m| {
                    format!(
                        "'tensor.concat' (\"{}\"): {m}",
                        o.name.clone().unwrap_or_default()
                    )
                })?;
            }
            any = true;
        }
        if !any {
            return check_legal(f);
        }
    }
    Err(format!("@{}: encodings did not converge", f.name))
}

fn check_legal(f: &Function) -> Result<(), String> {
    let mut vals: Vec<ValueId> = f.args().to_vec();
    for op in f.op_ids() {
        vals.extend(f.op(op).results.iter().copied());
    }
    for v in vals {
        let t = f.ty(v);
        let Some(q) = t.quant() else { continue };
        match &q.encoding {
            Encoding::PerTensor { offset, .. } => {
                let zp = -(*offset as i64);
                if zp < q.storage.min() || zp > q.storage.max() {
                    return Err(format!(
                        "{}: offset {offset} is not legal for {}",
                        op_label(f, v),
                        q.storage.name()
                    ));
                }
            }
            Encoding::Blockwise {
                block_scale_bits,
                block_scales,
                ..
            } => {
                let max = (1u32 << block_scale_bits) - 1;
                if let Some(b) = block_scales.iter().find(|b| **b as u32 > max || **b == 0) {
                    return Err(format!(
                        "{}: LPBQ block scale {b} does not fit {block_scale_bits} bits (QNN accepts 1..={max}); requantize the weight",
                        op_label(f, v)
                    ));
                }
            }
            Encoding::PerAxis { .. } => {}
        }
    }
    // KV cache: past_* input and present_* output encodings agree.
    let mut past: HashMap<String, ElemType> = HashMap::new();
    for (i, a) in f.args().iter().enumerate() {
        if let Some(n) = f.arg_names[i].as_deref() {
            if let Some(rest) = n.strip_prefix("past_") {
                past.insert(rest.to_owned(), f.ty(*a).elem().clone());
            }
        }
    }
    for (i, v) in f.returned().iter().enumerate() {
        if let Some(Some(n)) = f.result_names.get(i) {
            if let Some(rest) = n.strip_prefix("present_") {
                if let Some(p) = past.get(rest) {
                    if p != f.ty(*v).elem() {
                        return Err(format!(
                            "@{}: output {n} ({}) and input past_{rest} must share one encoding so the cache needs no requantization",
                            f.name,
                            f.ty(*v)
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}

impl Pass for QuantFix {
    fn name(&self) -> &'static str {
        "quant-fix"
    }
    fn anchor(&self) -> Anchor {
        Anchor::Module
    }
    fn run_on_module(
        &mut self,
        m: &mut Module,
        stats: &mut PassStats,
    ) -> Result<PassResult, PassError> {
        let mut changes = Vec::new();
        for f in m.functions.iter_mut() {
            fix_function(f, &mut changes).map_err(|e| fail(format!("@{}: {e}", f.name)))?;
        }
        // One context: every weight name has one type across functions.
        let mut seen: HashMap<String, (String, mllm_ir::Type)> = HashMap::new();
        for f in &m.functions {
            for op in f.op_ids() {
                let o = f.op(op);
                if o.kind != OpKind::Weight {
                    continue;
                }
                let name = o.attrs.str("name").unwrap_or_default().to_owned();
                let t = f.ty(o.results[0]).clone();
                if let Some((other, t0)) = seen.get(&name) {
                    if *t0 != t {
                        return Err(fail(format!(
                            "weight \"{name}\" is {t0} in @{other} but {t} in @{}: graphs of one context must share weights",
                            f.name
                        )));
                    }
                } else {
                    seen.insert(name, (f.name.clone(), t));
                }
            }
        }
        stats.record("encodings changed", changes.len());
        for c in &changes {
            stats.record("changed", c);
        }
        Ok(PassResult::from_changed(!changes.is_empty()))
    }
}
