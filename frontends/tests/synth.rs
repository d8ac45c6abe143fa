//! The synthetic-checkpoint generator: determinism, seeds, distribution, and that its output
//! loads back and matches its config.

use std::path::PathBuf;

use mllm_frontends::synth::{self, Preset};
use mllm_frontends::{Checkpoint, DType, LmHead, Qwen3Config};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "mllm-frontends-synth-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn tiny_preset_is_deterministic_and_loads_back() {
    let a = scratch("a");
    let b = scratch("b");
    let c = scratch("c");
    let mut reports = Vec::new();
    let s = synth::generate(Preset::Tiny, 7, DType::BF16, &a, &mut |p| {
        reports.push((p.tensors_done, p.bytes_done, p.bytes_total))
    })
    .unwrap();
    synth::generate(Preset::Tiny, 7, DType::BF16, &b, &mut |_| {}).unwrap();
    synth::generate(Preset::Tiny, 8, DType::BF16, &c, &mut |_| {}).unwrap();

    let read = |d: &PathBuf, f: &str| std::fs::read(d.join(f)).unwrap();
    assert_eq!(read(&a, "model.safetensors"), read(&b, "model.safetensors"));
    assert_eq!(read(&a, "config.json"), read(&b, "config.json"));
    assert_ne!(read(&a, "model.safetensors"), read(&c, "model.safetensors"));

    // One report per tensor, ending at the total.
    assert_eq!(reports.len(), s.tensors);
    assert_eq!(reports.last().unwrap().1, s.bytes);
    assert!(reports.windows(2).all(|w| w[0].1 < w[1].1));

    // Shape facts of the tiny preset, spelled out.
    let config = Qwen3Config::from_file(&a).unwrap();
    assert_eq!(config, s.config);
    assert_eq!(config.vocab_size, 151936);
    assert_eq!((config.hidden_size, config.num_hidden_layers), (64, 2));
    assert_eq!(
        (
            config.num_attention_heads,
            config.num_key_value_heads,
            config.head_dim
        ),
        (4, 2, 16)
    );
    assert_eq!(config.intermediate_size, 128);
    assert!(config.tie_word_embeddings);
    assert_eq!(config.dtype, Some(DType::BF16));

    let ck = Checkpoint::open(&a).unwrap();
    assert_eq!(
        config.check_checkpoint(&ck).unwrap(),
        LmHead::TiedToEmbedding
    );
    assert_eq!(ck.len(), 1 + 2 * 11 + 1);
    assert_eq!(s.params, config.num_params());
    assert_eq!(ck.total_bytes(), 2 * s.params);

    // Same-named tensors of different seeds differ; a tensor's values do not depend on others.
    let ck_c = Checkpoint::open(&c).unwrap();
    let name = "model.layers.1.mlp.down_proj.weight";
    assert_ne!(
        ck.tensor(name).unwrap().bytes,
        ck_c.tensor(name).unwrap().bytes
    );

    // Distribution: linears ~ N(0, 0.02), norms ~ 1 + N(0, 0.05).
    let stats = |n: &str| {
        let v = ck.tensor(n).unwrap().to_f32_vec().unwrap();
        let mean = v.iter().map(|&x| x as f64).sum::<f64>() / v.len() as f64;
        let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / v.len() as f64;
        (mean, var.sqrt())
    };
    let (m, s) = stats("model.embed_tokens.weight");
    assert!(
        m.abs() < 1e-3 && (s - 0.02).abs() < 1e-3,
        "embed mean {m} std {s}"
    );
    let (m, s) = stats("model.layers.0.mlp.gate_proj.weight");
    assert!(
        m.abs() < 1e-3 && (s - 0.02).abs() < 2e-3,
        "gate mean {m} std {s}"
    );
    let (m, s) = stats("model.layers.0.input_layernorm.weight");
    assert!(
        (m - 1.0).abs() < 0.03 && (s - 0.05).abs() < 0.02,
        "norm mean {m} std {s}"
    );
    assert!(ck.scan().non_finite.is_empty());

    for d in [a, b, c] {
        let _ = std::fs::remove_dir_all(d);
    }
}

#[test]
fn f32_output_matches_bf16_after_rounding() {
    // The same stream in two dtypes: bf16 must be the rounding of f32.
    let dir = scratch("dtypes");
    let cfg = {
        let mut c = Preset::Tiny.config();
        c.vocab_size = 300;
        c.tie_word_embeddings = false;
        c
    };
    synth::generate_from_config(&cfg, 3, DType::F32, &dir.join("f32"), &mut |_| {}).unwrap();
    synth::generate_from_config(&cfg, 3, DType::BF16, &dir.join("bf16"), &mut |_| {}).unwrap();
    let f = Checkpoint::open(dir.join("f32")).unwrap();
    let b = Checkpoint::open(dir.join("bf16")).unwrap();
    assert!(f.contains("lm_head.weight"));
    assert_eq!(cfg.check_checkpoint(&f).unwrap(), LmHead::Separate);
    for t in f.tensors() {
        let full = t.to_f32_vec().unwrap();
        let half = b.tensor(t.name).unwrap().to_f32_vec().unwrap();
        let rounded: Vec<f32> = full
            .iter()
            .map(|&x| half::bf16::from_f32(x).to_f32())
            .collect();
        assert_eq!(rounded, half, "{}", t.name);
    }
    assert!(synth::generate(Preset::Tiny, 0, DType::I8, &dir.join("i8"), &mut |_| {}).is_err());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn presets_match_published_shapes() {
    let c = Preset::Qwen3_1_7B.config();
    assert_eq!(
        (c.hidden_size, c.intermediate_size, c.num_hidden_layers),
        (2048, 6144, 28)
    );
    // Hand count: embedding + 28 x (q, k, v, o, 2 head norms, 2 norms, 3 MLP) + final norm.
    let per_layer = 2048 * 2048 * 2 + 1024 * 2048 * 2 + 128 * 2 + 2048 * 2 + 3 * 6144 * 2048;
    assert_eq!(c.num_params(), 151_936 * 2048 + 28 * per_layer + 2048);
    let c = Preset::Qwen3_0_6B.config();
    assert_eq!(
        (c.hidden_size, c.intermediate_size, c.num_hidden_layers),
        (1024, 3072, 28)
    );
    let c = Preset::Qwen3_4B.config();
    assert_eq!(
        (c.hidden_size, c.num_attention_heads, c.num_hidden_layers),
        (2560, 32, 36)
    );
    assert!(c.tie_word_embeddings);
    // The preset configs agree with mllm's published ones where both exist.
    let shared = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/compat/mllm");
    for (preset, file) in [
        (Preset::Qwen3_1_7B, "config_1.7B.json"),
        (Preset::Qwen3_4B, "config_4B.json"),
    ] {
        let Ok(real) = Qwen3Config::from_file(shared.join(file)) else {
            eprintln!("note: {file} absent, skipping");
            continue;
        };
        let mut ours = preset.config();
        ours.dtype = real.dtype;
        assert_eq!(ours, real, "{file}");
    }
}
