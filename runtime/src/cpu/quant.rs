//! Quantization arithmetic of the fixed-point mode: rounding modes, quantize /
//! dequantize for every [`Encoding`], and integer storage access.
//!
//! Conventions (QNN's): `real = (q + offset) * scale` for per-tensor and per-axis
//! encodings; `real = (q * block_scale) * channel_scale` for LPBQ (blockwise).
//! Quantizing computes `q = clamp(round(real / scale) - offset, storage.min, storage.max)`
//! with the configured [`Rounding`]; a NaN maps to `-offset` (the code of real 0).

use mllm_ir::types::{Encoding, Storage};
use mllm_ir::OpKind;

/// How a real value divided by its scale is rounded to an integer code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Rounding {
    /// Round half away from zero (`f32::round`): 2.5 -> 3, -2.5 -> -3. The default.
    #[default]
    HalfAwayFromZero,
    /// Round half to even (banker's rounding, IEEE default): 2.5 -> 2, 3.5 -> 4.
    HalfToEven,
    /// Round half up (`floor(x + 0.5)`): 2.5 -> 3, -2.5 -> -2.
    HalfUp,
    /// Round down (`floor(x)`): 2.7 -> 2, -2.5 -> -3.
    Floor,
    /// What the Hexagon NPU (HTP) does, per op kind, as measured in QNN's HTP emulator
    /// (QNN 2.51, v75): ops whose result is rescaled from a wide accumulator or a
    /// normalization (`nn.conv2d`, `nn.linear`, `nn.matmul`, `nn.rms_norm`,
    /// `nn.softmax`, `nn.sigmoid`) truncate their requantized codes ([`Rounding::Floor`],
    /// about -0.5 LSB on average against rounding to nearest); element-wise ops,
    /// `quant.quantize` / `quant.requantize`, concat and select round to nearest
    /// ([`Rounding::HalfAwayFromZero`]). See [`Rounding::for_op`]. A `quant.requantize`
    /// of per-tensor u16 codes to per-tensor u8 codes uses HTP's fixed-point formula
    /// instead ([`HtpConvert`]); a u16 x LPBQ `nn.linear` / 1x1 `nn.conv2d`, a u16 x u8
    /// `nn.matmul`, a u16 `nn.add` / `nn.sub`, a u16 `nn.mul` (fused with its operand's
    /// `nn.sigmoid` when the HTP fuses them: SiLU), a u16 `nn.sigmoid`, a u16 `nn.where`, a
    /// u16 `nn.softmax` (rows of 3 or more) and a u16 `nn.rms_norm` use the HTP's integer
    /// arithmetic ([`HtpLinear`], [`HtpMatMul`], [`HtpAdd`], [`super::htp_ew::HtpMul`],
    /// [`super::htp_ew::HtpSigmoid`], [`super::htp_select::HtpSelect`],
    /// [`super::htp_softmax::HtpSoftmax`], [`super::htp_norm::HtpRmsNorm`]), each found by
    /// black-box probing of the emulator and bit-exact with it in its measured domain
    /// (per-tensor u16 results), except `HtpRmsNorm` (about 0.04% of codes one off) and
    /// the softmax reciprocal of the largest sums; other cases keep the per-kind rounding.
    Htp,
}

impl Rounding {
    /// Rounds `x` to an integral value.
    #[inline(always)]
    pub fn round(self, x: f32) -> f32 {
        match self {
            Rounding::HalfAwayFromZero => x.round(),
            Rounding::HalfToEven => x.round_ties_even(),
            Rounding::HalfUp => (x + 0.5).floor(),
            Rounding::Floor => x.floor(),
            Rounding::Htp => x.round(),
        }
    }

    /// The rounding applied to the result of an op of `kind`: [`Rounding::Htp`]
    /// resolves per kind (floor for conv2d / linear / matmul / rms_norm / softmax /
    /// sigmoid, half away from zero otherwise); every other mode is used as is.
    pub fn for_op(self, kind: OpKind) -> Rounding {
        match self {
            Rounding::Htp => match kind {
                OpKind::Conv2d
                | OpKind::Linear
                | OpKind::MatMul
                | OpKind::RmsNorm
                | OpKind::Softmax
                | OpKind::Sigmoid => Rounding::Floor,
                _ => Rounding::HalfAwayFromZero,
            },
            r => r,
        }
    }
}

/// HTP's `Convert` of per-tensor u16 codes to per-tensor u8 codes (our
/// `quant.requantize`, e.g. a new key / value into the u8 KV cache), bit-exact with QNN's
/// HTP emulator (QNN 2.51, v75; measured with `examples/requant_probe.rs` of
/// `mllm-backend-qnn`: 0 mismatches over all 65,536 input codes for every tested scale
/// pair with an output / input scale ratio below 1/16).
///
/// With `R = in_scale / out_scale` (f32 scales, ratio in f64), the HTP works in units of
/// `2^-f` output codes, `f` the largest of 7, 6, ..., 3 for which the 15-bit-shifted
/// multiplier `m = round(R * 2^(15 + f))` stays below `2^14`, and computes
/// `z = rnd((q + 1) * m) + rnd((in_offset - 1) * m)` with `rnd(v) = floor((v + 2^14) / 2^15)`,
/// then `out = clamp(floor((z + 2^(f-1)) / 2^f) - out_offset, 0, 255)`. Against rounding the
/// exact `(q + in_offset) * R` to nearest this differs by one code near ties (the
/// multiplier has only ~13 significant bits, and the two halves are rounded separately).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HtpConvert {
    m: i64,
    frac: u32,
    bias: i64,
}

