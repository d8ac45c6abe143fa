//! `split-graph{shards=k}`: splits every whole-model graph `model.0.s{N}` into `k` shard
//! graphs `model.{i}.s{N}` holding contiguous, even layer ranges (earlier shards take the
//! remainder, as `mllm_frontends::qwen3::shard_layers`), so that each shard can go into
//! its own QNN context (mllm's `split_graph`; needed above the ~4 GB per-context limit).
//!
//! Contract (the runtime's `GraphBindings::resolve` reads the same names):
//! - shard 0 takes the original token input (`sequence`); every later shard takes
//!   `hidden_states`, the residual stream after the last layer of the previous shard
//!   (the result of the op named `model.layers.{l}.mlp_residual`), with exactly that
//!   value's type, so no requantization happens at a cut;
//! - every shard takes `position_ids`, `causal_mask` and `past_key_{l}` /
//!   `past_value_{l}` of its own layers (global layer indices), in the original order;
//! - the last shard returns the original first output (`logits`), the others
//!   `hidden_states`, except a middle shard (k >= 3), which already takes an input of
//!   that name and QNN needs distinct tensor names: it returns `hidden_states_out`
//!   ([`HIDDEN_STATES_OUT`]); each shard returns `present_key_{l}` / `present_value_{l}`
//!   of its layers, in the original order;
//! - a shard holds exactly the ops its outputs need (a backward slice that stops at the
//!   cut), so ops shared by every layer (RoPE gathers, the mask compare) are duplicated
//!   into each shard; program order and op names are kept. Function attributes are
//!   copied, with `shard` and `layers` (`[start, end]`) updated.
//!
//! The pass is exact: running the shards in a chain computes bit-identical values to the
//! unsplit graph (checked numerically by the backend's tests). A slice that reaches a
//! graph input the shard does not own (e.g. another shard's KV cache) is an error naming
//! the input. `shards=1` (the default) leaves the module unchanged; functions that are
//! already sharded (`model.{i}.s{N}` with i > 0) are an error.

use std::collections::HashMap;

use mllm_ir::{Attr, Function, Module, OpKind, ValueDef, ValueId};

use crate::pass::{Anchor, Pass, PassError, PassResult, PassStats};
use crate::registry::{OptKind, OptSpec, Options, PassInfo};

/// Name of the tensor passed between shards (graph output of shard i, input of shard i+1).
pub const HIDDEN_STATES: &str = "hidden_states";
/// Name of the hidden-state output of a middle shard (one that also takes
/// [`HIDDEN_STATES`] as input: graph tensor names must be unique).
pub const HIDDEN_STATES_OUT: &str = "hidden_states_out";

/// The pass.
pub struct SplitGraph {
    /// Number of shards.
    pub shards: usize,
}

/// Registry entry.
pub const INFO: PassInfo = PassInfo {
    name: "split-graph",
    summary:
        "Split each model.0.s{N} graph into k shard graphs model.{i}.s{N} over even layer ranges",
    anchor: Anchor::Module,
    options: &[OptSpec {
        name: "shards",
        kind: OptKind::UInt,
        default: "1",
        help: "number of shards (contexts); 1 leaves the module unchanged",
    }],
    create: |o: &Options| {
        Ok(Box::new(SplitGraph {
            shards: o.usize("shards"),
        }))
    },
};

fn fail(msg: String) -> PassError {
    PassError::Failed {
        pass: "split-graph".into(),
        message: msg,
    }
}

/// Layer ranges of `shards` even shards of `layers` layers (earlier shards take the
/// remainder).
pub fn layer_ranges(layers: usize, shards: usize) -> Vec<std::ops::Range<usize>> {
    let n = shards.max(1);
    let (base, rem) = (layers / n, layers % n);
    let mut start = 0;
    (0..n)
        .map(|i| {
            let len = base + usize::from(i < rem);
            let r = start..start + len;
            start += len;
            r
        })
        .collect()
}

/// `(shard, N)` of a graph named `model.{shard}.s{N}`.
fn parse_name(name: &str) -> Option<(usize, usize)> {
    let rest = name.strip_prefix("model.")?;
    let (i, s) = rest.split_once(".s")?;
    let digits = |x: &str| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit());
    if !digits(i) || !digits(s) {
        return None;
    }
    Some((i.parse().ok()?, s.parse().ok()?))
}

/// The layer of a KV-cache tensor name (`past_key_3` -> 3).
fn kv_layer(name: &str) -> Option<usize> {
    ["past_key_", "past_value_", "present_key_", "present_value_"]
        .iter()
        .find_map(|p| {
            let rest = name.strip_prefix(p)?;
            if rest.is_empty() || !rest.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            rest.parse().ok()
        })
}

