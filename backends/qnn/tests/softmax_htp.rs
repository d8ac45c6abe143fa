//! `mllm_runtime::cpu::htp_softmax::HtpSoftmax` against the HTP emulator's u16 `Softmax`
//! (SoC 57): swept `[max, max - k, 0 ...]` rows of 256 for a few input encodings, and
//! random attention-like rows. Prints the mismatch counts; skipped with a note when the
//! QNN library is not installed.

mod common;

use common::*;
use mllm_backend_qnn::emulate::{emulate_function, return_op, PROBE_OPTIONS};
use mllm_ir::types::per_tensor;
use mllm_ir::{Attrs, Function, OpKind, Storage, Type, WeightStore};
use mllm_runtime::cpu::htp_softmax::HtpSoftmax;

/// The emulator's softmax over the last axis of `rows` (each `n` codes) with input
/// encoding `(s, off)`.
fn emulator(
    lib: &std::sync::Arc<mllm_qnn_sys::QnnLibrary>,
    rows: &[Vec<u16>],
    n: usize,
    s: f32,
    off: i32,
) -> Vec<u16> {
    let ity = Type::tensor(vec![1, 1, rows.len(), n], per_tensor(Storage::U16, s, off));
    let (os, oo) = HtpSoftmax::OUTPUT;
    let oty = Type::tensor(vec![1, 1, rows.len(), n], per_tensor(Storage::U16, os, oo));
    let mut f = Function::new("sm");
    let x = f.add_arg(ity, Some("x"));
    return_op(&mut f, OpKind::Softmax, &[x], Attrs::new(), &oty);
    let input: Vec<u8> = rows
        .iter()
        .flatten()
        .flat_map(|c| c.to_le_bytes())
        .collect();
    let out = emulate_function(lib, &f, &WeightStore::new(), &[&input], PROBE_OPTIONS)
        .expect("emulator run")
        .remove(0);
    out.chunks_exact(2)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
        .collect()
}

/// `(mismatched elements, largest difference)` of the model against the emulator.
fn compare(rows: &[Vec<u16>], n: usize, s: f32, off: i32, emu: &[u16]) -> (usize, u16) {
    let h = HtpSoftmax::new((s, off), HtpSoftmax::OUTPUT).expect("encoding in domain");
    let mut out = vec![0u16; n];
    let (mut bad, mut max) = (0, 0);
    for (row, e) in rows.iter().zip(emu.chunks_exact(n)) {
        h.row(row, &mut out);
        for (a, b) in out.iter().zip(e) {
            let d = a.abs_diff(*b);
            bad += (d > 0) as usize;
            max = max.max(d);
        }
    }
    (bad, max)
}

/// Rows `[65535, 65535 - k, 0 x 254]` for `k` in `0..kmax`: exact for every row whose
/// exponential sum stays below 2^17 (all of them at these scales).
#[test]
fn pairs_exact() {
    let Some(lib) = library() else { return };
    let _g = serial();
    for (s, off, kmax) in [
        (4.1805804e-4f32, -56879, 8192u16),
        (4.156_27e-4, -30000, 8192),
        (1e-3, -40000, 8192),
        (1e-4, -20000, 16384),
    ] {
        let rows: Vec<Vec<u16>> = (0..kmax)
            .map(|k| {
                let mut r = vec![0u16; 256];
                r[0] = 65535;
                r[1] = 65535 - k;
                r
            })
            .collect();
        let emu = emulator(&lib, &rows, 256, s, off);
        let (bad, max) = compare(&rows, 256, s, off, &emu);
        println!(
            "pairs scale {s:e}: {bad} of {} elements differ (max {max})",
            emu.len()
        );
        assert_eq!(bad, 0, "scale {s:e}");
    }
}

/// Rows of `n` equal maxima (n = 1..=256) and one more entry `k` codes below.
#[test]
fn equal_maxima_exact() {
    let Some(lib) = library() else { return };
    let _g = serial();
    let (s, off) = (4.1805804e-4f32, -56879);
    let mut rows = Vec::new();
    for n in 1..=255usize {
        for k in [0u16, 1, 100, 3000] {
            let mut r = vec![0u16; 256];
            r[..n].fill(65535);
            r[n] = 65535 - k;
            rows.push(r);
        }
    }
    let emu = emulator(&lib, &rows, 256, s, off);
    let (bad, max) = compare(&rows, 256, s, off, &emu);
    println!(
        "equal maxima: {bad} of {} elements differ (max {max})",
        emu.len()
    );
    assert_eq!((bad, max), (0, 0));
}

