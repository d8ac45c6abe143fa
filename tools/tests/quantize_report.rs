//! `mllm quantize --report --plot` end to end on the tiny synthetic Qwen3 (2 layers,
//! bf16 Gaussian weights): quality figures are printed and checked against bounds,
//! `report.json` has one entry per layer, the plot is a valid PNG, and a failing run
//! leaves no output behind.
//!
//! Bounds:
//! - Weights: LPBQ int4 (block 16, scale absmax/7) on Gaussian weights. The rounding
//!   noise of one block is uniform with step `absmax/7`, power `(absmax/7)^2 / 12`; for
//!   16 Gaussian values `E[absmax^2] ~ 3.4 sigma^2`, so SQNR ~ `10 log10(12 * 49 / 3.4)`
//!   ~ 22.4 dB before the two-level scale rounding costs a little: every linear weight
//!   must be above 20 dB.
//! - Activations: u16 per-tensor codes (~ -96 dB of their range) and the u8 KV cache
//!   (~ -48 dB of its range) add little to the weights' error: every layer's fixed-point
//!   SQNR is within 1 dB of its SQNR with quantized weights and float activations.
//!   Layer outputs: each layer adds noise at the weights' level (~21 dB) and the
//!   residual stream carries it on, so after `l + 1` layers at most `10 log10(l + 1)`
//!   dB are lost; with 3 dB of margin for the nonlinearities: above
//!   `20 - 10 log10(l + 1) - 3` dB.
//! - Top-1: a position can change its argmax only if the float top-1 / top-2 margin is
//!   below twice the largest logit error there; the report counts such positions, and
//!   the agreement must be at least `1 - at_risk / positions`. Beyond that bound, the
//!   test asks for 90% agreement (at most 6 of 64 flips) on held-out text, on the 64
//!   greedy tokens and teacher-forced: at the tiny model's logits SQNR (~17 dB, error
//!   RMS ~14% of the logits' RMS) only close calls flip.

use std::path::{Path, PathBuf};

use mllm_frontends::synth::{generate, Preset};
use mllm_frontends::DType;
use mllm_tools::quantize::{run, QuantizeArgs};
use mllm_tools::report::ReportArgs;

fn tokenizer() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/qwen3/tokenizer.json")
}

/// A fresh scratch directory (removed on drop).
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let p = std::env::temp_dir().join(format!("mllm-qreport-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Scratch(p)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn args(ckpt: &Path, out: &Path, report: ReportArgs) -> QuantizeArgs {
    QuantizeArgs {
        checkpoint: ckpt.to_path_buf(),
        calib: None,
        num_samples: 4,
        max_length: 64,
        block_size: 16,
        aot_config: None,
        config: None,
        tokenizer: Some(tokenizer()),
        ar_len: 8,
        context_len: 160,
        output: out.to_path_buf(),
        quiet: true,
        report,
    }
}

/// CRC-32 (IEEE) of `data`.
fn crc32(data: &[u8]) -> u32 {
    let mut c = 0xffff_ffffu32;
    for b in data {
        c ^= *b as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0xedb8_8320
            } else {
                c >> 1
            };
        }
    }
    !c
}

/// Checks the PNG signature and every chunk's length and CRC; returns (width, height)
/// from IHDR and whether IDAT and IEND were seen.
fn check_png(b: &[u8]) -> (u32, u32) {
    assert!(
        b.len() > 8 && b[..8] == [0x89, b'P', b'N', b'G', 13, 10, 26, 10],
        "PNG signature"
    );
    let mut i = 8;
    let (mut w, mut h, mut idat, mut iend) = (0, 0, false, false);
    while i + 12 <= b.len() {
        let len = u32::from_be_bytes(b[i..i + 4].try_into().unwrap()) as usize;
        let ty = &b[i + 4..i + 8];
        assert!(i + 12 + len <= b.len(), "chunk {:?} runs past the end", ty);
        let data = &b[i + 8..i + 8 + len];
        let crc = u32::from_be_bytes(b[i + 8 + len..i + 12 + len].try_into().unwrap());
        assert_eq!(crc32(&b[i + 4..i + 8 + len]), crc, "CRC of chunk {:?}", ty);
        match ty {
            b"IHDR" => {
                w = u32::from_be_bytes(data[0..4].try_into().unwrap());
                h = u32::from_be_bytes(data[4..8].try_into().unwrap());
            }
            b"IDAT" => idat = true,
            b"IEND" => iend = true,
            _ => {}
        }
        i += 12 + len;
    }
    assert_eq!(i, b.len(), "trailing bytes after the last chunk");
    assert!(idat && iend, "IDAT and IEND chunks");
    (w, h)
}

fn f(v: &serde_json::Value) -> f64 {
    v.as_f64().unwrap_or(f64::INFINITY)
}