/// The token input of shard 0 (replaced by `hidden_states` in later shards).
fn is_token_input(name: &str) -> bool {
    matches!(name, "sequence" | "tokens" | "input_ids")
}

/// Splits one function into `shards` functions (see the module docs).
pub fn split_function(f: &Function, shards: usize) -> Result<Vec<Function>, PassError> {
    let (shard0, n) = parse_name(&f.name).ok_or_else(|| {
        fail(format!(
            "function '{}' is not named model.0.s{{N}}: split-graph splits whole-model graphs",
            f.name
        ))
    })?;
    if shard0 != 0 {
        return Err(fail(format!(
            "function '{}' is already a shard (model.{{i}}.s{{N}} with i > 0)",
            f.name
        )));
    }
    let arg_name = |i: usize| f.arg_names.get(i).cloned().flatten().unwrap_or_default();
    let res_name = |i: usize| f.result_names.get(i).cloned().flatten().unwrap_or_default();
    let layers = (0..f.args().len())
        .filter_map(|i| {
            let n = arg_name(i);
            n.starts_with("past_key_").then(|| kv_layer(&n)).flatten()
        })
        .max()
        .map_or(0, |l| l + 1);
    if layers == 0 {
        return Err(fail(format!(
            "function '{}' has no past_key_{{l}} inputs: cannot tell its layers",
            f.name
        )));
    }
    if shards == 0 || shards > layers {
        return Err(fail(format!(
            "shards={shards} must be between 1 and the number of layers ({layers}) of '{}'",
            f.name
        )));
    }
    let ret = f.returned().to_vec();
    if ret.is_empty() {
        return Err(fail(format!("function '{}' returns nothing", f.name)));
    }
    // The residual stream after each layer, by op name.
    let mut residual: HashMap<String, ValueId> = HashMap::new();
    for op in f.op_ids() {
        let o = f.op(op);
        if let (Some(name), Some(r)) = (&o.name, o.results.first()) {
            if name.ends_with(".mlp_residual") && residual.insert(name.clone(), *r).is_some() {
                return Err(fail(format!(
                    "function '{}' has two ops named '{name}': the layer boundary is ambiguous",
                    f.name
                )));
            }
        }
    }
    let ranges = layer_ranges(layers, shards);
    let mut cuts: Vec<ValueId> = Vec::new();
    for r in &ranges[..ranges.len() - 1] {
        let name = format!("model.layers.{}.mlp_residual", r.end - 1);
        let v = residual.get(&name).ok_or_else(|| {
            fail(format!(
                "function '{}' has no op named '{name}' (the end of layer {}, where shard {} would start)",
                f.name,
                r.end - 1,
                cuts.len() + 1
            ))
        })?;
        cuts.push(*v);
    }
    let mut out = Vec::with_capacity(shards);
    for (i, range) in ranges.iter().enumerate() {
        let first = i == 0;
        let last = i + 1 == shards;
        let mut g = Function::new(format!("model.{i}.s{n}"));
        g.attrs = f.attrs.clone();
        g.attrs.insert("shard".into(), Attr::Int(i as i64));
        g.attrs.insert(
            "layers".into(),
            Attr::Ints(vec![range.start as i64, range.end as i64]),
        );
        let mut map: HashMap<ValueId, ValueId> = HashMap::new();
        // Inputs.
        for (ai, a) in f.args().iter().enumerate() {
            let name = arg_name(ai);
            if let Some(l) = kv_layer(&name) {
                if range.contains(&l) {
                    let na = g.add_arg(f.ty(*a).clone(), Some(&name));
                    map.insert(*a, na);
                }
            } else if is_token_input(&name) || ai == 0 {
                if first {
                    let na = g.add_arg(f.ty(*a).clone(), Some(&name));
                    map.insert(*a, na);
                } else {
                    let cut = cuts[i - 1];
                    let na = g.add_arg(f.ty(cut).clone(), Some(HIDDEN_STATES));
                    map.insert(cut, na);
                }
            } else {
                let na = g.add_arg(f.ty(*a).clone(), Some(&name));
                map.insert(*a, na);
            }
        }
        // Outputs.
        let mut outs: Vec<(ValueId, String)> = Vec::new();
        for (ri, v) in ret.iter().enumerate() {
            let name = res_name(ri);
            match kv_layer(&name) {
                Some(l) if range.contains(&l) => outs.push((*v, name)),
                Some(_) => {}
                None if ri == 0 => {
                    if last {
                        outs.push((*v, name));
                    } else if first {
                        outs.push((cuts[i], HIDDEN_STATES.to_string()));
                    } else {
                        outs.push((cuts[i], HIDDEN_STATES_OUT.to_string()));
                    }
                }
                None => {
                    return Err(fail(format!(
                        "function '{}': output {ri} ('{name}') is neither the first output nor a KV-cache output; cannot assign it to a shard",
                        f.name
                    )))
                }
            }
        }
        // Backward slice from the outputs, stopping at mapped values (inputs of the shard).
        let mut needed = vec![false; f.ops.len()];
        let mut stack: Vec<ValueId> = outs.iter().map(|(v, _)| *v).collect();
        let mut seen = vec![false; f.values.len()];
        while let Some(v) = stack.pop() {
            if std::mem::replace(&mut seen[v.index()], true) || map.contains_key(&v) {
                continue;
            }
            match f.values[v].def {
                ValueDef::OpResult(op, _) => {
                    if !needed[op.index()] {
                        needed[op.index()] = true;
                        stack.extend(f.op(op).operands.iter().copied());
                    }
                }
                ValueDef::BlockArg(_, ai) => {
                    return Err(fail(format!(
                        "shard {i} of '{}' (layers {}..{}) needs input '{}', which it does not own",
                        f.name,
                        range.start,
                        range.end,
                        arg_name(ai as usize)
                    )));
                }
            }
        }
        let entry = g.entry();
        for op in f.op_ids() {
            if !needed[op.index()] {
                continue;
            }
            let o = f.op(op);
            if o.kind == OpKind::Return {
                continue;
            }
            let operands: Vec<ValueId> = o
                .operands
                .iter()
                .map(|v| map.get(v).copied().unwrap_or(*v))
                .collect();
            let tys: Vec<_> = o.results.iter().map(|r| f.ty(*r).clone()).collect();
            let nop = g.create_op(o.kind, &operands, &tys, o.attrs.clone());
            g.ops[nop].name = o.name.clone();
            g.ops[nop].src = o.src.clone();
            for (r, nr) in o.results.iter().zip(g.ops[nop].results.clone()) {
                map.insert(*r, nr);
            }
            g.append(entry, nop);
        }
        let rv: Vec<ValueId> = outs
            .iter()
            .map(|(v, _)| {
                map.get(v).copied().ok_or_else(|| {
                    fail(format!(
                        "shard {i} of '{}': output value has no definition in the shard",
                        f.name
                    ))
                })
            })
            .collect::<Result<_, _>>()?;
        g.builder().ret(&rv);
        g.result_names = outs.into_iter().map(|(_, n)| Some(n)).collect();
        out.push(g);
    }
    Ok(out)
}

