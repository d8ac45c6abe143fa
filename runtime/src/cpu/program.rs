//! [`CpuProgram`]: one IR function compiled for the CPU — decoded weights, one
//! precomputed step per op, and a liveness-planned arena — plus the interpreter loop.
//!
//! Compilation resolves everything that does not depend on input data: shapes,
//! strides, broadcast walks, matmul batch offsets, packed weights, constants, arena
//! offsets and scratch sizes. Running walks the steps; in steady state it allocates
//! nothing (the observer path allocates its f32 staging buffer once).

use std::sync::Arc;

use mllm_ir::attr::AttrsExt;
use mllm_ir::infer::norm_axis;
use mllm_ir::types::{ElemType, Encoding, QuantType, Storage, Type};
use mllm_ir::{Function, OpId, OpKind, ValueId, WeightStore};
use rayon::prelude::*;

use super::error::CpuError;
use super::gemm::{self, GemmDims, MatRef, APACK};
use super::htp_ew;
use super::htp_norm;
use super::htp_select;
use super::htp_softmax;
use super::kernels::{self as k, AxisView, Bcast, Strided};
use super::quant::{self, par};
use super::simd;
use super::weights::{PackLayout, Packed, Static, WeightCache};
use super::{NumericMode, Repr, Rounding};
use crate::executor::{CacheWrite, DType, GraphInput, Quant, TensorDesc};
use crate::sampler::{greedy_token, ArgmaxF32};

/// One op's output, as seen by an observer: dequantized / converted to f32.
#[derive(Debug)]
pub struct OpOutput<'a> {
    /// The op.
    pub op: OpId,
    /// Its result value.
    pub value: ValueId,
    /// Op kind.
    pub kind: OpKind,
    /// Symbolic op name (`loc(...)`), if any.
    pub name: Option<&'a str>,
    /// Result shape.
    pub shape: &'a [usize],
    /// Result values in real units.
    pub data: &'a [f32],
}

/// An input handed to [`CpuProgram::run_f32`].
#[derive(Debug, Clone, Copy)]
pub enum TensorRef<'a> {
    /// Real values (quantized inputs are quantized in fixed-point mode; integer inputs
    /// are converted).
    F32(&'a [f32]),
    /// Integer values (token ids, positions).
    I32(&'a [i32]),
    /// Raw bytes in the input's declared dtype (codes for quantized types).
    Bytes(&'a [u8]),
}

/// How a graph input/output's bytes relate to the in-arena representation.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Io {
    /// Identical bytes.
    Same,
    /// f16 outside, f32 inside.
    F16,
    /// bf16 outside, f32 inside.
    BF16,
    /// Codes outside (per-tensor), f32 inside (float mode).
    Codes(Repr),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Loc {
    Pending,
    /// Not materialized (a weight only read through its packed form).
    None,
    Arena(usize),
    Arg(usize),
    Static(usize),
}

#[derive(Debug)]
struct Val {
    id: ValueId,
    ty: Type,
    shape: Vec<usize>,
    numel: usize,
    repr: Repr,
    /// Quantization of the codes (fixed-point mode only).
    q: Option<QuantType>,
    loc: Loc,
}

impl Val {
    fn bytes(&self) -> usize {
        self.numel * self.repr.size()
    }
}

#[derive(Debug, Clone, Copy)]
enum UnOp {
    Silu,
    Sigmoid,
    Neg,
}

#[derive(Debug, Clone, Copy)]
enum BinOp {
    Add,
    Sub,
    Mul,
}

#[derive(Debug)]
enum WSrc {
    Packed(Arc<Packed>),
    Runtime { rs: usize, cs: usize },
}

#[derive(Debug)]
enum K {
    Alias,
    Strided(Strided),
    Concat {
        outer: usize,
        /// Elements per outer index of each input.
        chunks: Vec<usize>,
        /// Whether each input must be requantized (fixed mode, differing encoding).
        requant: Vec<bool>,
    },
    Gather {
        outer: usize,
        axis_len: usize,
        inner: usize,
        nidx: usize,
    },
    Gemm {
        d: GemmDims,
        w: WSrc,
        bias: bool,
    },
    MatMul {
        m: usize,
        k: usize,
        n: usize,
        a_rs: usize,
        a_cs: usize,
        b_rs: usize,
        b_cs: usize,
        offs: Vec<(usize, usize)>,
        groups: usize,
        /// `B` is a concat (along its rows) that is never materialized: `ins[1]` and
        /// `ins[2]` hold its two parts, packed straight from where they are.
        bcat: Option<BCat>,
    },
    Conv {
        x: [usize; 4],
        w: [usize; 4],
        out: [usize; 4],
        stride: [usize; 2],
        pad: [usize; 2],
        dil: [usize; 2],
        bias: bool,
    },
    RmsNorm(AxisView, f32),
    Softmax(AxisView),
    Rope(Bcast<2>, usize),
    Unary(UnOp),
    Binary(BinOp, Bcast<2>),
    Equal(Bcast<2>),
    Where(Bcast<3>),
    ReduceMinRows(usize),
    ReduceMinGeneral(Vec<usize>),
    Cast {
        from: Repr,
        to: Repr,
        round: Option<ElemType>,
    },
    Quantize,
    Dequantize,
    Requantize,
    /// u16 -> u8 requantization with HTP's fixed-point formula (`Rounding::Htp`).
    RequantizeHtp(quant::HtpConvert),
    /// u16 x LPBQ linear / 1x1 conv with HTP's integer arithmetic (`Rounding::Htp`);
    /// built at compile time for a plain weight, else on the first run from the weight
    /// operand's codes (a constant view chain of a weight).
    GemmHtp {
        layout: quant::WeightLayout,
        lin: std::sync::OnceLock<Arc<quant::HtpLinear>>,
    },
    /// u16 x u8 matmul with HTP's integer arithmetic (`Rounding::Htp`): the shapes of the
    /// wrapped `K::MatMul`.
    MatMulHtp(Box<K>, quant::HtpMatMul),
    /// u16 + / - u16 with HTP's 16-bit multipliers (`Rounding::Htp`).
    AddHtp(Bcast<2>, quant::HtpAdd),
    /// u16 x u16 with HTP's multiplier and wrapped offset term (`Rounding::Htp`).
    MulHtp(Bcast<2>, htp_ew::HtpMul),
    /// u16 sigmoid with HTP's input grid and output symmetry (`Rounding::Htp`).
    SigmoidHtp(htp_ew::HtpSigmoid),
    /// u16 softmax into u16 codes of scale 1/65535 with HTP's fixed-point exp, sum and
    /// reciprocal (`Rounding::Htp`), along the view's axis.
    SoftmaxHtp(AxisView, htp_softmax::HtpSoftmax),
    /// u16 RMS norm with a u16 gamma (`ins[1]`, contiguous codes) in HTP's arithmetic
    /// (`Rounding::Htp`), along the view's axis.
    RmsNormHtp(AxisView, htp_norm::HtpRmsNorm),
    /// u16 select with HTP's requantization of each branch (`Rounding::Htp`); operands
    /// `[condition, a, b]`.
    WhereHtp(Bcast<3>, htp_select::HtpSelect),
    /// Fused attention rows (float mode): `softmax(where(mask, s * scale, min(s * scale)
    /// + fill))` over the last axis; `ins` = `[s, mask]`, `plan` walks `[s, mask]` rows.
    MaskedSoftmax {
        plan: Bcast<2>,
        scale: f32,
        fill: f32,
    },
}

/// The two parts of a matmul's `B` operand that is the concat of `[.., rows1, cols]` and
/// `[.., rows2, cols]` along the rows (e.g. the past keys and the new keys).
#[derive(Debug, Clone, Copy)]
struct BCat {
    rows1: usize,
    rows2: usize,
    cols: usize,
    /// The operand is used transposed (`transpose_b`): its stored rows are `B`'s columns.
    transposed: bool,
}

impl BCat {
    /// Stored row `r` of batch element `bi` of the concat, from the parts.
    #[inline]
    fn row<'a>(&self, p1: &'a [f32], p2: &'a [f32], bi: usize, r: usize) -> &'a [f32] {
        let c = self.cols;
        if r < self.rows1 {
            &p1[(bi * self.rows1 + r) * c..]
        } else {
            &p2[(bi * self.rows2 + r - self.rows1) * c..]
        }
    }
}

/// One batch element of a matmul's `B` operand as stored rows (see [`gemm::pack_b_rows`]):
/// from the two parts of a concat, or from one buffer at `off` with rows `stride` apart.
struct BRows<'a> {
    p1: &'a [f32],
    p2: &'a [f32],
    cat: Option<BCat>,
    bi: usize,
    off: usize,
    stride: usize,
    transposed: bool,
}

impl<'a> BRows<'a> {
    #[inline]
    fn row(&self, r: usize) -> &'a [f32] {
        match &self.cat {
            Some(bc) => bc.row(self.p1, self.p2, self.bi, r),
            None => &self.p1[self.off + r * self.stride..],
        }
    }
}

/// Whether a step runs in plain runs (no observer) and in observed runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fuse {
    /// Always.
    Always,
    /// Only in plain runs: a fused step standing for several covered ones.
    Fused,
    /// Only in observed runs (the observer sees every op's output): a step that a fused
    /// step computes in plain runs.
    Covered,
}

#[derive(Debug)]
struct Step {
    op: OpId,
    kind: OpKind,
    name: Option<String>,
    label: String,
    ins: Vec<usize>,
    out: usize,
    k: K,
    fuse: Fuse,
}

#[derive(Debug, Default)]
struct Scratch {
    deq: [usize; 3],
    res: usize,
    apack: usize,
    bpack: usize,
    gout: usize,
}

#[derive(Debug, Default)]
struct State {
    arena: Vec<u64>,
    deq: [Vec<f32>; 3],
    res: Vec<f32>,
    apack: Vec<f32>,
    bpack: Vec<f32>,
    gout: Vec<f32>,
    obs: Vec<f32>,
    direct: Vec<bool>,
    /// Accumulated wall time per step (empty when profiling is off).
    times: Vec<std::time::Duration>,
    /// Accumulated wall time while profiling of: the cache writes of the step extras, the
    /// write-out of the outputs after the last step (greedy-token scans included), and the
    /// scans alone.
    extra_times: [std::time::Duration; 3],
    /// Cache writes of the current run: (trigger step, result, argument), by trigger.
    kv_queue: Vec<(usize, usize, usize)>,
    /// Next entry of `kv_queue` to do.
    kv_next: usize,
    /// Results already in their output buffer (computed there) or not to be written out (a
    /// cache write took them) in the current run.
    written: Vec<bool>,
}

/// A function compiled for the CPU reference executor, with its buffers.
#[derive(Debug)]
pub struct CpuProgram {
    func: String,
    mode: NumericMode,
    vals: Vec<Val>,
    steps: Vec<Step>,
    args: Vec<usize>,
    arg_io: Vec<Io>,
    arg_names: Vec<String>,
    results: Vec<usize>,
    result_io: Vec<Io>,
    result_names: Vec<String>,
    statics: Vec<Arc<Static>>,
    arg_slots: Vec<usize>,
    /// Per result: the first step index at which it is complete (plain runs).
    result_ready: Vec<usize>,
    /// Per argument: the step index after the last plain-run step that reads it.
    arg_read_end: Vec<usize>,
    /// Per step: the result it computes when nothing else reads it (and it is the same bytes
    /// outside): computed straight into that output buffer.
    direct_out: Vec<Option<usize>>,
    arena_bytes: usize,
    max_numel: usize,
    state: State,
}

fn f32s(b: &[u8]) -> &[f32] {
    bytemuck::cast_slice(b)
}

fn f32s_mut(b: &mut [u8]) -> &mut [f32] {
    bytemuck::cast_slice_mut(b)
}

/// The graph inputs of a run: plain byte slices, or [`GraphInput`]s (some of them cache
/// buffers written between steps, [`CpuProgram::run_bytes_with`]).
#[derive(Clone, Copy)]
enum Ins<'a> {
    Plain(&'a [&'a [u8]]),
    Graph(&'a [GraphInput<'a>]),
}

impl<'a> Ins<'a> {
    fn get(self, i: usize) -> &'a [u8] {
        match self {
            Ins::Plain(x) => x[i],
            Ins::Graph(x) => x[i].bytes(),
        }
    }
}

/// The inputs of a run as the run loop holds them (cache buffers writable between steps).
enum InsMut<'s, 'a> {
    Plain(&'s [&'a [u8]]),
    Graph(&'s mut [GraphInput<'a>]),
}

/// Read access to every value except the op's output slot `[o0, o1)` of the arena.
struct Env<'a> {
    left: &'a [u8],
    right: &'a [u8],
    o1: usize,
    inputs: Ins<'a>,
    direct: &'a [bool],
    statics: &'a [Arc<Static>],
    arg_slots: &'a [usize],
}

