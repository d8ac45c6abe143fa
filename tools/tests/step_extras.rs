//! Step extras of the CPU executor ([`mllm_runtime::StepExtras`]) on the tiny synthetic
//! Qwen3, float (f32 KV) and quantized (u8 KV, u16 logits, fixed-point HTP arithmetic):
//!
//! 1. generation with the extras (new K/V entries written into the cache inside `execute`,
//!    greedy token taken while the logits are written out) is identical, on the plain and the
//!    single-head-attention graphs, to generation with
//!    the scheduler committing and sampling itself: the same tokens and bit-identical logits
//!    for every prompt length class, chunked (S = 4) and token by token, up to the last cache
//!    slot, greedy and seeded temperature sampling;
//! 2. the extras are really used: after a generation with room left, the last step's entries
//!    are already in the cache (`n_past` = history) where the host path leaves them pending;
//! 3. `execute_with` directly: outputs identical to `execute`, exactly the addressed cache
//!    rows changed (to the new entries), the greedy token equal to the sampler's, and bad
//!    requests rejected with an error before anything is written.

use std::path::{Path, PathBuf};
use std::process::Command;

use mllm_frontends::qwen3::BuildOptions;
use mllm_frontends::synth::{self, Preset};
use mllm_frontends::DType as WDType;
use mllm_ir::Module;
use mllm_runtime::cpu::{CpuExecutor, NumericMode, Rounding};
use mllm_runtime::sampler::greedy_token;
use mllm_runtime::scheduler::GraphSelect;
use mllm_runtime::{
    CacheWrite, Executor, GraphInput, Sampler, SamplerConfig, Scheduler, SchedulerConfig,
    StepExtras,
};

const S: usize = 4;
const C: usize = 48;

/// A scratch directory removed on drop.
struct Scratch(PathBuf);
impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tokenizer() -> Option<PathBuf> {
    let base = Path::new(env!("CARGO_MANIFEST_DIR"));
    ["../../shared", "../shared"]
        .iter()
        .map(|s| base.join(s).join("assets/qwen3/tokenizer.json"))
        .find(|p| p.exists())
}

/// The float module (graphs s4 and s1) and, when the tokenizer for calibration is
/// available, the quantized one.
fn modules(dir: &Path) -> (Module, Option<Module>) {
    let ckpt = dir.join("ckpt");
    synth::generate(Preset::Tiny, 11, WDType::F32, &ckpt, &mut |_| {}).unwrap();
    let opts = BuildOptions {
        ar_len: S,
        context_len: C,
        num_shards: 1,
    };
    let (_, float) = mllm_tools::quantize::load_module(&ckpt, None, opts).unwrap();
    let Some(tok) = tokenizer() else {
        println!("note: shared/assets/qwen3/tokenizer.json not found; quantized model skipped");
        return (float, None);
    };
    let out = dir.join("q");
    let (s, c) = (S.to_string(), C.to_string());
    let o = Command::new(env!("CARGO_BIN_EXE_mllm"))
        .args(["quantize", &ckpt.display().to_string(), "-t"])
        .arg(&tok)
        .args(["-o", &out.display().to_string(), "--num-samples", "4"])
        .args([
            "--max-length",
            "64",
            "--ar-len",
            &s,
            "--context-len",
            &c,
            "--quiet",
        ])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "mllm quantize: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let path = out.join("model.mlir");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut q = mllm_ir::parse::parse_verified(&text, &path.display().to_string()).unwrap();
    mllm_frontends::qwen3::load_weights(&mut q, Some(&out)).unwrap();
    (float, Some(q))
}

struct Run {
    tokens: Vec<u32>,
    logits: Vec<u32>,
    stop: Option<mllm_runtime::StopReason>,
    n_past: usize,
    history: usize,
}

