//! Probe: how does HTP's `Convert` (our `quant.requantize`, e.g. a new u16 key / value
//! into the u8 KV cache) round a u16 -> u8 requantization? Builds one-op graphs
//! u16 `(s_in, o_in)` -> u8 `(s_out, o_out)`, feeds all 65,536 input codes to QNN's HTP
//! emulator (SoC 57, FP16 precision config, O3) and counts, for every candidate
//! formula, the codes where it disagrees with the emulator (best 25 printed).
//!
//! `cargo run -p mllm-backend-qnn --release --example requant_probe`
//!
//! Environment: `N=` random KV-like pairs (default 8: u16 range `[lo, hi]`, u8 scale
//! `absmax / 127.5`, every other one times a random factor 0.5..2);
//! `PAIRS="s_in,o_in,s_out[,o_out];..."` explicit pairs (o_out default -128);
//! `BOUNDS=1` prints every input code where the emulator's output steps up (to fit a
//! model `out = floor(q * R' + K)`); `CAND=<name substring>` prints the first
//! mismatches of a candidate; `DETAIL=1` those of the exact formula; `TOP=n` prints the
//! best `n` candidates; `OUT16=1` makes the output u16 (u16 -> u16 `Convert`, as for
//! concat inputs with another encoding) and only counts the codes that differ from
//! rounding to nearest (`DUMP=dir` writes the emulator's outputs there).
//!
//! # Findings (QNN 2.51 x86 emulator, v75)
//!
//! On the 8 default pairs (524,288 codes): rounding the exact `(q + o_in) * s_in / s_out`
//! to nearest (any tie rule, in f64 or f32) misses 2,325 codes (0.44%: the codes within
//! ~0.01 output LSB of a tie); in f16 6,910 or more; a normalized fixed-point multiplier
//! with 8..32 significant bits, offset folded before or after the product, at best 2,099
//! (14 bits). Fitting the
//! step positions (`BOUNDS=1`) pins the slope to exactly `m / 2^22` with
//! `m = round(R * 2^22)` (`R = s_in / s_out`; not normalized: R = 0.0015 gives
//! m = 6291, 13 bits) and the intercept to a 1/128-LSB grid. The formula that matches
//! every code (**0 mismatches**) for all tested pairs with `R < 1/16` (about 120 pairs:
//! the random KV-like ones, `o_in` 0..-65535, `s_out` 0.01..0.2 with `s_in = 3e-4`,
//! `o_out` -128, -100, -60, -1, 0, -200), candidate "htp model C":
//!
//! - `f` = the largest of 7, 6, ... with `m = round(R * 2^(15 + f)) < 2^14`
//!   (the HTP works in units of `2^-f` output codes; KV requantizations, where
//!   `R <= 255 / 65535 < 2^-8`, always have `f = 7`);
//! - `rnd(v) = floor((v + 2^14) / 2^15)`;
//!   `z = rnd((q + 1) * m) + rnd((o_in - 1) * m) - o_out * 2^f`;
//! - `out = clamp(floor((z + 2^(f-1)) / 2^f), 0, 255)`.
//!
//! (The `q + 1` / `o_in - 1` split is what the data says: with `q` / `o_in`, or with the
//! input offset in the same product, ties at e.g. `o_in = -13, s_in = 3e-4, s_out = 0.12`
//! come out wrong.) Implemented as `mllm_runtime::cpu::quant::HtpConvert`, used by the
//! CPU reference for u16 -> u8 `quant.requantize` under `Rounding::Htp`; checked by
//! `tests/ops.rs::requantize_u16_to_u8_htp_bit_exact`. Not matched: `R >= 1/16`
//! (`f <= 2`, e.g. `R = 0.097`: some codes one off near the bottom of the range; `R = 1.5`:
//! mostly off); u8 -> u8 converts were not probed.
//!
//! u16 -> u16 (`OUT16=1`, R near 1): 2,103-7,236 of the 65,536 codes (3-11%) come out one
//! code above rounding to nearest (`PAIRS="3e-5,-30000,3.1e-5,-32000;3e-5,-30000,2.9e-5,-33000;1e-4,-34181,1.03e-4,-32768"`;
//! 0 for `1e-4,-30000,0.95e-4,-31000`), with errors up to ~0.15 output codes growing with
//! |x|; for two of three pairs no straight line `floor(q * R' + K)` fits (relative slope
//! error within 4e-5), so it is not the same fixed-point scheme: the excess over the
//! exact value is a staircase in `q` with steps of `|1 - R|` every ~33k codes (R 0.968:
//! +0.05..0.08 at low q, +0.08..0.11 from q ~ 10k, +0.11..0.15 from q ~ 43k; R 1.034:
//! +0.15..0.19 falling by 0.034 per step). Not modeled (the reference still rounds
//! u16 -> u16 to nearest).

