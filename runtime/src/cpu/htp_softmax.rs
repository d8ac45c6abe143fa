//! HTP's 16-bit `Softmax` (per-tensor u16 codes in, u16 codes of scale 1/65535 offset 0
//! out, along rows of 3 or more entries), modelled on the integer arithmetic QNN's HTP
//! emulator performs (QNN 2.51, v75), for the fixed-point mode under
//! [`crate::cpu::Rounding::Htp`].
//!
//! # Formula
//!
//! For a row of input codes `q_i` with maximum `q_max` (the input offset plays no part):
//!
//! 1. `d_i = q_max - q_i`, `y_i = d_i M` with the Q22 multiplier
//!    `M = floor(f32(s * log2(e)) * 2^22)` (`s` the input scale): `y_i / 2^22` is
//!    `(x_max - x_i) log2(e)`.
//! 2. `e_i = P(frac_i) >> int_i` (0 once `int_i >= 16`) with `int_i = y_i >> 22` and the
//!    16-bit fraction `frac_i = (y_i >> 6) & 0xffff`: `P` is a 4-segment quadratic of
//!    `v = !frac` (the top 2 bits of `v` pick the segment) evaluated by Horner steps
//!    with a saturating 16-bit multiply, `p <- sat16((p v + c 2^15) >> 16)`, giving
//!    `32768 * 2^-frac/65536` in Q15 (`P(0) = 32767`, saturated). The coefficients are
//!    measured (see below): per segment, the integer triples `(c2, c1, c0)` that reproduce
//!    the emulator's 256 values there are unique for segments 0, 2 and 3; segment 1
//!    admits 8 at those fractions, of which only `(5119, 21816, 32876)` also reproduces
//!    the swept pairs at other input scales. (Segments 0-2 coincide with the published
//!    coefficients of an open-source Hexagon exp routine, nnlib's `pow2_v65_poly`;
//!    segment 3 does not.)
//! 3. `S = sum e_i` (exact, 32-bit; the 16-bit `e_i` are summed, not a wider form).
//! 4. A reciprocal `r` of `S` with `ex = floor(log2 S)` and output code
//!    `o_i = min((e_i r) >> ex, 65535)`; `r` is `2^(16 + ex) / S` to 14, 15 and 16
//!    significant bits for `ex` = 15, 16 and >= 17, computed from `S >> 1`:
//!    - `ex = 14` (`S = 32767`, the maximum alone): `r = 32768` (the HTP's 65534),
//!    - `ex = 15`: `r = 4 k(S >> 1)`, `ex = 16`: `r = 2 x(S >> 1)`, where `k(d)` and
//!      `x(D)` are within one step of `round(2^28 / d)` and `round(2^30 / D)` and are
//!      taken from a table of the measured differences (`htp_softmax_recip.bin`: 2 bits
//!      per entry, 16,384 `k` then 32,768 `x`; 12% resp. 14% of them are not the
//!      rounded quotient, and no simple formula reproduces them),
//!    - `ex` = 17, 18 and 19: `r = floor(2^(15 + ex) / h + 0.4 * 2^(17 - ex)) + c(h)`
//!      with `h = S >> 1` and a measured correction `c(h)` in `{-1, 0, +1}` from the same
//!      table (65,536 / 131,072 / 262,144 entries; 12% / 8% / 3.6% of them non-zero; no
//!      smooth function of `h` reproduces them: neighbouring `h` need different
//!      offsets from the quotient),
//!    - `ex >= 20`: the same expression without a correction, an approximation: the
//!      emulator's `r` is within one step of it (it misses ~1.5% of the rows whose `r`
//!      the outputs pin down).
//!
//! # How it was found
//!
//! `examples/softmax_pairs.rs` of `mllm-backend-qnn` (`ROWS=file` mode, Python fits):
//! - With the input scale `ln 2 / 1024` an input code step is exactly `2^-1/1024` and
//!   rows of entries `1024 j` codes below the maximum have `e = 2^(15-j) - 1`; every
//!   output of 14,000 such rows is `floor(e r / 2^ex)` for one `r` per row, `r` depends
//!   on `S = sum e` only (not on how it is made up, nor on a wider sum), and sweeping
//!   every `S` in `[2^15, 2^17)` gives `k` and `x` (the maximum's code is `4k - 2` resp.
//!   `x - 1`; both are constant on pairs `S = 2m, 2m + 1`).
//! - Rows `[max, max - d]` then give every `e(d)`: `e(d) = e(d mod 1024) >> (d / 1024)`
//!   exactly, and `e(d)` for `d < 1024` is the polynomial above: a float least-squares
//!   fit of each segment's 256 values in the Horner form gives a centre, and an integer
//!   search around it (`c2` +-300, `c1` +-600, `c0` from the bounds) leaves the triples
//!   named above; trying segment 1's 8 in the emulator tests leaves one.
//! - The multiplier: sweeping the input scale moves the outputs in steps of exactly
//!   `2^-22` in `s log2(e)` (scales 1e-4 to 2e-3); the f32 product (not the f64 one)
//!   matches at scales where the two floor differently.
//! - Rows with one fixed `S` and 5,000 different probes pin `r` to the unit: 16
//!   significant bits for `ex >= 17`, and `r` is not a function of the top 16 bits of
//!   `S` alone (`S = 140000` and `280004`, same 16-bit mantissa, differ).
//! - The `ex` = 17-19 tables (`ROWS=file` mode driven from Python, 3.9 million rows):
//!   for every `S` in `[2^17, 2^20)`, 6 rows at input scale
//!   `ln 2 / 1024` made of the maximum, up to 8 / 16 / 24 random entries within 1.1 / 1024
//!   octaves of it and entries far below that make up `S` exactly (the exps of this
//!   model are exact); each output `o = floor(e r / 2^ex)` bounds `r`, and the bounds of
//!   the 12 rows of `S = 2h, 2h + 1` pin `r(h)` to the unit for all but 12 / 43 / 152
//!   `h` (those keep the uncorrected value, which lies in their interval). The bounds
//!   of all rows of one `h` never conflict (`r` depends on `h` only; grouping by
//!   `S >> 2` conflicts for half of the `ex = 18` groups). Held out: random
//!   attention-like rows (15,000, widths 3-64, input scale 4.18e-4) have no row whose
//!   bounds exclude the tabled `r` for `ex` 17-19 (the uncorrected expression: 168,
//!   225 and 146).
//!
//! # Measured domain and mismatches
//!
//! Rows `[max, max - k, 0 ...]` of 256 (`k` up to 16,384, sums below 2^17): 0
//! mismatches at input scales 1e-4, 4.16e-4, 4.18e-4, 1e-3, 2e-3, 2.14e-3, 2.8e-3 and
//! 4e-3 (2,788-5,545 rows each); at 3e-5 the 254 zero entries still count, the sums
//! reach `ex >= 20` and 1,103 of 838,912 codes are off by one. `n` equal maxima
//! plus one entry below (1,020 rows): 0. Random rows (a maximum and entries
//! half-normally below it, input scale 4.18e-4): widths 3 and 4 exact (20,000 codes
//! each), widths 8 to 1,024 0.08-2.4% of the codes off by one with the approximate `r`
//! for every `ex >= 17` (before the `ex` 17-19 tables); with the tables, widths 64 at
//! input scale 1e-3 0.023% (was 0.10%), 256 at 4.18e-4 0.006% (sums of 2^20 and more,
//! unchanged), none off by more; rows with chosen sums (3,000 per `ex`, width 64): 0
//! mismatches for `ex` 17, 18, 19, 29 of 192,000 codes for `ex = 20`. 2-wide rows take
//! another code path (87% differ, up to 14 codes: [`HtpSoftmax`] is not for them).
//! [`HtpSoftmax::new`] accepts input scales in `[2.5e-5, 5e-3]`.

