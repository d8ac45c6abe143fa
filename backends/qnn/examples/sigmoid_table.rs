//! Probe: measures the 15-bit value table `F(k)` of HTP's u16 `Sigmoid` (output scale
//! 2^-16, offset 0) in QNN's HTP emulator (SoC 57, FP16 precision config, O3), checks it
//! against held-out input encodings, and (with `GEN=path`) writes it as the runtime's
//! `htp_sigmoid_table.bin` (`mllm_runtime::cpu::htp_ew`).
//!
//! `cargo run -p mllm-backend-qnn --release --example sigmoid_table`
//!
//! The model being measured (`htp_ew` module docs): with `n = q + o` and the 15-bit
//! multiplier `M = round(s 6144 2^sh)` (`sh = 15`, or less for input scales above 1/6144:
//! the largest shift with `M < 2^15`), the grid index is `k = floor(|n| M / 2^sh)`; the
//! output code is `2 F(k)` for `n >= 0` and `2 (32767 - F(k))` for `n < 0`.
//!
//! 1. Table runs: every u16 code at input scale `f32(1/6144)` (`M = 2^15`, so `k = |n|`)
//!    with offset 0 (`n = 0..=65535`) and offset -65535 (`n = -65535..=0`): `F(k)` for
//!    every `k` in `0..=65535` from each side; the two must agree.
//! 2. Held-out runs: every u16 code at other encodings (`SCALES="s,o;s,o"` overrides the
//!    list; the default has 28: the test models' four sigmoid inputs and input scales
//!    from 1e-7 to 1, offsets from -65535 to 0): codes predicted from the table
//!    (`F(k) = 32767` for `k > 65535`) against the emulator, mismatches printed, and the
//!    runtime's [`HtpSigmoid`] against the emulator.
//! 3. `GEN=path`: `F(k) - F(k - 1)` for `k` in `1..=65535` (each 0, 1 or 2) packed 2 bits
//!    each, 4 per byte little-end first, entry `k - 1` at bits `2 ((k - 1) mod 4)` of byte
//!    `(k - 1) / 4` (16,384 bytes, the last entry padding 0), written atomically; only if
//!    the table runs agree and every held-out run matches.
//!
//! # Findings (QNN 2.51 x86 emulator, v75)
//!
//! The two table runs agree on every `k` (all codes even), `F` rises by 0, 1 or 2 per
//! step from 16,384 to 32,767 at `k = 62,485` and stays there; every held-out encoding
//! (the 28 defaults; also 5e-3, 3e-2 and 2e-8) is predicted with 0 mismatches of 65,536
//! codes, and the runtime's `HtpSigmoid` built from the written table matches all 28.
//! The shift rule shows at scales above 1/6144: at 2e-4 `sh = 15` (`M = 40265`) misses
//! 5,282 codes, `sh = 14` (`M = 20133`) none.

use std::sync::Arc;

use mllm_backend_qnn::emulate::{emulate_function, probe_env, return_op, PROBE_OPTIONS};
use mllm_ir::types::per_tensor;
use mllm_ir::{Attrs, Function, OpKind, Storage, Type, WeightStore};
use mllm_qnn_sys::QnnLibrary;
use mllm_runtime::cpu::htp_ew::HtpSigmoid;

/// Emulator output codes of the sigmoid of every u16 code with input encoding `(s, o)`.
fn sigmoid_codes(lib: &Arc<QnnLibrary>, s: f32, o: i32) -> Result<Vec<u16>, String> {
    let n = 65536;
    let mut f = Function::new("sigmoid");
    let x = f.add_arg(
        Type::tensor(vec![1, n], per_tensor(Storage::U16, s, o)),
        Some("x"),
    );
    let (so, oo) = HtpSigmoid::OUTPUT;
    let oty = Type::tensor(vec![1, n], per_tensor(Storage::U16, so, oo));
    return_op(&mut f, OpKind::Sigmoid, &[x], Attrs::new(), &oty);
    let bytes: Vec<u8> = (0..=65535u16).flat_map(|q| q.to_le_bytes()).collect();
    let out = emulate_function(lib, &f, &WeightStore::new(), &[&bytes], PROBE_OPTIONS)
        .map_err(|e| format!("sigmoid at ({s:e}, {o}): {e}"))?;
    Ok(out[0]
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect())
}

/// The grid index `k` of `n = q + o` at input scale `s`: `floor(|n| M / 2^sh)` with the
/// 15-bit multiplier `M = round(s 6144 2^sh)` on the largest shift `sh <= 15` that keeps
/// `M < 2^15`.
fn grid(s: f32, n: i64) -> i64 {
    let mut sh = 15;
    let mut m = (s as f64 * 6144.0 * 32768.0).round() as i64;
    while m >= 1 << 15 && sh > 0 {
        sh -= 1;
        m = (s as f64 * 6144.0 * 2f64.powi(sh)).round() as i64;
    }
    (n.abs() * m) >> sh
}