use half::f16;
use mllm_backend_qnn::emulate::{emulate_function, return_op, PROBE_OPTIONS};
use mllm_ir::types::per_tensor;
use mllm_ir::{Attrs, Function, OpKind, Storage, Type, WeightStore};
use mllm_qnn_sys::QnnLibrary;

/// One scale pair: u16 input `(scale, offset)`, u8 output scale (offset -128).
#[derive(Clone, Copy, Debug)]
struct Pair {
    s_in: f32,
    o_in: i32,
    s_out: f32,
    o_out: i32,
}

fn emulate(
    lib: &std::sync::Arc<QnnLibrary>,
    p: Pair,
) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    let ity = Type::tensor(vec![256, 256], per_tensor(Storage::U16, p.s_in, p.o_in));
    let ost = if std::env::var_os("OUT16").is_some() {
        Storage::U16
    } else {
        Storage::U8
    };
    let oty = Type::tensor(vec![256, 256], per_tensor(ost, p.s_out, p.o_out));
    let mut f = Function::new("rq");
    let x = f.add_arg(ity, Some("x"));
    return_op(&mut f, OpKind::Requantize, &[x], Attrs::new(), &oty);
    let input: Vec<u8> = (0..=65535u16).flat_map(|c| c.to_le_bytes()).collect();
    let out = emulate_function(lib, &f, &WeightStore::new(), &[&input], PROBE_OPTIONS)?.remove(0);
    Ok(out)
}

fn clamp8(v: i64) -> u8 {
    v.clamp(0, 255) as u8
}

/// A candidate formula: name and code for (pair, input code).
type Cand = (String, Box<dyn Fn(Pair, i64) -> u8>);

fn round_mode(x: f64, mode: u8) -> f64 {
    match mode {
        0 => x.round(),
        1 => x.round_ties_even(),
        2 => (x + 0.5).floor(),
        _ => (x - 0.5).ceil(),
    }
}

