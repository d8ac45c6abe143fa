//! The CPU reference executor of the IR: the numerical oracle of every pass and of
//! calibration.
//!
//! A [`CpuProgram`] is compiled once from a [`mllm_ir::Function`] and a
//! [`mllm_ir::WeightStore`]: weights are decoded once per module ([`WeightCache`]),
//! every op becomes a precomputed step, and every intermediate value gets a slot in
//! one preallocated arena (liveness-based reuse; `tensor.reshape` and the float-mode
//! `quant.*` ops are zero-copy aliases). Running a program allocates nothing.
//! [`CpuExecutor`] wraps the programs of a [`mllm_ir::Module`] behind the runtime's
//! [`crate::Executor`] trait.
//!
//! # Numeric modes
//!
//! [`NumericMode::Float`]: every float and quantized value is held as f32 and every op
//! computes in f32. Quantized types are treated as their expressed type: quantized
//! weights and constants are dequantized once at compile time, graph inputs with a
//! quantized type are dequantized on entry, `quant.quantize` / `quant.dequantize` /
//! `quant.requantize` are identities, and graph outputs with a quantized type are
//! quantized on exit (rounding half away from zero). f16 / bf16 values are held as f32
//! (`nn.cast` to f16 / bf16 rounds to that precision).
//!
//! [`NumericMode::Fixed`]: what the NPU computes for the quantized IR. Every value with a
//! quantized type is held as integer codes in its storage type (u8, u16, i8, i4 in an
//! i8, i16, i32). Each compute op dequantizes its quantized operands
//! (`real = (q + offset) * scale`, LPBQ `real = (q * block_scale) * channel_scale`),
//! computes in f32 exactly like the float mode, and quantizes its result with the
//! result type's encoding: `q = clamp(round(real / scale) - offset, min, max)` with the
//! configured [`Rounding`] (half away from zero by default; [`Rounding::Htp`] resolves
//! the rounding per op kind the way the Hexagon NPU does: floor for conv2d / linear /
//! matmul / rms_norm / softmax / sigmoid results, half away from zero elsewhere — use it
//! to compare with a QNN HTP graph; where the HTP's integer arithmetic is known it is
//! used instead: [`quant::HtpConvert`], [`quant::HtpLinear`], [`quant::HtpMatMul`],
//! [`quant::HtpAdd`], [`htp_ew::HtpMul`], [`htp_ew::HtpSigmoid`],
//! [`htp_select::HtpSelect`], [`htp_softmax::HtpSoftmax`], [`htp_norm::HtpRmsNorm`]; see
//! [`Rounding::Htp`]). Data-movement ops
//! (reshape, transpose, slice, gather, repeat, embedding lookup of a quantized table,
//! concat of equally encoded inputs) move codes exactly; a concat input whose encoding
//! differs from the result's is dequantized and requantized. `quant.quantize`,
//! `quant.dequantize` and `quant.requantize` do exactly their formula. Values with
//! float types stay f32; `nn.equal` compares dequantized reals.

pub mod bench;
mod error;
pub mod executor;
pub mod gemm;
pub mod htp_ew;
pub mod htp_norm;
pub mod htp_select;
pub mod htp_softmax;
pub mod kernels;
pub mod program;
pub mod quant;
mod repr;
pub mod simd;
pub mod weights;

pub use error::CpuError;
pub use executor::{CpuExecutor, TensorRef};
pub use program::{CpuProgram, OpOutput};
pub use quant::Rounding;
pub(crate) use repr::Repr;
pub use weights::WeightCache;

/// How the executor computes (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NumericMode {
    /// f32 everywhere; quantized types are treated as their expressed type.
    #[default]
    Float,
    /// Integer codes for quantized values, per-op requantization with this rounding.
    Fixed(Rounding),
}

impl NumericMode {
    /// Whether quantized values are held as integer codes.
    pub fn is_fixed(self) -> bool {
        matches!(self, NumericMode::Fixed(_))
    }
    /// The rounding used when quantizing.
    pub fn rounding(self) -> Rounding {
        match self {
            NumericMode::Float => Rounding::HalfAwayFromZero,
            NumericMode::Fixed(r) => r,
        }
    }
}