impl HtpConvert {
    /// The conversion from u16 `(in_scale, in_offset)` to u8 `(out_scale, out_offset)`,
    /// or `None` outside the measured domain (non-positive or non-finite scales, or a
    /// scale ratio of 1/16 or more).
    pub fn new(in_scale: f32, in_offset: i32, out_scale: f32, out_offset: i32) -> Option<Self> {
        let ok = |s: f32| s.is_finite() && s > 0.0;
        if !ok(in_scale) || !ok(out_scale) {
            return None;
        }
        let r = in_scale as f64 / out_scale as f64;
        (3..=7u32).rev().find_map(|frac| {
            let m = (r * 2f64.powi(15 + frac as i32)).round();
            (m < 16384.0).then(|| {
                let m = m as i64;
                let bias = Self::rnd((in_offset as i64 - 1) * m) - out_offset as i64 * (1 << frac)
                    + (1 << (frac - 1));
                HtpConvert { m, frac, bias }
            })
        })
    }

    #[inline(always)]
    fn rnd(v: i64) -> i64 {
        (v + (1 << 14)) >> 15
    }

    /// The u8 code of u16 code `q`.
    #[inline(always)]
    pub fn apply(&self, q: u16) -> u8 {
        let z = Self::rnd((q as i64 + 1) * self.m) + self.bias;
        (z >> self.frac).clamp(0, 255) as u8
    }

    /// Converts little-endian u16 codes `src` into u8 codes `dst` (element-wise, up to
    /// the shorter of the two).
    pub fn apply_bytes(&self, src: &[u8], dst: &mut [u8]) {
        for (d, s) in dst.iter_mut().zip(src.chunks_exact(2)) {
            *d = self.apply(u16::from_le_bytes([s[0], s[1]]));
        }
    }
}

/// Memory layout of a GEMM weight given to [`HtpLinear::new`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightLayout {
    /// `[n, k]` row-major (`nn.linear`).
    NK,
    /// `[.., k, n]` row-major (a 1x1 `nn.conv2d` weight, HWIO).
    KN,
}

/// HTP's u16-activation x LPBQ-weight `Conv2d` / `FullyConnected` (our `nn.conv2d` 1x1
/// and `nn.linear` with a blockwise int4 weight), bit-exact with QNN's HTP emulator
/// (QNN 2.51, v75; measured with `examples/conv_probe.rs` of `mllm-backend-qnn`: 0 codes
/// off of 40 x 1,048,576 single-weight sweeps, of 16-256 channel sweeps and of random
/// K = 64..2048, N = 16..512 problems, against 25-35% for rounding the exact result down
/// and 30-60% for rounding it to nearest).
///
/// With integer weights `W = code * block_scale` and raw u16 input codes `x` (the input
/// offset not applied), per output channel (channel scale `cs`):
///
/// - the accumulator keeps only its top bits: `A = floor(sum_k W * x / 256)`;
/// - the input offset enters as `B = round(in_offset * sum_k W / 256)` (ties down);
/// - the scale ratio `a ~ in_scale * cs * 256 / out_scale` is prepared in f32 relative to
///   the weight's largest channel scale `cmax`:
///   `a = f32(f32(f32(in_scale * cmax) / out_scale) * f32(cs / cmax)) * 256`
///   (so a channel's multiplier depends on the other channels' scales);
/// - `a = m * 2^(e - 22)` with a 22-bit multiplier `m = floor(a * 2^(22 - e) + 1/2)`,
///   `e = floor(log2 a) + 1`;
/// - `out = clamp(floor((m * ((A + B) * 2^(8 + e) + 1) + 2^29) / 2^30) - out_offset, 0, 65535)`.
///
/// So the result moves in steps of `a` output codes per 256 accumulator units (about one
/// code when `a` is near 1, several when the output scale is much finer than the
/// input x weight scale, e.g. `down_proj`). The multiplier rule fits every probed
/// channel (966 checked; `round` of the exact f64 ratio: ~88%); it does not depend on the
/// block scales or weight codes. Measured for `a` from 2^-7 to 2^8 and block size 16.
#[derive(Debug, Clone)]
pub struct HtpLinear {
    k: usize,
    n: usize,
    /// `code * block_scale`, `[n][k]`.
    w: Vec<i16>,
    /// Per output channel: multiplier `m`, shift `8 + e`, offset term `B`.
    ch: Vec<(i64, i32, i64)>,
    out_offset: i64,
}

