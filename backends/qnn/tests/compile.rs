//! Whole-module compilation (two graphs in one context), the written binary and its
//! manifest, reloading and executing the binary, and the error paths: missing library,
//! ops QNN rejects, unsupported ops, corrupt / truncated binaries, manifest mismatch.

mod common;

use common::*;
use mllm_backend_qnn::manifest::{manifest_path, ManifestEncoding};
use mllm_backend_qnn::{
    compile_module, verify_manifest, write_model, CompileError, CompileOptions, LowerError,
    ManifestError,
};
use mllm_ir::{
    attrs, Attr, Attrs, ElemType, Encoding, Expressed, Function, Module, OpKind, QuantType,
    Storage, WDType, Weight, WeightStore,
};
use mllm_qnn_sys::{Backend, Context, Device, DeviceTarget};
use mllm_runtime::cpu::{CpuProgram, NumericMode, Rounding, WeightCache};

const K: usize = 64;
const N: usize = 32;

fn lpbq_type(rng: &mut Rng) -> ElemType {
    let nb = K / 16;
    ElemType::Quant(QuantType {
        storage: Storage::I4,
        expressed: Expressed::F32,
        encoding: Encoding::Blockwise {
            axis: 0,
            block_size: 16,
            block_scale_bits: 4,
            block_scales: (0..N * nb)
                .map(|_| rng.int(1, 15) as u8)
                .collect::<Vec<u8>>()
                .into(),
            channel_scales: (0..N)
                .map(|_| rng.float(0.005, 0.015))
                .collect::<Vec<f32>>()
                .into(),
        },
    })
}

/// `y = conv2d(x, hwio(w))` with LPBQ `w` as function `model.0.s{m}`.
fn layer(m: usize, wty: &ElemType) -> Function {
    let mut f = Function::new(format!("model.0.s{m}"));
    let x = f.add_arg(t(&[1, 1, m, K], u16q(-2.0, 2.0)), Some("x"));
    let w = f.builder().weight("layers.0.w", t(&[N, K], wty.clone()));
    let wt = f.builder().transpose(w, &[1, 0]).unwrap();
    let hwio = f.builder().reshape(wt, &[1, 1, K, N]).unwrap();
    let mut b = f.builder();
    let id = b.op_typed(
        OpKind::Conv2d,
        &[x, hwio],
        Attrs::new(),
        &[t(&[1, 1, m, N], u16q(-16.0, 16.0))],
    );
    b.func.op_mut(id).name = Some("layers.0.proj".into());
    let y = b.func.op(id).results[0];
    ret(&mut f, &[y], &["y"]);
    f
}

fn module() -> Module {
    let mut rng = Rng::new(5);
    let wty = lpbq_type(&mut rng);
    let mut m = Module::new();
    let bytes: Vec<u8> = (0..N * K).map(|_| rng.int(-8, 7) as i8 as u8).collect();
    m.weights.insert(
        "layers.0.w",
        Weight::owned(WDType::I8, vec![N, K], bytes).unwrap(),
    );
    m.functions.push(layer(4, &wty));
    m.functions.push(layer(1, &wty));
    m
}

/// Options for binaries executed in the emulator: no weight sharing (the emulator
/// refuses weight-shared binaries).
fn opts() -> CompileOptions {
    CompileOptions {
        soc: Some(SOC),
        weight_sharing: false,
        ..CompileOptions::default()
    }
}

