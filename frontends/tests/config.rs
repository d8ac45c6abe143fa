//! Qwen3 `config.json` variants, and the checkpoint-against-config check.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mllm_frontends::config::{EMBED_TOKENS, LM_HEAD};
use mllm_frontends::{
    Checkpoint, DType, Error, LmHead, Qwen3Config, SafetensorsWriter, TensorSpec,
};
use serde_json::{json, Value};

fn shared(rel: &str) -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared")
        .join(rel);
    if p.exists() {
        Some(p)
    } else {
        eprintln!("note: {} absent, skipping", p.display());
        None
    }
}

fn parse(v: &Value) -> Result<Qwen3Config, Error> {
    Qwen3Config::from_value(v, Path::new("config.json"))
}

/// The minimal HF Qwen3 config these tests vary.
fn base() -> Value {
    json!({
        "architectures": ["Qwen3ForCausalLM"],
        "model_type": "qwen3",
        "vocab_size": 1000,
        "hidden_size": 64,
        "intermediate_size": 96,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 32,
        "rms_norm_eps": 1e-5,
        "rope_theta": 1000000,
        "rope_scaling": null,
        "max_position_embeddings": 4096,
        "tie_word_embeddings": false,
        "torch_dtype": "bfloat16",
        "bos_token_id": 1,
        "eos_token_id": 2
    })
}

fn with(mut v: Value, f: impl FnOnce(&mut serde_json::Map<String, Value>)) -> Value {
    f(v.as_object_mut().unwrap());
    v
}

#[test]
fn real_mllm_configs() {
    let Some(p17) = shared("compat/mllm/config_1.7B.json") else {
        return;
    };
    let c = Qwen3Config::from_file(&p17).unwrap();
    assert_eq!(
        (
            c.vocab_size,
            c.hidden_size,
            c.intermediate_size,
            c.num_hidden_layers
        ),
        (151936, 2048, 6144, 28)
    );
    assert_eq!(
        (c.num_attention_heads, c.num_key_value_heads, c.head_dim),
        (16, 8, 128)
    );
    assert_eq!(c.rope_theta, 1_000_000.0);
    assert_eq!(c.rms_norm_eps, 1e-6);
    assert!(c.tie_word_embeddings);
    assert_eq!(c.eos_token_ids, vec![151645]);
    assert_eq!(c.bos_token_id, Some(151643));
    assert_eq!(c.dtype, Some(DType::BF16));
    assert_eq!(c.max_position_embeddings, 40960);
    assert_eq!(c.max_cache_length, Some(2048));
    assert_eq!(c.linear_block_size, Some(16));
    assert_eq!(c.linear_impl_type.as_deref(), Some("QNN_LPBQ_w4a16o16_G16"));

    // The 4B config has no model_type, torch_dtype or rope_scaling.
    let Some(p4) = shared("compat/mllm/config_4B.json") else {
        return;
    };
    let c = Qwen3Config::from_file(&p4).unwrap();
    assert_eq!(
        (c.hidden_size, c.num_hidden_layers, c.num_attention_heads),
        (2560, 36, 32)
    );
    assert_eq!(c.rope_theta, 5_000_000.0);
    assert_eq!(c.max_position_embeddings, 262144);
    assert_eq!(c.linear_block_size, Some(32));
    assert_eq!(c.dtype, None);
    assert_eq!(c.q_size(), 4096);
    assert_eq!(c.kv_size(), 1024);
    assert_eq!(c.num_kv_groups(), 4);
    // A directory argument reads its config.json.
    assert!(Qwen3Config::from_file(p4.parent().unwrap()).is_err()); // no config.json there
}