impl<'a> Env<'a> {
    fn arena(&self, off: usize, len: usize) -> &'a [u8] {
        if off >= self.o1 {
            &self.right[off - self.o1..off - self.o1 + len]
        } else {
            &self.left[off..off + len]
        }
    }
    fn bytes(&self, v: &Val) -> &'a [u8] {
        let len = v.bytes();
        match v.loc {
            Loc::Arena(off) => self.arena(off, len),
            Loc::Arg(i) => {
                if self.direct[i] {
                    &self.inputs.get(i)[..len]
                } else {
                    self.arena(self.arg_slots[i], len)
                }
            }
            Loc::Static(i) => &self.statics[i].bytes()[..len],
            Loc::Pending | Loc::None => &[],
        }
    }
}

/// First-fit arena allocator over 64-byte aligned blocks.
#[derive(Default)]
struct Alloc {
    free: Vec<(usize, usize)>,
    top: usize,
}

impl Alloc {
    fn alloc(&mut self, len: usize) -> usize {
        let len = len.max(1).div_ceil(64) * 64;
        if let Some(i) = self.free.iter().position(|(_, l)| *l >= len) {
            let (off, l) = self.free[i];
            if l == len {
                self.free.remove(i);
            } else {
                self.free[i] = (off + len, l - len);
            }
            return off;
        }
        if let Some(&(off, l)) = self.free.last() {
            if off + l == self.top {
                self.free.pop();
                self.top = off + len;
                return off;
            }
        }
        let off = self.top;
        self.top += len;
        off
    }
    fn release(&mut self, off: usize, len: usize) {
        let len = len.max(1).div_ceil(64) * 64;
        let i = self.free.partition_point(|(o, _)| *o < off);
        self.free.insert(i, (off, len));
        if i + 1 < self.free.len() && self.free[i].0 + self.free[i].1 == self.free[i + 1].0 {
            self.free[i].1 += self.free[i + 1].1;
            self.free.remove(i + 1);
        }
        if i > 0 && self.free[i - 1].0 + self.free[i - 1].1 == self.free[i].0 {
            self.free[i - 1].1 += self.free[i].1;
            self.free.remove(i);
        }
    }
}

fn io_of(ty: &Type, mode: NumericMode) -> Io {
    match ty.elem() {
        ElemType::F16 => Io::F16,
        ElemType::BF16 => Io::BF16,
        ElemType::Quant(_) if !mode.is_fixed() => Io::Codes(Repr::of(ty.elem(), true)),
        _ => Io::Same,
    }
}

impl CpuProgram {
    /// Compiles `func`; weights are looked up in `store` and decoded through `cache`
    /// (share one cache between the functions of a module).
    pub fn compile(
        func: &Function,
        store: &WeightStore,
        mode: NumericMode,
        cache: &mut WeightCache,
    ) -> Result<CpuProgram, CpuError> {
        mllm_ir::verify::verify_function(func).map_err(|e| CpuError::Verify {
            func: func.name.clone(),
            msg: e.to_string(),
        })?;
        Compiler {
            uses: use_counts(func),
            f: func,
            store,
            mode,
            cache,
            vals: Vec::new(),
            index: vec![usize::MAX; func.values.len()],
            statics: Vec::new(),
            steps: Vec::new(),
            scratch: Scratch::default(),
        }
        .run()
    }

    /// Function name.
    pub fn name(&self) -> &str {
        &self.func
    }

    /// Numeric mode.
    pub fn mode(&self) -> NumericMode {
        self.mode
    }

    /// Argument types, in order.
    pub fn arg_types(&self) -> impl Iterator<Item = &Type> {
        self.args.iter().map(|v| &self.vals[*v].ty)
    }

    /// Result types, in order.
    pub fn result_types(&self) -> impl Iterator<Item = &Type> {
        self.results.iter().map(|v| &self.vals[*v].ty)
    }

    /// Argument names (`arg{i}` when unnamed).
    pub fn arg_names(&self) -> &[String] {
        &self.arg_names
    }

    /// Result names (`result{i}` when unnamed).
    pub fn result_names(&self) -> &[String] {
        &self.result_names
    }

    /// Size of the value arena in bytes.
    pub fn arena_bytes(&self) -> usize {
        self.arena_bytes
    }

    /// Number of executed ops (other than weights, constants and the return): the steps
    /// of an observed run.
    pub fn num_steps(&self) -> usize {
        self.steps.iter().filter(|s| s.fuse != Fuse::Fused).count()
    }

    /// Names of the results computed straight into their output buffers (e.g. `logits`):
    /// nothing else reads them, so no copy out of the arena is needed.
    pub fn direct_outputs(&self) -> Vec<String> {
        self.direct_out
            .iter()
            .flatten()
            .map(|j| self.result_names[*j].clone())
            .collect()
    }

    /// Number of fused steps: each runs, in plain (unobserved) runs, in place of several
    /// op steps (e.g. the masked softmax of an attention: mul, reduce_min, add, where and
    /// softmax in one pass over each row). Observed runs run the op steps instead, with
    /// bit-identical results.
    pub fn fused_steps(&self) -> usize {
        self.steps.len() - self.num_steps()
    }

    /// Turns per-step wall-time accounting on (resetting it) or off. Accounting costs two
    /// clock reads per step and allocates nothing while running.
    pub fn set_profiling(&mut self, on: bool) {
        self.state.times = if on {
            vec![std::time::Duration::ZERO; self.steps.len()]
        } else {
            Vec::new()
        };
        self.state.extra_times = Default::default();
    }

    /// Accumulated wall time since profiling was turned on (zero when it is off) of the work
    /// around the steps: the cache writes of [`CpuProgram::run_bytes_with`] (rows copied
    /// into the cache, results written out first when needed), the write-out of the outputs
    /// after the last step (greedy-token scans included), and the greedy-token scans alone.
    pub fn io_profile(&self) -> [std::time::Duration; 3] {
        self.state.extra_times
    }

    /// Accumulated wall time per step since profiling was turned on: op id, kind, symbolic
    /// name and time, in program order (empty when profiling is off). Fused steps are
    /// listed under their last op (e.g. the softmax), right before it; the steps they
    /// stand for accumulate time only in observed runs.
    pub fn profile(&self) -> Vec<(OpId, OpKind, Option<&str>, std::time::Duration)> {
        self.steps
            .iter()
            .zip(&self.state.times)
            .map(|(s, t)| (s.op, s.kind, s.name.as_deref(), *t))
            .collect()
    }

    fn input_err(&self, i: usize, msg: String) -> CpuError {
        CpuError::Input {
            func: self.func.clone(),
            tensor: self.arg_names.get(i).cloned().unwrap_or_default(),
            msg,
        }
    }

