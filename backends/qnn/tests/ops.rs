//! One-op graphs for every lowering, executed in the HTP emulator (SoC 57) on random
//! inputs and compared with the CPU reference executor of the IR in fixed-point mode
//! (dequantize inputs -> f32 op -> requantize with round half away from zero, clamp).
//! Each test prints its max / mean error in output LSB (absolute error for float
//! outputs). Skipped with a note when the QNN library is not installed.

mod common;

use std::sync::Arc;

use common::*;
use mllm_ir::{
    attrs, Attr, Attrs, ElemType, Encoding, Expressed, Function, OpKind, QuantType, Storage, Type,
    ValueId, WDType, Weight, WeightStore,
};
use mllm_qnn_sys::QnnLibrary;

fn func(name: &str, args: &[(&str, Type)]) -> (Function, Vec<ValueId>) {
    let mut f = Function::new(name);
    let vs = args
        .iter()
        .map(|(n, ty)| f.add_arg(ty.clone(), Some(n)))
        .collect();
    (f, vs)
}

fn none() -> Attrs {
    Attrs::new()
}

fn weight(f: &mut Function, name: &str, ty: Type) -> ValueId {
    f.builder().weight(name, ty)
}

/// LPBQ element type: int4 values, `axis`, block `b`, random block scales 1..=15 and
/// channel scales around `cs`.
fn lpbq(
    rng: &mut Rng,
    channels: usize,
    per_channel: usize,
    axis: u32,
    b: usize,
    cs: f32,
) -> ElemType {
    let nb = per_channel / b;
    let block_scales: Vec<u8> = (0..channels * nb).map(|_| rng.int(1, 15) as u8).collect();
    let channel_scales: Vec<f32> = (0..channels).map(|_| cs * rng.float(0.5, 1.5)).collect();
    ElemType::Quant(QuantType {
        storage: Storage::I4,
        expressed: Expressed::F32,
        encoding: Encoding::Blockwise {
            axis,
            block_size: b as u32,
            block_scale_bits: 4,
            block_scales: block_scales.into(),
            channel_scales: channel_scales.into(),
        },
    })
}

/// Per-channel int8 type along `axis`.
fn per_axis_i8(rng: &mut Rng, channels: usize, axis: u32, s: f32) -> ElemType {
    ElemType::Quant(QuantType {
        storage: Storage::I8,
        expressed: Expressed::F32,
        encoding: Encoding::PerAxis {
            axis,
            scales: (0..channels)
                .map(|_| s * rng.float(0.5, 1.5))
                .collect::<Vec<f32>>()
                .into(),
            offsets: vec![0i32; channels].into(),
        },
    })
}

/// A store weight of `n` random codes in `lo..=hi` with dtype `d` (1- or 2-byte).
fn codes(rng: &mut Rng, d: WDType, shape: &[usize], lo: i64, hi: i64) -> Weight {
    let n: usize = shape.iter().product();
    let mut bytes = Vec::with_capacity(n * d.size());
    for _ in 0..n {
        let v = rng.int(lo, hi);
        match d.size() {
            1 => bytes.push(v as u8),
            _ => bytes.extend_from_slice(&(v as u16).to_le_bytes()),
        }
    }
    Weight::owned(d, shape.to_vec(), bytes).unwrap()
}

fn binary_case(
    lib: &Arc<QnnLibrary>,
    kind: OpKind,
    label: &str,
    out: ElemType,
    seed: u64,
    tol: f64,
) {
    let (mut f, a) = func(
        label,
        &[
            ("a", t(&[1, 4, 16], u16q(-1.0, 1.0))),
            ("b", t(&[1, 1, 16], u16q(-1.0, 3.0))),
        ],
    );
    let y = op(&mut f, kind, &[a[0], a[1]], none(), t(&[1, 4, 16], out));
    ret(&mut f, &[y], &["y"]);
    check(lib, label, &f, &WeightStore::new(), seed, 0, tol);
}

fn unary_case(
    lib: &Arc<QnnLibrary>,
    kind: OpKind,
    label: &str,
    inp: ElemType,
    out: ElemType,
    a: Attrs,
    tol: f64,
) -> Run {
    let (mut f, x) = func(label, &[("x", t(&[2, 4, 16], inp))]);
    let y = op(&mut f, kind, &[x[0]], a, t(&[2, 4, 16], out));
    ret(&mut f, &[y], &["y"]);
    check(lib, label, &f, &WeightStore::new(), 7, 0, tol)
}

#[test]
fn add_u16_broadcast() {
    let _g = serial();
    let Some(lib) = library() else { return };
    binary_case(&lib, OpKind::Add, "add", u16q(-2.0, 4.0), 1, 1.0);
}

#[test]
fn sub_u16_broadcast() {
    let _g = serial();
    let Some(lib) = library() else { return };
    binary_case(&lib, OpKind::Sub, "sub", u16q(-4.0, 2.0), 2, 1.0);
}

#[test]
fn mul_u16_broadcast() {
    let _g = serial();
    let Some(lib) = library() else { return };
    binary_case(&lib, OpKind::Mul, "mul", u16q(-3.0, 3.0), 3, 1.0);
}

#[test]
fn neg_u16() {
    let _g = serial();
    let Some(lib) = library() else { return };
    unary_case(
        &lib,
        OpKind::Neg,
        "neg",
        u16q(-1.0, 1.0),
        u16q(-1.0, 1.0),
        none(),
        1.0,
    );
}

#[test]
fn sigmoid_u16() {
    let _g = serial();
    let Some(lib) = library() else { return };
    // HTP's 16-bit sigmoid is up to 3 LSB (4.6e-5) off the exact function.
    unary_case(
        &lib,
        OpKind::Sigmoid,
        "sigmoid",
        u16q(-8.0, 8.0),
        u16q(0.0, 1.0),
        none(),
        3.0,
    );
}

#[test]
fn softmax_u16() {
    let _g = serial();
    let Some(lib) = library() else { return };
    unary_case(
        &lib,
        OpKind::Softmax,
        "softmax",
        u16q(-8.0, 8.0),
        u16q(0.0, 1.0),
        attrs([("axis", Attr::Int(-1))]),
        // HTP's 16-bit softmax is up to 3 LSB off the exact function.
        3.0,
    );
}

