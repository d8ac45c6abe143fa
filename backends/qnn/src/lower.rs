//! Lowering of one IR function (float or quantized) to a QNN graph.
//!
//! Types: quantized per-tensor `u16` / `u8` / `i8` / `i16` / `i32` map to the
//! `UFIXED_POINT_*` / `SFIXED_POINT_*` types with `SCALE_OFFSET` (the IR offset
//! convention `real = (q + offset) * scale` is QNN's, so offsets map 1:1); per-axis
//! `i8`/`i4`/`u8` to `AXIS_SCALE_OFFSET`; LPBQ (`Blockwise`) to `SFIXED_POINT_8`
//! holding int4 values with `BLOCKWISE_EXPANSION` (8-bit block scales, channel
//! scales with offset 0); `f32` / `f16` / `i32` / `i1` to `FLOAT_32` / `FLOAT_16` /
//! `INT_32` / `BOOL_8`. Rank-0 values become `[1]`.
//!
//! Values: function arguments are `APP_WRITE` tensors named as the arguments
//! (`arg{i}` when unnamed), returned values `APP_READ` tensors named by the result
//! names (`result{i}` when unnamed), both created first and in order, so the graph's
//! I/O order is the function's. Chains of `tensor.slice` / `tensor.transpose` /
//! `tensor.reshape` over `builtin.weight` / `builtin.constant` are folded into static
//! tensors (see [`crate::fold`]); everything else becomes `NATIVE` tensors.
//!
//! Ops (package `qti.aisw`): see [`lower_function`]. Every node is checked with
//! `backendValidateOpConfig` before it is added; failures name the IR op (its `loc`
//! name, or `kind#index`) and kind.
//!
//! # What the HTP computes (QNN 2.51 x86 emulator, SoC 57 / v75)
//!
//! Measured with `examples/drift.rs` (every op result of a whole graph exposed as an
//! output; each op recomputed by the CPU reference from the emulator's own operand
//! values) on the tiny synthetic Qwen3 (`mllm demo --ar_len 4 --context-len 64`),
//! prefill graph, realistic inputs (valid tokens, causal mask, 20 cached positions):
//!
//! - Rounding of requantized results: `RmsNorm` **truncates** (floor; exactly, 0 LSB
//!   against a floor reference); `Softmax` and `Sigmoid` are floor-like (-0.3..-0.8 LSB
//!   mean residual against round-to-nearest); element-wise Multiply / Neg and `Concat`
//!   round to nearest (`Convert`: see below). `Conv2d` / `FullyConnected` (u16 x LPBQ),
//!   `MatMul` (u16 x u8) and u16 `ElementWiseAdd` / `Subtract` use integer arithmetic
//!   that the CPU reference models under `mllm_runtime::cpu::Rounding::Htp`
//!   (`quant::HtpLinear`, `HtpMatMul`, `HtpAdd`: 0-0.09% of codes one off, mostly 0;
//!   `examples/conv_probe.rs`, `examples/ew_probe.rs`); the other ops get the per-kind
//!   rounding above. With the default half-away-from-zero rounding every norm / linear /
//!   matmul output is biased by about -0.5 LSB.
//! - `Select` requantizes with a limited-precision multiplier: a code-0 input of the
//!   `reduce_min - 20` fill whose exact output code is 0.11 comes out as 1 (harmless:
//!   masked positions have zero weight after the softmax).
//! - The attention mask pattern `softmax(where(mask, x, reduce_min(x) - 20))` is
//!   rewritten by HTP graph preparation (so in context binaries too; optimization level
//!   and FP16 precision do not matter), and the rewritten kernel is not exact: its
//!   output is the softmax of `beta * x` with `beta` 0.9987 in layer 1 of the tiny
//!   model (1.0003 in layer 0), up to 50 output LSB (up to 214 with another
//!   calibration) off the exact softmax of the same input codes. The NPU pipeline
//!   therefore runs `mask-fill-const` after quant-fix: the fill becomes the constant at
//!   code 0 of the select's encoding (checked to be at least 20 below every row's
//!   minimum), and `where(mask, x, const) -> softmax` is not rewritten: replaying the
//!   softmax alone on the select's output gives exactly the in-graph result. What is left
//!   is the HTP softmax kernel's own error, 3-11 LSB against the CPU reference depending on
//!   the inputs (the select itself is within 1 LSB). Whole tiny model, prefill graph,
//!   random inputs: logits max 80 / mean 13.4 LSB before, max 10 / mean 1.34 after.
//!   Exception: with 16 rows (ar_len 16) the HTP fails to execute a select with a constant
//!   fill ("All input dims must match condition or be scalar": condition re-tiled
//!   `[1,8,2,C]`, data `[1,4,4,C]`; ar_len 1, 2, 4, 8, 12, 24, 32, 48 and 64 run), so
//!   `mask-fill-const` leaves those selects alone.
//! - Requantization u16 -> u8 into the KV cache (`Convert`) is not the exactly rounded
//!   product: it uses a 14-bit multiplier `m = round(R * 2^(15+f))` (R = s_in / s_out,
//!   f = 7 for KV scales) in units of 2^-f output codes, which
//!   `mllm_runtime::cpu::quant::HtpConvert` reproduces bit for bit (0 mismatches over all
//!   65,536 codes for ~120 scale pairs with R < 1/16; `examples/requant_probe.rs`). u16 ->
//!   u16 `Convert` (concat inputs with another encoding) puts 3-11% of codes one above
//!   round-to-nearest by a scheme not modelled yet. On real prompts through the scheduler
//!   (`tools/tests/qnn_run.rs`, teacher-forced): prefill max 48 / mean 2.0 LSB (before the
//!   integer models: 124 / 8.1), decode max 114 / mean 3.1 (a once-per-cycle spike at one
//!   token of a 6-token greedy cycle; 6-13 between); a fresh-cache prefill is within max 4
//!   / mean 0.5 (`tools/tests/e2e_compile.rs`). Not modelled yet: softmax (now the largest
//!   term: substituting the emulator's softmax takes the whole-graph logits from max 7 /
//!   mean 0.94 to 2 / 0.12), sigmoid, u16 multiply, u16 -> u16 `Convert`.
//! - MatMul's second input must be symmetric (u16 offset -32768, u8 offset -128) and u8
//!   code 255 is read as 254 (see the crate README).

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use mllm_ir::attr::AttrsExt;
use mllm_ir::infer::norm_axis;
use mllm_ir::{ElemType, Encoding, Function, OpId, OpKind, Storage, Type, ValueId, WeightStore};
use mllm_qnn_sys::{
    DataType, GraphBuilder, OpSpec, QnnError, Quant, ScalarValue, TensorId, TensorKind, TensorSpec,
};

