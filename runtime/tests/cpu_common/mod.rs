//! Shared helpers of the CPU executor tests: random data, one-op graphs, naive index
//! arithmetic and tolerant comparison.
#![allow(dead_code)]

use mllm_ir::types::{ElemType, Type};
use mllm_ir::verify::verify_module;
use mllm_ir::{Attrs, Function, Module, OpKind, ValueId};
use mllm_runtime::cpu::{CpuExecutor, NumericMode, TensorRef};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A test input.
#[derive(Clone, Debug)]
pub enum In {
    /// f32 tensor.
    F(Vec<usize>, Vec<f32>),
    /// i32 tensor.
    I(Vec<usize>, Vec<i32>),
    /// i1 tensor (0 / 1).
    B(Vec<usize>, Vec<f32>),
}

impl In {
    pub fn shape(&self) -> &[usize] {
        match self {
            In::F(s, _) | In::I(s, _) | In::B(s, _) => s,
        }
    }
    pub fn f(&self) -> Vec<f64> {
        match self {
            In::F(_, d) | In::B(_, d) => d.iter().map(|x| *x as f64).collect(),
            In::I(_, d) => d.iter().map(|x| *x as f64).collect(),
        }
    }
}

pub fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

pub fn randn(r: &mut ChaCha8Rng, shape: &[usize]) -> In {
    let n = shape.iter().product();
    In::F(
        shape.to_vec(),
        (0..n).map(|_| r.gen_range(-1.0f32..1.0)).collect(),
    )
}

pub fn numel(s: &[usize]) -> usize {
    s.iter().product()
}

pub fn unravel(mut i: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for d in (0..shape.len()).rev() {
        idx[d] = i % shape[d];
        i /= shape[d];
    }
    idx
}

pub fn ravel(idx: &[usize], shape: &[usize]) -> usize {
    idx.iter().zip(shape).fold(0, |acc, (i, s)| acc * s + i)
}

/// Index into an operand of shape `s` broadcast against the output multi-index `idx`.
pub fn bidx(idx: &[usize], s: &[usize]) -> usize {
    let lead = idx.len() - s.len();
    let sub: Vec<usize> = s
        .iter()
        .enumerate()
        .map(|(d, n)| if *n == 1 { 0 } else { idx[lead + d] })
        .collect();
    ravel(&sub, s)
}

/// Builds a one-op function over the inputs and runs it in float mode.
pub fn run_op(kind: OpKind, ins: &[In], attrs: Attrs) -> (Vec<usize>, Vec<f32>) {
    let mut f = Function::new("t");
    let args: Vec<ValueId> = ins
        .iter()
        .enumerate()
        .map(|(i, x)| {
            let e = match x {
                In::F(..) => ElemType::F32,
                In::I(..) => ElemType::I32,
                In::B(..) => ElemType::Bool,
            };
            f.add_arg(Type::tensor(x.shape().to_vec(), e), Some(&format!("in{i}")))
        })
        .collect();
    let mut b = f.builder();
    let y = b.op(kind, &args, attrs).expect("build op");
    b.ret(&[y]);
    f.result_names = vec![Some("y".into())];
    let shape = f.ty(y).shape().to_vec();
    run_function(f, ins, NumericMode::Float)
        .map(|mut o| (shape, o.remove(0)))
        .expect("run")
}

/// Runs a whole function (module of one function) on the inputs.
pub fn run_function(
    f: Function,
    ins: &[In],
    mode: NumericMode,
) -> Result<Vec<Vec<f32>>, mllm_runtime::cpu::CpuError> {
    let mut m = Module::new();
    m.functions.push(f);
    verify_module(&m).expect("verify");
    run_module(&m, 0, ins, mode)
}

pub fn run_module(
    m: &Module,
    g: usize,
    ins: &[In],
    mode: NumericMode,
) -> Result<Vec<Vec<f32>>, mllm_runtime::cpu::CpuError> {
    let mut ex = CpuExecutor::new(m, mode)?;
    let refs: Vec<TensorRef<'_>> = ins
        .iter()
        .map(|x| match x {
            In::F(_, d) | In::B(_, d) => TensorRef::F32(d),
            In::I(_, d) => TensorRef::I32(d),
        })
        .collect();
    ex.run_f32(g, &refs)
}

