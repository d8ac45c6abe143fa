//! The pymllm export reader on a hand-built export written here in mllm's exact naming
//! (module paths of `pymllm/.../qwen3/modeling_qwen3.py`, the buffers its `convert()` leaves:
//! `weight`/`scale1`/`scale2` of `QLinearLPBQ`, `weight`/`scale`/`zero_point` of
//! `QRMSNorm`/`QEmbedding`, `<qdq>.fake_quant.{scale,zero_point}` plus the torch observer
//! buffers `save_model` also writes), not via our writer; and its errors on bad inputs.

use std::collections::BTreeMap;
use std::path::Path;

use mllm_frontends::pymllm::{activation_map, read_pymllm, PymllmError};
use mllm_frontends::{DType, Qwen3Config, SafetensorsWriter, TensorSpec};
use mllm_ir::types::{ElemType, Encoding};

const CONFIG: &str = r#"{
  "architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3",
  "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
  "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 16,
  "vocab_size": 48, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
  "max_position_embeddings": 128, "tie_word_embeddings": true,
  "linear_block_size": 16
}"#;

fn config() -> Qwen3Config {
    Qwen3Config::from_json_str(CONFIG, Path::new("config.json")).unwrap()
}

/// One tensor of the hand-built export.
struct T {
    name: String,
    dtype: DType,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

fn f32b(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// A deterministic int4 value for (layer-ish seed, n, k) in -7..=7 (mllm's range).
fn q4(seed: usize, n: usize, k: usize) -> i8 {
    (((seed * 31 + n * 7 + k * 13) % 15) as i8) - 7
}

/// Builds the tensors of a pymllm export of [`CONFIG`] with `max_len` RoPE positions.
fn export_tensors(max_len: usize) -> Vec<T> {
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

fn write(path: &Path, ts: &[T]) {
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

fn find<'a>(ts: &'a [T], name: &str) -> &'a T {
    ts.iter().find(|t| t.name == name).unwrap()
}

#[test]
fn hand_built_export_imports() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("model.safetensors");
    let ts = export_tensors(64);
    write(&p, &ts);
    let cfg = config();
    let imp = read_pymllm(&p, &cfg, 32).unwrap();

    // Every QDQ of the crate's map is one the hand-written list has, and vice versa for the
    // u16 activations (constants excepted: our quantizer derives those).
    let map = activation_map(2);
    for q in &map {
        assert!(
            ts.iter()
                .any(|t| t.name == format!("{}.fake_quant.scale", q.qdq)),
            "{} is not a pymllm QDQ name",
            q.qdq
        );
    }
    let n_qdq = ts
        .iter()
        .filter(|t| t.name.ends_with("_qdq.fake_quant.scale") && !t.name.contains("cast_to_int8"))
        .filter(|t| !t.name.contains("scaling_qdq") && !t.name.contains("neg_20_qdq"))
        .filter(|t| !t.name.contains("_embedding_input_qdq"))
        .count();
    assert_eq!(map.len(), n_qdq, "every u16 activation QDQ is mapped");

    // Encodings: offset = -zero_point, keyed by our op names.
    let zp_of = |qdq: &str| {
        let t = find(&ts, &format!("{qdq}.fake_quant.zero_point"));
        i32::from_le_bytes(t.bytes[..4].try_into().unwrap())
    };
    let (s, o) = imp.encodings["model.layers.0.input_layernorm"];
    assert_eq!(o, -zp_of("model.layers.0.self_attn.q_proj_input_qdq"));
    assert!(s > 0.0);
    assert_eq!(
        imp.encodings["model.layers.0.mlp_residual"].1,
        -zp_of("model.layers.1.input_layernorm_input_qdq")
    );
    assert_eq!(
        imp.encodings["model.layers.1.mlp_residual"].1,
        -zp_of("model.norm_input_qdq")
    );
    assert_eq!(
        imp.encodings["model.layers.1.self_attn.k_cache_requantize"],
        (0.02, -128)
    );

    // LPBQ: HWIO nibbles -> [N, K] sign-extended int4.
    let (pn, elem) = &imp.weights["linear:model.layers.0.self_attn.k_proj.weight"];
    assert_eq!(pn, "model.layers.0.self_attn.k_proj.weight.lpbq");
    let w = imp.store.get(pn).unwrap();
    assert_eq!(w.shape, vec![16, 32]);
    let b = w.bytes();
    let seed = 1; // k_proj is the second linear written
    for n in 0..16 {
        for k in 0..32 {
            assert_eq!(b[n * 32 + k] as i8, q4(seed, n, k), "k_proj [{n}, {k}]");
        }
    }
    let ElemType::Quant(q) = elem else {
        panic!("not quantized")
    };
    let Encoding::Blockwise {
        block_size,
        block_scales,
        channel_scales,
        block_scale_bits,
        ..
    } = &q.encoding
    else {
        panic!("not LPBQ")
    };
    assert_eq!(*block_size, 16);
    assert_eq!(
        &block_scales[..],
        &find(&ts, "model.layers.0.self_attn.k_proj.scale1").bytes[..]
    );
    assert_eq!(channel_scales.len(), 16);
    // The hand-built scales reach 16 (mllm's clamp), which needs 5 bits.
    assert_eq!(*block_scale_bits, 5);
    // The tied lm_head is the embedding's linear form.
    assert!(imp.weights.contains_key("linear:model.embed_tokens.weight"));
    // Norms, embedding and RoPE tables (cut to the context length).
    let (pn, _) = &imp.weights["model.rope.sin"];
    let t = imp.store.get(pn).unwrap();
    assert_eq!(t.shape, vec![32, 16]);
    assert_eq!(
        &t.bytes()[..],
        &find(&ts, "model.mllm_max_sin_embedding").bytes[..32 * 16 * 2]
    );
    let (_, e) = &imp.weights["model.embed_tokens.weight"];
    let ElemType::Quant(q) = e else { panic!() };
    assert_eq!(q.encoding.per_tensor(), Some((1e-4, -32768)));
    assert_eq!(imp.block_size, 16);
}

fn expect_err(ts: &[T], want: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("model.safetensors");
    write(&p, ts);
    let e = read_pymllm(&p, &config(), 32).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("model.safetensors"), "names the file: {msg}");
    for w in want {
        assert!(msg.contains(w), "error {msg:?} should mention {w:?}");
    }
}

