//! Numerical check of the Qwen3 builder: the IR graphs, evaluated by a small float interpreter
//! written here from the op semantics documented in `mllm_ir::ops`, must give the logits of an
//! independent, straightforward Qwen3 forward pass (written from the Hugging Face math: full
//! sequence, no cache, -inf causal masking, repeat-interleave GQA, f64 accumulation).
//!
//! The prefill graph runs one padded chunk with an empty cache; the decode graph then runs the next
//! token against the cache filled from the prefill's `present_*` outputs, which checks the KV I/O
//! contract (K and V rows, mask columns, cache strides) end to end.

// Index loops mirror the math they implement.
#![allow(clippy::needless_range_loop)]

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use half::bf16;
use mllm_frontends::qwen3::{build_qwen3, import_weights, BuildOptions};
use mllm_frontends::safetensors::{SafetensorsWriter, TensorSpec};
use mllm_frontends::synth::Preset;
use mllm_frontends::{Checkpoint, DType, Qwen3Config};
use mllm_ir::attr::AttrsExt;
use mllm_ir::{Function, Module, OpKind};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

// ---------------------------------------------------------------------------------------------
// A tiny float interpreter of the IR.

#[derive(Clone, Debug)]
struct Tensor {
    shape: Vec<usize>,
    data: Vec<f32>,
}

impl Tensor {
    fn new(shape: Vec<usize>, data: Vec<f32>) -> Tensor {
        assert_eq!(
            shape.iter().product::<usize>(),
            data.len(),
            "shape {shape:?}"
        );
        Tensor { shape, data }
    }
}

fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

fn norm_axis(a: i64, rank: usize) -> usize {
    if a < 0 {
        (a + rank as i64) as usize
    } else {
        a as usize
    }
}

/// Flat index into `t` for the multi-index `idx` of a broadcast output of rank `idx.len()`.
fn bcast_index(t: &Tensor, idx: &[usize]) -> usize {
    let off = idx.len() - t.shape.len();
    let st = strides(&t.shape);
    t.shape
        .iter()
        .enumerate()
        .map(|(d, &n)| if n == 1 { 0 } else { idx[off + d] * st[d] })
        .sum()
}

fn broadcast_shape(shapes: &[&[usize]]) -> Vec<usize> {
    let r = shapes.iter().map(|s| s.len()).max().unwrap();
    (0..r)
        .map(|i| {
            shapes
                .iter()
                .map(|s| {
                    if i + s.len() >= r {
                        s[i + s.len() - r]
                    } else {
                        1
                    }
                })
                .max()
                .unwrap()
        })
        .collect()
}

fn elementwise(ins: &[&Tensor], f: impl Fn(&[f32]) -> f32) -> Tensor {
    let shapes: Vec<&[usize]> = ins.iter().map(|t| t.shape.as_slice()).collect();
    let out = broadcast_shape(&shapes);
    let n: usize = out.iter().product();
    let st = strides(&out);
    let mut data = Vec::with_capacity(n);
    let mut idx = vec![0; out.len()];
    let mut args = vec![0.0; ins.len()];
    for flat in 0..n {
        for d in 0..out.len() {
            idx[d] = flat / st[d] % out[d];
        }
        for (a, t) in args.iter_mut().zip(ins) {
            *a = t.data[bcast_index(t, &idx)];
        }
        data.push(f(&args));
    }
    Tensor::new(out, data)
}

fn transpose(t: &Tensor, perm: &[usize]) -> Tensor {
    let out: Vec<usize> = perm.iter().map(|p| t.shape[*p]).collect();
    let ist = strides(&t.shape);
    let ost = strides(&out);
    let n = t.data.len();
    let mut data = vec![0.0; n];
    for (flat, o) in data.iter_mut().enumerate() {
        let src: usize = (0..out.len())
            .map(|d| (flat / ost[d] % out[d]) * ist[perm[d]])
            .sum();
        *o = t.data[src];
    }
    Tensor::new(out, data)
}