#[test]
fn rope_theta_locations() {
    let no_top = with(base(), |m| {
        m.remove("rope_theta");
    });
    let c = parse(&with(no_top.clone(), |m| {
        m.insert(
            "rope_parameters".into(),
            json!({"rope_type": "default", "rope_theta": 5e6}),
        );
    }))
    .unwrap();
    assert_eq!(c.rope_theta, 5e6);
    let c = parse(&with(no_top.clone(), |m| {
        m.insert(
            "rope_scaling".into(),
            json!({"type": "default", "rope_theta": 123.0}),
        );
    }))
    .unwrap();
    assert_eq!(c.rope_theta, 123.0);
    // Absent everywhere: transformers' default.
    assert_eq!(parse(&no_top).unwrap().rope_theta, 10000.0);
    // Top level wins.
    let c = parse(&with(base(), |m| {
        m.insert(
            "rope_parameters".into(),
            json!({"rope_type": "default", "rope_theta": 7.0}),
        );
    }))
    .unwrap();
    assert_eq!(c.rope_theta, 1e6);
    // Scaled RoPE is refused clearly.
    let e = parse(&with(base(), |m| {
        m.insert(
            "rope_scaling".into(),
            json!({"rope_type": "yarn", "factor": 4.0}),
        );
    }))
    .unwrap_err()
    .to_string();
    assert!(e.contains("yarn") && e.contains("config.json"), "{e}");
    assert!(parse(&with(base(), |m| {
        m.insert("rope_scaling".into(), json!(3));
    }))
    .is_err());
}

#[test]
fn head_dim_dtype_and_token_variants() {
    let c = parse(&with(base(), |m| {
        m.remove("head_dim");
    }))
    .unwrap();
    assert_eq!(c.head_dim, 16); // 64 / 4
    let e = parse(&with(base(), |m| {
        m.remove("head_dim");
        m.insert("num_attention_heads".into(), json!(6));
        m.insert("num_key_value_heads".into(), json!(3));
    }))
    .unwrap_err()
    .to_string();
    assert!(e.contains("not a multiple"), "{e}");

    let c = parse(&with(base(), |m| {
        m.remove("torch_dtype");
        m.insert("dtype".into(), json!("float16"));
    }))
    .unwrap();
    assert_eq!(c.dtype, Some(DType::F16));
    assert!(parse(&with(base(), |m| {
        m.insert("torch_dtype".into(), json!("int8"));
    }))
    .is_err());

    let c = parse(&with(base(), |m| {
        m.insert("eos_token_id".into(), json!([151645, 151643]));
        m.insert("bos_token_id".into(), Value::Null);
    }))
    .unwrap();
    assert_eq!(c.eos_token_ids, vec![151645, 151643]);
    assert_eq!(c.bos_token_id, None);
    assert!(parse(&with(base(), |m| {
        m.insert("eos_token_id".into(), json!("x"));
    }))
    .is_err());

    // num_key_value_heads defaults to num_attention_heads.
    let c = parse(&with(base(), |m| {
        m.remove("num_key_value_heads");
    }))
    .unwrap();
    assert_eq!(c.num_key_value_heads, 4);
    assert!(!c.tie_word_embeddings);
}