impl HtpLinear {
    /// The op for weight codes `codes` (i8 per element, `shape`, `layout`) with blockwise
    /// encoding `enc` over the output channels, u16 input `(scale, offset)` and u16 output
    /// `(scale, offset)`; `None` for any other encoding, an axis that is not the output
    /// channels, malformed scales or a scale ratio outside the measured domain.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        codes: &[u8],
        shape: &[usize],
        layout: WeightLayout,
        enc: &Encoding,
        in_scale: f32,
        in_offset: i32,
        out_scale: f32,
        out_offset: i32,
    ) -> Option<Self> {
        let Encoding::Blockwise {
            axis,
            block_size,
            block_scales,
            channel_scales,
            ..
        } = enc
        else {
            return None;
        };
        let r = shape.len();
        let (k, n, n_axis) = match layout {
            WeightLayout::NK if r == 2 => (shape[1], shape[0], 0),
            WeightLayout::KN if r >= 2 => (shape[r - 2], shape[r - 1], r - 1),
            _ => return None,
        };
        let bs = *block_size as usize;
        if *axis as usize != n_axis
            || bs == 0
            || k * n != codes.len()
            || k * n == 0
            || channel_scales.len() != n
            || block_scales.len() != n * k.div_ceil(bs)
        {
            return None;
        }
        let nb = k.div_ceil(bs);
        let mut w = vec![0i16; n * k];
        for j in 0..n {
            for c in 0..k {
                let i = match layout {
                    WeightLayout::NK => j * k + c,
                    WeightLayout::KN => c * n + j,
                };
                w[j * k + c] = codes[i] as i8 as i16 * block_scales[j * nb + c / bs] as i16;
            }
        }
        // Measured for int4 codes and 4-bit block scales (|W| <= 120); the dot product
        // accumulates 64 terms in i32, which needs |W| <= 128.
        if w.iter().any(|v| v.unsigned_abs() > 128) {
            return None;
        }
        let ok = |s: f32| s.is_finite() && s > 0.0;
        if !ok(in_scale) || !ok(out_scale) {
            return None;
        }
        if !channel_scales.iter().all(|&cs| ok(cs)) {
            return None;
        }
        let cmax = channel_scales.iter().copied().fold(0f32, f32::max);
        let mut ch = Vec::with_capacity(n);
        for (j, &cs) in channel_scales.iter().enumerate() {
            let (m, sh) = htp_multiplier(htp_ratio(in_scale, cs, cmax, out_scale))?;
            let ws: i64 = w[j * k..(j + 1) * k].iter().map(|v| *v as i64).sum();
            ch.push((m, sh, htp_offset_term(in_offset, ws)));
        }
        Some(HtpLinear {
            k,
            n,
            w,
            ch,
            out_offset: out_offset as i64,
        })
    }

    /// Reduction length `k`.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Output channels `n`.
    pub fn n(&self) -> usize {
        self.n
    }

    /// The u16 output code of channel `j` for the integer dot product `raw = sum_k W * x`.
    #[inline(always)]
    fn finish(&self, j: usize, raw: i64) -> u16 {
        let (m, sh, b) = self.ch[j];
        htp_finish(raw, m, sh, b, self.out_offset)
    }

    /// Rows of little-endian u16 input codes `x` (`[rows, k]`) into little-endian u16
    /// output codes `out` (`[rows, n]`); rows beyond either buffer are not touched.
    pub fn run(&self, x: &[u8], out: &mut [u8]) {
        use rayon::prelude::*;
        let (k, n) = (self.k, self.n);
        let rows = (x.len() / (2 * k)).min(out.len() / (2 * n));
        for r in 0..rows {
            let xr: Vec<i32> = x[r * 2 * k..(r + 1) * 2 * k]
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]) as i32)
                .collect();
            let orow = &mut out[r * 2 * n..(r + 1) * 2 * n];
            let chunk = 256;
            orow.par_chunks_mut(2 * chunk)
                .enumerate()
                .for_each(|(ci, oc)| {
                    for (jj, o) in oc.chunks_exact_mut(2).enumerate() {
                        let j = ci * chunk + jj;
                        // |W| <= 128 and x < 2^16: 64 products stay below 2^30 in i32.
                        let raw: i64 = self.w[j * k..(j + 1) * k]
                            .chunks(64)
                            .zip(xr.chunks(64))
                            .map(|(w, x)| {
                                w.iter().zip(x).map(|(w, x)| *w as i32 * x).sum::<i32>() as i64
                            })
                            .sum();
                        o.copy_from_slice(&self.finish(j, raw).to_le_bytes());
                    }
                });
        }
    }
}

/// The scale ratio `a = in_scale * cs * 256 / out_scale` of [`HtpLinear`] /
/// [`HtpMatMul`] as HTP prepares it (measured): in f32, relative to the largest channel
/// scale `cmax` of the weight, `a = f32(f32(f32(in_scale * cmax) / out_scale) *
/// f32(cs / cmax)) * 256`.
fn htp_ratio(in_scale: f32, cs: f32, cmax: f32, out_scale: f32) -> f64 {
    let t = in_scale * cmax / out_scale;
    (t * (cs / cmax)) as f64 * 256.0
}

/// The 22-bit multiplier `m = round(a * 2^(22 - e))` (ties up) and shift `8 + e` of
/// [`HtpLinear`] for the scale ratio `a` of [`htp_ratio`], or `None` outside the measured
/// domain `2^-7 <= a < 2^8`.
fn htp_multiplier(a: f64) -> Option<(i64, i32)> {
    if !(2f64.powi(-7)..256.0).contains(&a) {
        return None;
    }
    let e = a.log2().floor() as i32 + 1;
    Some(((a * 2f64.powi(22 - e) + 0.5).floor() as i64, 8 + e))
}

/// The input-offset term `B = round(in_offset * sum W / 256)` (ties down).
#[inline(always)]
fn htp_offset_term(in_offset: i32, wsum: i64) -> i64 {
    (in_offset as i64 * wsum + 127).div_euclid(256)
}

/// `clamp(floor((m * ((floor(raw / 256) + b) * 2^sh + 1) + 2^29) / 2^30) - out_offset)`.
#[inline(always)]
fn htp_finish(raw: i64, m: i64, sh: i32, b: i64, out_offset: i64) -> u16 {
    let t = raw.div_euclid(256) + b;
    let x = if sh >= 0 { t << sh } else { t >> -sh } + 1;
    let z = ((m as i128 * x as i128 + (1 << 29)) >> 30) as i64 - out_offset;
    z.clamp(0, 65535) as u16
}

/// HTP's `MatMul` of u16 activations by u8 activations with offset -128 (our
/// `nn.matmul` of queries by the u8 key cache, and of probabilities by the u8 value
/// cache), u16 result: the arithmetic of [`HtpLinear`] with `W = y - 128` (the u8 operand
/// as int8) and the u8 scale as the (only, so largest) channel scale, `B` from each
/// column's sum. Measured with `examples/conv_probe.rs` (`MODE=matmul`, with and without
/// `transpose_b`, 6 scale triples x 3 seeds): 0 codes off of 16,384 each (the exact f64
/// ratio rounded: 3-7 off for one triple); flooring the exact result misses 30-60%.
#[derive(Debug, Clone, Copy)]
pub struct HtpMatMul {
    m: i64,
    sh: i32,
    in_offset: i32,
    out_offset: i64,
}

