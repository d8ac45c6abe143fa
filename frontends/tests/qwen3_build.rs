//! Tests of the Qwen3 graph builder: structure, I/O contract, weight handling, errors, and a
//! snapshot of the printed IR of a one-layer model.

use std::collections::BTreeSet;
use std::sync::Arc;

use mllm_frontends::qwen3::{build_qwen3, import_weights, BuildError, BuildOptions, ROPE_COS};
use mllm_frontends::synth::{self, Preset};
use mllm_frontends::{Checkpoint, DType, Qwen3Config};
use mllm_ir::attr::AttrsExt;
use mllm_ir::verify::{verify_module, verify_weights};
use mllm_ir::{ElemType, Function, Module, OpKind, Type, WDType, Weight, WeightStore};

/// A small config: q_size (4 * 12 = 48) differs from hidden (32) to catch axis mix-ups.
fn small_config(layers: usize, tied: bool) -> Qwen3Config {
    let mut c = Preset::Tiny.config();
    c.vocab_size = 40;
    c.hidden_size = 32;
    c.intermediate_size = 48;
    c.num_hidden_layers = layers;
    c.num_attention_heads = 4;
    c.num_key_value_heads = 2;
    c.head_dim = 12;
    c.tie_word_embeddings = tied;
    c
}

/// Every tensor of `cfg` (plus `lm_head` when `with_lm_head`), zero-filled, in memory.
fn zero_store(cfg: &Qwen3Config, dtype: WDType, with_lm_head: bool) -> WeightStore {
    let mut store = WeightStore::new();
    let mut names = cfg.expected_tensors();
    if with_lm_head {
        names.push(("lm_head.weight".into(), cfg.lm_head_shape()));
    }
    for (name, shape) in names {
        let n: usize = shape.iter().product();
        store.insert(
            name,
            Weight::owned(dtype, shape, vec![0; n * dtype.size()]).unwrap(),
        );
    }
    store
}

fn opts(ar_len: usize, context_len: usize) -> BuildOptions {
    BuildOptions {
        ar_len,
        context_len,
        num_shards: 1,
    }
}

fn arg_sig(f: &Function) -> Vec<(String, Type)> {
    f.args()
        .iter()
        .zip(&f.arg_names)
        .map(|(a, n)| (n.clone().unwrap_or_default(), f.ty(*a).clone()))
        .collect()
}

fn result_sig(f: &Function) -> Vec<(String, Type)> {
    f.returned()
        .iter()
        .zip(&f.result_names)
        .map(|(v, n)| (n.clone().unwrap_or_default(), f.ty(*v).clone()))
        .collect()
}

fn f32t(shape: &[usize]) -> Type {
    Type::tensor(shape.to_vec(), ElemType::F32)
}

/// Names of the weights a function refers to.
fn weight_names(f: &Function) -> BTreeSet<String> {
    f.op_ids()
        .into_iter()
        .filter(|op| f.op(*op).kind == OpKind::Weight)
        .map(|op| f.op(op).attrs.str("name").unwrap_or_default().to_string())
        .collect()
}

/// The weight feeding the op named `name`'s operand `idx`.
fn weight_of(f: &Function, name: &str, idx: usize) -> String {
    let op = f
        .op_ids()
        .into_iter()
        .find(|op| f.op(*op).name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("no op named {name}"));
    let v = f.op(op).operands[idx];
    let def = f.def_op(v).expect("operand is an op result");
    assert_eq!(f.op(def).kind, OpKind::Weight);
    f.op(def).attrs.str("name").unwrap().to_string()
}

