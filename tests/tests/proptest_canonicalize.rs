//! Property test of `canonicalize` on random data-movement chains: random shapes,
//! random sequences of reshape / transpose / slice / single-input concat (with
//! identity reshapes, inverse transposes and whole slices mixed in so the rules fire),
//! some intermediate values also returned. After `canonicalize` the function must
//! verify, keep its signature, have no more ops than before, and compute exactly the
//! same values — checked with a small data-movement evaluator on iota inputs.

use std::collections::HashMap;

use mllm_ir::verify::verify_module;
use mllm_ir::{Attr, AttrsExt, ElemType, Function, Module, OpKind, Type, ValueId};
use mllm_passes::{PassManager, Registry};
use proptest::prelude::*;

/// splitmix64: a tiny deterministic generator driven by proptest-chosen seeds.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
}

fn prime_factors(mut n: usize) -> Vec<usize> {
    let mut out = Vec::new();
    let mut p = 2;
    while n > 1 {
        while n.is_multiple_of(p) {
            out.push(p);
            n /= p;
        }
        p += 1;
    }
    out
}

/// A random shape with `numel` elements, rank 1..=4, with some unit dims.
fn random_shape(numel: usize, rng: &mut Rng) -> Vec<usize> {
    let rank = 1 + rng.below(4);
    let mut dims = vec![1usize; rank];
    for p in prime_factors(numel) {
        let i = rng.below(rank);
        dims[i] *= p;
    }
    dims
}

/// Builds the function described by `init` and `steps`; returns it and the op count.
fn build(init: &[usize], steps: &[(u8, u64)]) -> Function {
    let mut f = Function::new("chain");
    let x = f.add_arg(Type::tensor(init.to_vec(), ElemType::F32), Some("x"));
    let mut cur = x;
    let mut history: Vec<Vec<usize>> = vec![init.to_vec()];
    let mut last_perm: Option<Vec<i64>> = None;
    let mut extra_results = Vec::new();
    {
        let mut b = f.builder();
        for (kind, seed) in steps {
            let mut rng = Rng(*seed);
            let shape = b.func.ty(cur).shape().to_vec();
            let numel: usize = shape.iter().product();
            let rank = shape.len();
            let next = match kind % 4 {
                0 => {
                    // Reshape: back to an earlier shape of the same size, to the same
                    // shape, or to a random one.
                    let earlier: Vec<&Vec<usize>> = history
                        .iter()
                        .filter(|s| s.iter().product::<usize>() == numel)
                        .collect();
                    let target = match rng.below(4) {
                        0 => earlier[rng.below(earlier.len())].clone(),
                        1 => shape.clone(),
                        _ => random_shape(numel, &mut rng),
                    };
                    last_perm = None;
                    b.reshape(cur, &target)
                }
                1 => {
                    // Transpose: the inverse of the previous one, the identity, or random.
                    let perm: Vec<i64> = match (&last_perm, rng.below(4)) {
                        (Some(p), 0) if p.len() == rank => {
                            let mut inv = vec![0i64; rank];
                            for (i, v) in p.iter().enumerate() {
                                inv[*v as usize] = i as i64;
                            }
                            inv
                        }
                        (_, 1) => (0..rank as i64).collect(),
                        _ => {
                            let mut p: Vec<i64> = (0..rank as i64).collect();
                            for i in (1..rank).rev() {
                                let j = rng.below(i + 1);
                                p.swap(i, j);
                            }
                            p
                        }
                    };
                    last_perm = Some(perm.clone());
                    b.transpose(cur, &perm)
                }
                2 => {
                    // Slice: sometimes the whole tensor, else random ranges and steps.
                    let whole = rng.chance(3);
                    let (mut starts, mut ends, mut steps) = (Vec::new(), Vec::new(), Vec::new());
                    for d in &shape {
                        if whole || rng.chance(2) {
                            starts.push(0);
                            ends.push(*d as i64);
                            steps.push(1);
                        } else {
                            let s = rng.below(*d);
                            let e = s + 1 + rng.below(*d - s);
                            starts.push(s as i64);
                            ends.push(e as i64);
                            steps.push(1 + rng.below(2) as i64);
                        }
                    }
                    let mut attrs = mllm_ir::attrs([
                        ("starts", Attr::Ints(starts)),
                        ("ends", Attr::Ints(ends)),
                    ]);
                    if !whole || rng.chance(2) {
                        attrs.insert("steps".into(), Attr::Ints(steps));
                    }
                    last_perm = None;
                    b.op(OpKind::Slice, &[cur], attrs)
                }
                _ => {
                    let axis = rng.below(rank) as i64;
                    b.concat(&[cur], axis)
                }
            }
            .expect("generated ops are valid");
            if rng.chance(5) {
                extra_results.push(next);
            }
            history.push(b.func.ty(next).shape().to_vec());
            cur = next;
        }
        let mut results = extra_results;
        results.push(cur);
        b.ret(&results);
    }
    let n = f.returned().len();
    f.result_names = vec![None; n];
    f
}

