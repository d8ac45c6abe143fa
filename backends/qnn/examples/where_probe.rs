//! Probe: how does HTP's u16 `ElementWiseSelect` (our `nn.where`) requantize its two data
//! inputs into the result's encoding? One-op graphs run in QNN's HTP emulator (SoC 57,
//! FP16 precision config, O3): condition true with `a` swept over all 65,536 codes, then
//! false with `b` swept, compared with candidate formulas; mismatch counts printed.
//!
//! `cargo run -p mllm-backend-qnn --release --example where_probe`
//!
//! Environment: scales / offsets `SA,OA,SB,OB,SO,OO` (defaults: the test model's
//! attention select, `qk_scale` -> `mask_where`); `FILL=x` makes `b` a `[1,1,1,1]`
//! `builtin.constant` of real value `x` in `b`'s encoding (as the model's fill) instead of
//! a graph input; `DUMP=file` writes `branch q emulator` rows; `CAND=name DETAIL=n`
//! prints the first `n` codes a candidate gets wrong. `MODE=mulsel` / `MODE=graph`: the
//! data come from an in-graph product (see those functions).
//!
//! # Findings (QNN 2.51 x86 emulator, v75)
//!
//! Each data input is requantized on its own, in one of two ways
//! (`mllm_runtime::cpu::htp_select`, which has the derivation): straight from a graph
//! input (or with a ratio below 2^-8), a multiplier `round(f32 ratio 2^18)` with the
//! code part and an f32 offset part each rounded to eighths of a code; produced by
//! another op, a 15-bit multiplier with a rounding constant of `1/2` (+ `1/256` for
//! ratios below 1/2). Both bit-exact over every tested encoding triple; rounding the
//! exact value to nearest misses 1-11% of the codes.

use mllm_backend_qnn::emulate::{emulate_function, probe_env, return_op, PROBE_OPTIONS};
use mllm_ir::types::per_tensor;
use mllm_ir::{Attrs, ElemType, Function, OpKind, Storage, Type, WeightStore};
use mllm_qnn_sys::QnnLibrary;
use mllm_runtime::cpu::htp_ew::HtpMul;
use mllm_runtime::cpu::htp_select::HtpRescale;
use mllm_runtime::cpu::quant::HtpAdd;

/// `(scale, offset)` of a per-tensor u16 encoding.
type Enc = (f32, i32);

/// Runs `where(c, a, b)` on `[1, n]` tensors (`b` a constant of real value `fill` when
/// given) and returns the result codes.
fn emulate(
    lib: &std::sync::Arc<QnnLibrary>,
    c: &[bool],
    a: (&[u16], Enc),
    b: (&[u16], Enc),
    fill: Option<f64>,
    out: Enc,
) -> Result<Vec<u16>, Box<dyn std::error::Error>> {
    let n = c.len();
    let mut f = Function::new("sel");
    let ct = f.add_arg(Type::tensor(vec![1, n], ElemType::Bool), Some("c"));
    let at = f.add_arg(
        Type::tensor(vec![1, n], per_tensor(Storage::U16, a.1 .0, a.1 .1)),
        Some("a"),
    );
    let bt = match fill {
        Some(x) => f.builder().constant(
            vec![x],
            Type::tensor(vec![1, 1], per_tensor(Storage::U16, b.1 .0, b.1 .1)),
        ),
        None => f.add_arg(
            Type::tensor(vec![1, n], per_tensor(Storage::U16, b.1 .0, b.1 .1)),
            Some("b"),
        ),
    };
    let oty = Type::tensor(vec![1, n], per_tensor(Storage::U16, out.0, out.1));
    return_op(&mut f, OpKind::Where, &[ct, at, bt], Attrs::new(), &oty);
    let bytes = |v: &[u16]| -> Vec<u8> { v.iter().flat_map(|x| x.to_le_bytes()).collect() };
    let cb: Vec<u8> = c.iter().map(|&x| x as u8).collect();
    let (ab, bb) = (bytes(a.0), bytes(b.0));
    let mut ins: Vec<&[u8]> = vec![&cb, &ab];
    if fill.is_none() {
        ins.push(&bb);
    }
    let o = emulate_function(lib, &f, &WeightStore::new(), &ins, PROBE_OPTIONS)?.remove(0);
    Ok(o.chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect())
}

/// Candidate requantizations of one branch: code `q` of `inp` into `out`.
/// A named candidate formula: input code -> result code.
type Cand = (String, Box<dyn Fn(u16) -> i64>);