use crate::fold;

/// Errors of the lowering. Every variant names the graph and the IR op, value or
/// weight involved.
#[derive(Debug, thiserror::Error)]
pub enum LowerError {
    /// The op (or this use of it) has no QNN lowering.
    #[error("graph '{graph}': op '{op}' ({kind}): {reason}")]
    Unsupported {
        /// Graph (function) name.
        graph: String,
        /// IR op name (`loc`) or `kind#index`.
        op: String,
        /// IR op kind (`dialect.op`).
        kind: &'static str,
        /// Why.
        reason: String,
    },
    /// QNN rejected the node built for an IR op.
    #[error("graph '{graph}': op '{op}' ({kind}) lowered to QNN {qnn_op}: {source}")]
    Qnn {
        /// Graph name.
        graph: String,
        /// IR op name.
        op: String,
        /// IR op kind.
        kind: &'static str,
        /// QNN op type.
        qnn_op: String,
        /// Library error.
        #[source]
        source: Box<QnnError>,
    },
    /// A weight could not be read or converted.
    #[error("graph '{graph}': weight '{weight}': {reason}")]
    Weight {
        /// Graph name.
        graph: String,
        /// Weight name.
        weight: String,
        /// Why.
        reason: String,
    },
    /// A value's type has no QNN equivalent.
    #[error("graph '{graph}': value {value}: {reason}")]
    Type {
        /// Graph name.
        graph: String,
        /// Value description (argument/result name or producing op).
        value: String,
        /// Why.
        reason: String,
    },
    /// QNN rejected a tensor.
    #[error("graph '{graph}': tensor '{tensor}': {source}")]
    Tensor {
        /// Graph name.
        graph: String,
        /// Tensor name.
        tensor: String,
        /// Library error.
        #[source]
        source: Box<QnnError>,
    },
}

/// One graph input or output as lowered.
#[derive(Debug, Clone)]
pub struct IoTensor {
    /// Tensor name (argument / result name).
    pub name: String,
    /// IR type.
    pub ty: Type,
    /// QNN data type.
    pub dtype: DataType,
    /// QNN dimensions.
    pub dims: Vec<u32>,
    /// QNN quantization.
    pub quant: Quant,
}

/// What [`lower_function`] built.
#[derive(Debug, Clone)]
pub struct LoweredGraph {
    /// Graph name.
    pub name: String,
    /// Inputs in order.
    pub inputs: Vec<IoTensor>,
    /// Outputs in order.
    pub outputs: Vec<IoTensor>,
    /// QNN nodes added.
    pub nodes: usize,
    /// Static tensors created from folded weights/constants.
    pub static_tensors: usize,
    /// Bytes of static data handed to QNN.
    pub static_bytes: u64,
}