#[test]
fn unsupported_and_invalid_configs() {
    let e = parse(&with(base(), |m| {
        m.insert("model_type".into(), json!("llama"));
    }))
    .unwrap_err();
    assert!(matches!(&e, Error::UnsupportedModel { model_type, .. } if model_type == "llama"));
    assert!(e.to_string().contains("unsupported model_type \"llama\""));
    // No model_type, foreign architecture.
    let e = parse(&with(base(), |m| {
        m.remove("model_type");
        m.insert("architectures".into(), json!(["LlamaForCausalLM"]));
    }))
    .unwrap_err();
    assert!(matches!(e, Error::UnsupportedModel { .. }));

    for (key, value, needle) in [
        (
            "hidden_size",
            json!(null),
            "missing required key hidden_size",
        ),
        ("vocab_size", json!(0), "vocab_size must be positive"),
        ("num_hidden_layers", json!(2.5), "non-negative integer"),
        ("num_key_value_heads", json!(3), "not a multiple"),
        ("rms_norm_eps", json!(-1.0), "rms_norm_eps"),
        ("hidden_act", json!("gelu"), "hidden_act"),
        ("attention_bias", json!(true), "attention_bias"),
        ("tie_word_embeddings", json!("yes"), "boolean"),
    ] {
        let e = parse(&with(base(), |m| {
            m.insert(key.into(), value);
        }))
        .unwrap_err()
        .to_string();
        assert!(e.contains(needle), "{key}: {e:?} should contain {needle:?}");
    }
    let e = Qwen3Config::from_json_str("{not json", Path::new("/x/config.json"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("/x/config.json") && e.contains("not valid JSON"),
        "{e}"
    );
}

#[test]
fn to_json_round_trips() {
    let c = parse(&base()).unwrap();
    let back = parse(&c.to_json()).unwrap();
    assert_eq!(c, back);
}

fn write_model(dir: &Path, specs: &[TensorSpec]) -> Checkpoint {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("model.safetensors");
    let mut w = SafetensorsWriter::create(&path, specs, &BTreeMap::new()).unwrap();
    for s in specs {
        w.write_tensor(&s.name, &vec![0u8; s.byte_len().unwrap() as usize])
            .unwrap();
    }
    w.finish().unwrap();
    Checkpoint::open(dir).unwrap()
}

#[test]
fn checkpoint_check() {
    let dir = std::env::temp_dir().join(format!("mllm-frontends-cfg-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let c = parse(&base()).unwrap();
    let mut specs: Vec<TensorSpec> = c
        .expected_tensors()
        .into_iter()
        .map(|(n, s)| TensorSpec::new(n, DType::BF16, s))
        .collect();
    assert_eq!(specs.len(), 1 + 2 * 11 + 1);
    // Shapes spelled out independently for one layer.
    let shape = |n: &str| specs.iter().find(|s| s.name == n).unwrap().shape.clone();
    assert_eq!(
        shape("model.layers.1.self_attn.q_proj.weight"),
        vec![128, 64]
    );
    assert_eq!(
        shape("model.layers.1.self_attn.k_proj.weight"),
        vec![64, 64]
    );
    assert_eq!(
        shape("model.layers.1.self_attn.o_proj.weight"),
        vec![64, 128]
    );
    assert_eq!(shape("model.layers.1.self_attn.k_norm.weight"), vec![32]);
    assert_eq!(shape("model.layers.0.mlp.down_proj.weight"), vec![64, 96]);
    assert_eq!(shape(EMBED_TOKENS), vec![1000, 64]);

    // Untied, no lm_head: error.
    let ck = write_model(&dir.join("a"), &specs);
    let e = c.check_checkpoint(&ck).unwrap_err().to_string();
    assert_eq!(e, "missing tensor lm_head.weight for config");
    // Tied, no lm_head: use the embedding.
    let mut tied = c.clone();
    tied.tie_word_embeddings = true;
    assert_eq!(tied.check_checkpoint(&ck).unwrap(), LmHead::TiedToEmbedding);
    assert_eq!(LmHead::TiedToEmbedding.tensor_name(), EMBED_TOKENS);
    // With lm_head.
    specs.push(TensorSpec::new(LM_HEAD, DType::BF16, vec![1000, 64]));
    let ck = write_model(&dir.join("b"), &specs);
    assert_eq!(c.check_checkpoint(&ck).unwrap(), LmHead::Separate);
    // Wrong lm_head shape.
    specs.last_mut().unwrap().shape = vec![999, 64];
    let ck = write_model(&dir.join("c"), &specs);
    assert_eq!(
        c.check_checkpoint(&ck).unwrap_err().to_string(),
        "tensor lm_head.weight has shape [999, 64], config needs [1000, 64]"
    );
    // A missing layer tensor, and a wrong norm shape.
    let missing: Vec<TensorSpec> = specs
        .iter()
        .filter(|s| s.name != "model.layers.1.mlp.up_proj.weight")
        .cloned()
        .collect();
    let ck = write_model(&dir.join("d"), &missing);
    assert_eq!(
        c.check_checkpoint(&ck).unwrap_err().to_string(),
        "missing tensor model.layers.1.mlp.up_proj.weight for config"
    );
    let mut bad = specs.clone();
    bad.iter_mut()
        .find(|s| s.name == "model.layers.0.self_attn.q_norm.weight")
        .unwrap()
        .shape = vec![64];
    let ck = write_model(&dir.join("e"), &bad);
    assert_eq!(
        c.check_checkpoint(&ck).unwrap_err().to_string(),
        "tensor model.layers.0.self_attn.q_norm.weight has shape [64], config needs [32]"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