/// Asserts `got` matches `want` within `rel` relative error (relative to the value,
/// with the mean magnitude of `want` as a floor).
pub fn assert_close(got: &[f32], want: &[f64], rel: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let mean = want.iter().map(|x| x.abs()).sum::<f64>() / want.len().max(1) as f64;
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let tol = rel * (w.abs() + mean + 1e-30);
        assert!(
            ((*g as f64) - w).abs() <= tol,
            "{what}: element {i}: got {g}, want {w} (tol {tol})"
        );
    }
}

/// Dimensions of the test attention block.
#[derive(Clone, Copy, Debug)]
pub struct AttnDims {
    pub s: usize,
    pub c: usize,
    pub h: usize,
    pub hkv: usize,
    pub d: usize,
    pub hidden: usize,
}

/// A Qwen3-style attention block over the hybrid-mode KV contract, float types:
/// args `x [1,S,E]`, `cos`/`sin [S,D]`, `causal_mask [1,1,S,C]` (1 attend / 0 masked),
/// `past_key`, `past_value [1,Hkv,C-S,D]`; results `out [1,S,E]`,
/// `present_key`, `present_value [1,Hkv,S,D]`; scores `q x k^T` (`transpose_b`).
/// Weights `wq, wk, wv, wo`.
pub fn attention_function(name: &str, a: AttnDims) -> Function {
    attention_function_with(name, a, false)
}

/// [`attention_function`]; with `grouped`, GQA groups the query heads by reshaping
/// (`[1,H,S,D] -> [1,Hkv,G*S,D]`, as the Qwen3 frontend does) instead of repeating the
/// K/V heads, so the K/V concats feed the matmuls directly.
pub fn attention_function_with(name: &str, a: AttnDims, grouped: bool) -> Function {
    use mllm_ir::{attrs, Attr};
    let AttnDims {
        s,
        c,
        h,
        hkv,
        d,
        hidden,
    } = a;
    let f32t = |sh: Vec<usize>| Type::tensor(sh, ElemType::F32);
    let mut f = Function::new(name);
    let x = f.add_arg(f32t(vec![1, s, hidden]), Some("x"));
    let cos = f.add_arg(f32t(vec![s, d]), Some("cos"));
    let sin = f.add_arg(f32t(vec![s, d]), Some("sin"));
    let mask = f.add_arg(f32t(vec![1, 1, s, c]), Some("causal_mask"));
    let pk = f.add_arg(f32t(vec![1, hkv, c - s, d]), Some("past_key_0"));
    let pv = f.add_arg(f32t(vec![1, hkv, c - s, d]), Some("past_value_0"));
    let mut b = f.builder();
    let wq = b.weight("wq", f32t(vec![h * d, hidden]));
    let wk = b.weight("wk", f32t(vec![hkv * d, hidden]));
    let wv = b.weight("wv", f32t(vec![hkv * d, hidden]));
    let wo = b.weight("wo", f32t(vec![hidden, h * d]));
    let lin =
        |b: &mut mllm_ir::Builder<'_>, x, w| b.op(OpKind::Linear, &[x, w], Attrs::new()).unwrap();
    let q = lin(&mut b, x, wq);
    let q = b.reshape(q, &[1, s, h, d]).unwrap();
    let q = b.transpose(q, &[0, 2, 1, 3]).unwrap();
    let q = b.op(OpKind::Rope, &[q, cos, sin], Attrs::new()).unwrap();
    let k = lin(&mut b, x, wk);
    let k = b.reshape(k, &[1, s, hkv, d]).unwrap();
    let k = b.transpose(k, &[0, 2, 1, 3]).unwrap();
    let k = b.op(OpKind::Rope, &[k, cos, sin], Attrs::new()).unwrap();
    let v = lin(&mut b, x, wv);
    let v = b.reshape(v, &[1, s, hkv, d]).unwrap();
    let v = b.transpose(v, &[0, 2, 1, 3]).unwrap();
    let kall = b.concat(&[pk, k], 2).unwrap();
    let vall = b.concat(&[pv, v], 2).unwrap();
    let rep = |b: &mut mllm_ir::Builder<'_>, t| {
        b.op(
            OpKind::Repeat,
            &[t],
            attrs([
                ("axis", Attr::Int(1)),
                ("times", Attr::Int((h / hkv) as i64)),
            ]),
        )
        .unwrap()
    };
    let g = h / hkv;
    let (q, kr, vr) = if grouped {
        (b.reshape(q, &[1, hkv, g * s, d]).unwrap(), kall, vall)
    } else {
        (q, rep(&mut b, kall), rep(&mut b, vall))
    };
    let sc = b
        .op(
            OpKind::MatMul,
            &[q, kr],
            attrs([("transpose_b", Attr::Bool(true))]),
        )
        .unwrap();
    let sc = if grouped {
        b.reshape(sc, &[1, h, s, c]).unwrap()
    } else {
        sc
    };
    let scale = b.scalar(1.0 / (d as f64).sqrt(), ElemType::F32);
    let sc = b.binary(OpKind::Mul, sc, scale).unwrap();
    let one = b.scalar(1.0, ElemType::F32);
    let attend = b.binary(OpKind::Equal, mask, one).unwrap();
    let mn = b
        .op(
            OpKind::ReduceMin,
            &[sc],
            attrs([
                ("axes", Attr::Ints(vec![-1])),
                ("keepdims", Attr::Bool(true)),
            ]),
        )
        .unwrap();
    let m20 = b.scalar(-20.0, ElemType::F32);
    let floor = b.binary(OpKind::Add, mn, m20).unwrap();
    let masked = b
        .op(OpKind::Where, &[attend, sc, floor], Attrs::new())
        .unwrap();
    let p = b.op(OpKind::Softmax, &[masked], Attrs::new()).unwrap();
    let p = if grouped {
        b.reshape(p, &[1, hkv, g * s, c]).unwrap()
    } else {
        p
    };
    let o = b.op(OpKind::MatMul, &[p, vr], Attrs::new()).unwrap();
    let o = if grouped {
        b.reshape(o, &[1, h, s, d]).unwrap()
    } else {
        o
    };
    let o = b.transpose(o, &[0, 2, 1, 3]).unwrap();
    let o = b.reshape(o, &[1, s, h * d]).unwrap();
    let out = lin(&mut b, o, wo);
    b.ret(&[out, k, v]);
    f.result_names = vec![
        Some("out".into()),
        Some("present_key_0".into()),
        Some("present_value_0".into()),
    ];
    f
}

