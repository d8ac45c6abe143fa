//! Numerical equivalence of every rewrite: each chunk of the pass lit files (those
//! with a `// pipeline:` that succeeds) runs on the CPU reference executor before and
//! after its pipeline, on random inputs and random weights; outputs must agree within
//! 1e-5 relative (float mode) and, for quantized graphs, bit for bit in fixed-point
//! mode — except `quant-fix`, which changes encodings on purpose (within 1 LSB).

use std::path::Path;

use mllm_ir::parse::parse_module_at;
use mllm_ir::types::{ElemType, Storage};
use mllm_ir::{AttrsExt, Module, OpKind, WDType, Weight};
use mllm_passes::driver::split_input;
use mllm_passes::{PassManager, Registry};
use mllm_runtime::cpu::{CpuExecutor, NumericMode, TensorRef};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn fill_weights(m: &mut Module, rng: &mut Rng) {
    for f in m.functions.clone() {
        for op in f.op_ids() {
            let o = f.op(op);
            if o.kind != OpKind::Weight {
                continue;
            }
            let name = o.attrs.str("name").unwrap_or_default().to_owned();
            if m.weights.contains(&name) {
                continue;
            }
            let ty = f.ty(o.results[0]);
            let n = ty.numel();
            let (dt, bytes) = match ty.elem() {
                ElemType::Quant(q) => match q.storage {
                    Storage::I4 => (
                        WDType::I8,
                        (0..n).map(|_| (rng.below(16) as i8 - 8) as u8).collect(),
                    ),
                    Storage::I8 => (WDType::I8, (0..n).map(|_| rng.next() as u8).collect()),
                    Storage::U8 => (WDType::U8, (0..n).map(|_| rng.next() as u8).collect()),
                    Storage::U16 => (
                        WDType::U16,
                        (0..n)
                            .flat_map(|_| (rng.next() as u16).to_le_bytes())
                            .collect(),
                    ),
                    _ => continue,
                },
                _ => (
                    WDType::F32,
                    (0..n)
                        .flat_map(|_| rng.unit().to_le_bytes())
                        .collect::<Vec<u8>>(),
                ),
            };
            let w = Weight::owned(dt, ty.shape().to_vec(), bytes).expect("sized weight");
            m.weights.insert(name, w);
        }
    }
}

enum Input {
    F(Vec<f32>),
    I(Vec<i32>),
}

fn inputs_for(m: &Module, rng: &mut Rng) -> Vec<Vec<Input>> {
    m.functions
        .iter()
        .map(|f| {
            f.args()
                .iter()
                .map(|a| {
                    let t = f.ty(*a);
                    match t.elem() {
                        ElemType::I32 | ElemType::I64 => {
                            Input::I((0..t.numel()).map(|_| rng.below(2) as i32).collect())
                        }
                        _ => Input::F((0..t.numel()).map(|_| rng.unit()).collect()),
                    }
                })
                .collect()
        })
        .collect()
}

fn run(m: &Module, mode: NumericMode, ins: &[Vec<Input>]) -> Result<Vec<Vec<Vec<f32>>>, String> {
    let mut ex = CpuExecutor::new(m, mode).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for (g, args) in ins.iter().enumerate() {
        let refs: Vec<TensorRef<'_>> = args
            .iter()
            .map(|i| match i {
                Input::F(v) => TensorRef::F32(v),
                Input::I(v) => TensorRef::I32(v),
            })
            .collect();
        out.push(ex.run_f32(g, &refs).map_err(|e| e.to_string())?);
    }
    Ok(out)
}

fn max_rel(a: &[f32], b: &[f32]) -> f32 {
    let scale = a.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs() / scale)
        .fold(0.0, f32::max)
}

#[test]
fn every_pass_preserves_values() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("lit");
    let registry = Registry::with_all();
    let mut checked = 0;
    let mut failures = Vec::new();
    let mut dirs: Vec<_> = std::fs::read_dir(&root)
        .expect("lit dir")
        .flatten()
        .map(|e| e.path())
        .collect();
    dirs.sort();
    for dir in dirs {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut files: Vec<_> = rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "mlir"))
            .collect();
        files.sort();
        for path in files {
            let text = std::fs::read_to_string(&path).expect("readable");
            let header = mllm_tests::parse_header(&text).expect("header");
            let Some(pipeline) = header.config.pipeline.clone() else {
                continue;
            };
            if header.expect_error {
                continue;
            }
            for (ci, (chunk, off)) in split_input(&text).into_iter().enumerate() {
                let Ok(before) = parse_module_at(&chunk, "x", off) else {
                    continue;
                };
                if mllm_ir::verify::verify_module(&before).is_err() {
                    continue;
                }
                let mut rng = Rng(0x9E3779B97F4A7C15 ^ (ci as u64 + 1));
                let mut before = before;
                fill_weights(&mut before, &mut rng);
                let mut after = before.clone();
                let Ok(mut pm) = PassManager::parse(&pipeline, &registry) else {
                    continue;
                };
                if pm.run(&mut after, &mut []).is_err() {
                    continue;
                }
                // The pass may add weights (slices are ops, not store entries); fill any new.
                fill_weights(&mut after, &mut rng);
                let ins = inputs_for(&before, &mut rng);
                let quantized = before.functions.iter().any(|f| {
                    f.op_ids()
                        .iter()
                        .any(|o| f.op(*o).results.iter().any(|r| f.ty(*r).quant().is_some()))
                });
                let label = format!(
                    "{}#{}",
                    path.strip_prefix(&root).unwrap_or(&path).display(),
                    ci + 1
                );
                let modes: &[NumericMode] = if quantized {
                    &[NumericMode::Float, NumericMode::Fixed(Default::default())]
                } else {
                    &[NumericMode::Float]
                };
                for mode in modes {
                    let a = match run(&before, *mode, &ins) {
                        Ok(a) => a,
                        Err(e) => {
                            // Inputs the executor cannot take (e.g. per-axis quantized graph inputs).
                            eprintln!("skipping {label}: {e}");
                            continue;
                        }
                    };
                    let b = match run(&after, *mode, &ins) {
                        Ok(b) => b,
                        Err(e) => {
                            failures.push(format!(
                                "{label} ({mode:?}): the rewritten module does not run: {e}"
                            ));
                            continue;
                        }
                    };
                    for (g, (ga, gb)) in a.iter().zip(&b).enumerate() {
                        for (o, (x, y)) in ga.iter().zip(gb).enumerate() {
                            let tol = if *mode == NumericMode::Float {
                                1e-5
                            } else {
                                0.0
                            };
                            let e = max_rel(x, y);
                            // quant-fix changes encodings on purpose: its outputs may move by one LSB
                            // of the new encoding; every other pass must be exact in fixed point.
                            let lsb_ok = label.starts_with("quant-fix/") && {
                                // fixed point: outputs are dequantized reals; compare in output LSBs
                                let f = &before.functions[g];
                                let t = f.ty(f.returned()[o]);
                                match t.quant().and_then(|q| q.encoding.per_tensor()) {
                                    Some((s, _)) => x
                                        .iter()
                                        .zip(y)
                                        .all(|(p, q)| ((p - q) / s).abs() <= 1.0 + 1e-3),
                                    None => false,
                                }
                            };
                            if e > tol && !lsb_ok {
                                failures.push(format!("{label} ({mode:?}) graph {g} output {o}: max relative difference {e}"));
                            }
                        }
                    }
                }
                checked += 1;
            }
        }
    }
    eprintln!("numerically checked {checked} lit cases");
    assert!(checked >= 20, "only {checked} cases were checked");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