fn candidates(inp: Enc, out: Enc) -> Vec<Cand> {
    let (si, oi) = (inp.0 as f64, inp.1 as i64);
    let (so, oo) = (out.0 as f64, out.1 as i64);
    let r = si / so;
    let rf = (inp.0 / out.0) as f64;
    let mut v: Vec<Cand> = vec![
        (
            "round".into(),
            Box::new(move |q| ((q as i64 + oi) as f64 * r).round() as i64 - oo),
        ),
        (
            "round(x - o_out)".into(),
            Box::new(move |q| ((q as i64 + oi) as f64 * r - oo as f64).round() as i64),
        ),
        (
            "floor".into(),
            Box::new(move |q| ((q as i64 + oi) as f64 * r).floor() as i64 - oo),
        ),
    ];
    if let Some(h) = HtpRescale::graph_input(inp, out) {
        v.push(("htp_select".into(), Box::new(move |q| h.apply(q) as i64)));
    }
    // An add with a zero second operand (the select's other branch).
    if let Some(h) = HtpAdd::new(inp, inp, out, false) {
        v.push((
            "HtpAdd(q, -o)".into(),
            Box::new(move |q| h.apply(q, (-oi).clamp(0, 65535) as u16) as i64),
        ));
    }
    // Both parts rescaled to 1/8 code with m = round(R 2^18) and rounded separately,
    // with the input code and offset shifted by one (HtpConvert's form) or not.
    for (name, ratio) in [("f32", rf), ("f64", r)] {
        let m = (ratio * 2f64.powi(18)).round() as i64;
        let rnd = |v: i64| (v + (1 << 14)) >> 15;
        for sh in [0i64, 1] {
            v.push((
                format!("parts {name} shift{sh}"),
                Box::new(move |q| {
                    let z = rnd((q as i64 + sh) * m) + rnd((oi - sh) * m);
                    ((z + 4) >> 3) - oo
                }),
            ));
        }
    }
    // Multiplier m = round(R 2^s) for a range of shifts, rounding constant 2^(s-1).
    for s in [14, 15, 16, 20, 24, 31] {
        let m = (rf * 2f64.powi(s)).round() as i64;
        v.push((
            format!("mul s{s}"),
            Box::new(move |q| (((q as i64 + oi) * m + (1 << (s - 1))) >> s) - oo),
        ));
    }
    v
}

fn report(name: &str, inp: Enc, out: Enc, y: &[u16]) {
    println!(
        "{name}: ({:e}, {}) -> ({:e}, {})",
        inp.0, inp.1, out.0, out.1
    );
    let mut hist = [0usize; 8];
    let r = inp.0 as f64 / out.0 as f64;
    for (q, e) in y.iter().enumerate() {
        let x = (q as f64 + inp.1 as f64) * r - out.1 as f64;
        if (0.0..65535.0).contains(&x) {
            hist[((*e as f64 - x + 1.0) * 4.0).floor().clamp(0.0, 7.0) as usize] += 1;
        }
    }
    println!("  emu - exact, by 1/4 from -1: {hist:?}");
    for (cname, f) in candidates(inp, out) {
        let bad: Vec<usize> = (0..y.len())
            .filter(|&q| f(q as u16).clamp(0, 65535) != y[q] as i64)
            .collect();
        println!("  {cname}: {} mismatches of {}", bad.len(), y.len());
        if std::env::var("CAND").is_ok_and(|c| cname == c) {
            for &q in bad.iter().take(probe_env("DETAIL", 20usize)) {
                let x = (q as f64 + inp.1 as f64) * r - out.1 as f64;
                println!("    q {q}: exact {x:.5} emu {} cand {}", y[q], f(q as u16));
            }
        }
    }
}