impl HtpMatMul {
    /// The op for u16 input `(scale, offset)`, u8 operand `(scale, offset)` and u16
    /// result `(scale, offset)`; `None` unless the u8 offset is -128 and the scales are
    /// positive and in the measured domain.
    pub fn new(
        in_scale: f32,
        in_offset: i32,
        u8_scale: f32,
        u8_offset: i32,
        out_scale: f32,
        out_offset: i32,
    ) -> Option<Self> {
        let ok = |s: f32| s.is_finite() && s > 0.0;
        if u8_offset != -128 || !ok(in_scale) || !ok(u8_scale) || !ok(out_scale) {
            return None;
        }
        let (m, sh) = htp_multiplier(htp_ratio(in_scale, u8_scale, u8_scale, out_scale))?;
        Some(HtpMatMul {
            m,
            sh,
            in_offset,
            out_offset: out_offset as i64,
        })
    }

    /// One `[rows, k] x [k, n]` product: element `(i, c)` of the u16 operand is code
    /// `a[ao + i * a_rs + c * a_cs]` (little-endian u16 codes), element `(c, j)` of the u8
    /// operand `b[bo + c * b_rs + j * b_cs]`; writes `rows * n` little-endian u16 codes to
    /// `out`. Out-of-range indices write nothing (the caller checks the shapes).
    #[allow(clippy::too_many_arguments)]
    pub fn run(
        &self,
        a: &[u8],
        (ao, a_rs, a_cs): (usize, usize, usize),
        b: &[u8],
        (bo, b_rs, b_cs): (usize, usize, usize),
        (rows, k, n): (usize, usize, usize),
        out: &mut [u8],
    ) {
        let aq = |i: usize, c: usize| {
            let p = 2 * (ao + i * a_rs + c * a_cs);
            a.get(p..p + 2)
                .map_or(0, |v| u16::from_le_bytes([v[0], v[1]]) as i64)
        };
        let bw = |c: usize, j: usize| {
            b.get(bo + c * b_rs + j * b_cs)
                .map_or(0, |v| *v as i64 - 128)
        };
        let mut col = vec![0i64; k];
        for j in 0..n {
            for (c, w) in col.iter_mut().enumerate() {
                *w = bw(c, j);
            }
            let bias = htp_offset_term(self.in_offset, col.iter().sum());
            for i in 0..rows {
                let raw: i64 = col.iter().enumerate().map(|(c, w)| aq(i, c) * w).sum();
                let v = htp_finish(raw, self.m, self.sh, bias, self.out_offset);
                if let Some(o) = out.get_mut(2 * (i * n + j)..2 * (i * n + j) + 2) {
                    o.copy_from_slice(&v.to_le_bytes());
                }
            }
        }
    }
}

/// HTP's element-wise `Add` / `Subtract` of two per-tensor u16 tensors into a per-tensor
/// u16 result (rope's sum, the residual adds), bit-exact with QNN's HTP emulator
/// (QNN 2.51, v75; `examples/ew_probe.rs` of `mllm-backend-qnn`: 0 mismatches over
/// 524,288 code pairs for most tested scale triples, a few dozen at most, against 10-60%
/// off for rounding the exact sum to nearest or down).
///
/// Both inputs are rescaled by 16-bit multipliers on a common scale: with
/// `R_x = in_scale_x / out_scale` and `e = floor(log2 max(R_a, R_b)) + 1`,
/// `s = min(15 - e, 16)`, `m_x = round(R_x * 2^s)` (the larger one has 15 significant
/// bits, or fewer when both ratios are below 1/2); then
/// `out = clamp(floor((m_a * (q_a + o_a) +- m_b * (q_b + o_b) + 2^(s-1)) / 2^s) - out_offset)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HtpAdd {
    ma: i64,
    mb: i64,
    oa: i64,
    ob: i64,
    shift: u32,
    out_offset: i64,
}

impl HtpAdd {
    /// The op for inputs `(scale, offset)` `a` and `b` and result `out`; `sub` makes it
    /// `a - b`. `None` for non-positive scales or a larger scale ratio outside the
    /// measured domain `[2^-7, 4)`.
    pub fn new(a: (f32, i32), b: (f32, i32), out: (f32, i32), sub: bool) -> Option<Self> {
        let ok = |s: f32| s.is_finite() && s > 0.0;
        if !ok(a.0) || !ok(b.0) || !ok(out.0) {
            return None;
        }
        let (ra, rb) = (a.0 as f64 / out.0 as f64, b.0 as f64 / out.0 as f64);
        let rmax = ra.max(rb);
        if !(2f64.powi(-7)..4.0).contains(&rmax) {
            return None;
        }
        let shift = (15 - (rmax.log2().floor() as i32 + 1)).min(16) as u32;
        let m = |r: f64| (r * 2f64.powi(shift as i32)).round() as i64;
        Some(HtpAdd {
            ma: m(ra),
            mb: if sub { -m(rb) } else { m(rb) },
            oa: a.1 as i64,
            ob: b.1 as i64,
            shift,
            out_offset: out.1 as i64,
        })
    }

    /// The result code of input codes `qa`, `qb`.
    #[inline(always)]
    pub fn apply(&self, qa: u16, qb: u16) -> u16 {
        let v = self.ma * (qa as i64 + self.oa)
            + self.mb * (qb as i64 + self.ob)
            + (1 << (self.shift - 1));
        ((v >> self.shift) - self.out_offset).clamp(0, 65535) as u16
    }
}

/// Quantizes one real value with a per-tensor `(scale, offset)` into `[lo, hi]`.
#[inline(always)]
pub fn quantize_one(x: f32, scale: f32, offset: i32, lo: f32, hi: f32, r: Rounding) -> f32 {
    let q = r.round(x / scale) - offset as f32;
    if q.is_nan() {
        return (-offset as f32).clamp(lo, hi);
    }
    q.clamp(lo, hi)
}

/// Integer storage element types, for generic code over codes.
pub trait Code: bytemuck::Pod + Send + Sync {
    /// The code as f32.
    fn to_f32(self) -> f32;
    /// A clamped, integral f32 as a code.
    fn from_f32(v: f32) -> Self;
}

