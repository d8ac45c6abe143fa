//! HTP's 16-bit `RmsNorm` (per-tensor u16 input and output, a per-tensor u16 gamma of
//! offset 0, QNN's zero beta), modelled on what QNN's HTP emulator computes (QNN 2.51,
//! v75), for the fixed-point mode under [`crate::cpu::Rounding::Htp`]. Not bit-exact:
//! see "Residual" below.
//!
//! # Formula
//!
//! For a row of input codes `q_i` (input encoding `(s_x, o_x)`), gamma codes `g_i`
//! (scale `s_g`, offset 0) and output encoding `(s_o, o_o)`:
//!
//! 1. `x_i = q_i + o_x` (exact integers: the normalization runs on the offset-corrected
//!    codes, the input scale enters only through epsilon),
//! 2. `m = sum(x_i^2) / D + eps / s_x^2`, `r = (1 - 2^-24) / sqrt(m)`,
//! 3. `G_i = f32(f32(g_i s_g) / s_o)` (gamma dequantized in f32 and divided by the
//!    output scale in f32),
//! 4. `F_i = floor(|x_i| r G_i)` and the output code is `F_i - o_o` for `x_i >= 0`,
//!    `-F_i - 1 - o_o` for `x_i < 0` (a one's complement: outputs of `x` and `-x` sum to
//!    `-2 o_o - 1`; it differs from `floor(x_i r G_i)` only at exact negative
//!    integers), clamped to `[0, 65535]`.
//!
//! # How it was found
//!
//! `examples/rmsnorm_probe.rs` of `mllm-backend-qnn` (one-op graphs, rows and gamma codes
//! from files, driven from Python), only black-box measurement of the emulator's
//! outputs:
//! - Rows of equal magnitude `|x| = 4096` codes with input scale `2^-12` (every real
//!   `+-1`), epsilon 0, sweeping all 65,536 gamma codes: outputs of `x` and `-x` always
//!   sum to 65,535 with `o_o = -32768` (the one's complement; gamma code 0 gives
//!   32,768 / 32,767). With power-of-two gamma and output scales, exactly integral
//!   results come out one lower: the normalization factor is below 1. For four
//!   gamma / output scale pairs (each a power of two or not) every code is
//!   `floor(G (1 - 3 2^-24))` with `G` as in step 3: 0 mismatches of 65,536 each,
//!   where other orders (`f32(g s_g / s_o)`, `g f32(s_g / s_o)`, a product with
//!   `1 / s_o`, a rounded final product) miss 3-80.
//! - The input scale plays no part at epsilon 0: three input scales (1.8e-5, 2^-16,
//!   3.3e-5) give identical codes for all 65,536 gamma codes on three rows; the output
//!   offset neither (it is added as an integer).
//! - Rows of random codes, gamma fixed: per row the codes are `floor(|x_i| K)` for one
//!   `K` within a few 2^-24 of `G / sqrt(m)`: the sum of squares and the square root
//!   carry no error that this resolution sees.
//!
//! # Residual
//!
//! Two parts are not modelled exactly:
//! - The normalization factor: on rows of one repeated code (epsilon 0, all 65,536
//!   gamma codes, `examples/rmsnorm_probe.rs`) the best constant `c` in
//!   `floor(G c)` is `1 - k 2^-24` with `k` between -3.0 and +3.7 depending on the
//!   code (64 codes measured; exactly 3 for every power of two, e.g. 2.4 and 1.1 for the
//!   neighbours 23,038 and 23,039): an approximate reciprocal square root whose error is
//!   no smooth function of the mantissa of `m` (neither is it the f32 rounding of
//!   `1 / sqrt(m)`). [`HtpRmsNorm`] takes the mean, `k = 1`.
//! - The final product: even with the best `c` per row, 0-9 of 65,536 codes per row
//!   stay off by one, all on near-integral products. For exactly integral `G` the
//!   emulator's result is `G` or `G - 1` in a pattern that depends on the bits of `G`
//!   (a function of its mantissa alone, different per input code; e.g. for
//!   `x = 5666`, `G = 959, 1918, 3836, 4293` give `G` and `G = 1667, 2169, 2375,
//!   3585` give `G - 1`): no product of `x`, `r` and `G` in f32 with round-to-nearest
//!   or truncation in any order (`r` scanned over +-40 ulps, the input value over +-12
//!   codes), no fixed `p`-bit rounding (`p = 18..25`) of `G c` and no linear
//!   `floor(G c + b)` reproduces it.
//!
//! Later probes (rows of up to 65,536 codes with one gamma code per block of 2,048,
//! `ROWS` / `GAMMA` files of `examples/rmsnorm_probe.rs`, epsilon 0) narrow the
//! residual to how the emulator forms one multiplier per (row, gamma code):
//! - Every block is `floor(|x_i| K)` for a single `K`, and `K` is a float32 value: all
//!   456 bracketed `K` (200 from rows of 2,048, 256 from rows of 65,536) contain one,
//!   where about 309 would by chance, among them all 90 of the 65,536-wide rows that
//!   are narrower than half an ulp. `K` does not depend on the block's position (96
//!   pairs of blocks with the same gamma code in one row). So the product with `|x|`
//!   is exact and all rounding is in `K = (1 + d 2^-24) G / sqrt(m)`, `d` in -4..+3.
//! - `K` is no single rounding (nearest or truncation) of `rho_row H_g` for any reals
//!   `rho`, `H` (all 28 row pairs of the 65,536-wide probe have no common ratio over
//!   their 32 gamma codes; of 435 pairs of repeated-code rows, 113 are ordered one way
//!   for some gamma codes and the other way for others), so at least two roundings
//!   see both the row and the gamma code. Ruled out (3 to 8 rows x 32 gamma codes):
//!   `K = round(round(B_g y) q)` for every f32 mantissa `y` and every real `q`,
//!   `B_g` one of `G`, `f32(g s_g)`, `g`, `f32(f32(g s_g) f32(1 / s_o))`,
//!   `f32(g f32(s_g / s_o))` and the exact `g s_g / s_o`, the inner rounding f32
//!   nearest, down or up (and 20 to 26 bits, nearest or truncation, for the first
//!   three); `f32(f32(f32(y g) s_g) / s_o)` and with `f32(1 / s_o)`; a Newton step
//!   after `P = f32(G y)` (`1.5 P - P t`, its fma, `P + P e`, its fma).
//! - The accumulation order of the sum of squares does not explain it: repeated-code
//!   rows of 64 and 1,024 codes give identical outputs (30 codes x 4,096 gamma
//!   codes), and on random rows (64,000 to 204,800 codes per set) f32 accumulation
//!   orders (sequential, fma, reversed, pairwise, 2 to 64 lanes with tree / adjacent /
//!   sequential reduction), times `f32(1 / D)` or divided by `D`, `f32(1 / sqrt)` or
//!   `1 / f32(sqrt)` with +-6 ulps and five f32 product orders score at best 32 / 36 /
//!   14 / 29 / 51 codes off, against 36 / 44 / 17 / 31 / 49 for this model, with a
//!   different winner per set. A constant factor `1 - b 2^-24` is best at `b = 1` or
//!   within 4 codes of the best (`b = 0` with epsilon 1e-6), and rounding `K` to f32
//!   changes the counts by -7..+2 per set but breaks the power-of-two rows, so neither
//!   is adopted.
//!
//! Measured mismatches (`tests/rms_norm_htp.rs` of `mllm-backend-qnn`, all by one code,
//! none by more):
//! - the test model's encodings (q_norm, k_norm: rows of 16; input_layernorm: rows of
//!   64), gaussian rows with standard deviations of 300 to 15,000 codes, random gamma
//!   in `[20000, 65535]`: 9 of 24,576, 9 of 24,576 and 45 of 98,304 codes (0.04%);
//!   on a similar set (147,456 codes) the f32 `nn.rms_norm` kernel floored misses 78,
//!   this model 58;
//! - repeated codes `+-x` over all gamma codes (131,072 codes each): `x = 4096` with
//!   power-of-two scales 0, with the model's gamma / output scales 86, `x = 5666` 10,
//!   `x = 21453` 38.

