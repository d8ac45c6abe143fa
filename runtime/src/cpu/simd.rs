//! Vectorized row kernels of the CPU executor (`pulp`: runtime dispatch to AVX-512,
//! AVX2+FMA or scalar code): `exp`, SiLU / sigmoid, a softmax row, a row minimum, and the fused masked
//! softmax of an attention row (`softmax(where(mask, s * scale, min(s * scale) + fill))`).
//!
//! Every kernel is written once and used by both the fused and the unfused paths, so a
//! fused step and the op-by-op steps it replaces give bit-identical results.

use pulp::{Simd, WithSimd};

/// `log2(e)`.
const LOG2E: f32 = std::f32::consts::LOG2_E;
/// `ln(2)` split in two (Cody-Waite): the high part has few significant bits, so
/// `n * LN2_HI` is exact for the `n` that occur.
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
/// Below this `exp` underflows: the kernel returns 0.
const EXP_MIN: f32 = -87.336_54;
/// Above this `exp` would overflow f32 (clamped).
const EXP_MAX: f32 = 88.0;
/// `1.5 * 2^23`: adding it rounds an f32 of magnitude below `2^22` to an integer.
const ROUND_MAGIC: f32 = 12_582_912.0;

/// `exp(x)` lane-wise: range reduction `x = n ln2 + r`, `|r| <= ln2 / 2`, a degree-6
/// polynomial for `exp(r)` (relative error about 1e-7) and `2^n` built in the exponent
/// bits. Inputs below `EXP_MIN` give 0; NaN gives an unspecified finite value.
#[inline(always)]
fn exp_v<S: Simd>(s: S, x: S::f32s) -> S::f32s {
    let under = s.less_than_f32s(x, s.splat_f32s(EXP_MIN));
    let x = s.min_f32s(s.max_f32s(x, s.splat_f32s(EXP_MIN)), s.splat_f32s(EXP_MAX));
    let magic = s.splat_f32s(ROUND_MAGIC);
    let t = s.mul_add_f32s(x, s.splat_f32s(LOG2E), magic);
    let n = s.sub_f32s(t, magic);
    let r = s.mul_add_f32s(n, s.splat_f32s(-LN2_HI), x);
    let r = s.mul_add_f32s(n, s.splat_f32s(-LN2_LO), r);
    let mut p = s.splat_f32s(1.987_569_1e-4);
    for c in [
        1.398_199_9e-3,
        8.333_452e-3,
        4.166_579_6e-2,
        1.666_666_5e-1,
        0.5,
    ] {
        p = s.mul_add_f32s(p, r, s.splat_f32s(c));
    }
    let r2 = s.mul_f32s(r, r);
    let y = s.add_f32s(s.mul_add_f32s(p, r2, r), s.splat_f32s(1.0));
    // `t`'s bits are `0x4B40_0000 + n`; `(n + 127) << 23` is `2^n`.
    let bits = s.sub_u32s(s.transmute_u32s_f32s(t), s.splat_u32s(0x4B40_0000 - 127));
    let pow2 = s.transmute_f32s_u32s(s.wrapping_dyn_shl_u32s(bits, s.splat_u32s(23)));
    s.select_f32s(under, s.splat_f32s(0.0), s.mul_f32s(y, pow2))
}

/// In-place softmax of one row.
#[inline(always)]
fn softmax_in_place<S: Simd>(s: S, row: &mut [f32]) {
    if row.is_empty() {
        return;
    }
    let (head, tail) = S::as_mut_simd_f32s(row);
    let mut mv = s.splat_f32s(f32::NEG_INFINITY);
    for v in head.iter() {
        mv = s.max_f32s(mv, *v);
    }
    let m = tail
        .iter()
        .fold(s.reduce_max_f32s(mv), |m, y| if *y > m { *y } else { m });
    let mv = s.splat_f32s(m);
    let mut sum = s.splat_f32s(0.0);
    for v in head.iter_mut() {
        *v = exp_v(s, s.sub_f32s(*v, mv));
        sum = s.add_f32s(sum, *v);
    }
    let mut total = s.reduce_sum_f32s(sum);
    if !tail.is_empty() {
        let e = exp_v(s, s.sub_f32s(s.partial_load_f32s(tail), mv));
        s.partial_store_f32s(tail, e);
        total += tail.iter().sum::<f32>();
    }
    let inv = s.splat_f32s(1.0 / total);
    for v in head.iter_mut() {
        *v = s.mul_f32s(*v, inv);
    }
    let inv = 1.0 / total;
    tail.iter_mut().for_each(|v| *v *= inv);
}

