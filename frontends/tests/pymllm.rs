//! The pymllm export reader on a hand-built export written here in mllm's exact naming
//! (module paths of `pymllm/.../qwen3/modeling_qwen3.py`, the buffers its `convert()` leaves:
//! `weight`/`scale1`/`scale2` of `QLinearLPBQ`, `weight`/`scale`/`zero_point` of
//! `QRMSNorm`/`QEmbedding`, `<qdq>.fake_quant.{scale,zero_point}` plus the torch observer
//! buffers `save_model` also writes), not via our writer; and its errors on bad inputs.

#[path = "pymllm_common/mod.rs"]
mod pymllm_common;

use mllm_frontends::pymllm::{activation_map, read_pymllm, PymllmError};
use mllm_ir::types::{ElemType, Encoding};
use pymllm_common::{config, export_tensors, q4, write, T};

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
