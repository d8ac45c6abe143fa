//! The [`Executor`] trait and the graph I/O contract.
//!
//! Two executors implement [`Executor`]: the CPU reference executor (interprets the IR, in
//! `cpu/`) and the QNN executor (runs graphs of a context binary). Everything above them — KV
//! cache, scheduler, sampler — is written once against this trait.
//!
//! # I/O contract (hybrid mode)
//!
//! A graph with ar_len `S`, for a model with `L` layers, `Hkv` KV heads, head dim `D`, context
//! `C` and vocabulary `V` has these tensors, matched **by name** (never by position):
//!
//! | name | dtype | shape |
//! |---|---|---|
//! | `sequence` (alias `tokens`, `input_ids`) | i32 | `[1, S]` |
//! | `position_ids` | i32 | `[S]` |
//! | `causal_mask` (alias `attention_mask`) | u16 / u8 / f32 / f16 | `[1, 1, S, C]` |
//! | `past_key_{l}` | KV dtype | `[1, Hkv, D, C-S]` (K transposed) |
//! | `past_value_{l}` | KV dtype | `[1, Hkv, C-S, D]` |
//! | output `logits` | u16 / u8 / f32 / f16 | `[1, S, V]` |
//! | output `present_key_{l}` | KV dtype | `[1, Hkv, D, S]` |
//! | output `present_value_{l}` | KV dtype | `[1, Hkv, S, D]` |
//!
//! Leading dimensions of size 1 are ignored when shapes are compared (`[S]` and `[1, S]` are
//! both accepted for `position_ids`). A quantized model has u8 KV, u16 mask and u16 logits; a
//! float model (CPU float mode) has f32 KV, mask and logits. `past_key_{l}` and
//! `present_key_{l}` (likewise values) must have the same dtype and bit-identical quantization,
//! because the runtime copies new entries into the cache byte for byte.
//!
//! Mask semantics are in [`crate::kv`]: "attend" is the largest code of an integer mask
//! (65535 for u16) and `1.0` for a float mask; "masked" is 0 in both cases.

use crate::error::{Result, RuntimeError};

/// Element type of a graph tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    /// 32-bit IEEE float.
    F32,
    /// 16-bit IEEE float.
    F16,
    /// bfloat16.
    BF16,
    /// Unsigned 8-bit (quantized when the desc has a [`Quant`]).
    U8,
    /// Signed 8-bit.
    I8,
    /// Unsigned 16-bit (quantized when the desc has a [`Quant`]).
    U16,
    /// Signed 16-bit.
    I16,
    /// Unsigned 32-bit.
    U32,
    /// Signed 32-bit.
    I32,
    /// Signed 64-bit.
    I64,
    /// Boolean, one byte.
    Bool,
}

impl DType {
    /// Size of one element in bytes.
    pub fn size(self) -> usize {
        match self {
            DType::U8 | DType::I8 | DType::Bool => 1,
            DType::F16 | DType::BF16 | DType::U16 | DType::I16 => 2,
            DType::F32 | DType::U32 | DType::I32 => 4,
            DType::I64 => 8,
        }
    }

    /// Lower-case name (`f32`, `u16`, ...).
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F16 => "f16",
            DType::BF16 => "bf16",
            DType::U8 => "u8",
            DType::I8 => "i8",
            DType::U16 => "u16",
            DType::I16 => "i16",
            DType::U32 => "u32",
            DType::I32 => "i32",
            DType::I64 => "i64",
            DType::Bool => "bool",
        }
    }

    /// True for F32, F16 and BF16.
    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F16 | DType::BF16)
    }

    /// Reads element `i` of a little-endian buffer of this dtype as f32 (no quantization
    /// applied). Returns `None` when `i` is out of range.
    pub fn read_f32(self, bytes: &[u8], i: usize) -> Option<f32> {
        let s = self.size();
        let b = bytes.get(i * s..i * s + s)?;
        Some(match self {
            DType::F32 => f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            DType::F16 => half::f16::from_le_bytes([b[0], b[1]]).to_f32(),
            DType::BF16 => half::bf16::from_le_bytes([b[0], b[1]]).to_f32(),
            DType::U8 | DType::Bool => b[0] as f32,
            DType::I8 => b[0] as i8 as f32,
            DType::U16 => u16::from_le_bytes([b[0], b[1]]) as f32,
            DType::I16 => i16::from_le_bytes([b[0], b[1]]) as f32,
            DType::U32 => u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32,
            DType::I32 => i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32,
            DType::I64 => {
                i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32
            }
        })
    }
}