    /// Runs the program on byte buffers: `inputs[i]` / `outputs[j]` hold exactly the
    /// bytes of argument `i` / result `j` in their IR type (f16 / bf16 bytes for those
    /// types, integer codes for quantized types, one byte per `i1`). Inputs whose
    /// representation matches and that are aligned are read in place.
    pub fn run_bytes(
        &mut self,
        inputs: &[&[u8]],
        outputs: &mut [&mut [u8]],
        obs: Option<&mut dyn FnMut(&OpOutput<'_>)>,
    ) -> Result<(), CpuError> {
        self.check_io(inputs.len(), |i| inputs[i].len(), outputs)?;
        for (i, b) in inputs.iter().enumerate() {
            self.stage_bytes(i, b);
        }
        self.state.written.iter_mut().for_each(|w| *w = false);
        self.run_steps(&mut InsMut::Plain(inputs), obs, Some(&mut *outputs), None)?;
        let t0 = (!self.state.times.is_empty()).then(std::time::Instant::now);
        for (j, out) in outputs.iter_mut().enumerate() {
            if !self.state.written[j] {
                self.write_output(Ins::Plain(inputs), j, out);
            }
        }
        if let Some(t0) = t0 {
            self.state.extra_times[1] += t0.elapsed();
        }
        Ok(())
    }

    /// [`CpuProgram::run_bytes`] (plain run, no observer) that also writes a step's new K/V
    /// entries into its cache inputs and computes the greedy token of a logits row, each while
    /// the data is still in the processor's caches:
    ///
    /// * `cache`: for each `(result, argument)` pair, the result's first `n` entries are
    ///   written (as [`CacheWrite::copy`]) into the argument, a [`GraphInput::Cache`], right
    ///   after the later of the step that completes the result and the last step that reads
    ///   the argument, so that every step sees the cache exactly as [`CpuProgram::run_bytes`]
    ///   would. Without [`CacheWrite::write_outputs`] the entries go straight from the
    ///   arena and the result's output buffer is left as it was. The caller has checked the
    ///   pairs ([`CacheWrite::check`]).
    /// * `argmax`: `(result, row, desc)`: returns [`greedy_token`] of that row of the result,
    ///   scanned where the result was computed (see [`CpuProgram::direct_outputs`]) or chunk
    ///   by chunk as f32 logits are copied out (`None` if `desc` is not readable that way).
    pub fn run_bytes_with(
        &mut self,
        inputs: &mut [GraphInput<'_>],
        outputs: &mut [&mut [u8]],
        cache: Option<&CacheWrite<'_>>,
        argmax: Option<(usize, usize, &TensorDesc)>,
    ) -> Result<Option<u32>, CpuError> {
        self.check_io(inputs.len(), |i| inputs[i].bytes().len(), outputs)?;
        for (i, b) in inputs.iter().enumerate() {
            self.stage_bytes(i, b.bytes());
        }
        let pairs = cache.map_or(&[][..], |c| c.pairs);
        for &(j, i) in pairs {
            if j >= self.results.len() || i >= self.args.len() {
                return Err(CpuError::Input {
                    func: self.func.clone(),
                    tensor: "*".into(),
                    msg: format!("cache write pair ({j}, {i}) out of range"),
                });
            }
        }
        let st = &mut self.state;
        st.written.iter_mut().for_each(|w| *w = false);
        st.kv_queue.clear();
        st.kv_queue.extend(
            pairs
                .iter()
                .map(|&(j, i)| (self.result_ready[j].max(self.arg_read_end[i]), j, i)),
        );
        st.kv_queue.sort_unstable();
        st.kv_next = 0;
        let mut ins = InsMut::Graph(inputs);
        self.run_steps(&mut ins, None, Some(&mut *outputs), cache)?;
        if let (InsMut::Graph(inputs), Some(cw)) = (&mut ins, cache) {
            self.flush_writes(usize::MAX, inputs, cw, outputs);
        }
        let view = match &ins {
            InsMut::Graph(g) => Ins::Graph(g),
            InsMut::Plain(p) => Ins::Plain(p),
        };
        let mut token = None;
        let profiling = !self.state.times.is_empty();
        let t0 = profiling.then(std::time::Instant::now);
        for (j, out) in outputs.iter_mut().enumerate() {
            let want = argmax.filter(|a| a.0 == j);
            if !self.state.written[j] {
                // f32 logits not computed in place: scanned chunk by chunk as they are copied.
                if let Some((_, row, desc)) = want {
                    if let Some((t, scan)) =
                        self.copy_out_argmax_f32(view, j, out, row, desc, profiling)
                    {
                        token = Some(t);
                        self.state.extra_times[2] += scan;
                        continue;
                    }
                }
                self.write_output(view, j, out);
            }
            if let Some((_, row, desc)) = want {
                let t1 = profiling.then(std::time::Instant::now);
                token = row_token(out, row, desc);
                if let Some(t1) = t1 {
                    self.state.extra_times[2] += t1.elapsed();
                }
            }
        }
        if let Some(t0) = t0 {
            self.state.extra_times[1] += t0.elapsed();
        }
        Ok(token)
    }

    /// Checks the counts and byte sizes of a run's buffers.
    fn check_io(
        &self,
        n_in: usize,
        in_len: impl Fn(usize) -> usize,
        outputs: &[&mut [u8]],
    ) -> Result<(), CpuError> {
        if n_in != self.args.len() || outputs.len() != self.results.len() {
            return Err(CpuError::Input {
                func: self.func.clone(),
                tensor: "*".into(),
                msg: format!(
                    "got {} inputs and {} outputs, the function has {} arguments and {} results",
                    n_in,
                    outputs.len(),
                    self.args.len(),
                    self.results.len()
                ),
            });
        }
        for i in 0..n_in {
            let want = self.vals[self.args[i]].ty.byte_size();
            let got = in_len(i);
            if got != want {
                return Err(self.input_err(i, format!("expected {want} bytes, got {got}")));
            }
        }
        for (j, b) in outputs.iter().enumerate() {
            let want = self.vals[self.results[j]].ty.byte_size();
            if b.len() != want {
                return Err(CpuError::Input {
                    func: self.func.clone(),
                    tensor: self.result_names[j].clone(),
                    msg: format!("output buffer: expected {want} bytes, got {}", b.len()),
                });
            }
        }
        Ok(())
    }

    /// Does the queued cache writes whose trigger is at most `upto` (a step index: every
    /// step before it has run).
    fn flush_writes(
        &mut self,
        upto: usize,
        inputs: &mut [GraphInput<'_>],
        cw: &CacheWrite<'_>,
        outputs: &mut [&mut [u8]],
    ) {
        match self.state.kv_queue.get(self.state.kv_next) {
            Some(&(t, _, _)) if t <= upto => {}
            _ => return,
        }
        let t0 = (!self.state.times.is_empty()).then(std::time::Instant::now);
        while let Some(&(t, j, i)) = self.state.kv_queue.get(self.state.kv_next) {
            if t > upto {
                break;
            }
            self.state.kv_next += 1;
            // From the output buffer when the result was computed there; else straight from
            // the arena when the output may stay unwritten and the bytes are the same;
            // otherwise through the output.
            let loc = self.vals[self.results[j]].loc;
            match loc {
                _ if self.state.written[j] => {
                    if let GraphInput::Cache(past) = &mut inputs[i] {
                        cw.copy(past, outputs[j]);
                    }
                }
                Loc::Arena(off) if !cw.write_outputs && self.result_io[j] == Io::Same => {
                    let src = &bytemuck::cast_slice(&self.state.arena)[off..off + outputs[j].len()];
                    if let GraphInput::Cache(past) = &mut inputs[i] {
                        cw.copy(past, src);
                    }
                }
                _ => {
                    self.write_output(Ins::Graph(inputs), j, outputs[j]);
                    if let GraphInput::Cache(past) = &mut inputs[i] {
                        cw.copy(past, outputs[j]);
                    }
                }
            }
            self.state.written[j] = true;
        }
        if let Some(t0) = t0 {
            self.state.extra_times[0] += t0.elapsed();
        }
    }

    /// [`CpuProgram::write_output`] of f32 logits (result `j`, bytes unchanged), returning the
    /// greedy token of row `row`, each 16 KiB chunk of the row scanned right after its copy
    /// (while in the first level cache); with `timed`, also the time spent scanning. `None`
    /// (nothing written) for other results.
    fn copy_out_argmax_f32(
        &self,
        inputs: Ins<'_>,
        j: usize,
        out: &mut [u8],
        row: usize,
        desc: &TensorDesc,
        timed: bool,
    ) -> Option<(u32, std::time::Duration)> {
        let vocab = desc.shape.last().copied().unwrap_or(0);
        let (r0, r1) = (row * vocab * 4, (row + 1) * vocab * 4);
        let v = &self.vals[self.results[j]];
        let f32_logits = self.result_io[j] == Io::Same
            && v.repr == Repr::F32
            && desc.dtype == DType::F32
            && desc.quant == Quant::None
            && r1 <= out.len()
            && bytemuck::try_cast_slice::<u8, f32>(out).is_ok();
        if !f32_logits {
            return None;
        }
        const CHUNK: usize = 16 << 10;
        let src = &self.env_all(inputs).bytes(v)[..out.len()];
        out[..r0].copy_from_slice(&src[..r0]);
        let mut am = ArgmaxF32::default();
        let mut scan = std::time::Duration::ZERO;
        for (o, s) in out[r0..r1].chunks_mut(CHUNK).zip(src[r0..r1].chunks(CHUNK)) {
            o.copy_from_slice(s);
            let t0 = timed.then(std::time::Instant::now);
            am.push(bytemuck::cast_slice(o));
            if let Some(t0) = t0 {
                scan += t0.elapsed();
            }
        }
        out[r1..].copy_from_slice(&src[r1..]);
        Some((am.index() as u32, scan))
    }

    /// Runs the program on typed inputs and returns every result in real units
    /// (dequantized). Allocates the returned vectors.
    pub fn run_f32(
        &mut self,
        inputs: &[TensorRef<'_>],
        obs: Option<&mut dyn FnMut(&OpOutput<'_>)>,
    ) -> Result<Vec<Vec<f32>>, CpuError> {
        if inputs.len() != self.args.len() {
            return Err(CpuError::Input {
                func: self.func.clone(),
                tensor: "*".into(),
                msg: format!(
                    "got {} inputs, the function has {} arguments",
                    inputs.len(),
                    self.args.len()
                ),
            });
        }
        let empty: Vec<&[u8]> = vec![&[]; inputs.len()];
        for (i, t) in inputs.iter().enumerate() {
            let v = &self.vals[self.args[i]];
            let n = match t {
                TensorRef::F32(x) => x.len(),
                TensorRef::I32(x) => x.len(),
                TensorRef::Bytes(b) => b.len() / v.ty.elem().byte_size().max(1),
            };
            let nb = match t {
                TensorRef::Bytes(b) => b.len(),
                _ => n * v.ty.elem().byte_size(),
            };
            if n != v.numel || nb != v.ty.byte_size() {
                return Err(self.input_err(
                    i,
                    format!("expected {} elements of {}, got {n}", v.numel, v.ty),
                ));
            }
            match t {
                TensorRef::Bytes(b) => {
                    self.stage_bytes(i, b);
                    self.state.direct[i] = false;
                    if self.arg_io[i] == Io::Same {
                        let off = self.arg_slots[i];
                        self.arena_mut()[off..off + b.len()].copy_from_slice(b);
                    }
                }
                TensorRef::F32(x) => self.stage_real(i, |j| x[j] as f64),
                TensorRef::I32(x) => self.stage_real(i, |j| x[j] as f64),
            }
        }
        self.run_steps(&mut InsMut::Plain(&empty), obs, None, None)?;
        let mut outs = Vec::with_capacity(self.results.len());
        for j in 0..self.results.len() {
            let v = &self.vals[self.results[j]];
            let mut o = vec![0f32; v.numel];
            let env = self.env_all(Ins::Plain(&empty));
            to_real(v, env.bytes(v), &mut o);
            outs.push(o);
        }
        Ok(outs)
    }

    fn arena_mut(&mut self) -> &mut [u8] {
        bytemuck::cast_slice_mut(&mut self.state.arena)
    }

    fn env_all<'a>(&'a self, inputs: Ins<'a>) -> Env<'a> {
        Env {
            left: &[],
            right: bytemuck::cast_slice(&self.state.arena),
            o1: 0,
            inputs,
            direct: &self.state.direct,
            statics: &self.statics,
            arg_slots: &self.arg_slots,
        }
    }

    /// Stages argument `i` from its I/O bytes (in place when possible).
    fn stage_bytes(&mut self, i: usize, b: &[u8]) {
        let v = &self.vals[self.args[i]];
        let (n, repr, io) = (v.numel, v.repr, self.arg_io[i]);
        let off = self.arg_slots[i];
        if io == Io::Same {
            let aligned = (b.as_ptr() as usize).is_multiple_of(repr.size());
            self.state.direct[i] = aligned;
            if !aligned {
                self.arena_mut()[off..off + b.len()].copy_from_slice(b);
            }
            return;
        }
        self.state.direct[i] = false;
        let shape = v.ty.shape().to_vec();
        let enc = v.ty.quant().map(|q| (q.storage, q.encoding.clone()));
        let dst = f32s_mut(&mut self.arena_mut()[off..off + n * 4]);
        match io {
            Io::F16 => {
                for (d, c) in dst.iter_mut().zip(b.chunks_exact(2)) {
                    *d = half::f16::from_le_bytes([c[0], c[1]]).to_f32();
                }
            }
            Io::BF16 => {
                for (d, c) in dst.iter_mut().zip(b.chunks_exact(2)) {
                    *d = half::bf16::from_le_bytes([c[0], c[1]]).to_f32();
                }
            }
            Io::Codes(_) => {
                if let Some((s, e)) = enc {
                    quant::dequantize_bytes(b, dst, s, &e, &shape);
                }
            }
            Io::Same => {}
        }
    }

    /// Stages argument `i` from real values `get(j)`.
    fn stage_real(&mut self, i: usize, get: impl Fn(usize) -> f64) {
        self.state.direct[i] = false;
        let off = self.arg_slots[i];
        let rounding = self.mode.rounding();
        let v = &self.vals[self.args[i]];
        let (n, repr, q, shape) = (v.numel, v.repr, v.q.clone(), v.shape.clone());
        let nb = n * repr.size();
        match q {
            Some(q) => {
                let tmp: Vec<f32> = (0..n).map(|j| get(j) as f32).collect();
                let dst = &mut self.arena_mut()[off..off + nb];
                quant::quantize_bytes(&tmp, dst, q.storage, &q.encoding, &shape, rounding);
            }
            None => {
                let dst = &mut self.arena_mut()[off..off + nb];
                for j in 0..n {
                    repr.store(dst, j, get(j));
                }
            }
        }
    }

    fn write_output(&self, inputs: Ins<'_>, j: usize, out: &mut [u8]) {
        let v = &self.vals[self.results[j]];
        let env = self.env_all(inputs);
        let src = env.bytes(v);
        match self.result_io[j] {
            Io::Same => out.copy_from_slice(&src[..out.len()]),
            Io::F16 => {
                for (o, x) in out.chunks_exact_mut(2).zip(f32s(src)) {
                    o.copy_from_slice(&half::f16::from_f32(*x).to_le_bytes());
                }
            }
            Io::BF16 => {
                for (o, x) in out.chunks_exact_mut(2).zip(f32s(src)) {
                    o.copy_from_slice(&half::bf16::from_f32(*x).to_le_bytes());
                }
            }
            Io::Codes(_) => {
                if let Some(q) = v.ty.quant() {
                    par::quantize_bytes(
                        f32s(src),
                        out,
                        q.storage,
                        &q.encoding,
                        &v.shape,
                        self.mode.rounding(),
                    );
                }
            }
        }
    }

    /// Runs the steps. With `outputs`, results nothing else reads are computed straight into
    /// their output buffer (and marked written); with `cache` too (plain runs only), the
    /// queued cache writes are done as soon as their trigger step is reached
    /// ([`CpuProgram::run_bytes_with`]).
    fn run_steps(
        &mut self,
        inputs: &mut InsMut<'_, '_>,
        mut obs: Option<&mut dyn FnMut(&OpOutput<'_>)>,
        mut outputs: Option<&mut [&mut [u8]]>,
        cache: Option<&CacheWrite<'_>>,
    ) -> Result<(), CpuError> {
        let rounding = self.mode.rounding();
        if obs.is_some() && self.state.obs.len() < self.max_numel {
            self.state.obs = vec![0f32; self.max_numel];
        }
        let profiling = !self.state.times.is_empty();
        let fused = obs.is_none();
        for si in 0..self.steps.len() {
            if let (InsMut::Graph(g), Some(cw), Some(outs)) =
                (&mut *inputs, cache, outputs.as_deref_mut())
            {
                self.flush_writes(si, g, cw, outs);
            }
            let inputs = match &*inputs {
                InsMut::Graph(g) => Ins::Graph(g),
                InsMut::Plain(p) => Ins::Plain(p),
            };
            let step = &self.steps[si];
            match step.fuse {
                Fuse::Fused if !fused => continue,
                Fuse::Covered if fused => continue,
                _ => {}
            }
            let t0 = profiling.then(std::time::Instant::now);
            let out_v = &self.vals[step.out];
            let State {
                arena,
                deq,
                res,
                apack,
                bpack,
                gout,
                obs: obs_buf,
                direct,
                times,
                written,
                ..
            } = &mut self.state;
            let arena: &mut [u8] = bytemuck::cast_slice_mut(arena);
            let (o0, o1) = match out_v.loc {
                Loc::Arena(o) => (o, o + out_v.bytes()),
                _ => (0, 0),
            };
            let (left, rest) = arena.split_at_mut(o0);
            let (mut out, right) = rest.split_at_mut(o1 - o0);
            // A result nothing else reads is computed straight into its output buffer.
            if let (Some(j), Some(outs)) = (self.direct_out[si], outputs.as_deref_mut()) {
                if (outs[j].as_ptr() as usize).is_multiple_of(64) && outs[j].len() == out.len() {
                    out = &mut *outs[j];
                    written[j] = true;
                }
            }
            let env = Env {
                left,
                right,
                o1,
                inputs,
                direct,
                statics: &self.statics,
                arg_slots: &self.arg_slots,
            };
            let sc = Sc {
                deq,
                res,
                apack,
                bpack,
                gout,
            };
            exec_step(
                &self.func,
                &self.vals,
                step,
                &env,
                out,
                sc,
                rounding.for_op(step.kind),
            )?;
            if let Some(t0) = t0 {
                times[si] += t0.elapsed();
            }
            if let Some(cb) = obs.as_deref_mut() {
                let data: &[f32] = if out_v.loc == Loc::Arena(o0) {
                    let o: &[u8] = out;
                    to_real_view(out_v, o, obs_buf)
                } else {
                    to_real_view(out_v, env.bytes(out_v), obs_buf)
                };
                cb(&OpOutput {
                    op: step.op,
                    value: out_v.id,
                    kind: step.kind,
                    name: step.name.as_deref(),
                    shape: &out_v.shape,
                    data,
                });
            }
        }
        Ok(())
    }
}

/// [`greedy_token`] of row `row` of a `[.., rows, vocab]` logits buffer (`None` if the row is
/// out of range or not readable as stored).
fn row_token(out: &[u8], row: usize, desc: &TensorDesc) -> Option<u32> {
    let len = desc.shape.last().copied().unwrap_or(0) * desc.dtype.size();
    greedy_token(out.get(row * len..(row + 1) * len)?, desc)
}

/// Converts a value's bytes to reals into `dst`.
fn to_real(v: &Val, b: &[u8], dst: &mut [f32]) {
    match (&v.q, v.repr) {
        (Some(q), _) => quant::dequantize_bytes(b, dst, q.storage, &q.encoding, &v.shape),
        (None, Repr::F32) => dst.copy_from_slice(&f32s(b)[..v.numel]),
        (None, r) => {
            for (i, d) in dst.iter_mut().enumerate().take(v.numel) {
                *d = r.load(b, i) as f32;
            }
        }
    }
}

fn to_real_view<'a>(v: &Val, b: &'a [u8], buf: &'a mut [f32]) -> &'a [f32] {
    if v.q.is_none() && v.repr == Repr::F32 {
        return &f32s(b)[..v.numel];
    }
    let d = &mut buf[..v.numel];
    to_real(v, b, d);
    d
}

/// One batch group of a batched matmul: index, output, B pack, panel output, A pack.
type GroupBufs<'a> = (
    usize,
    (
        ((&'a mut [f32], &'a mut [f32]), &'a mut [f32]),
        &'a mut [f32],
    ),
);

struct Sc<'a> {
    deq: &'a mut [Vec<f32>; 3],
    res: &'a mut Vec<f32>,
    apack: &'a mut Vec<f32>,
    bpack: &'a mut Vec<f32>,
    gout: &'a mut Vec<f32>,
}

/// An operand in real f32 units (dequantized into `scratch` if it holds codes).
fn fin<'a>(v: &Val, env: &Env<'a>, scratch: &'a mut [f32]) -> &'a [f32] {
    let b = env.bytes(v);
    match &v.q {
        None => &f32s(b)[..v.numel],
        Some(q) => {
            let d = &mut scratch[..v.numel];
            par::dequantize_bytes(b, d, q.storage, &q.encoding, &v.shape);
            d
        }
    }
}

/// Runs `f` on the output in f32, quantizing into the codes afterwards if needed.
fn fout(v: &Val, out: &mut [u8], res: &mut [f32], r: Rounding, f: impl FnOnce(&mut [f32])) {
    match &v.q {
        None => f(f32s_mut(out)),
        Some(q) => {
            let t = &mut res[..v.numel];
            f(t);
            par::quantize_bytes(t, out, q.storage, &q.encoding, &v.shape, r);
        }
    }
}

/// A broadcasting binary op on u16 codes (`p`: the operands' strides): `out` (little-endian
/// u16 codes) gets `f(a, b)` for every element.
fn u16_binary(p: &Bcast<2>, a: &[u8], b: &[u8], out: &mut [u8], f: impl Fn(u16, u16) -> u16) {
    let code = |x: &[u8], i: usize| u16::from_le_bytes([x[2 * i], x[2 * i + 1]]);
    let inner = p.inner.max(1);
    out.chunks_mut(2 * inner).enumerate().for_each(|(r, o)| {
        let [oa, ob] = p.offsets(r);
        for (i, oc) in o.chunks_exact_mut(2).enumerate() {
            let qa = code(a, oa + i * p.inner_s[0]);
            let qb = code(b, ob + i * p.inner_s[1]);
            oc.copy_from_slice(&f(qa, qb).to_le_bytes());
        }
    });
}

/// A row-wise op on u16 codes along `v`'s axis: `f(x, out, d, stride)` computes one row of
/// `d` entries that starts at `x[0]` / `out[0]` and steps by `stride` entries (the view's
/// inner size); the outer blocks run in parallel.
fn u16_rows(
    v: &AxisView,
    x: &[u8],
    out: &mut [u8],
    f: impl Fn(&[u8], &mut [u8], usize, usize) + Sync,
) {
    let (d, inner) = (v.d, v.inner.max(1));
    if d == 0 {
        return;
    }
    out.par_chunks_mut(2 * d * inner)
        .zip(x.par_chunks(2 * d * inner))
        .for_each(|(o, xr)| {
            for j in 0..inner {
                f(&xr[2 * j..], &mut o[2 * j..], d, inner);
            }
        });
}

fn index_err(func: &str, step: &Step, msg: String) -> CpuError {
    CpuError::Index {
        func: func.to_owned(),
        op: step.label.clone(),
        msg,
    }
}

fn exec_step(
    func: &str,
    vals: &[Val],
    step: &Step,
    env: &Env<'_>,
    out: &mut [u8],
    sc: Sc<'_>,
    r: Rounding,
) -> Result<(), CpuError> {
    let ov = &vals[step.out];
    let iv = |i: usize| &vals[step.ins[i]];
    let Sc {
        deq,
        res,
        apack,
        bpack,
        gout,
    } = sc;
    let [d0, d1, d2] = deq;
    match &step.k {
        K::Alias => {}
        K::Strided(s) => s.copy_bytes(ov.repr.size(), env.bytes(iv(0)), out),
        K::Concat {
            outer,
            chunks,
            requant,
        } => {
            let es = ov.repr.size();
            let total: usize = chunks.iter().sum();
            let mut acc = 0;
            for (i, (&c, &rq)) in chunks.iter().zip(requant).enumerate() {
                let v = iv(i);
                if rq {
                    let x = fin(v, env, d0);
                    let (Some(q), Some(_)) = (&ov.q, &v.q) else {
                        continue;
                    };
                    for o in 0..*outer {
                        let dst = &mut out[(o * total + acc) * es..(o * total + acc + c) * es];
                        quant::quantize_bytes(
                            &x[o * c..(o + 1) * c],
                            dst,
                            q.storage,
                            &q.encoding,
                            &[c],
                            r,
                        );
                    }
                } else {
                    let src = env.bytes(v);
                    for o in 0..*outer {
                        out[(o * total + acc) * es..(o * total + acc + c) * es]
                            .copy_from_slice(&src[o * c * es..(o + 1) * c * es]);
                    }
                }
                acc += c;
            }
        }
        K::Gather {
            outer,
            axis_len,
            inner,
            nidx,
        } => {
            let es = ov.repr.size();
            let (data, idx) = (env.bytes(iv(0)), env.bytes(iv(1)));
            let ir = iv(1).repr;
            let row = inner * es;
            for j in 0..*nidx {
                let ix = ir.load(idx, j);
                if !(ix >= 0.0 && (ix as usize) < *axis_len) {
                    return Err(index_err(
                        func,
                        step,
                        format!("index {ix} at position {j} is out of range 0..{axis_len}"),
                    ));
                }
            }
            for o in 0..*outer {
                for j in 0..*nidx {
                    let ix = ir.load(idx, j) as usize;
                    let s = (o * axis_len + ix) * row;
                    let d = (o * nidx + j) * row;
                    out[d..d + row].copy_from_slice(&data[s..s + row]);
                }
            }
        }
        K::Gemm { d, w, bias } => {
            let x = fin(iv(0), env, d0);
            let bp: gemm::BRef<'_> = match w {
                WSrc::Packed(p) => p.panels(),
                WSrc::Runtime { rs, cs } => {
                    let wv = fin(iv(1), env, d1);
                    let b = MatRef {
                        data: wv,
                        off: 0,
                        rs: *rs,
                        cs: *cs,
                    };
                    gemm::pack_b(d.k, d.n, b, bpack, true);
                    gemm::BRef::F32(&bpack[..d.packed_b_len()])
                }
            };
            let b = if *bias {
                Some(fin(iv(2), env, d2))
            } else {
                None
            };
            let a = MatRef {
                data: x,
                off: 0,
                rs: d.k,
                cs: 1,
            };
            fout(ov, out, res, r, |o| {
                gemm::gemm_panels(*d, a, bp, gout, apack, true);
                gemm::scatter(*d, gout, o, b, true);
            });
        }
        K::MatMul {
            m,
            k,
            n,
            a_rs,
            a_cs,
            b_rs,
            b_cs,
            offs,
            groups,
            bcat,
        } => {
            let (m, k, n) = (*m, *k, *n);
            let a = fin(iv(0), env, d0);
            let (b, b2) = match bcat {
                Some(_) => (f32s(env.bytes(iv(1))), f32s(env.bytes(iv(2)))),
                None => (fin(iv(1), env, d1), &[][..]),
            };
            let d = GemmDims { m, k, n };
            let (pbl, ol) = (d.packed_b_len(), d.out_len());
            // Batch element `bo` (an offset into the concat when `bcat`) of `B` as stored
            // rows, when its rows or columns are contiguous.
            let brows = |bo: usize| -> Option<BRows<'_>> {
                let (cat, bi, stride, transposed) = match bcat {
                    Some(bc) => {
                        let bi = bo / ((bc.rows1 + bc.rows2) * bc.cols).max(1);
                        (Some(*bc), bi, 0, bc.transposed)
                    }
                    None if *b_cs == 1 => (None, 0, *b_rs, false),
                    None if *b_rs == 1 => (None, 0, *b_cs, true),
                    None => return None,
                };
                Some(BRows {
                    p1: b,
                    p2: b2,
                    cat,
                    bi,
                    off: bo,
                    stride,
                    transposed,
                })
            };
            let pack_b = |bo: usize, dst: &mut [f32], parallel: bool| match brows(bo) {
                Some(br) => {
                    let row = |r: usize| br.row(r);
                    gemm::pack_b_rows(k, n, br.transposed, &row, dst, parallel);
                }
                None => {
                    let bv = MatRef {
                        data: b,
                        off: bo,
                        rs: *b_rs,
                        cs: *b_cs,
                    };
                    gemm::pack_b(k, n, bv, dst, parallel);
                }
            };
            fout(ov, out, res, r, |o| {
                if offs.len() == 1 {
                    let (ao, bo) = offs[0];
                    pack_b(bo, bpack, true);
                    let av = MatRef {
                        data: a,
                        off: ao,
                        rs: *a_rs,
                        cs: *a_cs,
                    };
                    gemm::gemm_panels(d, av, gemm::BRef::F32(&bpack[..pbl]), gout, apack, true);
                    gemm::scatter(d, gout, o, None, true);
                    return;
                }
                let ipg = offs.len().div_ceil(*groups);
                let one = |(g, (((c, bp), go), ap)): GroupBufs<'_>| {
                    for (ii, cc) in c.chunks_mut((m * n).max(1)).enumerate() {
                        let (ao, bo) = offs[g * ipg + ii];
                        let av = MatRef {
                            data: a,
                            off: ao,
                            rs: *a_rs,
                            cs: *a_cs,
                        };
                        if m <= gemm::SMALL_M {
                            if let Some(br) = brows(bo) {
                                let row = |r: usize| br.row(r);
                                gemm::small_m(d, av, br.transposed, &row, cc);
                                continue;
                            }
                        }
                        pack_b(bo, bp, false);
                        if !gemm::gemm_rows(d, av, gemm::BRef::F32(bp), cc, ap) {
                            gemm::gemm_panels(d, av, gemm::BRef::F32(bp), go, ap, false);
                            gemm::scatter(d, go, cc, None, false);
                        }
                    }
                };
                if m * n == 0 {
                    return;
                }
                o.par_chunks_mut(ipg * m * n)
                    .zip(bpack.par_chunks_mut(pbl.max(1)))
                    .zip(gout.par_chunks_mut(ol.max(1)))
                    .zip(apack.par_chunks_mut(APACK))
                    .enumerate()
                    .for_each(one);
            });
        }
        K::Conv {
            x: xs,
            w: ws,
            out: os,
            stride,
            pad,
            dil,
            bias,
        } => {
            let x = fin(iv(0), env, d0);
            let w = fin(iv(1), env, d1);
            let b = if *bias {
                Some(fin(iv(2), env, d2))
            } else {
                None
            };
            fout(ov, out, res, r, |o| {
                conv2d(x, *xs, w, *ws, b, o, *os, *stride, *pad, *dil);
            });
        }
        K::RmsNorm(v, eps) => {
            let x = fin(iv(0), env, d0);
            let w = fin(iv(1), env, d1);
            fout(ov, out, res, r, |o| k::rms_norm(*v, x, w, *eps, o));
        }
        K::Softmax(v) => {
            let x = fin(iv(0), env, d0);
            fout(ov, out, res, r, |o| k::softmax(*v, x, o));
        }
        K::Rope(p, dd) => {
            let x = fin(iv(0), env, d0);
            let c = fin(iv(1), env, d1);
            let s = fin(iv(2), env, d2);
            fout(ov, out, res, r, |o| k::rope(p, *dd, x, c, s, o));
        }
        K::Unary(u) => {
            let x = fin(iv(0), env, d0);
            fout(ov, out, res, r, |o| match u {
                UnOp::Silu => k::map_chunks(x, o, |x, o| simd::sigmoid_into(x, o, true)),
                UnOp::Sigmoid => k::map_chunks(x, o, |x, o| simd::sigmoid_into(x, o, false)),
                UnOp::Neg => k::unary(x, o, |v| -v),
            });
        }
        K::Binary(op, p) => {
            let a = fin(iv(0), env, d0);
            let b = fin(iv(1), env, d1);
            fout(ov, out, res, r, |o| match op {
                BinOp::Add => k::binary(p, a, b, o, |x, y| x + y),
                BinOp::Sub => k::binary(p, a, b, o, |x, y| x - y),
                BinOp::Mul => k::binary(p, a, b, o, |x, y| x * y),
            });
        }
        K::Equal(p) => {
            let a = fin(iv(0), env, d0);
            let b = fin(iv(1), env, d1);
            k::binary(p, a, b, out, |x, y| (x == y) as u8);
        }
        K::Where(p) => {
            let c = env.bytes(iv(0));
            let a = fin(iv(1), env, d1);
            let b = fin(iv(2), env, d2);
            fout(ov, out, res, r, |o| k::select(p, c, a, b, o));
        }
        K::ReduceMinRows(inner) => {
            let x = fin(iv(0), env, d0);
            fout(ov, out, res, r, |o| k::reduce_min_rows(x, *inner, o));
        }
        K::ReduceMinGeneral(map) => {
            let x = fin(iv(0), env, d0);
            let shape = &iv(0).shape;
            fout(ov, out, res, r, |o| k::reduce_min_general(x, shape, map, o));
        }
        K::Cast { from, to, round } => {
            let src = env.bytes(iv(0));
            for i in 0..ov.numel {
                let mut x = from.load(src, i);
                match round {
                    Some(ElemType::F16) => x = half::f16::from_f64(x).to_f64(),
                    Some(ElemType::BF16) => x = half::bf16::from_f64(x).to_f64(),
                    _ => {}
                }
                to.store(out, i, x);
            }
        }
        K::Quantize => {
            let x = fin(iv(0), env, d0);
            if let Some(q) = &ov.q {
                par::quantize_bytes(x, out, q.storage, &q.encoding, &ov.shape, r);
            }
        }
        K::Dequantize => {
            let v = iv(0);
            if let Some(q) = &v.q {
                par::dequantize_bytes(
                    env.bytes(v),
                    f32s_mut(out),
                    q.storage,
                    &q.encoding,
                    &v.shape,
                );
            }
        }
        K::Requantize => {
            let x = fin(iv(0), env, d0);
            if let Some(q) = &ov.q {
                par::quantize_bytes(x, out, q.storage, &q.encoding, &ov.shape, r);
            }
        }
        K::RequantizeHtp(c) => c.apply_bytes(env.bytes(iv(0)), &mut out[..ov.numel]),
        K::AddHtp(p, h) => u16_binary(
            p,
            env.bytes(iv(0)),
            env.bytes(iv(1)),
            &mut out[..2 * ov.numel],
            |a, b| h.apply(a, b),
        ),
        K::SigmoidHtp(h) => h.apply_bytes(env.bytes(iv(0)), &mut out[..2 * ov.numel]),
        K::RmsNormHtp(v, h) => {
            let (x, g) = (env.bytes(iv(0)), env.bytes(iv(1)));
            if g.len() >= 2 * v.d {
                u16_rows(v, x, &mut out[..2 * ov.numel], |xr, o, d, stride| {
                    h.row_bytes(xr, g, o, d, stride)
                });
            }
        }
        K::WhereHtp(p, h) => h.run(
            p,
            env.bytes(iv(0)),
            env.bytes(iv(1)),
            env.bytes(iv(2)),
            &mut out[..2 * ov.numel],
        ),
        K::SoftmaxHtp(v, h) => u16_rows(
            v,
            env.bytes(iv(0)),
            &mut out[..2 * ov.numel],
            |xr, o, d, stride| h.row_bytes(xr, o, d, stride),
        ),
        K::MulHtp(p, h) => u16_binary(
            p,
            env.bytes(iv(0)),
            env.bytes(iv(1)),
            &mut out[..2 * ov.numel],
            |a, b| h.apply(a, b),
        ),
        K::MatMulHtp(mm, h) => {
            if let K::MatMul {
                m,
                k,
                n,
                a_rs,
                a_cs,
                b_rs,
                b_cs,
                offs,
                ..
            } = &**mm
            {
                let (a, b) = (env.bytes(iv(0)), env.bytes(iv(1)));
                let mn2 = 2 * m * n;
                out.par_chunks_mut(mn2.max(1))
                    .zip(offs)
                    .for_each(|(o, (ao, bo))| {
                        h.run(
                            a,
                            (*ao, *a_rs, *a_cs),
                            b,
                            (*bo, *b_rs, *b_cs),
                            (*m, *k, *n),
                            o,
                        )
                    });
            }
        }
        K::GemmHtp { layout, lin } => {
            let l = match lin.get() {
                Some(l) => l,
                None => {
                    let (w, x) = (iv(1), iv(0));
                    let built = match (&w.q, x.q.as_ref().and_then(|q| q.encoding.per_tensor())) {
                        (Some(wq), Some((si, oi))) => {
                            ov.q.as_ref()
                                .and_then(|q| q.encoding.per_tensor())
                                .and_then(|(so, oo)| {
                                    quant::HtpLinear::new(
                                        env.bytes(w),
                                        &w.shape,
                                        *layout,
                                        &wq.encoding,
                                        si,
                                        oi,
                                        so,
                                        oo,
                                    )
                                })
                        }
                        _ => None,
                    };
                    let built = built.ok_or_else(|| {
                        index_err(func, step, "HTP linear outside its domain".into())
                    })?;
                    lin.get_or_init(|| Arc::new(built))
                }
            };
            l.run(env.bytes(iv(0)), out);
        }
        K::MaskedSoftmax { plan, scale, fill } => {
            let (x, mask) = (f32s(env.bytes(iv(0))), env.bytes(iv(1)));
            k::rows_mut(f32s_mut(out), plan.inner, |r, o| {
                let [xo, mo] = plan.offsets(r);
                let n = o.len();
                simd::masked_softmax_row(&x[xo..xo + n], &mask[mo..mo + n], *scale, *fill, o);
            });
        }
    }
    Ok(())
}

/// Direct NHWC x HWIO convolution (general path; 1x1 convolutions use the GEMM).
#[allow(clippy::too_many_arguments)]
fn conv2d(
    x: &[f32],
    xs: [usize; 4],
    w: &[f32],
    ws: [usize; 4],
    bias: Option<&[f32]>,
    out: &mut [f32],
    os: [usize; 4],
    stride: [usize; 2],
    pad: [usize; 2],
    dil: [usize; 2],
) {
    let [_, h, wd, ci] = xs;
    let [kh, kw, _, co] = ws;
    let ow = os[2];
    k::rows_mut(out, ow * co, |row, o| {
        let (n, oy) = (row / os[1], row % os[1]);
        for ox in 0..ow {
            let acc = &mut o[ox * co..(ox + 1) * co];
            match bias {
                Some(b) => acc.copy_from_slice(&b[..co]),
                None => acc.fill(0.0),
            }
            for ky in 0..kh {
                let iy = (oy * stride[0] + ky * dil[0]) as isize - pad[0] as isize;
                if iy < 0 || iy as usize >= h {
                    continue;
                }
                for kx in 0..kw {
                    let ix = (ox * stride[1] + kx * dil[1]) as isize - pad[1] as isize;
                    if ix < 0 || ix as usize >= wd {
                        continue;
                    }
                    let xo = ((n * h + iy as usize) * wd + ix as usize) * ci;
                    for c in 0..ci {
                        let xv = x[xo + c];
                        let wo = ((ky * kw + kx) * ci + c) * co;
                        for (a, wv) in acc.iter_mut().zip(&w[wo..wo + co]) {
                            *a += xv * *wv;
                        }
                    }
                }
            }
        }
    });
}

/// A match of [`Compiler::masked_softmax`].
struct MaskedPattern {
    /// The mul, reduce_min, add and where ops the fused step stands for.
    covered: [OpId; 4],
    scores: ValueId,
    cond: ValueId,
    scale: f32,
    fill: f32,
    plan: Bcast<2>,
}

/// Number of uses of every value (as an operand, including of the return).
fn use_counts(f: &Function) -> Vec<u32> {
    let mut n = vec![0u32; f.values.len()];
    for op in f.op_ids() {
        for v in &f.op(op).operands {
            n[v.index()] += 1;
        }
    }
    n
}

struct Compiler<'a> {
    uses: Vec<u32>,
    f: &'a Function,
    store: &'a WeightStore,
    mode: NumericMode,
    cache: &'a mut WeightCache,
    vals: Vec<Val>,
    index: Vec<usize>,
    statics: Vec<Arc<Static>>,
    steps: Vec<Step>,
    scratch: Scratch,
}

fn label(f: &Function, op: OpId) -> String {
    let o = f.op(op);
    match &o.name {
        Some(n) => format!("{} (\"{n}\")", o.kind.name()),
        None => o.kind.name().to_owned(),
    }
}

impl Compiler<'_> {
    fn unsupported(&self, op: OpId, msg: impl Into<String>) -> CpuError {
        CpuError::Unsupported {
            func: self.f.name.clone(),
            op: label(self.f, op),
            msg: msg.into(),
        }
    }