/// QNN data type and quantization of an IR type.
pub fn qnn_type(ty: &Type) -> Result<(DataType, Quant), String> {
    let dt = match ty.elem() {
        ElemType::F32 => DataType::Float32,
        ElemType::F16 => DataType::Float16,
        ElemType::BF16 => {
            return Err(
                "bf16 tensors are not supported by the QNN HTP backend: use f32/f16 or quantize"
                    .into(),
            )
        }
        ElemType::Bool => DataType::Bool8,
        ElemType::I8 => DataType::Int8,
        ElemType::I16 => DataType::Int16,
        ElemType::I32 => DataType::Int32,
        ElemType::I64 => DataType::Int64,
        ElemType::U8 => DataType::UInt8,
        ElemType::U16 => DataType::UInt16,
        ElemType::Quant(q) => {
            let dt = match q.storage {
                Storage::U8 => DataType::UFixed8,
                Storage::U16 => DataType::UFixed16,
                Storage::I8 | Storage::I4 => DataType::SFixed8,
                Storage::I16 => DataType::SFixed16,
                Storage::I32 => DataType::SFixed32,
            };
            let quant = match &q.encoding {
                Encoding::PerTensor { scale, offset } => Quant::ScaleOffset {
                    scale: *scale,
                    offset: *offset,
                },
                Encoding::PerAxis {
                    axis,
                    scales,
                    offsets,
                } => Quant::AxisScaleOffset {
                    axis: *axis,
                    scales: scales.to_vec(),
                    offsets: offsets.to_vec(),
                },
                Encoding::Blockwise {
                    axis,
                    block_size,
                    block_scale_bits,
                    block_scales,
                    channel_scales,
                } => {
                    if !matches!(q.storage, Storage::I4 | Storage::I8) {
                        return Err(format!(
                            "LPBQ with {} storage (QNN needs signed 8-bit codes)",
                            q.storage.name()
                        ));
                    }
                    let a = *axis as usize;
                    let ch = *ty.shape().get(a).ok_or("LPBQ axis out of range")?;
                    if channel_scales.len() != ch || ch == 0 {
                        return Err(format!(
                            "LPBQ has {} channel scales for {ch} channels",
                            channel_scales.len()
                        ));
                    }
                    let per_channel = ty.numel() / ch;
                    let b = *block_size as usize;
                    if b == 0 || !per_channel.is_multiple_of(b) {
                        return Err(format!(
                            "LPBQ block size {b} does not divide the {per_channel} elements per channel"
                        ));
                    }
                    let nb = per_channel / b;
                    if block_scales.len() != ch * nb {
                        return Err(format!(
                            "LPBQ has {} block scales, expected {ch} x {nb}",
                            block_scales.len()
                        ));
                    }
                    Quant::BlockwiseExpansion {
                        axis: *axis,
                        channel_scales: channel_scales.to_vec(),
                        num_blocks_per_axis: nb as u32,
                        block_scale_bitwidth: *block_scale_bits,
                        block_scales_u8: block_scales.to_vec(),
                    }
                }
            };
            return Ok((dt, quant));
        }
    };
    Ok((dt, Quant::None))
}

/// QNN dimensions of an IR shape (rank 0 becomes `[1]`).
pub fn qnn_dims(shape: &[usize]) -> Result<Vec<u32>, String> {
    if shape.is_empty() {
        return Ok(vec![1]);
    }
    shape
        .iter()
        .map(|d| u32::try_from(*d).map_err(|_| format!("dimension {d} does not fit u32")))
        .collect()
}

