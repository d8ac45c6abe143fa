//! The pymllm export format: the `model.safetensors` that mllm's Python PTQ step
//! (`pymllm/mobile/backends/qualcomm/transformers/qwen3/train.py`: `save_model(m.model, ..)`
//! after `convert()`) writes and mllm's QNN AOT compiler consumes.
//!
//! - [`export_pymllm`] writes a *quantized* module (from `quantize_module`, before any
//!   sha-split / linear-to-conv2d rewrite) in that layout and naming;
//! - [`read_pymllm`] reads such a file back into our layout: the quantized payloads (named
//!   as our quantizer names them), their element types, a float placeholder store the Qwen3
//!   builder accepts, and the exact activation encodings keyed by our op names. The
//!   `mllm-tools` `pymllm` module builds the module from that and calls `quantize_module`,
//!   so both paths meet in the same IR.
//!
//! Names and layouts (verified against mllm's public source, `UbiquitousLearning/mllm`,
//! files under `pymllm/mobile/backends/qualcomm/transformers/`; see [`activation_map`]):
//!
//! | tensor | layout |
//! |---|---|
//! | `<linear>.weight` (LPBQ, `core/qlinear.py` `QLinearLPBQ.convert_to_conv2d_deploy_hwio`) | int8 `[1,1,In,Out]` (HWIO); int4 values `& 0x0F` (two's-complement nibble, high bits cleared) |
//! | `<linear>.scale1` | u8 `[Out*In/B]`, out-channel-major block scales, values 1..=16 |
//! | `<linear>.scale2` | f32 `[Out]` channel scales; `w = q * scale1 * scale2` |
//! | `<linear>.weight/.scale/.zero_point` (per-channel int8, `QLinearW8A16_PerChannelSym`) | int8 `[1,1,In,Out]`, f32 `[1,1,1,Out]`, i32 `[1,1,1,Out]` (zero) |
//! | `<norm>.weight/.scale/.zero_point` (`core/rms_norm.py`), `model.embed_tokens.*` (`core/embedding.py`) | u16, f32 `[1]`, i32 `[1]` |
//! | `model.mllm_max_{sin,cos}_embedding` (`qwen3/modeling_qwen3.py` `convert_rope_for_deploy`) | u16 `[1, max_len, D]`, quantized with `model.{sin,cos}_embedding_input_qdq` |
//! | `<module>.<name>_qdq.fake_quant.scale` / `.zero_point` (`core/qdq.py`, torch `FakeQuantize` buffers) | f32, i32 (one element) |
//!
//! Conventions: torch's `real = (q - zero_point) * scale`; ours is `real = (q + offset) * scale`,
//! so `offset = -zero_point`. The u16 activations are asymmetric, zero point 0..=65535. The
//! KV encodings (`k_cast_to_int8_qdq`, `v_cast_to_int8_qdq`) are torch per-tensor symmetric
//! on `torch.uint8` (zero point 128, `scale = absmax / 127.5`); mllm's compiler asserts the
//! zero point is 128 (`QDQ_KV` in `examples/qwen3_qnn_aot/modeling_qwen_qnn_aot.hpp`), and so
//! does [`read_pymllm`]. A torch `FakeQuantize` scale/zero point buffer may be 0-d or `[1]`
//! after calibration (`recompute_scale_zp` resizes it to the observer's shape): the reader
//! accepts any shape with one element; the writer writes `[1]`.
//!
//! Beyond pymllm's names, the writer adds `model.layers.{l}.self_attn.{q,k}_rope_concat_output_qdq`
//! (our RoPE rotate-half concat may carry its own encoding before `quant-fix`; see
//! [`extension_map`]); the reader uses them when present and otherwise falls back to
//! pymllm's meaning. Our RoPE tables have `context_len` rows, pymllm's `max_len`
//! (`mllm_qualcomm_max_length`) rows: the writer writes `[1, context_len, D]`, the reader
//! needs at least `context_len` rows and keeps the first `context_len`.
//!
//! Not exported by pymllm, so not written or read here: `constant_zero.{scale,zero_point}`
//! (mllm's compile step pushes it itself), the observer state (`min_val`, `max_val`,
//! `fake_quant_enabled`, ...) which the reader ignores. Encodings of constants
//! (`scaling_qdq`, `neg_20_qdq`) are written for mllm's compiler; our quantizer derives the
//! constants' encodings from their values (the same min/max formula), so the reader does not
//! use them.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mllm_ir::types::{per_tensor, ElemType, Encoding, Expressed, QuantType, Storage};
use mllm_ir::{AttrsExt, Module, OpKind, WDType, Weight, WeightStore};

use crate::config::{Qwen3Config, EMBED_TOKENS, LM_HEAD};
use crate::qwen3::{ROPE_COS, ROPE_SIN};
use crate::{Checkpoint, DType, SafetensorsWriter, TensorSpec};

/// Errors of the pymllm export reader and writer; every message names the file and, where
/// one is involved, the tensor or op.
#[derive(Debug, thiserror::Error)]
pub enum PymllmError {
    /// Opening or writing the file failed.
    #[error(transparent)]
    File(#[from] crate::Error),
    /// A tensor the model needs is not in the export.
    #[error("{}: missing tensor {tensor} ({why})", file.display())]
    Missing {
        /// The export.
        file: PathBuf,
        /// The tensor.
        tensor: String,
        /// What it is needed for.
        why: String,
    },
    /// A tensor with the wrong dtype, shape or values.
    #[error("{}: tensor {tensor}: {msg}", file.display())]
    Bad {
        /// The export.
        file: PathBuf,
        /// The tensor.
        tensor: String,
        /// What is wrong.
        msg: String,
    },
    /// The module to export is not a quantized Qwen3 module of the expected form.
    #[error("{}: cannot export: {msg}", file.display())]
    Module {
        /// The output file.
        file: PathBuf,
        /// What is wrong (names the op or weight).
        msg: String,
    },
}

type Result<T> = std::result::Result<T, PymllmError>;

/// One activation encoding: the pymllm QDQ module path (without `.fake_quant.scale`) and the
/// name of our op whose result it encodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QdqName {
    /// pymllm QDQ module path, e.g. `model.layers.0.self_attn.q_proj_input_qdq`.
    pub qdq: String,
    /// Our op name (`loc`), e.g. `model.layers.0.input_layernorm`.
    pub op: String,
}

