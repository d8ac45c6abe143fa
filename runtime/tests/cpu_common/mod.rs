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
