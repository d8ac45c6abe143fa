//! Probe: how do HTP's 16-bit element-wise ops round? One-op graphs on u16 inputs, run
//! in QNN's HTP emulator (SoC 57, FP16 precision config, O3), compared with candidate
//! formulas; mismatch counts printed.
//!
//! `cargo run -p mllm-backend-qnn --release --example ew_probe`
//!
//! Environment: `MODE=sigmoid` (default: every one of the 65,536 input codes) or
//! `MODE=add` / `sub` / `mul` (input `a` swept over all codes, `b` over `NB` random
//! codes); scales `SA,OA,SB,OB,SO,OO` (defaults: the tiny model's `mlp.act.sigmoid`, and
//! `rope_k.add` for add / sub / mul); `CAND=name DETAIL=n` prints the first `n` codes a
//! candidate gets wrong; `DUMP=file` writes `a b exact emulator` rows.
//!
//! # Findings (QNN 2.51 x86 emulator, v75)
//!
//! - **Add / Subtract** (u16, per-tensor): fitting the step positions for fixed `b` gives
//!   a slope of exactly `m_a / 2^16` with `m_a` even for ratios below 1, a multiple of 4
//!   between 1 and 2, ...: 16-bit multipliers on a common shift. The exact form
//!   (candidate `quant::HtpAdd`): `R_x = s_x / s_out`, `e = floor(log2 max R) + 1`,
//!   `s = min(15 - e, 16)`, `m_x = round(R_x * 2^s)`,
//!   `out = floor((m_a (q_a + o_a) +- m_b (q_b + o_b) + 2^(s-1)) / 2^s) - o_out`:
//!   0 mismatches of 524,288 pairs for every tested triple (rope, residual-like, max ratio
//!   from 0.015 to 3.3, sub) but one with a ratio within 3e-5 of 1 (14 off); rounding the
//!   exact sum to nearest misses 5-20%, flooring 20-60%. (The shift cap: with both ratios
//!   below 1/2 the shift stays 16, e.g. max ratio 0.1 matches only with `s = 16`.)
//! - **Multiply** (u16): bit-exact model `htp_ew::HtpMul` (candidate of `MODE=mul`).
//!   Fitting a line `floor(P r + c)` in the exact product `P = (q_a + o_a)(q_b + o_b)` to
//!   all 2^20 codes of one encoding triple is feasible, with `r = m / 2^34`,
//!   `m = round(R 2^34)` (ties to even) from the f32 ratio `R = f32(f32(s_a s_b) / s_out)`
//!   (the f64 ratio misses near ties of `R 2^34`), and `c` independent of the output
//!   offset; sweeping the input offsets gives `c - 1/2 = wrap32(2m E) / 2^35` with
//!   `E = d_a + d_b - 2 d_a d_b`, `d_x = o_x + 32768` (a 32-bit wrap: `c - 1/2` is that
//!   term modulo 1/8 of a code). 0 mismatches of 262,144-1,048,576 pairs for each of 16
//!   encoding triples (ratios 1e-7 to 3e-2, offsets -40000 to 0); rounding the exact
//!   product to nearest misses 0.3-5%. (The earlier "slope times 1 - 2.6e-7, offset
//!   0.522" was this: `m`'s rounding error and the offset term.) `x * sigmoid(x)` of one
//!   tensor is fused: the same arithmetic with 1/16 code more in the rounding constant
//!   (`examples/silu_probe.rs`).
//! - **Sigmoid** (u16 -> u16, output scale 2^-16): bit-exact model `htp_ew::HtpSigmoid`
//!   (candidate of `MODE=sigmoid`). The input is seen on a fixed real grid of step
//!   1/6144 whatever its scale: `k = floor(|q + o| M / 2^sh)`, `M = round(s 6144 2^sh)`
//!   with `sh = 15` (less above scale 1/6144, keeping `M < 2^15`; the step positions of
//!   16 scales from 3e-6 to 1e-4 give `M` to the integer); the output is `2 F(k)` for
//!   `q + o >= 0` and `2 (32767 - F(k))` below (`y(-x) = 65534 - y(x)` for every code),
//!   with one 15-bit `F(k)` for all scales. `F` is within 1.25 of
//!   `32768 sigmoid(k / 6144)`, but no rounding of it, no segment-wise polynomial and no
//!   Q14-Q17 `exp` + division reproduces it (the best, `floor(32768 sigmoid + d)` with
//!   `d` 0.46 / 0.2 below / above `k = 2048`, missed 15-17% of the codes by 2); it is
//!   measured for every `k` instead (`examples/sigmoid_table.rs`, which writes the
//!   runtime's table).