/// The u16 activation encodings of a Qwen3 model with `layers` layers: pymllm QDQ name ->
/// our op name. Each was checked against `qwen3/modeling_qwen3.py` (where the QDQ module
/// is applied in `forward`) and the C++ consumer `examples/qwen3_qnn_aot/modeling_qwen_qnn_aot.hpp`:
///
/// - `self_attn.q_proj_input_qdq` quantizes the input of q/k/v_proj = the output of
///   `input_layernorm`; `q_norm_input_qdq`/`k_norm_input_qdq` the q/k_proj outputs;
///   `v_cast_to_int16_qdq` the v_proj output; `q_norm_output_qdq`/`k_norm_output_qdq` the
///   norm outputs; `q_rope_mul_0_output_qdq` = `x * cos`, `q_rope_neg_half_qdq` = `-x2`,
///   `q_rope_mul_1_output_qdq` = `rotate_half(x) * sin`, `q_rope_add_0_output_qdq` = the sum
///   (same for k); `qk_matmul_output_qdq`, `mul_0_output_qdq` (times 1/sqrt(d)),
///   `reduce_min_output_qdq`, `minus_0_output_qdq` (min - 20), `where_attn_qdq`,
///   `softmax_output_qdq`, `attn_value_matmul_output_qdq`;
/// - decoder: `add_0_lhs_input_qdq` = o_proj output, `add_0_output_qdq` = the attention
///   residual sum, `add_1_lhs_input_qdq` = down_proj output; the MLP residual sum has no QDQ
///   of its own: it is the *next* layer's `input_layernorm_input_qdq` (layers != 0 only) or,
///   after the last layer, `model.norm_input_qdq`;
/// - MLP: `up_proj_input_qdq` = post_attention_layernorm output, `up_proj_output_qdq`,
///   `gate_proj_output_qdq`, `sigmoid_output_qdq` (fixed 1/65536, zero point 0),
///   `act_output_qdq` = `gate * sigmoid(gate)`, `down_proj_input_qdq` = `act * up`;
/// - `lm_head_input_qdq` = `model.norm` output, `lm_head_output_qdq` = logits.
///
/// The rotate-half concat has no QDQ (pymllm's `ConcatObserver` merges `q_norm_output` and
/// `q_rope_neg_half`); our concat keeps its input's encoding. Layer 0's input is the
/// embedding output, which keeps the table's encoding in both.
pub fn activation_map(layers: usize) -> Vec<QdqName> {
    let mut v = Vec::new();
    let mut push = |qdq: String, op: String| v.push(QdqName { qdq, op });
    for l in 0..layers {
        let p = format!("model.layers.{l}");
        let a = format!("{p}.self_attn");
        let m = format!("{p}.mlp");
        push(
            format!("{a}.q_proj_input_qdq"),
            format!("{p}.input_layernorm"),
        );
        push(format!("{a}.q_norm_input_qdq"), format!("{a}.q_proj"));
        push(format!("{a}.k_norm_input_qdq"), format!("{a}.k_proj"));
        push(format!("{a}.v_cast_to_int16_qdq"), format!("{a}.v_proj"));
        for w in ["q", "k"] {
            push(format!("{a}.{w}_norm_output_qdq"), format!("{a}.{w}_norm"));
            let r = format!("{a}.rope_{w}");
            push(
                format!("{a}.{w}_rope_mul_0_output_qdq"),
                format!("{r}.mul_cos"),
            );
            push(format!("{a}.{w}_rope_neg_half_qdq"), format!("{r}.neg"));
            push(
                format!("{a}.{w}_rope_mul_1_output_qdq"),
                format!("{r}.mul_sin"),
            );
            push(format!("{a}.{w}_rope_add_0_output_qdq"), format!("{r}.add"));
        }
        push(
            format!("{a}.qk_matmul_output_qdq"),
            format!("{a}.qk_matmul"),
        );
        push(format!("{a}.mul_0_output_qdq"), format!("{a}.qk_scale"));
        push(
            format!("{a}.reduce_min_output_qdq"),
            format!("{a}.reduce_min"),
        );
        push(format!("{a}.minus_0_output_qdq"), format!("{a}.mask_fill"));
        push(format!("{a}.where_attn_qdq"), format!("{a}.mask_where"));
        push(format!("{a}.softmax_output_qdq"), format!("{a}.softmax"));
        push(
            format!("{a}.attn_value_matmul_output_qdq"),
            format!("{a}.pv_matmul"),
        );
        push(format!("{p}.add_0_lhs_input_qdq"), format!("{a}.o_proj"));
        push(
            format!("{p}.add_0_output_qdq"),
            format!("{p}.attn_residual"),
        );
        push(
            format!("{m}.up_proj_input_qdq"),
            format!("{p}.post_attention_layernorm"),
        );
        push(format!("{m}.up_proj_output_qdq"), format!("{m}.up_proj"));
        push(
            format!("{m}.gate_proj_output_qdq"),
            format!("{m}.gate_proj"),
        );
        push(
            format!("{m}.sigmoid_output_qdq"),
            format!("{m}.act.sigmoid"),
        );
        push(format!("{m}.act_output_qdq"), format!("{m}.act.mul"));
        push(format!("{m}.down_proj_input_qdq"), format!("{m}.mul"));
        push(format!("{p}.add_1_lhs_input_qdq"), format!("{m}.down_proj"));
        let next = if l + 1 < layers {
            format!("model.layers.{}.input_layernorm_input_qdq", l + 1)
        } else {
            "model.norm_input_qdq".to_string()
        };
        push(next, format!("{p}.mlp_residual"));
    }
    push("lm_head_input_qdq".into(), "model.norm".into());
    push("lm_head_output_qdq".into(), "lm_head".into());
    v
}

/// Ops whose encoding our quantizer fixes or derives itself, so an importer does not pass
/// the export's value for them (the writer still writes them).
fn derived_by_quantizer(op: &str) -> bool {
    op.ends_with(".act.sigmoid")
}

/// Encodings our graph has and pymllm's naming has no QDQ for, written under names of the
/// same pattern (mllm's loader pulls tensors by name and never asks for these): the RoPE
/// rotate-half concat. In pymllm its encoding is the `ConcatObserver` union range, which
/// `recompute_scale_zp` copies into both inputs' QDQs (`q_norm_output_qdq` and
/// `q_rope_neg_half_qdq`; `validate_concat_observer` checks they agree), so a pymllm export
/// without the extension imports the concat with the `*_rope_neg_half_qdq` encoding (the
/// fallback, third element).
pub fn extension_map(layers: usize) -> Vec<(QdqName, String)> {
    let mut v = Vec::new();
    for l in 0..layers {
        let a = format!("model.layers.{l}.self_attn");
        for w in ["q", "k"] {
            v.push((
                QdqName {
                    qdq: format!("{a}.{w}_rope_concat_output_qdq"),
                    op: format!("{a}.rope_{w}.rotate_half"),
                },
                format!("{a}.{w}_rope_neg_half_qdq"),
            ));
        }
    }
    v
}