/// HTP's `RmsNorm` of per-tensor u16 codes with a per-tensor u16 gamma (offset 0) into
/// per-tensor u16 codes (see the module documentation for the formula and its
/// accuracy).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HtpRmsNorm {
    ox: i64,
    oo: i64,
    /// `eps / s_x^2`: epsilon in squared input codes.
    eps_codes: f64,
    /// `f32` gamma scale.
    sg: f32,
    /// `f32` output scale.
    so: f32,
}

impl HtpRmsNorm {
    /// The op for input `(scale, offset)` `input`, gamma scale `gamma_scale` (offset 0),
    /// result `out` and epsilon `eps`, or `None` for non-positive or non-finite scales,
    /// a negative or non-finite epsilon.
    pub fn new(input: (f32, i32), gamma_scale: f32, out: (f32, i32), eps: f32) -> Option<Self> {
        let ok = |s: f32| s.is_finite() && s > 0.0;
        if !ok(input.0) || !ok(gamma_scale) || !ok(out.0) || !eps.is_finite() || eps < 0.0 {
            return None;
        }
        let sx = input.0 as f64;
        Some(HtpRmsNorm {
            ox: input.1 as i64,
            oo: out.1 as i64,
            eps_codes: eps as f64 / (sx * sx),
            sg: gamma_scale,
            so: out.0,
        })
    }