impl std::fmt::Display for DType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Quantization of a tensor, QNN convention: `real = (q + offset) * scale`
/// (QNN stores `offset = -zero_point`).
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub enum Quant {
    /// Not quantized: the stored value is the real value.
    #[default]
    None,
    /// One scale and offset for the whole tensor.
    PerTensor {
        /// Step between codes.
        scale: f32,
        /// Added to the code before scaling (= -zero_point).
        offset: i32,
    },
}

impl Quant {
    /// Real value of a stored value `q`.
    #[inline]
    pub fn dequantize(&self, q: f32) -> f32 {
        match *self {
            Quant::None => q,
            Quant::PerTensor { scale, offset } => (q + offset as f32) * scale,
        }
    }

    /// True when both encodings are bit-identical (the runtime may copy codes between them).
    pub fn bit_identical(&self, other: &Quant) -> bool {
        match (self, other) {
            (Quant::None, Quant::None) => true,
            (
                Quant::PerTensor {
                    scale: a,
                    offset: oa,
                },
                Quant::PerTensor {
                    scale: b,
                    offset: ob,
                },
            ) => a.to_bits() == b.to_bits() && oa == ob,
            _ => false,
        }
    }
}

/// Name, element type, shape and quantization of one graph input or output.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorDesc {
    /// Tensor name (the contract matches tensors by name).
    pub name: String,
    /// Element type.
    pub dtype: DType,
    /// Shape, outermost first.
    pub shape: Vec<usize>,
    /// Quantization encoding.
    pub quant: Quant,
}

impl TensorDesc {
    /// A non-quantized tensor description.
    pub fn new(name: impl Into<String>, dtype: DType, shape: Vec<usize>) -> Self {
        TensorDesc {
            name: name.into(),
            dtype,
            shape,
            quant: Quant::None,
        }
    }

    /// The same description with a quantization encoding.
    pub fn with_quant(mut self, quant: Quant) -> Self {
        self.quant = quant;
        self
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// Size of the tensor in bytes.
    pub fn byte_size(&self) -> usize {
        self.numel() * self.dtype.size()
    }

    /// Dequantized value of element `i` of `bytes` (a buffer of this tensor), or `None` if out of
    /// range.
    pub fn read_real(&self, bytes: &[u8], i: usize) -> Option<f32> {
        self.dtype
            .read_f32(bytes, i)
            .map(|q| self.quant.dequantize(q))
    }
}

/// One graph an executor can run.
#[derive(Clone, Debug, PartialEq)]
pub struct GraphDesc {
    /// Graph name, e.g. `model.0.s32`.
    pub name: String,
    /// Number of tokens processed per execution (S).
    pub ar_len: usize,
    /// Inputs, in the executor's order.
    pub inputs: Vec<TensorDesc>,
    /// Outputs, in the executor's order.
    pub outputs: Vec<TensorDesc>,
}

impl GraphDesc {
    /// Index of the input called `name`.
    pub fn input_index(&self, name: &str) -> Option<usize> {
        self.inputs.iter().position(|t| t.name == name)
    }

    /// Index of the output called `name`.
    pub fn output_index(&self, name: &str) -> Option<usize> {
        self.outputs.iter().position(|t| t.name == name)
    }