/// A dense tensor for the evaluator.
#[derive(Debug, Clone, PartialEq)]
struct Tensor {
    shape: Vec<usize>,
    data: Vec<f64>,
}

fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// Calls `f` with every multi-index of `shape` in row-major order.
fn for_each_index(shape: &[usize], mut f: impl FnMut(&[usize])) {
    let n: usize = shape.iter().product();
    let mut idx = vec![0usize; shape.len()];
    for _ in 0..n {
        f(&idx);
        for d in (0..shape.len()).rev() {
            idx[d] += 1;
            if idx[d] < shape[d] {
                break;
            }
            idx[d] = 0;
        }
    }
}

fn eval_op(kind: OpKind, attrs: &mllm_ir::Attrs, ins: &[&Tensor], out_shape: &[usize]) -> Tensor {
    let x = ins[0];
    let xs = strides(&x.shape);
    let mut data = Vec::with_capacity(out_shape.iter().product());
    match kind {
        OpKind::Reshape => data = x.data.clone(),
        OpKind::Transpose => {
            let perm = attrs.ints("perm").expect("perm");
            for_each_index(out_shape, |o| {
                let off: usize = o
                    .iter()
                    .enumerate()
                    .map(|(i, v)| v * xs[perm[i] as usize])
                    .sum();
                data.push(x.data[off]);
            });
        }
        OpKind::Slice => {
            let starts = attrs.ints("starts").expect("starts");
            let steps = attrs
                .ints("steps")
                .map(|s| s.to_vec())
                .unwrap_or(vec![1; x.shape.len()]);
            for_each_index(out_shape, |o| {
                let off: usize = o
                    .iter()
                    .enumerate()
                    .map(|(d, v)| (starts[d] as usize + v * steps[d] as usize) * xs[d])
                    .sum();
                data.push(x.data[off]);
            });
        }
        OpKind::Concat => {
            let axis = attrs.int("axis").expect("axis");
            let r = out_shape.len() as i64;
            let axis = ((axis + r) % r) as usize;
            for_each_index(out_shape, |o| {
                let mut at = o[axis];
                for t in ins {
                    if at < t.shape[axis] {
                        let ts = strides(&t.shape);
                        let off: usize = o
                            .iter()
                            .enumerate()
                            .map(|(d, v)| if d == axis { at * ts[d] } else { v * ts[d] })
                            .sum();
                        data.push(t.data[off]);
                        return;
                    }
                    at -= t.shape[axis];
                }
            });
        }
        other => panic!("the data-movement evaluator does not know {}", other.name()),
    }
    assert_eq!(data.len(), out_shape.iter().product::<usize>());
    Tensor {
        shape: out_shape.to_vec(),
        data,
    }
}

/// Evaluates the function on `arg` (its only argument); returns the returned tensors.
fn eval(f: &Function, arg: &Tensor) -> Vec<Tensor> {
    let mut env: HashMap<ValueId, Tensor> = HashMap::new();
    env.insert(f.args()[0], arg.clone());
    for op in f.op_ids() {
        let o = f.op(op);
        let ins: Vec<&Tensor> = o.operands.iter().map(|v| &env[v]).collect();
        if o.kind == OpKind::Return {
            return ins.into_iter().cloned().collect();
        }
        let out = eval_op(o.kind, &o.attrs, &ins, f.ty(o.results[0]).shape());
        env.insert(o.results[0], out);
    }
    panic!("no func.return");
}

fn canonicalize(f: &Function) -> Module {
    let mut m = Module::new();
    m.functions.push(f.clone());
    let mut pm = PassManager::parse(
        "builtin.module(func.func(canonicalize))",
        &Registry::with_all(),
    )
    .expect("pipeline parses");
    pm.run(&mut m, &mut []).expect("canonicalize succeeds");
    m
}