impl Pass for SplitGraph {
    fn name(&self) -> &'static str {
        "split-graph"
    }
    fn anchor(&self) -> Anchor {
        Anchor::Module
    }
    fn run_on_module(
        &mut self,
        m: &mut Module,
        stats: &mut PassStats,
    ) -> Result<PassResult, PassError> {
        if self.shards <= 1 {
            return Ok(PassResult::Unchanged);
        }
        let mut per_shard: Vec<Vec<Function>> = vec![Vec::new(); self.shards];
        for f in &m.functions {
            for (i, g) in split_function(f, self.shards)?.into_iter().enumerate() {
                per_shard[i].push(g);
            }
        }
        // Shard-major order: model.0.s32, model.0.s1, model.1.s32, model.1.s1, ...
        m.functions = per_shard.into_iter().flatten().collect();
        stats.record("shards", self.shards);
        stats.record("functions", m.functions.len());
        Ok(PassResult::Changed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mllm_ir::{ElemType, Type};

    fn t(shape: &[usize]) -> Type {
        Type::tensor(shape.to_vec(), ElemType::F32)
    }

    /// A toy 3-layer "model": x = embed(sequence); per layer l:
    /// x = (x + past_key_l) named model.layers.l.mlp_residual, present_key_l = x * pos.
    fn toy(s: usize) -> Function {
        let mut f = Function::new(format!("model.0.s{s}"));
        f.attrs.insert("ar_len".into(), Attr::Int(s as i64));
        let seq = f.add_arg(t(&[1, s]), Some("sequence"));
        let pos = f.add_arg(t(&[1, s]), Some("position_ids"));
        let pk: Vec<ValueId> = (0..3)
            .map(|l| f.add_arg(t(&[1, s]), Some(&format!("past_key_{l}"))))
            .collect();
        let mut b = f.builder();
        let mut x = b.unary(OpKind::Neg, seq).unwrap();
        let mut present = Vec::new();
        for (l, p) in pk.iter().enumerate() {
            x = b.binary(OpKind::Add, x, *p).unwrap();
            let op = b.func.def_op(x).unwrap();
            b.func.op_mut(op).name = Some(format!("model.layers.{l}.mlp_residual"));
            present.push(b.binary(OpKind::Mul, x, pos).unwrap());
        }
        let logits = b.unary(OpKind::Neg, x).unwrap();
        let mut outs = vec![logits];
        outs.extend(present);
        b.ret(&outs);
        f.result_names = std::iter::once("logits".to_string())
            .chain((0..3).map(|l| format!("present_key_{l}")))
            .map(Some)
            .collect();
        f
    }

    fn names(v: &[Option<String>]) -> Vec<String> {
        v.iter().map(|n| n.clone().unwrap_or_default()).collect()
    }

    #[test]
    fn splits_into_a_chain_with_owned_inputs() {
        let mut m = Module::new();
        m.functions.push(toy(4));
        m.functions.push(toy(1));
        let mut p = SplitGraph { shards: 2 };
        let r = p.run_on_module(&mut m, &mut PassStats::default()).unwrap();
        assert_eq!(r, PassResult::Changed);
        let fnames: Vec<&str> = m.functions.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            fnames,
            ["model.0.s4", "model.0.s1", "model.1.s4", "model.1.s1"]
        );
        mllm_ir::verify::verify_module(&m).unwrap();
        let s0 = &m.functions[0];
        let s1 = &m.functions[2];
        // Layers 0..2 in shard 0 (earlier shards take the remainder), 2..3 in shard 1.
        assert_eq!(
            names(&s0.arg_names),
            ["sequence", "position_ids", "past_key_0", "past_key_1"]
        );
        assert_eq!(
            names(&s0.result_names),
            ["hidden_states", "present_key_0", "present_key_1"]
        );
        assert_eq!(
            names(&s1.arg_names),
            ["hidden_states", "position_ids", "past_key_2"]
        );
        assert_eq!(names(&s1.result_names), ["logits", "present_key_2"]);
        use mllm_ir::AttrsExt;
        assert_eq!(s1.attrs.ints("layers"), Some(&[2i64, 3][..]));
        assert_eq!(s1.attrs.int("shard"), Some(1));
        // Shard 1 holds layer 2's add, its present mul and the final neg only.
        assert_eq!(s1.num_ops(), 4);
        // The boundary value has the type of the residual.
        assert_eq!(s1.ty(s1.args()[0]), s0.ty(s0.returned()[0]));
    }

    #[test]
    fn errors_name_the_problem() {
        let f = toy(4);
        let e = split_function(&f, 4).unwrap_err().to_string();
        assert!(e.contains("between 1 and the number of layers (3)"), "{e}");
        let mut g = toy(4);
        for op in g.op_ids() {
            if g.op(op).name.as_deref() == Some("model.layers.0.mlp_residual") {
                g.op_mut(op).name = None;
            }
        }
        let e = split_function(&g, 3).unwrap_err().to_string();
        assert!(e.contains("model.layers.0.mlp_residual"), "{e}");
        let mut h = toy(4);
        h.name = "model.1.s4".into();
        let e = split_function(&h, 2).unwrap_err().to_string();
        assert!(e.contains("already a shard"), "{e}");
        // A layer that reads another layer's cache cannot be cut there.
        let mut k = toy(4);
        let pk0 = k.args()[2];
        let last = k
            .op_ids()
            .into_iter()
            .find(|op| k.op(*op).name.as_deref() == Some("model.layers.2.mlp_residual"))
            .unwrap();
        k.op_mut(last).operands[1] = pk0;
        let e = split_function(&k, 2).unwrap_err().to_string();
        assert!(e.contains("needs input 'past_key_0'"), "{e}");
        // Three shards: the middle one's output has its own name.
        let parts = split_function(&toy(4), 3).unwrap();
        assert_eq!(
            names(&parts[1].arg_names),
            ["hidden_states", "position_ids", "past_key_1"]
        );
        assert_eq!(
            names(&parts[1].result_names),
            ["hidden_states_out", "present_key_1"]
        );
        assert_eq!(names(&parts[2].result_names), ["logits", "present_key_2"]);
        // One shard: unchanged.
        let mut m = Module::new();
        m.functions.push(toy(4));
        let r = SplitGraph { shards: 1 }
            .run_on_module(&mut m, &mut PassStats::default())
            .unwrap();
        assert_eq!(r, PassResult::Unchanged);
    }
}