/// Applies `f` to every 1-D lane along the last axis.
fn lanes(t: &Tensor, f: impl Fn(&[f32], &mut [f32])) -> Tensor {
    let d = *t.shape.last().unwrap();
    let mut data = vec![0.0; t.data.len()];
    for (i, o) in t.data.chunks(d).zip(data.chunks_mut(d)) {
        f(i, o);
    }
    Tensor::new(t.shape.clone(), data)
}

fn eval(m: &Module, fname: &str, inputs: Vec<Tensor>) -> HashMap<String, Tensor> {
    let f: &Function = m.function(fname).unwrap();
    let mut env: HashMap<_, Tensor> = HashMap::new();
    assert_eq!(inputs.len(), f.args().len());
    for (a, t) in f.args().iter().zip(inputs) {
        assert_eq!(f.ty(*a).shape(), t.shape.as_slice());
        env.insert(*a, t);
    }
    let mut outputs = HashMap::new();
    for op in f.op_ids() {
        let o = f.op(op);
        let x = |i: usize| &env[&o.operands[i]];
        let out_shape = o.results.first().map(|r| f.ty(*r).shape().to_vec());
        let r = match o.kind {
            OpKind::Weight => {
                let w = m.weights.get(o.attrs.str("name").unwrap()).unwrap();
                Tensor::new(out_shape.unwrap(), w.to_f32())
            }
            OpKind::Constant => {
                let v = o.attrs.floats("value").unwrap();
                let shape = out_shape.unwrap();
                let n = shape.iter().product();
                let data = if v.len() == 1 {
                    vec![v[0] as f32; n]
                } else {
                    v.iter().map(|x| *x as f32).collect()
                };
                Tensor::new(shape, data)
            }
            OpKind::Return => {
                for (v, n) in o.operands.iter().zip(&f.result_names) {
                    outputs.insert(n.clone().unwrap(), env[v].clone());
                }
                continue;
            }
            OpKind::Reshape => Tensor::new(out_shape.unwrap(), x(0).data.clone()),
            OpKind::Transpose => {
                let perm: Vec<usize> = o
                    .attrs
                    .ints("perm")
                    .unwrap()
                    .iter()
                    .map(|p| *p as usize)
                    .collect();
                transpose(x(0), &perm)
            }
            OpKind::Concat => {
                let shape = out_shape.unwrap();
                let axis = norm_axis(o.attrs.int("axis").unwrap(), shape.len());
                let outer: usize = shape[..axis].iter().product();
                let mut data = Vec::with_capacity(shape.iter().product());
                for i in 0..outer {
                    for v in &o.operands {
                        let t = &env[v];
                        let chunk: usize = t.shape[axis..].iter().product();
                        data.extend_from_slice(&t.data[i * chunk..(i + 1) * chunk]);
                    }
                }
                Tensor::new(shape, data)
            }
            OpKind::Gather => {
                let (t, ids) = (x(0), x(1));
                let axis = norm_axis(o.attrs.int("axis").unwrap(), t.shape.len());
                let outer: usize = t.shape[..axis].iter().product();
                let inner: usize = t.shape[axis + 1..].iter().product();
                let mut data = Vec::new();
                for i in 0..outer {
                    for id in &ids.data {
                        let row = (i * t.shape[axis] + *id as usize) * inner;
                        data.extend_from_slice(&t.data[row..row + inner]);
                    }
                }
                Tensor::new(out_shape.unwrap(), data)
            }
            OpKind::Embedding => {
                let (ids, t) = (x(0), x(1));
                let h = t.shape[1];
                let mut data = Vec::new();
                for id in &ids.data {
                    let row = *id as usize * h;
                    data.extend_from_slice(&t.data[row..row + h]);
                }
                Tensor::new(out_shape.unwrap(), data)
            }
            OpKind::MatMul => {
                assert!(o.attrs.bool("transpose_a") != Some(true));
                let (a, b) = (x(0), x(1));
                // `transpose_b`: multiply by the transpose of b's last two axes.
                let tb;
                let b = if o.attrs.bool("transpose_b") == Some(true) {
                    let r = b.shape.len();
                    let mut perm: Vec<usize> = (0..r).collect();
                    perm.swap(r - 2, r - 1);
                    tb = transpose(b, &perm);
                    &tb
                } else {
                    b
                };
                let ra = a.shape.len();
                let (mm, k, nn) = (a.shape[ra - 2], a.shape[ra - 1], b.shape[b.shape.len() - 1]);
                assert_eq!(
                    a.shape[..ra - 2],
                    b.shape[..b.shape.len() - 2],
                    "equal batch dims"
                );
                let batch: usize = a.shape[..ra - 2].iter().product();
                let mut data = vec![0.0f32; batch * mm * nn];
                for bi in 0..batch {
                    let (ab, bb, ob) = (bi * mm * k, bi * k * nn, bi * mm * nn);
                    for i in 0..mm {
                        for j in 0..nn {
                            let mut acc = 0.0f32;
                            for p in 0..k {
                                acc += a.data[ab + i * k + p] * b.data[bb + p * nn + j];
                            }
                            data[ob + i * nn + j] = acc;
                        }
                    }
                }
                Tensor::new(out_shape.unwrap(), data)
            }
            OpKind::Linear => {
                let (a, w) = (x(0), x(1));
                let (n, k) = (w.shape[0], w.shape[1]);
                let mut data = Vec::new();
                for row in a.data.chunks(k) {
                    for j in 0..n {
                        let wr = &w.data[j * k..(j + 1) * k];
                        data.push(row.iter().zip(wr).map(|(p, q)| p * q).sum::<f32>());
                    }
                }
                Tensor::new(out_shape.unwrap(), data)
            }
            OpKind::RmsNorm => {
                assert!(matches!(o.attrs.int("axis"), None | Some(-1)));
                let eps = o.attrs.float("epsilon").unwrap() as f32;
                let w = x(1).data.clone();
                lanes(x(0), |i, out| {
                    let ms = i.iter().map(|v| v * v).sum::<f32>() / i.len() as f32;
                    let r = 1.0 / (ms + eps).sqrt();
                    for ((o, v), g) in out.iter_mut().zip(i).zip(&w) {
                        *o = v * r * g;
                    }
                })
            }
            OpKind::Softmax => {
                assert!(matches!(o.attrs.int("axis"), None | Some(-1)));
                lanes(x(0), |i, out| {
                    let mx = i.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
                    let mut s = 0.0;
                    for (o, v) in out.iter_mut().zip(i) {
                        *o = (v - mx).exp();
                        s += *o;
                    }
                    out.iter_mut().for_each(|o| *o /= s);
                })
            }
            OpKind::Rope => {
                let t = x(0);
                let d = *t.shape.last().unwrap();
                let half = d / 2;
                let rot = lanes(t, |i, out| {
                    for j in 0..half {
                        out[j] = -i[j + half];
                        out[j + half] = i[j];
                    }
                });
                let a = elementwise(&[t, x(1)], |v| v[0] * v[1]);
                let b = elementwise(&[&rot, x(2)], |v| v[0] * v[1]);
                elementwise(&[&a, &b], |v| v[0] + v[1])
            }
            OpKind::Silu => elementwise(&[x(0)], |v| v[0] / (1.0 + (-v[0]).exp())),
            OpKind::Add => elementwise(&[x(0), x(1)], |v| v[0] + v[1]),
            OpKind::Mul => elementwise(&[x(0), x(1)], |v| v[0] * v[1]),
            OpKind::Equal => elementwise(&[x(0), x(1)], |v| f32::from(u8::from(v[0] == v[1]))),
            OpKind::Where => {
                elementwise(
                    &[x(0), x(1), x(2)],
                    |v| if v[0] != 0.0 { v[1] } else { v[2] },
                )
            }
            OpKind::ReduceMin => {
                assert_eq!(o.attrs.ints("axes").unwrap(), &[-1]);
                assert_ne!(o.attrs.bool("keepdims"), Some(false));
                let t = lanes(x(0), |i, out| {
                    let mn = i.iter().cloned().fold(f32::INFINITY, f32::min);
                    out.iter_mut().for_each(|o| *o = mn);
                });
                let d = *t.shape.last().unwrap();
                let data = t.data.iter().step_by(d).cloned().collect();
                Tensor::new(out_shape.unwrap(), data)
            }
            k => panic!("the test interpreter does not implement {}", k.name()),
        };
        assert_eq!(
            Some(&r.shape),
            f.op(op)
                .results
                .first()
                .map(|v| f.ty(*v).shape().to_vec())
                .as_ref()
        );
        env.insert(o.results[0], r);
    }
    outputs
}

