//! Probe: how does the HTP compute `y = x * sigmoid(x)` (the MLP's `act.sigmoid` +
//! `act.mul`, which it fuses)? Runs the two-op graph and the lone sigmoid in QNN's HTP
//! emulator on every u16 code and compares the graph's `y` with [`HtpMul`] applied to
//! `x` and the lone sigmoid's codes (plain and [`HtpMul::fused_with_sigmoid`]), and
//! prints the feasible range of the fused op's rounding constant.
//!
//! `cargo run -p mllm-backend-qnn --release --example silu_probe` (encodings: `SA,OA`
//! input, `SM,OM` product; defaults: the tiny model's layer-0 MLP; `DETAIL=n` lists
//! mismatches, `DUMP=file` writes `x sigmoid 0 y` rows). `CASES="sa,oa,sm,om;..."`
//! prints one line per encoding: the fused model's mismatches, those of the earlier
//! model (plain constant + 1/16 code) and the feasible constant `C` (at scale 2^35)
//! minus the plain one and 2^31, in units of `2m`. `SWAP=1` builds `sigmoid(x) * x`.
//!
//! # Findings (QNN 2.51 x86 emulator, v75)
//!
//! The graph's codes are not the plain product of `x` and the lone sigmoid's codes
//! (3-7% one code higher) but are of the form `floor((2m P + C) / 2^35) - o_out` with
//! the plain `m` (the feasible slope is `2m` to 0.004 units) and a constant `C` per
//! encoding: `C` = plain + 2^31 + `2m δ`, `δ = r8(d_a) - d_a` with `d_a` rounded to 8
//! significant bits, ties to even (`htp_ew` docs): 0 mismatches for 49 encodings
//! (input offsets -65535..0, scales 7e-6..1.3e-4, both operand orders for three) and
//! 80 of sweeps over `d_a`; the constant with 1/16 alone misses 0-82 codes. A graph
//! `x2 * sigmoid(x1)` with `x2 = x1` passed as a second input is not fused (the plain
//! product, 0 mismatches).

use mllm_backend_qnn::emulate::{emulate_function, return_op, PROBE_OPTIONS};
use mllm_ir::types::per_tensor;
use mllm_ir::{Attrs, Function, OpKind, Storage, Type, WeightStore};
use mllm_qnn_sys::QnnLibrary;
use mllm_runtime::cpu::htp_ew::HtpMul;