#[test]
fn io_contract_holds_for_several_sizes() {
    let cfg = small_config(3, true);
    let (hkv, d, v) = (2, 12, 40);
    for (s, c) in [(32, 1024), (4, 16), (1, 8), (128, 2048), (7, 9)] {
        let m = build_qwen3(&cfg, zero_store(&cfg, WDType::F32, false), opts(s, c)).unwrap();
        let want_names: Vec<String> = if s == 1 {
            vec!["model.0.s1".into()]
        } else {
            vec![format!("model.0.s{s}"), "model.0.s1".into()]
        };
        let names: Vec<String> = m.functions.iter().map(|f| f.name.clone()).collect();
        assert_eq!(names, want_names);
        for f in &m.functions {
            let n = f.attrs.int("ar_len").unwrap() as usize;
            assert_eq!(f.name, format!("model.0.s{n}"));
            let mut want = vec![
                (
                    "sequence".to_string(),
                    Type::tensor(vec![1, n], ElemType::I32),
                ),
                ("position_ids".into(), Type::tensor(vec![n], ElemType::I32)),
                ("causal_mask".into(), f32t(&[1, 1, n, c])),
            ];
            want.extend((0..3).map(|l| (format!("past_key_{l}"), f32t(&[1, hkv, c - n, d]))));
            want.extend((0..3).map(|l| (format!("past_value_{l}"), f32t(&[1, hkv, c - n, d]))));
            assert_eq!(arg_sig(f), want, "inputs of {} (S={s}, C={c})", f.name);
            let mut want = vec![("logits".to_string(), f32t(&[1, n, v]))];
            want.extend((0..3).map(|l| (format!("present_key_{l}"), f32t(&[1, hkv, n, d]))));
            want.extend((0..3).map(|l| (format!("present_value_{l}"), f32t(&[1, hkv, n, d]))));
            assert_eq!(result_sig(f), want, "outputs of {} (S={s}, C={c})", f.name);
        }
        let cos = m.weights.get(ROPE_COS).unwrap();
        assert_eq!(cos.shape, vec![c, d]);
    }
}

#[test]
fn ops_carry_hf_module_names() {
    let cfg = small_config(2, true);
    let m = build_qwen3(&cfg, zero_store(&cfg, WDType::F32, false), opts(4, 16)).unwrap();
    let f = &m.functions[0];
    let names: BTreeSet<String> = f
        .op_ids()
        .iter()
        .filter_map(|op| f.op(*op).name.clone())
        .collect();
    for want in [
        "model.embed_tokens",
        "model.layers.1.input_layernorm",
        "model.layers.1.self_attn.q_proj",
        "model.layers.1.self_attn.q_norm",
        "model.layers.1.self_attn.k_norm",
        "model.layers.1.self_attn.rope_q",
        "model.layers.1.self_attn.rope_k",
        "model.layers.1.self_attn.qk_matmul",
        "model.layers.1.self_attn.softmax",
        "model.layers.1.self_attn.o_proj",
        "model.layers.1.mlp.gate_proj",
        "model.layers.1.mlp.act",
        "model.layers.1.mlp.down_proj",
        "model.norm",
        "lm_head",
    ] {
        assert!(names.contains(want), "no op named {want}");
    }
    // Named ops are unique within a function (recipes address them by name).
    let named = f
        .op_ids()
        .iter()
        .filter(|op| f.op(**op).name.is_some())
        .count();
    assert_eq!(named, names.len());
    // The projections read the HF weights they are named after.
    assert_eq!(
        weight_of(f, "model.layers.1.self_attn.q_proj", 1),
        "model.layers.1.self_attn.q_proj.weight"
    );
    assert_eq!(
        weight_of(f, "model.layers.0.mlp.down_proj", 1),
        "model.layers.0.mlp.down_proj.weight"
    );
    // No repeat/tile for grouped-query attention.
    assert!(f.op_ids().iter().all(|op| f.op(*op).kind != OpKind::Repeat));
}

#[test]
fn both_functions_share_one_weight_store() {
    let cfg = small_config(2, false);
    let m = build_qwen3(&cfg, zero_store(&cfg, WDType::BF16, true), opts(8, 32)).unwrap();
    assert_eq!(m.functions.len(), 2);
    let a = weight_names(&m.functions[0]);
    let b = weight_names(&m.functions[1]);
    assert_eq!(a, b);
    let stored: BTreeSet<String> = m.weights.iter().map(|(n, _)| n.clone()).collect();
    assert_eq!(a, stored, "every stored weight is used, and only those");
    // Logical type f32 in the IR, physical bf16 in the store.
    let f = &m.functions[1];
    for op in f.op_ids() {
        let o = f.op(op);
        if o.kind == OpKind::Weight {
            assert_eq!(f.ty(o.results[0]).elem(), &ElemType::F32);
        }
    }
    assert_eq!(
        m.weights.get("model.norm.weight").unwrap().dtype,
        WDType::BF16
    );
}