    fn val(&mut self, v: ValueId) -> usize {
        if self.index[v.index()] != usize::MAX {
            return self.index[v.index()];
        }
        let ty = self.f.ty(v).clone();
        let fixed = self.mode.is_fixed();
        let repr = Repr::of(ty.elem(), fixed);
        let q = if fixed { ty.quant().cloned() } else { None };
        let i = self.vals.len();
        self.vals.push(Val {
            id: v,
            shape: ty.shape().to_vec(),
            numel: ty.numel(),
            ty,
            repr,
            q,
            loc: Loc::Pending,
        });
        self.index[v.index()] = i;
        i
    }

    fn add_static(&mut self, s: Arc<Static>) -> Loc {
        self.statics.push(s);
        Loc::Static(self.statics.len() - 1)
    }

    /// Whether every use of `v` is as the weight operand of a packable GEMM.
    fn only_packed_uses(&self, v: ValueId) -> bool {
        let mut any = false;
        for op in self.f.op_ids() {
            let o = self.f.op(op);
            for (i, x) in o.operands.iter().enumerate() {
                if *x != v {
                    continue;
                }
                if i != 1 || self.pack_layout(op).is_none() {
                    return false;
                }
                any = true;
            }
        }
        any
    }

    /// The packed-weight layout of a GEMM op whose weight operand is a `builtin.weight`.
    fn pack_layout(&self, op: OpId) -> Option<PackLayout> {
        let o = self.f.op(op);
        let w = *o.operands.get(1)?;
        let wop = self.f.def_op(w)?;
        if self.f.op(wop).kind != OpKind::Weight {
            return None;
        }
        match o.kind {
            OpKind::Linear => Some(PackLayout::NK),
            OpKind::Conv2d if self.conv_is_1x1(op) => Some(PackLayout::KN),
            _ => None,
        }
    }