#[test]
fn missing_scale2_is_named() {
    let mut ts = export_tensors(64);
    ts.retain(|t| t.name != "model.layers.1.mlp.up_proj.scale2");
    expect_err(&ts, &["model.layers.1.mlp.up_proj.scale2", "missing"]);
}

#[test]
fn wrong_weight_shape_is_named() {
    let mut ts = export_tensors(64);
    let t = ts
        .iter_mut()
        .find(|t| t.name == "model.layers.0.self_attn.k_proj.weight")
        .unwrap();
    t.shape = vec![1, 1, 16, 32]; // [1,1,Out,In] instead of [1,1,In,Out]
    expect_err(&ts, &["model.layers.0.self_attn.k_proj.weight", "shape"]);
}

#[test]
fn non_nibble_values_are_rejected() {
    let mut ts = export_tensors(64);
    let t = ts
        .iter_mut()
        .find(|t| t.name == "model.layers.0.mlp.down_proj.weight")
        .unwrap();
    t.bytes[5] = 0xF9; // -7 not masked to 0x09
    expect_err(&ts, &["model.layers.0.mlp.down_proj.weight", "nibble"]);
}

#[test]
fn short_rope_table_and_bad_kv_zero_point_are_named() {
    let ts = export_tensors(16);
    expect_err(&ts, &["model.mllm_max_", "positions"]);
    let mut ts = export_tensors(64);
    let t = ts
        .iter_mut()
        .find(|t| t.name == "model.layers.0.self_attn.v_cast_to_int8_qdq.fake_quant.zero_point")
        .unwrap();
    t.bytes = 127i32.to_le_bytes().to_vec();
    expect_err(&ts, &["v_cast_to_int8_qdq.fake_quant.zero_point", "128"]);
}

#[test]
fn missing_activation_encoding_is_named() {
    let mut ts = export_tensors(64);
    ts.retain(|t| t.name != "model.layers.1.self_attn.softmax_output_qdq.fake_quant.scale");
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("model.safetensors");
    write(&p, &ts);
    match read_pymllm(&p, &config(), 32) {
        Err(PymllmError::Missing { tensor, why, .. }) => {
            assert_eq!(
                tensor,
                "model.layers.1.self_attn.softmax_output_qdq.fake_quant.scale"
            );
            assert!(why.contains("model.layers.1.self_attn.softmax"), "{why}");
        }
        other => panic!("expected a missing-tensor error, got {other:?}"),
    }
}