/// Minimum of a row, ignoring NaN (like folding with `f32::min` from `+inf`).
#[inline(always)]
fn min_of<S: Simd>(s: S, row: &[f32]) -> f32 {
    let (head, tail) = S::as_simd_f32s(row);
    let mut mv = s.splat_f32s(f32::INFINITY);
    for v in head {
        mv = s.select_f32s(s.less_than_f32s(*v, mv), *v, mv);
    }
    tail.iter()
        .fold(s.reduce_min_f32s(mv), |m, y| if *y < m { *y } else { m })
}

struct Softmax<'a>(&'a mut [f32]);

impl WithSimd for Softmax<'_> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        softmax_in_place(s, self.0)
    }
}

struct Min<'a>(&'a [f32]);

impl WithSimd for Min<'_> {
    type Output = f32;
    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) -> f32 {
        min_of(s, self.0)
    }
}

/// The attention row of [`masked_softmax_row`].
struct Masked<'a> {
    scores: &'a [f32],
    mask: &'a [u8],
    scale: f32,
    fill: f32,
    out: &'a mut [f32],
}

impl WithSimd for Masked<'_> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        let Masked {
            scores,
            mask,
            scale,
            fill,
            out,
        } = self;
        let n = out.len();
        let (oh, ot) = S::as_mut_simd_f32s(out);
        let (sh, st) = S::as_simd_f32s(&scores[..n]);
        let sc = s.splat_f32s(scale);
        for (o, x) in oh.iter_mut().zip(sh) {
            *o = s.mul_f32s(*x, sc);
        }
        for (o, x) in ot.iter_mut().zip(st) {
            *o = *x * scale;
        }
        let lo = min_of(s, out) + fill;
        for (o, m) in out.iter_mut().zip(mask) {
            if *m == 0 {
                *o = lo;
            }
        }
        softmax_in_place(s, out);
    }
}

/// In-place softmax of `row` (max-subtracted, vectorized `exp`).
pub fn softmax_row(row: &mut [f32]) {
    pulp::Arch::new().dispatch(Softmax(row))
}

/// Minimum of `row` ignoring NaN (`+inf` when empty or all NaN).
pub fn row_min(row: &[f32]) -> f32 {
    pulp::Arch::new().dispatch(Min(row))
}

/// One attention row: `x = scores * scale`, `y = mask ? x : min(x) + fill`,
/// `out = softmax(y)`. Bit-identical to running the `nn.mul`, `nn.reduce_min`,
/// `nn.add`, `nn.where` and `nn.softmax` kernels one after the other.
pub fn masked_softmax_row(scores: &[f32], mask: &[u8], scale: f32, fill: f32, out: &mut [f32]) {
    pulp::Arch::new().dispatch(Masked {
        scores,
        mask,
        scale,
        fill,
        out,
    })
}

/// `exp` of every element of `x` into `out` (the vectorized kernel softmax uses).
pub fn exp_into(x: &[f32], out: &mut [f32]) {
    struct Exp<'a>(&'a [f32], &'a mut [f32]);
    impl WithSimd for Exp<'_> {
        type Output = ();
        #[inline(always)]
        fn with_simd<S: Simd>(self, s: S) {
            let n = self.0.len().min(self.1.len());
            let (oh, ot) = S::as_mut_simd_f32s(&mut self.1[..n]);
            let (xh, xt) = S::as_simd_f32s(&self.0[..n]);
            for (o, x) in oh.iter_mut().zip(xh) {
                *o = exp_v(s, *x);
            }
            if !ot.is_empty() {
                s.partial_store_f32s(ot, exp_v(s, s.partial_load_f32s(xt)));
            }
        }
    }
    pulp::Arch::new().dispatch(Exp(x, out))
}

