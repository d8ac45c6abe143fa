//! Debug helper: how does HTP's 16-bit `Softmax` compute? Rows of two u16 inputs
//! `[m, m - d]` for several gaps `d` and input scales; from the emulator's outputs
//! `p0, p1` the effective exponent `beta_eff = ln(p0 / p1) / d` is printed (1.0 for an
//! exact softmax), with the CPU reference's value next to it.
//!
//! `cargo run -p mllm-backend-qnn --release --example softmax_probe`

use mllm_backend_qnn::emulate::{emulate_function, return_op, PROBE_OPTIONS};
use mllm_ir::types::per_tensor;
use mllm_ir::{Attrs, ElemType, Function, OpKind, Storage, Type, WeightStore};
use mllm_qnn_sys::QnnLibrary;
use mllm_runtime::cpu::{CpuProgram, NumericMode, Rounding, WeightCache};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let lib = QnnLibrary::load(None)?;
    let gaps = [0.25f64, 0.5, 1.0, 2.0, 3.0, 4.0, 6.0];
    let m_real: f64 = std::env::var("M")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    let scales: Vec<f64> = match std::env::var("SCALES") {
        Ok(s) => s.split(',').filter_map(|v| v.parse().ok()).collect(),
        Err(_) => vec![
            1e-4,
            2e-4,
            3e-4,
            4.0e-4,
            4.1456925e-4,
            4.18058e-4,
            5e-4,
            7e-4,
            1e-3,
            2e-3,
        ],
    };
    let offset: i32 = std::env::var("OFFSET")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(-57000);
    let n: usize = std::env::var("N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let fill: f64 = std::env::var("FILL")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(-27.0);
    for s in scales {
        let rows = gaps.len();
        let ity = Type::tensor(vec![rows, n], per_tensor(Storage::U16, s as f32, offset));
        let oty = Type::tensor(vec![rows, n], per_tensor(Storage::U16, 1.0 / 65535.0, 0));
        let mut f = Function::new("sm");
        let x = f.add_arg(ity.clone(), Some("x"));
        return_op(&mut f, OpKind::Softmax, &[x], Attrs::new(), &oty);
        let mut input = Vec::new();
        let mut dq = Vec::new();
        if let Ok(path) = std::env::var("ROW") {
            // Replay recorded input codes (4 rows of 64) and print the emulator's output.
            let codes: Vec<u16> = std::fs::read_to_string(path)?
                .split(',')
                .filter_map(|v| v.trim().parse().ok())
                .collect();
            let ty = Type::tensor(
                vec![1, 1, codes.len() / 64, 64],
                per_tensor(Storage::U16, s as f32, offset),
            );
            let oty = Type::tensor(
                vec![1, 1, codes.len() / 64, 64],
                per_tensor(Storage::U16, 1.0 / 65535.0, 0),
            );
            let mut f = Function::new("sm");
            let x = f.add_arg(ty, Some("x"));
            return_op(&mut f, OpKind::Softmax, &[x], Attrs::new(), &oty);
            let input: Vec<u8> = codes.iter().flat_map(|c| c.to_le_bytes()).collect();
            let out = emulate_function(&lib, &f, &WeightStore::new(), &[&input], PROBE_OPTIONS)?
                .remove(0);
            let o: Vec<String> = out
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]).to_string())
                .collect();
            println!("{}", o.join(","));
            continue;
        }
        for d in gaps {
            let c0 = (m_real / s).round() as i64 - offset as i64;
            let c1 = c0 - (d / s).round() as i64;
            dq.push((c0 - c1) as f64 * s);
            let cf = c0 + (fill / s).round() as i64;
            for j in 0..n {
                let c = match j {
                    0 => c0,
                    1 => c1,
                    _ => cf,
                };
                input.extend_from_slice(&(c.clamp(0, 65535) as u16).to_le_bytes());
            }
        }
        let out =
            emulate_function(&lib, &f, &WeightStore::new(), &[&input], PROBE_OPTIONS)?.remove(0);
        let mut cache = WeightCache::new();
        let mut prog = CpuProgram::compile(
            &f,
            &WeightStore::new(),
            NumericMode::Fixed(Rounding::HalfAwayFromZero),
            &mut cache,
        )?;
        let mut cout = vec![0u8; oty.byte_size()];
        prog.run_bytes(&[&input], &mut [&mut cout], None)?;
        let u = |b: &[u8], i: usize| u16::from_le_bytes([b[2 * i], b[2 * i + 1]]) as f64;
        print!("scale {s:.4e}:");
        for (r, d) in dq.iter().enumerate() {
            let (p0, p1) = (u(&out, n * r), u(&out, n * r + 1));
            let (c0, c1) = (u(&cout, n * r), u(&cout, n * r + 1));
            print!(
                "  d {d:.2}: {:.5} ({p0}/{p1} cpu {c0}/{c1})",
                (p0 / p1).ln() / d
            );
        }
        println!();
        let _ = ElemType::F32;
    }
    Ok(())
}