    /// Checks that `inputs` / `outputs` have the count and exact byte sizes this graph declares.
    /// Executors call this at the top of [`Executor::execute`]; it does not allocate unless it
    /// fails.
    pub fn check_buffers(&self, inputs: &[&[u8]], outputs: &[&mut [u8]]) -> Result<()> {
        if inputs.len() != self.inputs.len() || outputs.len() != self.outputs.len() {
            return Err(RuntimeError::Contract {
                graph: self.name.clone(),
                msg: format!(
                    "got {} input and {} output buffers, graph has {} inputs and {} outputs",
                    inputs.len(),
                    outputs.len(),
                    self.inputs.len(),
                    self.outputs.len()
                ),
            });
        }
        for (d, b) in self.inputs.iter().zip(inputs) {
            if b.len() != d.byte_size() {
                return Err(RuntimeError::BufferSize {
                    what: format!("graph `{}` input `{}`", self.name, d.name),
                    expected: d.byte_size(),
                    got: b.len(),
                });
            }
        }
        for (d, b) in self.outputs.iter().zip(outputs) {
            if b.len() != d.byte_size() {
                return Err(RuntimeError::BufferSize {
                    what: format!("graph `{}` output `{}`", self.name, d.name),
                    expected: d.byte_size(),
                    got: b.len(),
                });
            }
        }
        Ok(())
    }
}

/// Something that runs graphs following the I/O contract (CPU reference or QNN).
pub trait Executor {
    /// Short name used in messages (e.g. `cpu`, `qnn-htp`).
    fn name(&self) -> &str {
        "executor"
    }

    /// The graphs this executor can run; indices into this slice identify graphs.
    fn graphs(&self) -> &[GraphDesc];

    /// Runs graph `graph`.
    ///
    /// `inputs[i]` / `outputs[i]` are byte buffers (little-endian, in the dtype declared by
    /// `graphs()[graph].inputs[i]` / `.outputs[i]`) of exactly `byte_size()` bytes, in the order of
    /// the desc. The caller owns the buffers (they may alias the KV cache) and reuses them between
    /// calls; implementations must not allocate per call in steady state.
    fn execute(&mut self, graph: usize, inputs: &[&[u8]], outputs: &mut [&mut [u8]]) -> Result<()>;
}

impl<E: Executor + ?Sized> Executor for &mut E {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn graphs(&self) -> &[GraphDesc] {
        (**self).graphs()
    }
    fn execute(&mut self, graph: usize, inputs: &[&[u8]], outputs: &mut [&mut [u8]]) -> Result<()> {
        (**self).execute(graph, inputs, outputs)
    }
}

impl<E: Executor + ?Sized> Executor for Box<E> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn graphs(&self) -> &[GraphDesc] {
        (**self).graphs()
    }
    fn execute(&mut self, graph: usize, inputs: &[&[u8]], outputs: &mut [&mut [u8]]) -> Result<()> {
        (**self).execute(graph, inputs, outputs)
    }
}

/// Lists graphs as `name (ar_len N), ...` for error messages.
pub fn describe_graphs(graphs: &[GraphDesc]) -> String {
    if graphs.is_empty() {
        return "none".to_string();
    }
    graphs
        .iter()
        .map(|g| format!("{} (ar_len {})", g.name, g.ar_len))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Accepted names of the token input.
pub const TOKENS_NAMES: &[&str] = &["sequence", "tokens", "input_ids"];
/// Accepted names of the position input.
pub const POSITIONS_NAMES: &[&str] = &["position_ids"];
/// Accepted names of the mask input.
pub const MASK_NAMES: &[&str] = &["causal_mask", "attention_mask"];
/// Accepted names of the logits output.
pub const LOGITS_NAMES: &[&str] = &["logits"];

/// Model dimensions shared by every graph of a model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModelDims {
    /// Number of decoder layers (L).
    pub layers: usize,
    /// Number of KV heads (Hkv).
    pub kv_heads: usize,
    /// Head dimension (D).
    pub head_dim: usize,
    /// Context length (C): cache columns + chunk columns of the mask.
    pub context: usize,
    /// Vocabulary size (V).
    pub vocab: usize,
}

