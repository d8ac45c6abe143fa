//! Debug helper: cuts function `GRAPH` of an IR module after its `CUT`-th op (its result
//! becomes the only output), compiles that graph alone for SoC 57, executes it in the
//! emulator and compares with the CPU reference (fixed-point) on random inputs.
//!
//! `GRAPH=model.0.s1 CUT=40 cargo run -p mllm-backend-qnn --release --example bisect_cpu -- model.mlir`

use mllm_backend_qnn::emulate::{emulate_function, PROBE_OPTIONS};
use mllm_ir::{ElemType, OpKind, Storage, Type};
use mllm_qnn_sys::QnnLibrary;
use mllm_runtime::cpu::{CpuProgram, NumericMode, Rounding, WeightCache};

fn codes(ty: &Type, b: &[u8]) -> Vec<f64> {
    mllm_runtime::cpu::quant::element_values(ty.elem(), b)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let ir = std::env::args()
        .nth(1)
        .ok_or("usage: bisect_cpu model.mlir")?;
    let gname = std::env::var("GRAPH").unwrap_or_else(|_| "model.0.s1".into());
    let cut: usize = std::env::var("CUT")?.parse()?;
    let text = std::fs::read_to_string(&ir)?;
    let mut module = mllm_ir::parse::parse_verified(&text, &ir)?;
    mllm_frontends::qwen3::load_weights(&mut module, std::path::Path::new(&ir).parent())?;
    let mut f = module.function(&gname).ok_or("no such graph")?.clone();
    let ops: Vec<_> = f
        .op_ids()
        .into_iter()
        .filter(|o| {
            !matches!(
                f.op(*o).kind,
                OpKind::Weight | OpKind::Constant | OpKind::Return
            )
        })
        .collect();
    let target = ops[cut.min(ops.len() - 1)];
    let v = f.op(target).results[0];
    println!(
        "cut after op {} {:?} ({}): {}",
        cut,
        f.op(target).name,
        f.op(target).kind.name(),
        f.ty(v)
    );
    let term = f.terminator().ok_or("no return")?;
    f.op_mut(term).operands = vec![v].into();
    f.result_names = vec![Some("cut".into())];
    // Drop ops after the cut (keeping the return).
    let mut after = false;
    for o in f.op_ids() {
        if after && o != term {
            f.unlink(o);
        }
        if o == target {
            after = true;
        }
    }
    let f = f.compact();
    let lib = QnnLibrary::load(None)?;
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let inputs: Vec<Vec<u8>> = f
        .args()
        .iter()
        .map(|v| {
            let ty = f.ty(*v);
            let n = ty.numel();
            match ty.elem() {
                ElemType::I32 => (0..n)
                    .flat_map(|_| ((next() % 8) as i32).to_le_bytes())
                    .collect(),
                ElemType::Quant(q) if q.storage == Storage::U8 => {
                    (0..n).map(|_| (next() % 255) as u8).collect()
                }
                _ => (0..ty.byte_size()).map(|_| next() as u8).collect(),
            }
        })
        .collect();
    let ty = f.ty(f.returned()[0]).clone();
    let ins: Vec<&[u8]> = inputs.iter().map(|v| v.as_slice()).collect();
    let q = emulate_function(&lib, &f, &module.weights, &ins, PROBE_OPTIONS)?.remove(0);
    let mut cache = WeightCache::new();
    let mut prog = CpuProgram::compile(
        &f,
        &module.weights,
        NumericMode::Fixed(Rounding::Htp),
        &mut cache,
    )?;
    let mut c = vec![0u8; ty.byte_size()];
    prog.run_bytes(&ins, &mut [&mut c], None)?;
    let (a, b) = (codes(&ty, &q), codes(&ty, &c));
    let d: Vec<f64> = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).collect();
    println!(
        "max {} mean {:.3} (cpu range {}..{})",
        d.iter().copied().fold(0.0, f64::max),
        d.iter().sum::<f64>() / d.len() as f64,
        b.iter().copied().fold(f64::INFINITY, f64::min),
        b.iter().copied().fold(f64::NEG_INFINITY, f64::max)
    );
    Ok(())
}
