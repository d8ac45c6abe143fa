//! Applying a quantization scheme to a float, decomposed module: W4A16 with LPBQ
//! weights (or per-channel int8 where the recipe says), u16 asymmetric activations
//! from calibration ranges, a u8 KV cache (zero point 128, scale absmax/127.5), a u16
//! attention mask whose value 65535 means "attend" (real 1.0), and no -inf anywhere.
//!
//! Rules (qwen3-flow.md section 1):
//! - every op result gets a u16 per-tensor encoding from its calibrated range (the
//!   range always contains 0), looked up by the op's name;
//! - data-movement results keep their input's encoding; `nn.equal` gives `i1`;
//! - `nn.sigmoid` has the fixed encoding scale 1/65536, offset 0;
//! - an embedding lookup keeps its table's encoding; norm weights, the embedding table
//!   and RoPE tables are u16 per-tensor over their own range;
//! - constants get a u16 encoding over their own range (exact for splat constants:
//!   1/sqrt(d), -20, 1.0);
//! - the new K/V of each layer is requantized to the layer's u8 KV encoding (from the
//!   calibrated range of the K/V it is computed from); the past-K/V inputs, the cache
//!   concatenations and the present-K/V outputs share that encoding, so the runner
//!   copies bytes without requantizing;
//! - weights of `nn.linear` are quantized once per (weight, scheme) and shared by every
//!   function of the module: prefill and decode get bit-identical weights and encodings.
//!
//! Quantized weight payloads are added to the weight store as i8 bytes holding the
//! integer values (int4 values -8..7, one per byte) or u16 bytes for u16 tensors.

use mllm_ir::types::{per_tensor, ElemType, Encoding, Expressed, QuantType, Storage};
use mllm_ir::{Attr, AttrsExt, Function, Module, OpKind, ValueId, WDType, Weight};
use std::collections::HashMap;

use crate::quant::lpbq::{
    kv_u8_encoding, quantize_lpbq, quantize_per_channel, u16_encoding, Rounding,
};
use crate::quant::recipe::{Recipe, WeightScheme};

/// Calibrated value ranges, by op name (`loc`) and by function argument name
/// (`arg:<name>`), plus encodings and weights fixed in advance (an imported pymllm
/// export): an op listed in `encodings` gets exactly that u16 `(scale, offset)`, and a
/// weight listed in `weights` is used as given instead of being quantized.
#[derive(Debug, Clone, Default)]
pub struct Calibration {
    /// `(min, max)` of each named op's result.
    pub ranges: HashMap<String, (f32, f32)>,
    /// Exact per-tensor u16 encodings `(scale, offset)` by op name.
    pub encodings: HashMap<String, (f32, i32)>,
    /// Pre-quantized weights: the payload's store name and element type, keyed by the
    /// original weight name, prefixed with `linear:` for the weight operand of a linear
    /// (so a tied embedding table can be imported both as a u16 table and as an LPBQ
    /// lm_head).
    pub weights: HashMap<String, (String, ElemType)>,
}

impl Calibration {
    /// Widens the range of `name` to include `[min, max]`.
    pub fn observe(&mut self, name: &str, min: f32, max: f32) {
        let e = self
            .ranges
            .entry(name.to_owned())
            .or_insert((f32::INFINITY, f32::NEG_INFINITY));
        e.0 = e.0.min(min);
        e.1 = e.1.max(max);
    }
}

/// Errors of quantization.
#[derive(Debug, thiserror::Error)]
pub enum QuantError {
    /// Something about the model or calibration is missing or wrong.
    #[error("quantize: {0}")]
    Model(String),
}

/// What was quantized, for reports.
#[derive(Debug, Clone, Default)]
pub struct QuantSummary {
    /// `(weight name, scheme, SQNR dB of the dequantized weight)`.
    pub weights: Vec<(String, String, f64)>,
    /// Activations given an encoding.
    pub activations: usize,
}

/// The mask encoding: u16, 65535 = 1.0 (attend), 0 = 0.0 (masked).
pub fn mask_elem() -> ElemType {
    per_tensor(Storage::U16, 1.0 / 65535.0, 0)
}

fn u16_elem(min: f32, max: f32) -> ElemType {
    let (s, o) = u16_encoding(min, max);
    per_tensor(Storage::U16, s, o)
}

