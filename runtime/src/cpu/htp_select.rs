//! HTP's 16-bit `ElementWiseSelect` (our `nn.where` on per-tensor u16 data), modelled on
//! the integer arithmetic QNN's HTP emulator performs (QNN 2.51, v75), for the
//! fixed-point mode under [`crate::cpu::Rounding::Htp`].
//!
//! # Formulas
//!
//! The select itself is exact; each data input is requantized into the result's
//! encoding by its own [`HtpRescale`], in one of two ways depending on where the data
//! comes from. With input `(s_in, o_in)`, result `(s_out, o_out)` and the f32 ratio
//! `R = f32(s_in / s_out)`:
//!
//! - **Data produced by another op** (the attention's scaled scores; [`HtpRescale::native`]):
//!   a 15-bit multiplier like [`crate::cpu::quant::HtpAdd`]'s, `e = floor(log2 R) + 1`,
//!   `s = 15 - e`, `m = round(R 2^s)`, and
//!   `out = clamp(floor((m (q + o_in) + 2^(s-1) + [s >= 16] 2^(s-8)) / 2^s) - o_out)`:
//!   for ratios below 1/2 the rounding constant is 1/256 of a code above one half. For
//!   ratios below 2^-8 (a shift beyond 22) the HTP uses the graph-input formula instead.
//! - **Data read straight from a graph input** ([`HtpRescale::graph_input`]): a multiplier
//!   at scale 2^18, `m = round(R 2^18)` (ties to even); the code part in eighths of an
//!   output code rounded half up, `z = floor((q m + 2^14) / 2^15)`; the offset part in
//!   eighths computed in f32 together with the output offset,
//!   `T = round_ties_even(f32(f32(o_in m / 2^15) - 8 o_out))`;
//!   `out = clamp(floor((z + T + 4) / 8))`.
//!
//! An input with the result's own encoding passes through unchanged either way. Against
//! rounding the exact `(q + o_in) R - o_out` to nearest, 2-11% of the codes come out one
//! off (the separately rounded parts, the short multiplier, the extra 1/256).
//!
//! # How it was found
//!
//! `examples/where_probe.rs` of `mllm-backend-qnn`, one-op and two-op graphs in the
//! emulator, fitted in Python (no third-party code or constants):
//!
//! - Graph-input data (default mode: condition all true with `a` swept over all 65,536
//!   codes, all false with `b` swept): for one encoding pair every code is
//!   `floor(q a + c)` for one slope `a` and constant `c` (the feasible region of the
//!   65,536 constraints is not empty), and the slope interval is ~1e-3 / 2^18 wide around
//!   `round(R 2^18) / 2^18`, for ratios from 1e-7 to 7,000 (above, `m` passes 2^31 and
//!   the codes break down). Ratios whose f32 `R 2^18` ends in exactly `.5` tell the f32
//!   ratio and ties to even apart from the f64 ratio and rounding half up. The constant
//!   `c` sits on `k/8 + 1/16` (the code part rounded to eighths first), sweeping the
//!   input offset gives `k = round(o_in m / 2^15)`, and sweeping the output offset moves
//!   `k` by one exactly where `o_in m / 2^15 - 8 o_out` crosses 2^18 (the f32 grid
//!   coarsens to 1/32 there): of several orders of f32 rounding only the one above
//!   reproduces all 120 measured `T` of 60 random encoding triples.
//! - Op-produced data (`MODE=mulsel` / `MODE=graph`: the branch is `x * 0.25` of a graph
//!   input, modelled exactly by [`crate::cpu::htp_ew::HtpMul`]): the codes are again a
//!   line in the product's codes, but with slope `round(R 2^s) / 2^s` for the `s` above
//!   (15 significant bits) and constant `1/2` (`s <= 15`) or `1/2 + 1/256` (`s >= 16`);
//!   `MODE=graph` with one branch from an op and the other from a graph input shows the
//!   choice is made per branch. 60 op-produced branches of 30 random encoding triples
//!   (ratios 1.5e-4 to 29): 0 mismatches for every ratio from 0.0041 up, and the
//!   graph-input formula exact (and this one not) for every ratio up to 0.0030: the
//!   switch is at 2^-8. (The drift tool's `iso` figure of `nn.where`, which feeds
//!   the op its operands as graph inputs, measures the op-produced path this way.)
//!   Constants (the mask fill) were not told apart: the fills probed give the same code
//!   under both formulas; they are treated as op-produced.
//!
//! # Measured domain and mismatches
//!
//! See the tests of `backends/qnn/tests/where_htp.rs` and [`HtpRescale`]'s domain.