#[test]
fn lm_head_tied_and_untied() {
    // Tied, no lm_head tensor: the embedding is the output projection.
    let cfg = small_config(1, true);
    let m = build_qwen3(&cfg, zero_store(&cfg, WDType::F32, false), opts(4, 16)).unwrap();
    assert_eq!(
        weight_of(&m.functions[0], "lm_head", 1),
        "model.embed_tokens.weight"
    );
    assert!(!m.weights.contains("lm_head.weight"));
    // Untied with lm_head.
    let cfg = small_config(1, false);
    let m = build_qwen3(&cfg, zero_store(&cfg, WDType::F32, true), opts(4, 16)).unwrap();
    assert_eq!(weight_of(&m.functions[0], "lm_head", 1), "lm_head.weight");
    // Untied without lm_head: a clear error.
    let err = build_qwen3(&cfg, zero_store(&cfg, WDType::F32, false), opts(4, 16)).unwrap_err();
    assert!(matches!(err, BuildError::MissingWeight { .. }));
    assert_eq!(err.to_string(), "missing tensor lm_head.weight for config");
    // A wrongly shaped lm_head.
    let mut store = zero_store(&cfg, WDType::F32, false);
    store.insert(
        "lm_head.weight",
        Weight::owned(WDType::F32, vec![32, 40], vec![0; 32 * 40 * 4]).unwrap(),
    );
    let err = build_qwen3(&cfg, store, opts(4, 16))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("lm_head.weight") && err.contains("[32, 40]"),
        "{err}"
    );
}

#[test]
fn bad_weights_and_options_give_clear_errors() {
    let cfg = small_config(2, true);
    let mut store = zero_store(&cfg, WDType::F32, false);
    store.remove("model.layers.1.self_attn.k_norm.weight");
    let err = build_qwen3(&cfg, store, opts(4, 16))
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "missing tensor model.layers.1.self_attn.k_norm.weight for config"
    );

    let mut store = zero_store(&cfg, WDType::F32, false);
    store.insert(
        "model.layers.0.mlp.up_proj.weight",
        Weight::owned(WDType::F32, vec![32, 48], vec![0; 32 * 48 * 4]).unwrap(),
    );
    let err = build_qwen3(&cfg, store, opts(4, 16))
        .unwrap_err()
        .to_string();
    assert!(err.contains("model.layers.0.mlp.up_proj.weight"), "{err}");
    assert!(
        err.contains("[32, 48]") && err.contains("[48, 32]"),
        "{err}"
    );

    let mut store = zero_store(&cfg, WDType::F32, false);
    store.insert(
        "model.norm.weight",
        Weight::owned(WDType::I8, vec![32], vec![0; 32]).unwrap(),
    );
    let err = build_qwen3(&cfg, store, opts(4, 16))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("model.norm.weight") && err.contains("I8"),
        "{err}"
    );

    for (o, needle) in [
        (
            opts(16, 16),
            "context_len (16) must be larger than ar_len (16)",
        ),
        (opts(0, 16), "ar_len must be at least 1"),
        (
            opts(32, 1 << 30),
            "context_len (1073741824) exceeds the model's max_position_embeddings (40960)",
        ),
        (
            BuildOptions {
                num_shards: 3,
                ..opts(4, 16)
            },
            "num_shards",
        ),
    ] {
        let err = build_qwen3(&cfg, zero_store(&cfg, WDType::F32, false), o)
            .unwrap_err()
            .to_string();
        assert!(err.contains(needle), "{err}");
    }
}

#[test]
fn hand_made_bad_configs_are_rejected_not_panicking() {
    let store = || zero_store(&small_config(1, true), WDType::F32, false);
    type Edit = fn(&mut Qwen3Config);
    let cases: [(Edit, &str); 4] = [
        (
            |c| c.num_key_value_heads = 0,
            "num_key_value_heads must be positive",
        ),
        (|c| c.num_key_value_heads = 3, "not a multiple"),
        (|c| c.head_dim = 7, "head_dim 7 must be even"),
        (|c| c.rope_theta = -1.0, "rope_theta"),
    ];
    for (edit, needle) in cases {
        let mut cfg = small_config(1, true);
        edit(&mut cfg);
        let err = build_qwen3(&cfg, store(), opts(4, 16))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("invalid config") && err.contains(needle),
            "{err}"
        );
    }
}