// ---------------------------------------------------------------------------------------------
// The reference: a plain Qwen3 forward pass in f64.

struct Reference<'a> {
    cfg: &'a Qwen3Config,
    w: HashMap<String, Vec<f32>>,
    /// Map query head -> KV head (Hugging Face: repeat-interleave, `h / G`).
    kv_of: fn(usize, usize, usize) -> usize,
}

fn matvec(w: &[f32], x: &[f64], n: usize) -> Vec<f64> {
    let k = x.len();
    assert_eq!(w.len(), n * k);
    (0..n)
        .map(|j| {
            w[j * k..(j + 1) * k]
                .iter()
                .zip(x)
                .map(|(a, b)| *a as f64 * b)
                .sum()
        })
        .collect()
}

fn rms(x: &[f64], w: &[f32], eps: f64) -> Vec<f64> {
    let ms = x.iter().map(|v| v * v).sum::<f64>() / x.len() as f64;
    let r = 1.0 / (ms + eps).sqrt();
    x.iter().zip(w).map(|(v, g)| v * r * *g as f64).collect()
}

impl Reference<'_> {
    fn t(&self, name: &str) -> &[f32] {
        &self.w[name]
    }

    fn rope(&self, v: &mut [f64], pos: usize) {
        let d = v.len();
        let half = d / 2;
        for i in 0..half {
            let inv = self.cfg.rope_theta.powf(-((2 * i) as f64) / d as f64);
            let (s, c) = (pos as f64 * inv).sin_cos();
            let (a, b) = (v[i], v[i + half]);
            v[i] = a * c - b * s;
            v[i + half] = b * c + a * s;
        }
    }

    /// Logits of every position of `tokens`.
    fn logits(&self, tokens: &[u32]) -> Vec<Vec<f64>> {
        let c = self.cfg;
        let (h, d, hq, hkv, n) = (
            c.hidden_size,
            c.head_dim,
            c.num_attention_heads,
            c.num_key_value_heads,
            tokens.len(),
        );
        let emb = self.t("model.embed_tokens.weight");
        let mut x: Vec<Vec<f64>> = tokens
            .iter()
            .map(|t| {
                emb[*t as usize * h..(*t as usize + 1) * h]
                    .iter()
                    .map(|v| *v as f64)
                    .collect()
            })
            .collect();
        for l in 0..c.num_hidden_layers {
            let p = format!("model.layers.{l}");
            let a = format!("{p}.self_attn");
            let mut q = Vec::new();
            let mut k = Vec::new();
            let mut v = Vec::new();
            for (pos, xt) in x.iter().enumerate() {
                let hs = rms(
                    xt,
                    self.t(&format!("{p}.input_layernorm.weight")),
                    c.rms_norm_eps,
                );
                let heads = |which: &str, nh: usize, norm: bool| -> Vec<Vec<f64>> {
                    let y = matvec(self.t(&format!("{a}.{which}_proj.weight")), &hs, nh * d);
                    y.chunks(d)
                        .map(|hd| {
                            if !norm {
                                return hd.to_vec();
                            }
                            let mut z = rms(
                                hd,
                                self.t(&format!("{a}.{which}_norm.weight")),
                                c.rms_norm_eps,
                            );
                            self.rope(&mut z, pos);
                            z
                        })
                        .collect()
                };
                q.push(heads("q", hq, true));
                k.push(heads("k", hkv, true));
                v.push(heads("v", hkv, false));
            }
            for t in 0..n {
                let mut attn = Vec::with_capacity(hq * d);
                for head in 0..hq {
                    let kvh = (self.kv_of)(head, hq, hkv);
                    let scores: Vec<f64> = (0..n)
                        .map(|j| {
                            if j > t {
                                f64::NEG_INFINITY
                            } else {
                                q[t][head]
                                    .iter()
                                    .zip(&k[j][kvh])
                                    .map(|(a, b)| a * b)
                                    .sum::<f64>()
                                    / (d as f64).sqrt()
                            }
                        })
                        .collect();
                    let mx = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                    let e: Vec<f64> = scores.iter().map(|s| (s - mx).exp()).collect();
                    let sum: f64 = e.iter().sum();
                    for i in 0..d {
                        attn.push((0..n).map(|j| e[j] / sum * v[j][kvh][i]).sum());
                    }
                }
                let o = matvec(self.t(&format!("{a}.o_proj.weight")), &attn, h);
                x[t].iter_mut().zip(o).for_each(|(a, b)| *a += b);
            }
            for xt in x.iter_mut() {
                let hs = rms(
                    xt,
                    self.t(&format!("{p}.post_attention_layernorm.weight")),
                    c.rms_norm_eps,
                );
                let g = matvec(
                    self.t(&format!("{p}.mlp.gate_proj.weight")),
                    &hs,
                    c.intermediate_size,
                );
                let u = matvec(
                    self.t(&format!("{p}.mlp.up_proj.weight")),
                    &hs,
                    c.intermediate_size,
                );
                let act: Vec<f64> = g
                    .iter()
                    .zip(&u)
                    .map(|(g, u)| g / (1.0 + (-g).exp()) * u)
                    .collect();
                let down = matvec(self.t(&format!("{p}.mlp.down_proj.weight")), &act, h);
                xt.iter_mut().zip(down).for_each(|(a, b)| *a += b);
            }
        }
        let head = if self.w.contains_key("lm_head.weight") {
            "lm_head.weight"
        } else {
            "model.embed_tokens.weight"
        };
        x.iter()
            .map(|xt| {
                matvec(
                    self.t(head),
                    &rms(xt, self.t("model.norm.weight"), c.rms_norm_eps),
                    c.vocab_size,
                )
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Test checkpoints with weights large enough for attention to be far from uniform.

fn test_config(tied: bool, heads: usize, kv_heads: usize) -> Qwen3Config {
    let mut c = Preset::Tiny.config();
    c.vocab_size = 300;
    c.hidden_size = 64;
    c.intermediate_size = 96;
    c.num_hidden_layers = 2;
    c.num_attention_heads = heads;
    c.num_key_value_heads = kv_heads;
    c.head_dim = 24;
    c.rope_theta = 10_000.0;
    c.tie_word_embeddings = tied;
    c
}

fn write_checkpoint(cfg: &Qwen3Config, dtype: DType, dir: &Path) {
    let mut names = cfg.expected_tensors();
    if !cfg.tie_word_embeddings {
        names.push(("lm_head.weight".into(), cfg.lm_head_shape()));
    }
    let specs: Vec<TensorSpec> = names
        .iter()
        .map(|(n, s)| TensorSpec::new(n.clone(), dtype, s.clone()))
        .collect();
    let path = dir.join("model.safetensors");
    let mut w = SafetensorsWriter::create(&path, &specs, &Default::default()).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(1234);
    for (name, shape) in &names {
        let n: usize = shape.iter().product();
        let (mean, std) = match shape.len() {
            1 if name.contains("q_norm") || name.contains("k_norm") => (1.5, 0.3),
            1 => (1.0, 0.2),
            _ if name.contains("embed") => (0.0, 1.0),
            _ => (0.0, 1.0 / (shape[1] as f64).sqrt()),
        };
        let vals: Vec<f32> = (0..n)
            .map(|_| {
                // Box-Muller.
                let (u1, u2): (f64, f64) = (rng.gen_range(1e-12..1.0), rng.gen());
                (mean + std * (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
            })
            .collect();
        let bytes: Vec<u8> = match dtype {
            DType::BF16 => vals
                .iter()
                .flat_map(|v| bf16::from_f32(*v).to_le_bytes())
                .collect(),
            _ => vals.iter().flat_map(|v| v.to_le_bytes()).collect(),
        };
        w.write_tensor(name, &bytes).unwrap();
    }
    w.finish().unwrap();
    std::fs::write(dir.join("config.json"), cfg.to_json().to_string()).unwrap();
}

fn load(cfg: &Qwen3Config, dir: &Path) -> (Arc<Checkpoint>, HashMap<String, Vec<f32>>) {
    let ckpt = Arc::new(Checkpoint::open(dir).unwrap());
    let w = ckpt
        .tensors()
        .map(|t| (t.name.to_string(), t.to_f32_vec().unwrap()))
        .collect();
    assert!(cfg.check_checkpoint(&ckpt).is_ok());
    (ckpt, w)
}

fn max_diff(a: &[f32], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (*x as f64 - y).abs())
        .fold(0.0, f64::max)
}

fn check_prefill_then_decode(tied: bool, dtype: DType, heads: usize, kv_heads: usize) {
    let cfg = test_config(tied, heads, kv_heads);
    let dir = tempfile::tempdir().unwrap();
    write_checkpoint(&cfg, dtype, dir.path());
    let cfg = Qwen3Config::from_file(dir.path()).unwrap();
    let (ckpt, w) = load(&cfg, dir.path());
    let (s, c) = (32usize, 64usize);
    let (hkv, d, v) = (cfg.num_key_value_heads, cfg.head_dim, cfg.vocab_size);
    let layers = cfg.num_hidden_layers;
    let m = build_qwen3(
        &cfg,
        import_weights(&cfg, &ckpt).unwrap(),
        BuildOptions {
            ar_len: s,
            context_len: c,
            num_shards: 1,
        },
    )
    .unwrap();

    let mut rng = ChaCha8Rng::seed_from_u64(99);
    let tokens: Vec<u32> = (0..25).map(|_| rng.gen_range(0..v as u32)).collect();
    let n = 24;
    let reference = Reference {
        cfg: &cfg,
        w,
        kv_of: |h, hq, hkv| h / (hq / hkv),
    };
    let want = reference.logits(&tokens);

    // Prefill: one chunk of S with n real tokens, padding with token 0 (positions continue).
    let mut seq = vec![0.0f32; s];
    for (i, t) in tokens[..n].iter().enumerate() {
        seq[i] = *t as f32;
    }
    let pos: Vec<f32> = (0..s).map(|i| i as f32).collect();
    let mut mask = vec![0.0f32; s * c];
    for i in 0..s {
        for j in 0..=i {
            mask[i * c + (c - s) + j] = 1.0;
        }
    }
    let mut inputs = vec![
        Tensor::new(vec![1, s], seq),
        Tensor::new(vec![s], pos),
        Tensor::new(vec![1, 1, s, c], mask),
    ];
    for _ in 0..layers {
        inputs.push(Tensor::new(
            vec![1, hkv, c - s, d],
            vec![0.0; hkv * d * (c - s)],
        ));
    }
    for _ in 0..layers {
        inputs.push(Tensor::new(
            vec![1, hkv, c - s, d],
            vec![0.0; hkv * d * (c - s)],
        ));
    }
    let out = eval(&m, "model.0.s32", inputs);
    let logits = &out["logits"];
    assert_eq!(logits.shape, vec![1, s, v]);
    let mut worst = 0.0f64;
    for i in 0..n {
        worst = worst.max(max_diff(&logits.data[i * v..(i + 1) * v], &want[i]));
    }
    assert!(
        worst < 1e-4,
        "prefill logits differ from the reference by {worst}"
    );

    // Sensitivity: a wrong GQA pairing (mllm's Tile bug: kv = h % Hkv) is far off.
    let tile = Reference {
        cfg: &cfg,
        w: reference.w.clone(),
        kv_of: |h, _, hkv| h % hkv,
    };
    let bad = tile.logits(&tokens[..n]);
    let off = (0..n)
        .map(|i| max_diff(&logits.data[i * v..(i + 1) * v], &bad[i]))
        .fold(0.0, f64::max);
    // (Both pairings coincide when there is one KV head or one query head per KV head.)
    if kv_heads > 1 && heads > kv_heads {
        assert!(
            off > 1e-2,
            "the check cannot tell GQA pairings apart ({off})"
        );
    }

    // Decode: the cache holds the n prefill entries at columns/rows [0, n).
    let cs = c - 1;
    let mut inputs = vec![
        Tensor::new(vec![1, 1], vec![tokens[n] as f32]),
        Tensor::new(vec![1], vec![n as f32]),
        Tensor::new(
            vec![1, 1, 1, c],
            (0..c)
                .map(|j| if j < n || j == c - 1 { 1.0 } else { 0.0 })
                .collect(),
        ),
    ];
    for l in 0..layers {
        let pk = &out[&format!("present_key_{l}")];
        assert_eq!(pk.shape, vec![1, hkv, s, d]);
        let mut cache = vec![0.0f32; hkv * cs * d];
        for head in 0..hkv {
            cache[head * cs * d..head * cs * d + n * d]
                .copy_from_slice(&pk.data[head * s * d..head * s * d + n * d]);
        }
        inputs.push(Tensor::new(vec![1, hkv, cs, d], cache));
    }
    for l in 0..layers {
        let pv = &out[&format!("present_value_{l}")];
        assert_eq!(pv.shape, vec![1, hkv, s, d]);
        let mut cache = vec![0.0f32; hkv * cs * d];
        for head in 0..hkv {
            cache[head * cs * d..head * cs * d + n * d]
                .copy_from_slice(&pv.data[head * s * d..head * s * d + n * d]);
        }
        inputs.push(Tensor::new(vec![1, hkv, cs, d], cache));
    }
    let out = eval(&m, "model.0.s1", inputs);
    let diff = max_diff(&out["logits"].data, &want[n]);
    assert!(
        diff < 1e-4,
        "decode logits differ from the reference by {diff}"
    );
    eprintln!(
        "max |logit diff| vs reference: prefill {worst:.2e}, decode {diff:.2e}; wrong GQA pairing {off:.2e}"
    );
    assert_eq!(out["present_key_0"].shape, vec![1, hkv, 1, d]);
}

#[test]
fn logits_match_reference_tied_bf16() {
    check_prefill_then_decode(true, DType::BF16, 4, 2);
}

#[test]
fn logits_match_reference_untied_f32() {
    check_prefill_then_decode(false, DType::F32, 4, 2);
}

#[test]
fn logits_match_reference_without_grouping_and_with_one_kv_head() {
    check_prefill_then_decode(true, DType::F32, 3, 3);
    check_prefill_then_decode(false, DType::BF16, 6, 1);
}

#[test]
fn logits_match_reference_with_four_groups_of_two() {
    check_prefill_then_decode(true, DType::BF16, 8, 2);
}
