//! Every op of the CPU executor (float mode) against a naive implementation written
//! here, on random inputs and several shapes including broadcasting.
#![allow(clippy::type_complexity)]

mod cpu_common;

use cpu_common::*;
use mllm_ir::types::{ElemType, Type};
use mllm_ir::{attrs, Attr, Attrs, Function, OpKind, WDType, Weight};
use mllm_runtime::cpu::NumericMode;

const REL: f64 = 1e-5;

fn bcast_shape(a: &[usize], b: &[usize]) -> Vec<usize> {
    mllm_ir::infer::broadcast(a, b).unwrap()
}

fn naive_binary(a: &In, b: &In, f: impl Fn(f64, f64) -> f64) -> Vec<f64> {
    let out = bcast_shape(a.shape(), b.shape());
    let (av, bv) = (a.f(), b.f());
    (0..numel(&out))
        .map(|i| {
            let idx = unravel(i, &out);
            f(av[bidx(&idx, a.shape())], bv[bidx(&idx, b.shape())])
        })
        .collect()
}

const BIN_SHAPES: &[(&[usize], &[usize])] = &[
    (&[3, 5, 7], &[3, 5, 7]),
    (&[3, 5, 7], &[1]),
    (&[1], &[4, 6]),
    (&[2, 3, 70], &[70]),
    (&[2, 3, 70], &[2, 3, 1]),
    (&[2, 1, 5], &[1, 4, 5]),
    (&[4, 1], &[1, 9]),
    (&[2, 16, 64, 128], &[64, 1]),
    (&[1, 2, 300, 200], &[1, 1, 300, 200]),
];

#[test]
fn add_sub_mul_with_broadcasting() {
    let mut r = rng(1);
    for (sa, sb) in BIN_SHAPES {
        let (a, b) = (randn(&mut r, sa), randn(&mut r, sb));
        let cases: [(OpKind, fn(f64, f64) -> f64); 3] = [
            (OpKind::Add, |x, y| x + y),
            (OpKind::Sub, |x, y| x - y),
            (OpKind::Mul, |x, y| x * y),
        ];
        for (k, f) in cases {
            let (shape, got) = run_op(k, &[a.clone(), b.clone()], Attrs::new());
            assert_eq!(shape, bcast_shape(sa, sb));
            assert_close(
                &got,
                &naive_binary(&a, &b, f),
                REL,
                &format!("{k:?} {sa:?} {sb:?}"),
            );
        }
    }
}

#[test]
fn equal_and_where() {
    let mut r = rng(2);
    for (sa, sb) in BIN_SHAPES {
        // Values on a coarse grid so that equality happens often.
        let grid = |x: In| match x {
            In::F(s, d) => In::F(s, d.iter().map(|v| (v * 2.0).round()).collect()),
            o => o,
        };
        let (a, b) = (grid(randn(&mut r, sa)), grid(randn(&mut r, sb)));
        let (_, got) = run_op(OpKind::Equal, &[a.clone(), b.clone()], Attrs::new());
        let want = naive_binary(&a, &b, |x, y| (x == y) as u8 as f64);
        assert_eq!(got.iter().map(|x| *x as f64).collect::<Vec<_>>(), want);
        assert!(want.contains(&1.0) && want.contains(&0.0) || want.len() < 4);
        // where(cond, a, b) with the condition broadcast from a third shape.
        let out = bcast_shape(sa, sb);
        let cs: Vec<usize> = out
            .iter()
            .map(|d| if d % 2 == 0 { *d } else { 1 })
            .collect();
        let cond = In::B(
            cs.clone(),
            (0..numel(&cs)).map(|i| (i % 3 == 0) as u8 as f32).collect(),
        );
        let (shape, got) = run_op(
            OpKind::Where,
            &[cond.clone(), a.clone(), b.clone()],
            Attrs::new(),
        );
        assert_eq!(shape, out);
        let (cv, av, bv) = (cond.f(), a.f(), b.f());
        let want: Vec<f64> = (0..numel(&out))
            .map(|i| {
                let idx = unravel(i, &out);
                if cv[bidx(&idx, &cs)] != 0.0 {
                    av[bidx(&idx, sa)]
                } else {
                    bv[bidx(&idx, sb)]
                }
            })
            .collect();
        assert_close(&got, &want, 0.0, "where");
    }
}