use crate::cpu::kernels::Bcast;

/// Which of the HTP's two requantizations a select input gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Path {
    /// Data produced by another op: 15-bit multiplier `m` at shift `s`, rounding
    /// constant `k`, input offset `o_in`, output offset `o_out`.
    Native {
        m: i64,
        s: u32,
        k: i64,
        oi: i64,
        oo: i64,
    },
    /// Data read straight from a graph input: multiplier `m` at scale 2^18 and the f32
    /// offset term `t` (with the final half step) in eighths of a code.
    Input { m: i64, t: i64 },
}

/// HTP's requantization of one per-tensor u16 select input into the result's per-tensor
/// u16 encoding (see the module documentation for the two formulas).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HtpRescale(Path);

impl HtpRescale {
    /// Smallest scale ratio `s_in / s_out` of the measured domain.
    pub const MIN_RATIO: f32 = 1e-4;
    /// Largest scale ratio `s_in / s_out` of the measured domain.
    pub const MAX_RATIO: f32 = 16.0;

    /// The f32 ratio `s_in / s_out`, or `None` outside the measured domain (non-positive
    /// or non-finite scales, a ratio outside `[MIN_RATIO, MAX_RATIO]`, an offset outside
    /// `[-65535, 0]`).
    fn ratio(inp: (f32, i32), out: (f32, i32)) -> Option<f32> {
        let ok = |s: f32| s.is_finite() && s > 0.0;
        let off = |o: i32| (-65535..=0).contains(&o);
        if !ok(inp.0) || !ok(out.0) || !off(inp.1) || !off(out.1) {
            return None;
        }
        let r = inp.0 / out.0;
        (Self::MIN_RATIO..=Self::MAX_RATIO)
            .contains(&r)
            .then_some(r)
    }

    /// The requantization of data produced by another op (the usual case, e.g. the
    /// attention's scaled scores) from `(scale, offset)` `inp` to `out`, or `None` outside
    /// the measured domain.
    pub fn native(inp: (f32, i32), out: (f32, i32)) -> Option<Self> {
        let r = Self::ratio(inp, out)?;
        if r < 2f32.powi(-8) {
            // A 15-bit multiplier would need a shift beyond 22: the HTP takes the
            // graph-input path.
            return Self::graph_input(inp, out);
        }
        // r = 2^(e-1) .. 2^e: the multiplier has 15 significant bits.
        // floor(log2 r) from the f32 exponent (r is normal here), exact also just below a
        // power of two where a rounded log2 would not be.
        let e = ((r.to_bits() >> 23) & 0xff) as i32 - 127 + 1;
        let s = (15 - e) as u32;
        let m = (r as f64 * 2f64.powi(s as i32)).round_ties_even() as i64;
        let k = (1i64 << (s - 1)) + if s >= 16 { 1 << (s - 8) } else { 0 };
        Some(HtpRescale(Path::Native {
            m,
            s,
            k,
            oi: inp.1 as i64,
            oo: out.1 as i64,
        }))
    }