fn run(
    exec: &mut CpuExecutor,
    prefill: GraphSelect,
    prompt: &[u32],
    n: usize,
    sampler: SamplerConfig,
    extras: bool,
) -> Run {
    let cfg = SchedulerConfig {
        max_new_tokens: n,
        eos_ids: vec![],
        prefill,
        record_logits: true,
        ..Default::default()
    };
    let mut s = Scheduler::new(exec, cfg).unwrap();
    s.set_step_extras(extras);
    let mut sampler = Sampler::new(sampler, s.dims().vocab).unwrap();
    let st = s.generate(prompt, &mut sampler, |_| true).unwrap();
    let logits = st.logits.as_ref().unwrap();
    Run {
        logits: logits.data.iter().map(|x| x.to_bits()).collect(),
        tokens: st.generated,
        stop: st.stop,
        n_past: s.kv().n_past(),
        history: s.history().len(),
    }
}

fn prompt(len: usize) -> Vec<u32> {
    (0..len as u32)
        .map(|i| i.wrapping_mul(2_654_435_761) % 151_000)
        .collect()
}

#[test]
fn step_extras_change_no_token_and_no_logit() {
    let dir = Scratch(std::env::temp_dir().join(format!("mllm-extras-{}", std::process::id())));
    let _ = std::fs::remove_dir_all(&dir.0);
    let (float, quant) = modules(&dir.0);
    // Single-head attention and 1x1 convolutions: per-head slices of the cache, and present
    // outputs that nothing else reads (computed straight into their output buffers).
    let mut sha = float.clone();
    let mut pm = mllm_passes::PassManager::parse(
        "builtin.module(func.func(decompose,sha-split,linear-to-conv2d,canonicalize,cse,dce))",
        &mllm_passes::Registry::with_all(),
    )
    .unwrap();
    pm.run(&mut sha, &mut []).unwrap();
    // (model, mode, name, prompt lengths): lengths around the chunk size and prompts that
    // leave 1-4 cache slots; fewer for the slower single-head graph.
    let all = [1, 3, 4, 5, 9, 20, C - 4, C - 1];
    let mut cases = vec![
        (&float, NumericMode::Float, "float", &all[..]),
        (&sha, NumericMode::Float, "float sha", &[3, 9, C - 1][..]),
    ];
    if let Some(q) = &quant {
        cases.push((q, NumericMode::Fixed(Rounding::Htp), "quantized", &all[..]));
    }
    let temperature = SamplerConfig {
        temperature: 0.8,
        top_k: 40,
        seed: 5,
        ..SamplerConfig::greedy()
    };
    for (m, mode, what, lens) in cases {
        let exec = &mut CpuExecutor::new(m, mode).unwrap();
        for prefill in [GraphSelect::ArLen(S), GraphSelect::Disabled] {
            for &len in lens {
                let p = prompt(len);
                // Up to the end of the cache: the last slot is used.
                let n = C - len;
                for sampler in [SamplerConfig::greedy(), temperature.clone()] {
                    let ctx = format!(
                        "{what} prefill {prefill:?} prompt {len} temperature {}",
                        sampler.temperature
                    );
                    let on = run(exec, prefill.clone(), &p, n, sampler.clone(), true);
                    let off = run(exec, prefill.clone(), &p, n, sampler, false);
                    assert_eq!(on.tokens, off.tokens, "{ctx}");
                    assert_eq!(on.stop, off.stop, "{ctx}");
                    assert_eq!(on.logits.len(), off.logits.len(), "{ctx}");
                    let differing = on.logits.iter().zip(&off.logits).filter(|(a, b)| a != b);
                    assert_eq!(differing.count(), 0, "{ctx}: logits differ");
                }
            }
        }
        // With room left, the last step's entries are already in the cache with the extras;
        // the host path commits them only before a next step.
        let p = prompt(6);
        let greedy = SamplerConfig::greedy();
        let on = run(exec, GraphSelect::ArLen(S), &p, 5, greedy.clone(), true);
        let off = run(exec, GraphSelect::ArLen(S), &p, 5, greedy, false);
        assert_eq!((on.history, on.n_past), (10, 10), "{what}");
        assert_eq!((off.history, off.n_past), (10, 9), "{what}");
    }
}

