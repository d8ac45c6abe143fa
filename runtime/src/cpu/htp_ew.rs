//! HTP's element-wise 16-bit `Multiply` and `Sigmoid`, modelled on the integer arithmetic
//! QNN's HTP emulator performs (QNN 2.51, v75), for the fixed-point mode under
//! [`crate::cpu::Rounding::Htp`].
//!
//! # Multiply (u16 x u16 -> u16, per-tensor): [`HtpMul`]
//!
//! With `a' = q_a + o_a`, `b' = q_b + o_b` and the f32 scale ratio
//! `R = f32(f32(s_a * s_b) / s_out)`, the HTP uses one multiplier `m = round(R * 2^34)`
//! (ties to even)
//! on the exact product `P = a' b'`, and a rounding constant that carries a wrapped
//! 32-bit term of the input offsets: with `d_a = o_a + 32768`, `d_b = o_b + 32768` (the
//! offsets relative to the int16 view of the codes) and
//! `E = d_a + d_b - 2 d_a d_b`,
//!
//! `out = clamp(floor((2m P + 2^34 + wrap32(2m E)) / 2^35) - o_out, 0, 65535)`
//!
//! where `wrap32` reduces modulo 2^32 into `[-2^31, 2^31)`. The extra term is at most
//! 1/16 of an output code: it is why 0.3-1.5% of codes came out one above (or below)
//! the exact product rounded to nearest.
//!
//! How it was found (`examples/ew_probe.rs` of `mllm-backend-qnn`, `MODE=mul`, every
//! `q_a` against 4-16 random `q_b`): for fixed encodings every code equals
//! `floor(P r + c)` for one slope `r` and one constant `c` (the feasible `(r, c)` region
//! of all 2^20 pairs is non-empty), `r` is `m / 2^34` exactly (not a 16-bit multiplier
//! on a smaller shift, nor the f64 ratio: a scale triple with `R * 2^34` near a tie
//! tells the f32 ratio apart, and one with `R * 2^34` on a tie the rounding to even),
//! `c` does not depend on the output offset, and `c - 1/2`
//! swept over input offsets is `(d_a + d_b - 2 d_a d_b) m / 2^34` reduced modulo 1/8
//! (a 32-bit wrap of that term at scale 2^35).
//!
//! Measured domain: 0 mismatches of 262,144-1,048,576 pairs for each of 16 encoding
//! triples (the tiny model's rope, `act.mul` and `mlp.mul` ops, offsets from -40000 to 0,
//! `R` from 1e-7 to 3e-2). [`HtpMul::new`] accepts `1e-7 <= R < 2^-5` and input offsets
//! in `[-65535, 0]`.
//!
//! A product `x * sigmoid(x)` of a tensor and its own sigmoid (the MLP's SiLU) is fused
//! by the HTP: its codes are [`HtpMul`] of `x` and the lone sigmoid's codes with a
//! different rounding constant ([`HtpMul::fused_with_sigmoid`]): 1/16 of an output code
//! more, and the offset term's linear part taken with each `d` rounded to 8 significant
//! bits (ties to even, as a bfloat16 holds it; `r8(1316) = 1312`):
//! `2^34 + 2^31 + wrap32(2m (r8(d_a) + r8(d_b) - 2 d_a d_b))`.
//! How it was found (`examples/silu_probe.rs`, `CASES` mode): with the sigmoid exact,
//! the slope of every fused encoding is `2m` and its feasible constant is the plain one
//! plus `2^31` plus `2m δ`, `δ` a small integer (0 for `d_a` with 8 significant bits);
//! sweeping `d_a` in steps of 10 and 100 gave `δ ≡ -d_a` modulo 8 for `|d_a|` in
//! `[1024, 2048)`, 16 in `[2048, 4096)` and 32 above, ties going to even multiples:
//! `δ = r8(d_a) - d_a` (`d_a = -337`: `δ = 1`). Measured domain:
//! 0 mismatches of 65,536 codes for each of 49 encodings (input offsets -65535 to 0,
//! `d_a` from -32767 to 32768, input scales 7e-6 to 1.3e-4, both operand orders for
//! three; the constant with 1/16 alone missed 0-82) and the 80 of the `d_a` sweeps.
//!
//! # Sigmoid (u16 -> u16, output scale 2^-16, offset 0): [`HtpSigmoid`]
//!
//! The input is seen on a fixed real grid of step 1/6144 (independent of the input
//! scale): with `n = q + o_in` and the 15-bit multiplier `M = round(s_in 6144 2^sh)`
//! (`sh = 15`; for input scales above 1/6144, where that `M` would reach 2^15, the
//! largest `sh` that keeps `M < 2^15`), the grid index is `k = floor(|n| M / 2^sh)` (the
//! magnitude: the result is symmetric). A 15-bit value `F(k)` (`F(0) = 2^14`) gives the
//! output code `2 F(k)` for `n >= 0` and `2 (32767 - F(k))` for `n < 0` (a one's
//! complement: `y(-n) = 65534 - y(n)` exactly, hence all codes even). `F` rises from
//! 2^14 by steps of 0, 1 or 2 to 32767 at `k = 62485` and stays there.
//!
//! `F(k)` is a measured table, not a formula: it is within -1.25..+0.93 of
//! `32768 sigmoid(k / 6144)` but no rounding of that, no segment-wise polynomial of
//! degree <= 3 and no Q14-Q17 `exp` followed by a division reproduces it (the best
//! formula, `floor(32768 sigmoid(k / 6144) + d)`, missed 3,001 of the first 20,133 `k`).
//! `htp_sigmoid_table.bin` holds `F(k) - F(k - 1)` for `k` in `1..=65535`, 2 bits each
//! (4 per byte, little-end first; 16 KiB), and `F(k) = 32767` for `k > 65535`.
//!
//! How the data was obtained: black-box measurement only, from the outputs of QNN's HTP
//! emulator (QNN 2.51 x86, v75, SoC 57) on one-op `Sigmoid` graphs
//! (`examples/sigmoid_table.rs` of `mllm-backend-qnn`; no constants, tables or kernel
//! structure come from any other source). At the input scale `f32(1/6144)` the grid
//! index is `k = |n|`, so every u16 code at offset 0 gives `F(k)` for `k` in `0..=65535`
//! directly, and at offset -65535 the same `F` through the negative branch (the two
//! agree on every `k`). The grid (`M`, `sh`) was found from step positions and then
//! confirmed by the held-out runs: every code at 28 other encodings (the test models'
//! sigmoid inputs; input scales from 1e-7 to 1, offsets from -65535 to 0) is predicted
//! exactly from the table (0 mismatches of 65,536 each). Regenerate with
//! `GEN=runtime/src/cpu/htp_sigmoid_table.bin cargo run -p mllm-backend-qnn --release
//! --example sigmoid_table` (it writes only when the measurements are consistent).
//!
//! Measured domain: [`HtpSigmoid::new`] accepts input scales in `[1e-7, 1]` and offsets
//! in `[-65535, 0]`, output scale 2^-16 offset 0 only.