#[test]
fn two_graphs_one_context_written_reloaded_and_executed() {
    let _g = serial();
    let Some(lib) = library() else { return };
    let m = module();
    let compiled = compile_module(&m, &opts()).expect("compile");
    for s in &compiled.stats {
        println!(
            "{}: {} nodes, {} static tensors ({} bytes), lower {:.3} s, finalize {:.3} s",
            s.name, s.nodes, s.static_tensors, s.static_bytes, s.lower_secs, s.finalize_secs
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.bin");
    write_model(&path, &compiled).unwrap();
    let man = verify_manifest(&path).expect("manifest verifies");
    assert_eq!(man.binary, "model.bin");
    assert_eq!(man.target.soc_model, Some(SOC));
    assert_eq!(man.target.soc_name.as_deref(), Some("SM8650"));
    assert_eq!(man.binary_size, std::fs::metadata(&path).unwrap().len());
    let names: Vec<&str> = man.graphs.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(names, ["model.0.s4", "model.0.s1"]);
    assert_eq!(man.graphs[0].ar_len, Some(4));
    assert_eq!(man.graphs[1].ar_len, Some(1));
    let x = &man.graphs[0].inputs[0];
    assert_eq!(
        (x.name.as_str(), x.shape.as_slice(), x.dtype.as_str()),
        ("x", &[1u32, 1, 4, K as u32][..], "ufixed16")
    );
    assert!(matches!(
        x.encoding,
        ManifestEncoding::PerTensor { offset: -32768, .. }
    ));
    assert_eq!(man.graphs[1].outputs[0].name, "y");
    assert_eq!(man.qnn.core_api[0], 2);

    // Reload in a fresh context and execute both graphs against the CPU reference.
    let bytes = std::fs::read(&path).unwrap();
    let backend = Backend::new(&lib).unwrap();
    let device = Device::new(&backend, DeviceTarget::soc(SOC)).unwrap();
    let ctx = Context::from_binary(&backend, &device, &bytes).unwrap();
    drop(bytes);
    let mut cache = WeightCache::new();
    for (gi, f) in m.functions.iter().enumerate() {
        let mut graph = ctx.retrieve_graph(&f.name).unwrap();
        let mut rng = Rng::new(100 + gi as u64);
        let input = random_bytes(f.ty(f.args()[0]), &mut rng, 0);
        let out_ty = f.ty(f.returned()[0]).clone();
        let mut q = vec![0u8; out_ty.byte_size()];
        graph.execute_ordered(&[&input], &mut [&mut q]).unwrap();
        let mut prog = CpuProgram::compile(
            f,
            &m.weights,
            NumericMode::Fixed(Rounding::HalfAwayFromZero),
            &mut cache,
        )
        .unwrap();
        let mut c = vec![0u8; out_ty.byte_size()];
        prog.run_bytes(&[&input], &mut [&mut c], None).unwrap();
        let (a, b) = (decode(&out_ty, &q), decode(&out_ty, &c));
        let err = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f64::max);
        println!("{} reloaded: max err {err} LSB", f.name);
        assert!(err <= 1.0, "{}: {err} LSB", f.name);
    }

    // Manifest checks: flipped byte -> hash mismatch; truncated -> size mismatch.
    let mut corrupt = std::fs::read(&path).unwrap();
    let mid = corrupt.len() / 2;
    corrupt[mid] ^= 0x40;
    std::fs::write(&path, &corrupt).unwrap();
    let e = verify_manifest(&path).unwrap_err();
    assert!(matches!(e, ManifestError::Hash { .. }), "{e}");
    assert!(e.to_string().contains("SHA-256 mismatch"), "{e}");
    std::fs::write(&path, &corrupt[..mid]).unwrap();
    let e = verify_manifest(&path).unwrap_err();
    assert!(matches!(e, ManifestError::Size { .. }), "{e}");

    // A truncated binary is rejected by QNN (not only by our manifest).
    let e = Context::from_binary(&backend, &device, &corrupt[..mid]).unwrap_err();
    println!("truncated binary: {e}");
    let e = Context::from_binary(&backend, &device, &corrupt[..100]).unwrap_err();
    println!("100-byte binary: {e}");

    // A missing manifest is an I/O error naming the file.
    std::fs::remove_file(manifest_path(&path)).unwrap();
    let e = verify_manifest(&path).unwrap_err();
    assert!(e.to_string().contains("model.bin.json"), "{e}");
}

/// Weight sharing is the default: the x86 library creates a weight-shared binary (smaller:
/// the weight is stored once for both graphs), the manifest records it, and the emulator
/// refuses to load it with a clear error (hence `--no-weight-sharing` for emulator runs).
#[test]
fn weight_sharing_by_default_creates_a_binary_the_emulator_refuses() {
    let _g = serial();
    let Some(lib) = library() else { return };
    assert!(CompileOptions::default().weight_sharing);
    let m = module();
    let shared = compile_module(
        &m,
        &CompileOptions {
            soc: Some(SOC),
            ..CompileOptions::default()
        },
    )
    .expect("a weight-shared binary compiles on x86");
    let plain = compile_module(&m, &opts()).expect("compile");
    assert!(shared.manifest.weight_sharing && !plain.manifest.weight_sharing);
    assert!(
        shared.binary.len() < plain.binary.len(),
        "the shared weight is stored once: {} vs {} bytes",
        shared.binary.len(),
        plain.binary.len()
    );
    println!(
        "binary with weight sharing {} bytes, without {} bytes",
        shared.binary.len(),
        plain.binary.len()
    );
    let backend = Backend::new(&lib).unwrap();
    let device = Device::new(&backend, DeviceTarget::soc(SOC)).unwrap();
    match Context::from_binary(&backend, &device, &shared.binary) {
        Err(e) => println!("emulator on a weight-shared binary: {e}"),
        Ok(ctx) => {
            // Should the library ever accept it, the graphs must still be there.
            ctx.retrieve_graph("model.0.s1")
                .expect("a loadable weight-shared binary holds its graphs");
            println!("note: this library loaded a weight-shared binary");
        }
    }
}

#[test]
fn missing_library_dir_is_a_clear_error() {
    let m = module();
    let o = CompileOptions {
        lib_dir: Some("/nonexistent/qnn-libs".into()),
        ..opts()
    };
    let e = compile_module(&m, &o).unwrap_err();
    assert!(matches!(e, CompileError::Setup(_)), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("/nonexistent/qnn-libs") && msg.contains("setup-qnn.sh"),
        "{msg}"
    );
}

fn compile_err(f: Function, store: WeightStore) -> CompileError {
    let mut m = Module::new();
    m.weights = store;
    m.functions.push(f);
    compile_module(&m, &opts()).unwrap_err()
}

#[test]
fn op_rejected_by_qnn_names_the_ir_op() {
    let _g = serial();
    if library().is_none() {
        return;
    }
    // HTP MatMul wants a symmetric u16 second input (offset -32768).
    let mut f = Function::new("g");
    let a = f.add_arg(t(&[1, 4, 8], u16q(0.0, 1.0)), Some("a"));
    let b = f.add_arg(t(&[1, 8, 4], u16q(0.0, 4.0)), Some("b"));
    let mut bl = f.builder();
    let id = bl.op_typed(
        OpKind::MatMul,
        &[a, b],
        Attrs::new(),
        &[t(&[1, 4, 4], u16q(0.0, 32.0))],
    );
    bl.func.op_mut(id).name = Some("layers.3.attn.pv".into());
    let y = bl.func.op(id).results[0];
    ret(&mut f, &[y], &["y"]);
    let e = compile_err(f, WeightStore::new());
    let msg = e.to_string();
    println!("{msg}");
    assert!(
        matches!(e, CompileError::Lower(LowerError::Qnn { .. })),
        "{msg}"
    );
    assert!(
        msg.contains("layers.3.attn.pv") && msg.contains("nn.matmul") && msg.contains("MatMul"),
        "{msg}"
    );
}

#[test]
fn unsupported_ops_are_reported_with_the_fix() {
    let _g = serial();
    if library().is_none() {
        return;
    }
    // LPBQ nn.linear -> run linear-to-conv2d.
    let mut rng = Rng::new(9);
    let mut store = WeightStore::new();
    store.insert(
        "w",
        Weight::owned(WDType::I8, vec![N, K], vec![0u8; N * K]).unwrap(),
    );
    let mut f = Function::new("g");
    let x = f.add_arg(t(&[4, K], u16q(-1.0, 1.0)), Some("x"));
    let w = f.builder().weight("w", t(&[N, K], lpbq_type(&mut rng)));
    let y = op(
        &mut f,
        OpKind::Linear,
        &[x, w],
        Attrs::new(),
        t(&[4, N], u16q(-1.0, 1.0)),
    );
    ret(&mut f, &[y], &["y"]);
    let msg = compile_err(f, store).to_string();
    assert!(
        msg.contains("linear-to-conv2d") && msg.contains("nn.linear"),
        "{msg}"
    );

    // Quantized silu -> run decompose.
    let mut f = Function::new("g");
    let x = f.add_arg(t(&[4, 8], u16q(-4.0, 4.0)), Some("x"));
    let y = op(
        &mut f,
        OpKind::Silu,
        &[x],
        Attrs::new(),
        t(&[4, 8], u16q(-1.0, 4.0)),
    );
    ret(&mut f, &[y], &["y"]);
    let msg = compile_err(f, WeightStore::new()).to_string();
    assert!(
        msg.contains("decompose") && msg.contains("nn.silu"),
        "{msg}"
    );

    // RoPE -> run decompose.
    let mut f = Function::new("g");
    let x = f.add_arg(t(&[1, 4, 8], ElemType::F32), Some("x"));
    let c = f.add_arg(t(&[4, 8], ElemType::F32), Some("cos"));
    let s = f.add_arg(t(&[4, 8], ElemType::F32), Some("sin"));
    let y = op(
        &mut f,
        OpKind::Rope,
        &[x, c, s],
        Attrs::new(),
        t(&[1, 4, 8], ElemType::F32),
    );
    ret(&mut f, &[y], &["y"]);
    let msg = compile_err(f, WeightStore::new()).to_string();
    assert!(
        msg.contains("decompose") && msg.contains("nn.rope"),
        "{msg}"
    );

    // A weight missing from the store names the weight.
    let mut f = Function::new("g");
    let x = f.add_arg(t(&[1, 8], ElemType::F32), Some("x"));
    let w = f
        .builder()
        .weight("model.norm.weight", t(&[8], ElemType::F32));
    let y = op(
        &mut f,
        OpKind::RmsNorm,
        &[x, w],
        attrs([("epsilon", Attr::Float(1e-6))]),
        t(&[1, 8], ElemType::F32),
    );
    ret(&mut f, &[y], &["y"]);
    let msg = compile_err(f, WeightStore::new()).to_string();
    assert!(
        msg.contains("model.norm.weight") && msg.contains("weight store"),
        "{msg}"
    );

    // An i4 weight holding a value outside -8..=7.
    let mut store = WeightStore::new();
    store.insert(
        "w",
        Weight::owned(WDType::I8, vec![N, K], vec![9u8; N * K]).unwrap(),
    );
    let f = {
        let mut rng = Rng::new(9);
        let wty = lpbq_type(&mut rng);
        layer(1, &wty)
    };
    let mut f = f;
    // Rename the weight the layer refers to.
    for op in f.op_ids() {
        if f.op(op).kind == OpKind::Weight {
            f.set_attr(op, "name", Attr::Str("w".into()));
        }
    }
    let msg = compile_err(f, store).to_string();
    assert!(msg.contains("i4 range"), "{msg}");
}