/// Inputs of a decode graph: deterministic token, position `pos`, a mask attending to the
/// first `pos` cache rows and the current token, and pseudo-random cache bytes.
fn decode_inputs(exec: &CpuExecutor, g: usize, pos: usize) -> Vec<Vec<u8>> {
    let desc = &exec.graphs()[g];
    let mut x = 0x9e37_79b9u32;
    desc.inputs
        .iter()
        .map(|t| {
            let mut b = vec![0u8; t.byte_size()];
            match t.name.as_str() {
                "sequence" => b.copy_from_slice(&1234i32.to_le_bytes()),
                "position_ids" => b.copy_from_slice(&(pos as i32).to_le_bytes()),
                "causal_mask" => {
                    let e = t.dtype.size();
                    let c = b.len() / e;
                    for (j, cell) in b.chunks_exact_mut(e).enumerate() {
                        let on = j < pos || j == c - 1;
                        match e {
                            4 => cell.copy_from_slice(&(on as u8 as f32).to_le_bytes()),
                            2 => {
                                cell.copy_from_slice(&(if on { u16::MAX } else { 0 }).to_le_bytes())
                            }
                            _ => cell[0] = if on { u8::MAX } else { 0 },
                        }
                    }
                }
                _ => {
                    // Cache bytes: small floats for f32, any code for u8.
                    for c in b.chunks_exact_mut(t.dtype.size()) {
                        x ^= x << 13;
                        x ^= x >> 17;
                        x ^= x << 5;
                        if c.len() == 4 {
                            let v = (x % 2001) as f32 / 1000.0 - 1.0;
                            c.copy_from_slice(&v.to_le_bytes());
                        } else {
                            c.fill(x as u8);
                        }
                    }
                }
            }
            b
        })
        .collect()
}

