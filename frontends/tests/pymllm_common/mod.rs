//! A hand-built pymllm export of a tiny Qwen3 model, written in mllm's exact naming (not via
//! the crate's writer); shared by the frontends and tools tests (`#[path]`-included).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;

use mllm_frontends::{DType, Qwen3Config, SafetensorsWriter, TensorSpec};

/// The tiny model's config.json.
pub const CONFIG: &str = r#"{
  "architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3",
  "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
  "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 16,
  "vocab_size": 48, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
  "max_position_embeddings": 128, "tie_word_embeddings": true,
  "linear_block_size": 16
}"#;

/// [`CONFIG`] parsed.
pub fn config() -> Qwen3Config {
    Qwen3Config::from_json_str(CONFIG, Path::new("config.json")).unwrap()
}

/// One tensor of the hand-built export.
pub struct T {
    pub name: String,
    pub dtype: DType,
    pub shape: Vec<usize>,
    pub bytes: Vec<u8>,
}

fn f32b(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// A deterministic int4 value for (layer-ish seed, n, k) in -7..=7 (mllm's range).
pub fn q4(seed: usize, n: usize, k: usize) -> i8 {
    (((seed * 31 + n * 7 + k * 13) % 15) as i8) - 7
}

/// Builds the tensors of a pymllm export of [`CONFIG`] with `max_len` RoPE positions.
pub fn export_tensors(max_len: usize) -> Vec<T> {
    let cfg = config();
    let (h, i, d, v) = (32usize, 64usize, 16usize, 48usize);
    let mut out = Vec::new();
    let mut push = |name: String, dtype: DType, shape: Vec<usize>, bytes: Vec<u8>| {
        out.push(T {
            name,
            dtype,
            shape,
            bytes,
        })
    };
    let mut linears: Vec<(String, usize, usize)> = Vec::new();
    for l in 0..cfg.num_hidden_layers {
        let a = format!("model.layers.{l}.self_attn");
        let m = format!("model.layers.{l}.mlp");
        linears.push((format!("{a}.q_proj"), h, 2 * d));
        linears.push((format!("{a}.k_proj"), h, d));
        linears.push((format!("{a}.v_proj"), h, d));
        linears.push((format!("{a}.o_proj"), 2 * d, h));
        linears.push((format!("{m}.gate_proj"), h, i));
        linears.push((format!("{m}.up_proj"), h, i));
        linears.push((format!("{m}.down_proj"), i, h));
    }
    linears.push(("lm_head".into(), h, v));
    for (seed, (name, inp, outp)) in linears.iter().enumerate() {
        // HWIO [1,1,In,Out], int4 masked to the low nibble.
        let mut w = vec![0u8; inp * outp];
        for k in 0..*inp {
            for n in 0..*outp {
                w[k * outp + n] = (q4(seed, n, k) as u8) & 0x0F;
            }
        }
        push(
            format!("{name}.weight"),
            DType::I8,
            vec![1, 1, *inp, *outp],
            w,
        );
        let nb = inp / 16;
        let s1: Vec<u8> = (0..outp * nb).map(|j| 1 + (j % 16) as u8).collect();
        push(format!("{name}.scale1"), DType::U8, vec![outp * nb], s1);
        let s2: Vec<f32> = (0..*outp).map(|n| 0.001 * (1 + n % 5) as f32).collect();
        push(format!("{name}.scale2"), DType::F32, vec![*outp], f32b(&s2));
    }
    let table = |name: &str,
                 base: &str,
                 shape: Vec<usize>,
                 zp: i32,
                 push: &mut dyn FnMut(String, DType, Vec<usize>, Vec<u8>)| {
        let n: usize = shape.iter().product();
        let bytes: Vec<u8> = (0..n)
            .flat_map(|j| ((j * 977) as u16).to_le_bytes())
            .collect();
        push(name.to_string(), DType::U16, shape, bytes);
        // A 0-d scale, as torch leaves it when an observer's qparams are copied with resize_.
        push(format!("{base}.scale"), DType::F32, vec![], f32b(&[1e-4]));
        push(
            format!("{base}.zero_point"),
            DType::I32,
            vec![1],
            zp.to_le_bytes().to_vec(),
        );
    };
    let mut norms = Vec::new();
    for l in 0..cfg.num_hidden_layers {
        let p = format!("model.layers.{l}");
        norms.push((format!("{p}.input_layernorm"), h));
        norms.push((format!("{p}.post_attention_layernorm"), h));
        norms.push((format!("{p}.self_attn.q_norm"), d));
        norms.push((format!("{p}.self_attn.k_norm"), d));
    }
    norms.push(("model.norm".into(), h));
    for (n, len) in norms {
        table(&format!("{n}.weight"), &n, vec![len], 0, &mut push);
    }
    table(
        "model.embed_tokens.weight",
        "model.embed_tokens",
        vec![v, h],
        32768,
        &mut push,
    );
    table(
        "model.mllm_max_sin_embedding",
        "model.sin_embedding_input_qdq.fake_quant",
        vec![1, max_len, d],
        32768,
        &mut push,
    );
    table(
        "model.mllm_max_cos_embedding",
        "model.cos_embedding_input_qdq.fake_quant",
        vec![1, max_len, d],
        32768,
        &mut push,
    );
    // Every u16 activation QDQ of modeling_qwen3.py, written from the list below (not from
    // the crate's map, which the test checks against it).
    let mut qdq: Vec<String> = Vec::new();
    for l in 0..cfg.num_hidden_layers {
        let p = format!("model.layers.{l}");
        if l != 0 {
            qdq.push(format!("{p}.input_layernorm_input_qdq"));
        }
        for s in [
            "add_0_lhs_input_qdq",
            "add_0_output_qdq",
            "add_1_lhs_input_qdq",
        ] {
            qdq.push(format!("{p}.{s}"));
        }
        for s in [
            "q_proj_input_qdq",
            "q_norm_input_qdq",
            "q_norm_output_qdq",
            "k_norm_input_qdq",
            "k_norm_output_qdq",
            "q_rope_mul_0_output_qdq",
            "q_rope_mul_1_output_qdq",
            "q_rope_add_0_output_qdq",
            "k_rope_mul_0_output_qdq",
            "k_rope_mul_1_output_qdq",
            "k_rope_add_0_output_qdq",
            "q_rope_neg_half_qdq",
            "k_rope_neg_half_qdq",
            "v_cast_to_int16_qdq",
            "qk_matmul_output_qdq",
            "scaling_qdq",
            "neg_20_qdq",
            "reduce_min_output_qdq",
            "mul_0_output_qdq",
            "minus_0_output_qdq",
            "softmax_output_qdq",
            "attn_value_matmul_output_qdq",
            "where_attn_qdq",
        ] {
            qdq.push(format!("{p}.self_attn.{s}"));
        }
        for s in [
            "up_proj_input_qdq",
            "up_proj_output_qdq",
            "gate_proj_output_qdq",
            "act_output_qdq",
            "down_proj_input_qdq",
            "sigmoid_output_qdq",
        ] {
            qdq.push(format!("{p}.mlp.{s}"));
        }
    }
    qdq.push("model.norm_input_qdq".into());
    qdq.push("lm_head_input_qdq".into());
    qdq.push("lm_head_output_qdq".into());
    for (j, q) in qdq.iter().enumerate() {
        let fq = format!("{q}.fake_quant");
        push(
            format!("{fq}.scale"),
            DType::F32,
            vec![1],
            f32b(&[1e-3 * (1 + j) as f32]),
        );
        push(
            format!("{fq}.zero_point"),
            DType::I32,
            vec![1],
            (100 + j as i32).to_le_bytes().to_vec(),
        );
        // Observer state save_model also writes; the reader must ignore it.
        push(
            format!("{fq}.activation_post_process.min_val"),
            DType::F32,
            vec![],
            f32b(&[-1.0]),
        );
        push(
            format!("{fq}.fake_quant_enabled"),
            DType::I64,
            vec![1],
            1i64.to_le_bytes().to_vec(),
        );
    }
    for l in 0..cfg.num_hidden_layers {
        for w in ["k", "v"] {
            let fq = format!("model.layers.{l}.self_attn.{w}_cast_to_int8_qdq.fake_quant");
            push(format!("{fq}.scale"), DType::F32, vec![1], f32b(&[0.02]));
            push(
                format!("{fq}.zero_point"),
                DType::I32,
                vec![1],
                128i32.to_le_bytes().to_vec(),
            );
        }
    }
    out
}

pub fn write(path: &Path, ts: &[T]) {
    let specs: Vec<TensorSpec> = ts
        .iter()
        .map(|t| TensorSpec::new(t.name.clone(), t.dtype, t.shape.clone()))
        .collect();
    let mut w = SafetensorsWriter::create(path, &specs, &BTreeMap::new()).unwrap();
    for t in ts {
        w.write_tensor(&t.name, &t.bytes).unwrap();
    }
    w.finish().unwrap();
}
