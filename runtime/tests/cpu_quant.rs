//! Fixed-point mode against hand computations with the quantize / dequantize formulas,
//! LPBQ and per-axis int8 weights, rounding modes, concat requantization, and weight
//! sharing between the functions of a module.

mod cpu_common;

use std::sync::Arc;

use cpu_common::*;
use mllm_ir::types::{per_tensor, ElemType, Encoding, Expressed, QuantType, Storage, Type};
use mllm_ir::{attrs, Attr, Attrs, Function, Module, OpKind, WDType, Weight};
use mllm_runtime::cpu::{CpuExecutor, NumericMode, Rounding};
use mllm_runtime::{DType, Executor, Quant};

const FIXED: NumericMode = NumericMode::Fixed(Rounding::HalfAwayFromZero);

/// QNN quantize: `clamp(round(x / s) - o, lo, hi)`, round half away from zero.
fn q(x: f32, s: f32, o: i32, lo: f32, hi: f32) -> f32 {
    ((x / s).round() - o as f32).clamp(lo, hi)
}

fn dq(c: f32, s: f32, o: i32) -> f32 {
    (c + o as f32) * s
}

#[test]
fn small_quantized_graph_matches_hand_computation() {
    let (s1, o1) = (0.01f32, -32768);
    let (s2, o2) = (0.02f32, -16384);
    let (s3, o3) = (0.05f32, 0);
    let t1 = Type::tensor(vec![6], per_tensor(Storage::U16, s1, o1));
    let t2 = Type::tensor(vec![6], per_tensor(Storage::U16, s2, o2));
    let t3 = Type::tensor(vec![6], per_tensor(Storage::U8, s3, o3));
    let mut f = Function::new("q");
    let x = f.add_arg(Type::tensor(vec![6], ElemType::F32), Some("x"));
    let mut b = f.builder();
    let xq = b.convert(OpKind::Quantize, x, t1.clone());
    let c = b.constant(
        vec![0.2537],
        Type::tensor(vec![1], per_tensor(Storage::U16, s1, o1)),
    );
    let add = b.op_typed(OpKind::Add, &[xq, c], Attrs::new(), &[t2]);
    let y = b.func.op(add).results[0];
    let mul = b.op_typed(OpKind::Mul, &[y, y], Attrs::new(), &[t3]);
    let m = b.func.op(mul).results[0];
    let yf = b.convert(OpKind::Dequantize, y, Type::tensor(vec![6], ElemType::F32));
    b.ret(&[yf, m]);
    f.result_names = vec![Some("y".into()), Some("m".into())];
    let xs = [0.1234f32, -1.0071, 3.3333, -0.0049, 2.61828, 1.5e3];
    // Hand computation.
    let cr = dq(q(0.2537, s1, o1, 0.0, 65535.0), s1, o1);
    let mut want_y = Vec::new();
    let mut want_m = Vec::new();
    for v in xs {
        let xr = dq(q(v, s1, o1, 0.0, 65535.0), s1, o1);
        let yr = dq(q(xr + cr, s2, o2, 0.0, 65535.0), s2, o2);
        want_y.push(yr);
        want_m.push(q(yr * yr, s3, o3, 0.0, 255.0));
    }
    let mut m = Module::new();
    m.functions.push(f);
    mllm_ir::verify::verify_module(&m).unwrap();
    let out = run_module(&m, 0, &[In::F(vec![6], xs.to_vec())], FIXED).unwrap();
    assert_eq!(out[0], want_y, "dequantized y");
    let want_mr: Vec<f32> = want_m.iter().map(|c| dq(*c, s3, o3)).collect();
    assert_eq!(out[1], want_mr, "m in real units");
    // The same through the byte-level Executor interface: codes come out exactly.
    let mut ex = CpuExecutor::new(&m, FIXED).unwrap();
    let g = &ex.graphs()[0];
    assert_eq!(g.outputs[1].dtype, DType::U8);
    assert_eq!(
        g.outputs[1].quant,
        Quant::PerTensor {
            scale: s3,
            offset: o3
        }
    );
    let xin: Vec<u8> = xs.iter().flat_map(|v| v.to_le_bytes()).collect();
    let mut y = vec![0u8; 24];
    let mut mo = vec![0u8; 6];
    ex.execute(0, &[&xin], &mut [&mut y, &mut mo]).unwrap();
    assert_eq!(mo, want_m.iter().map(|c| *c as u8).collect::<Vec<_>>());
    // 1.5e3 saturates the u16 input encoding (max real (65535 - 32768) * 0.01).
    assert!((want_y[5] - dq(q(327.67 + cr, s2, o2, 0.0, 65535.0), s2, o2)).abs() < 1e-3);
    // Float mode ignores the encodings inside the graph.
    let out = run_module(&m, 0, &[In::F(vec![6], xs.to_vec())], NumericMode::Float).unwrap();
    assert!((out[0][0] - (0.1234 + 0.2537)).abs() < 1e-6);
    assert!((out[0][5] - (1500.0 + 0.2537)).abs() < 1e-3);
}

