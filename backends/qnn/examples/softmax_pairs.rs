//! Probe: HTP's u16 `Softmax` on rows `[top x NT, top - k, FILLC...]` for k = 0..K, so the
//! outputs trace the kernel's exp of `-k * scale` and its reciprocal of the sum. Prints
//! `k o(top) o(top - k) o(next)` per row. `SCALE`, `OFFSET`, `TOP`, `K`, `STEP`, `N` (row
//! width), `NT`, `FILLC` from the environment. `ROWS=file`: each line of the file is one
//! row of up to `N` input codes (the rest `FILLC`); prints every output code of each row
//! (the mode the fits below used, driven from Python).
//!
//! `N=256 SCALE=4.18e-4 cargo run -p mllm-backend-qnn --release --example softmax_pairs`
//!
//! # Findings (QNN 2.51 x86 emulator, v75, output scale 1/65535)
//!
//! Modelled by `mllm_runtime::cpu::htp_softmax::HtpSoftmax` (formula and derivation in
//! its module documentation; `tests/softmax_htp.rs` compares it with the emulator):
//!
//! - Rows of 3 or more entries share one path; 2-wide rows take another (there an entry
//!   10.7 below the maximum still counts; its outputs are within 1 LSB of
//!   `round(65535 e / S)`, 90-97% equal; not modelled).
//! - The input offset plays no part: `d = q_max - q` times the Q22 multiplier
//!   `M = floor(f32(s log2 e) 2^22)` (sweeping the scale moves the outputs in steps of
//!   exactly 2^-22 in `s log2 e`; the f32 product, not the f64 one, at scales where
//!   they floor differently). Integer part `>> 22`, 16-bit fraction `(y >> 6) & 0xffff`.
//! - The exp is Q15: a 4-segment quadratic of `!frac` (nnlib's `pow2_v65_poly`, its
//!   last segment refitted) shifted right by the integer part; 32767 at the maximum
//!   (hence a lone maximum's 65534 and `n` equal maxima's `floor(65535 / n)`).
//!   Found with the input scale `ln 2 / 1024`, where entries `1024 j` below the maximum
//!   have exactly `2^(15-j) - 1`.
//! - The sum is the plain sum `S` of the 16-bit exps; outputs are `(e r) >> ex` with
//!   `ex = floor(log2 S)` and `r ~ 2^(16 + ex) / S` computed from `S >> 1`: 14
//!   significant bits for `ex = 15` (the maximum's `4m + 2` codes), 15 for `ex = 16`,
//!   16 above. `r` for `ex` = 15 and 16 was swept for every `S` (tables in the model);
//!   for `ex >= 17` no formula was found that reproduces it (not a division, not a
//!   function of the top 16 bits of `S`, not nnlib's `hvx_recip16_inline` nor the
//!   `1/(x+1)` polynomial of ggml-hexagon's `hvx-utils.h`); the model's approximation
//!   misses ~2% of those rows by one step (an output code off by one on 0.01-0.1% of
//!   the elements). `r` is a function of `h = S >> 1` for every `ex` (never of
//!   `S >> 2`), so for `ex` 17-19 it was swept for every `h` (rows of chosen sums, see
//!   the model's documentation) and the model tables its difference to the
//!   approximation; `ex >= 20` keeps the approximation.
use mllm_backend_qnn::emulate::{emulate_function, probe_env as env, return_op, PROBE_OPTIONS};
use mllm_ir::types::per_tensor;
use mllm_ir::{Attrs, Function, OpKind, Storage, Type, WeightStore};
use mllm_qnn_sys::QnnLibrary;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let lib = QnnLibrary::load(None)?;
    let s: f32 = env("SCALE", 4.1805804e-4);
    let off: i32 = env("OFFSET", -56879);
    let n: usize = env("N", 2);
    let fill: i64 = env("FILLC", 0);
    let rows_file: String = env("ROWS", String::new());
    if !rows_file.is_empty() {
        return run_file(&lib, &rows_file, s, off, n, fill);
    }
    let top: i64 = env("TOP", 65535);
    let kmax: usize = env("K", 4096);
    let step: usize = env("STEP", 1);
    let nt: usize = env("NT", 1);
    let rows = kmax / step;
    let mut input = Vec::with_capacity(rows * n);
    for r in 0..rows {
        let k = (r * step) as i64;
        for j in 0..n {
            input.push(if j < nt {
                top
            } else if j == nt {
                top - k
            } else {
                fill
            });
        }
    }
    let out = softmax(&lib, &input, rows, n, s, off)?;
    for r in 0..rows {
        let row: Vec<String> = [0, nt.min(n - 1), (nt + 1).min(n - 1)]
            .iter()
            .map(|&j| out[r * n + j].to_string())
            .collect();
        println!("{} {}", r * step, row.join(" "));
    }
    Ok(())
}

/// HTP's softmax over the last axis of `rows x n` codes (clamped to u16) with input
/// encoding `(s, off)` into u16 codes of scale 1/65535.
fn softmax(
    lib: &std::sync::Arc<QnnLibrary>,
    codes: &[i64],
    rows: usize,
    n: usize,
    s: f32,
    off: i32,
) -> Result<Vec<u16>, Box<dyn std::error::Error>> {
    let ity = Type::tensor(vec![1, 1, rows, n], per_tensor(Storage::U16, s, off));
    let oty = Type::tensor(
        vec![1, 1, rows, n],
        per_tensor(Storage::U16, 1.0 / 65535.0, 0),
    );
    let mut f = Function::new("sm");
    let x = f.add_arg(ity, Some("x"));
    return_op(&mut f, OpKind::Softmax, &[x], Attrs::new(), &oty);
    let input: Vec<u8> = codes
        .iter()
        .flat_map(|&c| (c.clamp(0, 65535) as u16).to_le_bytes())
        .collect();
    let out = emulate_function(lib, &f, &WeightStore::new(), &[&input], PROBE_OPTIONS)?.remove(0);
    Ok(out
        .chunks_exact(2)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
        .collect())
}

/// `ROWS=file` mode: each line of `path` holds up to `n` input codes (the rest of the row
/// is `fill`); prints each row's `n` output codes, one line per row.
fn run_file(
    lib: &std::sync::Arc<QnnLibrary>,
    path: &str,
    s: f32,
    off: i32,
    n: usize,
    fill: i64,
) -> Result<(), Box<dyn std::error::Error>> {
    let text = std::fs::read_to_string(path)?;
    let mut codes = Vec::new();
    let mut rows = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let mut row: Vec<i64> = line
            .split_whitespace()
            .map(|t| t.parse())
            .collect::<Result<_, _>>()?;
        if row.len() > n {
            return Err(format!("{path}: row {} has more than N={n} codes", rows + 1).into());
        }
        row.resize(n, fill);
        codes.extend(row);
        rows += 1;
    }
    let out = softmax(lib, &codes, rows, n, s, off)?;
    let mut w = String::new();
    for r in out.chunks_exact(n) {
        let line: Vec<String> = r.iter().map(|c| c.to_string()).collect();
        w.push_str(&line.join(" "));
        w.push('\n');
    }
    print!("{w}");
    Ok(())
}