#[test]
fn unary_ops() {
    let mut r = rng(3);
    for s in [&[7][..], &[3, 1000], &[2, 200, 300]] {
        let x = randn(&mut r, s);
        let xs = x.f();
        let sig = |v: f64| 1.0 / (1.0 + (-v).exp());
        let cases: [(OpKind, Box<dyn Fn(f64) -> f64>); 3] = [
            (OpKind::Silu, Box::new(move |v| v * sig(v))),
            (OpKind::Sigmoid, Box::new(sig)),
            (OpKind::Neg, Box::new(|v| -v)),
        ];
        for (k, f) in cases {
            let (_, got) = run_op(k, std::slice::from_ref(&x), Attrs::new());
            let want: Vec<f64> = xs.iter().map(|v| f(*v)).collect();
            assert_close(&got, &want, REL, &format!("{k:?}"));
        }
    }
}

fn axis_groups(shape: &[usize], axis: usize) -> Vec<Vec<usize>> {
    // Flat indices of every line along `axis`.
    let mut out = Vec::new();
    for i in 0..numel(shape) {
        let idx = unravel(i, shape);
        if idx[axis] != 0 {
            continue;
        }
        out.push(
            (0..shape[axis])
                .map(|j| {
                    let mut k = idx.clone();
                    k[axis] = j;
                    ravel(&k, shape)
                })
                .collect(),
        );
    }
    out
}

#[test]
fn softmax_and_rms_norm_along_axes() {
    let mut r = rng(4);
    for (s, axis) in [
        (&[4, 33][..], -1i64),
        (&[2, 5, 7], 1),
        (&[3, 128], 0),
        (&[64, 2048], -1),
    ] {
        let x = randn(&mut r, s);
        let xs = x.f();
        let a = if axis < 0 {
            (axis + s.len() as i64) as usize
        } else {
            axis as usize
        };
        let (_, got) = run_op(
            OpKind::Softmax,
            std::slice::from_ref(&x),
            attrs([("axis", Attr::Int(axis))]),
        );
        let mut want = vec![0f64; xs.len()];
        for g in axis_groups(s, a) {
            let m = g.iter().map(|i| xs[*i]).fold(f64::MIN, f64::max);
            let z: f64 = g.iter().map(|i| (xs[*i] - m).exp()).sum();
            for i in &g {
                want[*i] = (xs[*i] - m).exp() / z;
            }
        }
        assert_close(&got, &want, REL, "softmax");

        let w = randn(&mut r, &[s[a]]);
        let wv = w.f();
        let eps = 1e-6;
        let (_, got) = run_op(
            OpKind::RmsNorm,
            &[x.clone(), w],
            attrs([("axis", Attr::Int(axis)), ("epsilon", Attr::Float(eps))]),
        );
        for g in axis_groups(s, a) {
            let ms: f64 = g.iter().map(|i| xs[*i] * xs[*i]).sum::<f64>() / g.len() as f64;
            for (j, i) in g.iter().enumerate() {
                want[*i] = xs[*i] / (ms + eps).sqrt() * wv[j];
            }
        }
        assert_close(&got, &want, REL, "rms_norm");
    }
}

#[test]
fn rope_with_broadcast_tables() {
    let mut r = rng(5);
    for (xs, ts) in [
        (&[1, 4, 6, 16][..], &[6, 16][..]),
        (&[2, 3, 5, 8], &[1, 1, 5, 8]),
        (&[3, 4], &[4]),
    ] {
        let (x, c, s) = (randn(&mut r, xs), randn(&mut r, ts), randn(&mut r, ts));
        let (_, got) = run_op(
            OpKind::Rope,
            &[x.clone(), c.clone(), s.clone()],
            Attrs::new(),
        );
        let (xv, cv, sv) = (x.f(), c.f(), s.f());
        let d = *xs.last().unwrap();
        let want: Vec<f64> = (0..numel(xs))
            .map(|i| {
                let idx = unravel(i, xs);
                let j = idx[idx.len() - 1];
                let row = i - j;
                let rot = if j < d / 2 {
                    -xv[row + j + d / 2]
                } else {
                    xv[row + j - d / 2]
                };
                xv[i] * cv[bidx(&idx, ts)] + rot * sv[bidx(&idx, ts)]
            })
            .collect();
        assert_close(&got, &want, REL, "rope");
    }
}