macro_rules! code {
    ($t:ty) => {
        impl Code for $t {
            #[inline(always)]
            fn to_f32(self) -> f32 {
                self as f32
            }
            #[inline(always)]
            fn from_f32(v: f32) -> Self {
                v as $t
            }
        }
    };
}
code!(u8);
code!(i8);
code!(u16);
code!(i16);
code!(i32);

/// Channel index of flat element `i` for a channel axis with `dim` channels and
/// `inner` elements after it.
#[inline(always)]
fn channel(i: usize, dim: usize, inner: usize) -> usize {
    (i / inner) % dim
}

/// Shape facts needed to locate the channel and block of a flat index.
#[derive(Debug, Clone, Copy)]
pub struct AxisGeom {
    /// Channels along the axis.
    pub dim: usize,
    /// Elements after the axis (product of the trailing dims).
    pub inner: usize,
}

impl AxisGeom {
    /// Geometry of `axis` in `shape` (an out-of-range axis gives one channel).
    pub fn new(shape: &[usize], axis: usize) -> AxisGeom {
        if axis >= shape.len() {
            return AxisGeom {
                dim: 1,
                inner: shape.iter().product::<usize>().max(1),
            };
        }
        AxisGeom {
            dim: shape[axis].max(1),
            inner: shape[axis + 1..].iter().product::<usize>().max(1),
        }
    }
}

/// Dequantizes codes `src` (a tensor of `shape`) into `dst`, for any encoding.
pub fn dequantize<T: Code>(src: &[T], dst: &mut [f32], enc: &Encoding, shape: &[usize]) {
    match enc {
        Encoding::PerTensor { scale, offset } => {
            let (s, o) = (*scale, *offset as f32);
            for (d, q) in dst.iter_mut().zip(src) {
                *d = (q.to_f32() + o) * s;
            }
        }
        Encoding::PerAxis {
            axis,
            scales,
            offsets,
        } => {
            let g = AxisGeom::new(shape, *axis as usize);
            for (i, (d, q)) in dst.iter_mut().zip(src).enumerate() {
                let c = channel(i, g.dim, g.inner);
                let s = scales.get(c).copied().unwrap_or(1.0);
                let o = offsets.get(c).copied().unwrap_or(0) as f32;
                *d = (q.to_f32() + o) * s;
            }
        }
        Encoding::Blockwise {
            axis,
            block_size,
            block_scales,
            channel_scales,
            ..
        } => {
            let g = AxisGeom::new(shape, *axis as usize);
            let per = src.len() / g.dim;
            let bs = (*block_size as usize).max(1);
            let nb = per.div_ceil(bs);
            for (i, (d, q)) in dst.iter_mut().zip(src).enumerate() {
                let c = channel(i, g.dim, g.inner);
                let pos = (i / (g.dim * g.inner)) * g.inner + i % g.inner;
                let b = block_scales.get(c * nb + pos / bs).copied().unwrap_or(1) as f32;
                let cs = channel_scales.get(c).copied().unwrap_or(1.0);
                *d = (q.to_f32() * b) * cs;
            }
        }
    }
}

/// Quantizes reals `src` (a tensor of `shape`) into codes `dst` of `storage`.
pub fn quantize<T: Code>(
    src: &[f32],
    dst: &mut [T],
    enc: &Encoding,
    storage: Storage,
    shape: &[usize],
    r: Rounding,
) {
    let (lo, hi) = (storage.min() as f32, storage.max() as f32);
    match enc {
        Encoding::PerTensor { scale, offset } => {
            for (d, x) in dst.iter_mut().zip(src) {
                *d = T::from_f32(quantize_one(*x, *scale, *offset, lo, hi, r));
            }
        }
        Encoding::PerAxis {
            axis,
            scales,
            offsets,
        } => {
            let g = AxisGeom::new(shape, *axis as usize);
            for (i, (d, x)) in dst.iter_mut().zip(src).enumerate() {
                let c = channel(i, g.dim, g.inner);
                let s = scales.get(c).copied().unwrap_or(1.0);
                let o = offsets.get(c).copied().unwrap_or(0);
                *d = T::from_f32(quantize_one(*x, s, o, lo, hi, r));
            }
        }
        Encoding::Blockwise {
            axis,
            block_size,
            block_scales,
            channel_scales,
            ..
        } => {
            let g = AxisGeom::new(shape, *axis as usize);
            let per = src.len() / g.dim;
            let bs = (*block_size as usize).max(1);
            let nb = per.div_ceil(bs);
            for (i, (d, x)) in dst.iter_mut().zip(src).enumerate() {
                let c = channel(i, g.dim, g.inner);
                let pos = (i / (g.dim * g.inner)) * g.inner + i % g.inner;
                let b = block_scales.get(c * nb + pos / bs).copied().unwrap_or(1) as f32;
                let cs = channel_scales.get(c).copied().unwrap_or(1.0);
                *d = T::from_f32(quantize_one(*x, b * cs, 0, lo, hi, r));
            }
        }
    }
}

/// Dequantizes a byte buffer of codes of `storage` into `dst`.
pub fn dequantize_bytes(
    src: &[u8],
    dst: &mut [f32],
    storage: Storage,
    enc: &Encoding,
    shape: &[usize],
) {
    match storage {
        Storage::U8 => dequantize::<u8>(src, dst, enc, shape),
        Storage::I8 | Storage::I4 => dequantize::<i8>(bytemuck::cast_slice(src), dst, enc, shape),
        Storage::U16 => dequantize::<u16>(bytemuck::cast_slice(src), dst, enc, shape),
        Storage::I16 => dequantize::<i16>(bytemuck::cast_slice(src), dst, enc, shape),
        Storage::I32 => dequantize::<i32>(bytemuck::cast_slice(src), dst, enc, shape),
    }
}