/// `v` reduced modulo 2^32 into `[-2^31, 2^31)`.
#[inline(always)]
fn wrap32(v: i64) -> i64 {
    v as i32 as i64
}

/// `v` rounded to 8 significant bits (ties to even), as a bfloat16 holds it.
fn round8(v: i64) -> i64 {
    let b = (v as f32).to_bits();
    let r = b.wrapping_add(0x7fff + ((b >> 16) & 1)) & 0xffff_0000;
    f32::from_bits(r) as i64
}

/// HTP's element-wise `Multiply` of two per-tensor u16 tensors into a per-tensor u16
/// result (rope's products with cos / sin, the MLP's gate products), bit-exact with QNN's
/// HTP emulator in the measured domain (see the module documentation for the formula).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HtpMul {
    /// `2m`, the multiplier at scale 2^35.
    m2: i64,
    oa: i64,
    ob: i64,
    /// `2^34 + wrap32(2m E)`.
    k: i64,
    out_offset: i64,
}

impl HtpMul {
    /// The op for inputs `(scale, offset)` `a` and `b` and result `out`, or `None` outside
    /// the measured domain (non-positive or non-finite scales, a scale ratio
    /// `s_a s_b / s_out` outside `[1e-7, 2^-5)`, an input offset outside `[-65535, 0]`).
    pub fn new(a: (f32, i32), b: (f32, i32), out: (f32, i32)) -> Option<Self> {
        let ok = |s: f32| s.is_finite() && s > 0.0;
        let off = |o: i32| (-65535..=0).contains(&o);
        if !ok(a.0) || !ok(b.0) || !ok(out.0) || !off(a.1) || !off(b.1) {
            return None;
        }
        let r = (a.0 * b.0) / out.0;
        if !r.is_finite() || !(1e-7..2f32.powi(-5)).contains(&r) {
            return None;
        }
        let m = (r as f64 * 2f64.powi(34)).round_ties_even() as i64;
        let (da, db) = (a.1 as i64 + 32768, b.1 as i64 + 32768);
        let e = da + db - 2 * da * db;
        Some(HtpMul {
            m2: 2 * m,
            oa: a.1 as i64,
            ob: b.1 as i64,
            k: (1 << 34) + wrap32(e.wrapping_mul(2 * m)),
            out_offset: out.1 as i64,
        })
    }

