//! A model split over two QNN contexts runs like the unsplit one.
//!
//! The tiny synthetic Qwen3 is quantized once, then compiled by `mllm compile` from its
//! quantized IR twice (ar_len 4, context 64, SM8650, no weight sharing so the x86 emulator
//! can load it): `--shards 1` and `--shards 2` (the second context's graphs take the first
//! one's `hidden_states_out`). Both binaries run through the QNN executor on the same
//! prompts (prefill ar_len 4, then greedy decode), and the CPU reference (fixed-point mode
//! with the HTP's arithmetic) runs the unsplit NPU IR (the quantized IR after the NPU passes,
//! the graphs of the 1-context binary):
//! - the split binary produces the same greedy tokens as the unsplit one, and its logits are
//!   within the unsplit parity bound of both the unsplit binary and the reference;
//! - `mllm-run --backend qnn --stats json` on the split binary writes exactly the decoded
//!   text and one JSON object to stdout (nothing from the QNN library).
//!
//! Needs the QNN libraries (`scripts/setup-qnn.sh`); prints a note and passes without them.

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};

use clap::Parser;
use mllm_runtime::cpu::{CpuExecutor, NumericMode, Rounding};
use mllm_runtime::scheduler::{GraphSelect, LogitsRecord};
use mllm_runtime::{
    Executor, QnnExecutor, QnnOptions, Quant, Sampler, SamplerConfig, Scheduler, SchedulerConfig,
    Tokenizer,
};

const CONTEXT: usize = 64;
const AR_LEN: usize = 4;
const NEW_TOKENS: usize = 12;

/// Largest logits error accepted against the reference and between the two binaries, in
/// output LSB: the bound of the unsplit parity test (`qnn_run.rs`, measured 4 there).
const MAX_LSB: f32 = 8.0;

struct Fixture {
    root: PathBuf,
    tokenizer: PathBuf,
    config: PathBuf,
    /// The quantized IR after the NPU passes: what the 1-context binary holds.
    npu_ir: PathBuf,
    whole: PathBuf,
    split: PathBuf,
}

/// Tests in this file; the last one to finish removes the fixture (~30 MB).
const TESTS: usize = 2;

fn finished(f: &Fixture) {
    static DONE: AtomicUsize = AtomicUsize::new(0);
    if DONE.fetch_add(1, Ordering::SeqCst) + 1 == TESTS {
        let _ = std::fs::remove_dir_all(&f.root);
    }
}

#[derive(Parser)]
struct CompileCli {
    #[command(flatten)]
    args: mllm_tools::compile::CompileArgs,
}

fn compile(ir: &Path, out: &Path, shards: usize) {
    let argv = [
        "compile".to_string(),
        "-m".into(),
        ir.display().to_string(),
        "--shards".into(),
        shards.to_string(),
        "--no-weight-sharing".into(),
        "--soc".into(),
        "SM8650".into(),
        "--ar-len".into(),
        AR_LEN.to_string(),
        "--context-len".into(),
        CONTEXT.to_string(),
        "-o".into(),
        out.display().to_string(),
        "--quiet".into(),
    ];
    let c = CompileCli::try_parse_from(argv).expect("compile arguments");
    let s = mllm_tools::compile::run(&c.args).expect("mllm compile");
    assert_eq!(s.outputs.len(), shards, "one binary per context");
    for p in &s.outputs {
        assert!(p.is_file(), "{} written", p.display());
    }
}

fn fixture() -> Option<&'static Mutex<Fixture>> {
    static FIX: OnceLock<Option<Mutex<Fixture>>> = OnceLock::new();
    FIX.get_or_init(|| {
        if let Err(e) = mllm_qnn_sys::QnnLibrary::load(None) {
            println!("QNN libraries not available ({e}); run scripts/setup-qnn.sh (test skipped)");
            return None;
        }
        let root = common::fresh_root("qnn_shards");
        let (ckpt, tokenizer) = common::tiny_checkpoint(&root);
        let (ir, m) = common::quantize_for_npu(&ckpt, &tokenizer, &root.join("q"), AR_LEN, CONTEXT);
        let npu_ir = root.join("q").join("model.npu.mlir");
        std::fs::write(&npu_ir, mllm_ir::print::print_module(&m)).unwrap();
        let whole = root.join("whole").join("model.bin");
        let split = root.join("split").join("model.bin");
        for d in [&whole, &split] {
            std::fs::create_dir_all(d.parent().unwrap()).unwrap();
        }
        compile(&ir, &whole, 1);
        compile(&ir, &split, 2);
        assert!(
            root.join("split").join("model.1.bin").is_file(),
            "second context"
        );
        Some(Mutex::new(Fixture {
            config: ckpt.join("config.json"),
            root,
            tokenizer,
            npu_ir,
            whole,
            split,
        }))
    })
    .as_ref()
}