fn u8_kv_elem(absmax: f32) -> ElemType {
    let (s, o) = kv_u8_encoding(absmax);
    per_tensor(Storage::U8, s, o)
}

/// Quantizes a u16 per-tensor payload of `values` with `(scale, offset)`.
fn u16_payload(values: &[f32], scale: f32, offset: i32) -> Vec<u8> {
    let mut out = Vec::with_capacity(values.len() * 2);
    for v in values {
        let q = ((v / scale).round() - offset as f32).clamp(0.0, 65535.0) as u16;
        out.extend_from_slice(&q.to_le_bytes());
    }
    out
}

/// A linear weight quantized by [`quantize_linear_weight`].
#[derive(Debug, Clone)]
pub struct QuantizedLinear {
    /// Store name of the payload (`<weight>.lpbq` or `<weight>.int8`).
    pub name: String,
    /// Its IR element type (encoding included).
    pub elem: ElemType,
    /// The payload: integer values as i8 bytes, `[N, K]`.
    pub weight: Weight,
    /// `lpbq` or `int8`.
    pub scheme: &'static str,
    /// SQNR (dB) of the dequantized weight against the float weight.
    pub sqnr_db: f64,
}

/// SQNR (dB) of `deq(i)` against `w`, without materializing the dequantized weight.
fn sqnr_streaming(w: &[f32], deq: impl Fn(usize) -> f32) -> f64 {
    let (mut s, mut e) = (0f64, 0f64);
    for (i, r) in w.iter().enumerate() {
        let r = *r as f64;
        let d = r - deq(i) as f64;
        s += r * r;
        e += d * d;
    }
    if e == 0.0 {
        return f64::INFINITY;
    }
    10.0 * (s / e).log10()
}

/// Quantizes the `[N, K]` weight `w` (called `name`) of a linear with `scheme`. Used by
/// [`quantize_module`], and by callers that quantize weights ahead of it (streaming a
/// large checkpoint) and hand the results in through [`Calibration::weights`].
pub fn quantize_linear_weight(
    name: &str,
    w: &Weight,
    scheme: WeightScheme,
) -> Result<QuantizedLinear, QuantError> {
    if w.shape.len() != 2 {
        return Err(QuantError::Model(format!(
            "linear weight '{name}' has shape {:?}, expected [N, K]",
            w.shape
        )));
    }
    let (n, k) = (w.shape[0], w.shape[1]);
    let f = w.to_f32();
    let (suffix, elem, q, sq) = match scheme {
        WeightScheme::Lpbq { block } => {
            let l = quantize_lpbq(&f, n, k, block, 4, Rounding::Best)
                .map_err(|e| QuantError::Model(format!("{name}: {e}")))?;
            let nb = k / block;
            let sq = sqnr_streaming(&f, |i| {
                let (c, j) = (i / k, i % k);
                l.q[i] as f32 * (l.block_scales[c * nb + j / block] as f32 * l.channel_scales[c])
            });
            let elem = ElemType::Quant(QuantType {
                storage: Storage::I4,
                expressed: Expressed::F32,
                encoding: Encoding::Blockwise {
                    axis: 0,
                    block_size: block as u32,
                    block_scale_bits: 4,
                    block_scales: l.block_scales.into(),
                    channel_scales: l.channel_scales.into(),
                },
            });
            ("lpbq", elem, l.q, sq)
        }
        WeightScheme::PerChannelInt8 => {
            let p = quantize_per_channel(&f, n, k);
            let sq = sqnr_streaming(&f, |i| p.q[i] as f32 * p.scales[i / k]);
            let elem = ElemType::Quant(QuantType {
                storage: Storage::I8,
                expressed: Expressed::F32,
                encoding: Encoding::PerAxis {
                    axis: 0,
                    offsets: vec![0; n].into(),
                    scales: p.scales.into(),
                },
            });
            ("int8", elem, p.q, sq)
        }
    };
    drop(f);
    // i8 -> u8 bytes in place (same layout).
    let bytes: Vec<u8> = q.into_iter().map(|v| v as u8).collect();
    let weight = Weight::owned(WDType::I8, vec![n, k], bytes)
        .map_err(|e| QuantError::Model(e.to_string()))?;
    Ok(QuantizedLinear {
        name: format!("{name}.{suffix}"),
        elem,
        weight,
        scheme: suffix,
        sqnr_db: sq,
    })
}