/// Quantizes `src` into a byte buffer of codes of `storage`.
pub fn quantize_bytes(
    src: &[f32],
    dst: &mut [u8],
    storage: Storage,
    enc: &Encoding,
    shape: &[usize],
    r: Rounding,
) {
    match storage {
        Storage::U8 => quantize::<u8>(src, dst, enc, storage, shape, r),
        Storage::I8 | Storage::I4 => {
            quantize::<i8>(src, bytemuck::cast_slice_mut(dst), enc, storage, shape, r)
        }
        Storage::U16 => quantize::<u16>(src, bytemuck::cast_slice_mut(dst), enc, storage, shape, r),
        Storage::I16 => quantize::<i16>(src, bytemuck::cast_slice_mut(dst), enc, storage, shape, r),
        Storage::I32 => quantize::<i32>(src, bytemuck::cast_slice_mut(dst), enc, storage, shape, r),
    }
}

/// Parallel per-tensor dequantize / quantize for large buffers (chunks of 64 Ki
/// elements); other encodings fall back to the serial loops above.
pub mod par {
    use super::*;
    use rayon::prelude::*;

    const CHUNK: usize = 1 << 16;

    /// Parallel [`dequantize_bytes`].
    pub fn dequantize_bytes(
        src: &[u8],
        dst: &mut [f32],
        storage: Storage,
        enc: &Encoding,
        shape: &[usize],
    ) {
        let es = storage.byte_size();
        match enc {
            Encoding::PerTensor { .. } if dst.len() > CHUNK => dst
                .par_chunks_mut(CHUNK)
                .zip(src.par_chunks(CHUNK * es))
                .for_each(|(d, s)| super::dequantize_bytes(s, d, storage, enc, &[d.len()])),
            _ => super::dequantize_bytes(src, dst, storage, enc, shape),
        }
    }