/// Corrections of the reciprocals, 2 bits per entry (`0` = -1, `1` = 0, `2` = +1), 4
/// entries per byte little-end first: of `round(2^28 / d)` for `ex = 15` (16,384 entries,
/// `d` in `[2^14, 2^15)`), of `round(2^30 / D)` for `ex = 16` (32,768, `D` in
/// `[2^15, 2^16)`), then of [`HtpSoftmax::base`] for each `ex` from 17 to [`TABLE_EX`]
/// (`2^(ex-1)` entries each, `h = S >> 1` in `[2^(ex-1), 2^ex)`).
static RECIP_FIX: &[u8; 126976] = include_bytes!("htp_softmax_recip.bin");

/// The largest `ex` whose reciprocal the table covers.
const TABLE_EX: u32 = 19;

/// Index in [`RECIP_FIX`] of the entry of `h` for `ex` in `17..=TABLE_EX`.
fn table_index(ex: u32, h: usize) -> usize {
    let before: usize = (17..ex).map(|e| 1usize << (e - 1)).sum();
    16384 + 32768 + before + h - (1 << (ex - 1))
}

/// `sat16`: clamps to the i16 range.
#[inline(always)]
fn sat16(v: i64) -> i64 {
    v.clamp(-32768, 32767)
}

/// The 4-segment quadratic `P(v)` of the exp (see the module documentation): Q15
/// `2^-(frac / 65536)` at `v = !frac`.
#[inline(always)]
fn pow2_q15(frac: u32) -> i64 {
    // (c2, c1, c0) per segment, indexed by the top 2 bits of `v`.
    const C: [(i64, i64, i64); 4] = [
        (4300, 22652, 32769),
        (5119, 21816, 32876),
        (6087, 19857, 33371),
        (7227, 16401, 34681),
    ];
    let v = (!frac & 0xffff) as i64;
    let (c2, c1, c0) = C[(v >> 14) as usize];
    let p = sat16((c2 * v + (c1 << 15)) >> 16);
    sat16((p * v + (c0 << 15)) >> 16)
}