/// `MODE=mulsel`: `where(c, x * k, fill)` with `x` (`SX,OX`) swept over all codes and the
/// condition all true, `k` a constant of real value `KV` in (`SK,OK`), the product in
/// (`SA,OA`), the fill a constant in (`SB,OB`) and the result in (`SO,OO`); `BOTH=1`
/// also returns the product. Prints the candidates' mismatch counts.
fn mulsel(
    lib: &std::sync::Arc<QnnLibrary>,
    a: Enc,
    b: Enc,
    o: Enc,
) -> Result<(), Box<dyn std::error::Error>> {
    let xe = (
        probe_env("SX", 4.388_567_5e-4f32),
        probe_env("OX", -32624i32),
    );
    let ke = (probe_env("SK", 3.814_755_5e-6f32), probe_env("OK", 0i32));
    let kv = probe_env("KV", 0.25f64);
    let both = probe_env("BOTH", 0u8) == 1;
    let n = 65536;
    let u16t = |e: Enc| Type::tensor(vec![1, n], per_tensor(Storage::U16, e.0, e.1));
    let mut f = Function::new("mulsel");
    let ct = f.add_arg(Type::tensor(vec![1, n], ElemType::Bool), Some("c"));
    let xt = f.add_arg(u16t(xe), Some("x"));
    let (y, w) = {
        let mut bld = f.builder();
        let k = bld.constant(
            vec![kv],
            Type::tensor(vec![1], per_tensor(Storage::U16, ke.0, ke.1)),
        );
        let fill = bld.constant(
            vec![-1e9],
            Type::tensor(vec![1, 1], per_tensor(Storage::U16, b.0, b.1)),
        );
        let mo = bld.op_typed(OpKind::Mul, &[xt, k], Attrs::new(), &[u16t(a)]);
        let y = bld.func.op(mo).results[0];
        let wo = bld.op_typed(OpKind::Where, &[ct, y, fill], Attrs::new(), &[u16t(o)]);
        let w = bld.func.op(wo).results[0];
        (y, w)
    };
    if both {
        f.builder().ret(&[w, y]);
        f.result_names = vec![Some("w".into()), Some("y".into())];
    } else {
        f.builder().ret(&[w]);
        f.result_names = vec![Some("w".into())];
    }
    let c = vec![1u8; n];
    let x: Vec<u8> = (0..=65535u16).flat_map(|v| v.to_le_bytes()).collect();
    let outs = emulate_function(lib, &f, &WeightStore::new(), &[&c, &x], PROBE_OPTIONS)?;
    let codes = |b: &[u8]| -> Vec<u16> {
        b.chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect()
    };
    let w = codes(&outs[0]);
    // The constant's code as the lowering stores it.
    let kq = ((kv / ke.0 as f64).round() as i64 - ke.1 as i64).clamp(0, 65535) as u16;
    let mul = HtpMul::new(xe, ke, a).ok_or("mul outside HtpMul's domain")?;
    let sel = HtpRescale::native(a, o).ok_or("select outside the domain")?;
    let y_model: Vec<u16> = (0..=65535u16).map(|q| mul.apply(q, kq)).collect();
    if both {
        let y = codes(&outs[1]);
        let bad = y.iter().zip(&y_model).filter(|(p, q)| p != q).count();
        println!("product: HtpMul {bad} mismatches of {n}");
    }
    let mut cands: Vec<(String, Vec<u16>)> = vec![(
        "HtpRescale(HtpMul(x))".into(),
        y_model.iter().map(|&q| sel.apply(q)).collect(),
    )];
    if let Some(direct) = HtpMul::new(xe, ke, o) {
        cands.push((
            "HtpMul into the result".into(),
            (0..=65535u16).map(|q| direct.apply(q, kq)).collect(),
        ));
    }
    let r = xe.0 as f64 * (kq as f64 + ke.1 as f64) * ke.0 as f64 / o.0 as f64;
    cands.push((
        "round(exact x k)".into(),
        (0..=65535u16)
            .map(|q| {
                (((q as f64 + xe.1 as f64) * r).round() - o.1 as f64).clamp(0.0, 65535.0) as u16
            })
            .collect(),
    ));
    for (name, v) in &cands {
        let bad: Vec<usize> = (0..n).filter(|&i| v[i] != w[i]).collect();
        println!("{name}: {} mismatches of {n}", bad.len());
        for &i in bad.iter().take(probe_env("DETAIL", 0usize)) {
            println!(
                "    x {i}: emu {} cand {} (exact {:.4})",
                w[i],
                v[i],
                (i as f64 + xe.1 as f64) * r - o.1 as f64
            );
        }
    }
    if let Ok(path) = std::env::var("DUMP") {
        let t: String = (0..n)
            .map(|i| format!("x {i} {}\ny {} {}\n", w[i], y_model[i], w[i]))
            .collect();
        std::fs::write(path, t)?;
    }
    Ok(())
}