/// Random attention-like rows (a maximum and entries half-normally below it, widths 3
/// to 256): the approximate reciprocal of sums of 2^20 and more misses some elements by
/// one code (with only the `ex` 15-16 tables: 29 / 0 / 133).
#[test]
fn attention_rows_within_one() {
    let Some(lib) = library() else { return };
    let _g = serial();
    let mut rng = Rng::new(7);
    // (scale, offset, width, measured mismatches)
    for (s, off, n, measured) in [
        (4.1805804e-4f32, -56879, 256usize, 29usize),
        (4.1805804e-4, -56879, 3, 0),
        (1e-3, -40000, 64, 30),
    ] {
        let rows: Vec<Vec<u16>> = (0..2000)
            .map(|_| {
                let top = rng.int(30000, 65535);
                let spread = [300.0f32, 1000.0, 3000.0, 8000.0][rng.int(0, 3) as usize];
                (0..n)
                    .map(|_| {
                        // |normal| by the sum of uniforms.
                        let g: f32 = (0..4).map(|_| rng.float(-1.0, 1.0)).sum::<f32>() * 0.87;
                        (top - (g.abs() * spread) as i64).clamp(0, 65535) as u16
                    })
                    .collect()
            })
            .collect();
        let emu = emulator(&lib, &rows, n, s, off);
        let (bad, max) = compare(&rows, n, s, off, &emu);
        let frac = bad as f64 / emu.len() as f64;
        println!(
            "attention rows n {n} scale {s:e}: {bad} of {} elements differ ({:.3}%, max {max})",
            emu.len(),
            100.0 * frac
        );
        assert!(max <= 1, "n {n}: max difference {max}");
        assert_eq!(bad, measured, "n {n}");
    }
}

/// Rows with a chosen exponential sum `S` (input scale `ln 2 / 1024`: a maximum, up to 24
/// entries less than 1.1 / 1024 octaves below it, and entries far below that make up the
/// rest of `S` exactly), for `S` across `ex = floor(log2 S)` from 17 to 20: the measured
/// reciprocal tables make `ex` 17 to 19 exact; `ex = 20` keeps the approximation.
#[test]
fn table_sums_exact() {
    let Some(lib) = library() else { return };
    let _g = serial();
    let s = (std::f64::consts::LN_2 / 1024.0) as f32;
    let h = HtpSoftmax::new((s, 0), HtpSoftmax::OUTPUT).expect("in domain");
    // The smallest distance below the maximum giving each exponential value.
    let mut by_value: Vec<(u16, u16)> = Vec::new();
    for d in 0..16384u16 {
        let e = h.exp(d);
        if e > 0 && by_value.iter().all(|(v, _)| *v != e) {
            by_value.push((e, d));
        }
    }
    by_value.sort_unstable();
    let mut rng = Rng::new(11);
    let n = 64;
    for ex in 17..=20u32 {
        let rows: Vec<Vec<u16>> = (0..3000)
            .map(|_| {
                let target = rng.int(1 << ex, (2 << ex) - 1) as u64;
                let mut row = vec![0u16];
                let mut sum = h.exp(0) as u64;
                while row.len() < 24 {
                    let d = rng.int(0, 1100) as u16;
                    if sum + h.exp(d) as u64 > target - 1 {
                        break;
                    }
                    row.push(d);
                    sum += h.exp(d) as u64;
                }
                while sum < target && row.len() < n {
                    let rest = target - sum;
                    let i = by_value.partition_point(|(v, _)| (*v as u64) <= rest) - 1;
                    row.push(by_value[i].1);
                    sum += by_value[i].0 as u64;
                }
                let mut codes: Vec<u16> = row.iter().map(|d| 65535 - d).collect();
                codes.resize(n, 0);
                codes
            })
            .collect();
        let emu = emulator(&lib, &rows, n, s, 0);
        let (bad, max) = compare(&rows, n, s, 0, &emu);
        println!(
            "sums with ex {ex}: {bad} of {} elements differ (max {max})",
            emu.len()
        );
        assert!(max <= 1, "ex {ex}");
        if ex <= 19 {
            assert_eq!(bad, 0, "ex {ex}");
        }
    }
}