impl ModelDims {
    /// Infers the dimensions from one graph (`past_key_0`, `causal_mask`, `logits` and the number
    /// of `past_key_*` inputs). [`GraphBindings::resolve`] then validates every tensor.
    pub fn infer(desc: &GraphDesc) -> Result<ModelDims> {
        let err = |msg: String| RuntimeError::Contract {
            graph: desc.name.clone(),
            msg,
        };
        let s = desc.ar_len;
        if s == 0 {
            return Err(err("ar_len is 0".into()));
        }
        let layers = desc
            .inputs
            .iter()
            .filter(|t| layer_index(&t.name, "past_key_").is_some())
            .count();
        if layers == 0 {
            return Err(err("no `past_key_{i}` input".into()));
        }
        let pk = find(&desc.inputs, &["past_key_0"])
            .ok_or_else(|| err("no `past_key_0` input".into()))?;
        let pk_shape = squeeze(&desc.inputs[pk].shape);
        let [hkv, d, cache] = pk_shape[..] else {
            return Err(err(format!(
                "`past_key_0` has shape {:?}, expected [1, Hkv, D, C-S]",
                desc.inputs[pk].shape
            )));
        };
        let lg =
            find(&desc.outputs, LOGITS_NAMES).ok_or_else(|| err("no `logits` output".into()))?;
        let vocab = desc.outputs[lg].shape.last().copied().unwrap_or(0);
        Ok(ModelDims {
            layers,
            kv_heads: hkv,
            head_dim: d,
            context: cache + s,
            vocab,
        })
    }
}

/// What a graph input is, in the contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputRole {
    /// Token ids, i32 `[1, S]`.
    Tokens,
    /// Positions, i32 `[S]`.
    Positions,
    /// Attention mask `[1, 1, S, C]`.
    Mask,
    /// Past keys of layer `l`.
    PastKey(usize),
    /// Past values of layer `l`.
    PastValue(usize),
}

/// A graph's tensors resolved by name against the contract, with shapes validated.
#[derive(Clone, Debug)]
pub struct GraphBindings {
    /// Graph index in [`Executor::graphs`].
    pub graph: usize,
    /// Graph name.
    pub name: String,
    /// ar_len S.
    pub ar_len: usize,
    /// Input index of the token ids.
    pub tokens: usize,
    /// Input index of the positions.
    pub positions: usize,
    /// Input index of the mask.
    pub mask: usize,
    /// Input index of `past_key_{l}` for each layer l.
    pub past_key: Vec<usize>,
    /// Input index of `past_value_{l}` for each layer l.
    pub past_value: Vec<usize>,
    /// Output index of the logits.
    pub logits: usize,
    /// Output index of `present_key_{l}` for each layer l.
    pub present_key: Vec<usize>,
    /// Output index of `present_value_{l}` for each layer l.
    pub present_value: Vec<usize>,
    /// Role of every input, in input order.
    pub input_roles: Vec<InputRole>,
    /// Element type of the KV cache tensors (same for every layer).
    pub kv_dtype: DType,
    /// Element type of the mask.
    pub mask_dtype: DType,
    /// Logits description (dtype and quantization).
    pub logits_desc: TensorDesc,
}

fn squeeze(shape: &[usize]) -> &[usize] {
    let first = shape.iter().position(|&d| d != 1).unwrap_or(shape.len());
    &shape[first..]
}

fn find(ts: &[TensorDesc], names: &[&str]) -> Option<usize> {
    ts.iter().position(|t| names.contains(&t.name.as_str()))
}

fn layer_index(name: &str, prefix: &str) -> Option<usize> {
    let rest = name.strip_prefix(prefix)?;
    if rest.is_empty() || !rest.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    rest.parse().ok()
}