#[test]
fn equal_u16_to_bool() {
    let _g = serial();
    let Some(lib) = library() else { return };
    let e = u16q(-1.0, 1.0);
    let (mut f, a) = func(
        "equal",
        &[("a", t(&[2, 8], e.clone())), ("b", t(&[2, 8], e))],
    );
    let y = op(
        &mut f,
        OpKind::Equal,
        &[a[0], a[1]],
        none(),
        t(&[2, 8], ElemType::Bool),
    );
    ret(&mut f, &[y], &["y"]);
    // Half of b equals a, the rest is random.
    let mut rng = Rng::new(11);
    let av: Vec<u16> = (0..16).map(|_| rng.int(0, 65535) as u16).collect();
    let bv: Vec<u16> = av
        .iter()
        .enumerate()
        .map(|(i, v)| {
            if i % 2 == 0 {
                *v
            } else {
                rng.int(0, 65535) as u16
            }
        })
        .collect();
    let enc = |v: &[u16]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let r = check_with(
        &lib,
        "equal",
        &f,
        &WeightStore::new(),
        &[enc(&av), enc(&bv)],
        0.0,
    );
    assert_eq!(
        r.cpu[0].iter().filter(|v| **v == 1).count(),
        8,
        "reference sees the 8 equal pairs"
    );
}

#[test]
fn where_select_u16() {
    let _g = serial();
    let Some(lib) = library() else { return };
    let (mut f, a) = func(
        "where",
        &[
            ("c", t(&[2, 8], ElemType::Bool)),
            ("a", t(&[2, 8], u16q(-1.0, 3.0))),
            ("b", t(&[2, 8], u16q(-1.0, 3.0))),
        ],
    );
    let y = op(
        &mut f,
        OpKind::Where,
        &[a[0], a[1], a[2]],
        none(),
        t(&[2, 8], u16q(-1.0, 3.0)),
    );
    ret(&mut f, &[y], &["y"]);
    check(&lib, "where", &f, &WeightStore::new(), 12, 0, 1.0);
}

#[test]
fn reduce_min_u16() {
    let _g = serial();
    let Some(lib) = library() else { return };
    let e = u16q(-1.0, 1.0);
    let (mut f, x) = func("reduce_min", &[("x", t(&[2, 4, 16], e.clone()))]);
    let y = op(
        &mut f,
        OpKind::ReduceMin,
        &[x[0]],
        attrs([
            ("axes", Attr::Ints(vec![-1])),
            ("keepdims", Attr::Bool(true)),
        ]),
        t(&[2, 4, 1], e),
    );
    ret(&mut f, &[y], &["y"]);
    check(&lib, "reduce_min", &f, &WeightStore::new(), 13, 0, 0.0);
}

#[test]
fn rms_norm_u16_with_u16_gamma() {
    let _g = serial();
    let Some(lib) = library() else { return };
    let mut rng = Rng::new(14);
    let (mut f, x) = func("rms_norm", &[("x", t(&[1, 4, 32], u16q(-4.0, 4.0)))]);
    let gty = t(&[32], u16q(0.0, 2.0));
    let mut store = WeightStore::new();
    store.insert("gamma", codes(&mut rng, WDType::U16, &[32], 0, 65535));
    let g = weight(&mut f, "gamma", gty);
    let y = op(
        &mut f,
        OpKind::RmsNorm,
        &[x[0], g],
        attrs([("epsilon", Attr::Float(1e-6))]),
        t(&[1, 4, 32], u16q(-8.0, 8.0)),
    );
    ret(&mut f, &[y], &["y"]);
    check(&lib, "rms_norm", &f, &store, 15, 0, 2.0);
}

#[test]
fn concat_u8_kv_like() {
    let _g = serial();
    let Some(lib) = library() else { return };
    let e = u8q(-4.0, 4.0);
    let (mut f, a) = func(
        "concat",
        &[
            ("past", t(&[1, 2, 8, 16], e.clone())),
            ("cur", t(&[1, 2, 4, 16], e.clone())),
        ],
    );
    let y = op(
        &mut f,
        OpKind::Concat,
        &[a[0], a[1]],
        attrs([("axis", Attr::Int(2))]),
        t(&[1, 2, 12, 16], e),
    );
    ret(&mut f, &[y], &["y"]);
    check(&lib, "concat", &f, &WeightStore::new(), 16, 0, 0.0);
}

/// Random inputs for a MatMul whose second input is a u8 KV-like tensor. HTP's MatMul
/// treats its second input as symmetric: a u16 one must have offset -32768 (else the op
/// is rejected), a u8 one with an offset other than -128 is silently requantized
/// (10-40 LSB errors measured), and with offset -128 the code 255 is read as 254. So
/// the KV encoding is [-4, 4] with offset -128 and codes stay in 0..=254.
fn kv_inputs(f: &Function, seed: u64) -> Vec<Vec<u8>> {
    let mut rng = Rng::new(seed);
    let mut inputs: Vec<Vec<u8>> = f
        .args()
        .iter()
        .map(|v| random_bytes(f.ty(*v), &mut rng, 0))
        .collect();
    for b in inputs[1].iter_mut() {
        *b = (*b).min(254);
    }
    inputs
}

#[test]
fn matmul_u16_by_u8_transposed() {
    let _g = serial();
    let Some(lib) = library() else { return };
    let (mut f, a) = func(
        "matmul_qk",
        &[
            ("q", t(&[2, 4, 16], u16q(-2.0, 2.0))),
            ("k", t(&[2, 8, 16], u8q(-4.0, 4.0))),
        ],
    );
    let y = op(
        &mut f,
        OpKind::MatMul,
        &[a[0], a[1]],
        attrs([("transpose_b", Attr::Bool(true))]),
        t(&[2, 4, 8], u16q(-48.0, 48.0)),
    );
    ret(&mut f, &[y], &["y"]);
    check_with(
        &lib,
        "matmul q.k^T (u16 x u8)",
        &f,
        &WeightStore::new(),
        &kv_inputs(&f, 17),
        1.0,
    );
}