fn candidates() -> Vec<Cand> {
    let mut c: Vec<Cand> = Vec::new();
    let modes = ["away", "even", "up", "down"];
    for (m, name) in modes.iter().enumerate() {
        let m = m as u8;
        c.push((
            format!("exact f64 {name}"),
            Box::new(move |p, q| {
                let x = (q + p.o_in as i64) as f64 * p.s_in as f64 / p.s_out as f64;
                clamp8(round_mode(x, m) as i64 + 128)
            }),
        ));
        c.push((
            format!("f32 deq/div {name}"),
            Box::new(move |p, q| {
                let r = (q + p.o_in as i64) as f32 * p.s_in;
                clamp8(round_mode((r / p.s_out) as f64, m) as i64 + 128)
            }),
        ));
        c.push((
            format!("f32 q*ratio {name}"),
            Box::new(move |p, q| {
                let ratio = p.s_in / p.s_out;
                clamp8(round_mode(((q + p.o_in as i64) as f32 * ratio) as f64, m) as i64 + 128)
            }),
        ));
        c.push((
            format!("f32 q*ratio+bias {name}"),
            Box::new(move |p, q| {
                let ratio = p.s_in / p.s_out;
                let bias = p.o_in as f32 * ratio + 128.0;
                clamp8(round_mode((q as f32 * ratio + bias) as f64, m) as i64)
            }),
        ));
        c.push((
            format!("f16 deq/div {name}"),
            Box::new(move |p, q| {
                let r = f16::from_f32((q + p.o_in as i64) as f32 * p.s_in);
                let x = f16::from_f32(r.to_f32() / p.s_out);
                clamp8(round_mode(x.to_f64(), m) as i64 + 128)
            }),
        ));
        c.push((
            format!("f16 q*ratio {name}"),
            Box::new(move |p, q| {
                let ratio = f16::from_f32(p.s_in / p.s_out);
                let x = f16::from_f32((q + p.o_in as i64) as f32 * ratio.to_f32());
                clamp8(round_mode(x.to_f64(), m) as i64 + 128)
            }),
        ));
    }
    c.push((
        "htp model (m=round(R*2^22), bias floor((2o+1)m/2^16))".into(),
        Box::new(|p, q| {
            let r = p.s_in as f64 / p.s_out as f64;
            let m = (r * 4194304.0).round() as i64;
            let zb = ((2 * p.o_in as i64 + 1) * m).div_euclid(1 << 16);
            let acc = (q + 1) * m + (1 << 14) + (zb + 16448) * (1 << 15);
            clamp8(acc.div_euclid(1 << 22))
        }),
    ));
    c.push((
        "htp model (m=round(R*2^22), bias floor((o+.5)R*128))".into(),
        Box::new(|p, q| {
            let r = p.s_in as f64 / p.s_out as f64;
            let m = (r * 4194304.0).round() as i64;
            let zb = ((p.o_in as f64 + 0.5) * r * 128.0).floor() as i64;
            let acc = (q + 1) * m + (1 << 14) + (zb + 16448) * (1 << 15);
            clamp8(acc.div_euclid(1 << 22))
        }),
    ));
    c.push((
        "htp model B (m=round(R*2^22), bias round((o-1)m/2^15))".into(),
        Box::new(|p, q| {
            let r = p.s_in as f64 / p.s_out as f64;
            let m = (r * 4194304.0).round() as i64;
            let zb = ((p.o_in as i64 - 1) * m + (1 << 14)).div_euclid(1 << 15);
            let acc = (q + 1) * m + (1 << 14) + (zb + 16448) * (1 << 15);
            clamp8(acc.div_euclid(1 << 22))
        }),
    ));
    c.push((
        "htp model B (m=round(R*2^22), bias round((o-1)R*128))".into(),
        Box::new(|p, q| {
            let r = p.s_in as f64 / p.s_out as f64;
            let m = (r * 4194304.0).round() as i64;
            let zb = ((p.o_in as f64 - 1.0) * r * 128.0 + 0.5).floor() as i64;
            let acc = (q + 1) * m + (1 << 14) + (zb + 16448) * (1 << 15);
            clamp8(acc.div_euclid(1 << 22))
        }),
    ));
    c.push((
        "htp model C (f frac bits, m=round(R*2^(15+f)) < 2^14)".into(),
        Box::new(|p, q| {
            let r = p.s_in as f64 / p.s_out as f64;
            let mut f = 7;
            let mut m = (r * 2f64.powi(15 + f)).round() as i64;
            while m >= 1 << 14 && f > 0 {
                f -= 1;
                m = (r * 2f64.powi(15 + f)).round() as i64;
            }
            let rnd = |v: i64| (v + (1 << 14)).div_euclid(1 << 15);
            let z = rnd((q + 1) * m) + rnd((p.o_in as i64 - 1) * m) - (p.o_out as i64) * (1 << f);
            clamp8((z + (1 << f >> 1)).div_euclid(1 << f))
        }),
    ));
    // Fixed-point multiplier with `bits` significant bits and a rounding right shift.
    for bits in 8..=32u32 {
        for (m, name) in modes.iter().enumerate() {
            let m = m as u8;
            c.push((
                format!("fixed {bits}b {name}"),
                Box::new(move |p, q| {
                    let ratio = p.s_in as f64 / p.s_out as f64;
                    let e = ratio.log2().floor() as i32;
                    let sh = bits as i32 - 1 - e;
                    let mult = (ratio * 2f64.powi(sh)).round();
                    let x = (q + p.o_in as i64) as f64 * mult / 2f64.powi(sh);
                    clamp8(round_mode(x, m) as i64 + 128)
                }),
            ));
            c.push((
                format!("fixed {bits}b q*m+bias {name}"),
                Box::new(move |p, q| {
                    let ratio = p.s_in as f64 / p.s_out as f64;
                    let e = ratio.log2().floor() as i32;
                    let sh = bits as i32 - 1 - e;
                    let mult = (ratio * 2f64.powi(sh)).round();
                    let bias = ((p.o_in as f64 * ratio + 128.0) * 2f64.powi(sh)).round();
                    let x = (q as f64 * mult + bias) / 2f64.powi(sh);
                    clamp8(round_mode(x, m) as i64)
                }),
            ));
        }
    }
    c
}

