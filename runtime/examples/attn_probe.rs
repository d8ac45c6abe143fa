//! Times the two attention matmuls of a Qwen3-0.6B prefill chunk on the CPU executor
//! (float): scores `q [1, 8, 256, 128] x k^T` over a 1024-entry context (keys in rows,
//! `transpose_b`) and `p [1, 8, 256, 1024] x v [1, 8, 1024, 128]`, best of 10 runs each,
//! in GFLOP/s. Usage: `cargo run --release -p mllm-runtime --example attn_probe [-- ROWS [RUNS]]`.
use mllm_ir::{attrs, Attr, Attrs, ElemType, Function, Module, OpKind, Type};
use mllm_runtime::cpu::{CpuExecutor, NumericMode};
use mllm_runtime::Executor;
use std::time::Instant;

fn module(a: &[usize], b: &[usize], o: &[usize], tb: bool) -> Module {
    let f32t = |s: &[usize]| Type::tensor(s.to_vec(), ElemType::F32);
    let mut f = Function::new("g");
    let x = f.add_arg(f32t(a), Some("a"));
    let y = f.add_arg(f32t(b), Some("b"));
    let at = if tb {
        attrs([("transpose_b", Attr::Bool(true))])
    } else {
        Attrs::new()
    };
    let op = f
        .builder()
        .op_typed(OpKind::MatMul, &[x, y], at, &[f32t(o)]);
    let r = f.op(op).results[0];
    f.builder().ret(&[r]);
    f.result_names = vec![Some("y".into())];
    let mut m = Module::new();
    m.functions.push(f);
    m
}

fn time(name: &str, a: &[usize], b: &[usize], o: &[usize], tb: bool, flop: f64) {
    let m = module(a, b, o, tb);
    let mut ex = CpuExecutor::new(&m, NumericMode::Float).expect("executor");
    let ins: Vec<Vec<u8>> = [a, b]
        .iter()
        .map(|s| {
            let n: usize = s.iter().product();
            (0..n)
                .flat_map(|i| (((i % 97) as f32 - 48.0) * 0.01).to_le_bytes())
                .collect()
        })
        .collect();
    let mut out = vec![0u8; o.iter().product::<usize>() * 4];
    let inr: Vec<&[u8]> = ins.iter().map(|v| v.as_slice()).collect();
    let mut best = f64::INFINITY;
    for _ in 0..iters() {
        let t = Instant::now();
        let mut outs = [out.as_mut_slice()];
        ex.execute(0, &inr, &mut outs).expect("execute");
        best = best.min(t.elapsed().as_secs_f64());
    }
    println!(
        "{name}: {:.3} ms, {:.1} GFLOP/s (x28 layers: {:.1} ms)",
        best * 1e3,
        flop / best / 1e9,
        best * 28e3
    );
}

fn iters() -> usize {
    std::env::args()
        .nth(2)
        .and_then(|a| a.parse().ok())
        .unwrap_or(11)
}

fn main() {
    // Rows per KV head: 256 (a 128-token prefill chunk, 2 query heads per KV head) or,
    // e.g. `-- 2`, a decode step.
    let m: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(256);
    let (h, d, c) = (8, 128, 1024);
    let flop = 2.0 * (h * m * d * c) as f64;
    time(
        "q x k^T",
        &[1, h, m, d],
        &[1, h, c, d],
        &[1, h, m, c],
        true,
        flop,
    );
    time(
        "p x v  ",
        &[1, h, m, c],
        &[1, h, c, d],
        &[1, h, m, d],
        false,
        flop,
    );
}
