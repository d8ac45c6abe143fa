//! Lowering + finalize timings of a realistic layer: a K x N LPBQ linear (int4, block
//! 16) as a 1x1 Conv2d over the folded weight chain `reshape(transpose(w))`, for
//! prefill (M = 32) and decode (M = 1) graphs, plus the time to serialize the context.
//!
//! `cargo run -p mllm-backend-qnn --release --example lower_timings [K] [N]`
//! (default 2048 2048; needs the QNN library, see scripts/setup-qnn.sh).

use std::time::Instant;

use mllm_backend_qnn::{compile_module, CompileOptions};
use mllm_ir::types::per_tensor;
use mllm_ir::{
    ElemType, Encoding, Expressed, Function, Module, OpKind, QuantType, Storage, Type, WDType,
    Weight,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut argv = std::env::args().skip(1);
    let k: usize = argv.next().map(|s| s.parse()).transpose()?.unwrap_or(2048);
    let n: usize = argv.next().map(|s| s.parse()).transpose()?.unwrap_or(2048);
    let block = 16;
    // Deterministic pseudo-random weights and scales.
    let mut state = 0x1234_5678_9abc_def0u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let codes: Vec<u8> = (0..n * k)
        .map(|_| ((next() % 16) as i8 - 8) as u8)
        .collect();
    let lpbq = ElemType::Quant(QuantType {
        storage: Storage::I4,
        expressed: Expressed::F32,
        encoding: Encoding::Blockwise {
            axis: 0,
            block_size: block as u32,
            block_scale_bits: 4,
            block_scales: (0..n * (k / block))
                .map(|_| (next() % 15 + 1) as u8)
                .collect::<Vec<u8>>()
                .into(),
            channel_scales: (0..n)
                .map(|_| 0.001 + (next() % 1000) as f32 * 1e-5)
                .collect::<Vec<f32>>()
                .into(),
        },
    });
    let act = per_tensor(Storage::U16, 8.0 / 65535.0, -32768);
    let out = per_tensor(Storage::U16, 64.0 / 65535.0, -32768);
    let mut module = Module::new();
    module
        .weights
        .insert("w", Weight::owned(WDType::I8, vec![n, k], codes)?);
    for m in [32usize, 1] {
        let mut f = Function::new(format!("model.0.s{m}"));
        let x = f.add_arg(Type::tensor(vec![1, 1, m, k], act.clone()), Some("x"));
        let w = f
            .builder()
            .weight("w", Type::tensor(vec![n, k], lpbq.clone()));
        let wt = f.builder().transpose(w, &[1, 0])?;
        let hwio = f.builder().reshape(wt, &[1, 1, k, n])?;
        let mut b = f.builder();
        let id = b.op_typed(
            OpKind::Conv2d,
            &[x, hwio],
            Default::default(),
            &[Type::tensor(vec![1, 1, m, n], out.clone())],
        );
        let y = b.func.op(id).results[0];
        b.ret(&[y]);
        f.result_names = vec![Some("y".into())];
        module.functions.push(f);
    }
    for soc in [57u32, 69] {
        let t = Instant::now();
        let c = compile_module(
            &module,
            &CompileOptions {
                soc: Some(soc),
                ..Default::default()
            },
        )?;
        println!("SoC {soc}, LPBQ {k}x{n} block {block}:");
        for s in &c.stats {
            println!(
                "  {}: lower (fold {} weight bytes + create tensors/nodes) {:.3} s, finalize {:.3} s",
                s.name, s.static_bytes, s.lower_secs, s.finalize_secs
            );
        }
        println!(
            "  serialize {:.3} s, binary {:.1} MiB, total {:.3} s",
            c.serialize_secs,
            c.binary.len() as f64 / (1024.0 * 1024.0),
            t.elapsed().as_secs_f64()
        );
    }
    Ok(())
}
