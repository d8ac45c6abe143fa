//! Times the attention scores of a decode step on the CPU executor, `q [1, 8, 2, 128]` times
//! the keys of a 1024-entry cache, for 28 layers: keys transposed `[1, H, D, W]` (plain
//! matmul, the old cache layout) vs keys in rows `[1, H, W, D]` (`transpose_b`, the current
//! one), float and fixed-point (u16 x u8). Best of 20 rounds, each pair run twice.
//! Usage: `cargo run --release -p mllm-runtime --example kq_probe`.
use mllm_ir::types::{per_tensor, Storage};
use mllm_ir::{attrs, Attr, Attrs, ElemType, Function, Module, OpKind, Type};
use mllm_runtime::cpu::{CpuExecutor, NumericMode};
use mllm_runtime::Executor;
use std::time::Instant;

fn module(rows: bool, fixed: bool, h: usize, m: usize, d: usize, w: usize) -> Module {
    let (qe, ke, oe) = if fixed {
        (
            per_tensor(Storage::U16, 1e-4, -32768),
            per_tensor(Storage::U8, 0.03, -128),
            per_tensor(Storage::U16, 2e-3, -32768),
        )
    } else {
        (ElemType::F32, ElemType::F32, ElemType::F32)
    };
    let mut f = Function::new("g");
    let q = f.add_arg(Type::tensor(vec![1, h, m, d], qe), Some("q"));
    let kshape = if rows {
        vec![1, h, w, d]
    } else {
        vec![1, h, d, w]
    };
    let k = f.add_arg(Type::tensor(kshape, ke), Some("k"));
    let a = if rows {
        attrs([("transpose_b", Attr::Bool(true))])
    } else {
        Attrs::new()
    };
    let op = f.builder().op_typed(
        OpKind::MatMul,
        &[q, k],
        a,
        &[Type::tensor(vec![1, h, m, w], oe)],
    );
    let y = f.op(op).results[0];
    f.builder().ret(&[y]);
    f.result_names = vec![Some("y".into())];
    let mut md = Module::new();
    md.functions.push(f);
    md
}

fn main() {
    let (h, m, d, w) = (8, 2, 128, 1024);
    for fixed in [false, true] {
        for rows in [false, true, false, true] {
            let md = module(rows, fixed, h, m, d, w);
            let mode = if fixed {
                NumericMode::Fixed(Default::default())
            } else {
                NumericMode::Float
            };
            let mut ex = CpuExecutor::new(&md, mode).unwrap();
            let g = ex.graphs()[0].clone();
            let ins: Vec<Vec<u8>> = g
                .inputs
                .iter()
                .map(|t| (0..t.byte_size()).map(|i| (i * 7 % 13) as u8).collect())
                .collect();
            let mut outs: Vec<Vec<u8>> =
                g.outputs.iter().map(|t| vec![0u8; t.byte_size()]).collect();
            let i: Vec<&[u8]> = ins.iter().map(|v| v.as_slice()).collect();
            let mut best = f64::MAX;
            for _ in 0..20 {
                let mut o: Vec<&mut [u8]> = outs.iter_mut().map(|v| v.as_mut_slice()).collect();
                let t = Instant::now();
                for _ in 0..28 {
                    ex.execute(0, &i, &mut o).unwrap();
                }
                best = best.min(t.elapsed().as_secs_f64());
            }
            println!(
                "{} keys {}: 28 layers x [1,{h},{m},{d}] x K: best {:.2} ms",
                if fixed { "fixed" } else { "float" },
                if rows {
                    "rows [1,H,W,D] transpose_b"
                } else {
                    "transposed [1,H,D,W]"
                },
                best * 1e3
            );
        }
    }
}