#[test]
fn rounding_mode_is_a_parameter() {
    let ty = Type::tensor(vec![4], per_tensor(Storage::I16, 0.25, 0));
    let mut f = Function::new("r");
    let x = f.add_arg(Type::tensor(vec![4], ElemType::F32), Some("x"));
    let mut b = f.builder();
    let xq = b.convert(OpKind::Quantize, x, ty);
    let back = b.convert(OpKind::Dequantize, xq, Type::tensor(vec![4], ElemType::F32));
    b.ret(&[back]);
    f.result_names = vec![Some("y".into())];
    // x / 0.25 = 2.5, -2.5, 3.5, 0.5: exact ties.
    let xs = In::F(vec![4], vec![0.625, -0.625, 0.875, 0.125]);
    let run = |r| {
        run_function(f.clone(), std::slice::from_ref(&xs), NumericMode::Fixed(r)).unwrap()[0]
            .clone()
    };
    let codes = |v: Vec<f32>| v.iter().map(|x| x / 0.25).collect::<Vec<f32>>();
    assert_eq!(
        codes(run(Rounding::HalfAwayFromZero)),
        vec![3.0, -3.0, 4.0, 1.0]
    );
    assert_eq!(codes(run(Rounding::HalfToEven)), vec![2.0, -2.0, 4.0, 0.0]);
    assert_eq!(codes(run(Rounding::HalfUp)), vec![3.0, -2.0, 4.0, 1.0]);
}

/// Random LPBQ codes and scales for a weight of `shape` with channel `axis`.
fn lpbq(
    r: &mut rand_chacha::ChaCha8Rng,
    shape: &[usize],
    axis: usize,
    bs: usize,
) -> (Vec<i8>, Encoding, Vec<f32>) {
    use rand::Rng;
    let n: usize = shape.iter().product();
    let ch = shape[axis];
    let per = n / ch;
    let nb = per / bs;
    let codes: Vec<i8> = (0..n).map(|_| r.gen_range(-8i8..=7)).collect();
    let block_scales: Vec<u8> = (0..ch * nb).map(|_| r.gen_range(1u8..=16)).collect();
    let channel_scales: Vec<f32> = (0..ch).map(|_| r.gen_range(0.001f32..0.01)).collect();
    // Hand dequantization: channel c, position p in the row-major order of the other axes.
    let inner: usize = shape[axis + 1..].iter().product();
    let real: Vec<f32> = (0..n)
        .map(|i| {
            let c = (i / inner) % ch;
            let p = (i / (ch * inner)) * inner + i % inner;
            (codes[i] as f32 * block_scales[c * nb + p / bs] as f32) * channel_scales[c]
        })
        .collect();
    let enc = Encoding::Blockwise {
        axis: axis as u32,
        block_size: bs as u32,
        block_scale_bits: 4,
        block_scales: block_scales.into(),
        channel_scales: channel_scales.into(),
    };
    (codes, enc, real)
}

fn qelem(storage: Storage, encoding: Encoding) -> ElemType {
    ElemType::Quant(QuantType {
        storage,
        expressed: Expressed::F32,
        encoding,
    })
}

fn i8_weight(codes: &[i8], shape: &[usize]) -> Weight {
    Weight::owned(
        WDType::I8,
        shape.to_vec(),
        codes.iter().map(|c| *c as u8).collect(),
    )
    .unwrap()
}