/// `MODE=graph`: `where(c, a', b')` where `a'` is the graph input `a` (`SA,OA`, swept
/// over all codes) or, with `AOP=1`, `a * k` (`k` = 0.25 in (0.25 / 65535, 0), the product
/// in `SA,OA`, `a` in (`4 SA`, `OA`)); likewise `b'` (`BOP=1`, `b` swept in reverse); a
/// random condition. Writes `a q y` / `b q y` rows (the branch's input code to the
/// select, HtpMul-modelled for products, and the result) to `DUMP`.
fn graph(
    lib: &std::sync::Arc<QnnLibrary>,
    a: Enc,
    b: Enc,
    o: Enc,
) -> Result<(), Box<dyn std::error::Error>> {
    let n = 65536;
    let u16t = |e: Enc| Type::tensor(vec![1, n], per_tensor(Storage::U16, e.0, e.1));
    let ke = (0.25f32 / 65535.0, 0);
    let mut f = Function::new("graph");
    let ct = f.add_arg(Type::tensor(vec![1, n], ElemType::Bool), Some("c"));
    let mut models = Vec::new();
    let mut vals = Vec::new();
    for (i, (e, op)) in [(a, probe_env("AOP", 0u8)), (b, probe_env("BOP", 0u8))]
        .into_iter()
        .enumerate()
    {
        let xe = if op == 1 { (4.0 * e.0, e.1) } else { e };
        let x = f.add_arg(u16t(xe), Some(if i == 0 { "a" } else { "b" }));
        if op == 1 {
            let mut bld = f.builder();
            let k = bld.constant(
                vec![0.25],
                Type::tensor(vec![1], per_tensor(Storage::U16, ke.0, ke.1)),
            );
            let mo = bld.op_typed(OpKind::Mul, &[x, k], Attrs::new(), &[u16t(e)]);
            vals.push(bld.func.op(mo).results[0]);
            models.push(Some(HtpMul::new(xe, ke, e).ok_or("mul domain")?));
        } else {
            vals.push(x);
            models.push(None);
        }
    }
    let w = {
        let mut bld = f.builder();
        let wo = bld.op_typed(
            OpKind::Where,
            &[ct, vals[0], vals[1]],
            Attrs::new(),
            &[u16t(o)],
        );
        bld.func.op(wo).results[0]
    };
    f.builder().ret(&[w]);
    f.result_names = vec![Some("w".into())];
    let mut st = 99u64;
    let c: Vec<u8> = (0..n)
        .map(|_| {
            st ^= st << 13;
            st ^= st >> 7;
            st ^= st << 17;
            (st & 1) as u8
        })
        .collect();
    let xa: Vec<u16> = (0..=65535u16).collect();
    let xb: Vec<u16> = (0..=65535u16).rev().collect();
    let bytes = |v: &[u16]| -> Vec<u8> { v.iter().flat_map(|x| x.to_le_bytes()).collect() };
    let (ab, bb) = (bytes(&xa), bytes(&xb));
    let out =
        emulate_function(lib, &f, &WeightStore::new(), &[&c, &ab, &bb], PROBE_OPTIONS)?.remove(0);
    let mut t = String::new();
    for i in 0..n {
        let (br, x, m) = if c[i] == 1 {
            ("a", xa[i], models[0])
        } else {
            ("b", xb[i], models[1])
        };
        let q = m.map_or(x, |m| m.apply(x, 65535));
        let y = u16::from_le_bytes([out[2 * i], out[2 * i + 1]]);
        t.push_str(&format!("{br} {q} {y}\n"));
    }
    std::fs::write(
        std::env::var("DUMP").unwrap_or_else(|_| "where_graph.txt".into()),
        t,
    )?;
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let lib = QnnLibrary::load(None)?;
    let a = (
        probe_env("SA", 1.097_141_9e-4f32),
        probe_env("OA", -32624i32),
    );
    let b = (
        probe_env("SB", 4.148_946_3e-4f32),
        probe_env("OB", -56832i32),
    );
    let o = (
        probe_env("SO", 4.148_946_3e-4f32),
        probe_env("OO", -56832i32),
    );
    if std::env::var("MODE").is_ok_and(|m| m == "mulsel") {
        return mulsel(&lib, a, b, o);
    }
    if std::env::var("MODE").is_ok_and(|m| m == "graph") {
        return graph(&lib, a, b, o);
    }
    let fill: Option<f64> = std::env::var("FILL").ok().and_then(|v| v.parse().ok());
    let all: Vec<u16> = (0..=65535u16).collect();
    let mut st = probe_env("SEED", 7u64) | 1;
    let other: Vec<u16> = (0..65536)
        .map(|_| {
            st ^= st << 13;
            st ^= st >> 7;
            st ^= st << 17;
            (st % 65536) as u16
        })
        .collect();
    // Condition true: `a` swept; false: `b` swept.
    let ya = emulate(&lib, &[true; 65536], (&all, a), (&other, b), fill, o)?;
    report("a (condition true)", a, o, &ya);
    let yb = emulate(&lib, &[false; 65536], (&other, a), (&all, b), fill, o)?;
    if let Some(x) = fill {
        let mut seen: Vec<u16> = yb.clone();
        seen.sort_unstable();
        seen.dedup();
        println!("b = constant {x}: output codes {seen:?}");
    } else {
        report("b (condition false)", b, o, &yb);
    }
    if let Ok(path) = std::env::var("DUMP") {
        let mut t = String::new();
        for (q, y) in ya.iter().enumerate() {
            t.push_str(&format!("a {q} {y}\n"));
        }
        if fill.is_none() {
            for (q, y) in yb.iter().enumerate() {
                t.push_str(&format!("b {q} {y}\n"));
            }
        }
        std::fs::write(path, t)?;
    }
    Ok(())
}