#[test]
fn unsupported_model_type_is_rejected_by_name() {
    let mut json = small_config(1, true).to_json();
    json["model_type"] = "llama".into();
    let err = Qwen3Config::from_json_str(&json.to_string(), std::path::Path::new("cfg.json"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("llama") && err.contains("cfg.json"), "{err}");
}

#[test]
fn shards_split_layers_and_chain_hidden_states() {
    let cfg = small_config(5, true);
    let o = BuildOptions {
        num_shards: 2,
        ..opts(4, 16)
    };
    let m = build_qwen3(&cfg, zero_store(&cfg, WDType::F32, false), o).unwrap();
    let names: Vec<&str> = m.functions.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        ["model.0.s4", "model.0.s1", "model.1.s4", "model.1.s1"]
    );
    let f0 = &m.functions[0];
    let f1 = &m.functions[2];
    assert_eq!(f0.attrs.ints("layers").unwrap(), &[0, 3]);
    assert_eq!(f1.attrs.ints("layers").unwrap(), &[3, 5]);
    assert_eq!(f0.result_names[0].as_deref(), Some("hidden_states"));
    assert_eq!(f0.ty(f0.returned()[0]), &f32t(&[1, 4, 32]));
    assert_eq!(f1.arg_names[0].as_deref(), Some("hidden_states"));
    assert_eq!(f1.ty(f1.args()[0]), &f32t(&[1, 4, 32]));
    assert_eq!(f1.arg_names[3].as_deref(), Some("past_key_3"));
    assert_eq!(
        f1.result_names.last().unwrap().as_deref(),
        Some("present_value_4")
    );
    assert!(weight_names(f1).contains("model.norm.weight"));
    assert!(!weight_names(f0).contains("model.norm.weight"));
}

fn round_trip(m: &Module) {
    let text = mllm_ir::print::print_module(m);
    let parsed = mllm_ir::parse::parse_module(&text, "qwen3.mlir").unwrap();
    mllm_ir::equiv::module_eq(m, &parsed).unwrap();
    verify_module(&parsed).unwrap();
    assert_eq!(mllm_ir::print::print_module(&parsed), text);
}

#[test]
fn one_layer_ir_snapshot_and_round_trip() {
    let mut cfg = small_config(1, true);
    cfg.vocab_size = 24;
    cfg.hidden_size = 16;
    cfg.intermediate_size = 24;
    cfg.head_dim = 8;
    let m = build_qwen3(&cfg, zero_store(&cfg, WDType::F32, false), opts(4, 12)).unwrap();
    round_trip(&m);
    insta::assert_snapshot!(mllm_ir::print::print_module(&m));
}

#[test]
fn tiny_preset_checkpoint_builds_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let summary = synth::generate(Preset::Tiny, 7, DType::BF16, dir.path(), &mut |_| {}).unwrap();
    let cfg = Qwen3Config::from_file(&summary.config_path).unwrap();
    let ckpt = Arc::new(Checkpoint::open(dir.path()).unwrap());
    let store = import_weights(&cfg, &ckpt).unwrap();
    let m = build_qwen3(&cfg, store, BuildOptions::default()).unwrap();
    verify_module(&m).unwrap();
    verify_weights(&m).unwrap();
    let names: Vec<&str> = m.functions.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["model.0.s32", "model.0.s1"]);
    // Zero copy: the store's bytes are the checkpoint's mapped bytes.
    let name = "model.layers.1.mlp.up_proj.weight";
    let w = m.weights.get(name).unwrap();
    assert_eq!(w.dtype, WDType::BF16);
    assert_eq!(
        w.bytes().as_ptr(),
        ckpt.tensor(name).unwrap().bytes.as_ptr()
    );
    round_trip(&m);

    // Re-read from text: load_weights maps the checkpoint named by `weights` and recomputes RoPE.
    let mut m_attr = m.clone();
    m_attr.attrs.insert(
        "weights".into(),
        mllm_ir::Attr::Str("model.safetensors".into()),
    );
    let text = mllm_ir::print::print_module(&m_attr);
    let mut back = mllm_ir::parse::parse_module(&text, "tiny.mlir").unwrap();
    assert!(back.weights.is_empty());
    mllm_frontends::qwen3::load_weights(&mut back, Some(dir.path())).unwrap();
    assert_eq!(back.weights.len(), m.weights.len());
    for (n, w) in m.weights.iter() {
        let b = back.weights.get(n).unwrap();
        assert_eq!((b.dtype, &b.shape), (w.dtype, &w.shape), "{n}");
        assert_eq!(b.bytes(), w.bytes(), "{n}");
    }
    back.attrs.insert(
        "weights".into(),
        mllm_ir::Attr::Str("nope.safetensors".into()),
    );
    let err = mllm_frontends::qwen3::load_weights(&mut back, Some(dir.path())).unwrap_err();
    assert!(err.to_string().contains("nope.safetensors"), "{err}");
    back.attrs.remove("weights");
    let err = mllm_frontends::qwen3::load_weights(&mut back, None).unwrap_err();
    assert!(err.to_string().contains("`weights`"), "{err}");

    // The same checkpoint through .mllm v2 gives the same module.
    let mllm = dir.path().join("model.mllm");
    mllm_frontends::mllm_file::write_checkpoint(
        &ckpt,
        &mllm,
        "tiny",
        mllm_frontends::MllmLayout::default(),
        &mut |_| {},
    )
    .unwrap();
    let ckpt2 = Arc::new(Checkpoint::open(&mllm).unwrap());
    let m2 = build_qwen3(
        &cfg,
        import_weights(&cfg, &ckpt2).unwrap(),
        BuildOptions::default(),
    )
    .unwrap();
    mllm_ir::equiv::module_eq(&m, &m2).unwrap();
    assert_eq!(
        m2.weights.get(name).unwrap().to_f32(),
        w.to_f32(),
        "same values through .mllm"
    );
}