/// The linear modules of a Qwen3 model (pymllm module path = our op name = HF prefix).
pub fn linear_modules(layers: usize) -> Vec<String> {
    let mut v = Vec::new();
    for l in 0..layers {
        for w in ["q", "k", "v", "o"] {
            v.push(format!("model.layers.{l}.self_attn.{w}_proj"));
        }
        for w in ["gate", "up", "down"] {
            v.push(format!("model.layers.{l}.mlp.{w}_proj"));
        }
    }
    v.push("lm_head".into());
    v
}

/// The RMSNorm modules of a Qwen3 model.
pub fn norm_modules(layers: usize) -> Vec<String> {
    let mut v = Vec::new();
    for l in 0..layers {
        let p = format!("model.layers.{l}");
        v.push(format!("{p}.input_layernorm"));
        v.push(format!("{p}.self_attn.q_norm"));
        v.push(format!("{p}.self_attn.k_norm"));
        v.push(format!("{p}.post_attention_layernorm"));
    }
    v.push("model.norm".into());
    v
}

/// Name of the RoPE table in the export and of its QDQ, for our table `ROPE_COS`/`ROPE_SIN`.
fn rope_names(ours: &str) -> (&'static str, &'static str) {
    if ours == ROPE_COS {
        (
            "model.mllm_max_cos_embedding",
            "model.cos_embedding_input_qdq",
        )
    } else {
        (
            "model.mllm_max_sin_embedding",
            "model.sin_embedding_input_qdq",
        )
    }
}

// ------------------------------------------------------------------------------------------
// Writer

/// What [`export_pymllm`] wrote.
#[derive(Debug, Clone, Default)]
pub struct ExportSummary {
    /// Tensors written.
    pub tensors: usize,
    /// Activation encodings written (QDQ pairs).
    pub encodings: usize,
    /// Bytes of tensor payload.
    pub bytes: u64,
}

enum Payload {
    /// Raw bytes of a store weight.
    Store(String),
    /// An `[N, K]` i8 store weight written as HWIO `[1,1,K,N]`, nibble-masked or not.
    Hwio { name: String, mask: bool },
    /// Literal bytes.
    Bytes(Vec<u8>),
}