    /// The prepared gamma `G = f32(f32(g s_g) / s_o)` of gamma code `g`.
    #[inline(always)]
    pub fn gamma(&self, g: u16) -> f64 {
        ((g as f32 * self.sg) / self.so) as f64
    }

    /// Normalization of one row of `d` little-endian u16 codes in `x` into `out`, entry
    /// `t` at code index `t * stride` of both (a strided row of a tensor), with the `d`
    /// gamma codes `gamma` (little-endian, contiguous). No allocation.
    pub fn row_bytes(&self, x: &[u8], gamma: &[u8], out: &mut [u8], d: usize, stride: usize) {
        let at = |t: usize| 2 * t * stride;
        let xi = |t: usize| u16::from_le_bytes([x[at(t)], x[at(t) + 1]]) as i64 + self.ox;
        let ss: u64 = (0..d).map(|t| xi(t).unsigned_abs().pow(2)).sum();
        let m = ss as f64 / d.max(1) as f64 + self.eps_codes;
        let r = if m > 0.0 {
            (1.0 - 2f64.powi(-24)) / m.sqrt()
        } else {
            0.0
        };
        for t in 0..d {
            let x = xi(t);
            let g = self.gamma(u16::from_le_bytes([gamma[2 * t], gamma[2 * t + 1]]));
            let f = (x.unsigned_abs() as f64 * r * g).floor().min(1e6) as i64;
            let code = if x >= 0 { f } else { -f - 1 };
            let o = (code - self.oo).clamp(0, 65535) as u16;
            out[at(t)..at(t) + 2].copy_from_slice(&o.to_le_bytes());
        }
    }