#[test]
fn tiny_model_report_sqnr_agreement_json_and_png() {
    let dir = Scratch::new("e2e");
    let ckpt = dir.0.join("ckpt");
    generate(Preset::Tiny, 3, DType::BF16, &ckpt, &mut |_| {}).unwrap();
    let out = dir.0.join("q");
    let report_path = dir.0.join("report.json");
    let plot_path = dir.0.join("report.png");
    let s = run(&args(
        &ckpt,
        &out,
        ReportArgs {
            report: Some(report_path.clone()),
            plot: Some(plot_path.clone()),
            ..Default::default()
        },
    ))
    .unwrap();
    let r = s.report.expect("a report was asked for");
    println!("tiny model: {}", r.one_line());
    println!(
        "greedy float tokens {:?}\ngreedy fixed tokens {:?}",
        r.greedy.float_tokens, r.greedy.fixed_tokens
    );

    // report.json: parses, one entry per layer, same figures as the returned report.
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report_path).unwrap()).unwrap();
    let layers = j["layers"].as_array().expect("layers array");
    assert_eq!(
        layers.len(),
        2,
        "one entry per decoder layer of the tiny model"
    );
    for (i, l) in layers.iter().enumerate() {
        assert_eq!(l["layer"].as_u64(), Some(i as u64));
        let (fixed, wonly) = (f(&l["sqnr_db"]), f(&l["weights_only_sqnr_db"]));
        println!("layer {i}: fixed-point {fixed:.2} dB, quantized weights only {wonly:.2} dB");
        let bound = 20.0 - 10.0 * ((i + 1) as f64).log10() - 3.0;
        assert!(fixed > bound, "layer {i}: {fixed} dB <= {bound} dB");
        assert!(
            (fixed - wonly).abs() < 1.0,
            "layer {i}: activation quantization moves SQNR from {wonly} to {fixed} dB"
        );
        assert!((fixed - r.layers[i].sqnr_db).abs() < 1e-2);
    }
    assert_eq!(j["greedy"]["generated_tokens"].as_u64(), Some(64));

    // Weights of the synthetic distribution: above 20 dB each (quantize.json).
    let q: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("quantize.json")).unwrap()).unwrap();
    let weights = q["weights"].as_array().unwrap();
    assert!(
        weights.len() >= 2 * 7,
        "q/k/v/o/gate/up/down of every layer"
    );
    for w in weights {
        let sq = f(&w["sqnr_db"]);
        assert!(sq > 20.0, "{}: weight SQNR {sq} dB", w["name"]);
    }

    // Top-1 agreement: the derived floor, then the quality bound.
    let g = &r.greedy;
    assert_eq!(g.float_tokens.len(), 64);
    assert_eq!(g.fixed_tokens.len(), 64);
    let n = g.float_tokens.len() as f64;
    assert!(g.teacher_forced_top1 >= 1.0 - g.at_risk as f64 / n - 1e-9);
    let hp = r.heldout_positions as f64;
    assert_eq!(r.heldout_positions, 64);
    assert!(r.heldout_top1_agreement >= 1.0 - r.heldout_positions_at_risk as f64 / hp - 1e-9);
    println!(
        "held-out: top-1 {:.3} over {} positions ({} distinct float predictions, {} at risk); greedy: {}/64 match, first divergence {:?}, teacher-forced {:.3} ({} at risk)",
        r.heldout_top1_agreement,
        r.heldout_positions,
        r.heldout_distinct_top1,
        r.heldout_positions_at_risk,
        g.matching,
        g.first_divergence,
        g.teacher_forced_top1,
        g.at_risk
    );
    assert!(r.heldout_top1_agreement >= 0.9);
    assert!(g.teacher_forced_top1 >= 0.9);
    assert!(g.matching as f64 >= 0.9 * n);
    assert_eq!(
        g.first_divergence.is_none(),
        g.matching == 64,
        "first divergence agrees with the match count"
    );

    // The plot.
    let (w, h) = check_png(&std::fs::read(&plot_path).unwrap());
    assert_eq!((w, h), (960, 540));

    // Nothing temporary left behind.
    for d in [&out, &dir.0] {
        for e in std::fs::read_dir(d).unwrap() {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            assert!(!name.starts_with('.'), "{}: leftover {name}", d.display());
        }
    }
}

#[test]
fn failed_run_leaves_no_output() {
    let dir = Scratch::new("fail");
    let ckpt = dir.0.join("ckpt");
    generate(Preset::Tiny, 4, DType::BF16, &ckpt, &mut |_| {}).unwrap();
    let out = dir.0.join("q");
    // The plot goes to a directory that does not exist: the last output fails after the
    // others were written to the staging directory.
    let err = run(&args(
        &ckpt,
        &out,
        ReportArgs {
            plot: Some(dir.0.join("missing").join("report.png")),
            ..Default::default()
        },
    ))
    .unwrap_err();
    println!("expected failure: {err:#}");
    let left: Vec<String> = std::fs::read_dir(&out)
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    assert!(left.is_empty(), "outputs left behind: {left:?}");
}