fn f32s(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn i32s(v: &[i32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Writes the quantized module `module` as a pymllm export at `out` (streaming, atomic: the
/// file appears only when complete). Every weight is written in pymllm's layout and every
/// activation encoding under its QDQ name (see [`activation_map`]).
pub fn export_pymllm(module: &Module, out: &Path) -> Result<ExportSummary> {
    let bad = |msg: String| PymllmError::Module {
        file: out.to_path_buf(),
        msg,
    };
    // Result element types by op name, weights by user op name, KV types by layer.
    let mut elems: HashMap<String, ElemType> = HashMap::new();
    // user op name -> (weight store name, weight elem)
    let mut weights: HashMap<String, (String, ElemType)> = HashMap::new();
    let mut consts: HashMap<String, ElemType> = HashMap::new();
    let mut kv: BTreeMap<(usize, bool), ElemType> = BTreeMap::new();
    let mut layers = 0usize;
    for f in &module.functions {
        for (i, a) in f.args().iter().enumerate() {
            let name = f.arg_names.get(i).cloned().flatten().unwrap_or_default();
            for (pre, is_k) in [("past_key_", true), ("past_value_", false)] {
                if let Some(l) = name.strip_prefix(pre).and_then(|s| s.parse().ok()) {
                    kv.entry((l, is_k))
                        .or_insert_with(|| f.ty(*a).elem().clone());
                }
            }
        }
        for op in f.op_ids() {
            let o = f.op(op);
            let Some(name) = o.name.clone() else { continue };
            if let Some(l) = name
                .strip_prefix("model.layers.")
                .and_then(|r| r.split('.').next())
                .and_then(|s| s.parse::<usize>().ok())
            {
                layers = layers.max(l + 1);
            }
            let Some(res) = o.results.first() else {
                continue;
            };
            let elem = f.ty(*res).elem().clone();
            if let Some(prev) = elems.get(&name) {
                if prev != &elem {
                    return Err(bad(format!(
                        "op {name} has different element types in different functions ({prev:?} in one, {elem:?} in @{})",
                        f.name
                    )));
                }
            }
            elems.insert(name.clone(), elem);
            let weight_at = match o.kind {
                OpKind::Linear | OpKind::RmsNorm => Some(1),
                OpKind::Embedding => Some(1),
                OpKind::Gather => Some(0),
                _ => None,
            };
            if let Some(i) = weight_at {
                if let Some(d) = o.operands.get(i).and_then(|v| f.def_op(*v)) {
                    if f.op(d).kind == OpKind::Weight {
                        let wn = f.op(d).attrs.str("name").unwrap_or_default().to_owned();
                        let we = f.ty(o.operands[i]).elem().clone();
                        weights.insert(name.clone(), (wn, we));
                    }
                }
            }
            // Constants met by the attention scale and the mask fill.
            if matches!(o.kind, OpKind::Mul | OpKind::Add) {
                if let Some(d) = o.operands.get(1).and_then(|v| f.def_op(*v)) {
                    if f.op(d).kind == OpKind::Constant {
                        consts.insert(name.clone(), f.ty(o.operands[1]).elem().clone());
                    }
                }
            }
        }
    }
    if layers == 0 {
        return Err(bad(
            "no op named model.layers.N.*: not a Qwen3 module".into()
        ));
    }

    let mut plan: Vec<(TensorSpec, Payload)> = Vec::new();
    let mut encodings = 0usize;
    let add_enc = |plan: &mut Vec<(TensorSpec, Payload)>, base: &str, s: f32, zp: i32| {
        plan.push((
            TensorSpec::new(format!("{base}.scale"), DType::F32, vec![1]),
            Payload::Bytes(f32s(&[s])),
        ));
        plan.push((
            TensorSpec::new(format!("{base}.zero_point"), DType::I32, vec![1]),
            Payload::Bytes(i32s(&[zp])),
        ));
    };
    let per_tensor_of = |what: &str, e: &ElemType| -> Result<(f32, i32)> {
        match e {
            ElemType::Quant(q) => q.encoding.per_tensor(),
            _ => None,
        }
        .ok_or_else(|| bad(format!("{what} has type {e:?}, expected a per-tensor quantized type (quantize the module first)")))
    };

    // Activations.
    for q in activation_map(layers) {
        let e = elems
            .get(&q.op)
            .ok_or_else(|| bad(format!("no op named {} (for {})", q.op, q.qdq)))?;
        let (s, o) = per_tensor_of(&format!("op {}", q.op), e)?;
        add_enc(&mut plan, &format!("{}.fake_quant", q.qdq), s, -o);
        encodings += 1;
    }
    // Our extension names (see extension_map).
    for (q, _) in extension_map(layers) {
        if let Some(e) = elems.get(&q.op) {
            let (s, o) = per_tensor_of(&format!("op {}", q.op), e)?;
            add_enc(&mut plan, &format!("{}.fake_quant", q.qdq), s, -o);
            encodings += 1;
        }
    }
    // Constants (for mllm's compiler; see the module docs).
    for l in 0..layers {
        let a = format!("model.layers.{l}.self_attn");
        for (op, qdq) in [("qk_scale", "scaling_qdq"), ("mask_fill", "neg_20_qdq")] {
            if let Some(e) = consts.get(&format!("{a}.{op}")) {
                let (s, o) = per_tensor_of(&format!("the constant of {a}.{op}"), e)?;
                add_enc(&mut plan, &format!("{a}.{qdq}.fake_quant"), s, -o);
                encodings += 1;
            }
        }
    }
    // KV cache (u8, zero point 128).
    for ((l, is_k), e) in &kv {
        let which = if *is_k { "k" } else { "v" };
        let (s, o) = per_tensor_of(
            &format!("past_{}_{l}", if *is_k { "key" } else { "value" }),
            e,
        )?;
        add_enc(
            &mut plan,
            &format!("model.layers.{l}.self_attn.{which}_cast_to_int8_qdq.fake_quant"),
            s,
            -o,
        );
        encodings += 1;
    }
    for l in 0..layers {
        for is_k in [true, false] {
            if !kv.contains_key(&(l, is_k)) {
                return Err(bad(format!(
                    "no past_{}_{l} input: the module has no KV cache for layer {l}",
                    if is_k { "key" } else { "value" }
                )));
            }
        }
    }

    let store_weight = |n: &str| -> Result<&Arc<Weight>> {
        module
            .weights
            .get(n)
            .ok_or_else(|| bad(format!("weight {n} is not in the module's store")))
    };
    // Linear weights.
    for lin in linear_modules(layers) {
        let (wn, we) = weights
            .get(&lin)
            .ok_or_else(|| bad(format!("no linear op {lin} with a weight operand")))?;
        let w = store_weight(wn)?;
        if w.shape.len() != 2 || w.dtype != WDType::I8 {
            return Err(bad(format!(
                "weight {wn} of {lin} is {:?} {:?}, expected i8 [N, K] (quantize the module first)",
                w.dtype, w.shape
            )));
        }
        let (n, k) = (w.shape[0], w.shape[1]);
        let hwio = vec![1, 1, k, n];
        match we {
            ElemType::Quant(QuantType {
                encoding:
                    Encoding::Blockwise {
                        axis: 0,
                        block_size,
                        block_scales,
                        channel_scales,
                        ..
                    },
                ..
            }) => {
                let b = *block_size as usize;
                if b == 0 || k % b != 0 || block_scales.len() != n * (k / b) || channel_scales.len() != n {
                    return Err(bad(format!("weight {wn}: LPBQ scales do not fit [{n}, {k}] with block {b}")));
                }
                plan.push((
                    TensorSpec::new(format!("{lin}.weight"), DType::I8, hwio),
                    Payload::Hwio { name: wn.clone(), mask: true },
                ));
                plan.push((
                    TensorSpec::new(format!("{lin}.scale1"), DType::U8, vec![block_scales.len()]),
                    Payload::Bytes(block_scales.to_vec()),
                ));
                plan.push((
                    TensorSpec::new(format!("{lin}.scale2"), DType::F32, vec![n]),
                    Payload::Bytes(f32s(channel_scales)),
                ));
            }
            ElemType::Quant(QuantType {
                encoding: Encoding::PerAxis { axis: 0, scales, offsets },
                ..
            }) => {
                if scales.len() != n || offsets.iter().any(|o| *o != 0) {
                    return Err(bad(format!("weight {wn}: per-channel int8 must be symmetric with {n} scales")));
                }
                plan.push((
                    TensorSpec::new(format!("{lin}.weight"), DType::I8, hwio),
                    Payload::Hwio { name: wn.clone(), mask: false },
                ));
                plan.push((
                    TensorSpec::new(format!("{lin}.scale"), DType::F32, vec![1, 1, 1, n]),
                    Payload::Bytes(f32s(scales)),
                ));
                plan.push((
                    TensorSpec::new(format!("{lin}.zero_point"), DType::I32, vec![1, 1, 1, n]),
                    Payload::Bytes(vec![0u8; 4 * n]),
                ));
            }
            other => {
                return Err(bad(format!(
                    "weight {wn} of {lin} has type {other:?}, expected LPBQ (axis 0) or per-channel int8"
                )))
            }
        }
    }
    // u16 tables: norms, embedding, RoPE.
    let u16_table = |plan: &mut Vec<(TensorSpec, Payload)>,
                     user: &str,
                     name: &str,
                     qdq: Option<&str>,
                     shape: Option<Vec<usize>>|
     -> Result<()> {
        let (wn, we) = weights
            .get(user)
            .ok_or_else(|| bad(format!("no op {user} reading a weight")))?;
        let w = store_weight(wn)?;
        if w.dtype != WDType::U16 {
            return Err(bad(format!(
                "weight {wn} of {user} is {:?}, expected u16 (quantize the module first)",
                w.dtype
            )));
        }
        let (s, o) = per_tensor_of(&format!("weight {wn}"), we)?;
        plan.push((
            TensorSpec::new(name, DType::U16, shape.unwrap_or_else(|| w.shape.clone())),
            Payload::Store(wn.clone()),
        ));
        match qdq {
            Some(q) => add_enc(plan, &format!("{q}.fake_quant"), s, -o),
            None => {
                let base = name.strip_suffix(".weight").unwrap_or(name);
                add_enc(plan, base, s, -o)
            }
        }
        Ok(())
    };
    for norm in norm_modules(layers) {
        u16_table(&mut plan, &norm, &format!("{norm}.weight"), None, None)?;
    }
    u16_table(&mut plan, "model.embed_tokens", EMBED_TOKENS, None, None)?;
    for (ours, gather) in [
        (ROPE_COS, "model.rope.gather_cos"),
        (ROPE_SIN, "model.rope.gather_sin"),
    ] {
        let (name, qdq) = rope_names(ours);
        let shape = weights
            .get(gather)
            .and_then(|(wn, _)| module.weights.get(wn))
            .map(|w| {
                let mut s = vec![1];
                s.extend_from_slice(&w.shape);
                s
            });
        u16_table(&mut plan, gather, name, Some(qdq), shape)?;
        encodings += 1;
    }

    plan.sort_by(|a, b| a.0.name.cmp(&b.0.name));
    let specs: Vec<TensorSpec> = plan.iter().map(|p| p.0.clone()).collect();
    let mut meta = BTreeMap::new();
    meta.insert("format".to_string(), "pt".to_string());
    let mut wr = SafetensorsWriter::create(out, &specs, &meta)?;
    let mut bytes = 0u64;
    for (spec, p) in &plan {
        let data: Vec<u8> = match p {
            Payload::Bytes(b) => b.clone(),
            Payload::Store(n) => store_weight(n)?.bytes().into_owned(),
            Payload::Hwio { name, mask } => {
                let w = store_weight(name)?;
                let (n, k) = (w.shape[0], w.shape[1]);
                let src = w.bytes();
                let mut d = vec![0u8; n * k];
                for r in 0..n {
                    for c in 0..k {
                        let v = src[r * k + c];
                        d[c * n + r] = if *mask { v & 0x0F } else { v };
                    }
                }
                d
            }
        };
        bytes += data.len() as u64;
        wr.write_tensor(&spec.name, &data)?;
    }
    wr.finish()?;
    Ok(ExportSummary {
        tensors: plan.len(),
        encodings,
        bytes,
    })
}

// ------------------------------------------------------------------------------------------
// Reader

/// A pymllm export in our layout, ready for the Qwen3 builder and `quantize_module`.
#[derive(Debug, Clone, Default)]
pub struct PymllmImport {
    /// Float placeholders (zeros, shared, bf16) for every tensor the builder checks, plus the
    /// quantized payloads under our quantizer's names (`<w>.lpbq` i8 `[N,K]` int4 values,
    /// `<w>.int8`, `<w>.u16`).
    pub store: WeightStore,
    /// Pre-quantized weights as `Calibration::weights` wants them: key (`<w>` or
    /// `linear:<w>`) -> (payload name, element type).
    pub weights: HashMap<String, (String, ElemType)>,
    /// Exact encodings as `Calibration::encodings` wants them: our op name (or
    /// `model.layers.{l}.self_attn.{k,v}_cache_requantize` for the u8 KV) -> (scale, offset).
    pub encodings: HashMap<String, (f32, i32)>,
    /// LPBQ block size found (0 if no LPBQ linear).
    pub block_size: usize,
}

struct Reader<'a> {
    ckpt: &'a Checkpoint,
    file: PathBuf,
}

impl Reader<'_> {
    fn bad(&self, tensor: &str, msg: impl Into<String>) -> PymllmError {
        PymllmError::Bad {
            file: self.file.clone(),
            tensor: tensor.to_string(),
            msg: msg.into(),
        }
    }

    fn get(&self, name: &str, why: &str, dtypes: &[DType]) -> Result<crate::TensorView<'_>> {
        let t = self.ckpt.get(name).ok_or_else(|| PymllmError::Missing {
            file: self.file.clone(),
            tensor: name.to_string(),
            why: why.to_string(),
        })?;
        if !dtypes.contains(&t.dtype) {
            return Err(self.bad(
                name,
                format!(
                    "dtype {} ({why}), expected {}",
                    t.dtype,
                    dtypes
                        .iter()
                        .map(|d| d.name())
                        .collect::<Vec<_>>()
                        .join(" or ")
                ),
            ));
        }
        Ok(t)
    }

    fn shaped(
        &self,
        name: &str,
        why: &str,
        dtypes: &[DType],
        shapes: &[Vec<usize>],
    ) -> Result<crate::TensorView<'_>> {
        let t = self.get(name, why, dtypes)?;
        if !shapes.iter().any(|s| s.as_slice() == t.shape) {
            return Err(self.bad(
                name,
                format!("shape {:?} ({why}), expected {:?}", t.shape, shapes[0]),
            ));
        }
        Ok(t)
    }

    /// A one-element scale (f32) and zero point (i32/i64) pair at `base.scale`/`base.zero_point`.
    fn encoding(&self, base: &str, why: &str, zp_range: (i64, i64)) -> Result<(f32, i64)> {
        let sn = format!("{base}.scale");
        let zn = format!("{base}.zero_point");
        let s = self.get(&sn, why, &[DType::F32])?;
        if s.numel() != 1 {
            return Err(self.bad(
                &sn,
                format!("has {} elements, expected 1 (per-tensor)", s.numel()),
            ));
        }
        let scale = f32::from_le_bytes([s.bytes[0], s.bytes[1], s.bytes[2], s.bytes[3]]);
        if !(scale.is_finite() && scale > 0.0) {
            return Err(self.bad(&sn, format!("scale {scale} is not finite and positive")));
        }
        let z = self.get(&zn, why, &[DType::I32, DType::I64])?;
        if z.numel() != 1 {
            return Err(self.bad(
                &zn,
                format!("has {} elements, expected 1 (per-tensor)", z.numel()),
            ));
        }
        let zp = if z.dtype == DType::I32 {
            i32::from_le_bytes([z.bytes[0], z.bytes[1], z.bytes[2], z.bytes[3]]) as i64
        } else {
            let mut b = [0u8; 8];
            b.copy_from_slice(&z.bytes[..8]);
            i64::from_le_bytes(b)
        };
        if zp < zp_range.0 || zp > zp_range.1 {
            return Err(self.bad(
                &zn,
                format!("zero point {zp} is outside {}..={}", zp_range.0, zp_range.1),
            ));
        }
        Ok((scale, zp))
    }
}

