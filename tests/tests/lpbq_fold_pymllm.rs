//! `lpbq-fold` on what a real import produces: the tiny synthetic Qwen3 (2 layers, tied
//! 151936 x 64 lm_head) with every linear weight LPBQ-quantized into a pymllm-layout export
//! (int8 HWIO `[1,1,In,Out]` nibbles, u8 `scale1`, f32 `scale2`), imported as dequantization
//! chains by `mllm_frontends::pymllm::emit_lpbq_chains`. The pass must fold every chain
//! exactly (one LPBQ weight per linear, the export's block and channel scales in the
//! linear's layout, no new payload) and the CPU reference must give bit-identical outputs
//! before and after (float mode).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use mllm_frontends::pymllm::emit_lpbq_chains;
use mllm_frontends::qwen3::{self, BuildOptions};
use mllm_frontends::synth::{self, Preset};
use mllm_frontends::{Checkpoint, DType, Qwen3Config, SafetensorsWriter, TensorSpec};
use mllm_ir::types::{ElemType, Encoding};
use mllm_ir::{AttrsExt, Module, OpKind};
use mllm_passes::quant::lpbq::{quantize_lpbq, Lpbq, Rounding};
use mllm_passes::{PassManager, Registry};
use mllm_runtime::cpu::{CpuExecutor, NumericMode, TensorRef};

const BLOCK: usize = 16;

fn tiny() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mllm-lpbq-fold-tiny-{}", std::process::id()));
    if !dir.join("model.safetensors").exists() {
        synth::generate(Preset::Tiny, 5, DType::F32, &dir, &mut |_| {}).expect("synth tiny");
    }
    dir
}

/// The weight names the linears of `m` read.
fn linear_weights(m: &Module) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for f in &m.functions {
        for op in f.op_ids() {
            let o = f.op(op);
            if o.kind != OpKind::Linear {
                continue;
            }
            let Some(d) = f.def_op(o.operands[1]) else {
                continue;
            };
            if let Some(n) = f.op(d).attrs.str("name") {
                if !out.iter().any(|x| x == n) {
                    out.push(n.to_owned());
                }
            }
        }
    }
    out
}

fn export_name(weight: &str) -> String {
    if weight == "model.embed_tokens.weight" || weight == "lm_head.weight" {
        "lm_head".into()
    } else {
        weight.trim_end_matches(".weight").to_owned()
    }
}

/// Writes the pymllm LPBQ tensors of every linear weight of `m`; returns the quantized
/// weights by export name.
fn write_export(m: &Module, path: &std::path::Path, corrupt: bool) -> BTreeMap<String, Lpbq> {
    let mut quantized = BTreeMap::new();
    for w in linear_weights(m) {
        let t = m.weights.get(&w).expect("float weight");
        let (n, k) = (t.shape[0], t.shape[1]);
        let l = quantize_lpbq(&t.to_f32(), n, k, BLOCK, 4, Rounding::Best).expect("lpbq");
        quantized.insert(export_name(&w), l);
    }
    let mut specs = Vec::new();
    for (lin, l) in &quantized {
        specs.push(TensorSpec::new(
            format!("{lin}.weight"),
            DType::I8,
            vec![1, 1, l.k, l.n],
        ));
        specs.push(TensorSpec::new(
            format!("{lin}.scale1"),
            DType::U8,
            vec![l.block_scales.len()],
        ));
        specs.push(TensorSpec::new(
            format!("{lin}.scale2"),
            DType::F32,
            vec![l.n],
        ));
    }
    let mut wr = SafetensorsWriter::create(path, &specs, &BTreeMap::new()).expect("writer");
    for (lin, l) in &quantized {
        // HWIO, int4 values masked to the low nibble.
        let mut hwio = vec![0u8; l.n * l.k];
        for o in 0..l.n {
            for i in 0..l.k {
                hwio[i * l.n + o] = (l.q[o * l.k + i] as u8) & 0x0F;
            }
        }
        if corrupt && lin == "lm_head" {
            hwio[7] = 0x80;
        }
        wr.write_tensor(&format!("{lin}.weight"), &hwio)
            .expect("codes");
        wr.write_tensor(&format!("{lin}.scale1"), &l.block_scales)
            .expect("scale1");
        let s2: Vec<u8> = l
            .channel_scales
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        wr.write_tensor(&format!("{lin}.scale2"), &s2)
            .expect("scale2");
    }
    wr.finish().expect("finish");
    quantized
}

fn run(m: &Module) -> Vec<Vec<f32>> {
    let mut ex = CpuExecutor::new(m, NumericMode::Float).expect("executor");
    let f = &m.functions[0];
    let mut seed = 0x2545F4914F6CDD1Du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let ins: Vec<(Vec<f32>, Vec<i32>)> = f
        .args()
        .iter()
        .map(|a| {
            let t = f.ty(*a);
            match t.elem() {
                ElemType::I32 | ElemType::I64 => (
                    vec![],
                    (0..t.numel()).map(|_| (next() % 3) as i32).collect(),
                ),
                _ => (
                    (0..t.numel())
                        .map(|_| (next() >> 40) as f32 / (1u64 << 24) as f32 - 0.5)
                        .collect(),
                    vec![],
                ),
            }
        })
        .collect();
    let refs: Vec<TensorRef<'_>> = f
        .args()
        .iter()
        .zip(&ins)
        .map(|(a, (fv, iv))| match f.ty(*a).elem() {
            ElemType::I32 | ElemType::I64 => TensorRef::I32(iv),
            _ => TensorRef::F32(fv),
        })
        .collect();
    ex.run_f32(0, &refs).expect("runs")
}