proptest! {
    // 256 cases by default; PROPTEST_CASES=N for a longer search.
    #![proptest_config(ProptestConfig::default())]

    #[test]
    fn canonicalize_keeps_values_of_data_movement_chains(
        init in prop::collection::vec(1usize..=4, 1..=4),
        steps in prop::collection::vec((any::<u8>(), any::<u64>()), 1..=10),
    ) {
        let f = build(&init, &steps);
        let mut before = Module::new();
        before.functions.push(f.clone());
        prop_assert!(verify_module(&before).is_ok(), "generated IR is invalid");
        let n: usize = init.iter().product();
        let arg = Tensor { shape: init.clone(), data: (0..n).map(|i| i as f64).collect() };
        let want = eval(&f, &arg);

        let m = canonicalize(&f);
        let g = &m.functions[0];
        let printed = mllm_ir::print::print_module(&m);
        prop_assert!(verify_module(&m).is_ok(), "canonicalized IR does not verify:\n{}", printed);
        prop_assert!(g.num_ops() <= f.num_ops(), "{} ops became {}:\n{}", f.num_ops(), g.num_ops(), printed);
        let ret_ty = |h: &Function| h.returned().iter().map(|v| h.ty(*v).clone()).collect::<Vec<Type>>();
        prop_assert_eq!(ret_ty(g), ret_ty(&f));
        prop_assert_eq!(g.ty(g.args()[0]), f.ty(f.args()[0]));
        let got = eval(g, &arg);
        prop_assert_eq!(got, want, "values changed:\n{}", printed);
    }
}

#[test]
fn evaluator_agrees_with_hand_computed_transpose_and_slice() {
    // [2,3] iota transposed is [[0,3],[1,4],[2,5]]; a stepped slice of [0..6).
    let x = Tensor {
        shape: vec![2, 3],
        data: (0..6).map(|i| i as f64).collect(),
    };
    let perm = mllm_ir::attrs([("perm", Attr::Ints(vec![1, 0]))]);
    let t = eval_op(OpKind::Transpose, &perm, &[&x], &[3, 2]);
    assert_eq!(t.data, [0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
    let s = mllm_ir::attrs([
        ("starts", Attr::Ints(vec![0, 1])),
        ("ends", Attr::Ints(vec![2, 3])),
        ("steps", Attr::Ints(vec![1, 2])),
    ]);
    let y = eval_op(OpKind::Slice, &s, &[&x], &[2, 1]);
    assert_eq!(y.data, [1.0, 4.0]);
    let c = mllm_ir::attrs([("axis", Attr::Int(-1))]);
    let z = eval_op(OpKind::Concat, &c, &[&x, &y], &[2, 4]);
    assert_eq!(z.data, [0.0, 1.0, 2.0, 1.0, 3.0, 4.0, 5.0, 4.0]);
}

#[test]
fn generator_exercises_the_rules() {
    // The property above is only meaningful if canonicalize often has work to do:
    // over a fixed set of generated chains, many must shrink and values must match.
    let mut rng = Rng(7);
    let (mut shrunk, mut to_empty, total) = (0, 0, 200);
    for _ in 0..total {
        let init: Vec<usize> = (0..1 + rng.below(4)).map(|_| 1 + rng.below(4)).collect();
        let steps: Vec<(u8, u64)> = (0..1 + rng.below(10))
            .map(|_| (rng.next() as u8, rng.next()))
            .collect();
        let f = build(&init, &steps);
        let m = canonicalize(&f);
        let g = &m.functions[0];
        if g.num_ops() < f.num_ops() {
            shrunk += 1;
        }
        if g.num_ops() == 1 {
            to_empty += 1;
        }
        let n: usize = init.iter().product();
        let arg = Tensor {
            shape: init.clone(),
            data: (0..n).map(|i| i as f64).collect(),
        };
        assert_eq!(eval(g, &arg), eval(&f, &arg));
    }
    assert!(
        shrunk * 4 >= total,
        "only {shrunk} of {total} chains shrank"
    );
    assert!(to_empty > 0, "no chain folded away completely");
    eprintln!("{shrunk} of {total} chains shrank, {to_empty} folded to the identity");
}