struct WeightQuantizer<'a> {
    store: &'a mut mllm_ir::WeightStore,
    done: HashMap<(String, String), (String, ElemType)>,
    summary: QuantSummary,
}

impl WeightQuantizer<'_> {
    /// The float weight `name` to quantize.
    fn source(&self, name: &str) -> Result<std::sync::Arc<Weight>, QuantError> {
        self.store
            .get(name)
            .cloned()
            .ok_or_else(|| QuantError::Model(format!("weight '{name}' is not in the weight store")))
    }

    /// Quantizes the `[N, K]` weight `name` for a linear; returns (new name, elem).
    fn linear(
        &mut self,
        name: &str,
        scheme: WeightScheme,
    ) -> Result<(String, ElemType), QuantError> {
        let key = (name.to_owned(), format!("{scheme:?}"));
        if let Some(r) = self.done.get(&key) {
            return Ok(r.clone());
        }
        let w = self.source(name)?;
        let q = quantize_linear_weight(name, &w, scheme)?;
        self.store.insert(q.name.clone(), q.weight);
        self.summary
            .weights
            .push((name.to_owned(), q.scheme.to_owned(), q.sqnr_db));
        self.done.insert(key, (q.name.clone(), q.elem.clone()));
        Ok((q.name, q.elem))
    }

    /// Quantizes a weight to u16 per-tensor over its own range.
    fn u16(&mut self, name: &str) -> Result<(String, ElemType), QuantError> {
        let key = (name.to_owned(), "u16".to_owned());
        if let Some(r) = self.done.get(&key) {
            return Ok(r.clone());
        }
        let w = self.source(name)?;
        let f = w.to_f32();
        let (lo, hi) = f
            .iter()
            .fold((0f32, 0f32), |(a, b), v| (a.min(*v), b.max(*v)));
        let (s, o) = u16_encoding(lo, hi);
        let new = format!("{name}.u16");
        let wt = Weight::owned(WDType::U16, w.shape.clone(), u16_payload(&f, s, o))
            .map_err(|e| QuantError::Model(e.to_string()))?;
        self.store.insert(new.clone(), wt);
        let elem = per_tensor(Storage::U16, s, o);
        self.done.insert(key, (new.clone(), elem.clone()));
        Ok((new, elem))
    }
}

fn layer_of(name: &str) -> Option<usize> {
    let rest = name
        .strip_prefix("present_key_")
        .or_else(|| name.strip_prefix("present_value_"))?;
    rest.parse().ok()
}

/// Quantizes every function of `m` in place.
pub fn quantize_module(
    m: &mut Module,
    calib: &Calibration,
    recipe: &Recipe,
) -> Result<QuantSummary, QuantError> {
    let mut wq = WeightQuantizer {
        store: &mut m.weights,
        done: HashMap::new(),
        summary: QuantSummary::default(),
    };
    // KV encodings per (kind, layer), from the first function that defines them, so
    // every function shares them.
    let mut kv: HashMap<(bool, usize), ElemType> = HashMap::new();
    for f in m.functions.iter_mut() {
        quantize_function(f, calib, recipe, &mut wq, &mut kv)?;
    }
    Ok(wq.summary)
}

fn range_of(
    calib: &Calibration,
    f: &Function,
    op: mllm_ir::OpId,
) -> Result<(f32, f32), QuantError> {
    let o = f.op(op);
    let name = o.name.as_deref().ok_or_else(|| {
        QuantError::Model(format!(
            "@{}: a '{}' op has no name, so no calibration range",
            f.name,
            o.kind.name()
        ))
    })?;
    calib
        .ranges
        .get(name)
        .copied()
        .filter(|(a, b)| a.is_finite() && b.is_finite())
        .ok_or_else(|| {
            QuantError::Model(format!(
                "@{}: no calibration range for op \"{name}\"",
                f.name
            ))
        })
}