#[test]
fn execute_with_writes_exactly_the_new_rows() {
    let dir = Scratch(std::env::temp_dir().join(format!("mllm-extras-x-{}", std::process::id())));
    let _ = std::fs::remove_dir_all(&dir.0);
    let (float, quant) = modules(&dir.0);
    let mut cases = vec![(&float, NumericMode::Float)];
    if let Some(q) = &quant {
        cases.push((q, NumericMode::Fixed(Rounding::Htp)));
    }
    for (m, mode) in cases {
        let mut exec = CpuExecutor::new(m, mode).unwrap();
        let g = exec
            .graphs()
            .iter()
            .position(|d| d.ar_len == 1)
            .expect("decode graph");
        let desc = exec.graphs()[g].clone();
        assert_eq!(
            exec.program(g).unwrap().direct_outputs(),
            ["logits"],
            "{mode:?}: the logits are computed in their output buffer"
        );
        let pos = 17;
        let ins = decode_inputs(&exec, g, pos);
        let new_outs = || -> Vec<Vec<u8>> {
            desc.outputs
                .iter()
                .map(|t| vec![0u8; t.byte_size()])
                .collect()
        };
        // Reference: plain execute.
        let mut want = new_outs();
        {
            let ins: Vec<&[u8]> = ins.iter().map(|v| v.as_slice()).collect();
            let mut outs: Vec<&mut [u8]> = want.iter_mut().map(|v| v.as_mut_slice()).collect();
            exec.execute(g, &ins, &mut outs).unwrap();
        }
        let idx = |name: &str, of: &[mllm_runtime::TensorDesc]| {
            of.iter().position(|t| t.name == name).unwrap()
        };
        let layers = desc
            .inputs
            .iter()
            .filter(|t| t.name.starts_with("past_key_"))
            .count();
        let pairs: Vec<(usize, usize)> = (0..layers)
            .flat_map(|l| {
                [
                    (
                        idx(&format!("present_key_{l}"), &desc.outputs),
                        idx(&format!("past_key_{l}"), &desc.inputs),
                    ),
                    (
                        idx(&format!("present_value_{l}"), &desc.outputs),
                        idx(&format!("past_value_{l}"), &desc.inputs),
                    ),
                ]
            })
            .collect();
        let past = &desc.inputs[pairs[0].1];
        let (heads, stride, head_dim) = (past.shape[1], past.shape[2], past.shape[3]);
        let logits = idx("logits", &desc.outputs);
        let cw = CacheWrite {
            pairs: &pairs,
            heads,
            head_dim,
            elem: past.dtype.size(),
            src_s: 1,
            stride,
            row: pos,
            n: 1,
            write_outputs: false,
        };
        // `shift`: the logits buffer's address modulo 64 (0: the executor computes the logits
        // in it; 4: it copies them in, scanning as it goes).
        let call = |exec: &mut CpuExecutor,
                    cache: Option<CacheWrite<'_>>,
                    argmax: Option<(usize, usize)>,
                    read_only_past: bool,
                    shift: usize|
         -> (
            Vec<Vec<u8>>,
            Vec<Vec<u8>>,
            mllm_runtime::Result<mllm_runtime::ExtrasDone>,
        ) {
            let mut bufs = ins.clone();
            let mut outs = new_outs();
            let r = {
                let mut gi: Vec<GraphInput<'_>> = bufs
                    .iter_mut()
                    .zip(&desc.inputs)
                    .map(|(b, t)| {
                        if t.name.starts_with("past_") && !read_only_past {
                            GraphInput::Cache(b.as_mut_slice())
                        } else {
                            GraphInput::Read(b.as_slice())
                        }
                    })
                    .collect();
                let len = outs[logits].len();
                let mut pad = vec![0u8; len + 128];
                let at = (64 - pad.as_ptr() as usize % 64) % 64 + shift;
                let mut o: Vec<&mut [u8]> = outs.iter_mut().map(|v| v.as_mut_slice()).collect();
                o[logits] = &mut pad[at..at + len];
                let r = exec.execute_with(g, &mut gi, &mut o, &StepExtras { cache, argmax });
                outs[logits].copy_from_slice(&pad[at..at + len]);
                r
            };
            (bufs, outs, r)
        };

        let token = greedy_token(&want[logits], &desc.outputs[logits]);
        assert!(token.is_some());
        let row = head_dim * past.dtype.size();
        for (write_outputs, shift) in [(true, 0), (false, 0), (false, 4)] {
            let cw = CacheWrite {
                write_outputs,
                ..cw
            };
            let (bufs, outs, r) = call(&mut exec, Some(cw), Some((logits, 0)), false, shift);
            let done = r.unwrap();
            let ctx = format!("{mode:?} write_outputs {write_outputs} logits at 64k+{shift}");
            assert!(done.cache_written, "{ctx}");
            assert_eq!(done.argmax, token, "{ctx}: greedy token");
            for (j, (got, w)) in outs.iter().zip(&want).enumerate() {
                let paired = pairs.iter().any(|p| p.0 == j);
                if paired && !write_outputs {
                    // Left as they were.
                    assert!(got.iter().all(|b| *b == 0), "{ctx}: output {j} written");
                } else {
                    assert_eq!(got, w, "{ctx}: output {j} differs from execute");
                }
            }
            for &(o, i) in &pairs {
                for h in 0..heads {
                    for r in 0..stride {
                        let at = (h * stride + r) * row;
                        let got = &bufs[i][at..at + row];
                        if r == pos {
                            assert_eq!(got, &want[o][h * row..(h + 1) * row], "{ctx} new row");
                        } else {
                            assert_eq!(got, &ins[i][at..at + row], "{ctx} row {r} untouched");
                        }
                    }
                }
            }
        }

        // Bad requests: an error, and nothing written.
        let bad_pair = [(desc.outputs.len(), pairs[0].1)];
        let rejected = [
            (Some(CacheWrite { row: stride, ..cw }), None, false),
            (Some(CacheWrite { n: 2, ..cw }), None, false),
            (
                Some(CacheWrite {
                    pairs: &bad_pair,
                    ..cw
                }),
                None,
                false,
            ),
            (
                Some(CacheWrite {
                    heads: heads + 1,
                    ..cw
                }),
                None,
                false,
            ),
            (Some(cw), None, true),
            (None, Some((logits, 1)), false),
            (None, Some((desc.outputs.len(), 0)), false),
        ];
        for (k, (cache, argmax, ro)) in rejected.into_iter().enumerate() {
            let (bufs, _, r) = call(&mut exec, cache, argmax, ro, 0);
            assert!(r.is_err(), "{mode:?}: bad request {k} accepted");
            assert_eq!(bufs, ins, "{mode:?}: bad request {k} wrote the cache");
        }
    }
}