/// `x [m, k] · W^T` for a real weight given as `[n, k]` or, when `kn`, `[k, n]`.
fn naive_gemm(x: &[f32], w: &[f32], m: usize, k: usize, n: usize, kn: bool) -> Vec<f32> {
    let mut out = vec![0f32; m * n];
    for i in 0..m {
        for j in 0..n {
            let mut s = 0f64;
            for kk in 0..k {
                let wv = if kn { w[kk * n + j] } else { w[j * k + kk] };
                s += x[i * k + kk] as f64 * wv as f64;
            }
            out[i * n + j] = s as f32;
        }
    }
    out
}

/// Builds `y = linear(x, w)` (or a 1x1 conv with an HWIO weight) with a quantized
/// input/output and a weight of element type `we`, runs it in both modes and checks
/// against the hand computation.
fn check_quantized_gemm(
    conv: bool,
    we: ElemType,
    codes: &[i8],
    real_w: &[f32],
    k: usize,
    n: usize,
) {
    let m = 5;
    let (sx, ox) = (0.004f32, -32768);
    let (sy, oy) = (0.003f32, -30000);
    let (xs, ws, ys): (Vec<usize>, Vec<usize>, Vec<usize>) = if conv {
        (vec![1, 1, m, k], vec![1, 1, k, n], vec![1, 1, m, n])
    } else {
        (vec![m, k], vec![n, k], vec![m, n])
    };
    let mut r = rng(21);
    let In::F(_, xreal) = randn(&mut r, &[m * k]) else {
        unreachable!()
    };
    let build = |x_elem: ElemType, y_elem: ElemType| {
        let mut f = Function::new("g");
        let x = f.add_arg(Type::tensor(xs.clone(), x_elem), Some("x"));
        let mut b = f.builder();
        let w = b.weight("w", Type::tensor(ws.clone(), we.clone()));
        let kind = if conv { OpKind::Conv2d } else { OpKind::Linear };
        let op = b.op_typed(
            kind,
            &[x, w],
            Attrs::new(),
            &[Type::tensor(ys.clone(), y_elem)],
        );
        let y = b.func.op(op).results[0];
        b.ret(&[y]);
        f.result_names = vec![Some("y".into())];
        let mut md = Module::new();
        md.functions.push(f);
        md.weights.insert("w", i8_weight(codes, &ws));
        mllm_ir::verify::verify_module(&md).unwrap();
        md
    };
    // Fixed point: x and y are u16 codes.
    let md = build(
        per_tensor(Storage::U16, sx, ox),
        per_tensor(Storage::U16, sy, oy),
    );
    let xr: Vec<f32> = xreal
        .iter()
        .map(|v| dq(q(*v, sx, ox, 0.0, 65535.0), sx, ox))
        .collect();
    let yr = naive_gemm(&xr, real_w, m, k, n, conv);
    let want: Vec<f32> = yr.iter().map(|v| q(*v, sy, oy, 0.0, 65535.0)).collect();
    let got = run_module(&md, 0, &[In::F(xs.clone(), xreal.clone())], FIXED).unwrap();
    let got_codes: Vec<f32> = got[0]
        .iter()
        .map(|v| (v / sy).round() - oy as f32)
        .collect();
    let mut exact = 0;
    for (g, w) in got_codes.iter().zip(&want) {
        // f32 summation order may move a value across a rounding boundary: +-1 code.
        assert!((g - w).abs() <= 1.0, "fixed-point code {g} vs hand {w}");
        exact += (g == w) as usize;
    }
    assert!(
        exact * 10 >= want.len() * 9,
        "only {exact}/{} codes exact",
        want.len()
    );
    // Float mode runs the same quantized graph on reals with dequantized weights.
    let got = run_module(
        &md,
        0,
        &[In::F(xs.clone(), xreal.clone())],
        NumericMode::Float,
    )
    .unwrap();
    let want = naive_gemm(&xreal, real_w, m, k, n, conv);
    let wd: Vec<f64> = want.iter().map(|v| *v as f64).collect();
    assert_close(&got[0], &wd, 1e-5, "float-mode gemm with quantized weight");
}

