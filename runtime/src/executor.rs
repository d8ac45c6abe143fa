//! The [`Executor`] trait and the graph I/O contract.
//!
//! Two executors implement [`Executor`]: the CPU reference executor (interprets the IR, in
//! `cpu/`) and the QNN executor (runs graphs of a context binary). Everything above them — KV
//! cache, scheduler, sampler — is written once against this trait.
//!
//! The scheduler calls [`Executor::execute_with`]: the KV cache buffers are handed over
//! mutably ([`GraphInput::Cache`]) with [`StepExtras`] an executor may do while the data is hot
//! (write the step's new K/V entries into the cache, take the greedy token); the default does
//! neither and calls [`Executor::execute`].
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
//! | `past_key_{l}` | KV dtype | `[1, Hkv, C-S, D]` |
//! | `past_value_{l}` | KV dtype | `[1, Hkv, C-S, D]` |
//! | output `logits` | u16 / u8 / f32 / f16 | `[1, S, V]` |
//! | output `present_key_{l}` | KV dtype | `[1, Hkv, S, D]` |
//! | output `present_value_{l}` | KV dtype | `[1, Hkv, S, D]` |
//!
//! Keys and values share one layout (the graphs multiply by the keys transposed); graphs built
//! before that change, with transposed keys `[1, Hkv, D, C-S]`, are rejected with a message
//! saying so. Leading dimensions of size 1 are ignored when shapes are compared (`[S]` and
//! `[1, S]` are both accepted for `position_ids`). A quantized model has u8 KV, u16 mask and u16 logits; a
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
        self.check_sizes(inputs.iter().map(|b| b.len()), outputs)
    }

    /// [`GraphDesc::check_buffers`] for the inputs of [`Executor::execute_with`].
    pub fn check_graph_inputs(
        &self,
        inputs: &[GraphInput<'_>],
        outputs: &[&mut [u8]],
    ) -> Result<()> {
        self.check_sizes(inputs.iter().map(|b| b.bytes().len()), outputs)
    }

    fn check_sizes(
        &self,
        inputs: impl ExactSizeIterator<Item = usize>,
        outputs: &[&mut [u8]],
    ) -> Result<()> {
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
        for (d, len) in self.inputs.iter().zip(inputs) {
            if len != d.byte_size() {
                return Err(RuntimeError::BufferSize {
                    what: format!("graph `{}` input `{}`", self.name, d.name),
                    expected: d.byte_size(),
                    got: len,
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

/// Most inputs one [`Executor::execute_with`] call's default implementation forwards.
pub const MAX_EXECUTE_INPUTS: usize = 512;

/// One graph input of [`Executor::execute_with`]: read only, or a KV-cache buffer
/// (`past_key_{l}` / `past_value_{l}`) into which the executor may write the step's new entries
/// once the graph has finished reading it.
#[derive(Debug)]
pub enum GraphInput<'a> {
    /// An input the executor only reads.
    Read(&'a [u8]),
    /// A cache buffer, read by the graph and written by [`StepExtras::cache`].
    Cache(&'a mut [u8]),
}

impl GraphInput<'_> {
    /// The input's bytes.
    pub fn bytes(&self) -> &[u8] {
        match self {
            GraphInput::Read(b) => b,
            GraphInput::Cache(b) => b,
        }
    }
}

/// Where a step's new K/V entries go in the cache ([`StepExtras::cache`]): the same copy as
/// [`crate::KvCache::commit`], done by the executor as soon as the graph no longer reads the
/// destination buffer, while the entries are still in the processor's caches.
#[derive(Clone, Copy, Debug)]
pub struct CacheWrite<'a> {
    /// `(output, input)` index pairs: `present_key_{l}` with `past_key_{l}`, and likewise for
    /// values, of every layer the graph holds.
    pub pairs: &'a [(usize, usize)],
    /// KV heads.
    pub heads: usize,
    /// Head dimension D.
    pub head_dim: usize,
    /// Bytes per cache element.
    pub elem: usize,
    /// The graph's ar_len: rows per head of each `present_*` output, `[1, Hkv, S, D]`.
    pub src_s: usize,
    /// Rows per head of each `past_*` input, `[1, Hkv, C-S, D]`.
    pub stride: usize,
    /// First destination row (the cache's `n_past`).
    pub row: usize,
    /// Entries to write (the step's real tokens; pads are never written).
    pub n: usize,
    /// Also write the paired `present_*` outputs. Without it an executor that writes the
    /// entries into the cache may leave those output buffers as they were (the cache does
    /// not need them), saving their memory traffic.
    pub write_outputs: bool,
}

impl CacheWrite<'_> {
    /// Checks one pair's buffers against the geometry (before anything is run or written).
    pub fn check(&self, graph: &str, present: &[u8], past: &GraphInput<'_>) -> Result<()> {
        let row = self.head_dim * self.elem;
        let err = |msg: String| RuntimeError::Cache(format!("graph `{graph}`: {msg}"));
        if present.len() != self.heads * self.src_s * row {
            return Err(err(format!(
                "a present K/V output has {} bytes, expected {} ([1, {}, {}, {}] x {} bytes)",
                present.len(),
                self.heads * self.src_s * row,
                self.heads,
                self.src_s,
                self.head_dim,
                self.elem
            )));
        }
        let GraphInput::Cache(past) = past else {
            return Err(err(
                "a past K/V input of a cache write is not a cache buffer".into(),
            ));
        };
        if past.len() != self.heads * self.stride * row {
            return Err(err(format!(
                "a past K/V input has {} bytes, expected {}",
                past.len(),
                self.heads * self.stride * row
            )));
        }
        if self.n > self.src_s || self.row + self.n > self.stride {
            return Err(err(format!(
                "{} entries at row {} do not fit (ar_len {}, {} rows per head)",
                self.n, self.row, self.src_s, self.stride
            )));
        }
        Ok(())
    }

    /// Copies the first `n` entries of one `[1, Hkv, S, D]` output (already checked) into one
    /// `[1, Hkv, C-S, D]` cache buffer at row `row`: per head, `n` consecutive rows of `D`
    /// elements.
    pub fn copy(&self, past: &mut [u8], present: &[u8]) {
        let row = self.head_dim * self.elem;
        let len = self.n * row;
        if len == 0 {
            return;
        }
        let (src_head, dst_head) = (self.src_s * row, self.stride * row);
        let dst = past[self.row * row..].chunks_mut(dst_head);
        for (d, s) in dst.zip(present.chunks_exact(src_head)).take(self.heads) {
            d[..len].copy_from_slice(&s[..len]);
        }
    }
}

/// Work a step may ask of an executor beyond computing its outputs, each while the data is
/// still in the processor's caches ([`Executor::execute_with`]). Every output is written,
/// except the `present_*` outputs of a cache write without [`CacheWrite::write_outputs`]
/// that the executor did write into the cache.
#[derive(Clone, Copy, Debug, Default)]
pub struct StepExtras<'a> {
    /// Write the step's new K/V entries into the cache inputs.
    pub cache: Option<CacheWrite<'a>>,
    /// `(output, row)`: the greedy token of that logits row, as
    /// [`crate::sampler::greedy_token`] computes it.
    pub argmax: Option<(usize, usize)>,
}

/// What an executor did of the [`StepExtras`] it was given.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExtrasDone {
    /// The new K/V entries are in the cache.
    pub cache_written: bool,
    /// The greedy token of the requested logits row.
    pub argmax: Option<u32>,
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
    ///
    /// Buffers are 64-byte aligned ([`crate::AlignedBytes`]). The [`crate::Scheduler`]
    /// guarantees more: a given graph receives the same (address, length) for each input and
    /// output on every call for the scheduler's lifetime (the KV inputs are the cache buffers
    /// themselves, whose length depends only on the graph's ar_len), so an executor may prepare
    /// its tensor descriptors or register the memory once per graph, keyed by address.
    fn execute(&mut self, graph: usize, inputs: &[&[u8]], outputs: &mut [&mut [u8]]) -> Result<()>;

    /// Runs graph `graph` like [`Executor::execute`], the KV inputs handed over as
    /// [`GraphInput::Cache`], and does what it can of `extras` (reported in the result; the
    /// caller does the rest itself). The default does none of them.
    ///
    /// At most [`MAX_EXECUTE_INPUTS`] inputs.
    fn execute_with(
        &mut self,
        graph: usize,
        inputs: &mut [GraphInput<'_>],
        outputs: &mut [&mut [u8]],
        extras: &StepExtras<'_>,
    ) -> Result<ExtrasDone> {
        let _ = extras;
        if inputs.len() > MAX_EXECUTE_INPUTS {
            return Err(RuntimeError::Contract {
                graph: self
                    .graphs()
                    .get(graph)
                    .map_or_else(|| format!("#{graph}"), |g| g.name.clone()),
                msg: format!("more than {MAX_EXECUTE_INPUTS} inputs"),
            });
        }
        let mut ins: [&[u8]; MAX_EXECUTE_INPUTS] = [&[]; MAX_EXECUTE_INPUTS];
        for (d, i) in ins.iter_mut().zip(inputs.iter()) {
            *d = i.bytes();
        }
        self.execute(graph, &ins[..inputs.len()], outputs)?;
        Ok(ExtrasDone::default())
    }
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
    fn execute_with(
        &mut self,
        graph: usize,
        inputs: &mut [GraphInput<'_>],
        outputs: &mut [&mut [u8]],
        extras: &StepExtras<'_>,
    ) -> Result<ExtrasDone> {
        (**self).execute_with(graph, inputs, outputs, extras)
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
    fn execute_with(
        &mut self,
        graph: usize,
        inputs: &mut [GraphInput<'_>],
        outputs: &mut [&mut [u8]],
        extras: &StepExtras<'_>,
    ) -> Result<ExtrasDone> {
        (**self).execute_with(graph, inputs, outputs, extras)
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
/// Name of the hidden-state tensor passed between the shards of a split model (output of shard
/// `i`, input of shard `i + 1`).
pub const HIDDEN_NAME: &str = "hidden_states";
/// Accepted names of the hidden-state output: [`HIDDEN_NAME`], or `hidden_states_out` for a
/// middle shard, which also takes `hidden_states` as input (QNN tensor names are unique per
/// graph; `split-graph` names it so).
pub const HIDDEN_OUT_NAMES: &[&str] = &[HIDDEN_NAME, "hidden_states_out"];

/// Model dimensions shared by every graph of a model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModelDims {
    /// Number of decoder layers (L), over all shards.
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
    /// Infers the dimensions from one unsplit graph. See [`ModelDims::infer_chain`].
    pub fn infer(desc: &GraphDesc) -> Result<ModelDims> {
        Self::infer_chain(&[desc])
    }

    /// Infers the dimensions from the shards of one model split into graphs (one graph when
    /// the model is not split): L is one more than the largest `past_key_{l}` index, Hkv, D and
    /// C come from a `past_value_*` input, V from the `logits` output.
    /// [`GraphBindings::resolve`] then validates every tensor.
    pub fn infer_chain(descs: &[&GraphDesc]) -> Result<ModelDims> {
        let Some(first) = descs.first() else {
            return Err(RuntimeError::Config(
                "no graph to infer model dims from".into(),
            ));
        };
        let err = |g: &GraphDesc, msg: String| RuntimeError::Contract {
            graph: g.name.clone(),
            msg,
        };
        let mut layers = 0;
        let mut kv = None;
        let mut vocab = None;
        for g in descs {
            if g.ar_len == 0 {
                return Err(err(g, "ar_len is 0".into()));
            }
            for t in &g.inputs {
                if let Some(l) = layer_index(&t.name, "past_key_") {
                    layers = layers.max(l + 1);
                }
                if kv.is_none() && layer_index(&t.name, "past_value_").is_some() {
                    let [h, cache, d] = squeeze(&t.shape)[..] else {
                        return Err(err(
                            g,
                            format!(
                                "`{}` has shape {:?}, expected [1, Hkv, C-S, D]",
                                t.name, t.shape
                            ),
                        ));
                    };
                    kv = Some((h, d, cache + g.ar_len));
                }
            }
            if let Some(lg) = find(&g.outputs, LOGITS_NAMES) {
                vocab = g.outputs[lg].shape.last().copied();
            }
        }
        let Some((kv_heads, head_dim, context)) = kv else {
            return Err(err(first, "no `past_value_{i}` input".into()));
        };
        let Some(vocab) = vocab else {
            return Err(err(first, "no `logits` output".into()));
        };
        Ok(ModelDims {
            layers,
            kv_heads,
            head_dim,
            context,
            vocab,
        })
    }
}

/// What a graph input is, in the contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputRole {
    /// Token ids, i32 `[1, S]` (first shard).
    Tokens,
    /// Hidden states from the previous shard, `[1, S, H]`.
    HiddenStates,
    /// Positions, i32 `[S]`.
    Positions,
    /// Attention mask `[1, 1, S, C]`.
    Mask,
    /// Past keys of layer `l` (global layer index).
    PastKey(usize),
    /// Past values of layer `l` (global layer index).
    PastValue(usize),
}

/// A graph's tensors resolved by name against the contract, with shapes validated.
///
/// A model may be split into shards (`model.{i}.s{N}`): shard 0 takes `sequence`, later shards
/// take `hidden_states` from the previous one; the last shard outputs `logits`, the others
/// `hidden_states` (`hidden_states_out` for a middle shard, see [`HIDDEN_OUT_NAMES`]). Each
/// shard holds a contiguous range of layers.
#[derive(Clone, Debug)]
pub struct GraphBindings {
    /// Graph index in [`Executor::graphs`].
    pub graph: usize,
    /// Graph name.
    pub name: String,
    /// ar_len S.
    pub ar_len: usize,
    /// The layers whose KV this graph reads and produces (all layers when not split).
    pub layers: std::ops::Range<usize>,
    /// Input index of the token ids (first shard).
    pub tokens: Option<usize>,
    /// Input index of the hidden states (later shards).
    pub hidden_in: Option<usize>,
    /// Input index of the positions.
    pub positions: usize,
    /// Input index of the mask.
    pub mask: usize,
    /// Input index of `past_key_{l}` for each layer `l` in `layers` (`past_key[l - layers.start]`).
    pub past_key: Vec<usize>,
    /// Input index of `past_value_{l}` for each layer in `layers`.
    pub past_value: Vec<usize>,
    /// Output index of the logits (last shard).
    pub logits: Option<usize>,
    /// Output index of the hidden states (shards other than the last).
    pub hidden_out: Option<usize>,
    /// Output index of `present_key_{l}` for each layer in `layers`.
    pub present_key: Vec<usize>,
    /// Output index of `present_value_{l}` for each layer in `layers`.
    pub present_value: Vec<usize>,
    /// Role of every input, in input order.
    pub input_roles: Vec<InputRole>,
    /// Element type of the KV cache tensors (same for every layer).
    pub kv_dtype: DType,
    /// Element type of the mask.
    pub mask_dtype: DType,
    /// Logits description (dtype and quantization), last shard only.
    pub logits_desc: Option<TensorDesc>,
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

/// Parses a graph name `model.{i}.s{N}` into (shard i, ar_len N).
pub fn parse_graph_name(name: &str) -> Option<(usize, usize)> {
    let rest = name.strip_prefix("model.")?;
    let (i, s) = rest.split_once(".s")?;
    let all_digits = |x: &str| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(i) || !all_digits(s) {
        return None;
    }
    Some((i.parse().ok()?, s.parse().ok()?))
}

/// Collects `past_key_{l}`-style entries into a vector indexed from the smallest layer,
/// checking the indices form a contiguous range.
fn layer_table(
    entries: &[(usize, usize)],
    what: &str,
    err: &dyn Fn(String) -> RuntimeError,
) -> Result<(std::ops::Range<usize>, Vec<usize>)> {
    let Some(lo) = entries.iter().map(|e| e.0).min() else {
        return Err(err(format!("no `{what}{{l}}` tensor")));
    };
    let hi = entries.iter().map(|e| e.0).max().unwrap_or(lo) + 1;
    let mut table = vec![None; hi - lo];
    for &(l, idx) in entries {
        if table[l - lo].replace(idx).is_some() {
            return Err(err(format!("`{what}{l}` appears twice")));
        }
    }
    let table = table
        .into_iter()
        .enumerate()
        .map(|(i, x)| x.ok_or_else(|| err(format!("missing `{what}{}`", lo + i))))
        .collect::<Result<Vec<usize>>>()?;
    Ok((lo..hi, table))
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
            layers: nl,
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
                    "tensor `{}` has shape {:?}, expected {:?} ({what})",
                    t.name, t.shape, expected
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
        let set_once = |slot: &mut Option<usize>, i: usize, n: &str| -> Result<()> {
            if slot.replace(i).is_some() {
                return Err(err(format!("`{n}` appears twice (or under two aliases)")));
            }
            Ok(())
        };

        let mut tokens = None;
        let mut hidden_in = None;
        let mut positions = None;
        let mut mask = None;
        let mut pk = Vec::new();
        let mut pv = Vec::new();
        let mut roles = Vec::with_capacity(desc.inputs.len());
        for (i, t) in desc.inputs.iter().enumerate() {
            let n = t.name.as_str();
            let role = if TOKENS_NAMES.contains(&n) {
                set_once(&mut tokens, i, n)?;
                InputRole::Tokens
            } else if n == HIDDEN_NAME {
                set_once(&mut hidden_in, i, n)?;
                InputRole::HiddenStates
            } else if POSITIONS_NAMES.contains(&n) {
                set_once(&mut positions, i, n)?;
                InputRole::Positions
            } else if MASK_NAMES.contains(&n) {
                set_once(&mut mask, i, n)?;
                InputRole::Mask
            } else if let Some(l) = layer_index(n, "past_key_") {
                pk.push((l, i));
                InputRole::PastKey(l)
            } else if let Some(l) = layer_index(n, "past_value_") {
                pv.push((l, i));
                InputRole::PastValue(l)
            } else {
                return Err(err(format!(
                    "unexpected input `{n}` (the contract has sequence, position_ids, causal_mask, \
                     past_key_{{l}}, past_value_{{l}}, and hidden_states between shards)"
                )));
            };
            roles.push(role);
        }
        if tokens.is_some() == hidden_in.is_some() {
            return Err(err(
                "needs exactly one of the inputs `sequence` (token ids) and `hidden_states`".into(),
            ));
        }
        let positions = positions.ok_or_else(|| err("missing input `position_ids`".into()))?;
        let mask = mask.ok_or_else(|| err("missing input `causal_mask`".into()))?;
        if let Some(ti) = tokens {
            let t = &desc.inputs[ti];
            dtype_in(t, &[DType::I32])?;
            check(t, &[1, s], "[1, S]")?;
        }
        if let Some(hi) = hidden_in {
            let t = &desc.inputs[hi];
            let sq = squeeze(&t.shape);
            if sq.len() > 2 || sq.iter().product::<usize>() % s != 0 || sq.is_empty() {
                return Err(err(format!(
                    "input `{HIDDEN_NAME}` has shape {:?}, expected [1, S, H]",
                    t.shape
                )));
            }
        }
        let t = &desc.inputs[positions];
        dtype_in(t, &[DType::I32])?;
        check(t, &[s], "[S]")?;
        let t = &desc.inputs[mask];
        dtype_in(t, &[DType::U16, DType::U8, DType::F32, DType::F16])?;
        check(t, &[1, 1, s, c], "[1, 1, S, C]")?;
        let mask_dtype = t.dtype;

        let mut nk = Vec::new();
        let mut nv = Vec::new();
        let mut logits = None;
        let mut hidden_out = None;
        for (i, t) in desc.outputs.iter().enumerate() {
            let n = t.name.as_str();
            if LOGITS_NAMES.contains(&n) {
                set_once(&mut logits, i, n)?;
            } else if HIDDEN_OUT_NAMES.contains(&n) {
                set_once(&mut hidden_out, i, n)?;
            } else if let Some(l) = layer_index(n, "present_key_") {
                nk.push((l, i));
            } else if let Some(l) = layer_index(n, "present_value_") {
                nv.push((l, i));
            }
            // Extra outputs (e.g. debug taps) are allowed and ignored.
        }
        if logits.is_some() == hidden_out.is_some() {
            return Err(err(
                "needs exactly one of the outputs `logits` and `hidden_states` (or `hidden_states_out`)".into(),
            ));
        }
        let logits_desc = match logits {
            Some(li) => {
                let lt = &desc.outputs[li];
                dtype_in(lt, &[DType::U16, DType::U8, DType::F32, DType::F16])?;
                check(lt, &[1, s, v], "[1, S, V]")?;
                Some(lt.clone())
            }
            None => None,
        };

        let (layers, past_key) = layer_table(&pk, "past_key_", &err)?;
        let (r, past_value) = layer_table(&pv, "past_value_", &err)?;
        let (r2, present_key) = layer_table(&nk, "present_key_", &err)?;
        let (r3, present_value) = layer_table(&nv, "present_value_", &err)?;
        if r != layers || r2 != layers || r3 != layers {
            return Err(err(format!(
                "layer ranges differ: past_key {layers:?}, past_value {r:?}, present_key {r2:?}, \
                 present_value {r3:?}"
            )));
        }
        if layers.end > nl {
            return Err(err(format!(
                "has layers {layers:?} but the model has {nl} layers"
            )));
        }

        let kv_dtype = desc.inputs[past_key[0]].dtype;
        for i in 0..layers.len() {
            let pk = &desc.inputs[past_key[i]];
            let pv = &desc.inputs[past_value[i]];
            let nk = &desc.outputs[present_key[i]];
            let nv = &desc.outputs[present_value[i]];
            if squeeze(&pk.shape) == squeeze(&[1, h, d, c - s]) && d != c - s {
                return Err(err(format!(
                    "`{}` has shape {:?}: keys transposed ([1, Hkv, D, C-S]), the layout of \
                     graphs built before the key cache moved to rows like the values; rebuild \
                     the graph (keys are [1, Hkv, C-S, D])",
                    pk.name, pk.shape
                )));
            }
            check(pk, &[1, h, c - s, d], "[1, Hkv, C-S, D]")?;
            check(pv, &[1, h, c - s, d], "[1, Hkv, C-S, D]")?;
            check(nk, &[1, h, s, d], "[1, Hkv, S, D]")?;
            check(nv, &[1, h, s, d], "[1, Hkv, S, D]")?;
            for t in [pk, pv, nk, nv] {
                if t.dtype != kv_dtype {
                    return Err(err(format!(
                        "`{}` has dtype {}, but `{}` has {} (all KV tensors must share one dtype)",
                        t.name, t.dtype, desc.inputs[past_key[0]].name, kv_dtype
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
            layers,
            tokens,
            hidden_in,
            positions,
            mask,
            past_key,
            past_value,
            logits,
            hidden_out,
            present_key,
            present_value,
            input_roles: roles,
            kv_dtype,
            mask_dtype,
            logits_desc,
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
        assert_eq!(g.inputs[b.tokens.unwrap()].name, "sequence");
        assert_eq!(b.layers, 0..3);
        assert_eq!(b.hidden_in, None);
        assert_eq!(g.inputs[b.mask].name, "causal_mask");
        assert_eq!(g.outputs[b.logits.unwrap()].name, "logits");
        for l in 0..3 {
            assert_eq!(g.inputs[b.past_key[l]].name, format!("past_key_{l}"));
            assert_eq!(g.inputs[b.past_value[l]].name, format!("past_value_{l}"));
            assert_eq!(g.outputs[b.present_key[l]].name, format!("present_key_{l}"));
            assert_eq!(
                g.outputs[b.present_value[l]].name,
                format!("present_value_{l}")
            );
            assert_eq!(b.input_roles[b.past_key[l]], InputRole::PastKey(l));
            assert_eq!(b.input_roles[b.past_value[l]], InputRole::PastValue(l));
        }
    }

    #[test]
    fn aliases_and_leading_ones() {
        let mut g = contract_graph("g", 1, &DIMS, DType::F32, DType::F32, DType::F32);
        g.inputs[0].name = "tokens".into();
        g.inputs[1].shape = vec![1, 1];
        g.inputs[2].name = "attention_mask".into();
        let b = GraphBindings::resolve(std::slice::from_ref(&g), 0, &DIMS).unwrap();
        assert_eq!(b.tokens, Some(0));
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
        // A graph of the old contract (keys transposed) is named as such.
        let mut g = base.clone();
        for t in g.inputs.iter_mut().chain(g.outputs.iter_mut()) {
            if t.name.starts_with("past_key_") || t.name.starts_with("present_key_") {
                t.shape.swap(2, 3);
            }
        }
        let e = resolve(&g);
        assert!(
            e.contains("past_key_0") && e.contains("keys transposed"),
            "{e}"
        );
        let mut g = base.clone();
        g.inputs.retain(|t| t.name != "past_value_2");
        let e = resolve(&g);
        assert!(e.contains("past_value 0..2"), "{e}");
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

    /// Splits a contract graph into shard `i` of layers `range`.
    fn shard(g: &GraphDesc, i: usize, range: std::ops::Range<usize>, last: bool) -> GraphDesc {
        let keep = |n: &str| {
            let layer = ["past_key_", "past_value_", "present_key_", "present_value_"]
                .iter()
                .find_map(|p| layer_index(n, p));
            match layer {
                Some(l) => range.contains(&l),
                None => true,
            }
        };
        let mut out = g.clone();
        out.name = format!("model.{i}.s{}", g.ar_len);
        out.inputs.retain(|t| keep(&t.name));
        out.outputs.retain(|t| keep(&t.name));
        let hidden = TensorDesc::new(HIDDEN_NAME, DType::F32, vec![1, g.ar_len, 6]);
        if i > 0 {
            out.inputs[0] = hidden.clone();
        }
        if !last {
            out.outputs[0] = hidden;
        }
        out
    }

    #[test]
    fn shards_resolve_with_layer_ranges() {
        let g = contract_graph("g", 4, &DIMS, DType::U8, DType::U16, DType::U16);
        let s0 = shard(&g, 0, 0..2, false);
        let s1 = shard(&g, 1, 2..3, true);
        assert_eq!(parse_graph_name(&s1.name), Some((1, 4)));
        assert_eq!(parse_graph_name("model.x.s4"), None);
        assert_eq!(parse_graph_name("model.0.s"), None);
        let dims = ModelDims::infer_chain(&[&s0, &s1]).unwrap();
        assert_eq!(dims, DIMS);
        assert!(
            ModelDims::infer(&s0).is_err(),
            "first shard alone has no logits"
        );
        let graphs = vec![s0.clone(), s1.clone()];
        let b0 = GraphBindings::resolve(&graphs, 0, &dims).unwrap();
        let b1 = GraphBindings::resolve(&graphs, 1, &dims).unwrap();
        assert_eq!((b0.layers.clone(), b1.layers.clone()), (0..2, 2..3));
        assert!(b0.tokens.is_some() && b0.hidden_out.is_some() && b0.logits.is_none());
        assert!(b1.hidden_in.is_some() && b1.logits.is_some() && b1.tokens.is_none());
        // A middle shard takes `hidden_states` and returns `hidden_states_out`.
        let mut mid = shard(&g, 1, 1..2, false);
        mid.inputs[0] = TensorDesc::new(HIDDEN_NAME, DType::F32, vec![1, 4, 6]);
        let o = mid.output_index(HIDDEN_NAME).unwrap();
        mid.outputs[o].name = "hidden_states_out".into();
        let bm = GraphBindings::resolve(std::slice::from_ref(&mid), 0, &dims).unwrap();
        assert_eq!(bm.hidden_out, Some(o));
        assert!(bm.hidden_in.is_some());
        assert_eq!(s1.inputs[b1.past_key[0]].name, "past_key_2");
        assert_eq!(b1.input_roles[b1.past_value[0]], InputRole::PastValue(2));
        // A gap in the layer indices is an error naming the missing tensor.
        let mut bad = s0;
        bad.inputs.retain(|t| t.name != "past_key_1");
        bad.inputs
            .push(TensorDesc::new("past_key_2", DType::U8, vec![1, 2, 12, 4]));
        let e = GraphBindings::resolve(&[bad], 0, &dims)
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing `past_key_1`"), "{e}");
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