    fn conv_is_1x1(&self, op: OpId) -> bool {
        let o = self.f.op(op);
        let ws = self.f.ty(o.operands[1]).shape();
        let stride = o.attrs.ints("stride").unwrap_or(&[1, 1]);
        let pad = o.attrs.ints("pad").unwrap_or(&[0, 0, 0, 0]);
        ws.len() == 4
            && ws[0] == 1
            && ws[1] == 1
            && stride.iter().all(|s| *s == 1)
            && pad.iter().all(|p| *p == 0)
    }

    /// HTP's fixed-point u16 -> u8 conversion from value `i` to value `o`, when the
    /// rounding is [`Rounding::Htp`], both are per-tensor and the scales are in the
    /// measured domain of [`quant::HtpConvert`].
    fn htp_convert(&self, i: usize, o: usize) -> Option<quant::HtpConvert> {
        if self.mode.rounding() != Rounding::Htp {
            return None;
        }
        let (qi, qo) = (self.vals[i].q.as_ref()?, self.vals[o].q.as_ref()?);
        if qi.storage != Storage::U16 || qo.storage != Storage::U8 {
            return None;
        }
        match (&qi.encoding, &qo.encoding) {
            (
                Encoding::PerTensor {
                    scale: si,
                    offset: oi,
                },
                Encoding::PerTensor {
                    scale: so,
                    offset: oo,
                },
            ) => quant::HtpConvert::new(*si, *oi, *so, *oo),
            _ => None,
        }
    }

    /// HTP's u16 sigmoid of value `i` into value `o` ([`htp_ew::HtpSigmoid`]), when the
    /// rounding is [`Rounding::Htp`], both are per-tensor u16 and in its domain.
    fn htp_sigmoid(&self, i: usize, o: usize) -> Option<htp_ew::HtpSigmoid> {
        if self.mode.rounding() != Rounding::Htp {
            return None;
        }
        let pt = |v| self.per_tensor(v, Storage::U16);
        htp_ew::HtpSigmoid::new(pt(i)?, pt(o)?)
    }

    /// HTP's u16 select of `ins = [condition, a, b]` into value `o`
    /// ([`htp_select::HtpSelect`]), when the rounding is [`Rounding::Htp`], `a`, `b` and
    /// the result are per-tensor u16 and both branches are in its domain. A branch that
    /// is a function argument gets the HTP's graph-input requantization, any other the
    /// op-produced one.
    fn htp_select(&self, ins: &[usize], o: usize) -> Option<htp_select::HtpSelect> {
        if self.mode.rounding() != Rounding::Htp || ins.len() != 3 {
            return None;
        }
        let out = self.per_tensor(o, Storage::U16)?;
        let branch = |v: usize| {
            let inp = self.per_tensor(v, Storage::U16)?;
            if self.f.def_op(self.vals[v].id).is_none() {
                htp_select::HtpRescale::graph_input(inp, out)
            } else {
                htp_select::HtpRescale::native(inp, out)
            }
        };
        Some(htp_select::HtpSelect::new(branch(ins[1])?, branch(ins[2])?))
    }