fn naive_matmul(a: &In, b: &In, ta: bool, tb: bool) -> (Vec<usize>, Vec<f64>) {
    let (sa, sb) = (a.shape(), b.shape());
    let (ra, rb) = (sa.len(), sb.len());
    let (m, k) = if ta {
        (sa[ra - 1], sa[ra - 2])
    } else {
        (sa[ra - 2], sa[ra - 1])
    };
    let n = if tb { sb[rb - 2] } else { sb[rb - 1] };
    let mut out = bcast_shape(&sa[..ra - 2], &sb[..rb - 2]);
    out.push(m);
    out.push(n);
    let (av, bv) = (a.f(), b.f());
    let want = (0..numel(&out))
        .map(|o| {
            let idx = unravel(o, &out);
            let r = idx.len();
            let (i, j) = (idx[r - 2], idx[r - 1]);
            let mut s = 0f64;
            for kk in 0..k {
                let mut ia = idx.clone();
                ia.truncate(r - 2);
                let mut ib = ia.clone();
                if ta {
                    ia.extend([kk, i]);
                } else {
                    ia.extend([i, kk]);
                }
                if tb {
                    ib.extend([j, kk]);
                } else {
                    ib.extend([kk, j]);
                }
                s += av[bidx(&ia, sa)] * bv[bidx(&ib, sb)];
            }
            s
        })
        .collect();
    (out, want)
}

#[test]
fn batched_matmul_with_broadcast_and_transposes() {
    let mut r = rng(6);
    let cases: &[(&[usize], &[usize], bool, bool)] = &[
        (&[5, 7], &[7, 3], false, false),
        (&[130, 300], &[300, 70], false, false),
        (&[2, 3, 5, 7], &[7, 4], false, false),
        (&[2, 1, 5, 7], &[1, 3, 7, 4], false, false),
        (&[4, 9, 16], &[4, 33, 16], false, true),
        (&[3, 16, 9], &[3, 16, 20], true, false),
        (&[1, 16, 1, 64], &[1, 16, 64, 100], false, false),
        (&[2, 6, 17, 8], &[2, 6, 19, 17], true, true),
        // q x k^T with the key cache in row layout (decode: G*S = 2 rows, W = 70 keys).
        (&[1, 4, 2, 128], &[1, 4, 70, 128], false, true),
    ];
    for (sa, sb, ta, tb) in cases {
        let (a, b) = (randn(&mut r, sa), randn(&mut r, sb));
        let at = attrs([
            ("transpose_a", Attr::Bool(*ta)),
            ("transpose_b", Attr::Bool(*tb)),
        ]);
        let (shape, got) = run_op(OpKind::MatMul, &[a.clone(), b.clone()], at);
        let (ws, want) = naive_matmul(&a, &b, *ta, *tb);
        assert_eq!(shape, ws);
        assert_close(&got, &want, REL, &format!("matmul {sa:?} {sb:?} {ta} {tb}"));
    }
}

fn naive_linear(x: &In, w: &[f64], n: usize, bias: Option<&[f64]>) -> Vec<f64> {
    let xs = x.f();
    let k = *x.shape().last().unwrap();
    let m = xs.len() / k;
    let mut out = vec![0f64; m * n];
    for i in 0..m {
        for j in 0..n {
            let s: f64 = (0..k).map(|kk| xs[i * k + kk] * w[j * k + kk]).sum();
            out[i * n + j] = s + bias.map_or(0.0, |b| b[j]);
        }
    }
    out
}