#[test]
fn lpbq_linear_and_conv_1x1() {
    let mut r = rng(20);
    let (k, n, bs) = (64, 24, 16);
    let (codes, enc, real) = lpbq(&mut r, &[n, k], 0, bs);
    check_quantized_gemm(false, qelem(Storage::I4, enc), &codes, &real, k, n);
    // HWIO [1, 1, K, N] with the channel axis 3: blocks run over K.
    let (codes, enc, real) = lpbq(&mut r, &[1, 1, k, n], 3, bs);
    check_quantized_gemm(true, qelem(Storage::I4, enc), &codes, &real, k, n);
}

#[test]
fn per_axis_int8_linear() {
    use rand::Rng;
    let mut r = rng(22);
    let (k, n) = (40, 12);
    let codes: Vec<i8> = (0..n * k).map(|_| r.gen_range(-127i8..=127)).collect();
    let scales: Vec<f32> = (0..n).map(|_| r.gen_range(0.001f32..0.004)).collect();
    let offsets: Vec<i32> = (0..n).map(|c| (c as i32 % 3) - 1).collect();
    let real: Vec<f32> = (0..n * k)
        .map(|i| (codes[i] as f32 + offsets[i / k] as f32) * scales[i / k])
        .collect();
    let enc = Encoding::PerAxis {
        axis: 0,
        scales: scales.into(),
        offsets: offsets.into(),
    };
    check_quantized_gemm(false, qelem(Storage::I8, enc), &codes, &real, k, n);
}

#[test]
fn concat_requantizes_only_differing_encodings() {
    let (sa, oa) = (0.1f32, -100);
    let (sb, ob) = (0.03f32, -7);
    let ta = Type::tensor(vec![2, 3], per_tensor(Storage::U8, sa, oa));
    let tb = Type::tensor(vec![2, 2], per_tensor(Storage::U8, sb, ob));
    let mut f = Function::new("c");
    let a = f.add_arg(ta, Some("a"));
    let b_ = f.add_arg(tb, Some("b"));
    let mut b = f.builder();
    let op = b.op_typed(
        OpKind::Concat,
        &[a, b_],
        attrs([("axis", Attr::Int(1))]),
        &[Type::tensor(vec![2, 5], per_tensor(Storage::U8, sa, oa))],
    );
    let y = b.func.op(op).results[0];
    b.ret(&[y]);
    f.result_names = vec![Some("y".into())];
    let mut m = Module::new();
    m.functions.push(f);
    mllm_ir::verify::verify_module(&m).unwrap();
    let mut ex = CpuExecutor::new(&m, FIXED).unwrap();
    let ac: Vec<u8> = vec![0, 7, 100, 200, 255, 31];
    let bc: Vec<u8> = vec![0, 90, 200, 255];
    let mut out = vec![0u8; 10];
    ex.execute(0, &[&ac, &bc], &mut [&mut out]).unwrap();
    let rq = |c: u8| q(dq(c as f32, sb, ob), sa, oa, 0.0, 255.0) as u8;
    let want = vec![0, 7, 100, rq(0), rq(90), 200, 255, 31, rq(200), rq(255)];
    assert_eq!(out, want);
    assert_ne!(rq(90), 90, "the test must exercise a real requantization");
}