/// Random f32 weights for [`attention_function`], by name, as `(shape, values)`.
pub fn attention_weights(a: AttnDims, seed: u64) -> Vec<(&'static str, Vec<usize>, Vec<f32>)> {
    let mut r = rng(seed);
    let mut w = |n: usize, k: usize| -> Vec<f32> {
        let sc = 1.0 / (k as f32).sqrt();
        (0..n * k).map(|_| r.gen_range(-sc..sc)).collect()
    };
    vec![
        ("wq", vec![a.h * a.d, a.hidden], w(a.h * a.d, a.hidden)),
        ("wk", vec![a.hkv * a.d, a.hidden], w(a.hkv * a.d, a.hidden)),
        ("wv", vec![a.hkv * a.d, a.hidden], w(a.hkv * a.d, a.hidden)),
        ("wo", vec![a.hidden, a.h * a.d], w(a.hidden, a.h * a.d)),
    ]
}

/// A module holding one attention function per `(name, dims)` plus shared weights.
pub fn attention_module(fns: &[(&str, AttnDims)], seed: u64) -> Module {
    attention_module_with(fns, seed, false)
}

/// [`attention_module`] of [`attention_function_with`] functions.
pub fn attention_module_with(fns: &[(&str, AttnDims)], seed: u64, grouped: bool) -> Module {
    let mut m = Module::new();
    for (n, a) in fns {
        m.functions.push(attention_function_with(n, *a, grouped));
    }
    for (n, shape, v) in attention_weights(fns[0].1, seed) {
        let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        m.weights.insert(
            n,
            mllm_ir::Weight::owned(mllm_ir::WDType::F32, shape, bytes).unwrap(),
        );
    }
    verify_module(&m).expect("verify attention module");
    m
}
