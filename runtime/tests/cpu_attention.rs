//! A small Qwen3-style attention block (GQA, RoPE, KV cache inputs, where/reduce_min
//! mask, softmax) through the byte-level `Executor` interface, against a naive f64
//! implementation; prefill and decode graphs share their weights.

mod cpu_common;

use cpu_common::*;
use mllm_runtime::cpu::{CpuExecutor, NumericMode};
use mllm_runtime::Executor;
use rand::Rng;

struct Inputs {
    x: Vec<f32>,
    cos: Vec<f32>,
    sin: Vec<f32>,
    mask: Vec<f32>,
    pk: Vec<f32>,
    pv: Vec<f32>,
}

fn inputs(a: AttnDims, n_past: usize, seed: u64) -> Inputs {
    let mut r = rng(seed);
    let mut v = |n: usize| -> Vec<f32> { (0..n).map(|_| r.gen_range(-1.0f32..1.0)).collect() };
    let (s, c, d) = (a.s, a.c, a.d);
    let x = v(s * a.hidden);
    let pk = v(a.hkv * d * (c - s));
    let pv = v(a.hkv * (c - s) * d);
    let mut cos = vec![0f32; s * d];
    let mut sin = vec![0f32; s * d];
    for i in 0..s {
        for j in 0..d {
            let th = (n_past + i) as f32 / 10000f32.powf((2 * (j % (d / 2))) as f32 / d as f32);
            cos[i * d + j] = th.cos();
            sin[i * d + j] = th.sin();
        }
    }
    // Smart mask: the cached columns [0, n_past) and the causal part of the chunk.
    let mut mask = vec![0f32; s * c];
    for i in 0..s {
        for t in 0..n_past {
            mask[i * c + t] = 1.0;
        }
        for j in 0..=i {
            mask[i * c + (c - s) + j] = 1.0;
        }
    }
    Inputs {
        x,
        cos,
        sin,
        mask,
        pk,
        pv,
    }
}

/// Naive attention: returns (out [S,E], present_key [Hkv,S,D], present_value [Hkv,S,D]).
fn naive(a: AttnDims, inp: &Inputs, w: &[(&str, Vec<usize>, Vec<f32>)]) -> [Vec<f64>; 3] {
    let AttnDims {
        s,
        c,
        h,
        hkv,
        d,
        hidden: e,
    } = a;
    let get = |n: &str| &w.iter().find(|x| x.0 == n).unwrap().2;
    let (wq, wk, wv, wo) = (get("wq"), get("wk"), get("wv"), get("wo"));
    let proj = |w: &[f32], heads: usize| -> Vec<f64> {
        // [heads, S, D]
        let mut o = vec![0f64; heads * s * d];
        for hh in 0..heads {
            for i in 0..s {
                for j in 0..d {
                    o[(hh * s + i) * d + j] = (0..e)
                        .map(|k| inp.x[i * e + k] as f64 * w[(hh * d + j) * e + k] as f64)
                        .sum();
                }
            }
        }
        o
    };
    let rope = |t: &mut Vec<f64>, heads: usize| {
        let src = t.clone();
        for hh in 0..heads {
            for i in 0..s {
                for j in 0..d {
                    let base = (hh * s + i) * d;
                    let rot = if j < d / 2 {
                        -src[base + j + d / 2]
                    } else {
                        src[base + j - d / 2]
                    };
                    t[base + j] =
                        src[base + j] * inp.cos[i * d + j] as f64 + rot * inp.sin[i * d + j] as f64;
                }
            }
        }
    };
    let mut q = proj(wq, h);
    rope(&mut q, h);
    let mut k = proj(wk, hkv);
    rope(&mut k, hkv);
    let v = proj(wv, hkv);
    let kall = |g: usize, j: usize, t: usize| -> f64 {
        if t < c - s {
            inp.pk[(g * (c - s) + t) * d + j] as f64
        } else {
            k[(g * s + t - (c - s)) * d + j]
        }
    };
    let vall = |g: usize, t: usize, j: usize| -> f64 {
        if t < c - s {
            inp.pv[(g * (c - s) + t) * d + j] as f64
        } else {
            v[(g * s + t - (c - s)) * d + j]
        }
    };
    let mut o = vec![0f64; s * h * d]; // [S, H, D]
    for hh in 0..h {
        let g = hh / (h / hkv);
        for i in 0..s {
            let sc: Vec<f64> = (0..c)
                .map(|t| {
                    (0..d)
                        .map(|j| q[(hh * s + i) * d + j] * kall(g, j, t))
                        .sum::<f64>()
                        / (d as f64).sqrt()
                })
                .collect();
            let floor = sc.iter().cloned().fold(f64::INFINITY, f64::min) - 20.0;
            let lg: Vec<f64> = (0..c)
                .map(|t| {
                    if inp.mask[i * c + t] == 1.0 {
                        sc[t]
                    } else {
                        floor
                    }
                })
                .collect();
            let mx = lg.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let z: f64 = lg.iter().map(|l| (l - mx).exp()).sum();
            for j in 0..d {
                o[(i * h + hh) * d + j] =
                    (0..c).map(|t| (lg[t] - mx).exp() / z * vall(g, t, j)).sum();
            }
        }
    }
    let mut out = vec![0f64; s * e];
    for i in 0..s {
        for ee in 0..e {
            out[i * e + ee] = (0..h * d)
                .map(|m| o[i * h * d + m] * wo[ee * h * d + m] as f64)
                .sum();
        }
    }
    [out, k, v]
}