    /// HTP's u16 RMS norm of value `x` with gamma `g` into value `o`
    /// ([`htp_norm::HtpRmsNorm`]), when the rounding is [`Rounding::Htp`], `x`, `g` and
    /// the result are per-tensor u16 and the gamma's offset is 0.
    fn htp_rms_norm(&self, x: usize, g: usize, o: usize, eps: f32) -> Option<htp_norm::HtpRmsNorm> {
        if self.mode.rounding() != Rounding::Htp {
            return None;
        }
        let pt = |v| self.per_tensor(v, Storage::U16);
        match pt(g)? {
            (sg, 0) => htp_norm::HtpRmsNorm::new(pt(x)?, sg, pt(o)?, eps),
            _ => None,
        }
    }

    /// The per-tensor `(scale, offset)` of value `v` when it is quantized with storage `st`.
    fn per_tensor(&self, v: usize, st: Storage) -> Option<(f32, i32)> {
        match &self.vals[v].q {
            Some(q) if q.storage == st => q.encoding.per_tensor(),
            _ => None,
        }
    }

    /// HTP's u16 softmax of value `i` into value `o` along rows of `d` entries
    /// ([`htp_softmax::HtpSoftmax`]), when the rounding is [`Rounding::Htp`], both are
    /// per-tensor u16, the result has scale 1/65535 offset 0 and the rows have at least 3
    /// entries (2-wide rows take another path on the HTP).
    fn htp_softmax(&self, i: usize, o: usize, d: usize) -> Option<htp_softmax::HtpSoftmax> {
        if self.mode.rounding() != Rounding::Htp || d < 3 {
            return None;
        }
        let pt = |v| self.per_tensor(v, Storage::U16);
        htp_softmax::HtpSoftmax::new(pt(i)?, pt(o)?)
    }

    /// HTP's integer u16 x LPBQ linear / 1x1 conv for `op` (inputs `ins`, result `out`),
    /// when the rounding is [`Rounding::Htp`], there is no bias, input and result are
    /// per-tensor u16, the weight is blockwise over the output channels and is a weight
    /// (or a reshape / transpose / slice chain of one), and the scales are in the measured
    /// domain of [`quant::HtpLinear`]. For a plain weight the op is built here.
    #[allow(clippy::type_complexity)]
    fn htp_linear(
        &mut self,
        op: OpId,
        ins: &[usize],
        out: usize,
    ) -> Result<
        Option<(
            quant::WeightLayout,
            std::sync::OnceLock<Arc<quant::HtpLinear>>,
        )>,
        CpuError,
    > {
        let o = self.f.op(op);
        if self.mode.rounding() != Rounding::Htp || ins.len() != 2 {
            return Ok(None);
        }
        let layout = match o.kind {
            OpKind::Linear => quant::WeightLayout::NK,
            OpKind::Conv2d if self.conv_is_1x1(op) && o.attrs.int("group").unwrap_or(1) == 1 => {
                quant::WeightLayout::KN
            }
            _ => return Ok(None),
        };
        let (Some((si, oi)), Some((so, oo))) = (
            self.per_tensor(ins[0], Storage::U16),
            self.per_tensor(out, Storage::U16),
        ) else {
            return Ok(None);
        };
        let w = &self.vals[ins[1]];
        let Some(wq) = w.q.clone() else {
            return Ok(None);
        };
        // LPBQ: int4 codes, 4-bit block scales (the measured case; |W| <= 120).
        match &wq.encoding {
            Encoding::Blockwise {
                block_scale_bits, ..
            } if wq.storage == Storage::I4 && *block_scale_bits <= 4 => {}
            _ => return Ok(None),
        }
        let wshape = w.shape.clone();
        let (k, n) = match layout {
            quant::WeightLayout::NK => (wshape.get(1).copied(), wshape.first().copied()),
            quant::WeightLayout::KN => (
                wshape.len().checked_sub(2).map(|i| wshape[i]),
                wshape.last().copied(),
            ),
        };
        let (xs, os) = (&self.vals[ins[0]].shape, &self.vals[out].shape);
        if k.is_none() || k != xs.last().copied() || n != os.last().copied() {
            return Ok(None);
        }
        // The weight operand must be a constant: a weight, possibly viewed.
        let mut v = o.operands[1];
        let root = loop {
            let Some(d) = self.f.def_op(v) else {
                return Ok(None);
            };
            match self.f.op(d).kind {
                OpKind::Weight => break d,
                OpKind::Reshape | OpKind::Transpose | OpKind::Slice => {
                    v = self.f.op(d).operands[0];
                }
                _ => return Ok(None),
            }
        };
        let build = |codes: &[u8]| {
            quant::HtpLinear::new(codes, &wshape, layout, &wq.encoding, si, oi, so, oo)
        };
        if build(&vec![0u8; w.numel]).is_none() {
            return Ok(None);
        }
        let lin = std::sync::OnceLock::new();
        if v == o.operands[1] {
            let name = self
                .f
                .op(root)
                .attrs
                .str("name")
                .unwrap_or_default()
                .to_owned();
            let ty = w.ty.clone();
            let s = self.cache.get_static(self.store, &name, &ty, true)?;
            match build(s.bytes()) {
                Some(l) => {
                    let _ = lin.set(Arc::new(l));
                }
                None => return Ok(None),
            }
        }
        Ok(Some((layout, lin)))
    }

    /// Under [`Rounding::Htp`], `kk` (a compiled step, `ins` its operands) as HTP's
    /// integer arithmetic where it is modelled: a u16 x u8 (offset -128) `nn.matmul` into
    /// u16 ([`quant::HtpMatMul`]), a u16 `nn.add` / `nn.sub` ([`quant::HtpAdd`]), a u16
    /// `nn.mul` ([`htp_ew::HtpMul`]), all
    /// per-tensor and in the measured domains; any other step is returned unchanged.
    fn htp_wrap(&self, ins: &[usize], out: usize, kk: K) -> K {
        if self.mode.rounding() != Rounding::Htp || ins.len() != 2 {
            return kk;
        }
        let pt = |v, st| self.per_tensor(v, st);
        if let K::Binary(op @ (BinOp::Add | BinOp::Sub), p) = &kk {
            let (a, b, o) = (
                pt(ins[0], Storage::U16),
                pt(ins[1], Storage::U16),
                pt(out, Storage::U16),
            );
            if let (Some(a), Some(b), Some(o)) = (a, b, o) {
                if let Some(h) = quant::HtpAdd::new(a, b, o, matches!(op, BinOp::Sub)) {
                    return K::AddHtp(p.clone(), h);
                }
            }
            return kk;
        }
        // `x * sigmoid(x)` is fused on the HTP: the product of the sigmoid's codes with its
        // own rounding constant (`HtpMul::fused_with_sigmoid`; `silu_probe.rs` of
        // mllm-backend-qnn).
        let sigmoid_of = |s: usize, x: usize| {
            self.f.def_op(self.vals[s].id).is_some_and(|op| {
                let o = self.f.op(op);
                o.kind == OpKind::Sigmoid && o.operands.first() == Some(&self.vals[x].id)
            })
        };
        if let K::Binary(BinOp::Mul, p) = &kk {
            let fused = sigmoid_of(ins[0], ins[1]) || sigmoid_of(ins[1], ins[0]);
            let (a, b, o) = (
                pt(ins[0], Storage::U16),
                pt(ins[1], Storage::U16),
                pt(out, Storage::U16),
            );
            let sig = htp_ew::HtpSigmoid::OUTPUT;
            if fused && a != Some(sig) && b != Some(sig) {
                return kk;
            }
            if let Some(h) = a
                .zip(b)
                .zip(o)
                .and_then(|((a, b), o)| htp_ew::HtpMul::new(a, b, o))
            {
                let h = if fused { h.fused_with_sigmoid() } else { h };
                return K::MulHtp(p.clone(), h);
            }
            return kk;
        }
        if !matches!(kk, K::MatMul { bcat: None, .. }) {
            return kk;
        }
        let h = match (
            pt(ins[0], Storage::U16),
            pt(ins[1], Storage::U8),
            pt(out, Storage::U16),
        ) {
            (Some((sa, oa)), Some((sb, ob)), Some((so, oo))) => {
                quant::HtpMatMul::new(sa, oa, sb, ob, so, oo)
            }
            _ => None,
        };
        match h {
            Some(h) => K::MatMulHtp(Box::new(kk), h),
            None => kk,
        }
    }

    fn need_deq(&mut self, slot: usize, v: usize) {
        if self.vals[v].q.is_some() {
            self.scratch.deq[slot] = self.scratch.deq[slot].max(self.vals[v].numel);
        }
    }

    fn run(mut self) -> Result<CpuProgram, CpuError> {
        let f = self.f;
        let args: Vec<usize> = f.args().iter().map(|a| self.val(*a)).collect();
        for (i, a) in args.iter().enumerate() {
            self.vals[*a].loc = Loc::Arg(i);
            if let Some(q) = self.vals[*a].ty.quant() {
                if q.encoding.per_tensor().is_none() {
                    return Err(CpuError::Input {
                        func: f.name.clone(),
                        tensor: f.arg_names[i].clone().unwrap_or_default(),
                        msg: "graph inputs must be float, integer or per-tensor quantized".into(),
                    });
                }
            }
        }
        let mut results = Vec::new();
        for op in f.op_ids() {
            self.compile_op(op, &mut results)?;
        }
        // Liveness: root of every value (aliases share their operand's storage).
        let n = self.vals.len();
        let mut root: Vec<usize> = (0..n).collect();
        for s in &self.steps {
            if matches!(s.k, K::Alias) {
                root[s.out] = root[s.ins[0]];
            }
        }
        let mut last = vec![None::<usize>; n];
        for (i, s) in self.steps.iter().enumerate() {
            for x in &s.ins {
                last[root[*x]] = Some(i);
            }
        }
        for r in &results {
            last[root[*r]] = Some(usize::MAX);
        }
        let mut al = Alloc::default();
        let mut arg_slots = Vec::new();
        let mut frees: Vec<Vec<usize>> = vec![Vec::new(); self.steps.len()];
        for a in &args {
            let len = self.vals[*a].repr.size().max(4) * self.vals[*a].numel;
            arg_slots.push((al.alloc(len), len));
        }
        for (j, a) in args.iter().enumerate() {
            match last[*a] {
                Some(usize::MAX) => {}
                Some(i) => frees[i].push(*a),
                None => al.release(arg_slots[j].0, arg_slots[j].1),
            }
        }
        let mut arg_free_len = vec![0; n];
        for (j, a) in args.iter().enumerate() {
            arg_free_len[*a] = arg_slots[j].1;
        }
        for i in 0..self.steps.len() {
            let (out, alias_of) = {
                let s = &self.steps[i];
                (s.out, matches!(s.k, K::Alias).then(|| s.ins[0]))
            };
            match alias_of {
                Some(src) => self.vals[out].loc = self.vals[src].loc,
                // Already placed by the fused step that stands for this one.
                None if self.vals[out].loc != Loc::Pending => {}
                None => {
                    let off = al.alloc(self.vals[out].bytes());
                    self.vals[out].loc = Loc::Arena(off);
                    match last[out] {
                        Some(usize::MAX) => {}
                        Some(j) => frees[j].push(out),
                        None => frees[i].push(out),
                    }
                }
            }
            for v in std::mem::take(&mut frees[i]) {
                match self.vals[v].loc {
                    Loc::Arena(off) => al.release(off, self.vals[v].bytes()),
                    Loc::Arg(j) => al.release(arg_slots[j].0, arg_free_len[v]),
                    _ => {}
                }
            }
        }
        let arena_bytes = al.top;
        let max_numel = self.vals.iter().map(|v| v.numel).max().unwrap_or(0);
        let sc = &self.scratch;
        let state = State {
            arena: vec![0u64; arena_bytes.div_ceil(8)],
            deq: [
                vec![0.0; sc.deq[0]],
                vec![0.0; sc.deq[1]],
                vec![0.0; sc.deq[2]],
            ],
            res: vec![0.0; sc.res],
            apack: vec![0.0; sc.apack],
            bpack: vec![0.0; sc.bpack],
            gout: vec![0.0; sc.gout],
            obs: Vec::new(),
            direct: vec![false; args.len()],
            times: Vec::new(),
            extra_times: Default::default(),
            kv_queue: Vec::with_capacity(2 * args.len()),
            kv_next: 0,
            written: vec![false; results.len()],
        };
        // Cache-write triggers (plain runs skip the covered steps): a result is complete after
        // the last step writing its storage; an argument is free after its last reader.
        let plain = |s: &Step| s.fuse != Fuse::Covered;
        let result_ready = results
            .iter()
            .map(|&r| {
                let loc = self.vals[r].loc;
                let writes = |s: &Step| {
                    root[s.out] == root[r]
                        || (matches!(loc, Loc::Arena(_)) && self.vals[s.out].loc == loc)
                };
                self.steps
                    .iter()
                    .rposition(|s| plain(s) && writes(s))
                    .map_or(0, |i| i + 1)
            })
            .collect();
        let arg_read_end = args
            .iter()
            .map(|&a| {
                self.steps
                    .iter()
                    .rposition(|s| plain(s) && s.ins.iter().any(|x| root[*x] == a))
                    .map_or(0, |i| i + 1)
            })
            .collect();
        // Results computed straight into their output buffer: produced by one plain step
        // (not a fused chain; the result may be a view of its value) whose storage no later
        // step writes, read by no other step, returned once, the same bytes outside.
        let direct_out =
            self.steps
                .iter()
                .enumerate()
                .map(|(si, s)| {
                    let out = s.out;
                    if matches!(s.k, K::Alias) || s.fuse != Fuse::Always {
                        return None;
                    }
                    let mut of_out = results.iter().filter(|&&r| root[r] == out);
                    let r = *of_out.next()?;
                    let j = results.iter().position(|&x| x == r)?;
                    let loc = self.vals[out].loc;
                    let only = of_out.next().is_none()
                        && matches!(loc, Loc::Arena(_))
                        && self.vals[r].bytes() == self.vals[out].bytes()
                        && io_of(&self.vals[r].ty, self.mode) == Io::Same
                        && !self.steps.iter().any(|t| {
                            !matches!(t.k, K::Alias) && t.ins.iter().any(|x| root[*x] == out)
                        })
                        && !self.steps.iter().enumerate().any(|(ti, t)| {
                            ti != si
                                && !matches!(t.k, K::Alias)
                                && (root[t.out] == out || (ti > si && self.vals[t.out].loc == loc))
                        });
                    only.then_some(j)
                })
                .collect();
        let name_or =
            |n: &Option<String>, p: &str, i: usize| n.clone().unwrap_or(format!("{p}{i}"));
        let arg_io = args
            .iter()
            .map(|a| io_of(&self.vals[*a].ty, self.mode))
            .collect();
        let result_io = results
            .iter()
            .map(|a| io_of(&self.vals[*a].ty, self.mode))
            .collect();
        Ok(CpuProgram {
            func: f.name.clone(),
            mode: self.mode,
            arg_names: f
                .arg_names
                .iter()
                .enumerate()
                .map(|(i, n)| name_or(n, "arg", i))
                .collect(),
            result_names: (0..results.len())
                .map(|i| name_or(f.result_names.get(i).unwrap_or(&None), "result", i))
                .collect(),
            vals: self.vals,
            steps: self.steps,
            args,
            arg_io,
            results,
            result_io,
            statics: self.statics,
            arg_slots: arg_slots.iter().map(|s| s.0).collect(),
            result_ready,
            arg_read_end,
            direct_out,
            arena_bytes,
            max_numel,
            state,
        })
    }