#[test]
fn linear_with_stored_weights_bias_and_activation_weights() {
    let mut r = rng(7);
    for (xs, n) in [
        (&[1, 1, 64][..], 48),
        (&[2, 7, 96], 37),
        (&[1, 128, 256], 300),
        (&[1, 200], 1),
    ] {
        let k = *xs.last().unwrap();
        let x = randn(&mut r, xs);
        let wv = randn(&mut r, &[n, k]);
        let bv = randn(&mut r, &[n]);
        let In::F(_, wdata) = &wv else { unreachable!() };
        // Weight stored as bf16 bytes with an f32 IR type: the executor must widen it.
        let bf: Vec<u8> = wdata
            .iter()
            .flat_map(|v| half::bf16::from_f32(*v).to_le_bytes())
            .collect();
        let wq: Vec<f64> = wdata
            .iter()
            .map(|v| half::bf16::from_f32(*v).to_f64())
            .collect();
        let mut f = Function::new("lin");
        let xa = f.add_arg(Type::tensor(xs.to_vec(), ElemType::F32), Some("x"));
        let ba = f.add_arg(Type::tensor(vec![n], ElemType::F32), Some("bias"));
        let wa = f.add_arg(Type::tensor(vec![n, k], ElemType::F32), Some("wact"));
        let mut b = f.builder();
        let w = b.weight("w", Type::tensor(vec![n, k], ElemType::F32));
        let y1 = b.op(OpKind::Linear, &[xa, w, ba], Attrs::new()).unwrap();
        let y2 = b.op(OpKind::Linear, &[xa, wa], Attrs::new()).unwrap();
        b.ret(&[y1, y2]);
        f.result_names = vec![Some("y1".into()), Some("y2".into())];
        let mut m = mllm_ir::Module::new();
        m.functions.push(f);
        m.weights
            .insert("w", Weight::owned(WDType::BF16, vec![n, k], bf).unwrap());
        mllm_ir::verify::verify_module(&m).unwrap();
        let outs = run_module(
            &m,
            0,
            &[x.clone(), bv.clone(), wv.clone()],
            NumericMode::Float,
        )
        .unwrap();
        assert_close(
            &outs[0],
            &naive_linear(&x, &wq, n, Some(&bv.f())),
            REL,
            "linear (stored bf16 weight + bias)",
        );
        assert_close(
            &outs[1],
            &naive_linear(&x, &wv.f(), n, None),
            REL,
            "linear (activation weight)",
        );
    }
}

fn naive_conv(
    x: &In,
    w: &In,
    b: Option<&In>,
    stride: [usize; 2],
    pad: [usize; 4],
    dil: [usize; 2],
) -> (Vec<usize>, Vec<f64>) {
    let (xs, ws) = (x.shape(), w.shape());
    let (nb, h, wd, ci) = (xs[0], xs[1], xs[2], xs[3]);
    let (kh, kw, co) = (ws[0], ws[1], ws[3]);
    let oh = (h + pad[0] + pad[1] - ((kh - 1) * dil[0] + 1)) / stride[0] + 1;
    let ow = (wd + pad[2] + pad[3] - ((kw - 1) * dil[1] + 1)) / stride[1] + 1;
    let (xv, wv) = (x.f(), w.f());
    let bv = b.map(|b| b.f());
    let mut out = vec![0f64; nb * oh * ow * co];
    for n in 0..nb {
        for oy in 0..oh {
            for ox in 0..ow {
                for o in 0..co {
                    let mut s = bv.as_ref().map_or(0.0, |b| b[o]);
                    for ky in 0..kh {
                        for kx in 0..kw {
                            let iy = (oy * stride[0] + ky * dil[0]) as i64 - pad[0] as i64;
                            let ix = (ox * stride[1] + kx * dil[1]) as i64 - pad[2] as i64;
                            if iy < 0 || ix < 0 || iy >= h as i64 || ix >= wd as i64 {
                                continue;
                            }
                            for c in 0..ci {
                                s += xv[((n * h + iy as usize) * wd + ix as usize) * ci + c]
                                    * wv[((ky * kw + kx) * ci + c) * co + o];
                            }
                        }
                    }
                    out[((n * oh + oy) * ow + ox) * co + o] = s;
                }
            }
        }
    }
    (vec![nb, oh, ow, co], out)
}

#[test]
fn conv2d_1x1_and_general() {
    let mut r = rng(8);
    let cases: &[(&[usize], &[usize], [usize; 2], [usize; 4], [usize; 2])] = &[
        (
            &[1, 1, 5, 64],
            &[1, 1, 64, 40],
            [1, 1],
            [0, 0, 0, 0],
            [1, 1],
        ),
        (&[2, 3, 4, 17], &[1, 1, 17, 9], [1, 1], [0, 0, 0, 0], [1, 1]),
        (&[1, 7, 6, 3], &[3, 3, 3, 5], [1, 1], [1, 1, 1, 1], [1, 1]),
        (&[2, 9, 8, 4], &[3, 2, 4, 6], [2, 1], [0, 1, 2, 0], [1, 2]),
    ];
    for (xs, ws, st, pad, dil) in cases {
        let (x, w) = (randn(&mut r, xs), randn(&mut r, ws));
        let b = randn(&mut r, &[ws[3]]);
        let at = attrs([
            ("stride", Attr::Ints(st.iter().map(|v| *v as i64).collect())),
            ("pad", Attr::Ints(pad.iter().map(|v| *v as i64).collect())),
            (
                "dilation",
                Attr::Ints(dil.iter().map(|v| *v as i64).collect()),
            ),
        ]);
        let (shape, got) = run_op(OpKind::Conv2d, &[x.clone(), w.clone(), b.clone()], at);
        let (ws2, want) = naive_conv(&x, &w, Some(&b), *st, *pad, *dil);
        assert_eq!(shape, ws2);
        assert_close(&got, &want, REL, &format!("conv2d {xs:?} {ws:?}"));
    }
}