    /// Parallel [`quantize_bytes`].
    pub fn quantize_bytes(
        src: &[f32],
        dst: &mut [u8],
        storage: Storage,
        enc: &Encoding,
        shape: &[usize],
        r: Rounding,
    ) {
        let es = storage.byte_size();
        match enc {
            Encoding::PerTensor { .. } if src.len() > CHUNK => dst
                .par_chunks_mut(CHUNK * es)
                .zip(src.par_chunks(CHUNK))
                .for_each(|(d, s)| super::quantize_bytes(s, d, storage, enc, &[s.len()], r)),
            _ => super::quantize_bytes(src, dst, storage, enc, shape, r),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_modes_differ_on_ties() {
        assert_eq!(Rounding::HalfAwayFromZero.round(2.5), 3.0);
        assert_eq!(Rounding::HalfAwayFromZero.round(-2.5), -3.0);
        assert_eq!(Rounding::HalfToEven.round(2.5), 2.0);
        assert_eq!(Rounding::HalfToEven.round(3.5), 4.0);
        assert_eq!(Rounding::HalfUp.round(-2.5), -2.0);
        assert_eq!(Rounding::Floor.round(2.7), 2.0);
        assert_eq!(Rounding::Floor.round(-2.5), -3.0);
    }

    #[test]
    fn htp_rounding_resolves_per_op_kind() {
        for k in [
            OpKind::Conv2d,
            OpKind::Linear,
            OpKind::MatMul,
            OpKind::RmsNorm,
            OpKind::Softmax,
            OpKind::Sigmoid,
        ] {
            assert_eq!(Rounding::Htp.for_op(k), Rounding::Floor, "{k:?}");
        }
        for k in [
            OpKind::Add,
            OpKind::Mul,
            OpKind::Requantize,
            OpKind::Concat,
            OpKind::Where,
        ] {
            assert_eq!(Rounding::Htp.for_op(k), Rounding::HalfAwayFromZero, "{k:?}");
        }
        // Other modes are not per-op.
        assert_eq!(
            Rounding::HalfToEven.for_op(OpKind::Conv2d),
            Rounding::HalfToEven
        );
        assert_eq!(Rounding::Htp.round(2.5), 3.0);
    }

    /// Codes measured in QNN's HTP emulator (`examples/requant_probe.rs` of
    /// `mllm-backend-qnn`, `DETAIL=1` / `CAND=`) where HTP's u16 -> u8 `Convert` differs
    /// from rounding the exact value to nearest.
    #[test]
    fn htp_convert_matches_emulator_where_rounding_to_nearest_does_not() {
        // (in scale, in offset, out scale, out offset, input code, emulator output code)
        let cases: [(f32, i32, f32, i32, u16, u8); 7] = [
            (0.000_353_108_77, -57724, 0.159_865_32, -128, 0, 1),
            (0.000_353_108_77, -57724, 0.159_865_32, -128, 450, 2),
            (0.000_353_108_77, -57724, 0.159_865_32, -128, 452, 2),
            (0.000_334_692_3, -29571, 0.094_407_186, -128, 941, 26),
            (0.000_334_692_3, -29571, 0.094_407_186, -128, 17865, 87),
            (3e-4, -13, 0.12, -128, 210, 129),
            (3e-4, -38, 0.12, -128, 636, 130),
        ];
        for (si, oi, so, oo, q, want) in cases {
            let c = HtpConvert::new(si, oi, so, oo).expect("in the measured domain");
            assert_eq!(c.apply(q), want, "{si} {oi} {so} q {q}");
            // Rounding the (f32) dequantized value to nearest gives the other code.
            let x = (q as f32 + oi as f32) * si;
            let near = quantize_one(x, so, oo, 0.0, 255.0, Rounding::HalfAwayFromZero);
            assert_eq!((near as i32 - want as i32).abs(), 1, "{si} {oi} {so} q {q}");
        }
        let mut out = [0u8; 2];
        let c = HtpConvert::new(3e-4, -13, 0.12, -128).expect("domain");
        c.apply_bytes(&[210, 0, 0, 0], &mut out);
        assert_eq!(out, [129, c.apply(0)]);
        // Outside the measured domain: no formula.
        assert!(HtpConvert::new(3e-4, 0, 2e-4, -128).is_none());
        assert!(HtpConvert::new(0.0, 0, 0.1, -128).is_none());
    }

    /// Codes measured in QNN's HTP emulator (`examples/conv_probe.rs` of
    /// `mllm-backend-qnn`, `MODE=single DETAIL=12`): one non-zero weight (code -2, block
    /// scale 8), the input code swept; the emulator's output only moves every 16 input
    /// codes (256 accumulator units) and sits one or two codes below the exact value.
    #[test]
    fn htp_linear_matches_emulator_codes() {
        let (k, n) = (16, 1);
        let mut codes = vec![0u8; k * n];
        codes[0] = (-2i8) as u8;
        let enc = Encoding::Blockwise {
            axis: 0,
            block_size: 16,
            block_scale_bits: 4,
            block_scales: vec![8u8].into(),
            channel_scales: vec![6.377_587_6e-4f32].into(),
        };
        let (si, oi, so, oo) = (1.106_071_9e-4f32, -31352, 1.813_847_8e-5f32, -34181);
        let lin = HtpLinear::new(&codes, &[n, k], WeightLayout::NK, &enc, si, oi, so, oo)
            .expect("in the measured domain");
        assert_eq!((lin.k(), lin.n()), (16, 1));
        // (input code, emulator output code)
        let cases: [(u16, u16); 9] = [
            (0, 36131),
            (1, 36130),
            (2, 36130),
            (17, 36129),
            (18, 36129),
            (33, 36128),
            (34, 36128),
            (40000, 33642),
            (65535, 32053),
        ];
        let mut x = Vec::new();
        for (q, _) in cases {
            let mut row = vec![0u16; k];
            row[0] = q;
            row[5] = 12345; // zero weight: no effect
            x.extend(row.iter().flat_map(|v| v.to_le_bytes()));
        }
        let mut out = vec![0u8; cases.len() * 2];
        lin.run(&x, &mut out);
        let mut floor_off = 0;
        for (i, (q, want)) in cases.iter().enumerate() {
            let got = u16::from_le_bytes([out[2 * i], out[2 * i + 1]]);
            assert_eq!(got, *want, "input code {q}");
            let exact = (*q as f64 + oi as f64) * si as f64 * (-16.0 * 6.377_587_6e-4) / so as f64
                - oo as f64;
            floor_off += (exact.floor() as u16 != *want) as usize;
        }
        assert!(floor_off >= 5, "flooring the exact value should miss most");
        // A per-tensor weight, or a ratio outside the measured domain: no model.
        let pt = Encoding::PerTensor {
            scale: 0.1,
            offset: 0,
        };
        assert!(HtpLinear::new(&codes, &[n, k], WeightLayout::NK, &pt, si, oi, so, oo).is_none());
        assert!(
            HtpLinear::new(&codes, &[n, k], WeightLayout::NK, &enc, si, oi, 1e-12, oo).is_none()
        );
        // The same weight in the conv (HWIO) layout gives the same op.
        let enc_kn = match &enc {
            Encoding::Blockwise {
                block_scales,
                channel_scales,
                ..
            } => Encoding::Blockwise {
                axis: 3,
                block_size: 16,
                block_scale_bits: 4,
                block_scales: block_scales.clone(),
                channel_scales: channel_scales.clone(),
            },
            _ => unreachable!(),
        };
        let kn = HtpLinear::new(
            &codes,
            &[1, 1, k, n],
            WeightLayout::KN,
            &enc_kn,
            si,
            oi,
            so,
            oo,
        )
        .expect("domain");
        let mut out2 = vec![0u8; out.len()];
        kn.run(&x, &mut out2);
        assert_eq!(out, out2);
    }

    /// Codes measured in QNN's HTP emulator (`examples/conv_probe.rs` of
    /// `mllm-backend-qnn`, `SEED=5 DUMP=`, `CSLIST=6.1521283e-4,6.8417494e-4` and
    /// `CSLIST=6.1521283e-4`): channel 0 (code -3, block scale 7) gives different codes
    /// for the same input depending on the other channels' scales, as the multiplier is
    /// prepared relative to the largest channel scale.
    #[test]
    fn htp_linear_multiplier_depends_on_the_largest_channel_scale() {
        let k = 16;
        let (si, oi, so, oo) = (1.106_071_9e-4f32, -31352, 1.813_847_8e-5f32, -34181);
        let (cs0, cs1) = (6.152_128_3e-4f32, 6.841_749_4e-4f32);
        // (input code, emulator code with the second channel, emulator code alone)
        let cases: [(u16, u16, u16); 7] = [
            (0, 36651, 36651),
            (12105, 35697, 35697),
            (12106, 35696, 35697),
            (12117, 35696, 35697),
            (12130, 35695, 35695),
            (55809, 32254, 32253),
            (55820, 32254, 32253),
        ];
        let mut x = Vec::new();
        for (q, _, _) in cases {
            let mut row = vec![0u16; k];
            row[0] = q;
            x.extend(row.iter().flat_map(|v| v.to_le_bytes()));
        }
        let run = |n: usize| {
            let mut codes = vec![0u8; n * k];
            codes[0] = (-3i8) as u8;
            if n > 1 {
                codes[k] = (-7i8) as u8;
            }
            let enc = Encoding::Blockwise {
                axis: 0,
                block_size: 16,
                block_scale_bits: 4,
                block_scales: [7u8, 14][..n].to_vec().into(),
                channel_scales: [cs0, cs1][..n].to_vec().into(),
            };
            let lin = HtpLinear::new(&codes, &[n, k], WeightLayout::NK, &enc, si, oi, so, oo)
                .expect("in the measured domain");
            let mut out = vec![0u8; cases.len() * n * 2];
            lin.run(&x, &mut out);
            (0..cases.len())
                .map(|i| u16::from_le_bytes([out[2 * i * n], out[2 * i * n + 1]]))
                .collect::<Vec<_>>()
        };
        let (two, one) = (run(2), run(1));
        for (i, (q, w2, w1)) in cases.iter().enumerate() {
            assert_eq!(two[i], *w2, "input code {q}, two channels");
            assert_eq!(one[i], *w1, "input code {q}, one channel");
        }
    }

    /// Codes measured in QNN's HTP emulator (`examples/ew_probe.rs` of
    /// `mllm-backend-qnn`, `MODE=add DUMP=`, the tiny model's `rope_k.add` scales).
    #[test]
    fn htp_add_matches_emulator_codes() {
        let (a, b, o) = (
            (1.015_162_3e-4f32, -32427),
            (8.930_691_5e-5f32, -33251),
            (1.021_815_5e-4f32, -32641),
        );
        let add = HtpAdd::new(a, b, o, false).expect("in the measured domain");
        // (a code, b code, emulator code)
        let cases: [(u16, u16, u16); 8] = [
            (10, 57799, 21889),
            (15, 57799, 21894),
            (40000, 57799, 61620),
            (30000, 28100, 25728),
            (4207, 28100, 102),
            (4209, 28100, 104),
            (50001, 57799, 65535),
            (0, 28100, 0),
        ];
        let mut nearest_off = 0;
        for (qa, qb, want) in cases {
            assert_eq!(add.apply(qa, qb), want, "{qa} + {qb}");
            let x = (qa as f32 + a.1 as f32) * a.0 + (qb as f32 + b.1 as f32) * b.0;
            let near = quantize_one(x, o.0, o.1, 0.0, 65535.0, Rounding::HalfAwayFromZero);
            nearest_off += (near as u16 != want) as usize;
        }
        assert!(nearest_off >= 4, "rounding to nearest should miss these");
        // a - b is a + (-b): the same multipliers.
        let sub = HtpAdd::new(a, b, o, true).expect("domain");
        assert!(sub.apply(40000, 40000) < add.apply(40000, 40000));
        assert!(HtpAdd::new(a, b, (1e-9, 0), false).is_none());
        // HtpMatMul's domain: the u8 operand must be symmetric (offset -128).
        assert!(HtpMatMul::new(1e-4, -30000, 0.02, -128, 4e-4, -30000).is_some());
        assert!(HtpMatMul::new(1e-4, -30000, 0.02, -100, 4e-4, -30000).is_none());
    }

    #[test]
    fn per_tensor_round_trip_and_clamp() {
        let enc = Encoding::PerTensor {
            scale: 0.5,
            offset: -10,
        };
        let x = [0.0f32, 1.25, -5.0, -6.0, 200.0, f32::NAN];
        let mut q = [0u8; 6];
        quantize(
            &x,
            &mut q,
            &enc,
            Storage::U8,
            &[6],
            Rounding::HalfAwayFromZero,
        );
        // q = round(x / 0.5) + 10, clamped to [0, 255]; NaN -> zero point 10.
        assert_eq!(q, [10, 13, 0, 0, 255, 10]);
        let mut back = [0f32; 6];
        dequantize(&q, &mut back, &enc, &[6]);
        assert_eq!(back[1], 1.5);
        assert_eq!(back[0], 0.0);
    }
}

/// Decodes a little-endian buffer of element type `elem` into `f64` values: the integer
/// codes for quantized types (not the real values), the numbers themselves otherwise.
/// Trailing bytes that do not fill an element are ignored. For comparing raw tensors
/// element by element (emulator vs reference, in output LSB).
pub fn element_values(elem: &mllm_ir::ElemType, bytes: &[u8]) -> Vec<f64> {
    use mllm_ir::ElemType as E;
    fn le<const N: usize, T>(bytes: &[u8], f: impl Fn([u8; N]) -> T) -> Vec<f64>
    where
        T: Into<f64>,
    {
        bytes
            .chunks_exact(N)
            .map(|c| {
                let mut a = [0u8; N];
                a.copy_from_slice(c);
                f(a).into()
            })
            .collect()
    }
    let storage = match elem {
        E::Quant(q) => q.storage,
        E::F32 => return le(bytes, f32::from_le_bytes),
        E::F16 => return le(bytes, |a| half::f16::from_le_bytes(a).to_f32()),
        E::BF16 => return le(bytes, |a| half::bf16::from_le_bytes(a).to_f32()),
        E::I8 => return le(bytes, |a: [u8; 1]| a[0] as i8),
        E::I16 => return le(bytes, i16::from_le_bytes),
        E::I32 => return le(bytes, i32::from_le_bytes),
        E::I64 => return le(bytes, |a: [u8; 8]| i64::from_le_bytes(a) as f64),
        E::U16 => return le(bytes, u16::from_le_bytes),
        E::Bool | E::U8 => return le(bytes, |a: [u8; 1]| a[0]),
    };
    match storage {
        Storage::U8 => le(bytes, |a: [u8; 1]| a[0]),
        Storage::I8 | Storage::I4 => le(bytes, |a: [u8; 1]| a[0] as i8),
        Storage::U16 => le(bytes, u16::from_le_bytes),
        Storage::I16 => le(bytes, i16::from_le_bytes),
        Storage::I32 => le(bytes, i32::from_le_bytes),
    }
}

#[cfg(test)]
mod element_values_tests {
    use super::*;
    use mllm_ir::types::{Expressed, QuantType};
    use mllm_ir::ElemType;

    #[test]
    fn decodes_codes_and_numbers() {
        let u16q = ElemType::Quant(QuantType {
            storage: Storage::U16,
            expressed: Expressed::F32,
            encoding: Encoding::PerTensor {
                scale: 0.5,
                offset: -3,
            },
        });
        let b: Vec<u8> = [1u16, 65535].iter().flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(element_values(&u16q, &b), vec![1.0, 65535.0]);
        let b: Vec<u8> = [-1.5f32, 2.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        assert_eq!(element_values(&ElemType::F32, &b), vec![-1.5, 2.0]);
        assert_eq!(element_values(&ElemType::I8, &[0xff, 7]), vec![-1.0, 7.0]);
        let b = (-5i32).to_le_bytes();
        assert_eq!(element_values(&ElemType::I32, &b[..3]), Vec::<f64>::new());
    }
}