/// The table correction of entry `i` of [`RECIP_FIX`].
#[inline(always)]
fn recip_fix(i: usize) -> i64 {
    ((RECIP_FIX[i >> 2] >> (2 * (i & 3))) & 3) as i64 - 1
}

/// HTP's `Softmax` of per-tensor u16 codes into u16 codes of scale 1/65535, offset 0,
/// along rows of at least 3 entries (see the module documentation for the formula and
/// its accuracy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HtpSoftmax {
    /// `floor(f32(s * log2(e)) * 2^22)`.
    m: u64,
}

impl HtpSoftmax {
    /// The only output encoding the model covers: scale 1/65535, offset 0.
    pub const OUTPUT: (f32, i32) = (1.0 / 65535.0, 0);

    /// The op for input `(scale, offset)` `input` and result `out`, or `None` outside the
    /// measured domain (`out` not [`HtpSoftmax::OUTPUT`], an input scale outside
    /// `[2.5e-5, 5e-3]`). The input offset plays no part.
    pub fn new(input: (f32, i32), out: (f32, i32)) -> Option<Self> {
        let s = input.0;
        if out != Self::OUTPUT || !(2.5e-5..=5e-3).contains(&s) {
            return None;
        }
        let m = ((s * std::f32::consts::LOG2_E) as f64 * 4194304.0).floor() as u64;
        Some(HtpSoftmax { m })
    }

    /// The Q15 exponential `e` of an entry `d` codes below the row's maximum.
    #[inline(always)]
    pub fn exp(&self, d: u16) -> u16 {
        let y = d as u64 * self.m;
        let int = y >> 22;
        if int >= 16 {
            return 0;
        }
        (pow2_q15(((y >> 6) & 0xffff) as u32) >> int) as u16
    }

