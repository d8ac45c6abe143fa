//! Probe: HTP's u16 `RmsNorm` (u16 input and output per-tensor, a u16 gamma weight of
//! offset 0, a zero beta) on chosen rows, run in QNN's HTP emulator (SoC 57, FP16
//! precision config, O3). Prints every output code of each row, one line per row.
//!
//! `ROWS=rows.txt cargo run -p mllm-backend-qnn --release --example rmsnorm_probe`
//!
//! Environment: `ROWS` (file: each line holds up to `D` input codes, the rest `FILLC`;
//! without it `R` random rows are generated and printed as `in: ...` / `out: ...` line
//! pairs), `D` (row length), `SX,OX` (input scale, offset), `SG` (gamma scale, offset 0),
//! `GAMMA` (file of `D` gamma codes, or one code for every entry; default 65535),
//! `SO,OO` (output scale, offset), `EPS`.
//!
//! # Findings (QNN 2.51 x86 emulator, v75)
//!
//! See `mllm_runtime::cpu::htp_norm` (the model and how it was derived from the outputs
//! of this probe); `tests/rms_norm_htp.rs` compares it with the emulator.
use mllm_backend_qnn::emulate::{emulate_function, probe_env as env, return_op, PROBE_OPTIONS};
use mllm_ir::types::per_tensor;
use mllm_ir::{Attr, Function, OpKind, Storage, Type, WDType, Weight, WeightStore};
use mllm_qnn_sys::QnnLibrary;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let lib = QnnLibrary::load(None)?;
    let d: usize = env("D", 64);
    let sx: f32 = env("SX", 1.8138478e-5);
    let ox: i32 = env("OX", -34181);
    let sg: f32 = env("SG", 1.6927977e-5);
    let so: f32 = env("SO", 1.0353507e-4);
    let oo: i32 = env("OO", -32768);
    let eps: f64 = env("EPS", 1e-6);
    let fill: i64 = env("FILLC", -(ox as i64));
    let gspec: String = env("GAMMA", "65535".to_string());
    let gamma: Vec<u16> = if let Ok(c) = gspec.parse::<u16>() {
        vec![c; d]
    } else {
        let g: Vec<u16> = std::fs::read_to_string(&gspec)?
            .split_whitespace()
            .map(|t| t.parse())
            .collect::<Result<_, _>>()?;
        if g.len() != d {
            return Err(format!("{gspec}: {} gamma codes, D={d}", g.len()).into());
        }
        g
    };
    let rows_file: String = env("ROWS", String::new());
    let random = rows_file.is_empty();
    let mut codes = Vec::new();
    if random {
        let r: usize = env("R", 16);
        let mut seed: u64 = env("SEED", 1u64) | 1;
        for _ in 0..r * d {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            codes.push((seed % 65536) as i64);
        }
    } else {
        let text = std::fs::read_to_string(&rows_file)?;
        for (i, line) in text.lines().filter(|l| !l.trim().is_empty()).enumerate() {
            let mut row: Vec<i64> = line
                .split_whitespace()
                .map(|t| t.parse())
                .collect::<Result<_, _>>()?;
            if row.len() > d {
                return Err(format!("{rows_file}: row {} has more than D={d} codes", i + 1).into());
            }
            row.resize(d, fill);
            codes.extend(row);
        }
    }
    let rows = codes.len() / d;
    let ity = Type::tensor(vec![1, 1, rows, d], per_tensor(Storage::U16, sx, ox));
    let gty = Type::tensor(vec![d], per_tensor(Storage::U16, sg, 0));
    let oty = Type::tensor(vec![1, 1, rows, d], per_tensor(Storage::U16, so, oo));
    let mut f = Function::new("rms");
    let x = f.add_arg(ity, Some("x"));
    let g = f.builder().weight("gamma", gty);
    let attrs = mllm_ir::attrs([("epsilon", Attr::Float(eps))]);
    return_op(&mut f, OpKind::RmsNorm, &[x, g], attrs, &oty);
    let mut store = WeightStore::new();
    let gbytes: Vec<u8> = gamma.iter().flat_map(|c| c.to_le_bytes()).collect();
    store.insert("gamma", Weight::owned(WDType::U16, vec![d], gbytes)?);
    let input: Vec<u8> = codes
        .iter()
        .flat_map(|&c| (c.clamp(0, 65535) as u16).to_le_bytes())
        .collect();
    let out = emulate_function(&lib, &f, &store, &[&input], PROBE_OPTIONS)?.remove(0);
    let out: Vec<u16> = out
        .chunks_exact(2)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
        .collect();
    let mut w = String::new();
    for (r, o) in out.chunks_exact(d).enumerate() {
        if random {
            let i: Vec<String> = codes[r * d..(r + 1) * d]
                .iter()
                .map(|c| c.to_string())
                .collect();
            w.push_str("in: ");
            w.push_str(&i.join(" "));
            w.push_str("\nout: ");
        }
        let line: Vec<String> = o.iter().map(|c| c.to_string()).collect();
        w.push_str(&line.join(" "));
        w.push('\n');
    }
    print!("{w}");
    Ok(())
}