/// The Qwen3 scores as the graphs compute them: per KV head, `[1, Hkv, G*S, D]` u16
/// queries times the u8 key cache in row layout `[1, Hkv, W, D]` (like the values),
/// transposed by the op (`transpose_b` -> QNN `MatMul` `transpose_in1`); prefill-like
/// (G*S = 8) and decode-like (G*S = 2) shapes with D = 128.
#[test]
fn matmul_qk_u8_kv_rows_transpose_in1() {
    let _g = serial();
    let Some(lib) = library() else { return };
    for (label, gs, w, seed) in [("prefill", 8, 48, 21), ("decode", 2, 63, 22)] {
        let (hkv, d) = (2, 128);
        let (mut f, a) = func(
            &format!("qk_{label}"),
            &[
                ("q", t(&[1, hkv, gs, d], u16q(-2.0, 2.0))),
                ("k", t(&[1, hkv, w, d], u8q(-4.0, 4.0))),
            ],
        );
        let y = op(
            &mut f,
            OpKind::MatMul,
            &[a[0], a[1]],
            attrs([("transpose_b", Attr::Bool(true))]),
            t(&[1, hkv, gs, w], u16q(-128.0, 128.0)),
        );
        ret(&mut f, &[y], &["y"]);
        let r = check_with(
            &lib,
            &format!("matmul q.k^T, keys [1,Hkv,W,D] ({label})"),
            &f,
            &WeightStore::new(),
            &kv_inputs(&f, seed),
            1.0,
        );
        // The scores must span a good part of the output range (not a trivial result).
        let (lo, hi) = r.spread(0);
        assert!(hi - lo > 10_000.0, "{label}: scores span only {lo}..{hi}");
    }
}

#[test]
fn matmul_u16_by_u8() {
    let _g = serial();
    let Some(lib) = library() else { return };
    let (mut f, a) = func(
        "matmul_pv",
        &[
            ("p", t(&[2, 4, 8], u16q(0.0, 1.0))),
            ("v", t(&[2, 8, 16], u8q(-4.0, 4.0))),
        ],
    );
    let y = op(
        &mut f,
        OpKind::MatMul,
        &[a[0], a[1]],
        none(),
        t(&[2, 4, 16], u16q(-16.0, 16.0)),
    );
    ret(&mut f, &[y], &["y"]);
    check_with(
        &lib,
        "matmul p.v (u16 x u8)",
        &f,
        &WeightStore::new(),
        &kv_inputs(&f, 18),
        1.0,
    );
}

/// `conv2d(x, reshape(transpose(slice?(w)), [1,1,K,N]))` with an LPBQ [N, K] weight:
/// what `linear-to-conv2d` (and `sha-split`) produce; the chain is folded.
fn lpbq_conv_case(
    lib: &Arc<QnnLibrary>,
    label: &str,
    m: usize,
    k: usize,
    n_total: usize,
    slice: Option<(usize, usize)>,
    seed: u64,
) -> Run {
    let mut rng = Rng::new(seed);
    let b = 16;
    let wty = t(&[n_total, k], lpbq(&mut rng, n_total, k, 0, b, 0.01));
    let mut store = WeightStore::new();
    store.insert("w", codes(&mut rng, WDType::I8, &[n_total, k], -8, 7));
    let (mut f, x) = func(label, &[("x", t(&[1, 1, m, k], u16q(-2.0, 2.0)))]);
    let mut w = weight(&mut f, "w", wty);
    let mut n = n_total;
    if let Some((s, e)) = slice {
        w = f
            .builder()
            .slice(w, &[s as i64, 0], &[e as i64, k as i64])
            .unwrap();
        n = e - s;
    }
    let wt = f.builder().transpose(w, &[1, 0]).unwrap();
    let hwio = f.builder().reshape(wt, &[1, 1, k, n]).unwrap();
    let y = op(
        &mut f,
        OpKind::Conv2d,
        &[x[0], hwio],
        none(),
        t(&[1, 1, m, n], u16q(-24.0, 24.0)),
    );
    ret(&mut f, &[y], &["y"]);
    check(lib, label, &f, &store, seed + 1, 0, 1.0)
}

#[test]
fn conv2d_lpbq_1x1() {
    let _g = serial();
    let Some(lib) = library() else { return };
    lpbq_conv_case(
        &lib,
        "conv2d LPBQ 1x1 (K=128, N=64, M=8)",
        8,
        128,
        64,
        None,
        19,
    );
}

#[test]
fn conv2d_lpbq_sliced_weight() {
    let _g = serial();
    let Some(lib) = library() else { return };
    // A per-head slice of the output channels (what sha-split makes).
    lpbq_conv_case(
        &lib,
        "conv2d LPBQ sliced rows 16..48",
        4,
        64,
        64,
        Some((16, 48)),
        21,
    );
}

fn linear_case(lib: &Arc<QnnLibrary>, label: &str, xshape: &[usize], seed: u64) {
    let mut rng = Rng::new(seed);
    let (k, n) = (64, 32);
    let wty = t(&[n, k], per_axis_i8(&mut rng, n, 0, 0.01));
    let mut store = WeightStore::new();
    store.insert("w", codes(&mut rng, WDType::I8, &[n, k], -127, 127));
    let (mut f, x) = func(label, &[("x", t(xshape, u16q(-2.0, 2.0)))]);
    let w = weight(&mut f, "w", wty);
    let mut yshape = xshape.to_vec();
    *yshape.last_mut().unwrap() = n;
    let y = op(
        &mut f,
        OpKind::Linear,
        &[x[0], w],
        none(),
        t(&yshape, u16q(-40.0, 40.0)),
    );
    ret(&mut f, &[y], &["y"]);
    check(lib, label, &f, &store, seed + 1, 0, 1.0);
}

#[test]
fn linear_per_channel_i8_fully_connected() {
    let _g = serial();
    let Some(lib) = library() else { return };
    linear_case(&lib, "linear i8 per-channel [4,64]", &[4, 64], 23);
    linear_case(
        &lib,
        "linear i8 per-channel [1,4,64] (reshaped)",
        &[1, 4, 64],
        25,
    );
}

#[test]
fn embedding_u16_table() {
    let _g = serial();
    let Some(lib) = library() else { return };
    let mut rng = Rng::new(27);
    let e = u16q(-1.0, 1.0);
    let mut store = WeightStore::new();
    store.insert("table", codes(&mut rng, WDType::U16, &[16, 32], 0, 65535));
    let (mut f, ids) = func("embedding", &[("ids", t(&[1, 4], ElemType::I32))]);
    let table = weight(&mut f, "table", t(&[16, 32], e.clone()));
    let y = op(
        &mut f,
        OpKind::Embedding,
        &[ids[0], table],
        none(),
        t(&[1, 4, 32], e),
    );
    ret(&mut f, &[y], &["y"]);
    check(&lib, "embedding", &f, &store, 28, 16, 0.0);
}