    /// `floor(2^(15 + ex) / h + 0.4 * 2^(17 - ex))`: the reciprocal for `ex >= 17` up to
    /// the table's correction (within one step of the emulator's beyond the table).
    fn base(ex: u32, h: u64) -> i64 {
        let q = (2f64).powi(15 + ex as i32) / h as f64;
        (q + 0.4 * (2f64).powi(17 - ex as i32)).floor() as i64
    }

    /// The reciprocal `(r, ex)` of the sum `s` of a row's exponentials: output codes are
    /// `(e r) >> ex`.
    pub fn recip(s: u64) -> (u64, u32) {
        let ex = 63 - s.max(1).leading_zeros();
        let h = s >> 1;
        let r = match ex {
            0..=14 => 32768,
            15 => {
                let d = h as i64;
                let k = (((1i64 << 29) + d) / (2 * d)) + recip_fix(h as usize - 16384);
                4 * k
            }
            16 => {
                let d = h as i64;
                let x = (((1i64 << 31) + d) / (2 * d)) + recip_fix(16384 + h as usize - 32768);
                2 * x
            }
            17..=TABLE_EX => Self::base(ex, h) + recip_fix(table_index(ex, h as usize)),
            _ => Self::base(ex, h),
        };
        (r.max(0) as u64, ex.max(14))
    }

    /// Softmax of one row of `d` little-endian u16 codes in `x` into `out`, entry `t` at
    /// code index `t * stride` of both (a strided row of a tensor; no allocation).
    pub fn row_bytes(&self, x: &[u8], out: &mut [u8], d: usize, stride: usize) {
        let at = |t: usize| 2 * t * stride;
        let code = |b: &[u8], t: usize| u16::from_le_bytes([b[at(t)], b[at(t) + 1]]);
        let Some(max) = (0..d).map(|t| code(x, t)).max() else {
            return;
        };
        let mut sum = 0u64;
        for t in 0..d {
            let e = self.exp(max - code(x, t));
            sum += e as u64;
            out[at(t)..at(t) + 2].copy_from_slice(&e.to_le_bytes());
        }
        let (r, ex) = Self::recip(sum);
        for t in 0..d {
            let o = ((code(out, t) as u64 * r) >> ex).min(65535) as u16;
            out[at(t)..at(t) + 2].copy_from_slice(&o.to_le_bytes());
        }
    }