/// `x * sigmoid(x)` (SiLU) of every element of `x` into `out`, or `sigmoid(x)` when
/// `!times_x`, with the vectorized `exp`.
pub fn sigmoid_into(x: &[f32], out: &mut [f32], times_x: bool) {
    struct Sig<'a>(&'a [f32], &'a mut [f32], bool);
    impl WithSimd for Sig<'_> {
        type Output = ();
        #[inline(always)]
        fn with_simd<S: Simd>(self, s: S) {
            let Sig(x, out, times_x) = self;
            let n = x.len().min(out.len());
            // (A plain fn, not a closure: closures do not inherit the dispatched target
            // features and would run every vector op out of line.)
            #[inline(always)]
            fn f<S: Simd>(s: S, v: S::f32s, times_x: bool) -> S::f32s {
                let one = s.splat_f32s(1.0);
                let e = exp_v(s, s.sub_f32s(s.splat_f32s(0.0), v));
                let num = if times_x { v } else { one };
                s.div_f32s(num, s.add_f32s(one, e))
            }
            let (oh, ot) = S::as_mut_simd_f32s(&mut out[..n]);
            let (xh, xt) = S::as_simd_f32s(&x[..n]);
            for (o, v) in oh.iter_mut().zip(xh) {
                *o = f(s, *v, times_x);
            }
            if !ot.is_empty() {
                s.partial_store_f32s(ot, f(s, s.partial_load_f32s(xt), times_x));
            }
        }
    }
    pulp::Arch::new().dispatch(Sig(x, out, times_x))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_accurate_over_the_softmax_range() {
        let x: Vec<f32> = (0..20_000).map(|i| -100.0 + i as f32 * 0.005_3).collect();
        let mut y = vec![0f32; x.len()];
        exp_into(&x, &mut y);
        for (a, b) in x.iter().zip(&y) {
            let want = (*a as f64).exp();
            if *a < EXP_MIN {
                assert_eq!(*b, 0.0, "exp({a})");
            } else {
                let rel = ((*b as f64 - want) / want).abs();
                assert!(rel < 3e-7, "exp({a}) = {b}, want {want} (rel {rel:e})");
            }
        }
    }

    #[test]
    fn silu_and_sigmoid_match_f64() {
        let x: Vec<f32> = (0..3001).map(|i| -60.0 + i as f32 * 0.04).collect();
        let (mut y, mut z) = (vec![0f32; x.len()], vec![0f32; x.len()]);
        sigmoid_into(&x, &mut y, true);
        sigmoid_into(&x, &mut z, false);
        for ((a, b), c) in x.iter().zip(&y).zip(&z) {
            let sg = 1.0 / (1.0 + (-(*a as f64)).exp());
            assert!(
                (*c as f64 - sg).abs() < 1e-6 * sg.max(1e-30) + 1e-30,
                "sigmoid({a})"
            );
            let want = *a as f64 * sg;
            assert!(
                (*b as f64 - want).abs() <= 1e-6 * want.abs() + 1e-30,
                "silu({a})"
            );
        }
    }

    #[test]
    fn softmax_row_sums_to_one_and_matches_f64() {
        for n in [1usize, 3, 16, 17, 100, 1024] {
            let x: Vec<f32> = (0..n)
                .map(|i| ((i * 37 % 23) as f32 - 11.0) * 0.7)
                .collect();
            let mut y = x.clone();
            softmax_row(&mut y);
            let m = x
                .iter()
                .cloned()
                .fold(f64::NEG_INFINITY, |m, v| m.max(v as f64));
            let z: f64 = x.iter().map(|v| (*v as f64 - m).exp()).sum();
            for (a, b) in x.iter().zip(&y) {
                let want = (*a as f64 - m).exp() / z;
                assert!(
                    (*b as f64 - want).abs() < 1e-6 * (1.0 + want),
                    "n {n}: {b} vs {want}"
                );
            }
        }
    }

    #[test]
    fn row_min_ignores_nan_like_f32_min() {
        let mut x: Vec<f32> = (0..77).map(|i| (i as f32 - 30.0).abs()).collect();
        x[5] = f32::NAN;
        x[70] = f32::NAN;
        let want = x.iter().fold(f32::INFINITY, |m, y| m.min(*y));
        assert_eq!(row_min(&x), want);
        assert_eq!(row_min(&[]), f32::INFINITY);
    }

    #[test]
    fn masked_row_equals_the_unfused_ops() {
        let n = 75;
        let s: Vec<f32> = (0..n)
            .map(|i| ((i * 13 % 29) as f32 - 14.0) * 0.3)
            .collect();
        let mask: Vec<u8> = (0..n).map(|i| (i % 4 != 1) as u8).collect();
        let mut fused = vec![0f32; n];
        masked_softmax_row(&s, &mask, 0.125, -20.0, &mut fused);
        let x: Vec<f32> = s.iter().map(|v| v * 0.125).collect();
        let lo = x.iter().fold(f32::INFINITY, |m, y| m.min(*y)) + -20.0;
        let mut y: Vec<f32> = x
            .iter()
            .zip(&mask)
            .map(|(v, m)| if *m != 0 { *v } else { lo })
            .collect();
        softmax_row(&mut y);
        assert_eq!(fused, y);
    }
}