#[test]
fn gather_activation_rows() {
    let _g = serial();
    let Some(lib) = library() else { return };
    let e = u16q(-1.0, 1.0);
    let (mut f, a) = func(
        "gather",
        &[
            ("data", t(&[8, 16], e.clone())),
            ("idx", t(&[3], ElemType::I32)),
        ],
    );
    let y = op(
        &mut f,
        OpKind::Gather,
        &[a[0], a[1]],
        attrs([("axis", Attr::Int(0))]),
        t(&[3, 16], e),
    );
    ret(&mut f, &[y], &["y"]);
    check(&lib, "gather", &f, &WeightStore::new(), 29, 8, 0.0);
}

#[test]
fn strided_slice_u16() {
    let _g = serial();
    let Some(lib) = library() else { return };
    let e = u16q(-1.0, 1.0);
    let (mut f, x) = func("slice", &[("x", t(&[1, 8, 16], e.clone()))]);
    let y = op(
        &mut f,
        OpKind::Slice,
        &[x[0]],
        attrs([
            ("starts", Attr::Ints(vec![0, 2, 4])),
            ("ends", Attr::Ints(vec![1, 6, 16])),
            ("steps", Attr::Ints(vec![1, 1, 2])),
        ]),
        t(&[1, 4, 6], e),
    );
    ret(&mut f, &[y], &["y"]);
    check(&lib, "slice", &f, &WeightStore::new(), 30, 0, 0.0);
}

#[test]
fn transpose_and_reshape_u16() {
    let _g = serial();
    let Some(lib) = library() else { return };
    let e = u16q(-1.0, 1.0);
    let (mut f, x) = func("transpose", &[("x", t(&[2, 4, 8], e.clone()))]);
    let y = op(
        &mut f,
        OpKind::Transpose,
        &[x[0]],
        attrs([("perm", Attr::Ints(vec![0, 2, 1]))]),
        t(&[2, 8, 4], e.clone()),
    );
    let z = op(
        &mut f,
        OpKind::Reshape,
        &[y],
        attrs([("shape", Attr::Ints(vec![16, 4]))]),
        t(&[16, 4], e),
    );
    ret(&mut f, &[y, z], &["y", "z"]);
    check(
        &lib,
        "transpose+reshape",
        &f,
        &WeightStore::new(),
        31,
        0,
        0.0,
    );
}

#[test]
fn quantize_dequantize_requantize_cast() {
    let _g = serial();
    let Some(lib) = library() else { return };
    // f32 -> u16.
    let (mut f, x) = func("quantize", &[("x", t(&[4, 16], ElemType::F32))]);
    let y = op(
        &mut f,
        OpKind::Quantize,
        &[x[0]],
        none(),
        t(&[4, 16], u16q(-4.0, 4.0)),
    );
    ret(&mut f, &[y], &["y"]);
    check(
        &lib,
        "quantize f32->u16",
        &f,
        &WeightStore::new(),
        32,
        0,
        1.0,
    );
    // u16 -> f32 (absolute error; one LSB is 8/65535 = 1.2e-4).
    let (mut f, x) = func("dequantize", &[("x", t(&[4, 16], u16q(-4.0, 4.0)))]);
    let y = op(
        &mut f,
        OpKind::Dequantize,
        &[x[0]],
        none(),
        t(&[4, 16], ElemType::F32),
    );
    ret(&mut f, &[y], &["y"]);
    check(
        &lib,
        "dequantize u16->f32",
        &f,
        &WeightStore::new(),
        33,
        0,
        1.3e-4,
    );
    // u16 -> u8 with another range (Convert).
    let (mut f, x) = func("requantize", &[("x", t(&[4, 16], u16q(-1.0, 1.0)))]);
    let y = op(
        &mut f,
        OpKind::Requantize,
        &[x[0]],
        none(),
        t(&[4, 16], u8q(-2.0, 2.0)),
    );
    ret(&mut f, &[y], &["y"]);
    check(
        &lib,
        "requantize u16->u8 (Convert)",
        &f,
        &WeightStore::new(),
        34,
        0,
        1.0,
    );
    // i32 -> f32.
    let (mut f, x) = func("cast", &[("x", t(&[4, 16], ElemType::I32))]);
    let y = op(
        &mut f,
        OpKind::Cast,
        &[x[0]],
        none(),
        t(&[4, 16], ElemType::F32),
    );
    ret(&mut f, &[y], &["y"]);
    check(
        &lib,
        "cast i32->f32",
        &f,
        &WeightStore::new(),
        35,
        1000,
        0.0,
    );
}

#[test]
fn quantized_constant_operand() {
    let _g = serial();
    let Some(lib) = library() else { return };
    let (mut f, x) = func("add_const", &[("x", t(&[1, 8], u16q(-1.0, 1.0)))]);
    let c = f.builder().constant(vec![0.5], t(&[1], u16q(0.0, 1.0)));
    let y = op(
        &mut f,
        OpKind::Add,
        &[x[0], c],
        none(),
        t(&[1, 8], u16q(-1.0, 2.0)),
    );
    ret(&mut f, &[y], &["y"]);
    check(
        &lib,
        "add quantized constant",
        &f,
        &WeightStore::new(),
        36,
        0,
        1.0,
    );
}

#[test]
fn float_graph_silu_and_bf16_linear() {
    let _g = serial();
    let Some(lib) = library() else { return };
    // Float graphs run in FP16 on HTP (precision FLOAT16): tolerance is absolute.
    let mut rng = Rng::new(37);
    let (k, n) = (32, 16);
    let wv: Vec<u8> = (0..n * k)
        .flat_map(|_| half::bf16::from_f32(rng.float(-0.2, 0.2)).to_le_bytes())
        .collect();
    let mut store = WeightStore::new();
    store.insert("w", Weight::owned(WDType::BF16, vec![n, k], wv).unwrap());
    let (mut f, x) = func("float", &[("x", t(&[4, k], ElemType::F32))]);
    let w = weight(&mut f, "w", t(&[n, k], ElemType::F32));
    let h = op(
        &mut f,
        OpKind::Linear,
        &[x[0], w],
        none(),
        t(&[4, n], ElemType::F32),
    );
    let y = op(
        &mut f,
        OpKind::Silu,
        &[h],
        none(),
        t(&[4, n], ElemType::F32),
    );
    ret(&mut f, &[y], &["y"]);
    check(
        &lib,
        "float linear(bf16 weight)+silu, abs error",
        &f,
        &store,
        38,
        0,
        0.02,
    );
}