fn quantize_function(
    f: &mut Function,
    calib: &Calibration,
    recipe: &Recipe,
    wq: &mut WeightQuantizer<'_>,
    kv: &mut HashMap<(bool, usize), ElemType>,
) -> Result<(), QuantError> {
    let fname = f.name.clone();
    let err = |m: String| QuantError::Model(format!("@{fname}: {m}"));
    // Which values are the present K/V of which layer.
    let returned: Vec<ValueId> = f.returned().to_vec();
    let mut present: HashMap<ValueId, (bool, usize)> = HashMap::new();
    for (i, v) in returned.iter().enumerate() {
        if let Some(n) = f.result_names.get(i).cloned().flatten() {
            if let Some(l) = layer_of(&n) {
                present.insert(*v, (n.starts_with("present_key"), l));
            }
        }
    }
    // KV encodings from the calibrated ranges of the ops defining the present K/V.
    for (v, (is_k, l)) in &present {
        if kv.contains_key(&(*is_k, *l)) {
            continue;
        }
        let op = f
            .def_op(*v)
            .ok_or_else(|| err("a present K/V output is a function argument".into()))?;
        // Follow data movement back to the computing op (its range is the same).
        let mut cur = op;
        while f.op(cur).kind.is_data_movement() {
            match f.def_op(f.op(cur).operands[0]) {
                Some(d) => cur = d,
                None => break,
            }
        }
        // An exact u8 encoding (imported export) is keyed by the requantize op's name.
        let which = if *is_k { "k" } else { "v" };
        let exact = format!("model.layers.{l}.self_attn.{which}_cache_requantize");
        let elem = match calib.encodings.get(&exact) {
            Some((s, o)) => per_tensor(Storage::U8, *s, *o),
            None => {
                let (lo, hi) = range_of(calib, f, cur)?;
                u8_kv_elem(lo.abs().max(hi.abs()))
            }
        };
        kv.insert((*is_k, *l), elem);
    }
    // Arguments.
    for (i, a) in f.args().to_vec().iter().enumerate() {
        let name = f.arg_names[i].clone().unwrap_or_default();
        let ty = f.ty(*a).clone();
        let elem = if name == "causal_mask" || name == "attention_mask" {
            Some(mask_elem())
        } else if let Some(l) = name
            .strip_prefix("past_key_")
            .and_then(|s| s.parse::<usize>().ok())
        {
            Some(
                kv.get(&(true, l))
                    .cloned()
                    .ok_or_else(|| err(format!("no present_key_{l} output for input {name}")))?,
            )
        } else if let Some(l) = name
            .strip_prefix("past_value_")
            .and_then(|s| s.parse::<usize>().ok())
        {
            Some(
                kv.get(&(false, l))
                    .cloned()
                    .ok_or_else(|| err(format!("no present_value_{l} output for input {name}")))?,
            )
        } else if let Some((s, o)) = calib.encodings.get(&format!("arg:{name}")) {
            ty.elem()
                .is_float()
                .then(|| per_tensor(Storage::U16, *s, *o))
        } else if ty.elem().is_float() {
            let (lo, hi) = calib
                .ranges
                .get(&format!("arg:{name}"))
                .copied()
                .ok_or_else(|| err(format!("no calibration range for float input %{name}")))?;
            Some(u16_elem(lo, hi))
        } else {
            None
        };
        if let Some(e) = elem {
            f.set_ty(*a, ty.with_elem(e));
        }
    }
    // Ops in program order.
    let ops = f.op_ids();
    let mut activations = 0;
    for op in &ops {
        let o = f.op(*op).clone();
        if o.kind == OpKind::Return {
            continue;
        }
        let res = o.results[0];
        let ty = f.ty(res).clone();
        if !ty.elem().is_float() {
            continue;
        }
        // Weights read by this op get their quantized form first.
        quantize_weight_operands(f, *op, calib, recipe, wq)
            .map_err(|e| QuantError::Model(format!("@{fname}: {e}")))?;
        let new_elem: ElemType = match o.kind {
            OpKind::Weight => {
                // Typed by its users below (linear weights, norm weights, tables).
                continue;
            }
            OpKind::Constant => {
                let v = o.attrs.floats("value").unwrap_or(&[]);
                let (lo, hi) = v.iter().fold((0f32, 0f32), |(a, b), x| {
                    (a.min(*x as f32), b.max(*x as f32))
                });
                u16_elem(lo, hi)
            }
            OpKind::Equal => continue,
            k if k.is_data_movement() => {
                let input = f.ty(f.op(*op).operands[0]).clone();
                if input.elem().is_float() {
                    return Err(err(format!(
                        "'{}' ({}) moves a value that is not quantized yet",
                        o.name.clone().unwrap_or_default(),
                        k.name()
                    )));
                }
                mllm_ir::infer::moved_elem(k, &o.attrs, &input, ty.shape()).map_err(&err)?
            }
            OpKind::Embedding => f.ty(f.op(*op).operands[1]).elem().clone(),
            OpKind::Sigmoid => per_tensor(Storage::U16, 1.0 / 65536.0, 0),
            _ => match o.name.as_deref().and_then(|n| calib.encodings.get(n)) {
                Some((sc, off)) => per_tensor(Storage::U16, *sc, *off),
                None => {
                    let (lo, hi) = range_of(calib, f, *op)?;
                    u16_elem(lo, hi)
                }
            },
        };
        f.set_ty(res, ty.with_elem(new_elem));
        activations += 1;
    }
    wq.summary.activations += activations;
    // Requantize the new K/V to the layer's u8 encoding where it is produced for the
    // cache, and let the cache concatenation and the output use it.
    for (v, (is_k, l)) in present {
        let want = kv[&(is_k, l)].clone();
        let ty = f.ty(v).clone();
        if ty.elem() == &want {
            continue;
        }
        let op = f
            .def_op(v)
            .ok_or_else(|| err("present K/V is an argument".into()))?;
        let anchor = f
            .op(op)
            .next
            .ok_or_else(|| err("present K/V op has no successor".into()))?;
        let req = {
            let mut b = mllm_ir::Builder::before(f, anchor);
            b.convert(OpKind::Requantize, v, ty.with_elem(want.clone()))
        };
        if let Some(d) = f.def_op(req) {
            let which = if is_k { "k" } else { "v" };
            f.op_mut(d).name = Some(format!(
                "model.layers.{l}.self_attn.{which}_cache_requantize"
            ));
        }
        for u in f.op_ids() {
            let k = f.op(u).kind;
            if matches!(k, OpKind::Concat | OpKind::Return) {
                for x in f.op_mut(u).operands.iter_mut() {
                    if *x == v {
                        *x = req;
                    }
                }
            }
        }
        // The concatenation of cache and new entries now holds u8 values.
        for u in f.op_ids() {
            let o = f.op(u);
            if o.kind == OpKind::Concat && o.operands.contains(&req) {
                let r = o.results[0];
                let t = f.ty(r).with_elem(want.clone());
                f.set_ty(r, t);
            }
        }
    }
    Ok(())
}