    /// The requantization of data read straight from a graph input, from
    /// `(scale, offset)` `inp` to `out`, or `None` outside the measured domain.
    pub fn graph_input(inp: (f32, i32), out: (f32, i32)) -> Option<Self> {
        let r = Self::ratio(inp, out)?;
        let m = (r as f64 * 262144.0).round_ties_even() as i64;
        // o_in m / 2^15 is exact in f64 (|o_in m| < 2^41); each `as f32` / f32
        // subtraction rounds to nearest even, as the HTP's f32 arithmetic does.
        let offset = (inp.1 as i64 * m) as f64 / 32768.0;
        let t = (offset as f32 - (8 * out.1) as f32).round_ties_even() as i64;
        Some(HtpRescale(Path::Input { m, t: t + 4 }))
    }

    /// The result code of input code `q`.
    #[inline(always)]
    pub fn apply(&self, q: u16) -> u16 {
        let y = match self.0 {
            Path::Native { m, s, k, oi, oo } => ((m * (q as i64 + oi) + k) >> s) - oo,
            Path::Input { m, t } => (((q as i64 * m + (1 << 14)) >> 15) + t) >> 3,
        };
        y.clamp(0, 65535) as u16
    }
}

/// HTP's `Select` of per-tensor u16 data `a` (where the condition holds) and `b` into a
/// per-tensor u16 result: each branch requantized by its [`HtpRescale`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HtpSelect {
    a: HtpRescale,
    b: HtpRescale,
}

impl HtpSelect {
    /// The op selecting between data requantized by `a` (where the condition holds) and
    /// by `b`.
    pub fn new(a: HtpRescale, b: HtpRescale) -> Self {
        HtpSelect { a, b }
    }

    /// The result code for condition `c` and data codes `qa`, `qb`.
    #[inline(always)]
    pub fn apply(&self, c: bool, qa: u16, qb: u16) -> u16 {
        if c {
            self.a.apply(qa)
        } else {
            self.b.apply(qb)
        }
    }