#[test]
fn outputs_that_are_arguments_or_repeated_get_copies() {
    let _g = serial();
    let Some(lib) = library() else { return };
    // Returning an argument, a constant and the same op result twice.
    let e = u16q(-1.0, 1.0);
    let (mut f, x) = func("identity", &[("x", t(&[2, 8], e.clone()))]);
    let y = op(&mut f, OpKind::Neg, &[x[0]], none(), t(&[2, 8], e.clone()));
    let c = f.builder().constant(vec![0.25], t(&[2, 8], e));
    ret(&mut f, &[x[0], y, y, c], &["x_out", "y0", "y1", "c"]);
    let r = check(
        &lib,
        "identity outputs",
        &f,
        &WeightStore::new(),
        40,
        0,
        0.0,
    );
    assert_eq!(r.qnn[0].len(), 32);
}

/// `quant.requantize` u16 -> u8 (`Convert`, as into the u8 KV cache): every one of the
/// 65,536 input codes, for several scale pairs, is bit-exact between the emulator and
/// the CPU reference in `Rounding::Htp` mode (HTP's fixed-point formula,
/// `mllm_runtime::cpu::quant::HtpConvert`); rounding the exact value to nearest (the
/// default mode) is one code off near ties.
#[test]
fn requantize_u16_to_u8_htp_bit_exact() {
    use mllm_ir::types::per_tensor;
    use mllm_runtime::cpu::{CpuProgram, NumericMode, Rounding, WeightCache};
    let _g = serial();
    let Some(lib) = library() else { return };
    // (u16 scale, u16 offset, u8 scale, u8 offset): KV-like ranges (u8 symmetric,
    // absmax / 127.5), an 8x smaller u8 scale, another u8 offset.
    let pairs: [(f32, i32, f32, i32); 4] = [
        (0.000_353_108_77, -57724, 0.159_865_32, -128),
        (0.000_459_206_55, -38306, 0.217_872_55, -128),
        (0.000_238_798_59, -31267, 0.015_826_82, -128),
        (3e-4, -20000, 0.12, -100),
    ];
    let input: Vec<u8> = (0..=u16::MAX).flat_map(|c| c.to_le_bytes()).collect();
    let mut nearest_off = 0usize;
    for (si, oi, so, oo) in pairs {
        let label = format!("requantize u16 ({si:e}, {oi}) -> u8 ({so:e}, {oo})");
        let ity = t(&[256, 256], per_tensor(Storage::U16, si, oi));
        let oty = t(&[256, 256], per_tensor(Storage::U8, so, oo));
        let (mut f, x) = func("requant", &[("x", ity)]);
        let y = op(&mut f, OpKind::Requantize, &[x[0]], none(), oty.clone());
        ret(&mut f, &[y], &["y"]);
        let r = run(&lib, &f, &WeightStore::new(), std::slice::from_ref(&input))
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        let mut cache = WeightCache::new();
        let mut prog = CpuProgram::compile(
            &f,
            &WeightStore::new(),
            NumericMode::Fixed(Rounding::Htp),
            &mut cache,
        )
        .unwrap_or_else(|e| panic!("{label}: {e}"));
        let mut htp = vec![0u8; oty.byte_size()];
        prog.run_bytes(&[&input], &mut [&mut htp], None)
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        let mism = |b: &[u8]| r.qnn[0].iter().zip(b).filter(|(a, b)| a != b).count();
        let (m_htp, m_near) = (mism(&htp), mism(&r.cpu[0]));
        let distinct = r.qnn[0]
            .iter()
            .collect::<std::collections::HashSet<_>>()
            .len();
        println!(
            "[{label}] mismatches: Rounding::Htp {m_htp}, nearest {m_near} (of 65536; {distinct} distinct output codes)"
        );
        assert!(distinct > 100, "{label}: degenerate output");
        assert_eq!(m_htp, 0, "{label}");
        nearest_off += m_near;
    }
    assert!(nearest_off > 0, "rounding to nearest should miss some ties");
}

