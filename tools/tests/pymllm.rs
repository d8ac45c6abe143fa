//! Round trip through the pymllm export: a tiny synthetic model quantized by `mllm quantize`
//! (which also writes the pymllm-named `model.safetensors`), imported back with
//! `import_pymllm`, gives the identical IR (`module_eq`) and identical bytes for every weight
//! the graphs read; re-exporting the import reproduces the export byte for byte; and
//! `mllm-translate --from-safetensors` on the export takes the import path.

use std::path::{Path, PathBuf};

#[path = "../../frontends/tests/pymllm_common/mod.rs"]
mod pymllm_common;

use mllm_frontends::qwen3::BuildOptions;
use mllm_frontends::synth::{generate, Preset};
use mllm_frontends::{Checkpoint, DType, Qwen3Config};
use mllm_ir::{AttrsExt, Module, OpKind};
use mllm_tools::pymllm::{export_pymllm, import_pymllm};
use mllm_tools::quantize::{run, QuantizeArgs};

fn tokenizer() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/assets/qwen3/tokenizer.json");
    let alt = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/assets/qwen3/tokenizer.json");
    [p, alt].into_iter().find(|p| p.exists())
}

/// A fresh scratch directory (removed by the guard on drop).
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let p = std::env::temp_dir().join(format!("mllm-pymllm-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Scratch(p)
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn weight_names(m: &Module) -> Vec<String> {
    let mut v: Vec<String> = m
        .functions
        .iter()
        .flat_map(|f| {
            f.op_ids()
                .into_iter()
                .filter(|o| f.op(*o).kind == OpKind::Weight)
                .map(|o| f.op(o).attrs.str("name").unwrap_or_default().to_owned())
                .collect::<Vec<_>>()
        })
        .collect();
    v.sort();
    v.dedup();
    v
}

#[test]
fn quantize_export_import_gives_identical_ir_and_weights() {
    let Some(tok) = tokenizer() else {
        eprintln!("note: shared/assets/qwen3/tokenizer.json not found; skipping");
        return;
    };
    let dir = Scratch::new("roundtrip");
    let ckpt = dir.path().join("ckpt");
    generate(Preset::Tiny, 7, DType::BF16, &ckpt, &mut |_| {}).unwrap();
    let out = dir.path().join("q");
    let (ar_len, context_len) = (4, 16);
    run(&QuantizeArgs {
        checkpoint: ckpt.clone(),
        calib: None,
        num_samples: 2,
        max_length: 16,
        block_size: 16,
        aot_config: None,
        config: None,
        tokenizer: Some(tok),
        ar_len,
        context_len,
        output: out.clone(),
        quiet: true,
        report: Default::default(),
    })
    .unwrap();
    let export = out.join("model.safetensors");
    assert!(export.exists(), "mllm quantize writes the pymllm export");

    // Ours: the IR text and the .mllm weights written by the quantizer.
    let text = std::fs::read_to_string(out.join("model.mlir")).unwrap();
    let ours = mllm_ir::parse::parse_module(&text, "model.mlir").unwrap();
    let ours_w = Checkpoint::open(out.join("model.mllm")).unwrap();

    // Imported from the pymllm export.
    let cfg = Qwen3Config::from_file(ckpt.join("config.json")).unwrap();
    let opts = BuildOptions {
        ar_len,
        context_len,
        num_shards: 1,
    };
    let mut imported = import_pymllm(&export, &cfg, opts).unwrap();
    // The quantizer's output records where its config and weights files are; the import
    // knows neither. Everything else must already agree.
    for (k, v) in imported.attrs.iter() {
        assert_eq!(ours.attrs.get(k), Some(v), "module attribute {k}");
    }
    for k in ["config", "weights"] {
        if let Some(v) = ours.attrs.get(k) {
            imported.attrs.insert(k.into(), v.clone());
        }
    }
    mllm_ir::equiv::module_eq(&ours, &imported).unwrap();

    let names = weight_names(&ours);
    assert_eq!(names, weight_names(&imported));
    assert!(names.iter().any(|n| n.ends_with(".lpbq")));
    for n in &names {
        let a = ours_w.tensor(n).unwrap();
        let b = imported.weights.get(n).unwrap();
        assert_eq!(a.shape, b.shape.as_slice(), "shape of {n}");
        assert!(a.bytes == &b.bytes()[..], "bytes of {n} differ");
    }

    // Export of the import == the export.
    let again = dir.path().join("again.safetensors");
    export_pymllm(&imported, &again).unwrap();
    assert!(
        std::fs::read(&export).unwrap() == std::fs::read(&again).unwrap(),
        "re-exported file differs"
    );

    // mllm-translate --from-safetensors detects the export and writes IR + .mllm weights.
    let ir_out = dir.path().join("t.mlir");
    let args = mllm_tools::translate::TranslateArgs {
        from_safetensors: Some(export.clone()),
        from_mllm: None,
        config: Some(ckpt.join("config.json")),
        ar_len,
        context_len,
        shards: 1,
        output: ir_out.clone(),
        to_qnn: false,
        quiet: true,
    };
    let s = mllm_tools::translate::run(&args).unwrap();
    assert!(s.weights_path.ends_with("t.mllm"));
    let t =
        mllm_ir::parse::parse_module(&std::fs::read_to_string(&ir_out).unwrap(), "t.mlir").unwrap();
    let mut t2 = t.clone();
    for k in ["config", "weights"] {
        if let Some(v) = ours.attrs.get(k) {
            t2.attrs.insert(k.into(), v.clone());
        }
    }
    mllm_ir::equiv::module_eq(&ours, &t2).unwrap();
}

#[test]
fn import_refuses_an_export_missing_a_weight() {
    let dir = Scratch::new("missing");
    let p = dir.path().join("empty.safetensors");
    let spec = vec![mllm_frontends::TensorSpec::new(
        "lm_head.scale1",
        DType::U8,
        vec![1],
    )];
    let mut w = mllm_frontends::SafetensorsWriter::create(&p, &spec, &Default::default()).unwrap();
    w.write_tensor("lm_head.scale1", &[1]).unwrap();
    w.finish().unwrap();
    let cfg = Preset::Tiny.config();
    let e = import_pymllm(&p, &cfg, BuildOptions::default()).unwrap_err();
    let msg = format!("{e:#}");
    assert!(
        msg.contains("empty.safetensors") && msg.contains("missing tensor"),
        "{msg}"
    );
}

#[test]
fn hand_built_mllm_named_export_imports_to_a_quantized_module() {
    let dir = Scratch::new("handbuilt");
    let p = dir.path().join("model.safetensors");
    let ts = pymllm_common::export_tensors(64);
    pymllm_common::write(&p, &ts);
    let cfg = pymllm_common::config();
    let opts = BuildOptions {
        ar_len: 4,
        context_len: 32,
        num_shards: 1,
    };
    let m = import_pymllm(&p, &cfg, opts).unwrap();
    assert_eq!(m.functions.len(), 2);
    let zp = |name: &str| {
        let t = ts.iter().find(|t| t.name == name).unwrap();
        i32::from_le_bytes(t.bytes[..4].try_into().unwrap())
    };
    let f = &m.functions[0];
    let mut seen = 0;
    for op in f.op_ids() {
        let o = f.op(op);
        let Some(res) = o.results.first() else {
            continue;
        };
        let elem = f.ty(*res).elem().clone();
        let enc = match &elem {
            mllm_ir::ElemType::Quant(q) => q.encoding.per_tensor(),
            _ => None,
        };
        match o.name.as_deref() {
            // pymllm: the softmax output QDQ; the attention residual's; the rotate-half
            // concat takes the neg-half QDQ (no extension tensor in a real export).
            Some("model.layers.1.self_attn.softmax") => {
                assert_eq!(
                    enc.unwrap().1,
                    -zp("model.layers.1.self_attn.softmax_output_qdq.fake_quant.zero_point")
                );
                seen += 1;
            }
            Some("model.layers.0.attn_residual") => {
                assert_eq!(
                    enc.unwrap().1,
                    -zp("model.layers.0.add_0_output_qdq.fake_quant.zero_point")
                );
                seen += 1;
            }
            Some("model.layers.0.self_attn.rope_q.rotate_half") => {
                assert_eq!(
                    enc.unwrap().1,
                    -zp("model.layers.0.self_attn.q_rope_neg_half_qdq.fake_quant.zero_point")
                );
                seen += 1;
            }
            Some("model.layers.1.self_attn.k_cache_requantize") => {
                assert_eq!(enc, Some((0.02, -128)));
                seen += 1;
            }
            Some("model.layers.0.mlp.act.sigmoid") => {
                assert_eq!(enc, Some((1.0 / 65536.0, 0)));
                seen += 1;
            }
            _ => {}
        }
    }
    assert_eq!(seen, 5, "every checked op is in the prefill graph");
    // The hand-built block scales reach 16 (mllm's clamp): carried as 5-bit block scales.
    let lin = f
        .op_ids()
        .into_iter()
        .find(|o| f.op(*o).name.as_deref() == Some("lm_head"))
        .unwrap();
    let wty = f.ty(f.op(lin).operands[1]).elem().clone();
    match wty {
        mllm_ir::ElemType::Quant(q) => match q.encoding {
            mllm_ir::Encoding::Blockwise {
                block_scale_bits, ..
            } => assert_eq!(block_scale_bits, 5),
            e => panic!("lm_head weight encoding {e:?}"),
        },
        e => panic!("lm_head weight type {e:?}"),
    }
}