    /// The op as the HTP computes `x * sigmoid(x)` (the product of a tensor and its own
    /// [`HtpSigmoid`], which the HTP fuses): the same arithmetic with the rounding
    /// constant `2^34 + 2^31 + wrap32(2m (r8(d_a) + r8(d_b) - 2 d_a d_b))` (1/16 of an
    /// output code more, offsets rounded to 8 significant bits in the linear term).
    pub fn fused_with_sigmoid(mut self) -> Self {
        let (da, db) = (self.oa + 32768, self.ob + 32768);
        let e = round8(da) + round8(db) - 2 * da * db;
        self.k = (1 << 34) + (1 << 31) + wrap32(e.wrapping_mul(self.m2));
        self
    }

    /// The result code of input codes `qa`, `qb`.
    #[inline(always)]
    pub fn apply(&self, qa: u16, qb: u16) -> u16 {
        let p = (qa as i64 + self.oa) * (qb as i64 + self.ob);
        (((p * self.m2 + self.k) >> 35) - self.out_offset).clamp(0, 65535) as u16
    }
}

/// `F(k) - F(k - 1)` of the sigmoid's value table for `k` in `1..=65535` (each 0, 1 or
/// 2), 2 bits each, 4 per byte little-end first, padded to 65,536 entries: measured in
/// QNN's HTP emulator (see the module documentation).
static SIGMOID_STEPS: &[u8; 16384] = include_bytes!("htp_sigmoid_table.bin");

/// The sigmoid's 15-bit values `F(k)` for `k` in `0..=65535`, decoded once.
fn sigmoid_values() -> &'static [u16] {
    static VALUES: std::sync::OnceLock<Box<[u16]>> = std::sync::OnceLock::new();
    VALUES.get_or_init(|| {
        let mut f = 1u16 << 14;
        std::iter::once(f)
            .chain((0..65535).map(|i| {
                f += ((SIGMOID_STEPS[i / 4] >> (2 * (i % 4))) & 3) as u16;
                f
            }))
            .collect()
    })
}

/// HTP's `Sigmoid` of per-tensor u16 codes into u16 codes of scale 2^-16, offset 0 (the
/// MLP's gate), bit-exact with QNN's HTP emulator in the measured domain: its input grid,
/// output symmetry and measured 15-bit value table (see the module documentation).
#[derive(Clone)]
pub struct HtpSigmoid {
    m: i64,
    shift: u32,
    table: Box<[u16]>,
}

impl std::fmt::Debug for HtpSigmoid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HtpSigmoid {{ m: {}, shift: {} }}", self.m, self.shift)
    }
}

