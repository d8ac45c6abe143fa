//! Executes every graph of a compiled context binary in the HTP emulator and compares
//! its outputs with the CPU reference executor (fixed-point mode) on the same random
//! inputs (quantized inputs: uniform codes, u8 ones in 0..=254; i32 inputs: 0..8, valid token ids and
//! positions; i1 inputs: random).
//!
//! `cargo run -p mllm-backend-qnn --release --example compare_cpu -- model.bin model.mlir`
//! (the IR the binary was compiled from; its weights are re-attached from the module's
//! `weights` attribute).

use mllm_ir::{ElemType, Storage, Type};
use mllm_qnn_sys::{Backend, Context, Device, DeviceTarget, QnnLibrary};
use mllm_runtime::cpu::{CpuProgram, NumericMode, Rounding, WeightCache};

fn codes(ty: &Type, b: &[u8]) -> Vec<f64> {
    mllm_runtime::cpu::quant::element_values(ty.elem(), b)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [bin, ir] = &args[..] else {
        return Err("usage: compare_cpu model.bin model.mlir".into());
    };
    let text = std::fs::read_to_string(ir)?;
    let mut module = mllm_ir::parse::parse_verified(&text, ir)?;
    let base = std::path::Path::new(ir).parent();
    mllm_frontends::qwen3::load_weights(&mut module, base)?;
    let manifest = mllm_backend_qnn::verify_manifest(std::path::Path::new(bin))?;
    let bytes = std::fs::read(bin)?;
    let lib = QnnLibrary::load(None)?;
    let backend = Backend::new(&lib)?;
    let target = manifest
        .target
        .soc_model
        .map(DeviceTarget::soc)
        .unwrap_or_default();
    let device = Device::new(&backend, target)?;
    let ctx = Context::from_binary(&backend, &device, &bytes)?;
    drop(bytes);
    let mut cache = WeightCache::new();
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for g in &manifest.graphs {
        let f = module.function(&g.name).ok_or("graph not in the IR")?;
        let mut graph = ctx.retrieve_graph(&g.name)?;
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
                    ElemType::Bool => (0..n).map(|_| (next() % 2) as u8).collect(),
                    ElemType::F32 => (0..n)
                        .flat_map(|_| ((next() % 2001) as f32 / 1000.0 - 1.0).to_le_bytes())
                        .collect(),
                    // u8 (KV) codes stay in 0..=254: HTP's MatMul reads 255 as 254
                    // when the offset is -128 (see the README).
                    ElemType::Quant(q) if q.storage == Storage::U8 => {
                        (0..n).map(|_| (next() % 255) as u8).collect()
                    }
                    _ => (0..ty.byte_size()).map(|_| next() as u8).collect(),
                }
            })
            .collect();
        let types: Vec<Type> = f.returned().iter().map(|v| f.ty(*v).clone()).collect();
        let mut q: Vec<Vec<u8>> = types.iter().map(|t| vec![0u8; t.byte_size()]).collect();
        let t0 = std::time::Instant::now();
        {
            let ins: Vec<&[u8]> = inputs.iter().map(|v| v.as_slice()).collect();
            let mut outs: Vec<&mut [u8]> = q.iter_mut().map(|v| v.as_mut_slice()).collect();
            graph.execute_ordered(&ins, &mut outs)?;
        }
        let qnn_secs = t0.elapsed().as_secs_f64();
        let mut prog = CpuProgram::compile(
            f,
            &module.weights,
            NumericMode::Fixed(Rounding::Htp),
            &mut cache,
        )?;
        let mut c: Vec<Vec<u8>> = types.iter().map(|t| vec![0u8; t.byte_size()]).collect();
        {
            let ins: Vec<&[u8]> = inputs.iter().map(|v| v.as_slice()).collect();
            let mut outs: Vec<&mut [u8]> = c.iter_mut().map(|v| v.as_mut_slice()).collect();
            prog.run_bytes(&ins, &mut outs, None)?;
        }
        println!("graph {} (emulator {:.2} s):", g.name, qnn_secs);
        for (i, ty) in types.iter().enumerate() {
            let (a, b) = (codes(ty, &q[i]), codes(ty, &c[i]));
            let diffs: Vec<f64> = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).collect();
            let max = diffs.iter().copied().fold(0.0, f64::max);
            let mean = diffs.iter().sum::<f64>() / diffs.len().max(1) as f64;
            let within1 =
                diffs.iter().filter(|d| **d <= 1.0).count() as f64 / diffs.len().max(1) as f64;
            println!(
                "  {}: max {max} LSB, mean {mean:.3} LSB, {:.1}% within 1 LSB",
                g.outputs.get(i).map(|o| o.name.as_str()).unwrap_or("?"),
                within1 * 100.0
            );
        }
    }
    Ok(())
}