fn lock(f: &'static Mutex<Fixture>) -> MutexGuard<'static, Fixture> {
    f.lock().unwrap_or_else(|e| e.into_inner())
}

fn sched_cfg() -> SchedulerConfig {
    SchedulerConfig {
        max_new_tokens: NEW_TOKENS,
        prefill: GraphSelect::ArLen(AR_LEN),
        record_logits: true,
        // Random weights: never stop early on an EOS id.
        eos_ids: vec![],
        ..Default::default()
    }
}

fn prompts(f: &Fixture) -> Vec<Vec<u32>> {
    let tok = Tokenizer::from_file(&f.tokenizer).unwrap();
    [
        "Explain in one sentence what a compiler does, and why it matters.",
        "Translate 'the cat sleeps on the warm windowsill' into French and German.",
    ]
    .iter()
    .map(|p| {
        tok.encode(&mllm_runtime::tokenizer::qwen3_prompt(p, false))
            .unwrap()
    })
    .collect()
}

/// Greedy tokens and the logits of every position (prompt and generated).
fn run<E: Executor>(s: &mut Scheduler<E>, ids: &[u32]) -> (Vec<u32>, LogitsRecord) {
    s.reset();
    let mut g = Sampler::new(SamplerConfig::greedy(), s.dims().vocab).unwrap();
    let st = s.generate(ids, &mut g, |_| true).unwrap();
    (st.generated, st.logits.expect("logits recorded"))
}

/// Largest |a - b| over the rows both records have, in units of `lsb`.
fn max_lsb(a: &LogitsRecord, b: &LogitsRecord, lsb: f32) -> f32 {
    assert_eq!(a.vocab, b.vocab);
    a.data
        .iter()
        .zip(&b.data)
        .map(|(x, y)| (x - y).abs() / lsb)
        .fold(0.0f32, f32::max)
}

#[test]
fn split_binary_matches_the_unsplit_one_and_the_reference() {
    let Some(f) = fixture() else { return };
    let f = lock(f);
    let mut whole = Scheduler::new(
        QnnExecutor::open(&f.whole, &QnnOptions::default()).unwrap(),
        sched_cfg(),
    )
    .unwrap();
    let mut split = Scheduler::new(
        QnnExecutor::open(&f.split, &QnnOptions::default()).unwrap(),
        sched_cfg(),
    )
    .unwrap();
    let l = mllm_tools::run::load_ir(&f.npu_ir, Some(&f.config)).unwrap();
    assert_eq!(split.dims(), whole.dims());
    let lsb = match split.logits_desc().quant {
        Quant::PerTensor { scale, .. } => scale,
        Quant::None => panic!("quantized logits expected"),
    };
    for (k, ids) in prompts(&f).iter().enumerate() {
        let (tw, lw) = run(&mut whole, ids);
        let (ts, ls) = run(&mut split, ids);
        assert_eq!(tw.len(), NEW_TOKENS);
        assert_eq!(ts, tw, "prompt {k}: greedy tokens, 2 contexts vs 1");
        assert_eq!(ls.rows(), lw.rows());
        assert_eq!(
            ls.rows(),
            ids.len() + NEW_TOKENS - 1,
            "one row per fed position"
        );
        let vs_whole = max_lsb(&ls, &lw, lsb);
        // The reference is fed the same tokens (teacher forcing): its rows line up.
        let mut fed = ids.clone();
        fed.extend_from_slice(&ts[..NEW_TOKENS - 1]);
        let mut c_cfg = sched_cfg();
        c_cfg.max_new_tokens = 1;
        let mut teacher = Scheduler::new(
            CpuExecutor::new(&l.module, NumericMode::Fixed(Rounding::Htp)).unwrap(),
            c_cfg,
        )
        .unwrap();
        let mut g = Sampler::new(SamplerConfig::greedy(), teacher.dims().vocab).unwrap();
        let lc = teacher
            .generate(&fed, &mut g, |_| true)
            .unwrap()
            .logits
            .expect("logits recorded");
        assert_eq!(lc.rows(), ls.rows());
        let vs_ref = max_lsb(&ls, &lc, lsb);
        let whole_vs_ref = max_lsb(&lw, &lc, lsb);
        println!(
            "prompt {k} ({} tokens + {NEW_TOKENS}): 2 contexts vs 1: max {vs_whole:.1} LSB; vs reference: 2 contexts {vs_ref:.1}, 1 context {whole_vs_ref:.1} LSB",
            ids.len()
        );
        assert!(vs_whole <= MAX_LSB, "2 contexts vs 1: {vs_whole} LSB");
        assert!(vs_ref <= MAX_LSB, "2 contexts vs reference: {vs_ref} LSB");
    }
    finished(&f);
}

/// `mllm-run --stats json`: stdout is the generated text, a newline and one JSON object.
#[test]
fn mllm_run_stats_json_stdout_is_clean() {
    let Some(f) = fixture() else { return };
    let f = lock(f);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mllm-run"))
        .args(["--backend", "qnn", "-m"])
        .arg(&f.split)
        .arg("-c")
        .arg(&f.config)
        .arg("-t")
        .arg(&f.tokenizer)
        .args([
            "--prompt",
            "Hello there",
            "--max-new-tokens",
            "6",
            "--stats",
            "json",
        ])
        .output()
        .expect("run mllm-run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "mllm-run failed: {stderr}");
    let stdout = String::from_utf8(out.stdout).expect("UTF-8 stdout");
    assert!(
        !stdout.contains("LIBNATIVE"),
        "library output on stdout: {stdout:?}"
    );
    let body = stdout
        .strip_suffix('\n')
        .expect("stdout ends with a newline");
    let (text, json) = body
        .rsplit_once('\n')
        .expect("text line, then the JSON line");
    let v: serde_json::Value = serde_json::from_str(json).expect("last stdout line is JSON");
    assert_eq!(v["backend"], "qnn");
    let ids: Vec<u32> = v["generated_ids"]
        .as_array()
        .expect("generated_ids")
        .iter()
        .map(|x| x.as_u64().expect("token id") as u32)
        .collect();
    assert_eq!(ids.len(), 6, "{json}");
    assert_eq!(v["generated_tokens"], 6);
    // Everything before the JSON line is the decoded text of those tokens.
    let tok = Tokenizer::from_file(&f.tokenizer).unwrap();
    assert_eq!(text, tok.decode(&ids, true).unwrap(), "stdout: {stdout:?}");
    finished(&f);
}