    fn push(&mut self, op: OpId, ins: Vec<usize>, out: usize, k: K) {
        let o = self.f.op(op);
        if !matches!(k, K::Alias) && self.vals[out].q.is_some() {
            self.scratch.res = self.scratch.res.max(self.vals[out].numel);
        }
        self.steps.push(Step {
            op,
            kind: o.kind,
            name: o.name.clone(),
            label: label(self.f, op),
            ins,
            out,
            k,
            fuse: Fuse::Always,
        });
    }

    fn compile_op(&mut self, op: OpId, results: &mut Vec<usize>) -> Result<(), CpuError> {
        let f = self.f;
        let o = f.op(op);
        let mut ins: Vec<usize> = o.operands.iter().map(|v| self.val(*v)).collect();
        if o.kind == OpKind::Return {
            results.extend(ins.iter().copied());
            return Ok(());
        }
        let Some(&res) = o.results.first() else {
            return Err(self.unsupported(op, "op without a result"));
        };
        let out = self.val(res);
        let mut htp = match o.kind {
            OpKind::Linear | OpKind::Conv2d => self.htp_linear(op, &ins, out)?,
            _ => None,
        };
        let fixed = self.mode.is_fixed();
        let shape = self.vals[out].shape.clone();
        let sh = |i: usize| self.vals[ins[i]].shape.clone();
        let axis = |a: i64, r: usize| norm_axis(a, r).map_err(|m| self.unsupported(op, m));
        let kk = match o.kind {
            OpKind::Return => return Ok(()),
            OpKind::Weight => {
                let name = o.attrs.str("name").unwrap_or_default().to_owned();
                let ty = self.vals[out].ty.clone();
                self.vals[out].loc = if self.only_packed_uses(res) {
                    Loc::None
                } else {
                    let s = self.cache.get_static(self.store, &name, &ty, fixed)?;
                    self.add_static(s)
                };
                return Ok(());
            }
            OpKind::Constant => {
                let vals = o.attrs.floats("value").unwrap_or(&[]);
                let v = &self.vals[out];
                let n = v.numel;
                if vals.len() != 1 && vals.len() != n {
                    return Err(self.unsupported(op, "constant has neither 1 nor numel values"));
                }
                let get = |i: usize| if vals.len() == 1 { vals[0] } else { vals[i] };
                let mut b = vec![0u8; n * v.repr.size()];
                match &v.q {
                    Some(q) => {
                        let x: Vec<f32> = (0..n).map(|i| get(i) as f32).collect();
                        quant::quantize_bytes(
                            &x,
                            &mut b,
                            q.storage,
                            &q.encoding,
                            &v.shape,
                            self.mode.rounding(),
                        );
                    }
                    None => {
                        for i in 0..n {
                            v.repr.store(&mut b, i, get(i));
                        }
                    }
                }
                let loc = self.add_static(Arc::new(Static::from_bytes(&b)));
                self.vals[out].loc = loc;
                return Ok(());
            }
            OpKind::Reshape => K::Alias,
            OpKind::Quantize | OpKind::Dequantize | OpKind::Requantize if !fixed => K::Alias,
            OpKind::Transpose => {
                let perm = o.attrs.ints("perm").unwrap_or(&[]);
                let st = k::strides(&sh(0));
                let ps: Vec<usize> = perm.iter().map(|p| st[*p as usize]).collect();
                K::Strided(Strided::new(0, &shape, &ps))
            }
            OpKind::Slice => {
                let s0 = sh(0);
                let st = k::strides(&s0);
                let starts = o.attrs.ints("starts").unwrap_or(&[]);
                let steps: Vec<i64> = o
                    .attrs
                    .ints("steps")
                    .map(|v| v.to_vec())
                    .unwrap_or(vec![1; s0.len()]);
                let base: usize = starts.iter().zip(&st).map(|(b, s)| *b as usize * s).sum();
                let ss: Vec<usize> = st
                    .iter()
                    .zip(&steps)
                    .map(|(s, p)| s * *p as usize)
                    .collect();
                K::Strided(Strided::new(base, &shape, &ss))
            }
            OpKind::Repeat => {
                let s0 = sh(0);
                let a = axis(o.attrs.int("axis").unwrap_or(0), s0.len())?;
                let times = o.attrs.int("times").unwrap_or(1) as usize;
                let st = k::strides(&s0);
                let mut oshape = s0[..=a].to_vec();
                oshape.push(times);
                oshape.extend_from_slice(&s0[a + 1..]);
                let mut ost = st[..=a].to_vec();
                ost.push(0);
                ost.extend_from_slice(&st[a + 1..]);
                K::Strided(Strided::new(0, &oshape, &ost))
            }
            OpKind::Concat => {
                let a = axis(o.attrs.int("axis").unwrap_or(0), shape.len())?;
                let outer: usize = shape[..a].iter().product();
                let inner: usize = shape[a + 1..].iter().product();
                let mut chunks = Vec::new();
                let mut requant = Vec::new();
                for &i in &ins {
                    chunks.push(self.vals[i].shape[a] * inner);
                    let rq = fixed && self.vals[i].q != self.vals[out].q;
                    if rq {
                        let per_tensor = |v: &Val| {
                            v.q.as_ref()
                                .is_some_and(|q| q.encoding.per_tensor().is_some())
                        };
                        if !per_tensor(&self.vals[i]) || !per_tensor(&self.vals[out]) {
                            return Err(self.unsupported(
                                op,
                                "concat of differently encoded inputs needs per-tensor encodings",
                            ));
                        }
                        self.scratch.deq[0] = self.scratch.deq[0].max(self.vals[i].numel);
                    }
                    requant.push(rq);
                }
                K::Concat {
                    outer,
                    chunks,
                    requant,
                }
            }
            OpKind::Gather | OpKind::Embedding => {
                let s0 = sh(1 - (o.kind == OpKind::Gather) as usize);
                let (data_i, idx_i) = if o.kind == OpKind::Gather {
                    (0, 1)
                } else {
                    (1, 0)
                };
                if !matches!(self.vals[ins[idx_i]].repr, Repr::I32 | Repr::I64) {
                    return Err(self.unsupported(op, "indices must be i32 or i64"));
                }
                let a = if o.kind == OpKind::Gather {
                    axis(o.attrs.int("axis").unwrap_or(0), s0.len())?
                } else {
                    0
                };
                let kk = K::Gather {
                    outer: s0[..a].iter().product(),
                    axis_len: s0[a],
                    inner: s0[a + 1..].iter().product(),
                    nidx: self.vals[ins[idx_i]].numel,
                };
                let ins2: Vec<usize> = [ins[data_i], ins[idx_i]].into_iter().collect();
                if self.vals[ins[data_i]].repr != self.vals[out].repr {
                    return Err(self.unsupported(op, "result must keep the data's element type"));
                }
                self.push(op, ins2, out, kk);
                return Ok(());
            }
            OpKind::Linear | OpKind::Conv2d if htp.is_some() => match htp.take() {
                Some((layout, lin)) => K::GemmHtp { layout, lin },
                None => return Err(self.unsupported(op, "HTP linear")),
            },
            OpKind::Linear | OpKind::Conv2d => {
                let xs = sh(0);
                let ws = sh(1);
                let is_conv = o.kind == OpKind::Conv2d;
                if is_conv && !self.conv_is_1x1(op) {
                    return self.compile_conv(op, ins, out);
                }
                if is_conv && o.attrs.int("group").unwrap_or(1) != 1 {
                    return Err(self.unsupported(op, "only group = 1 is supported"));
                }
                let kdim = *xs.last().unwrap_or(&0);
                let n = *shape.last().unwrap_or(&0);
                let m = self.vals[ins[0]].numel.checked_div(kdim).unwrap_or(0);
                let d = GemmDims { m, k: kdim, n };
                let w = match self.pack_layout(op) {
                    Some(layout) => {
                        let wop = f
                            .def_op(o.operands[1])
                            .ok_or_else(|| self.unsupported(op, "weight"))?;
                        let name = f.op(wop).attrs.str("name").unwrap_or_default().to_owned();
                        let ty = self.vals[ins[1]].ty.clone();
                        WSrc::Packed(self.cache.get_packed(self.store, &name, &ty, layout)?)
                    }
                    None => {
                        self.need_deq(1, ins[1]);
                        self.scratch.bpack = self.scratch.bpack.max(d.packed_b_len());
                        if is_conv {
                            WSrc::Runtime { rs: ws[3], cs: 1 }
                        } else {
                            WSrc::Runtime { rs: 1, cs: kdim }
                        }
                    }
                };
                self.need_deq(0, ins[0]);
                if ins.len() > 2 {
                    self.need_deq(2, ins[2]);
                }
                self.scratch.apack = self.scratch.apack.max(APACK * gemm::max_tasks());
                self.scratch.gout = self.scratch.gout.max(d.out_len());
                K::Gemm {
                    d,
                    w,
                    bias: ins.len() > 2,
                }
            }
            OpKind::MatMul => {
                let (a, b) = (sh(0), sh(1));
                let ta = o.attrs.bool("transpose_a").unwrap_or(false);
                let tb = o.attrs.bool("transpose_b").unwrap_or(false);
                let (ra, rb, ro) = (a.len(), b.len(), shape.len());
                let (m, kd) = if ta {
                    (a[ra - 1], a[ra - 2])
                } else {
                    (a[ra - 2], a[ra - 1])
                };
                let n = if tb { b[rb - 2] } else { b[rb - 1] };
                let (a_rs, a_cs) = if ta { (1, m) } else { (kd, 1) };
                let (b_rs, b_cs) = if tb { (1, kd) } else { (n, 1) };
                let ob = &shape[..ro - 2];
                let sa = k::bcast_strides(&a[..ra - 2], ob);
                let sb = k::bcast_strides(&b[..rb - 2], ob);
                let nb: usize = ob.iter().product();
                let mut offs = Vec::with_capacity(nb);
                let mut idx = vec![0usize; ob.len()];
                for _ in 0..nb {
                    let ao: usize = idx.iter().zip(&sa).map(|(i, s)| i * s).sum();
                    let bo: usize = idx.iter().zip(&sb).map(|(i, s)| i * s).sum();
                    offs.push((ao * m * kd, bo * kd * n));
                    for dd in (0..ob.len()).rev() {
                        idx[dd] += 1;
                        if idx[dd] < ob[dd] {
                            break;
                        }
                        idx[dd] = 0;
                    }
                }
                let d = GemmDims { m, k: kd, n };
                let groups = if nb <= 1 {
                    1
                } else {
                    nb.min(gemm::max_tasks())
                };
                self.need_deq(0, ins[0]);
                self.need_deq(1, ins[1]);
                let bcat = match self.concat_operand(o.operands[1], tb) {
                    Some((p1, p2, bc)) => {
                        ins = vec![ins[0], self.val(p1), self.val(p2)];
                        Some(bc)
                    }
                    None => None,
                };
                self.scratch.apack = self
                    .scratch
                    .apack
                    .max(APACK * gemm::max_tasks().max(groups));
                self.scratch.bpack = self.scratch.bpack.max(d.packed_b_len() * groups);
                self.scratch.gout = self.scratch.gout.max(d.out_len() * groups);
                K::MatMul {
                    m,
                    k: kd,
                    n,
                    a_rs,
                    a_cs,
                    b_rs,
                    b_cs,
                    offs,
                    groups,
                    bcat,
                }
            }
            OpKind::RmsNorm => {
                let a = axis(o.attrs.int("axis").unwrap_or(-1), shape.len())?;
                let eps = o.attrs.float("epsilon").unwrap_or(1e-6) as f32;
                let htp = (self.vals[ins[1]].numel == shape[a])
                    .then(|| self.htp_rms_norm(ins[0], ins[1], out, eps))
                    .flatten();
                if let Some(h) = htp {
                    K::RmsNormHtp(AxisView::new(&shape, a), h)
                } else {
                    self.need_deq(0, ins[0]);
                    self.need_deq(1, ins[1]);
                    K::RmsNorm(AxisView::new(&shape, a), eps)
                }
            }
            OpKind::Softmax => {
                let a = axis(o.attrs.int("axis").unwrap_or(-1), shape.len())?;
                if let Some(h) = self.htp_softmax(ins[0], out, shape[a]) {
                    K::SoftmaxHtp(AxisView::new(&shape, a), h)
                } else {
                    self.need_deq(0, ins[0]);
                    if let Some(m) = self.masked_softmax(op) {
                        self.fuse_masked_softmax(op, m, out);
                        self.push(op, ins, out, K::Softmax(AxisView::new(&shape, a)));
                        if let Some(last) = self.steps.last_mut() {
                            last.fuse = Fuse::Covered;
                        }
                        return Ok(());
                    }
                    K::Softmax(AxisView::new(&shape, a))
                }
            }
            OpKind::Rope => {
                let d = *shape.last().unwrap_or(&0);
                let (c, s) = (sh(1), sh(2));
                for (i, v) in ins.iter().enumerate().take(3) {
                    self.need_deq(i, *v);
                }
                K::Rope(Bcast::new(&shape, [&c, &s], true), d)
            }
            OpKind::Silu | OpKind::Sigmoid | OpKind::Neg => {
                let htp = (o.kind == OpKind::Sigmoid)
                    .then(|| self.htp_sigmoid(ins[0], out))
                    .flatten();
                if let Some(h) = htp {
                    K::SigmoidHtp(h)
                } else {
                    self.need_deq(0, ins[0]);
                    K::Unary(match o.kind {
                        OpKind::Silu => UnOp::Silu,
                        OpKind::Sigmoid => UnOp::Sigmoid,
                        _ => UnOp::Neg,
                    })
                }
            }
            OpKind::Add | OpKind::Sub | OpKind::Mul | OpKind::Equal => {
                let (a, b) = (sh(0), sh(1));
                self.need_deq(0, ins[0]);
                self.need_deq(1, ins[1]);
                let p = Bcast::new(&shape, [&a, &b], false);
                match o.kind {
                    OpKind::Add => K::Binary(BinOp::Add, p),
                    OpKind::Sub => K::Binary(BinOp::Sub, p),
                    OpKind::Mul => K::Binary(BinOp::Mul, p),
                    _ => K::Equal(p),
                }
            }
            OpKind::Where => {
                let (c, a, b) = (sh(0), sh(1), sh(2));
                if self.vals[ins[0]].repr != Repr::Bool {
                    return Err(self.unsupported(op, "condition must be i1"));
                }
                let p = Bcast::new(&shape, [&c, &a, &b], false);
                if let Some(h) = self.htp_select(&ins, out) {
                    K::WhereHtp(p, h)
                } else {
                    self.need_deq(1, ins[1]);
                    self.need_deq(2, ins[2]);
                    K::Where(p)
                }
            }
            OpKind::ReduceMin => {
                let s0 = sh(0);
                let r = s0.len();
                let mut red = vec![false; r];
                for a in o.attrs.ints("axes").unwrap_or(&[]) {
                    red[axis(*a, r)?] = true;
                }
                self.need_deq(0, ins[0]);
                let first = red.iter().position(|x| *x).unwrap_or(r);
                if red[first..].iter().all(|x| *x) {
                    K::ReduceMinRows(s0[first..].iter().product())
                } else {
                    let mut ost = Vec::new();
                    let mut acc = 1;
                    for d in (0..r).rev() {
                        ost.push(if red[d] { 0 } else { acc });
                        if !red[d] {
                            acc *= s0[d];
                        }
                    }
                    ost.reverse();
                    K::ReduceMinGeneral(ost)
                }
            }
            OpKind::Cast => {
                let from = self.vals[ins[0]].repr;
                let to = self.vals[out].repr;
                let round = match self.vals[out].ty.elem() {
                    e @ (ElemType::F16 | ElemType::BF16) => Some(e.clone()),
                    _ => None,
                };
                K::Cast { from, to, round }
            }
            OpKind::Quantize => {
                self.need_deq(0, ins[0]);
                K::Quantize
            }
            OpKind::Dequantize => K::Dequantize,
            OpKind::Requantize => match self.htp_convert(ins[0], out) {
                Some(c) => K::RequantizeHtp(c),
                None => {
                    self.need_deq(0, ins[0]);
                    K::Requantize
                }
            },
        };
        let kk = self.htp_wrap(&ins, out, kk);
        self.push(op, ins, out, kk);
        Ok(())
    }