fn build_tiny() -> (PathBuf, Module) {
    let dir = tiny();
    let cfg = Qwen3Config::from_file(dir.join("config.json")).expect("config");
    let ckpt = Arc::new(Checkpoint::open(&dir).expect("checkpoint"));
    let store = qwen3::import_weights(&cfg, &ckpt).expect("weights");
    let m = qwen3::build_qwen3(
        &cfg,
        store,
        BuildOptions {
            ar_len: 4,
            context_len: 16,
            num_shards: 1,
        },
    )
    .expect("build");
    (dir, m)
}

#[test]
fn bad_codes_are_an_error_naming_the_tensor() {
    let (dir, mut m) = build_tiny();
    let export = dir.join("pymllm-export-bad.safetensors");
    write_export(&m, &export, true);
    let exp = Arc::new(Checkpoint::open(&export).expect("export"));
    let e = emit_lpbq_chains(&mut m, &exp).expect_err("non-nibble code");
    let msg = e.to_string();
    assert!(
        msg.contains("lm_head.weight")
            && msg.contains("nibble")
            && msg.contains("pymllm-export-bad"),
        "{msg}"
    );
}

#[test]
fn pymllm_chains_fold_exactly_into_one_lpbq_weight_per_linear() {
    let (dir, mut m) = build_tiny();
    let linears = linear_weights(&m);
    assert_eq!(
        linears.len(),
        2 * 7 + 1,
        "q/k/v/o/gate/up/down x 2 + lm_head"
    );
    let export = dir.join("pymllm-export.safetensors");
    let quantized = write_export(&m, &export, false);
    let exp = Arc::new(Checkpoint::open(&export).expect("export"));
    let n_linear_ops: usize = m
        .functions
        .iter()
        .map(|f| {
            f.op_ids()
                .iter()
                .filter(|o| f.op(**o).kind == OpKind::Linear)
                .count()
        })
        .sum();
    let built = emit_lpbq_chains(&mut m, &exp).expect("chains");
    assert_eq!(built, n_linear_ops, "one chain per linear");
    mllm_ir::verify::verify_module(&m).expect("chain module verifies");
    let before = run(&m);
    let payloads = m.weights.len();

    let mut folded = m.clone();
    let registry = Registry::with_all();
    let mut pm =
        PassManager::parse("builtin.module(func.func(lpbq-fold))", &registry).expect("pipeline");
    let t = std::time::Instant::now();
    pm.run(&mut folded, &mut []).expect("lpbq-fold runs");
    let params: usize = quantized.values().map(|l| l.n * l.k).sum();
    eprintln!(
        "lpbq-fold: {} functions, {params} LPBQ parameters per function, {:.3} s",
        folded.functions.len(),
        t.elapsed().as_secs_f64()
    );
    assert_eq!(folded.weights.len(), payloads, "exact folds add no payload");

    // Every linear reads dequantize(transpose(reshape(weight : lpbq))) whose type in the
    // linear's layout carries the export's scales.
    let f = &folded.functions[0];
    let mut seen = 0;
    for op in f.op_ids() {
        let o = f.op(op);
        if o.kind != OpKind::Linear {
            continue;
        }
        let d = f.def_op(o.operands[1]).expect("defined");
        assert_eq!(
            f.op(d).kind,
            OpKind::Dequantize,
            "linear reads a dequantize"
        );
        let lty = f.ty(f.op(d).operands[0]).clone();
        let mut v = f.op(d).operands[0];
        let name = loop {
            let w = f.def_op(v).expect("defined");
            match f.op(w).kind {
                OpKind::Weight => break f.op(w).attrs.str("name").expect("name").to_owned(),
                OpKind::Reshape | OpKind::Transpose => v = f.op(w).operands[0],
                k => panic!("unexpected {k:?} between the weight and the linear"),
            }
        };
        let lin = name
            .strip_suffix(".weight.q")
            .expect("the codes' payload is reused");
        // i4 values as QNN takes them (not pymllm's nibbles).
        let codes = folded.weights.get(&name).expect("payload").to_f32();
        assert!(codes.iter().all(|c| (-8.0..=7.0).contains(c)), "{name}");
        let l = &quantized[lin];
        match &lty.quant().expect("quantized").encoding {
            Encoding::Blockwise {
                axis,
                block_size,
                block_scale_bits,
                block_scales,
                channel_scales,
            } => {
                assert_eq!(
                    (*axis, *block_size as usize, *block_scale_bits),
                    (0, BLOCK, 4)
                );
                assert_eq!(&block_scales[..], &l.block_scales[..], "{lin}");
                assert_eq!(&channel_scales[..], &l.channel_scales[..], "{lin}");
            }
            e => panic!("{lin}: {e:?}"),
        }
        seen += 1;
    }
    assert_eq!(seen, 15);
    let after = run(&folded);
    assert_eq!(before.len(), after.len());
    for (i, (a, b)) in before.iter().zip(&after).enumerate() {
        assert_eq!(a.len(), b.len());
        let diff = a
            .iter()
            .zip(b)
            .filter(|(x, y)| x.to_bits() != y.to_bits())
            .count();
        assert_eq!(diff, 0, "output {i}: {diff} values differ after lpbq-fold");
    }
}