fn bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

#[test]
fn attention_block_prefill_and_decode_match_naive() {
    let pre = AttnDims {
        s: 4,
        c: 16,
        h: 4,
        hkv: 2,
        d: 8,
        hidden: 32,
    };
    let dec = AttnDims { s: 1, ..pre };
    let w = attention_weights(pre, 77);
    for grouped in [false, true] {
        let m = attention_module_with(&[("model.0.s4", pre), ("model.0.s1", dec)], 77, grouped);
        let mut ex = CpuExecutor::new(&m, NumericMode::Float).unwrap();
        assert_eq!(
            ex.decoded_weights(),
            4,
            "each weight is packed once for both graphs"
        );
        for (g, a) in [(0usize, pre), (1, dec)] {
            let inp = inputs(a, 5, 100 + g as u64);
            let ins: Vec<Vec<u8>> = [&inp.x, &inp.cos, &inp.sin, &inp.mask, &inp.pk, &inp.pv]
                .iter()
                .map(|v| bytes(v))
                .collect();
            let in_refs: Vec<&[u8]> = ins.iter().map(|v| v.as_slice()).collect();
            let desc = ex.graphs()[g].clone();
            assert_eq!(desc.ar_len, a.s);
            let mut outs: Vec<Vec<u8>> = desc
                .outputs
                .iter()
                .map(|t| vec![0u8; t.byte_size()])
                .collect();
            let mut out_refs: Vec<&mut [u8]> = outs.iter_mut().map(|v| v.as_mut_slice()).collect();
            ex.execute(g, &in_refs, &mut out_refs).unwrap();
            let want = naive(a, &inp, &w);
            for (i, name) in ["out", "present_key", "present_value"].iter().enumerate() {
                let got: &[f32] = bytemuck::cast_slice(&outs[i]);
                assert_close(
                    got,
                    &want[i],
                    1e-5,
                    &format!("grouped {grouped} graph {g} {name}"),
                );
            }
            // A wrong buffer size is an error, not a panic.
            let mut short = vec![0u8; 3];
            let mut bad: Vec<&mut [u8]> = vec![&mut short];
            assert!(ex.execute(g, &in_refs, &mut bad).is_err());
        }
    }
}

#[test]
fn observer_sees_every_op_in_real_units() {
    let a = AttnDims {
        s: 2,
        c: 8,
        h: 2,
        hkv: 1,
        d: 4,
        hidden: 8,
    };
    let m = attention_module(&[("model.0.s2", a)], 5);
    let mut ex = CpuExecutor::new(&m, NumericMode::Float).unwrap();
    let inp = inputs(a, 3, 9);
    let refs = [&inp.x, &inp.cos, &inp.sin, &inp.mask, &inp.pk, &inp.pv]
        .map(|v| mllm_runtime::cpu::TensorRef::F32(v));
    let mut seen = Vec::new();
    let mut softmax_rows_ok = true;
    let outs = ex
        .run_f32_observed(0, &refs, &mut |o| {
            seen.push(o.kind);
            assert_eq!(o.data.len(), o.shape.iter().product::<usize>());
            if o.kind == mllm_ir::OpKind::Softmax {
                for row in o.data.chunks(a.c) {
                    softmax_rows_ok &= (row.iter().sum::<f32>() - 1.0).abs() < 1e-5;
                }
            }
        })
        .unwrap();
    let steps = ex.program(0).unwrap().num_steps();
    assert_eq!(seen.len(), steps);
    assert!(seen.contains(&mllm_ir::OpKind::Softmax) && seen.contains(&mllm_ir::OpKind::Linear));
    assert!(softmax_rows_ok);
    let w = attention_weights(a, 5);
    assert_close(
        &outs[0],
        &naive(a, &inp, &w)[0],
        1e-5,
        "observed run output",
    );
    // Per-step profiling: one entry per step, time accumulates over runs.
    ex.program_mut(0).unwrap().set_profiling(true);
    ex.run_f32(0, &refs).unwrap();
    let prof = ex.program(0).unwrap().profile();
    assert_eq!(prof.len(), steps + ex.program(0).unwrap().fused_steps());
    assert!(prof.iter().any(|p| p.1 == mllm_ir::OpKind::MatMul));
    assert!(prof.iter().map(|p| p.3).sum::<std::time::Duration>() > std::time::Duration::ZERO);
    ex.program_mut(0).unwrap().set_profiling(false);
    assert!(ex.program(0).unwrap().profile().is_empty());
}