/// One zero buffer, allocated lazily by the OS (calloc): weights of any size view it without
/// touching memory, so real model shapes can be built cheaply.
struct Zeros(Vec<u8>);
impl mllm_ir::WeightBytes for Zeros {
    fn bytes(&self) -> &[u8] {
        &self.0
    }
}

fn virtual_store(cfg: &Qwen3Config) -> WeightStore {
    let names = cfg.expected_tensors();
    let max = names
        .iter()
        .map(|(_, s)| s.iter().product::<usize>())
        .max()
        .unwrap()
        * 2;
    let zeros: Arc<dyn mllm_ir::WeightBytes> = Arc::new(Zeros(vec![0; max]));
    let mut store = WeightStore::new();
    for (name, shape) in names {
        let len = shape.iter().product::<usize>() * 2;
        store.insert(
            name,
            Weight::from_range(WDType::BF16, shape, zeros.clone(), 0, len).unwrap(),
        );
    }
    store
}

#[test]
fn mllm_reference_configs_build_with_real_shapes() {
    // The workspace root is the parent of this crate; shared files are at ../shared from there.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/compat/mllm");
    if !dir.is_dir() {
        eprintln!("note: {} absent, skipping", dir.display());
        return;
    }
    for file in ["config_1.7B.json", "config_4B.json"] {
        let cfg = Qwen3Config::from_file(dir.join(file)).unwrap();
        let c = cfg.max_cache_length.unwrap();
        let (l, hkv, d) = (cfg.num_hidden_layers, cfg.num_key_value_heads, cfg.head_dim);
        let m = build_qwen3(&cfg, virtual_store(&cfg), opts(32, c)).unwrap();
        verify_weights(&m).unwrap();
        let f = m.function("model.0.s32").unwrap();
        assert_eq!(f.args().len(), 3 + 2 * l, "{file}");
        assert_eq!(f.returned().len(), 1 + 2 * l, "{file}");
        let sig = arg_sig(f);
        assert_eq!(
            sig[3],
            ("past_key_0".to_string(), f32t(&[1, hkv, c - 32, d]))
        );
        assert_eq!(
            sig[3 + l],
            ("past_value_0".to_string(), f32t(&[1, hkv, c - 32, d]))
        );
        let out = result_sig(f);
        assert_eq!(
            out[0],
            ("logits".to_string(), f32t(&[1, 32, cfg.vocab_size]))
        );
        assert_eq!(
            out[2 * l],
            (format!("present_value_{}", l - 1), f32t(&[1, hkv, 32, d]))
        );
        let d1 = m.function("model.0.s1").unwrap();
        assert_eq!(arg_sig(d1)[3].1, f32t(&[1, hkv, c - 1, d]));
        // Prefill and decode are the same graph at different shapes.
        assert_eq!(f.num_ops(), d1.num_ops(), "{file}");
    }
}