    /// Softmax of one row of input codes `x` into output codes `out` (same length): the
    /// arithmetic of [`HtpSoftmax::row_bytes`] (which the executor runs) on a contiguous row.
    pub fn row(&self, x: &[u16], out: &mut [u16]) {
        let d = x.len().min(out.len());
        let xb: Vec<u8> = x[..d].iter().flat_map(|c| c.to_le_bytes()).collect();
        let mut ob = vec![0u8; 2 * d];
        self.row_bytes(&xb, &mut ob, d, 1);
        for (o, c) in out.iter_mut().zip(ob.chunks_exact(2)) {
            *o = u16::from_le_bytes([c[0], c[1]]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sm(scale: f32) -> HtpSoftmax {
        HtpSoftmax::new((scale, -30000), HtpSoftmax::OUTPUT).expect("in domain")
    }

    #[test]
    fn domain() {
        assert!(HtpSoftmax::new((4e-4, 0), (1.0 / 65536.0, 0)).is_none());
        assert!(HtpSoftmax::new((1e-2, 0), HtpSoftmax::OUTPUT).is_none());
        assert!(HtpSoftmax::new((1e-6, 0), HtpSoftmax::OUTPUT).is_none());
        assert_eq!(sm(4.1805804e-4).m, 2529);
    }

    /// The exponential follows `2^-(d s log2 e)` within two Q15 steps, is exactly
    /// halved per octave (`e(d + 1024) = e(d) >> 1` at scale ln2 / 1024) and saturates
    /// at 32767.
    #[test]
    fn exp_shape() {
        let h = sm((std::f64::consts::LN_2 / 1024.0) as f32);
        assert_eq!(h.m, 4096);
        assert_eq!(h.exp(0), 32767);
        for d in 0..14336u16 {
            let want = 32768.0 * (-(d as f64) / 1024.0).exp2();
            assert!((h.exp(d) as f64 - want).abs() <= 2.1, "d {d}");
            if d >= 1024 {
                assert_eq!(h.exp(d), h.exp(d - 1024) >> 1, "d {d}");
            }
        }
        assert_eq!(h.exp(16 * 1024), 0);
        assert_eq!(h.exp(u16::MAX), 0);
    }

    /// The reciprocal is `2^(16 + ex) / S` to 14-16 significant bits.
    #[test]
    fn recip_accuracy() {
        for s in (32767u64..1 << 23).step_by(97) {
            let (r, ex) = HtpSoftmax::recip(s);
            let exact = (2f64).powi(16 + ex as i32) / s as f64;
            let tol = if ex <= 15 { 5.0 } else { 3.0 };
            assert!(
                (r as f64 - exact).abs() <= tol,
                "S {s}: r {r} exact {exact}"
            );
            assert!(r <= 65536, "S {s}");
        }
    }

    /// Rows of `n` equal maxima give `floor(65535 / n)` but for `n = 15, 51, 255` (one
    /// less), as the emulator does; a lone maximum gives 65534.
    #[test]
    fn equal_maxima() {
        let h = sm(4.1805804e-4);
        for n in 1..=256usize {
            let mut x = vec![0u16; 256];
            x[..n].fill(65535);
            let mut o = vec![0u16; 256];
            h.row(&x, &mut o);
            let want = match n {
                1 => 65534,
                15 | 51 | 255 => 65535 / n as u16 - 1,
                _ => 65535 / n as u16,
            };
            assert_eq!(o[0], want, "n {n}");
            assert!(o[n..].iter().all(|&c| c == 0));
        }
    }

    /// The strided byte form computes what the row form does.
    #[test]
    fn row_bytes_matches_row() {
        let h = sm(1e-3);
        let x: Vec<u16> = (0..300u32)
            .map(|i| (60000 - (i * 7919) % 9000) as u16)
            .collect();
        // 100 rows of 3 (contiguous) vs 3 rows of 100 read with stride 3.
        let xb: Vec<u8> = x.iter().flat_map(|c| c.to_le_bytes()).collect();
        let mut ob = vec![0u8; 600];
        for j in 0..3 {
            h.row_bytes(&xb[2 * j..], &mut ob[2 * j..], 100, 3);
            let col: Vec<u16> = (0..100).map(|t| x[t * 3 + j]).collect();
            let mut o = vec![0u16; 100];
            h.row(&col, &mut o);
            for (t, c) in o.iter().enumerate() {
                let i = 2 * (t * 3 + j);
                assert_eq!(u16::from_le_bytes([ob[i], ob[i + 1]]), *c);
            }
        }
    }

    /// Outputs stay within a few codes of the exact softmax and never exceed 65535 in sum
    /// by more than rounding.
    #[test]
    fn close_to_exact() {
        let h = sm(4.1805804e-4);
        let mut state = 12345u64;
        let mut next = move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as u16
        };
        for _ in 0..200 {
            let x: Vec<u16> = (0..256).map(|_| 50000 + next() % 15000).collect();
            let mut o = vec![0u16; 256];
            h.row(&x, &mut o);
            let max = *x.iter().max().unwrap_or(&0) as f64;
            let w: Vec<f64> = x
                .iter()
                .map(|&q| ((q as f64 - max) * 4.1805804e-4).exp())
                .collect();
            let sum: f64 = w.iter().sum();
            for (c, wi) in o.iter().zip(&w) {
                assert!((*c as f64 - 65535.0 * wi / sum).abs() < 8.0);
            }
        }
    }
}