#[test]
fn data_movement_ops() {
    let mut r = rng(9);
    // transpose
    for (s, perm) in [
        (&[2, 3, 4][..], &[2, 0, 1][..]),
        (&[1, 8, 16, 32], &[0, 1, 3, 2]),
        (&[5, 6], &[1, 0]),
    ] {
        let x = randn(&mut r, s);
        let (shape, got) = run_op(
            OpKind::Transpose,
            std::slice::from_ref(&x),
            attrs([("perm", Attr::Ints(perm.to_vec()))]),
        );
        let xv = x.f();
        let want: Vec<f64> = (0..numel(&shape))
            .map(|i| {
                let oi = unravel(i, &shape);
                let mut ii = vec![0; s.len()];
                for (d, p) in perm.iter().enumerate() {
                    ii[*p as usize] = oi[d];
                }
                xv[ravel(&ii, s)]
            })
            .collect();
        assert_close(&got, &want, 0.0, "transpose");
    }
    // slice with steps
    let x = randn(&mut r, &[4, 9, 10]);
    let (shape, got) = run_op(
        OpKind::Slice,
        std::slice::from_ref(&x),
        attrs([
            ("starts", Attr::Ints(vec![1, 0, 3])),
            ("ends", Attr::Ints(vec![4, 9, 10])),
            ("steps", Attr::Ints(vec![2, 3, 1])),
        ]),
    );
    assert_eq!(shape, vec![2, 3, 7]);
    let xv = x.f();
    let want: Vec<f64> = (0..numel(&shape))
        .map(|i| {
            let o = unravel(i, &shape);
            xv[ravel(&[1 + 2 * o[0], 3 * o[1], 3 + o[2]], &[4, 9, 10])]
        })
        .collect();
    assert_close(&got, &want, 0.0, "slice");
    // concat along the middle axis
    let (a, b, c) = (
        randn(&mut r, &[2, 3, 4]),
        randn(&mut r, &[2, 1, 4]),
        randn(&mut r, &[2, 5, 4]),
    );
    let (shape, got) = run_op(
        OpKind::Concat,
        &[a.clone(), b.clone(), c.clone()],
        attrs([("axis", Attr::Int(1))]),
    );
    assert_eq!(shape, vec![2, 9, 4]);
    let want: Vec<f64> = (0..numel(&shape))
        .map(|i| {
            let o = unravel(i, &shape);
            let (src, j) = if o[1] < 3 {
                (&a, o[1])
            } else if o[1] < 4 {
                (&b, o[1] - 3)
            } else {
                (&c, o[1] - 4)
            };
            src.f()[ravel(&[o[0], j, o[2]], src.shape())]
        })
        .collect();
    assert_close(&got, &want, 0.0, "concat");
    // gather along axis 1 with 2-d indices
    let x = randn(&mut r, &[3, 5, 4]);
    let idx = In::I(vec![2, 2], vec![4, 0, 2, 4]);
    let (shape, got) = run_op(
        OpKind::Gather,
        &[x.clone(), idx],
        attrs([("axis", Attr::Int(1))]),
    );
    assert_eq!(shape, vec![3, 2, 2, 4]);
    let ids = [4, 0, 2, 4];
    let xv = x.f();
    let want: Vec<f64> = (0..numel(&shape))
        .map(|i| {
            let o = unravel(i, &shape);
            xv[ravel(&[o[0], ids[o[1] * 2 + o[2]], o[3]], &[3, 5, 4])]
        })
        .collect();
    assert_close(&got, &want, 0.0, "gather");
    // repeat-interleave
    let x = randn(&mut r, &[2, 3, 4]);
    let (shape, got) = run_op(
        OpKind::Repeat,
        std::slice::from_ref(&x),
        attrs([("axis", Attr::Int(1)), ("times", Attr::Int(3))]),
    );
    assert_eq!(shape, vec![2, 9, 4]);
    let xv = x.f();
    let want: Vec<f64> = (0..numel(&shape))
        .map(|i| {
            let o = unravel(i, &shape);
            xv[ravel(&[o[0], o[1] / 3, o[2]], &[2, 3, 4])]
        })
        .collect();
    assert_close(&got, &want, 0.0, "repeat");
    // reshape
    let x = randn(&mut r, &[2, 3, 4]);
    let (shape, got) = run_op(
        OpKind::Reshape,
        std::slice::from_ref(&x),
        attrs([("shape", Attr::Ints(vec![4, 6]))]),
    );
    assert_eq!(shape, vec![4, 6]);
    assert_close(&got, &x.f(), 0.0, "reshape");
    // embedding
    let table = randn(&mut r, &[10, 6]);
    let ids = In::I(vec![1, 3], vec![9, 0, 9]);
    let (shape, got) = run_op(OpKind::Embedding, &[ids, table.clone()], Attrs::new());
    assert_eq!(shape, vec![1, 3, 6]);
    let tv = table.f();
    let want: Vec<f64> = [9usize, 0, 9]
        .iter()
        .flat_map(|r| tv[r * 6..r * 6 + 6].to_vec())
        .collect();
    assert_close(&got, &want, 0.0, "embedding");
}