fn quantize_weight_operands(
    f: &mut Function,
    op: mllm_ir::OpId,
    calib: &Calibration,
    recipe: &Recipe,
    wq: &mut WeightQuantizer<'_>,
) -> Result<(), QuantError> {
    let o = f.op(op).clone();
    for (i, v) in o.operands.iter().enumerate() {
        let Some(d) = f.def_op(*v) else { continue };
        if f.op(d).kind != OpKind::Weight || !f.ty(*v).elem().is_float() {
            continue;
        }
        let wname = f.op(d).attrs.str("name").unwrap_or_default().to_owned();
        let key = match (o.kind, i) {
            (OpKind::Linear, 1) => format!("linear:{wname}"),
            _ => wname.clone(),
        };
        let (new, elem) = match (o.kind, i) {
            // Pre-quantized (an imported export): used as given.
            _ if calib.weights.contains_key(&key) => {
                let (n, e) = calib.weights[&key].clone();
                if !wq.store.contains(&n) {
                    return Err(QuantError::Model(format!(
                        "pre-quantized weight '{n}' (for '{key}') is not in the weight store"
                    )));
                }
                (n, e)
            }
            (OpKind::Linear, 1) => {
                wq.linear(&wname, recipe.scheme_for(o.name.as_deref().unwrap_or("")))?
            }
            _ => wq.u16(&wname)?,
        };
        // The weight op may have other users (a tied embedding table is also the
        // lm_head): this user gets its own weight op for its scheme.
        let ty = f.ty(*v).with_elem(elem);
        let shared = f
            .op_ids()
            .into_iter()
            .any(|u| u != op && f.op(u).operands.contains(v));
        if shared {
            let nv = mllm_ir::Builder::before(f, d).weight(&new, ty);
            f.op_mut(op).operands[i] = nv;
        } else {
            f.op_mut(d).attrs.insert("name".into(), Attr::Str(new));
            f.set_ty(*v, ty);
        }
    }
    Ok(())
}