/// The output code of `n` from table value `f` of its grid index.
fn code(n: i64, f: u16) -> u16 {
    if n >= 0 {
        2 * f
    } else {
        2 * (32767 - f)
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let lib = QnnLibrary::load(None)?;
    let s_table = 1.0f32 / 6144.0;
    if grid(s_table, 12345) != 12345 {
        return Err("the table scale should give k = |n|".into());
    }
    // 1. The table from both sides.
    let pos = sigmoid_codes(&lib, s_table, 0)?;
    let neg = sigmoid_codes(&lib, s_table, -65535)?;
    let mut table = vec![0u16; 65536];
    let (mut odd, mut disagree) = (0usize, 0usize);
    for k in 0..65536usize {
        // n = k (code k at offset 0) and n = -k (code 65535 - k at offset -65535).
        let (yp, yn) = (pos[k], neg[65535 - k]);
        odd += (yp % 2 + yn % 2) as usize;
        let (fp, fn_) = (yp / 2, 32767 - yn / 2);
        // n = 0 (k = 0) is non-negative on both sides.
        let fn_ = if k == 0 { yn / 2 } else { fn_ };
        disagree += (fp != fn_) as usize;
        table[k] = fp;
    }
    let deltas: Vec<i32> = table
        .windows(2)
        .map(|w| w[1] as i32 - w[0] as i32)
        .collect();
    let bad_delta = deltas.iter().filter(|d| !(0..=2).contains(*d)).count();
    let sat = table.iter().position(|&f| f == 32767).unwrap_or(65536);
    let sat_ok = table[sat.min(65535)..].iter().all(|&f| f == 32767);
    println!(
        "table: F(0) = {}, odd codes {odd}, sides disagree at {disagree} k, deltas outside 0..=2: \
         {bad_delta}, F = 32767 from k = {sat} on: {sat_ok}",
        table[0]
    );
    // 2. Held-out encodings.
    let cases: Vec<(f32, i32)> = match std::env::var("SCALES") {
        Ok(v) => v
            .split(';')
            .filter_map(|c| {
                let (s, o) = c.split_once(',')?;
                Some((s.trim().parse().ok()?, o.trim().parse().ok()?))
            })
            .collect(),
        Err(_) => vec![
            // The test models' `mlp.act.sigmoid` inputs (qnn_run model, tiny model).
            (2.067_890_3e-5, -33105),
            (2.011_531_4e-5, -32972),
            (2.195_493_8e-5, -34084),
            (2.116_233_4e-5, -33972),
            (2f32.powi(-18), -32768),
            (3e-6, -40000),
            (5e-6, -32768),
            (7.3e-6, -1000),
            (1.234e-5, -65535),
            (3.3e-5, -20000),
            (5.1e-5, -32768),
            (1e-4, -30000),
            (1e-4, 0),
            (1.5e-4, -50000),
            (1.627e-4, -40000),
            (1.7e-4, -32768),
            (2e-4, -32768),
            (3e-4, -32768),
            (4.4e-4, -60000),
            (1e-3, -32768),
            (1.3e-3, -30000),
            (2e-3, -32768),
            (1e-2, -32768),
            (0.1, -32768),
            (1.0, -32768),
            (1.3e-6, -32768),
            (1e-6, -65535),
            (1e-7, -65535),
        ],
    };
    let mut held_out_bad = 0usize;
    for (s, o) in cases {
        let y = sigmoid_codes(&lib, s, o)?;
        let (mut miss, mut kmax) = (0usize, 0i64);
        for q in 0..=65535u16 {
            let n = q as i64 + o as i64;
            let k = grid(s, n);
            kmax = kmax.max(k);
            let f = table.get(k as usize).copied().unwrap_or(32767);
            miss += (code(n, f) != y[q as usize]) as usize;
        }
        held_out_bad += miss;
        let rt = HtpSigmoid::new((s, o), HtpSigmoid::OUTPUT).map(|h| {
            (0..=65535u16)
                .filter(|&q| h.apply(q) != y[q as usize])
                .count()
        });
        println!(
            "({s:e}, {o}): k up to {kmax}, measured table misses {miss} of 65536; \
             runtime HtpSigmoid: {}",
            rt.map_or("outside its domain".to_string(), |m| format!("{m} off"))
        );
    }
    if let Ok(path) = std::env::var("GEN") {
        if odd + disagree + bad_delta + held_out_bad > 0 || !sat_ok {
            return Err("the measurements are not consistent: no table written".into());
        }
        let mut bytes = vec![0u8; 16384];
        for (i, d) in deltas.iter().enumerate() {
            bytes[i / 4] |= (*d as u8) << (2 * (i % 4));
        }
        let tmp = format!("{path}.tmp");
        std::fs::write(&tmp, &bytes)?;
        std::fs::rename(&tmp, &path)?;
        println!("wrote {path} ({} bytes)", bytes.len());
    }
    if probe_env("DETAIL", 0usize) > 0 {
        for k in (0..65536).step_by(probe_env("STEP", 4096usize)) {
            println!("  F({k}) = {}", table[k]);
        }
    }
    Ok(())
}