fn pairs() -> Vec<Pair> {
    // Realistic KV-like pairs: a u16 range [lo, hi] and the u8 symmetric scale
    // absmax / 127.5, plus the u8 scale times a few factors.
    let mut v = Vec::new();
    let mut s: u64 = 0x1234_5678_9abc_def1;
    let mut rnd = || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 11) as f64 / (1u64 << 53) as f64
    };
    if let Ok(spec) = std::env::var("PAIRS") {
        return spec
            .split(';')
            .filter_map(|t| {
                let f: Vec<&str> = t.split(',').collect();
                Some(Pair {
                    s_in: f.first()?.trim().parse().ok()?,
                    o_in: f.get(1)?.trim().parse().ok()?,
                    s_out: f.get(2)?.trim().parse().ok()?,
                    o_out: f.get(3).and_then(|v| v.trim().parse().ok()).unwrap_or(-128),
                })
            })
            .collect();
    }
    let n: usize = std::env::var("N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    for i in 0..n {
        let lo = -(0.5 + 20.0 * rnd());
        let hi = 0.5 + 20.0 * rnd();
        let s_in = ((hi - lo) / 65535.0) as f32;
        let o_in = (lo / s_in as f64).round() as i32;
        let absmax = lo.abs().max(hi);
        let fac = if i % 2 == 0 { 1.0 } else { 0.5 + 1.5 * rnd() };
        let s_out = (absmax / 127.5 * fac) as f32;
        v.push(Pair {
            s_in,
            o_in,
            s_out,
            o_out: -128,
        });
    }
    v
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let lib = QnnLibrary::load(None)?;
    let ps = pairs();
    let mut outs = Vec::new();
    for p in &ps {
        let o = emulate(&lib, *p)?;
        outs.push(o);
    }
    if std::env::var_os("OUT16").is_some() {
        // u16 -> u16: only compare with rounding the exact value to nearest.
        for (i, (p, o)) in ps.iter().zip(&outs).enumerate() {
            if let Ok(dir) = std::env::var("DUMP") {
                std::fs::write(format!("{dir}/out{i}.bin"), o)?;
            }
            let r = p.s_in as f64 / p.s_out as f64;
            let mut n = 0;
            for q in 0..65536i64 {
                let got = u16::from_le_bytes([o[2 * q as usize], o[2 * q as usize + 1]]) as i64;
                let x = (q + p.o_in as i64) as f64 * r;
                let want = (x.round() as i64 - p.o_out as i64).clamp(0, 65535);
                if got != want {
                    if n < 4 {
                        println!("  q {q} x {x:.5} nearest {want} htp {got}");
                    }
                    n += 1;
                }
            }
            println!("u16 -> u16 {p:?} R {r:.6}: {n} codes differ from rounding to nearest");
        }
        return Ok(());
    }
    let cands = candidates();
    let mut results: Vec<(usize, String)> = Vec::new();
    for (name, f) in &cands {
        let mut mism = 0usize;
        for (p, o) in ps.iter().zip(&outs) {
            for q in 0..65536i64 {
                if f(*p, q) != o[q as usize] {
                    mism += 1;
                }
            }
        }
        results.push((mism, name.clone()));
    }
    results.sort();
    for (m, n) in results.iter().take(
        std::env::var("TOP")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(25),
    ) {
        println!("{m:8}  {n}");
    }
    if std::env::var("BOUNDS").is_ok() {
        for (p, o) in ps.iter().zip(&outs) {
            let ratio = p.s_in as f64 / p.s_out as f64;
            println!("pair {p:?} ratio {ratio:.9e}");
            let x = |q: i64| (q + p.o_in as i64) as f64 * ratio;
            for q in 1..65536i64 {
                let (a, b) = (o[q as usize - 1], o[q as usize]);
                if b > a {
                    let bd = b as f64 - 128.5;
                    // err in [bd - x(q), bd - x(q-1))
                    println!(
                        "  code {b} q {q} err [{:+.6}, {:+.6})",
                        bd - x(q),
                        bd - x(q - 1)
                    );
                }
            }
        }
    }
    if let Ok(ci) = std::env::var("CAND") {
        let ci = cands.iter().position(|c| c.0.contains(&ci)).unwrap_or(0);
        let f = &cands[ci].1;
        println!("mismatches of {}", cands[ci].0);
        for (p, o) in ps.iter().zip(&outs) {
            let mut shown = 0;
            for q in 0..65536i64 {
                let c = f(*p, q);
                if c != o[q as usize] && shown < 4 {
                    shown += 1;
                    println!("  {p:?} q {q} model {c} htp {}", o[q as usize]);
                }
            }
        }
    }
    // Details of the mismatches of the exact formula.
    if std::env::var("DETAIL").is_ok() {
        for (p, o) in ps.iter().zip(&outs) {
            println!("pair {p:?} ratio {:.9e}", p.s_in as f64 / p.s_out as f64);
            let mut shown = 0;
            for q in 0..65536i64 {
                let x = (q + p.o_in as i64) as f64 * p.s_in as f64 / p.s_out as f64;
                let e = clamp8(x.round() as i64 + 128);
                if e != o[q as usize] && shown < 12 {
                    shown += 1;
                    println!("  q {q} x {x:.6} exact {e} htp {}", o[q as usize]);
                }
            }
        }
    }
    Ok(())
}