/// A store of zeros shared by every float placeholder.
struct Zeros(Arc<dyn mllm_ir::weights::WeightBytes>);

impl Zeros {
    fn weight(&self, shape: Vec<usize>) -> std::result::Result<Weight, mllm_ir::IrError> {
        let len = shape.iter().product::<usize>() * 2;
        Weight::from_range(WDType::BF16, shape, self.0.clone(), 0, len)
    }
}

/// Reads the pymllm export `export` for the model `cfg`, with RoPE tables cut to
/// `context_len` rows (the export's tables must have at least that many). Every tensor the
/// model needs is checked (dtype, shape, values: int4 nibbles, block scales 1..=16, finite
/// positive scales, zero points in range); the first problem is returned naming the file and
/// the tensor.
pub fn read_pymllm(export: &Path, cfg: &Qwen3Config, context_len: usize) -> Result<PymllmImport> {
    let ckpt = Checkpoint::open(export)?;
    let r = Reader {
        ckpt: &ckpt,
        file: export.to_path_buf(),
    };
    let layers = cfg.num_hidden_layers;
    let mut imp = PymllmImport::default();
    let biggest = cfg
        .expected_tensors()
        .iter()
        .map(|(_, s)| s.iter().product::<usize>())
        .chain(std::iter::once(cfg.lm_head_shape().iter().product()))
        .max()
        .unwrap_or(0);
    let zeros = Zeros(Arc::new(vec![0u8; biggest * 2]));
    let ir = |t: &str, e: mllm_ir::IrError| PymllmError::Bad {
        file: export.to_path_buf(),
        tensor: t.to_string(),
        msg: e.to_string(),
    };
    for (name, shape) in cfg.expected_tensors() {
        let w = zeros.weight(shape).map_err(|e| ir(&name, e))?;
        imp.store.insert(name, w);
    }
    let tied = cfg.tie_word_embeddings;
    if !tied {
        let w = zeros
            .weight(cfg.lm_head_shape())
            .map_err(|e| ir(LM_HEAD, e))?;
        imp.store.insert(LM_HEAD, w);
    }

    // Linear weights.
    let (h, d) = (cfg.hidden_size, cfg.head_dim);
    let mut dims: HashMap<String, (usize, usize)> = HashMap::new();
    for l in 0..layers {
        let a = format!("model.layers.{l}.self_attn");
        let m = format!("model.layers.{l}.mlp");
        dims.insert(format!("{a}.q_proj"), (h, cfg.num_attention_heads * d));
        dims.insert(format!("{a}.k_proj"), (h, cfg.num_key_value_heads * d));
        dims.insert(format!("{a}.v_proj"), (h, cfg.num_key_value_heads * d));
        dims.insert(format!("{a}.o_proj"), (cfg.num_attention_heads * d, h));
        dims.insert(format!("{m}.gate_proj"), (h, cfg.intermediate_size));
        dims.insert(format!("{m}.up_proj"), (h, cfg.intermediate_size));
        dims.insert(format!("{m}.down_proj"), (cfg.intermediate_size, h));
    }
    dims.insert("lm_head".into(), (h, cfg.vocab_size));
    for lin in linear_modules(layers) {
        let (k, n) = dims[&lin];
        // Our weight name for this linear (the tied lm_head reads the embedding table).
        let ours = if lin == "lm_head" {
            if tied {
                EMBED_TOKENS.to_string()
            } else {
                LM_HEAD.to_string()
            }
        } else {
            format!("{lin}.weight")
        };
        let wn = format!("{lin}.weight");
        let lpbq = ckpt.contains(&format!("{lin}.scale1"));
        let why = if lpbq { "LPBQ weight" } else { "linear weight" };
        let w = r.shaped(&wn, why, &[DType::I8], &[vec![1, 1, k, n]])?;
        let mut vals = vec![0u8; n * k];
        if lpbq {
            let s1n = format!("{lin}.scale1");
            let s2n = format!("{lin}.scale2");
            let s1 = r.get(&s1n, "LPBQ block scales", &[DType::U8])?;
            if s1.shape.len() != 1
                || s1.numel() == 0
                || s1.numel() % n != 0
                || k % (s1.numel() / n) != 0
            {
                return Err(r.bad(
                    &s1n,
                    format!("shape {:?} does not hold {n} channels x a whole number of blocks of {k} inputs", s1.shape),
                ));
            }
            let nb = s1.numel() / n;
            let b = k / nb;
            if let Some(cb) = cfg.linear_block_size {
                if cb != b {
                    return Err(r.bad(
                        &s1n,
                        format!("gives block size {b}, the config says linear_block_size {cb}"),
                    ));
                }
            }
            if imp.block_size != 0 && imp.block_size != b {
                return Err(r.bad(
                    &s1n,
                    format!("gives block size {b}, other linears use {}", imp.block_size),
                ));
            }
            imp.block_size = b;
            let s2 = r.shaped(&s2n, "LPBQ channel scales", &[DType::F32], &[vec![n]])?;
            let bs: Vec<u8> = s1.bytes.to_vec();
            if let Some(i) = bs.iter().position(|v| *v == 0 || *v > 16) {
                return Err(r.bad(
                    &s1n,
                    format!("block scale {} at {i} is outside 1..=16", bs[i]),
                ));
            }
            let cs: Vec<f32> = s2
                .bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            if let Some(i) = cs.iter().position(|v| !(v.is_finite() && *v > 0.0)) {
                return Err(r.bad(
                    &s2n,
                    format!("channel scale {} at {i} is not finite and positive", cs[i]),
                ));
            }
            for (i, v) in w.bytes.iter().enumerate() {
                if *v > 0x0F {
                    return Err(r.bad(
                        &wn,
                        format!("value {} at {i} is not a 4-bit nibble (pymllm masks int4 values with 0x0F)", *v as i8),
                    ));
                }
                let (kk, nn) = (i / n, i % n);
                let s = if *v >= 8 { *v as i16 - 16 } else { *v as i16 };
                vals[nn * k + kk] = s as i8 as u8;
            }
            // mllm clamps block scales to 16, which needs 5 bits; say so in the type rather
            // than wrap (ours are 1..=15).
            let bits = if bs.iter().any(|v| *v > 15) { 5 } else { 4 };
            let elem = ElemType::Quant(QuantType {
                storage: Storage::I4,
                expressed: Expressed::F32,
                encoding: Encoding::Blockwise {
                    axis: 0,
                    block_size: b as u32,
                    block_scale_bits: bits,
                    block_scales: bs.into(),
                    channel_scales: cs.into(),
                },
            });
            let pn = format!("{ours}.lpbq");
            imp.store.insert(
                pn.clone(),
                Weight::owned(WDType::I8, vec![n, k], vals).map_err(|e| ir(&wn, e))?,
            );
            imp.weights.insert(format!("linear:{ours}"), (pn, elem));
        } else {
            let sn = format!("{lin}.scale");
            let zn = format!("{lin}.zero_point");
            if !ckpt.contains(&sn) {
                return Err(PymllmError::Missing {
                    file: export.to_path_buf(),
                    tensor: format!("{lin}.scale1"),
                    why: format!("block scales of {lin} (nor is there a per-channel {sn})"),
                });
            }
            let s = r.shaped(
                &sn,
                "per-channel scales",
                &[DType::F32],
                &[vec![1, 1, 1, n], vec![n]],
            )?;
            let z = r.shaped(
                &zn,
                "per-channel zero points",
                &[DType::I32, DType::I64],
                &[vec![1, 1, 1, n], vec![n]],
            )?;
            if z.bytes.iter().any(|b| *b != 0) {
                return Err(r.bad(
                    &zn,
                    "per-channel int8 weights must be symmetric (zero points 0)",
                ));
            }
            let sc: Vec<f32> = s
                .bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            if let Some(i) = sc.iter().position(|v| !(v.is_finite() && *v > 0.0)) {
                return Err(r.bad(
                    &sn,
                    format!("scale {} at {i} is not finite and positive", sc[i]),
                ));
            }
            for (i, v) in w.bytes.iter().enumerate() {
                vals[(i % n) * k + i / n] = *v;
            }
            let elem = ElemType::Quant(QuantType {
                storage: Storage::I8,
                expressed: Expressed::F32,
                encoding: Encoding::PerAxis {
                    axis: 0,
                    scales: sc.into(),
                    offsets: vec![0; n].into(),
                },
            });
            let pn = format!("{ours}.int8");
            imp.store.insert(
                pn.clone(),
                Weight::owned(WDType::I8, vec![n, k], vals).map_err(|e| ir(&wn, e))?,
            );
            imp.weights.insert(format!("linear:{ours}"), (pn, elem));
        }
    }

    // u16 tables.
    let u16_range = (0i64, 65535i64);
    let mut tables: Vec<(String, String, Vec<usize>)> = Vec::new();
    for norm in norm_modules(layers) {
        let n = if norm.ends_with("q_norm") || norm.ends_with("k_norm") {
            d
        } else {
            h
        };
        tables.push((format!("{norm}.weight"), norm.clone(), vec![n]));
    }
    tables.push((
        EMBED_TOKENS.to_string(),
        "model.embed_tokens".into(),
        vec![cfg.vocab_size, h],
    ));
    // Our weight names are pymllm's for these tables.
    for (name, base, shape) in tables {
        let t = r.shaped(
            &name,
            "u16 table",
            &[DType::U16],
            std::slice::from_ref(&shape),
        )?;
        let (s, zp) = r.encoding(&base, &format!("encoding of {name}"), u16_range)?;
        let pn = format!("{name}.u16");
        imp.store.insert(
            pn.clone(),
            Weight::owned(WDType::U16, shape, t.bytes.to_vec()).map_err(|e| ir(&name, e))?,
        );
        imp.weights
            .insert(name, (pn, per_tensor(Storage::U16, s, -(zp as i32))));
    }
    for ours in [ROPE_COS, ROPE_SIN] {
        let (name, qdq) = rope_names(ours);
        let t = r.get(name, "RoPE table", &[DType::U16])?;
        let rows = match t.shape {
            [1, l, dd] | [l, dd] if *dd == d => *l,
            _ => {
                return Err(r.bad(
                    name,
                    format!("shape {:?}, expected [1, max_len, {d}]", t.shape),
                ));
            }
        };
        if rows < context_len {
            return Err(r.bad(
                name,
                format!("has {rows} positions, the context length {context_len} needs at least that many"),
            ));
        }
        let (s, zp) = r.encoding(
            &format!("{qdq}.fake_quant"),
            &format!("encoding of {name}"),
            u16_range,
        )?;
        let pn = format!("{ours}.u16");
        let bytes = t.bytes[..context_len * d * 2].to_vec();
        imp.store.insert(
            pn.clone(),
            Weight::owned(WDType::U16, vec![context_len, d], bytes).map_err(|e| ir(name, e))?,
        );
        imp.weights.insert(
            ours.to_string(),
            (pn, per_tensor(Storage::U16, s, -(zp as i32))),
        );
    }

    // Activations.
    for q in activation_map(layers) {
        let base = format!("{}.fake_quant", q.qdq);
        let (s, zp) = r.encoding(&base, &format!("encoding of op {}", q.op), u16_range)?;
        if !derived_by_quantizer(&q.op) {
            imp.encodings.insert(q.op, (s, -(zp as i32)));
        }
    }
    for (q, fallback) in extension_map(layers) {
        let own = format!("{}.fake_quant", q.qdq);
        let base = if ckpt.contains(&format!("{own}.scale")) {
            own
        } else {
            format!("{fallback}.fake_quant")
        };
        let (s, zp) = r.encoding(&base, &format!("encoding of op {}", q.op), u16_range)?;
        imp.encodings.insert(q.op, (s, -(zp as i32)));
    }
    for l in 0..layers {
        for w in ["k", "v"] {
            let base = format!("model.layers.{l}.self_attn.{w}_cast_to_int8_qdq.fake_quant");
            let (s, zp) = r.encoding(&base, "u8 KV-cache encoding", (128, 128))?;
            imp.encodings.insert(
                format!("model.layers.{l}.self_attn.{w}_cache_requantize"),
                (s, -(zp as i32)),
            );
            // The cache concatenation ends up with the KV encoding (the quantizer retypes it
            // after requantizing the new entries); it only needs an entry to get there.
            imp.encodings.insert(
                format!("model.layers.{l}.self_attn.{w}_concat"),
                (s, -(zp as i32)),
            );
        }
    }
    Ok(imp)
}