#[test]
fn sharded_safetensors_checkpoint_imports_zero_copy() {
    use mllm_frontends::safetensors::{SafetensorsWriter, TensorSpec};
    let dir = tempfile::tempdir().unwrap();
    let single = dir.path().join("single");
    let mut cfg = small_config(2, false);
    cfg.vocab_size = 64;
    synth::generate_from_config(&cfg, 5, DType::BF16, &single, &mut |_| {}).unwrap();
    let one = Arc::new(Checkpoint::open(&single).unwrap());

    // Split the tensors over two shard files plus an index.
    let sharded = dir.path().join("sharded");
    std::fs::create_dir_all(&sharded).unwrap();
    let infos: Vec<_> = one.infos().cloned().collect();
    let (a, b) = infos.split_at(infos.len() / 2);
    let mut map = serde_json::Map::new();
    for (file, part) in [
        ("model-00001-of-00002.safetensors", a),
        ("model-00002-of-00002.safetensors", b),
    ] {
        let specs: Vec<TensorSpec> = part
            .iter()
            .map(|t| TensorSpec::new(t.name.clone(), t.dtype, t.shape.clone()))
            .collect();
        let mut w =
            SafetensorsWriter::create(sharded.join(file), &specs, &Default::default()).unwrap();
        for t in part {
            w.write_tensor(&t.name, one.tensor(&t.name).unwrap().bytes)
                .unwrap();
            map.insert(t.name.clone(), file.into());
        }
        w.finish().unwrap();
    }
    let index = serde_json::json!({"metadata": {}, "weight_map": map});
    std::fs::write(
        sharded.join("model.safetensors.index.json"),
        index.to_string(),
    )
    .unwrap();

    let two = Arc::new(Checkpoint::open(&sharded).unwrap());
    let m1 = build_qwen3(&cfg, import_weights(&cfg, &one).unwrap(), opts(4, 16)).unwrap();
    let m2 = build_qwen3(&cfg, import_weights(&cfg, &two).unwrap(), opts(4, 16)).unwrap();
    mllm_ir::equiv::module_eq(&m1, &m2).unwrap();
    for (name, w) in m2.weights.iter() {
        if name.starts_with("model.rope.") {
            continue;
        }
        assert_eq!(
            w.bytes().as_ptr(),
            two.tensor(name).unwrap().bytes.as_ptr(),
            "{name}"
        );
        assert_eq!(w.bytes(), m1.weights.get(name).unwrap().bytes(), "{name}");
    }
}

#[test]
fn load_weights_prefers_tables_stored_in_the_checkpoint() {
    use mllm_frontends::safetensors::{SafetensorsWriter, TensorSpec};
    let cfg = small_config(1, true);
    let mut m = build_qwen3(&cfg, zero_store(&cfg, WDType::F32, false), opts(4, 16)).unwrap();
    let recomputed_sin = m.weights.get("model.rope.sin").unwrap().to_f32();
    // A weight file holding every weight except the sine table, with a marked cosine table.
    let dir = tempfile::tempdir().unwrap();
    let names: Vec<(String, Vec<usize>)> = m
        .weights
        .iter()
        .filter(|(n, _)| n.as_str() != "model.rope.sin")
        .map(|(n, w)| (n.clone(), w.shape.clone()))
        .collect();
    let specs: Vec<TensorSpec> = names
        .iter()
        .map(|(n, s)| TensorSpec::new(n.clone(), DType::F32, s.clone()))
        .collect();
    let path = dir.path().join("w.safetensors");
    let mut w = SafetensorsWriter::create(&path, &specs, &Default::default()).unwrap();
    for (n, s) in &names {
        let fill = if n == "model.rope.cos" { 7.0f32 } else { 0.5 };
        let bytes: Vec<u8> = (0..s.iter().product::<usize>())
            .flat_map(|_| fill.to_le_bytes())
            .collect();
        w.write_tensor(n, &bytes).unwrap();
    }
    w.finish().unwrap();
    m.attrs
        .insert("weights".into(), mllm_ir::Attr::Str("w.safetensors".into()));
    let text = mllm_ir::print::print_module(&m);
    let mut back = mllm_ir::parse::parse_module(&text, "m.mlir").unwrap();
    mllm_frontends::qwen3::load_weights(&mut back, Some(dir.path())).unwrap();
    let cos = back.weights.get("model.rope.cos").unwrap().to_f32();
    assert!(cos.iter().all(|v| *v == 7.0), "the stored table is used");
    assert_eq!(
        back.weights.get("model.rope.sin").unwrap().to_f32(),
        recomputed_sin
    );
    let norm = back.weights.get("model.norm.weight").unwrap().to_f32();
    assert!(norm.iter().all(|v| *v == 0.5));

    // Without rope_theta, a missing table cannot be recomputed.
    back.attrs.remove("rope_theta");
    let err = mllm_frontends::qwen3::load_weights(&mut back, Some(dir.path()))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("model.rope.sin") && err.contains("rope_theta"),
        "{err}"
    );
}