/// Does the step extras for the first shard only, like an executor that can write the
/// entries of some graphs and not others.
struct FirstShardOnly(CpuExecutor);

impl Executor for FirstShardOnly {
    fn graphs(&self) -> &[mllm_runtime::GraphDesc] {
        self.0.graphs()
    }
    fn execute(
        &mut self,
        g: usize,
        inputs: &[&[u8]],
        outputs: &mut [&mut [u8]],
    ) -> mllm_runtime::Result<()> {
        self.0.execute(g, inputs, outputs)
    }
    fn execute_with(
        &mut self,
        g: usize,
        inputs: &mut [GraphInput<'_>],
        outputs: &mut [&mut [u8]],
        extras: &StepExtras<'_>,
    ) -> mllm_runtime::Result<mllm_runtime::ExtrasDone> {
        if self.0.graphs()[g].name.starts_with("model.0.") {
            return self.0.execute_with(g, inputs, outputs, extras);
        }
        let ins: Vec<&[u8]> = inputs.iter().map(|i| i.bytes()).collect();
        self.0.execute(g, &ins, outputs)?;
        Ok(Default::default())
    }
}

#[test]
fn shards_written_and_not_written_mix() {
    let dir = Scratch(std::env::temp_dir().join(format!("mllm-extras-s-{}", std::process::id())));
    let _ = std::fs::remove_dir_all(&dir.0);
    synth::generate(Preset::Tiny, 11, WDType::F32, &dir.0, &mut |_| {}).unwrap();
    let opts = BuildOptions {
        ar_len: S,
        context_len: C,
        num_shards: 2,
    };
    let (_, m) = mllm_tools::quantize::load_module(&dir.0, None, opts).unwrap();
    let gen = |exec: FirstShardOnly, extras: bool, p: &[u32]| {
        let cfg = SchedulerConfig {
            max_new_tokens: C - p.len(),
            eos_ids: vec![],
            record_logits: true,
            ..Default::default()
        };
        let mut s = Scheduler::new(exec, cfg).unwrap();
        s.set_step_extras(extras);
        let mut sampler = Sampler::new(SamplerConfig::greedy(), s.dims().vocab).unwrap();
        let st = s.generate(p, &mut sampler, |_| true).unwrap();
        let bits: Vec<u32> = st
            .logits
            .unwrap()
            .data
            .iter()
            .map(|x| x.to_bits())
            .collect();
        (st.generated, bits, s.kv().n_past(), s.history().len())
    };
    for len in [2, 7, C - 2] {
        let p = prompt(len);
        let new = || FirstShardOnly(CpuExecutor::new(&m, NumericMode::Float).unwrap());
        let on = gen(new(), true, &p);
        let off = gen(new(), false, &p);
        assert_eq!(on.0, off.0, "prompt {len}: tokens");
        assert!(on.1 == off.1, "prompt {len}: logits differ");
        if len == 2 {
            // Shard 0 wrote its entries, shard 1's were committed from its outputs at once.
            assert_eq!((on.2, on.3), (C - 1, C - 1), "prompt {len}");
        }
    }
}