/// u16 x LPBQ `conv2d` (1x1, what the projections lower to): the CPU reference in
/// `Rounding::Htp` models the HTP's integer arithmetic (`quant::HtpLinear`: the
/// accumulator truncated to its top bits, a 22-bit multiplier) and matches the emulator
/// on all but rare near-ties, for output scales that make one accumulator step worth
/// ~0.3 to ~4 output codes; rounding the exact result down (the former model) or to
/// nearest misses a quarter or more of the codes. The same weights as an `nn.linear`
/// (the pre-layout IR the runtime's reference executes) give the same codes.
#[test]
fn conv2d_lpbq_htp_integer_model() {
    use mllm_ir::types::per_tensor;
    use mllm_runtime::cpu::{CpuProgram, NumericMode, Rounding, WeightCache};
    let _g = serial();
    let Some(lib) = library() else { return };
    let (m, k, n) = (64, 128, 64);
    let mut rng = Rng::new(77);
    let wty = t(&[n, k], lpbq(&mut rng, n, k, 0, 16, 5e-4));
    let mut store = WeightStore::new();
    store.insert("w", codes(&mut rng, WDType::I8, &[n, k], -8, 7));
    let x_ty = t(&[1, 1, m, k], per_tensor(Storage::U16, 1.1e-4, -31352));
    let x = random_bytes(&x_ty, &mut rng, 0);
    let cpu_run = |f: &Function, r: Rounding, out_bytes: usize, x: &[u8]| -> Vec<u8> {
        let mut cache = WeightCache::new();
        let mut prog = CpuProgram::compile(f, &store, NumericMode::Fixed(r), &mut cache)
            .unwrap_or_else(|e| panic!("{e}"));
        let mut out = vec![0u8; out_bytes];
        prog.run_bytes(&[x], &mut [&mut out], None)
            .unwrap_or_else(|e| panic!("{e}"));
        out
    };
    let mism = |a: &[u8], b: &[u8]| {
        let (a, b) = (
            decode(&t(&[a.len() / 2], u16q(0.0, 1.0)), a),
            decode(&t(&[b.len() / 2], u16q(0.0, 1.0)), b),
        );
        let max = a
            .iter()
            .zip(&b)
            .map(|(p, q)| (p - q).abs())
            .fold(0.0, f64::max);
        (a.iter().zip(&b).filter(|(p, q)| p != q).count(), max)
    };
    let mut total_htp = 0usize;
    for (s_out, o_out) in [
        (1.8e-5f32, -34181),
        (6e-6, -30000),
        (6e-5, -32768),
        (4e-6, -33000),
    ] {
        let label = format!("conv2d LPBQ u16 -> u16 (out scale {s_out:e})");
        let oty = t(&[1, 1, m, n], per_tensor(Storage::U16, s_out, o_out));
        let (mut f, xa) = func("conv", &[("x", x_ty.clone())]);
        let w = weight(&mut f, "w", wty.clone());
        let wt = f.builder().transpose(w, &[1, 0]).unwrap();
        let hwio = f.builder().reshape(wt, &[1, 1, k, n]).unwrap();
        let y = op(&mut f, OpKind::Conv2d, &[xa[0], hwio], none(), oty.clone());
        ret(&mut f, &[y], &["y"]);
        let r = run(&lib, &f, &store, std::slice::from_ref(&x))
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        let emu = &r.qnn[0];
        let htp = cpu_run(&f, Rounding::Htp, oty.byte_size(), &x);
        let floor = cpu_run(&f, Rounding::Floor, oty.byte_size(), &x);
        // The same weight as nn.linear [n, k] on [1, m, k].
        let (mut g, xl) = func(
            "linear",
            &[("x", t(&[1, m, k], per_tensor(Storage::U16, 1.1e-4, -31352)))],
        );
        let wl = weight(&mut g, "w", wty.clone());
        let yl = op(
            &mut g,
            OpKind::Linear,
            &[xl[0], wl],
            none(),
            t(&[1, m, n], per_tensor(Storage::U16, s_out, o_out)),
        );
        ret(&mut g, &[yl], &["y"]);
        let lin = cpu_run(&g, Rounding::Htp, oty.byte_size(), &x);
        let (m_htp, max_htp) = mism(emu, &htp);
        let (m_floor, _) = mism(emu, &floor);
        let (m_near, _) = mism(emu, &r.cpu[0]);
        let distinct = decode(&oty, emu)
            .iter()
            .map(|v| *v as i64)
            .collect::<std::collections::HashSet<_>>()
            .len();
        println!(
            "[{label}] codes off: Rounding::Htp {m_htp} (max {max_htp}), floor {m_floor}, nearest {m_near} of {} ({distinct} distinct)",
            m * n
        );
        assert!(distinct > 100, "{label}: degenerate output");
        assert_eq!(htp, lin, "{label}: linear and conv2d references differ");
        assert!(max_htp <= 1.0, "{label}");
        assert!(
            m_floor > m * n / 10 && m_near > m * n / 10,
            "{label}: floor {m_floor}, nearest {m_near}"
        );
        total_htp += m_htp;
    }
    // Measured: see the printout; a near-tie now and then (~0.05% of the codes).
    assert!(total_htp <= 4 * m * n / 500, "{total_htp} codes off");
}

/// Emulator vs CPU reference (`Rounding::Htp` and round-to-nearest) on one function:
/// (codes off under Htp, max |diff| under Htp, codes off rounding to nearest, distinct
/// emulator codes) of its single u16 output.
fn htp_vs_emulator(
    lib: &Arc<QnnLibrary>,
    label: &str,
    f: &Function,
    inputs: &[Vec<u8>],
) -> (usize, f64, usize, usize) {
    use mllm_runtime::cpu::{CpuProgram, NumericMode, Rounding, WeightCache};
    let r = run(lib, f, &WeightStore::new(), inputs).unwrap_or_else(|e| panic!("{label}: {e}"));
    let mut cache = WeightCache::new();
    let mut prog = CpuProgram::compile(
        f,
        &WeightStore::new(),
        NumericMode::Fixed(Rounding::Htp),
        &mut cache,
    )
    .unwrap_or_else(|e| panic!("{label}: {e}"));
    let mut htp = vec![0u8; r.types[0].byte_size()];
    let ins: Vec<&[u8]> = inputs.iter().map(|v| v.as_slice()).collect();
    prog.run_bytes(&ins, &mut [&mut htp], None)
        .unwrap_or_else(|e| panic!("{label}: {e}"));
    let emu = decode(&r.types[0], &r.qnn[0]);
    let (h, n) = (decode(&r.types[0], &htp), decode(&r.types[0], &r.cpu[0]));
    let off = |c: &[f64]| emu.iter().zip(c).filter(|(a, b)| a != b).count();
    let max = emu
        .iter()
        .zip(&h)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    let distinct = emu
        .iter()
        .map(|v| *v as i64)
        .collect::<std::collections::HashSet<_>>()
        .len();
    let res = (off(&h), max, off(&n), distinct);
    println!(
        "[{label}] codes off: Rounding::Htp {} (max {}), nearest {} of {} ({} distinct)",
        res.0,
        res.1,
        res.2,
        emu.len(),
        res.3
    );
    res
}

/// One u16 binary op `kind` on `n` random code pairs (`a`, `b` -> `o` encodings, inputs from
/// `seed`): asserts the CPU reference in `Rounding::Htp` equals the emulator on every code
/// (and that the output is not degenerate); returns how many codes rounding the exact value
/// to nearest would get wrong.
fn binary_u16_exact(
    lib: &Arc<QnnLibrary>,
    kind: OpKind,
    a: (f32, i32),
    b: (f32, i32),
    o: (f32, i32),
    n: usize,
    seed: u64,
) -> usize {
    use mllm_ir::types::per_tensor;
    let label = format!("{} u16 {a:?} {b:?} -> {o:?}", kind.name());
    let (mut f, x) = func(
        "ew",
        &[
            ("a", t(&[1, n], per_tensor(Storage::U16, a.0, a.1))),
            ("b", t(&[1, n], per_tensor(Storage::U16, b.0, b.1))),
        ],
    );
    let y = op(
        &mut f,
        kind,
        &[x[0], x[1]],
        none(),
        t(&[1, n], per_tensor(Storage::U16, o.0, o.1)),
    );
    ret(&mut f, &[y], &["y"]);
    let mut rng = Rng::new(seed);
    let inputs: Vec<Vec<u8>> = f
        .args()
        .iter()
        .map(|v| random_bytes(f.ty(*v), &mut rng, 0))
        .collect();
    let (off, _, n_off, distinct) = htp_vs_emulator(lib, &label, &f, &inputs);
    assert!(distinct > 1000, "{label}: degenerate output");
    assert_eq!(off, 0, "{label}");
    n_off
}

