//! `mllm-run` on a checkpoint (the CPU reference in float mode): graphs sized to the job
//! continue a prompt exactly as the largest graphs do, the configured context still bounds
//! the job, and a run that fills the cache stops cleanly.
mod common;

use std::path::PathBuf;

use mllm_frontends::Qwen3Config;
use mllm_runtime::StopReason;
use mllm_tools::run::{checkpoint_shape, run_with, RunArgs, StatsArg};

fn prompt(len: usize) -> Vec<u32> {
    (0..len as u32).map(|i| 3 + (i * 37) % 500).collect()
}

/// A fresh tiny checkpoint under scratch dir `name`: (root, checkpoint, its config, the
/// configured context).
fn setup(name: &str) -> (PathBuf, PathBuf, Qwen3Config, usize) {
    let root = common::fresh_root(name);
    let (ckpt, _tok) = common::tiny_checkpoint(&root);
    let config = Qwen3Config::from_file(ckpt.join("config.json")).unwrap();
    let cap = config.max_cache_length.unwrap_or(1024);
    (root, ckpt, config, cap)
}

fn args(ckpt: &std::path::Path, ids: Vec<u32>, max_new: usize) -> RunArgs {
    let mut a = RunArgs::new(ckpt);
    a.prompt_ids = Some(ids);
    a.max_new_tokens = max_new;
    a.stats = StatsArg::Json;
    a
}

#[test]
fn job_sized_graphs_continue_like_the_largest_ones() {
    let (root, ckpt, config, cap) = setup("run_cpu_shape");
    for len in [1usize, 5, 33, 70] {
        let mut job = args(&ckpt, prompt(len), 24);
        job.logits_out = Some(root.join(format!("job_{len}.npy")));
        let (s, c) = checkpoint_shape(&job, &config, Some(len));
        assert!(
            s >= len.min(512) && s % 32 == 0 && s < c,
            "len {len}: ar_len {s}"
        );
        assert!(
            c >= len + 24 && c % 128 == 0 && c <= cap,
            "len {len}: context {c}"
        );
        let a = run_with(&job).unwrap();

        let mut full = args(&ckpt, prompt(len), 24);
        full.logits_out = Some(root.join(format!("full_{len}.npy")));
        full.ar_len = Some(32);
        full.context_len = Some(cap);
        let b = run_with(&full).unwrap();

        assert_eq!(a.generated, b.generated, "prompt of {len} tokens");
        assert_eq!(a.prompt_tokens, len);
        let (la, lb) = (a.logits.unwrap(), b.logits.unwrap());
        assert_eq!(la.data.len(), lb.data.len());
        assert_eq!(
            la.data.len(),
            (len + 23) * la.vocab,
            "every position recorded"
        );
        let worst = la
            .data
            .iter()
            .zip(&lb.data)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        assert!(worst < 1e-4, "prompt of {len}: logits differ by {worst}");
    }
}

#[test]
fn the_configured_context_bounds_a_job_sized_run() {
    let (_root, ckpt, config, cap) = setup("run_cpu_bounds");

    // Longer than the largest context: an error naming both lengths, nothing generated.
    let e = run_with(&args(&ckpt, prompt(cap + 1), 4)).unwrap_err();
    let msg = format!("{e:#}");
    assert!(
        msg.contains(&(cap + 1).to_string()) && msg.contains(&cap.to_string()),
        "{msg}"
    );

    // A job that does not fit: the context is the maximum and generation stops when the
    // cache is full, after the last slot.
    // Even an unbounded --max-new-tokens (usize::MAX) must neither overflow nor allocate it.
    let mut a = args(&ckpt, prompt(100), usize::MAX);
    a.context_len = None;
    let (_, c) = checkpoint_shape(&a, &config, Some(100));
    assert_eq!(c, cap);
    a.context_len = Some(160);
    let s = run_with(&a).unwrap();
    assert_eq!(s.stop, Some(StopReason::CacheFull));
    assert_eq!(s.prompt_tokens + s.generated.len(), 161, "{:?}", s.stop);
}