impl HtpSigmoid {
    /// The only output encoding the model covers: scale 2^-16, offset 0.
    pub const OUTPUT: (f32, i32) = (1.0 / 65536.0, 0);

    /// The op for input `(scale, offset)` `input` and result `out`, or `None` outside the
    /// measured domain (`out` not [`HtpSigmoid::OUTPUT`], an input scale outside
    /// `[1e-7, 1]`, an input offset outside `[-65535, 0]`).
    pub fn new(input: (f32, i32), out: (f32, i32)) -> Option<Self> {
        let (s, o) = input;
        if out != Self::OUTPUT || !(1e-7..=1.0).contains(&s) {
            return None;
        }
        if !(-65535..=0).contains(&o) {
            return None;
        }
        let (m, shift) = Self::grid(s);
        let values = sigmoid_values();
        let table = (0..=65535u16)
            .map(|q| {
                let n = q as i64 + o as i64;
                let k = (n.abs() * m) >> shift;
                let f = usize::try_from(k)
                    .ok()
                    .and_then(|k| values.get(k))
                    .copied()
                    .unwrap_or(32767);
                if n >= 0 {
                    2 * f
                } else {
                    2 * (32767 - f)
                }
            })
            .collect();
        Some(HtpSigmoid { m, shift, table })
    }

    /// The grid multiplier `M` and shift `sh` of input scale `s`: `M = round(s 6144 2^sh)`
    /// on the largest `sh <= 15` with `M < 2^15`.
    fn grid(s: f32) -> (i64, u32) {
        let mut shift = 15;
        loop {
            let m = (s as f64 * 6144.0 * (1u64 << shift) as f64).round() as i64;
            if m < 1 << 15 || shift == 0 {
                return (m, shift);
            }
            shift -= 1;
        }
    }

    /// The result code of input code `q`.
    #[inline(always)]
    pub fn apply(&self, q: u16) -> u16 {
        self.table[q as usize]
    }