/// Whether the safetensors file at `path` looks like a pymllm export (has a `*.scale1` or a
/// `*_qdq.fake_quant.scale` tensor).
pub fn is_pymllm_export(path: &Path) -> bool {
    Checkpoint::open(path)
        .map(|c| {
            c.names()
                .any(|n| n.ends_with(".scale1") || n.ends_with("_qdq.fake_quant.scale"))
        })
        .unwrap_or(false)
}

// ------------------------------------------------------------------------------------------
// LPBQ exports as dequantization chains (for the `lpbq-fold` pass)

/// The export module name (`<lin>`) of the linear reading our weight `weight`.
fn export_linear_name(weight: &str) -> Option<String> {
    if weight == EMBED_TOKENS || weight == LM_HEAD {
        return Some("lm_head".into());
    }
    weight.strip_suffix(".weight").map(str::to_owned)
}

/// Rewrites the weight operand of every `nn.linear` of `m` that has an LPBQ export in `ckpt`
/// (a pymllm `model.safetensors`) into the dequantization chain its three tensors denote,
/// `w[o, i] = nibble(<lin>.weight[0, 0, i, o]) * <lin>.scale1[o * In/B + i / B] *
/// <lin>.scale2[o]`, added to the weight store as `<lin>.weight.q` (int8 HWIO
/// `[1, 1, In, Out]`, the nibbles sign-extended to -8..7 — one byte per parameter, like the
/// direct importer, since QNN takes i4 values, not nibbles — typed
/// `!quant.uniform<i4:f32, scale = 1.0, offset = 0>`), `<lin>.scale1` (u8) and `<lin>.scale2`
/// (f32) (both zero-copy views of the file):
///
/// ```text
/// codes -> quant.dequantize -> reshape [In, Out] -> transpose -> reshape [Out, In/B, B]
///   * reshape(cast(scale1), [Out, In/B, 1]) * reshape(scale2, [Out, 1, 1]) -> reshape [Out, In]
/// ```
///
/// The module stays a float module (the CPU reference runs it in float mode with the export's
/// exact dequantized weights); the `lpbq-fold` pass folds every chain back into one LPBQ weight
/// (the codes' payload reused, the encoding moved from HWIO axis 3 to the linear's axis 0).
/// Linears without `<lin>.scale1` (per-channel int8 exports, float weights) are left as they
/// are; a weight op no other op reads any more is removed. Returns the number of chains built;
/// every problem with the three tensors (dtype, shape, non-nibble codes, block scales outside
/// 1..=16, non-positive channel scales) is an error naming the file and tensor.
pub fn emit_lpbq_chains(m: &mut Module, ckpt: &Arc<Checkpoint>) -> Result<usize> {
    use mllm_ir::Builder;
    let file = ckpt.path().to_path_buf();
    let r = Reader {
        ckpt: ckpt.as_ref(),
        file: file.clone(),
    };
    let ir = |t: &str, e: mllm_ir::IrError| PymllmError::Bad {
        file: file.clone(),
        tensor: t.to_string(),
        msg: e.to_string(),
    };
    let codes_ty = |k: usize, n: usize| {
        mllm_ir::Type::tensor(vec![1, 1, k, n], per_tensor(Storage::I4, 1.0, 0))
    };
    let mut built = 0;
    let mut checked: HashMap<String, usize> = HashMap::new();
    for f in m.functions.iter_mut() {
        for op in f.op_ids() {
            if f.op(op).kind != OpKind::Linear {
                continue;
            }
            let wv = f.op(op).operands[1];
            let Some(wop) = f.def_op(wv).filter(|d| f.op(*d).kind == OpKind::Weight) else {
                continue;
            };
            let wname = f.op(wop).attrs.str("name").unwrap_or_default().to_owned();
            let Some(lin) = export_linear_name(&wname) else {
                continue;
            };
            let (s1n, s2n, qn) = (
                format!("{lin}.scale1"),
                format!("{lin}.scale2"),
                format!("{lin}.weight"),
            );
            if !ckpt.contains(&s1n) {
                continue;
            }
            let shape = f.ty(wv).shape().to_vec();
            if shape.len() != 2 {
                continue;
            }
            let (n, k) = (shape[0], shape[1]);
            // Check the three tensors once per linear.
            let b = match checked.get(&lin) {
                Some(b) => *b,
                None => {
                    let w = r.shaped(&qn, "LPBQ codes", &[DType::I8], &[vec![1, 1, k, n]])?;
                    if let Some(i) = w.bytes.iter().position(|v| *v > 0x0F) {
                        return Err(r.bad(
                            &qn,
                            format!("value {} at {i} is not a 4-bit nibble", w.bytes[i] as i8),
                        ));
                    }
                    let s1 = r.get(&s1n, "LPBQ block scales", &[DType::U8])?;
                    let nb = s1.numel() / n.max(1);
                    if s1.shape.len() != 1 || nb == 0 || nb * n != s1.numel() || k % nb != 0 {
                        return Err(r.bad(
                            &s1n,
                            format!("shape {:?} does not hold {n} channels x a whole number of blocks of {k} inputs", s1.shape),
                        ));
                    }
                    if let Some(i) = s1.bytes.iter().position(|v| *v == 0 || *v > 16) {
                        return Err(r.bad(
                            &s1n,
                            format!("block scale {} at {i} is outside 1..=16", s1.bytes[i]),
                        ));
                    }
                    let s2 = r.shaped(&s2n, "LPBQ channel scales", &[DType::F32], &[vec![n]])?;
                    if let Some(i) = s2.bytes.chunks_exact(4).position(|c| {
                        let v = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                        !(v.is_finite() && v > 0.0)
                    }) {
                        return Err(r.bad(
                            &s2n,
                            format!("channel scale at {i} is not finite and positive"),
                        ));
                    }
                    let b = k / nb;
                    let codes: Vec<u8> = w
                        .bytes
                        .iter()
                        .map(|v| if *v >= 8 { v.wrapping_sub(16) } else { *v })
                        .collect();
                    m.weights.insert(
                        format!("{qn}.q"),
                        Weight::owned(WDType::I8, vec![1, 1, k, n], codes)
                            .map_err(|e| ir(&qn, e))?,
                    );
                    for (store_name, t) in [(s1n.clone(), &s1n), (s2n.clone(), &s2n)] {
                        let w = crate::weights::import_tensor(ckpt, t).map_err(|e| {
                            PymllmError::Bad {
                                file: file.clone(),
                                tensor: t.clone(),
                                msg: e.to_string(),
                            }
                        })?;
                        m.weights.insert(store_name, w);
                    }
                    checked.insert(lin.clone(), b);
                    b
                }
            };
            let nb = k / b;
            let chain = {
                let mut bd = Builder::before(f, op);
                let q = bd.weight(&format!("{qn}.q"), codes_ty(k, n));
                let qf = bd.convert(
                    OpKind::Dequantize,
                    q,
                    mllm_ir::Type::tensor(vec![1, 1, k, n], ElemType::F32),
                );
                let q2 = bd.reshape(qf, &[k, n]).map_err(|e| ir(&qn, e))?;
                let qt = bd.transpose(q2, &[1, 0]).map_err(|e| ir(&qn, e))?;
                let q3 = bd.reshape(qt, &[n, nb, b]).map_err(|e| ir(&qn, e))?;
                let s1 = bd.weight(&s1n, mllm_ir::Type::tensor(vec![n * nb], ElemType::U8));
                let s1f = bd.convert(
                    OpKind::Cast,
                    s1,
                    mllm_ir::Type::tensor(vec![n * nb], ElemType::F32),
                );
                let s1r = bd.reshape(s1f, &[n, nb, 1]).map_err(|e| ir(&s1n, e))?;
                let m1 = bd.binary(OpKind::Mul, q3, s1r).map_err(|e| ir(&s1n, e))?;
                let s2 = bd.weight(&s2n, mllm_ir::Type::tensor(vec![n], ElemType::F32));
                let s2r = bd.reshape(s2, &[n, 1, 1]).map_err(|e| ir(&s2n, e))?;
                let m2 = bd.binary(OpKind::Mul, m1, s2r).map_err(|e| ir(&s2n, e))?;
                bd.reshape(m2, &[n, k]).map_err(|e| ir(&qn, e))?
            };
            f.op_mut(op).operands[1] = chain;
            if !f.op_ids().iter().any(|u| f.op(*u).operands.contains(&wv)) {
                f.unlink(wop);
            }
            built += 1;
        }
    }
    Ok(built)
}
