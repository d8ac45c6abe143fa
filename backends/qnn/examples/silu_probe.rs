//! Probe: does the HTP fuse `y = x * sigmoid(x)` (the MLP's `act.sigmoid` + `act.mul`)?
//! Runs the two-op graph and the lone sigmoid in QNN's HTP emulator on every u16 code
//! and compares the graph's `y` with [`HtpMul`] applied to `x` and the lone sigmoid's
//! codes: a mismatch means the emulator does not compute the product from the
//! sigmoid's requantized codes.
//!
//! `cargo run -p mllm-backend-qnn --release --example silu_probe` (encodings: `SA,OA`
//! input, `SM,OM` product; defaults: the tiny model's layer-0 MLP).

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

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let lib = QnnLibrary::load(None)?;
    let (sa, oa) = (env("SA", 2.195_493_8e-5f32), env("OA", -34084i32));
    let (ss, os) = (1.525_878_9e-5f32, 0i32);
    let (sm, om) = (env("SM", 1.068_567_4e-5f32), env("OM", -22493i32));
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
    return_op(&mut g, OpKind::Mul, &[a, sv], Attrs::new(), &ty(sm, om));
    let y = u16s(&emulate_function(&lib, &g, &WeightStore::new(), &[&xb], PROBE_OPTIONS)?[0]);
    let h = HtpMul::new((sa, oa), (ss, os), (sm, om)).ok_or("HtpMul domain")?;
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