impl GraphBindings {
    /// Resolves graph `graph` of `graphs` by tensor name and validates every shape and dtype
    /// against `dims` (S is the graph's `ar_len`). Errors name the graph and the tensor.
    pub fn resolve(graphs: &[GraphDesc], graph: usize, dims: &ModelDims) -> Result<GraphBindings> {
        let desc = graphs
            .get(graph)
            .ok_or_else(|| RuntimeError::GraphNotFound {
                msg: format!("no graph with index {graph}"),
                available: describe_graphs(graphs),
            })?;
        let err = |msg: String| RuntimeError::Contract {
            graph: desc.name.clone(),
            msg,
        };
        let s = desc.ar_len;
        let ModelDims {
            layers: l,
            kv_heads: h,
            head_dim: d,
            context: c,
            vocab: v,
        } = *dims;
        if s == 0 || s > c {
            return Err(err(format!(
                "ar_len {s} must be in 1..={c} (context length)"
            )));
        }
        let check = |t: &TensorDesc, expected: &[usize], what: &str| -> Result<()> {
            if squeeze(&t.shape) != squeeze(expected) {
                return Err(err(format!(
                    "{} `{}` has shape {:?}, expected {:?} ({what})",
                    "tensor", t.name, t.shape, expected
                )));
            }
            Ok(())
        };
        let dtype_in = |t: &TensorDesc, allowed: &[DType]| -> Result<()> {
            if !allowed.contains(&t.dtype) {
                let names: Vec<&str> = allowed.iter().map(|d| d.name()).collect();
                return Err(err(format!(
                    "tensor `{}` has dtype {}, expected one of {}",
                    t.name,
                    t.dtype,
                    names.join("/")
                )));
            }
            Ok(())
        };

        let mut tokens = None;
        let mut positions = None;
        let mut mask = None;
        let mut past_key = vec![None; l];
        let mut past_value = vec![None; l];
        let mut roles = Vec::with_capacity(desc.inputs.len());
        for (i, t) in desc.inputs.iter().enumerate() {
            let n = t.name.as_str();
            let (slot, role) = if TOKENS_NAMES.contains(&n) {
                (&mut tokens, InputRole::Tokens)
            } else if POSITIONS_NAMES.contains(&n) {
                (&mut positions, InputRole::Positions)
            } else if MASK_NAMES.contains(&n) {
                (&mut mask, InputRole::Mask)
            } else if let Some(li) = layer_index(n, "past_key_") {
                let slot = past_key.get_mut(li).ok_or_else(|| {
                    err(format!(
                        "input `{n}`: layer index out of range (model has {l} layers)"
                    ))
                })?;
                (slot, InputRole::PastKey(li))
            } else if let Some(li) = layer_index(n, "past_value_") {
                let slot = past_value.get_mut(li).ok_or_else(|| {
                    err(format!(
                        "input `{n}`: layer index out of range (model has {l} layers)"
                    ))
                })?;
                (slot, InputRole::PastValue(li))
            } else {
                return Err(err(format!(
                    "unexpected input `{n}` (the contract has sequence, position_ids, causal_mask, \
                     past_key_{{i}}, past_value_{{i}})"
                )));
            };
            if slot.is_some() {
                return Err(err(format!(
                    "input `{n}` appears twice (or under two aliases)"
                )));
            }
            *slot = Some(i);
            roles.push(role);
        }
        let tokens = tokens.ok_or_else(|| err("missing input `sequence` (token ids)".into()))?;
        let positions = positions.ok_or_else(|| err("missing input `position_ids`".into()))?;
        let mask = mask.ok_or_else(|| err("missing input `causal_mask`".into()))?;
        let t = &desc.inputs[tokens];
        dtype_in(t, &[DType::I32])?;
        check(t, &[1, s], "[1, S]")?;
        let t = &desc.inputs[positions];
        dtype_in(t, &[DType::I32])?;
        check(t, &[s], "[S]")?;
        let t = &desc.inputs[mask];
        dtype_in(t, &[DType::U16, DType::U8, DType::F32, DType::F16])?;
        check(t, &[1, 1, s, c], "[1, 1, S, C]")?;
        let mask_dtype = t.dtype;

        let mut present_key = vec![None; l];
        let mut present_value = vec![None; l];
        let mut logits = None;
        for (i, t) in desc.outputs.iter().enumerate() {
            let n = t.name.as_str();
            let slot = if LOGITS_NAMES.contains(&n) {
                &mut logits
            } else if let Some(li) = layer_index(n, "present_key_") {
                present_key.get_mut(li).ok_or_else(|| {
                    err(format!(
                        "output `{n}`: layer index out of range (model has {l} layers)"
                    ))
                })?
            } else if let Some(li) = layer_index(n, "present_value_") {
                present_value.get_mut(li).ok_or_else(|| {
                    err(format!(
                        "output `{n}`: layer index out of range (model has {l} layers)"
                    ))
                })?
            } else {
                // Extra outputs (e.g. debug taps) are allowed and ignored.
                continue;
            };
            if slot.is_some() {
                return Err(err(format!("output `{n}` appears twice")));
            }
            *slot = Some(i);
        }
        let logits = logits.ok_or_else(|| err("missing output `logits`".into()))?;
        let lt = &desc.outputs[logits];
        dtype_in(lt, &[DType::U16, DType::U8, DType::F32, DType::F16])?;
        check(lt, &[1, s, v], "[1, S, V]")?;

        let collect = |v: Vec<Option<usize>>, what: &str| -> Result<Vec<usize>> {
            v.into_iter()
                .enumerate()
                .map(|(i, x)| x.ok_or_else(|| err(format!("missing `{what}{i}`"))))
                .collect()
        };
        let past_key = collect(past_key, "past_key_")?;
        let past_value = collect(past_value, "past_value_")?;
        let present_key = collect(present_key, "present_key_")?;
        let present_value = collect(present_value, "present_value_")?;

        let kv_dtype = desc.inputs[past_key[0]].dtype;
        for li in 0..l {
            let pk = &desc.inputs[past_key[li]];
            let pv = &desc.inputs[past_value[li]];
            let nk = &desc.outputs[present_key[li]];
            let nv = &desc.outputs[present_value[li]];
            check(pk, &[1, h, d, c - s], "[1, Hkv, D, C-S]")?;
            check(pv, &[1, h, c - s, d], "[1, Hkv, C-S, D]")?;
            check(nk, &[1, h, d, s], "[1, Hkv, D, S]")?;
            check(nv, &[1, h, s, d], "[1, Hkv, S, D]")?;
            for t in [pk, pv, nk, nv] {
                if t.dtype != kv_dtype {
                    return Err(err(format!(
                        "`{}` has dtype {}, but `{}` has {} (all KV tensors must share one dtype)",
                        t.name, t.dtype, pk.name, kv_dtype
                    )));
                }
            }
            for (p, n) in [(pk, nk), (pv, nv)] {
                if !p.quant.bit_identical(&n.quant) {
                    return Err(err(format!(
                        "`{}` quant {:?} differs from `{}` quant {:?}: new entries cannot be \
                         copied into the cache without requantizing",
                        n.name, n.quant, p.name, p.quant
                    )));
                }
            }
        }
        Ok(GraphBindings {
            graph,
            name: desc.name.clone(),
            ar_len: s,
            tokens,
            positions,
            mask,
            past_key,
            past_value,
            logits,
            present_key,
            present_value,
            input_roles: roles,
            kv_dtype,
            mask_dtype,
            logits_desc: lt.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contract_graph(
        name: &str,
        s: usize,
        dims: &ModelDims,
        kv: DType,
        mask: DType,
        logits: DType,
    ) -> GraphDesc {
        crate::bench::contract_graph(name, s, dims, kv, Quant::None, mask, logits, Quant::None)
    }

    const DIMS: ModelDims = ModelDims {
        layers: 3,
        kv_heads: 2,
        head_dim: 4,
        context: 16,
        vocab: 10,
    };

    #[test]
    fn infer_and_resolve_by_name_not_position() {
        let mut g = contract_graph("model.0.s4", 4, &DIMS, DType::U8, DType::U16, DType::U16);
        g.inputs.reverse();
        g.outputs.rotate_left(2);
        let dims = ModelDims::infer(&g).unwrap();
        assert_eq!(dims, DIMS);
        let b = GraphBindings::resolve(std::slice::from_ref(&g), 0, &dims).unwrap();
        assert_eq!(g.inputs[b.tokens].name, "sequence");
        assert_eq!(g.inputs[b.mask].name, "causal_mask");
        assert_eq!(g.outputs[b.logits].name, "logits");
        for l in 0..3 {
            assert_eq!(g.inputs[b.past_key[l]].name, format!("past_key_{l}"));
            assert_eq!(g.inputs[b.past_value[l]].name, format!("past_value_{l}"));
            assert_eq!(g.outputs[b.present_key[l]].name, format!("present_key_{l}"));
            assert_eq!(
                g.outputs[b.present_value[l]].name,
                format!("present_value_{l}")
            );
            assert_eq!(b.input_roles[b.past_key[l]], InputRole::PastKey(l));
        }
    }

    #[test]
    fn aliases_and_leading_ones() {
        let mut g = contract_graph("g", 1, &DIMS, DType::F32, DType::F32, DType::F32);
        g.inputs[0].name = "tokens".into();
        g.inputs[1].shape = vec![1, 1];
        g.inputs[2].name = "attention_mask".into();
        let b = GraphBindings::resolve(std::slice::from_ref(&g), 0, &DIMS).unwrap();
        assert_eq!(b.tokens, 0);
        assert_eq!(b.kv_dtype, DType::F32);
    }

    #[test]
    fn clear_errors() {
        let base = contract_graph("model.0.s4", 4, &DIMS, DType::U8, DType::U16, DType::U16);
        let resolve = |g: &GraphDesc| {
            GraphBindings::resolve(std::slice::from_ref(g), 0, &DIMS)
                .unwrap_err()
                .to_string()
        };
        let mut g = base.clone();
        g.inputs[4].shape = vec![1, 2, 4, 11];
        let e = resolve(&g);
        assert!(e.contains("model.0.s4") && e.contains("past_key_1"), "{e}");
        let mut g = base.clone();
        g.inputs.retain(|t| t.name != "past_value_2");
        let e = resolve(&g);
        assert!(e.contains("missing `past_value_2`"), "{e}");
        let mut g = base.clone();
        g.inputs[0].name = "foo".into();
        assert!(resolve(&g).contains("unexpected input `foo`"));
        let mut g = base.clone();
        g.outputs[0].dtype = DType::I64;
        assert!(resolve(&g).contains("logits"));
        let mut g = base.clone();
        let pk = g.output_index("present_key_0").unwrap();
        g.outputs[pk].quant = Quant::PerTensor {
            scale: 0.1,
            offset: -128,
        };
        assert!(resolve(&g).contains("requantizing"));
        let mut g = base;
        g.inputs[1].dtype = DType::I64;
        assert!(resolve(&g).contains("position_ids"));
    }

    #[test]
    fn check_buffers_sizes() {
        let g = contract_graph("g", 1, &DIMS, DType::U8, DType::U16, DType::U16);
        let ins: Vec<Vec<u8>> = g.inputs.iter().map(|t| vec![0; t.byte_size()]).collect();
        let mut outs: Vec<Vec<u8>> = g.outputs.iter().map(|t| vec![0; t.byte_size()]).collect();
        let i: Vec<&[u8]> = ins.iter().map(|v| v.as_slice()).collect();
        {
            let o: Vec<&mut [u8]> = outs.iter_mut().map(|v| v.as_mut_slice()).collect();
            g.check_buffers(&i, &o).unwrap();
        }
        outs[0].pop();
        let o: Vec<&mut [u8]> = outs.iter_mut().map(|v| v.as_mut_slice()).collect();
        let e = g.check_buffers(&i, &o).unwrap_err().to_string();
        assert!(e.contains("logits"), "{e}");
    }

    #[test]
    fn quant_convention() {
        let q = Quant::PerTensor {
            scale: 0.5,
            offset: -128,
        };
        assert_eq!(q.dequantize(130.0), 1.0);
        let t = TensorDesc::new("x", DType::U16, vec![2]).with_quant(q);
        let bytes = [0u8, 1, 0x82, 0];
        assert_eq!(t.read_real(&bytes, 0), Some((256.0 - 128.0) * 0.5));
        assert_eq!(t.read_real(&bytes, 1), Some(1.0));
        assert_eq!(t.read_real(&bytes, 2), None);
    }
}