    /// Selects over a broadcast walk `p` of the condition bytes `c` (non-zero = true) and
    /// the little-endian u16 codes `a`, `b` into the u16 codes `out` (row-major, as many
    /// as `p` covers).
    pub fn run(&self, p: &Bcast<3>, c: &[u8], a: &[u8], b: &[u8], out: &mut [u8]) {
        let code = |x: &[u8], i: usize| u16::from_le_bytes([x[2 * i], x[2 * i + 1]]);
        let [ic, ia, ib] = p.inner_s;
        let inner = p.inner.max(1);
        for (r, o) in out.chunks_mut(2 * inner).enumerate() {
            let [oc, oa, ob] = p.offsets(r);
            for (j, z) in o.chunks_exact_mut(2).enumerate() {
                let y = if c[oc + j * ic] != 0 {
                    self.a.apply(code(a, oa + j * ia))
                } else {
                    self.b.apply(code(b, ob + j * ib))
                };
                z.copy_from_slice(&y.to_le_bytes());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test model's attention select: scaled scores into the mask fill's encoding.
    const QK: (f32, i32) = (1.097_141_9e-4, -32624);
    const OUT: (f32, i32) = (4.148_946_3e-4, -56832);

    type Ctor = fn((f32, i32), (f32, i32)) -> Option<HtpRescale>;
    const PATHS: [Ctor; 2] = [HtpRescale::native, HtpRescale::graph_input];

    #[test]
    fn same_encoding_passes_through() {
        for new in PATHS {
            for enc in [OUT, QK, (1e-5, 0), (3e-3, -65535)] {
                let h = new(enc, enc).expect("domain");
                for q in 0..=65535u16 {
                    assert_eq!(h.apply(q), q);
                }
            }
        }
    }

    /// Within a fraction of a code of round-to-nearest, monotonic, and off by one for a
    /// minority of codes.
    #[test]
    fn close_to_rounded_and_monotonic() {
        for new in PATHS {
            for (inp, out) in [
                (QK, OUT),
                ((1.796_825e-5, -15455), (9.338_451e-6, -64937)),
                ((1.931_959e-2, -24883), (1.261_866e-3, -39763)),
                ((1e-6, -100), (5e-4, -30000)),
            ] {
                let h = new(inp, out).expect("domain");
                let r = inp.0 as f64 / out.0 as f64;
                let (mut prev, mut off) = (0, 0);
                for q in 0..=65535u16 {
                    let y = h.apply(q);
                    assert!(y >= prev, "{q}");
                    prev = y;
                    let x = (q as f64 + inp.1 as f64) * r;
                    let e = x - out.1 as f64;
                    if (0.0..=65535.0).contains(&e) {
                        // The rounded parts (1/8 each) or the 15-bit multiplier's error
                        // (at most 2^-15 relative).
                        let d = y as f64 - e;
                        let tol = 0.5 + 0.25 + x.abs() / 32768.0;
                        assert!(d.abs() <= tol, "{q}: {y} vs {e}");
                        off += (y as f64 != e.round()) as usize;
                    }
                }
                assert!(
                    off < 65536 / 5,
                    "{off} codes differ from rounding to nearest"
                );
            }
        }
    }

    #[test]
    fn multipliers_and_domain() {
        // f32(2e-3 / 4.1489463e-4) * 2^18 = 1263665.5 exactly: ties to the even 1263666.
        let h = HtpRescale::graph_input((2e-3, 0), (4.148_946_3e-4, 0)).expect("domain");
        assert!(matches!(h.0, Path::Input { m: 1_263_666, .. }));
        // 0.2644 = 17330.25 / 2^16: 15 significant bits, and the extra 1/256 of a code in
        // the rounding constant from shift 16 on.
        let h = HtpRescale::native(QK, OUT).expect("domain");
        let k = (1 << 15) + (1 << 8);
        assert!(matches!(h.0, Path::Native { m: 17330, s: 16, k: kk, .. } if kk == k));
        let h = HtpRescale::native((1.2e-3, 0), (1e-3, 0)).expect("domain");
        assert!(matches!(
            h.0,
            Path::Native {
                m: 19661,
                s: 14,
                k: 8192,
                ..
            }
        ));
        for new in PATHS {
            assert!(new((1.0, 0), (1e-3, 0)).is_none());
            assert!(new((1e-9, 0), (1e-3, 0)).is_none());
            assert!(new((1e-3, 1), (1e-3, 0)).is_none());
            assert!(new((f32::NAN, 0), (1e-3, 0)).is_none());
        }
    }

    /// The shift follows the ratio's binary exponent, also just below a power of two.
    #[test]
    fn native_shift_at_powers_of_two() {
        let below = f32::from_bits(0.5f32.to_bits() - 1);
        for (r, s) in [(0.5f32, 15), (below, 16), (1.0, 14), (0.25, 16), (2.0, 13)] {
            let h = HtpRescale::native((r, 0), (1.0, 0)).expect("domain");
            assert!(matches!(h.0, Path::Native { s: sh, .. } if sh == s), "{r}");
        }
    }

    #[test]
    fn run_follows_the_condition_with_broadcast() {
        let ra = HtpRescale::native(QK, OUT).expect("domain");
        let rb = HtpRescale::native(OUT, OUT).expect("domain");
        let h = HtpSelect::new(ra, rb);
        // [2, 3] output, condition [1, 3], a [2, 3], b a scalar.
        let p = Bcast::new(&[2, 3], [&[1, 3], &[2, 3], &[1]], false);
        let c = [1u8, 0, 1];
        let a: Vec<u8> = [100u16, 200, 300, 40000, 50000, 60000]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        let b = 7u16.to_le_bytes();
        let mut out = [0u8; 12];
        h.run(&p, &c, &a, &b, &mut out);
        let got: Vec<u16> = out
            .chunks_exact(2)
            .map(|x| u16::from_le_bytes([x[0], x[1]]))
            .collect();
        assert_eq!(
            got,
            [
                ra.apply(100),
                7,
                ra.apply(300),
                ra.apply(40000),
                7,
                ra.apply(60000)
            ]
        );
        assert_eq!(h.apply(false, 1, 9), 9);
    }
}