/// u16 `nn.add` / `nn.sub` (rope's sum, the residual adds): the CPU reference in
/// `Rounding::Htp` (`quant::HtpAdd`, 16-bit multipliers on a common shift) is bit-exact
/// with the emulator for scale triples like the tiny model's (rope: ratios ~1 and ~0.9;
/// residual: ratios ~1 and ~0.7; ratios below 1/2, one above 1); rounding the exact sum
/// to nearest misses 5-20% of the codes.
#[test]
fn add_sub_u16_htp_bit_exact() {
    let _g = serial();
    let Some(lib) = library() else { return };
    let n = 8192;
    type Q = (f32, i32);
    let cases: [(OpKind, Q, Q, Q); 5] = [
        (
            OpKind::Add,
            (1.015_162_3e-4, -32427),
            (8.930_691_5e-5, -33251),
            (1.021_815_5e-4, -32641),
        ),
        (
            OpKind::Add,
            (3.3e-6, -29177),
            (2.37e-6, -33498),
            (3.32e-6, -29000),
        ),
        (OpKind::Add, (1e-5, -30000), (3e-5, -33000), (3e-4, -32768)),
        (OpKind::Add, (2e-4, -30000), (1e-4, -33000), (6e-5, -32768)),
        (
            OpKind::Sub,
            (1e-4, -30000),
            (1.2e-4, -33000),
            (1.5e-4, -32768),
        ),
    ];
    let mut near = 0;
    for (i, (kind, a, b, o)) in cases.into_iter().enumerate() {
        near += binary_u16_exact(&lib, kind, a, b, o, n, 300 + i as u64);
    }
    assert!(
        near > n / 10,
        "rounding to nearest should miss many codes ({near})"
    );
}

/// u16 x u8 `nn.matmul` (attention scores against the u8 key cache, `transpose_b`, and
/// probabilities times the u8 value cache): the CPU reference in `Rounding::Htp`
/// (`quant::HtpMatMul`) matches the emulator up to rare near-ties; flooring the exact
/// result (the former model) misses about a fifth of the codes (measured 1,382 of 6,656),
/// rounding it to nearest 40% or more.
#[test]
fn matmul_u16_by_u8_htp_integer_model() {
    use mllm_ir::types::per_tensor;
    use mllm_runtime::cpu::{CpuProgram, NumericMode, Rounding, WeightCache};
    let _g = serial();
    let Some(lib) = library() else { return };
    // (label, q rows, K, N, transpose_b, u16 (scale, offset), u8 scale, out (scale, offset))
    type Case = (
        &'static str,
        usize,
        usize,
        usize,
        bool,
        (f32, i32),
        f32,
        (f32, i32),
    );
    let cases: [Case; 3] = [
        (
            "scores q.k^T",
            32,
            16,
            64,
            true,
            (1.05e-4, -32641),
            0.026,
            (4.389e-4, -30000),
        ),
        (
            "scores q.k^T (wide)",
            64,
            128,
            64,
            true,
            (1.0e-4, -30000),
            0.03,
            (1e-3, -31000),
        ),
        (
            "context p.v",
            32,
            64,
            16,
            false,
            (1.525_902_2e-5, 0),
            0.004_535,
            (1.386e-5, -32768),
        ),
    ];
    let (mut total, mut floor_off, mut count) = (0, 0, 0);
    for (i, (label, m, k, n, tb, a, sy, o)) in cases.into_iter().enumerate() {
        let yshape = if tb { [1, 1, n, k] } else { [1, 1, k, n] };
        let (mut f, x) = func(
            "mm",
            &[
                ("a", t(&[1, 1, m, k], per_tensor(Storage::U16, a.0, a.1))),
                ("b", t(&yshape, per_tensor(Storage::U8, sy, -128))),
            ],
        );
        let attrs = if tb {
            attrs([("transpose_b", Attr::Bool(true))])
        } else {
            none()
        };
        let oty = t(&[1, 1, m, n], per_tensor(Storage::U16, o.0, o.1));
        let y = op(&mut f, OpKind::MatMul, &[x[0], x[1]], attrs, oty.clone());
        ret(&mut f, &[y], &["y"]);
        let mut inputs = kv_inputs(&f, 500 + i as u64);
        if !tb {
            // Probabilities: each row sums to about one (u16 codes, scale 2^-16).
            let mut rng = Rng::new(600 + i as u64);
            let mut row: Vec<u16> = Vec::new();
            inputs[0] = (0..m)
                .flat_map(|_| {
                    row = (0..k)
                        .map(|_| rng.int(0, 2 * 65535 / k as i64) as u16)
                        .collect();
                    row.iter()
                        .flat_map(|v| v.to_le_bytes())
                        .collect::<Vec<u8>>()
                })
                .collect();
        }
        let (off, max, _, distinct) = htp_vs_emulator(&lib, label, &f, &inputs);
        assert!(distinct > 50, "{label}: degenerate output");
        assert!(max <= 1.0, "{label}");
        total += off;
        count += m * n;
        // The former model: the exact product rounded down.
        let mut cache = WeightCache::new();
        let mut prog = CpuProgram::compile(
            &f,
            &WeightStore::new(),
            NumericMode::Fixed(Rounding::Floor),
            &mut cache,
        )
        .unwrap_or_else(|e| panic!("{label}: {e}"));
        let mut fl = vec![0u8; oty.byte_size()];
        let ins: Vec<&[u8]> = inputs.iter().map(|v| v.as_slice()).collect();
        prog.run_bytes(&ins, &mut [&mut fl], None)
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        let r = run(&lib, &f, &WeightStore::new(), &inputs).unwrap_or_else(|e| panic!("{e}"));
        floor_off += r.qnn[0]
            .chunks_exact(2)
            .zip(fl.chunks_exact(2))
            .filter(|(p, q)| p != q)
            .count();
    }
    // Measured: 0 codes off in all three cases (probes: 0-3 near-ties per 1k-16k codes);
    // flooring: 1,382 of 6,656.
    assert!(total * 200 <= count, "{total} of {count} codes off");
    assert!(
        floor_off * 8 > count,
        "flooring should miss many ({floor_off} of {count})"
    );
}