fn env<T: std::str::FromStr>(k: &str, d: T) -> T {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

fn u16s(b: &[u8]) -> Vec<u16> {
    b.chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect()
}

/// The feasible range `[lo, hi)` of the rounding constant `C` (at scale 2^35) for which
/// `floor((2m P + C) / 2^35) - o_m` gives every unclamped code `y` of the fused graph,
/// `P = (x + o_a) s` the product of the input and the lone sigmoid's codes.
fn constant_range(m2: i64, oa: i32, om: i32, x: &[u16], s: &[u16], y: &[u16]) -> (i128, i128) {
    let (mut lo, mut hi) = (i128::MIN, i128::MAX);
    for i in 0..x.len() {
        if y[i] == 0 || y[i] == 65535 {
            continue;
        }
        let p = (x[i] as i128 + oa as i128) * s[i] as i128;
        let t = y[i] as i128 + om as i128;
        lo = lo.max((t << 35) - p * m2 as i128);
        hi = hi.min(((t + 1) << 35) - p * m2 as i128);
    }
    (lo, hi)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let lib = QnnLibrary::load(None)?;
    match std::env::var("CASES") {
        Ok(list) => {
            for c in list.split(';') {
                let v: Vec<f64> = c.split(',').filter_map(|t| t.trim().parse().ok()).collect();
                if let [sa, oa, sm, om] = v[..] {
                    run_case(&lib, sa as f32, oa as i32, sm as f32, om as i32, true)?;
                }
            }
            Ok(())
        }
        Err(_) => run_case(
            &lib,
            env("SA", 2.195_493_8e-5f32),
            env("OA", -34084i32),
            env("SM", 1.068_567_4e-5f32),
            env("OM", -22493i32),
            false,
        ),
    }
}

/// Runs the graphs for input `(sa, oa)` and product `(sm, om)`; `brief`: one line.
fn run_case(
    lib: &std::sync::Arc<QnnLibrary>,
    sa: f32,
    oa: i32,
    sm: f32,
    om: i32,
    brief: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let lib = lib.clone();
    let (ss, os) = (1.525_878_9e-5f32, 0i32);
    let n = 65536usize;
    let x: Vec<u16> = (0..=65535u16).collect();
    let xb: Vec<u8> = x.iter().flat_map(|v| v.to_le_bytes()).collect();
    let ty = |s, o| Type::tensor(vec![1, n], per_tensor(Storage::U16, s, o));
    // The lone sigmoid.
    let mut f = Function::new("sig");
    let a = f.add_arg(ty(sa, oa), Some("x"));
    return_op(&mut f, OpKind::Sigmoid, &[a], Attrs::new(), &ty(ss, os));
    let s = u16s(&emulate_function(&lib, &f, &WeightStore::new(), &[&xb], PROBE_OPTIONS)?[0]);
    // sigmoid then mul.
    let mut g = Function::new("silu");
    let a = g.add_arg(ty(sa, oa), Some("x"));
    let sv = {
        let mut b = g.builder();
        let id = b.op_typed(OpKind::Sigmoid, &[a], Attrs::new(), &[ty(ss, os)]);
        b.func.op(id).results[0]
    };
    // `SWAP=1`: sigmoid(x) * x.
    let ops = if env("SWAP", 0u8) == 1 {
        [sv, a]
    } else {
        [a, sv]
    };
    return_op(&mut g, OpKind::Mul, &ops, Attrs::new(), &ty(sm, om));
    let y = u16s(&emulate_function(&lib, &g, &WeightStore::new(), &[&xb], PROBE_OPTIONS)?[0]);
    let h = HtpMul::new((sa, oa), (ss, os), (sm, om)).ok_or("HtpMul domain")?;
    // The plain product's constant and multiplier, recomputed here (htp_ew docs).
    let r = (sa * ss) / sm;
    let m = (r as f64 * 2f64.powi(34)).round_ties_even() as i64;
    let da = oa as i64 + 32768;
    let e = da + 32768 - 2 * da * 32768;
    let k_plain = (1i128 << 34) + (e.wrapping_mul(2 * m) as i32) as i128;
    let (lo, hi) = constant_range(2 * m, oa, om, &x, &s, &y);
    let extra = |c: i128| (c - k_plain - (1 << 31)) as f64 / (2 * m) as f64;
    if brief {
        let fused = (0..n)
            .filter(|&i| y[i] != h.fused_with_sigmoid().apply(x[i], s[i]))
            .count();
        // The earlier model: the plain constant plus 1/16 code.
        let c = k_plain + (1 << 31);
        let sixteenth = (0..n)
            .filter(|&i| {
                let p = (x[i] as i128 + oa as i128) * s[i] as i128;
                let v = (((p * 2 * m as i128 + c) >> 35) - om as i128).clamp(0, 65535);
                v != y[i] as i128
            })
            .count();
        println!(
            "sa {sa:e} oa {oa} sm {sm:e} om {om}: m {m} da {da} fused model {fused} off \
             (plain + 1/16: {sixteenth}); C - plain - 2^31 in [{:.3}, {:.3}) x 2m",
            extra(lo),
            extra(hi)
        );
        return Ok(());
    }
    println!(
        "feasible constant: C - plain - 2^31 in [{:.3}, {:.3}) x 2m (m = {m})",
        extra(lo),
        extra(hi)
    );
    let mut off = 0usize;
    let mut hist = std::collections::BTreeMap::new();
    for i in 0..n {
        let d = y[i] as i32 - h.apply(x[i], s[i]) as i32;
        if d != 0 {
            off += 1;
            *hist.entry(d).or_insert(0usize) += 1;
        }
    }
    println!("sigmoid+mul graph vs HtpMul(x, lone sigmoid): {off} of {n} differ {hist:?}");
    let hf = h.fused_with_sigmoid();
    let fused = (0..n).filter(|&i| y[i] != hf.apply(x[i], s[i])).count();
    println!("  vs HtpMul::fused_with_sigmoid(x, lone sigmoid): {fused} differ");
    for i in (0..n)
        .filter(|&i| y[i] != hf.apply(x[i], s[i]))
        .take(env("DETAIL", 0usize))
    {
        let v = (x[i] as f64 + oa as f64) * sa as f64;
        let e = v / (1.0 + (-v).exp()) / sm as f64 - om as f64;
        println!(
            "    x {} s {} emu {} model {} exact {e:.4} (product of the codes {:.4})",
            x[i],
            s[i],
            y[i],
            hf.apply(x[i], s[i]),
            v * s[i] as f64 * ss as f64 / sm as f64 - om as f64
        );
    }
    for d in [-2i32, -1, 1, 2] {
        let c = (0..n)
            .filter(|&i| y[i] != h.apply(x[i], (s[i] as i32 + d).clamp(0, 65535) as u16))
            .count();
        println!("  vs HtpMul(x, sigmoid code {d:+}): {c} differ");
    }
    if let Ok(d) = std::env::var("DUMP") {
        let t: String = (0..n)
            .map(|i| format!("{} {} 0 {}\n", x[i], s[i], y[i]))
            .collect();
        std::fs::write(d, t)?;
    }
    // x2 * sigmoid(x1) with x2 = x1 given as a second argument.
    let mut g2 = Function::new("gated");
    let a1 = g2.add_arg(ty(sa, oa), Some("x1"));
    let a2 = g2.add_arg(ty(sa, oa), Some("x2"));
    let sv = {
        let mut b = g2.builder();
        let id = b.op_typed(OpKind::Sigmoid, &[a1], Attrs::new(), &[ty(ss, os)]);
        b.func.op(id).results[0]
    };
    return_op(&mut g2, OpKind::Mul, &[a2, sv], Attrs::new(), &ty(sm, om));
    let y2 =
        u16s(&emulate_function(&lib, &g2, &WeightStore::new(), &[&xb, &xb], PROBE_OPTIONS)?[0]);
    let off2 = (0..n).filter(|&i| y2[i] != h.apply(x[i], s[i])).count();
    let same = (0..n).filter(|&i| y2[i] != y[i]).count();
    println!("x2 * sigmoid(x1) graph vs HtpMul: {off2} differ; vs the x * sigmoid(x) graph: {same} differ");
    // Against the exact product of x and the exact sigmoid.
    let mut hist = std::collections::BTreeMap::new();
    for i in 0..n {
        let v = (x[i] as f64 + oa as f64) * sa as f64;
        let e = (v / (1.0 + (-v).exp()) / sm as f64 - om as f64).round();
        *hist.entry((y[i] as f64 - e) as i64).or_insert(0usize) += 1;
    }
    println!("graph - round(exact silu): {hist:?}");
    Ok(())
}