#[test]
fn quantized_embedding_moves_codes_and_weights_are_shared() {
    let (s, o) = (0.5f32, -1000);
    let (v, h) = (7, 4);
    let table: Vec<u16> = (0..v * h).map(|i| (i * 37 % 2000) as u16).collect();
    let tb: Vec<u8> = table.iter().flat_map(|c| c.to_le_bytes()).collect();
    let tq = Type::tensor(vec![v, h], per_tensor(Storage::U16, s, o));
    let mk = |name: &str, sl: usize| {
        let mut f = Function::new(name);
        let ids = f.add_arg(Type::tensor(vec![1, sl], ElemType::I32), Some("sequence"));
        let mut b = f.builder();
        let t = b.weight("embed", tq.clone());
        let e = b.op(OpKind::Embedding, &[ids, t], Attrs::new()).unwrap();
        // lm_head tied to the embedding table (an nn.linear over the same weight).
        let ef = b.convert(
            OpKind::Dequantize,
            e,
            Type::tensor(vec![1, sl, h], ElemType::F32),
        );
        let wf = b.weight("lm", Type::tensor(vec![v, h], ElemType::F32));
        let logits = b.op(OpKind::Linear, &[ef, wf], Attrs::new()).unwrap();
        b.ret(&[e, logits]);
        f.result_names = vec![Some("emb".into()), Some("logits".into())];
        f
    };
    let mut m = Module::new();
    m.functions.push(mk("model.0.s3", 3));
    m.functions.push(mk("model.0.s1", 1));
    m.weights
        .insert("embed", Weight::owned(WDType::U16, vec![v, h], tb).unwrap());
    let lm: Vec<u8> = (0..v * h)
        .flat_map(|i| (i as f32 * 0.01).to_le_bytes())
        .collect();
    m.weights.insert_arc(
        "lm",
        Arc::new(Weight::owned(WDType::F32, vec![v, h], lm).unwrap()),
    );
    mllm_ir::verify::verify_module(&m).unwrap();
    let mut ex = CpuExecutor::new(&m, FIXED).unwrap();
    // One decoded table (codes) and one packed lm_head, shared by both graphs.
    assert_eq!(ex.decoded_weights(), 2);
    assert_eq!(ex.graphs()[0].ar_len, 3);
    assert_eq!(ex.graphs()[1].ar_len, 1);
    let ids: Vec<i32> = vec![6, 0, 3];
    let idb: Vec<u8> = ids.iter().flat_map(|i| i.to_le_bytes()).collect();
    let mut emb = vec![0u8; 3 * h * 2];
    let mut logits = vec![0u8; 3 * v * 4];
    ex.execute(0, &[&idb], &mut [&mut emb, &mut logits])
        .unwrap();
    let want: Vec<u8> = ids
        .iter()
        .flat_map(|i| table[*i as usize * h..(*i as usize + 1) * h].to_vec())
        .flat_map(|c| c.to_le_bytes())
        .collect();
    assert_eq!(
        emb, want,
        "embedding of a quantized table moves codes exactly"
    );
    let lf: &[f32] = bytemuck::cast_slice(&logits);
    let row =
        |i: usize| -> Vec<f32> { (0..h).map(|j| dq(table[i * h + j] as f32, s, o)).collect() };
    for (t, id) in ids.iter().enumerate() {
        let x = row(*id as usize);
        for c in 0..v {
            let want: f32 = (0..h).map(|j| x[j] * ((c * h + j) as f32 * 0.01)).sum();
            assert!((lf[t * v + c] - want).abs() <= 1e-4 * (1.0 + want.abs()));
        }
    }
    // Float mode decodes the table to reals once as well.
    let ex = CpuExecutor::new(&m, NumericMode::Float).unwrap();
    assert_eq!(ex.decoded_weights(), 2);
}

#[test]
fn quantized_io_in_float_mode_uses_codes_at_the_boundary() {
    let mask_t = Type::tensor(vec![1, 4], per_tensor(Storage::U16, 1.0 / 65535.0, 0));
    let mut f = Function::new("mask");
    let m_ = f.add_arg(mask_t.clone(), Some("causal_mask"));
    let mut b = f.builder();
    let one = b.constant(vec![1.0], Type::tensor(vec![1], mask_t.elem().clone()));
    let eq = b.op(OpKind::Equal, &[m_, one], Attrs::new()).unwrap();
    let a = b.constant(vec![2.0], Type::tensor(vec![1], ElemType::F32));
    let z = b.constant(vec![-20.0], Type::tensor(vec![1, 4], ElemType::F32));
    let w = b.op(OpKind::Where, &[eq, a, z], Attrs::new()).unwrap();
    b.ret(&[w]);
    f.result_names = vec![Some("y".into())];
    let mut md = Module::new();
    md.functions.push(f);
    mllm_ir::verify::verify_module(&md).unwrap();
    for mode in [NumericMode::Float, FIXED] {
        let mut ex = CpuExecutor::new(&md, mode).unwrap();
        assert_eq!(ex.graphs()[0].inputs[0].dtype, DType::U16);
        let mask: Vec<u8> = [65535u16, 0, 65535, 1]
            .iter()
            .flat_map(|c| c.to_le_bytes())
            .collect();
        let mut out = vec![0u8; 16];
        ex.execute(0, &[&mask], &mut [&mut out]).unwrap();
        let y: &[f32] = bytemuck::cast_slice(&out);
        assert_eq!(y, &[2.0, -20.0, 2.0, -20.0], "{mode:?}");
    }
}