/// u16 `nn.mul` (rope's products with cos / sin, the MLP's gate products): the CPU
/// reference in `Rounding::Htp` (`htp_ew::HtpMul`: one multiplier `round(R 2^34)` and a
/// rounding constant with a wrapped 32-bit offset term) is bit-exact with the emulator
/// for the tiny model's encodings and others (ratios 1e-6 to 3e-4, offsets -40000 to 0);
/// rounding the exact product to nearest misses a few tenths of a percent.
#[test]
fn mul_u16_htp_bit_exact() {
    let _g = serial();
    let Some(lib) = library() else { return };
    let n = 16384;
    type Q = (f32, i32);
    let cases: [(Q, Q, Q); 8] = [
        // rope_q.mul_cos, rope_k.mul_sin of the tiny model.
        (
            (1.081_119_5e-4, -32768),
            (3.051_804_4e-5, -32768),
            (1.064_118_8e-4, -32244),
        ),
        (
            (9.941_006e-5, -32589),
            (3.051_722_5e-5, -32768),
            (9.155_186e-5, -33313),
        ),
        // act.mul (with a separate sigmoid operand) and mlp.mul.
        (
            (2.195_493_8e-5, -34084),
            (1.525_878_9e-5, 0),
            (1.068_567_4e-5, -22493),
        ),
        (
            (1.068_567_4e-5, -22493),
            (2.091_629_2e-5, -32939),
            (5.453_619_5e-6, -38625),
        ),
        ((1e-5, -31000), (1e-5, -34000), (1e-4, -32768)),
        ((3e-4, -31000), (1e-4, -34000), (1e-4, -32768)),
        ((5e-4, -31000), (1e-3, -1000), (1e-2, -32768)),
        ((2e-4, -30000), (1e-4, -34000), (1e-4, -32768)),
    ];
    let mut near = 0;
    for (i, (a, b, o)) in cases.into_iter().enumerate() {
        near += binary_u16_exact(&lib, OpKind::Mul, a, b, o, n, 400 + i as u64);
    }
    assert!(near > 0, "rounding to nearest should miss some codes");
}

/// Every u16 code through `nn.sigmoid` (`x` with `(scale, offset)`) and through
/// `x * sigmoid(x)` into `mul`: the graph, `x` bytes and the number of codes.
fn silu_graph(x: (f32, i32), mul: Option<(f32, i32)>) -> (Function, Vec<Vec<u8>>) {
    use mllm_ir::types::per_tensor;
    let n = 65536;
    let (mut f, a) = func(
        "ew",
        &[("x", t(&[1, n], per_tensor(Storage::U16, x.0, x.1)))],
    );
    let s = op(
        &mut f,
        OpKind::Sigmoid,
        &[a[0]],
        none(),
        t(&[1, n], per_tensor(Storage::U16, 1.0 / 65536.0, 0)),
    );
    let y = match mul {
        Some(m) => op(
            &mut f,
            OpKind::Mul,
            &[a[0], s],
            none(),
            t(&[1, n], per_tensor(Storage::U16, m.0, m.1)),
        ),
        None => s,
    };
    ret(&mut f, &[y], &["y"]);
    let bytes = (0..=65535u16).flat_map(|q| q.to_le_bytes()).collect();
    (f, vec![bytes])
}

/// `x * sigmoid(x)` (the MLP's SiLU), which the HTP fuses: the CPU reference in
/// `Rounding::Htp` (`HtpMul::fused_with_sigmoid` of the bit-exact sigmoid: 1/16 code
/// more in the rounding constant and the input offset rounded to 8 significant bits in
/// its linear term) is bit-exact with the emulator over every input code, for the test
/// models' encodings and offsets whose rounding moves the constant (`d_a` = -5232,
/// -20000, 12768); rounding the exact product to nearest misses thousands of codes.
#[test]
fn silu_u16_htp_bit_exact() {
    let _g = serial();
    let Some(lib) = library() else { return };
    for (x, m) in [
        ((2.195_493_8e-5, -34084), (1.068_567_4e-5, -22493)),
        ((2.067_890_3e-5, -33105), (1.027_236_25e-5, -22341)),
        ((2.011_531_4e-5, -32972), (1.001_914_5e-5, -22508)),
        ((1e-4, -32768), (5e-5, -5000)),
        ((2e-5, -38000), (1e-5, -22000)),
        ((3.3e-5, -52768), (2.1e-5, -30000)),
        ((7e-6, -20000), (4e-6, -25000)),
    ] {
        let label = format!("silu u16 {x:?} -> {m:?}");
        let (f, inputs) = silu_graph(x, Some(m));
        let (off, _, n_off, distinct) = htp_vs_emulator(&lib, &label, &f, &inputs);
        assert!(distinct > 1000, "{label}: degenerate output");
        assert_eq!(off, 0, "{label}");
        assert!(n_off > 1000, "{label}: nearest {n_off}");
    }
}

/// u16 `nn.sigmoid` into scale 2^-16: the CPU reference in `Rounding::Htp`
/// (`htp_ew::HtpSigmoid`: the HTP's input grid of step 1/6144, its one's-complement
/// symmetry and its 15-bit value table measured with `examples/sigmoid_table.rs`) is
/// bit-exact with the emulator on every input code, for the test models' encodings and
/// input scales from 2e-7 to 0.5 (grid shifts 15 down to 3), positive and negative
/// offsets; rounding the exact value to nearest misses many codes.
#[test]
fn sigmoid_u16_htp_bit_exact() {
    let _g = serial();
    let Some(lib) = library() else { return };
    for x in [
        (2.195_493_8e-5, -34084),
        (2.116_233_4e-5, -33972),
        (2.067_890_3e-5, -33105),
        (2.011_531_4e-5, -32972),
        (2e-7, -32768),
        (5e-6, -32768),
        (4.2e-5, -65535),
        (1e-4, -30000),
        (1.1e-4, 0),
        (2.5e-4, -41000),
        (3e-3, -32768),
        (0.5, -32000),
    ] {
        let label = format!("sigmoid u16 {x:?}");
        let (f, inputs) = silu_graph(x, None);
        let (off, _, n_off, distinct) = htp_vs_emulator(&lib, &label, &f, &inputs);
        assert!(distinct > 30, "{label}: degenerate output");
        assert_eq!(off, 0, "{label}");
        assert!(n_off > 0, "{label}: rounding to nearest should miss codes");
    }
}