use mllm_backend_qnn::emulate::{emulate_function, return_op, PROBE_OPTIONS};
use mllm_ir::types::per_tensor;
use mllm_ir::{Attrs, Function, OpKind, Storage, Type, WeightStore};
use mllm_qnn_sys::QnnLibrary;
use mllm_runtime::cpu::htp_ew::{HtpMul, HtpSigmoid};
use mllm_runtime::cpu::quant::HtpAdd;

fn env<T: std::str::FromStr>(k: &str, d: T) -> T {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

/// Runs `kind` on u16 inputs `ins` (each `[n]` codes with `(scale, offset)`) into a u16
/// `(scale, offset)` result.
fn emulate(
    lib: &std::sync::Arc<QnnLibrary>,
    kind: OpKind,
    ins: &[(&[u16], f32, i32)],
    out: (f32, i32),
) -> Result<Vec<u16>, Box<dyn std::error::Error>> {
    let n = ins[0].0.len();
    let mut f = Function::new("ew");
    let args: Vec<_> = ins
        .iter()
        .enumerate()
        .map(|(i, (_, s, o))| {
            f.add_arg(
                Type::tensor(vec![1, n], per_tensor(Storage::U16, *s, *o)),
                Some(&format!("x{i}")),
            )
        })
        .collect();
    let oty = Type::tensor(vec![1, n], per_tensor(Storage::U16, out.0, out.1));
    return_op(&mut f, kind, &args, Attrs::new(), &oty);
    let bytes: Vec<Vec<u8>> = ins
        .iter()
        .map(|(c, _, _)| c.iter().flat_map(|v| v.to_le_bytes()).collect())
        .collect();
    let refs: Vec<&[u8]> = bytes.iter().map(|b| b.as_slice()).collect();
    let o = emulate_function(lib, &f, &WeightStore::new(), &refs, PROBE_OPTIONS)?.remove(0);
    Ok(o.chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect())
}

type Cand<'a> = (&'a str, Box<dyn Fn(usize) -> f64 + 'a>);

fn report(y: &[u16], exact: &[f64], cands: &[Cand<'_>]) {
    let mut hist = [0usize; 12];
    for (q, e) in y.iter().zip(exact) {
        if (0.0..65535.0).contains(e) {
            let r = *q as f64 - e;
            hist[((r + 1.5) * 4.0).floor().clamp(0.0, 11.0) as usize] += 1;
        }
    }
    println!("emu - exact, by 1/4 from -1.5: {hist:?}");
    let mut best: Option<(usize, &str)> = None;
    for (name, f) in cands {
        let mism: Vec<usize> = (0..y.len())
            .filter(|&i| f(i).clamp(0.0, 65535.0) != y[i] as f64)
            .collect();
        println!("{name}: {} mismatches of {}", mism.len(), y.len());
        if best.is_none_or(|b| mism.len() < b.0) {
            best = Some((mism.len(), name));
        }
        if std::env::var("CAND").is_ok_and(|c| name.contains(&c)) {
            for &i in mism.iter().take(env("DETAIL", 20usize)) {
                println!("  [{i}] exact {:.5} emu {} cand {}", exact[i], y[i], f(i));
            }
        }
    }
    if let Some((m, n)) = best {
        println!("best: {n} ({m})");
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let lib = QnnLibrary::load(None)?;
    let mode = std::env::var("MODE").unwrap_or_else(|_| "sigmoid".into());
    match mode.as_str() {
        "sigmoid" => {
            let (sa, oa) = (env("SA", 2.067_890_3e-5f32), env("OA", -33105i32));
            let (so, oo) = (env("SO", 1.525_878_9e-5f32), env("OO", 0i32));
            let x: Vec<u16> = (0..=65535u16).collect();
            let y = emulate(&lib, OpKind::Sigmoid, &[(&x, sa, oa)], (so, oo))?;
            let exact: Vec<f64> = x
                .iter()
                .map(|q| {
                    let v = (*q as f64 + oa as f64) * sa as f64;
                    1.0 / (1.0 + (-v).exp()) / so as f64 - oo as f64
                })
                .collect();
            let ex = &exact;
            let cands: Vec<Cand<'_>> = vec![
                ("floor", Box::new(move |i| ex[i].floor())),
                ("round", Box::new(move |i| ex[i].round())),
                ("floor - 1", Box::new(move |i| ex[i].floor() - 1.0)),
            ];
            let mut cands = cands;
            if let Some(h) = HtpSigmoid::new((sa, oa), (so, oo)) {
                cands.push((
                    "htp_ew::HtpSigmoid",
                    Box::new(move |i| h.apply(i as u16) as f64),
                ));
            }
            report(&y, &exact, &cands);
            if let Ok(d) = std::env::var("DUMP") {
                let t: String = (0..65536)
                    .map(|i| format!("{i} {} {}\n", exact[i], y[i]))
                    .collect();
                std::fs::write(d, t)?;
            }
            if env("DETAIL", 0usize) > 0 {
                for i in (0..65536).step_by(env("STEP", 4099usize)) {
                    println!("  x {i}: exact {:.4} emu {}", exact[i], y[i]);
                }
            }
        }
        _ => {
            let kind = match mode.as_str() {
                "mul" => OpKind::Mul,
                "sub" => OpKind::Sub,
                _ => OpKind::Add,
            };
            let (sa, oa) = (env("SA", 1.015_162_3e-4f32), env("OA", -32427i32));
            let (sb, ob) = (env("SB", 8.930_691_5e-5f32), env("OB", -33251i32));
            let (so, oo) = (env("SO", 1.021_815_5e-4f32), env("OO", -32641i32));
            let nb = env("NB", 16usize);
            let mut st = env("SEED", 7u64) | 1;
            let mut a = Vec::with_capacity(65536 * nb);
            let mut b = Vec::with_capacity(65536 * nb);
            for _ in 0..nb {
                st ^= st << 13;
                st ^= st >> 7;
                st ^= st << 17;
                let bv = (st % 65536) as u16;
                for q in 0..=65535u16 {
                    a.push(q);
                    b.push(bv);
                }
            }
            let y = emulate(&lib, kind, &[(&a, sa, oa), (&b, sb, ob)], (so, oo))?;
            let exact: Vec<f64> = a
                .iter()
                .zip(&b)
                .map(|(p, q)| {
                    let x = (*p as f64 + oa as f64) * sa as f64;
                    let z = (*q as f64 + ob as f64) * sb as f64;
                    let v = match kind {
                        OpKind::Mul => x * z,
                        OpKind::Sub => x - z,
                        _ => x + z,
                    };
                    v / so as f64 - oo as f64
                })
                .collect();
            let ex = &exact;
            let mut cands: Vec<Cand<'_>> = vec![
                ("floor", Box::new(move |i| ex[i].floor())),
                ("round", Box::new(move |i| ex[i].round())),
            ];
            let htp = HtpAdd::new((sa, oa), (sb, ob), (so, oo), kind == OpKind::Sub);
            if let (Some(h), true) = (htp, kind != OpKind::Mul) {
                let (a, b) = (&a, &b);
                cands.push((
                    "quant::HtpAdd",
                    Box::new(move |i| h.apply(a[i], b[i]) as f64),
                ));
            }
            let hm = HtpMul::new((sa, oa), (sb, ob), (so, oo));
            if let (Some(h), true) = (hm, kind == OpKind::Mul) {
                let (a, b) = (&a, &b);
                cands.push((
                    "htp_ew::HtpMul",
                    Box::new(move |i| h.apply(a[i], b[i]) as f64),
                ));
            }
            report(&y, &exact, &cands);
            if let Ok(d) = std::env::var("DUMP") {
                let t: String = (0..y.len())
                    .map(|i| format!("{} {} {} {}\n", a[i], b[i], exact[i], y[i]))
                    .collect();
                std::fs::write(d, t)?;
            }
        }
    }
    Ok(())
}