    /// Normalization of one contiguous row of input codes `x` with gamma codes `gamma`
    /// into output codes `out` (all the same length): the arithmetic of
    /// [`HtpRmsNorm::row_bytes`] (which the executor runs).
    pub fn row(&self, x: &[u16], gamma: &[u16], out: &mut [u16]) {
        let d = x.len().min(out.len()).min(gamma.len());
        let xb: Vec<u8> = x[..d].iter().flat_map(|c| c.to_le_bytes()).collect();
        let gb: Vec<u8> = gamma[..d].iter().flat_map(|c| c.to_le_bytes()).collect();
        let mut ob = vec![0u8; 2 * d];
        self.row_bytes(&xb, &gb, &mut ob, d, 1);
        for (o, c) in out.iter_mut().zip(ob.chunks_exact(2)) {
            *o = u16::from_le_bytes([c[0], c[1]]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain() {
        assert!(HtpRmsNorm::new((0.0, 0), 1e-5, (1e-4, 0), 1e-6).is_none());
        assert!(HtpRmsNorm::new((1e-5, 0), -1e-5, (1e-4, 0), 1e-6).is_none());
        assert!(HtpRmsNorm::new((1e-5, 0), 1e-5, (f32::NAN, 0), 1e-6).is_none());
        assert!(HtpRmsNorm::new((1e-5, 0), 1e-5, (1e-4, 0), -1.0).is_none());
        assert!(HtpRmsNorm::new((1e-5, -30000), 1e-5, (1e-4, -32768), 0.0).is_some());
    }

    /// Rows of `+-1` (4096 codes at scale 2^-12), epsilon 0, power-of-two gamma and
    /// output scales: exact results `g / 16` come out one lower, the rest are floored,
    /// and `x` and `-x` give codes summing to 65,535 (gamma 0: 32,768 and 32,767).
    #[test]
    fn unit_rows() {
        let h = HtpRmsNorm::new(
            (1.0 / 4096.0, -32768),
            1.0 / 65536.0,
            (1.0 / 4096.0, -32768),
            0.0,
        )
        .expect("domain");
        let gamma: Vec<u16> = (0..4096u32).map(|i| (i * 16 + i % 7) as u16).collect();
        let pos = vec![32768u16 + 4096; 4096];
        let neg = vec![32768u16 - 4096; 4096];
        let (mut op, mut on) = (vec![0u16; 4096], vec![0u16; 4096]);
        h.row(&pos, &gamma, &mut op);
        h.row(&neg, &gamma, &mut on);
        for (i, g) in gamma.iter().enumerate() {
            let v = *g as f64 / 16.0;
            let want = if v.fract() == 0.0 && v > 0.0 {
                v - 1.0
            } else {
                v.floor()
            };
            assert_eq!(op[i] as f64 - 32768.0, want, "g {g}");
            assert_eq!(op[i] as u32 + on[i] as u32, 65535, "g {g}");
        }
    }

    /// The strided byte form computes what the row form does; results are within one
    /// code of the exact normalization floored.
    #[test]
    fn strided_and_close_to_exact() {
        let (sx, ox, sg, so, oo) = (1.8e-5f32, -34181, 1.7e-5f32, 1.03e-4f32, -32768);
        let h = HtpRmsNorm::new((sx, ox), sg, (so, oo), 1e-6).expect("domain");
        let mut state = 99u64;
        let mut next = move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as u16
        };
        let d = 64;
        let x: Vec<u16> = (0..3 * d).map(|_| next()).collect();
        let gamma: Vec<u16> = (0..d).map(|_| 30000 + next() % 35000).collect();
        let xb: Vec<u8> = x.iter().flat_map(|c| c.to_le_bytes()).collect();
        let gb: Vec<u8> = gamma.iter().flat_map(|c| c.to_le_bytes()).collect();
        let mut ob = vec![0u8; xb.len()];
        for j in 0..3 {
            h.row_bytes(&xb[2 * j..], &gb, &mut ob[2 * j..], d, 3);
            let col: Vec<u16> = (0..d).map(|t| x[t * 3 + j]).collect();
            let mut o = vec![0u16; d];
            h.row(&col, &gamma, &mut o);
            let xr: Vec<f64> = col
                .iter()
                .map(|&q| (q as f64 + ox as f64) * sx as f64)
                .collect();
            let ms = xr.iter().map(|v| v * v).sum::<f64>() / d as f64;
            for (t, c) in o.iter().enumerate() {
                let i = 2 * (t * 3 + j);
                assert_eq!(u16::from_le_bytes([ob[i], ob[i + 1]]), *c);
                let y = xr[t] / (ms + 1e-6).sqrt() * gamma[t] as f64 * sg as f64;
                let exact = (y / so as f64).floor() - oo as f64;
                assert!(
                    (*c as f64 - exact.clamp(0.0, 65535.0)).abs() <= 1.0,
                    "t {t}"
                );
            }
        }
    }
}