    /// Maps little-endian u16 codes `src` to little-endian u16 codes `dst` (element-wise,
    /// up to the shorter of the two).
    pub fn apply_bytes(&self, src: &[u8], dst: &mut [u8]) {
        for (d, s) in dst.chunks_exact_mut(2).zip(src.chunks_exact(2)) {
            d.copy_from_slice(&self.apply(u16::from_le_bytes([s[0], s[1]])).to_le_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The exact product code `(q_a + o_a) s_a (q_b + o_b) s_b / s_out - o_out`.
    fn exact(a: Q, b: Q, o: Q, qa: u16, qb: u16) -> f64 {
        let x = (qa as f64 + a.1 as f64) * a.0 as f64;
        let y = (qb as f64 + b.1 as f64) * b.0 as f64;
        x * y / o.0 as f64 - o.1 as f64
    }

    type Q = (f32, i32);

    const MUL_CASES: [(Q, Q, Q); 4] = [
        ((1.081e-4, -32768), (3.05e-5, -32768), (1.064e-4, -32244)),
        ((2.195e-5, -34084), (1.525_878_9e-5, 0), (1.068e-5, -22493)),
        ((1.068e-5, -22493), (2.09e-5, -32939), (5.45e-6, -38625)),
        ((5e-4, -31000), (1e-3, -1000), (1e-2, -32768)),
    ];

    #[test]
    fn mul_is_the_rounded_product_up_to_the_offset_term() {
        for (a, b, o) in MUL_CASES {
            let h = HtpMul::new(a, b, o).expect("in the domain");
            let (mut off, mut total) = (0, 0);
            for qa in (0..=65535u16).step_by(7) {
                for qb in (0..=65535u16).step_by(4099) {
                    let e = exact(a, b, o, qa, qb);
                    if !(0.0..=65535.0).contains(&e) {
                        continue;
                    }
                    let y = h.apply(qa, qb) as f64;
                    // The wrapped offset term moves the rounding point by less than
                    // 1/16 of a code; the multiplier (at least 2^19 for these ratios,
                    // from an f32 ratio) is off by at most 1e-6 relative.
                    let tol = 0.5 + 1.0 / 16.0 + (e + o.1 as f64).abs() * 1e-6 + 1e-9;
                    assert!((y - e).abs() < tol, "{qa} {qb}: {y} {e}");
                    off += (y != e.round()) as usize;
                    total += 1;
                }
            }
            // Codes within the offset term of a tie: measured 0.4-5%.
            assert!(
                off * 12 < total,
                "{off} of {total} differ from rounding to nearest"
            );
        }
    }

    #[test]
    fn mul_is_symmetric_and_monotonic() {
        for (a, b, o) in MUL_CASES {
            let (h, s) = (HtpMul::new(a, b, o), HtpMul::new(b, a, o));
            let (h, s) = (h.expect("domain"), s.expect("domain"));
            for qb in (0..=65535u16).step_by(997) {
                let increasing = qb as i32 + b.1 >= 0;
                let mut prev = h.apply(0, qb);
                for qa in 0..=65535u16 {
                    let y = h.apply(qa, qb);
                    assert_eq!(y, s.apply(qb, qa));
                    assert!(if increasing { y >= prev } else { y <= prev });
                    prev = y;
                }
            }
        }
    }

    #[test]
    fn fused_mul_rounds_at_most_one_code_higher() {
        let (a, b, o) = MUL_CASES[1];
        let h = HtpMul::new(a, b, o).expect("domain");
        let f = h.fused_with_sigmoid();
        let mut up = 0;
        for qa in 0..=65535u16 {
            let qb = qa.wrapping_mul(31);
            let d = f.apply(qa, qb) as i32 - h.apply(qa, qb) as i32;
            assert!(d == 0 || d == 1, "{qa}: {d}");
            up += d as usize;
        }
        // About 1/16 of the codes sit within 1/16 below a tie.
        assert!((2000..6500).contains(&up), "{up}");
    }

    #[test]
    fn round8_keeps_8_significant_bits_ties_to_even() {
        for (v, r) in [
            (255, 255),
            (-257, -256),
            (1316, 1312),
            (-1316, -1312),
            (1380, 1376),
            (1340, 1344),
            (-5232, -5248),
            (32768, 32768),
            (32767, 32768),
            (0, 0),
        ] {
            assert_eq!(round8(v), r, "{v}");
        }
    }

    #[test]
    fn fused_constant_differs_by_the_rounded_offsets() {
        // d_a = -1316 rounds to -1312: 4 more 2m steps than the plain constant + 2^31.
        let (a, b, o) = MUL_CASES[1];
        let h = HtpMul::new(a, b, o).expect("domain");
        let f = h.fused_with_sigmoid();
        assert_eq!(f.k - h.k, (1 << 31) + 4 * h.m2);
        // Offsets with 8 significant bits: only the 1/16.
        let h = HtpMul::new((2e-5, -32768 - 1312), b, o).expect("domain");
        assert_eq!(h.fused_with_sigmoid().k - h.k, 1 << 31);
    }

    #[test]
    fn mul_domain() {
        let (a, b, o) = MUL_CASES[0];
        assert!(HtpMul::new(a, b, (1.0, 0)).is_none(), "ratio below 1e-7");
        assert!(
            HtpMul::new(a, b, (1e-9, 0)).is_none(),
            "ratio of 2^-5 or more"
        );
        assert!(HtpMul::new((0.0, -1), b, o).is_none());
        assert!(HtpMul::new((1e-4, 5), b, o).is_none(), "positive offset");
        assert!(HtpMul::new(a, (f32::NAN, 0), o).is_none());
    }

    #[test]
    fn sigmoid_codes_are_even_symmetric_monotonic_and_close() {
        for (s, o) in [(2.195e-5f32, -34084), (5e-6, -32768), (1e-4, -30000)] {
            let h = HtpSigmoid::new((s, o), HtpSigmoid::OUTPUT).expect("domain");
            let mut prev = 0;
            let mut sum = 0.0;
            for q in 0..=65535u16 {
                let y = h.apply(q);
                assert_eq!(y % 2, 0);
                assert!(y >= prev, "{q}");
                prev = y;
                // The mirror code (same magnitude, other sign) sums to 65534.
                let mirror = -2 * o as i64 - q as i64;
                if (1..=65535).contains(&mirror) && mirror != q as i64 {
                    assert_eq!(y as u32 + h.apply(mirror as u16) as u32, 65534, "{q}");
                }
                let x = (q as f64 + o as f64) * s as f64;
                let e = 65536.0 / (1.0 + (-x).exp());
                // One grid step (slope at most 1/4: 2.7 codes) plus one 15-bit step.
                assert!((y as f64 - e).abs() < 5.0, "{q}: {y} {e}");
                sum += y as f64 - e;
            }
            assert!((sum / 65536.0).abs() < 1.5, "bias {}", sum / 65536.0);
        }
    }

    #[test]
    fn sigmoid_zero_and_domain() {
        let h = HtpSigmoid::new((2e-5, -30000), HtpSigmoid::OUTPUT).expect("domain");
        assert_eq!(h.apply(30000), 32768);
        assert_eq!(h.apply(29999), 65534 - 32768);
        let mut bytes = [0u8; 4];
        h.apply_bytes(&[0x30, 0x75, 0x2f, 0x75], &mut bytes);
        assert_eq!(bytes, [0x00, 0x80, 0xfe, 0x7f]);
        assert!(HtpSigmoid::new((2e-5, -30000), (1.0 / 65536.0, -1)).is_none());
        assert!(HtpSigmoid::new((2.0, -30000), HtpSigmoid::OUTPUT).is_none());
        assert!(HtpSigmoid::new((5e-8, -30000), HtpSigmoid::OUTPUT).is_none());
        assert!(HtpSigmoid::new((f32::NAN, -30000), HtpSigmoid::OUTPUT).is_none());
        assert!(HtpSigmoid::new((2e-5, 1), HtpSigmoid::OUTPUT).is_none());
    }

    #[test]
    fn sigmoid_table_is_monotonic_close_and_saturates() {
        let v = sigmoid_values();
        assert_eq!(v.len(), 65536);
        assert_eq!(v[0], 1 << 14);
        // The padding entry after k = 65535 is a zero step.
        assert_eq!(SIGMOID_STEPS[16383] >> 6, 0);
        let sat = v.iter().position(|&f| f == 32767).expect("saturates");
        assert!(v[sat..].iter().all(|&f| f == 32767));
        // sigmoid(x) > 1 - 2^-16 from x = 11.1 (k = 68,000) on: the 15-bit value must
        // have saturated well before.
        assert!((40000..65536).contains(&sat), "{sat}");
        for (k, w) in v.windows(2).enumerate() {
            assert!(w[1] >= w[0] && w[1] - w[0] <= 2, "{k}");
        }
        for (k, &f) in v.iter().enumerate() {
            let e = 32768.0 / (1.0 + (-(k as f64) / 6144.0).exp());
            assert!((f as f64 - e).abs() < 1.3, "{k}: {f} {e}");
        }
    }

    #[test]
    fn sigmoid_grid_multiplier_stays_below_2_15() {
        assert_eq!(HtpSigmoid::grid(1.0 / 6144.0 * 0.999), (32735, 15));
        // 2e-4 * 6144 * 2^15 = 40265.3 needs a shift less.
        assert_eq!(HtpSigmoid::grid(2e-4), (20133, 14));
        for s in [1e-7f32, 3e-6, 2e-5, 1e-4, 2e-4, 1e-3, 0.1, 1.0] {
            let (m, sh) = HtpSigmoid::grid(s);
            assert!(m < 1 << 15 && (sh == 15 || m >= 1 << 14), "{s}: {m} {sh}");
            let r = m as f64 / (1u64 << sh) as f64 / (s as f64 * 6144.0);
            assert!((r - 1.0).abs() < 0.5 / m as f64 + 1e-9, "{s}: {r}");
        }
    }
}