    /// The attention pattern `softmax(where(mask, s * c1, reduce_min(s * c1) + c2))` over
    /// the last axis ending at softmax `op` (float mode; scalar constants; every
    /// intermediate used only inside the pattern; the mask's last dim not broadcast).
    fn masked_softmax(&self, op: OpId) -> Option<MaskedPattern> {
        if self.mode.is_fixed() {
            return None;
        }
        let f = self.f;
        let def = |v: ValueId, kind: OpKind| f.def_op(v).filter(|o| f.op(*o).kind == kind);
        let scalar = |v: ValueId| -> Option<f32> {
            let c = def(v, OpKind::Constant)?;
            match f.op(c).attrs.floats("value") {
                Some([x]) => Some(*x as f32),
                _ => None,
            }
        };
        let single = |v: ValueId, n: u32| self.uses[v.index()] == n;
        let sm = f.op(op);
        let w = *sm.operands.first()?;
        let rank = f.ty(w).shape().len();
        let last = rank.checked_sub(1)?;
        let last_axis = |a: i64| norm_axis(a, rank).ok() == Some(last);
        if !last_axis(sm.attrs.int("axis").unwrap_or(-1)) || !single(w, 1) {
            return None;
        }
        let where_op = def(w, OpKind::Where)?;
        let [cond, x, fill] = f.op(where_op).operands[..] else {
            return None;
        };
        let mul = def(x, OpKind::Mul)?;
        let [a, b] = f.op(mul).operands[..] else {
            return None;
        };
        let (scores, scale) = match (scalar(a), scalar(b)) {
            (None, Some(c)) => (a, c),
            (Some(c), None) => (b, c),
            _ => return None,
        };
        let add = def(fill, OpKind::Add)?;
        let [p, q] = f.op(add).operands[..] else {
            return None;
        };
        let (rmin_v, fill_c) = match (scalar(p), scalar(q)) {
            (None, Some(c)) => (p, c),
            (Some(c), None) => (q, c),
            _ => return None,
        };
        let rmin = def(rmin_v, OpKind::ReduceMin)?;
        let ro = f.op(rmin);
        let axes_last = matches!(ro.attrs.ints("axes"), Some([a]) if last_axis(*a));
        let shape = f.ty(x).shape();
        let mshape = f.ty(cond).shape();
        let plan = Bcast::new(shape, [shape, mshape], true);
        let ok = ro.operands.first() == Some(&x)
            && axes_last
            && ro.attrs.bool("keepdims").unwrap_or(false)
            && single(x, 2)
            && single(fill, 1)
            && single(rmin_v, 1)
            && f.ty(scores).shape() == shape
            && f.ty(w).shape() == shape
            && plan.inner == *shape.last()?
            && plan.inner_s == [1, 1]
            && [scores, x, w]
                .iter()
                .all(|v| *f.ty(*v).elem() == ElemType::F32);
        ok.then_some(MaskedPattern {
            covered: [mul, rmin, add, where_op],
            scores,
            cond,
            scale,
            fill: fill_c,
            plan,
        })
    }

    /// Whether matmul operand `b` is a float concat of two parts along its rows (dim -2)
    /// used only there: then the matmul packs the parts directly, and the concat step runs
    /// only in observed runs (where the observer wants its output). Returns the parts.
    fn concat_operand(&mut self, b: ValueId, transposed: bool) -> Option<(ValueId, ValueId, BCat)> {
        if self.mode.is_fixed() || self.uses[b.index()] != 1 {
            return None;
        }
        let f = self.f;
        let cat = f.def_op(b).filter(|o| f.op(*o).kind == OpKind::Concat)?;
        let co = f.op(cat);
        let [p1, p2] = co.operands[..] else {
            return None;
        };
        let shape = f.ty(b).shape();
        let r = shape.len();
        if r < 2 || norm_axis(co.attrs.int("axis").unwrap_or(0), r).ok() != Some(r - 2) {
            return None;
        }
        let (s1, s2) = (f.ty(p1).shape(), f.ty(p2).shape());
        let same_rest =
            |s: &[usize]| s.len() == r && s[..r - 2] == shape[..r - 2] && s[r - 1] == shape[r - 1];
        let f32_ = |v: ValueId| *f.ty(v).elem() == ElemType::F32;
        if !(same_rest(s1) && same_rest(s2) && f32_(p1) && f32_(p2) && f32_(b)) {
            return None;
        }
        let bc = BCat {
            rows1: s1[r - 2],
            rows2: s2[r - 2],
            cols: shape[r - 1],
            transposed,
        };
        for s in self.steps.iter_mut().rev() {
            if s.op == cat {
                s.fuse = Fuse::Covered;
                break;
            }
        }
        Some((p1, p2, bc))
    }

    /// Pushes the fused step of `m` (result `out`) and marks the steps it covers.
    fn fuse_masked_softmax(&mut self, op: OpId, m: MaskedPattern, out: usize) {
        let ins = vec![self.val(m.scores), self.val(m.cond)];
        for s in self.steps.iter_mut().rev() {
            if m.covered.contains(&s.op) {
                s.fuse = Fuse::Covered;
            }
        }
        self.push(
            op,
            ins,
            out,
            K::MaskedSoftmax {
                plan: m.plan,
                scale: m.scale,
                fill: m.fill,
            },
        );
        if let Some(last) = self.steps.last_mut() {
            last.fuse = Fuse::Fused;
        }
    }

    fn compile_conv(&mut self, op: OpId, ins: Vec<usize>, out: usize) -> Result<(), CpuError> {
        let o = self.f.op(op);
        if o.attrs.int("group").unwrap_or(1) != 1 {
            return Err(self.unsupported(op, "only group = 1 is supported"));
        }
        let four = |s: &[usize]| -> Result<[usize; 4], CpuError> {
            s.try_into()
                .map_err(|_| self.unsupported(op, "conv2d needs rank-4 tensors"))
        };
        let x = four(&self.vals[ins[0]].shape)?;
        let w = four(&self.vals[ins[1]].shape)?;
        let os = four(&self.vals[out].shape)?;
        let get2 = |k: &str, d: [i64; 2]| {
            let v = o.attrs.ints(k).unwrap_or(&d);
            [
                v.first().copied().unwrap_or(d[0]) as usize,
                v.get(1).copied().unwrap_or(d[1]) as usize,
            ]
        };
        let pad = o.attrs.ints("pad").unwrap_or(&[0, 0, 0, 0]);
        let kk = K::Conv {
            x,
            w,
            out: os,
            stride: get2("stride", [1, 1]),
            pad: [
                pad.first().copied().unwrap_or(0) as usize,
                pad.get(2).copied().unwrap_or(0) as usize,
            ],
            dil: get2("dilation", [1, 1]),
            bias: ins.len() > 2,
        };
        for (i, v) in ins.iter().enumerate() {
            self.need_deq(i, *v);
        }
        self.push(op, ins, out, kk);
        Ok(())
    }
}