#[test]
fn reduce_min_and_cast() {
    let mut r = rng(10);
    for (s, axes, keep) in [
        (&[3, 4, 5][..], &[-1i64][..], true),
        (&[3, 4, 5], &[1], true),
        (&[3, 4, 5], &[0, 2], false),
        (&[2, 64, 300], &[1, 2], true),
    ] {
        let x = randn(&mut r, s);
        let (shape, got) = run_op(
            OpKind::ReduceMin,
            std::slice::from_ref(&x),
            attrs([
                ("axes", Attr::Ints(axes.to_vec())),
                ("keepdims", Attr::Bool(keep)),
            ]),
        );
        let red: Vec<usize> = axes
            .iter()
            .map(|a| {
                if *a < 0 {
                    (*a + s.len() as i64) as usize
                } else {
                    *a as usize
                }
            })
            .collect();
        let keep_shape: Vec<usize> = s
            .iter()
            .enumerate()
            .map(|(d, n)| if red.contains(&d) { 1 } else { *n })
            .collect();
        let mut want = vec![f64::INFINITY; numel(&keep_shape)];
        let xv = x.f();
        for (i, v) in xv.iter().enumerate() {
            let mut idx = unravel(i, s);
            for d in &red {
                idx[*d] = 0;
            }
            let o = ravel(&idx, &keep_shape);
            want[o] = want[o].min(*v);
        }
        assert_eq!(numel(&shape), want.len());
        assert_close(&got, &want, 0.0, "reduce_min");
    }
    // i32 -> f32 cast
    let mut f = Function::new("cast");
    let a = f.add_arg(Type::tensor(vec![4], ElemType::I32), Some("a"));
    let mut b = f.builder();
    let y = b.convert(OpKind::Cast, a, Type::tensor(vec![4], ElemType::F32));
    b.ret(&[y]);
    f.result_names = vec![Some("y".into())];
    let out = run_function(
        f,
        &[In::I(vec![4], vec![-3, 0, 7, 100000])],
        NumericMode::Float,
    )
    .unwrap();
    assert_eq!(out[0], vec![-3.0, 0.0, 7.0, 100000.0]);
}

#[test]
fn out_of_range_indices_are_errors_not_panics() {
    let mut f = Function::new("emb");
    let ids = f.add_arg(Type::tensor(vec![1, 2], ElemType::I32), Some("ids"));
    let t = f.add_arg(Type::tensor(vec![4, 3], ElemType::F32), Some("table"));
    let mut b = f.builder();
    let y = b.op(OpKind::Embedding, &[ids, t], Attrs::new()).unwrap();
    b.ret(&[y]);
    f.result_names = vec![Some("y".into())];
    let table = In::F(vec![4, 3], vec![0.0; 12]);
    let e = run_function(
        f.clone(),
        &[In::I(vec![1, 2], vec![1, 4]), table.clone()],
        NumericMode::Float,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("nn.embedding") && e.contains("out of range"),
        "{e}"
    );
    let e = run_function(
        f,
        &[In::I(vec![1, 2], vec![-1, 0]), table],
        NumericMode::Float,
    )
    .unwrap_err();
    assert!(e.to_string().contains("out of range"));
}