/// The fused masked softmax (plain runs) and the op-by-op steps (observed runs) give
/// bit-identical outputs, in prefill (several rows per head) and decode, with GQA by
/// grouped reshapes (the K/V concats packed straight into the matmuls).
#[test]
fn fused_attention_rows_equal_the_op_by_op_steps() {
    for (s, n_past) in [(3usize, 2usize), (1, 5)] {
        let a = AttnDims {
            s,
            c: 16,
            h: 4,
            hkv: 2,
            d: 8,
            hidden: 16,
        };
        let name = format!("model.0.s{s}");
        let m = attention_module_with(&[(name.as_str(), a)], 11, true);
        let mut ex = CpuExecutor::new(&m, NumericMode::Float).unwrap();
        assert_eq!(ex.program(0).unwrap().fused_steps(), 1, "the pattern fuses");
        let inp = inputs(a, n_past, 4);
        let refs = [&inp.x, &inp.cos, &inp.sin, &inp.mask, &inp.pk, &inp.pv]
            .map(|v| mllm_runtime::cpu::TensorRef::F32(v));
        ex.program_mut(0).unwrap().set_profiling(true);
        let plain = ex.run_f32(0, &refs).unwrap();
        // Plain runs pack the K/V concat parts straight into the matmuls: the concat
        // steps (kept for observers) do not run.
        let prof = ex.program(0).unwrap().profile();
        let concats: Vec<_> = prof
            .iter()
            .filter(|p| p.1 == mllm_ir::OpKind::Concat)
            .collect();
        assert_eq!(concats.len(), 2);
        assert!(concats.iter().all(|p| p.3.is_zero()), "{concats:?}");
        ex.program_mut(0).unwrap().set_profiling(false);
        let mut softmaxes = 0;
        let observed = ex
            .run_f32_observed(0, &refs, &mut |o| {
                softmaxes += (o.kind == mllm_ir::OpKind::Softmax) as usize
            })
            .unwrap();
        assert_eq!(softmaxes, 1, "the observer sees the softmax op");
        for (p, o) in plain.iter().zip(&observed) {
            let pb: Vec<u32> = p.iter().map(|x| x.to_bits()).collect();
            let ob: Vec<u32> = o.iter().map(|x| x.to_bits()).collect();
            assert_eq!(pb, ob, "s {s}");
        }
        let w = attention_weights(a, 11);
        assert_close(&plain[0], &naive(a, &inp, &w)[0], 1e-5, "fused run output");
    }
}

#[test]
fn unverifiable_functions_are_rejected_with_an_error() {
    let a = AttnDims {
        s: 2,
        c: 8,
        h: 2,
        hkv: 1,
        d: 4,
        hidden: 8,
    };
    let mut m = attention_module(&[("model.0.s2", a)], 5);
    // Drop the result names: the function no longer matches its return.
    m.functions[0].result_names.clear();
    let e = CpuExecutor::new(&m, NumericMode::Float)
        .unwrap_err()
        .to_string();
    assert!(e.contains("model.0.s2") && e.contains("verify"), "{e}");
    // A missing weight names the weight.
    let mut m = attention_module(&[("model.0.s2", a)], 5);
    m.weights.remove("wk");
    let e = CpuExecutor::new(&m, NumericMode::Float)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("\"wk\"") && e.contains("not in the weight store"),
        "{e}"
    );
}