/// Keeps names QNN-friendly: ASCII alphanumerics, `_`, `.` and `-`.
fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// An op parameter with owned data.
enum P {
    S(&'static str, ScalarValue),
    U32s(&'static str, Vec<u32>, Vec<u32>),
    I32s(&'static str, Vec<u32>, Vec<i32>),
}

struct Lowerer<'a> {
    g: &'a mut GraphBuilder,
    f: &'a Function,
    store: &'a WeightStore,
    vals: HashMap<ValueId, TensorId>,
    foldable: HashMap<ValueId, bool>,
    names: HashSet<String>,
    /// Returned values whose APP_READ tensor is written by the op producing them.
    pending_out: HashMap<ValueId, TensorId>,
    op_index: usize,
    cur_op: Option<OpId>,
    nodes: usize,
    static_tensors: usize,
    static_bytes: u64,
    /// Names of the stored weights folded into static tensors.
    used_weights: HashSet<String>,
}

impl<'a> Lowerer<'a> {
    fn graph(&self) -> String {
        self.f.name.clone()
    }

    fn op_label(&self, op: OpId) -> String {
        let o = self.f.op(op);
        match &o.name {
            Some(n) => n.clone(),
            None => format!("{}#{}", o.kind.name(), self.op_index),
        }
    }

    fn unsupported(&self, op: OpId, reason: impl Into<String>) -> LowerError {
        LowerError::Unsupported {
            graph: self.graph(),
            op: self.op_label(op),
            kind: self.f.op(op).kind.name(),
            reason: reason.into(),
        }
    }

    fn unique(&mut self, base: &str) -> String {
        let base = sanitize(base);
        if self.names.insert(base.clone()) {
            return base;
        }
        let mut i = 1usize;
        loop {
            let n = format!("{base}_{i}");
            if self.names.insert(n.clone()) {
                return n;
            }
            i += 1;
        }
    }

    fn type_err(&self, value: String, reason: String) -> LowerError {
        LowerError::Type {
            graph: self.graph(),
            value,
            reason,
        }
    }

    fn spec_parts(&self, ty: &Type, what: &str) -> Result<(DataType, Quant, Vec<u32>), LowerError> {
        let (dt, q) = qnn_type(ty).map_err(|r| self.type_err(what.to_string(), r))?;
        let dims = qnn_dims(ty.shape()).map_err(|r| self.type_err(what.to_string(), r))?;
        Ok((dt, q, dims))
    }

    fn new_tensor(
        &mut self,
        base: &str,
        kind: TensorKind,
        ty: &Type,
    ) -> Result<TensorId, LowerError> {
        let name = self.unique(base);
        let (dt, q, dims) = self.spec_parts(ty, &format!("'{name}'"))?;
        self.g
            .add_tensor(TensorSpec::new(name.clone(), kind, dt, &dims, q))
            .map_err(|source| LowerError::Tensor {
                graph: self.f.name.clone(),
                tensor: name,
                source: Box::new(source),
            })
    }

    /// A native tensor of type `ty` for an intermediate result of the current op.
    fn native(&mut self, suffix: &str, ty: &Type) -> Result<TensorId, LowerError> {
        let op = self.cur_op;
        let base = match op {
            Some(op) => format!("{}_{}{suffix}", self.op_label(op), self.op_index),
            None => format!("t{suffix}"),
        };
        self.new_tensor(&base, TensorKind::Native, ty)
    }

    /// The tensor that receives result `v` of the current op.
    fn result_tensor(&mut self, v: ValueId) -> Result<TensorId, LowerError> {
        if let Some(t) = self.pending_out.remove(&v) {
            self.vals.insert(v, t);
            return Ok(t);
        }
        let ty = self.f.ty(v).clone();
        let t = self.native("", &ty)?;
        self.vals.insert(v, t);
        Ok(t)
    }

    fn is_foldable(&mut self, v: ValueId) -> bool {
        if let Some(b) = self.foldable.get(&v) {
            return *b;
        }
        let b = match self.f.def_op(v) {
            None => false,
            Some(op) => {
                let o = self.f.op(op);
                match o.kind {
                    OpKind::Weight | OpKind::Constant => true,
                    OpKind::Reshape | OpKind::Transpose | OpKind::Slice => {
                        let src = o.operands[0];
                        self.is_foldable(src)
                    }
                    _ => false,
                }
            }
        };
        self.foldable.insert(v, b);
        b
    }

    /// Root weight name (or "const") of a foldable chain, for naming and errors.
    fn root_name(&self, v: ValueId) -> String {
        let mut cur = v;
        loop {
            let Some(op) = self.f.def_op(cur) else {
                return "const".into();
            };
            let o = self.f.op(op);
            match o.kind {
                OpKind::Weight => return o.attrs.str("name").unwrap_or("weight").to_string(),
                OpKind::Constant => return o.name.clone().unwrap_or_else(|| "const".to_string()),
                _ => cur = o.operands[0],
            }
        }
    }

    /// Evaluates a foldable chain to bytes in the representation of its type (borrowed
    /// from the weight store when a weight needs no conversion and no data movement).
    fn fold_bytes(&self, v: ValueId) -> Result<Cow<'a, [u8]>, LowerError> {
        let ty = self.f.ty(v);
        let werr = |reason: String| LowerError::Weight {
            graph: self.f.name.clone(),
            weight: self.root_name(v),
            reason,
        };
        let op = self
            .f
            .def_op(v)
            .ok_or_else(|| werr("not a constant".into()))?;
        let o = self.f.op(op);
        match o.kind {
            OpKind::Weight => {
                let name = o.attrs.str("name").unwrap_or_default();
                let store: &'a WeightStore = self.store;
                let w = store.get(name).ok_or_else(|| {
                    werr("not in the module's weight store (were the weights loaded?)".into())
                })?;
                fold::weight_bytes(w, ty).map_err(werr)
            }
            OpKind::Constant => {
                let vals: Vec<f32> = o
                    .attrs
                    .floats("value")
                    .ok_or_else(|| werr("constant without a value list".into()))?
                    .iter()
                    .map(|x| *x as f32)
                    .collect();
                fold::encode_values(&vals, ty).map(Cow::Owned).map_err(werr)
            }
            k => {
                let src = o.operands[0];
                let bytes = self.fold_bytes(src)?.into_owned();
                fold::apply_move(k, &o.attrs, bytes, self.f.ty(src), ty)
                    .map(Cow::Owned)
                    .map_err(werr)
            }
        }
    }

    /// The QNN tensor of operand `v` (folding constants on first use).
    fn t(&mut self, v: ValueId) -> Result<TensorId, LowerError> {
        if let Some(t) = self.vals.get(&v) {
            return Ok(*t);
        }
        if !self.is_foldable(v) {
            return Err(self.type_err(
                format!("{v:?}"),
                "used before it is defined (ops must be in program order)".into(),
            ));
        }
        let ty = self.f.ty(v).clone();
        let root = self.root_name(v);
        let bytes = self.fold_bytes(v)?;
        let name = self.unique(&root);
        let (dt, q, dims) = self.spec_parts(&ty, &format!("weight '{root}'"))?;
        let id = self
            .g
            .add_tensor(TensorSpec::constant(name.clone(), dt, &dims, q, &bytes))
            .map_err(|source| LowerError::Tensor {
                graph: self.f.name.clone(),
                tensor: name,
                source: Box::new(source),
            })?;
        self.static_tensors += 1;
        self.static_bytes += bytes.len() as u64;
        drop(bytes);
        // QNN copied the data: the weight's mapped pages can go once the graph is built.
        if root != "const" {
            self.used_weights.insert(root);
        }
        self.vals.insert(v, id);
        Ok(id)
    }

    /// Validates and adds one QNN node for the current op.
    fn emit(
        &mut self,
        type_name: &str,
        suffix: &str,
        inputs: &[TensorId],
        outputs: &[TensorId],
        params: Vec<P>,
    ) -> Result<(), LowerError> {
        let op = self.cur_op;
        let base = match op {
            Some(op) => format!("{}_{}{suffix}", self.op_label(op), self.op_index),
            None => format!("copy{suffix}"),
        };
        let name = self.unique(&base);
        let bufs: Vec<Vec<u8>> = params
            .iter()
            .map(|p| match p {
                P::S(..) => Vec::new(),
                P::U32s(_, _, v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
                P::I32s(_, _, v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            })
            .collect();
        let mut spec = OpSpec::new(name, type_name).inputs(inputs).outputs(outputs);
        for (p, b) in params.iter().zip(&bufs) {
            spec = match p {
                P::S(n, v) => spec.scalar(*n, *v),
                P::U32s(n, dims, _) => spec.tensor_param(
                    *n,
                    TensorSpec::constant("", DataType::UInt32, dims, Quant::None, b),
                ),
                P::I32s(n, dims, _) => spec.tensor_param(
                    *n,
                    TensorSpec::constant("", DataType::Int32, dims, Quant::None, b),
                ),
            };
        }
        let wrap = |this: &Self, source: QnnError| match op {
            Some(op) => LowerError::Qnn {
                graph: this.graph(),
                op: this.op_label(op),
                kind: this.f.op(op).kind.name(),
                qnn_op: type_name.to_string(),
                source: Box::new(source),
            },
            None => LowerError::Tensor {
                graph: this.graph(),
                tensor: "output copy".into(),
                source: Box::new(source),
            },
        };
        self.g.validate_op(&spec).map_err(|e| wrap(self, e))?;
        self.g.add_node(spec).map_err(|e| wrap(self, e))?;
        self.nodes += 1;
        Ok(())
    }

    fn lower_op(&mut self, op: OpId) -> Result<(), LowerError> {
        let o = self.f.op(op).clone();
        let kind = o.kind;
        let a = &o.attrs;
        match kind {
            OpKind::Weight | OpKind::Constant => return Ok(()),
            OpKind::Return => return Ok(()),
            OpKind::Reshape | OpKind::Transpose | OpKind::Slice
                if self.is_foldable(o.results[0]) =>
            {
                return Ok(())
            }
            _ => {}
        }
        if o.results.len() != 1 {
            return Err(self.unsupported(op, "ops with several results are not supported"));
        }
        let r = o.results[0];
        let rty = self.f.ty(r).clone();
        let ins = o.operands.clone();
        let f = self.f;
        let in_ty = |i: usize| f.ty(ins[i]).clone();
        let rank0 = in_ty(0).rank();
        let simple = |this: &mut Self, qnn: &str, params: Vec<P>| -> Result<(), LowerError> {
            let mut ts = Vec::with_capacity(ins.len());
            for v in &ins {
                ts.push(this.t(*v)?);
            }
            let out = this.result_tensor(r)?;
            this.emit(qnn, "", &ts, &[out], params)
        };
        match kind {
            OpKind::Add => simple(self, "ElementWiseAdd", vec![]),
            OpKind::Sub => simple(self, "ElementWiseSubtract", vec![]),
            OpKind::Mul => simple(self, "ElementWiseMultiply", vec![]),
            OpKind::Neg => simple(self, "ElementWiseNeg", vec![]),
            OpKind::Equal => simple(self, "ElementWiseEqual", vec![]),
            OpKind::Where => simple(self, "ElementWiseSelect", vec![]),
            OpKind::Sigmoid => simple(self, "Sigmoid", vec![]),
            OpKind::Reshape => simple(self, "Reshape", vec![]),
            OpKind::Quantize => simple(self, "Quantize", vec![]),
            OpKind::Dequantize => simple(self, "Dequantize", vec![]),
            OpKind::Requantize => simple(self, "Convert", vec![]),
            OpKind::Cast => simple(self, "Cast", vec![]),
            OpKind::Transpose => {
                let perm: Vec<u32> = a.ints("perm").unwrap_or(&[]).iter().map(|p| *p as u32).collect();
                let n = perm.len() as u32;
                simple(self, "Transpose", vec![P::U32s("perm", vec![n], perm)])
            }
            OpKind::Slice => {
                let starts = a.ints("starts").unwrap_or(&[]).to_vec();
                let ends = a.ints("ends").unwrap_or(&[]).to_vec();
                let steps = a.ints("steps").map(|s| s.to_vec()).unwrap_or(vec![1; rank0]);
                if starts.len() != rank0 || ends.len() != rank0 || steps.len() != rank0 {
                    return Err(self.unsupported(op, "slice attributes do not match the rank"));
                }
                let mut ranges = Vec::with_capacity(rank0 * 3);
                for d in 0..rank0 {
                    for v in [starts[d], ends[d], steps[d]] {
                        ranges.push(i32::try_from(v).map_err(|_| self.unsupported(op, "slice bound does not fit i32"))?);
                    }
                }
                simple(self, "StridedSlice", vec![P::I32s("ranges", vec![rank0 as u32, 3], ranges)])
            }
            OpKind::Concat => {
                let axis = norm_axis(a.int("axis").unwrap_or(0), rank0)
                    .map_err(|e| self.unsupported(op, e))?;
                simple(self, "Concat", vec![P::S("axis", ScalarValue::U32(axis as u32))])
            }
            OpKind::Gather => {
                let axis = norm_axis(a.int("axis").unwrap_or(0), rank0)
                    .map_err(|e| self.unsupported(op, e))?;
                simple(self, "Gather", vec![P::S("axis", ScalarValue::I32(axis as i32))])
            }
            OpKind::Embedding => {
                // Gather(table, ids, axis 0).
                let table = self.t(ins[1])?;
                let ids = self.t(ins[0])?;
                let out = self.result_tensor(r)?;
                self.emit("Gather", "", &[table, ids], &[out], vec![P::S("axis", ScalarValue::I32(0))])
            }
            OpKind::Softmax => {
                let axis = norm_axis(a.int("axis").unwrap_or(-1), rank0)
                    .map_err(|e| self.unsupported(op, e))?;
                simple(
                    self,
                    "Softmax",
                    vec![
                        P::S("axis", ScalarValue::U32(axis as u32)),
                        P::S("beta", ScalarValue::F32(1.0)),
                    ],
                )
            }
            OpKind::ReduceMin => {
                let mut axes = Vec::new();
                for x in a.ints("axes").unwrap_or(&[]) {
                    axes.push(norm_axis(*x, rank0).map_err(|e| self.unsupported(op, e))? as u32);
                }
                axes.sort_unstable();
                axes.dedup();
                let n = axes.len() as u32;
                simple(
                    self,
                    "ReduceMin",
                    vec![
                        P::U32s("axes", vec![n], axes),
                        P::S("keep_dims", ScalarValue::Bool(a.bool("keepdims").unwrap_or(true))),
                    ],
                )
            }
            OpKind::MatMul => simple(
                self,
                "MatMul",
                vec![
                    P::S("transpose_in0", ScalarValue::Bool(a.bool("transpose_a").unwrap_or(false))),
                    P::S("transpose_in1", ScalarValue::Bool(a.bool("transpose_b").unwrap_or(false))),
                ],
            ),
            OpKind::RmsNorm => {
                let axis = norm_axis(a.int("axis").unwrap_or(-1), rank0)
                    .map_err(|e| self.unsupported(op, e))?;
                let eps = a.float("epsilon").unwrap_or(1e-6) as f32;
                let x = self.t(ins[0])?;
                let gamma = self.t(ins[1])?;
                // A zero beta of gamma's type.
                let gty = in_ty(1);
                let zeros = fold::encode_values(&[0.0], &gty)
                    .map_err(|e| self.unsupported(op, format!("zero beta: {e}")))?;
                let (dt, q, dims) = self.spec_parts(&gty, "rms_norm beta")?;
                let bname = self.unique(&format!("{}_{}_beta", self.op_label(op), self.op_index));
                let beta = self
                    .g
                    .add_tensor(TensorSpec::constant(bname.clone(), dt, &dims, q, &zeros))
                    .map_err(|source| LowerError::Tensor { graph: self.graph(), tensor: bname, source: Box::new(source) })?;
                let out = self.result_tensor(r)?;
                self.emit(
                    "RmsNorm",
                    "",
                    &[x, gamma, beta],
                    &[out],
                    vec![
                        P::S("epsilon", ScalarValue::F32(eps)),
                        P::U32s("axes", vec![1], vec![axis as u32]),
                    ],
                )
            }
            OpKind::Conv2d => {
                let stride = a.ints("stride").map(|v| v.to_vec()).unwrap_or(vec![1, 1]);
                let pad = a.ints("pad").map(|v| v.to_vec()).unwrap_or(vec![0, 0, 0, 0]);
                let dil = a.ints("dilation").map(|v| v.to_vec()).unwrap_or(vec![1, 1]);
                let group = a.int("group").unwrap_or(1);
                if stride.len() != 2 || pad.len() != 4 || dil.len() != 2 || group < 1 {
                    return Err(self.unsupported(op, "bad stride/pad/dilation/group"));
                }
                let u = |v: &[i64]| v.iter().map(|x| (*x).max(0) as u32).collect::<Vec<u32>>();
                simple(
                    self,
                    "Conv2d",
                    vec![
                        P::U32s("stride", vec![2], u(&stride)),
                        P::U32s("pad_amount", vec![2, 2], u(&pad)),
                        P::U32s("dilation", vec![2], u(&dil)),
                        P::S("group", ScalarValue::U32(group as u32)),
                    ],
                )
            }
            OpKind::Linear => {
                let wty = in_ty(1);
                if let Some(q) = wty.quant() {
                    if matches!(q.encoding, Encoding::Blockwise { .. }) {
                        return Err(self.unsupported(
                            op,
                            "an LPBQ nn.linear cannot be lowered: QNN's blockwise FullyConnected computes wrong results unless K == N; run the `linear-to-conv2d` pass first (it makes a 1x1 Conv2d with HWIO weights)",
                        ));
                    }
                }
                let xty = in_ty(0);
                let k = *xty.shape().last().unwrap_or(&1);
                let m = xty.numel() / k.max(1);
                let n = wty.shape()[0];
                let mut ts = Vec::new();
                let x = self.t(ins[0])?;
                let x2 = if xty.rank() == 2 {
                    x
                } else {
                    let t2 = xty.with_shape(vec![m, k]);
                    let tmp = self.native("_in2d", &t2)?;
                    self.emit("Reshape", "_in2d", &[x], &[tmp], vec![])?;
                    tmp
                };
                ts.push(x2);
                for v in &ins[1..] {
                    ts.push(self.t(*v)?);
                }
                if rty.rank() == 2 {
                    let out = self.result_tensor(r)?;
                    self.emit("FullyConnected", "", &ts, &[out], vec![])
                } else {
                    let y2ty = rty.with_shape(vec![m, n]);
                    let y2 = self.native("_out2d", &y2ty)?;
                    self.emit("FullyConnected", "", &ts, &[y2], vec![])?;
                    let out = self.result_tensor(r)?;
                    self.emit("Reshape", "_out", &[y2], &[out], vec![])
                }
            }
            OpKind::Silu => {
                if in_ty(0).quant().is_some() || rty.quant().is_some() {
                    return Err(self.unsupported(
                        op,
                        "QNN has no SiLU op and a quantized graph needs an explicit encoding for sigmoid(x): run the `decompose` pass first (silu -> x * sigmoid(x) with calibrated encodings)",
                    ));
                }
                let x = self.t(ins[0])?;
                let sig = self.native("_sigmoid", &in_ty(0))?;
                self.emit("Sigmoid", "_sigmoid", &[x], &[sig], vec![])?;
                let out = self.result_tensor(r)?;
                self.emit("ElementWiseMultiply", "", &[x, sig], &[out], vec![])
            }
            OpKind::Rope => Err(self.unsupported(
                op,
                "QNN has no RoPE op: run the `decompose` pass first (rope -> slices, neg, concat, mul, add)",
            )),
            OpKind::Repeat => Err(self.unsupported(
                op,
                "tensor.repeat has no QNN lowering (GQA should be expressed without repeat; see sha-split)",
            )),
            OpKind::Weight | OpKind::Constant | OpKind::Return => Ok(()),
        }
    }
}

/// Advises the kernel to reclaim the resident pages behind a stored weight (the whole
/// backing range for a slice of a weight). Advisory and non-destructive: mapped file pages
/// are dropped and re-read on a later access; in-memory buffers (computed by passes) stay
/// resident unless the machine has swap.
fn release_weight_pages(w: &mllm_ir::Weight) {
    match &w.data {
        mllm_ir::WeightData::Range { src, offset, len } => {
            if let Some(b) = src.bytes().get(*offset..offset.saturating_add(*len)) {
                mllm_qnn_sys::release_pages(b);
            }
        }
        mllm_ir::WeightData::Slice { base, .. } => release_weight_pages(base),
    }
}

/// Lowers `func` into the graph being built by `g`, reading weights from `store`.
///
/// Op mapping (package `qti.aisw`): `nn.conv2d` -> `Conv2d` (`stride`, `pad_amount`
/// [[top, bottom], [left, right]], `dilation`, `group`); `nn.linear` ->
/// `FullyConnected` for float and per-channel weights (inputs of rank != 2 are
/// reshaped to `[M, K]` and back; an LPBQ weight is an error asking for
/// `linear-to-conv2d`); `nn.matmul` -> `MatMul` (`transpose_in0/1`); `nn.rms_norm`
/// -> `RmsNorm` (`epsilon`, `axes`, a zero beta of gamma's type);
/// `nn.embedding` / `tensor.gather` -> `Gather`; `nn.softmax` -> `Softmax` (`beta`
/// 1.0); `nn.sigmoid` -> `Sigmoid`; `nn.add/sub/mul/neg/equal/where` ->
/// `ElementWiseAdd/Subtract/Multiply/Neg/Equal/Select`; `nn.reduce_min` ->
/// `ReduceMin`; `tensor.concat` -> `Concat`; `tensor.slice` -> `StridedSlice`
/// (`ranges`); `tensor.transpose` -> `Transpose`; `tensor.reshape` -> `Reshape`;
/// `quant.quantize/dequantize/requantize` -> `Quantize/Dequantize/Convert`;
/// `nn.cast` -> `Cast`; `nn.silu` -> `Sigmoid` + `ElementWiseMultiply` in float
/// graphs only. `nn.rope`, quantized `nn.silu` and `tensor.repeat` are errors.
pub fn lower_function(
    g: &mut GraphBuilder,
    func: &Function,
    store: &WeightStore,
) -> Result<LoweredGraph, LowerError> {
    let mut l = Lowerer {
        g,
        f: func,
        store,
        vals: HashMap::new(),
        foldable: HashMap::new(),
        names: HashSet::new(),
        pending_out: HashMap::new(),
        op_index: 0,
        cur_op: None,
        nodes: 0,
        static_tensors: 0,
        static_bytes: 0,
        used_weights: HashSet::new(),
    };
    let mut inputs = Vec::new();
    for (i, v) in func.args().iter().enumerate() {
        let name = func
            .arg_names
            .get(i)
            .cloned()
            .flatten()
            .unwrap_or_else(|| format!("arg{i}"));
        if !l.names.insert(name.clone()) {
            return Err(l.type_err(
                format!("argument '{name}'"),
                "duplicate graph input name".into(),
            ));
        }
        let ty = func.ty(*v).clone();
        let (dtype, quant, dims) = l.spec_parts(&ty, &format!("argument '{name}'"))?;
        let id =
            l.g.add_tensor(TensorSpec::new(
                name.clone(),
                TensorKind::AppWrite,
                dtype,
                &dims,
                quant.clone(),
            ))
            .map_err(|source| LowerError::Tensor {
                graph: func.name.clone(),
                tensor: name.clone(),
                source: Box::new(source),
            })?;
        l.vals.insert(*v, id);
        inputs.push(IoTensor {
            name,
            ty,
            dtype,
            dims,
            quant,
        });
    }
    // Outputs are created up front (in result order). A returned value produced by an
    // op writes straight into its output tensor; arguments, folded constants and
    // values returned twice get a copy node at the end.
    let returned: Vec<ValueId> = func.returned().to_vec();
    let mut outputs = Vec::new();
    let mut copies: Vec<(ValueId, TensorId)> = Vec::new();
    for (i, v) in returned.iter().enumerate() {
        let name = func
            .result_names
            .get(i)
            .cloned()
            .flatten()
            .unwrap_or_else(|| format!("result{i}"));
        if !l.names.insert(name.clone()) {
            return Err(l.type_err(
                format!("result '{name}'"),
                "graph output name clashes with another input or output".into(),
            ));
        }
        let ty = func.ty(*v).clone();
        let (dtype, quant, dims) = l.spec_parts(&ty, &format!("result '{name}'"))?;
        let id =
            l.g.add_tensor(TensorSpec::new(
                name.clone(),
                TensorKind::AppRead,
                dtype,
                &dims,
                quant.clone(),
            ))
            .map_err(|source| LowerError::Tensor {
                graph: func.name.clone(),
                tensor: name.clone(),
                source: Box::new(source),
            })?;
        let produced_by_op = func.def_op(*v).is_some() && !l.is_foldable(*v);
        if produced_by_op && !l.pending_out.contains_key(v) {
            l.pending_out.insert(*v, id);
        } else {
            copies.push((*v, id));
        }
        outputs.push(IoTensor {
            name,
            ty,
            dtype,
            dims,
            quant,
        });
    }
    for (i, op) in func.op_ids().into_iter().enumerate() {
        l.op_index = i;
        l.cur_op = Some(op);
        l.lower_op(op)?;
    }
    l.cur_op = None;
    for (v, out) in copies {
        let src = l.t(v)?;
        l.emit("Reshape", "", &[src], &[out], vec![])?;
    }
    // Every static tensor holds QNN's own copy now: hand the pages the weights were read
    // from (a memory-mapped checkpoint) back to the kernel, so they are not resident while
    // the graph finalizes (a later graph using them faults them back in).
    for name in &l.used_weights {
        if let Some(w) = store.get(name) {
            release_weight_pages(w);
        }
    }
    Ok(LoweredGraph {
        name: func.name.clone(),
        inputs,
        outputs,
        nodes: l.nodes,
        static_tensors: l.static_tensors,
        static_bytes: l.static_bytes,
    })
}
