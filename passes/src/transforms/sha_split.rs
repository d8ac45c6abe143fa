//! `sha-split`: multi-head attention -> single-head attention (SHA), on the e-graph
//! driver.
//!
//! Seeds: every reshape that merges heads (`[.., H, D] -> [.., H*D]`, H > 1; the
//! attention output before `o_proj`) and every returned `present_key_*` /
//! `present_value_*` (`[1, Hkv, ..]`) is unified with the concatenation of its
//! per-group slices (`heads` groups; default: one per head). The `slicing` rules then
//! pull each slice back through the attention: per-head q/k/v projections (weight rows
//! sliced on the output axis, their LPBQ block/channel scales or per-axis scales
//! sliced in step), per-head norm and RoPE, per-head QK^T, scale, mask, softmax and PV,
//! per-kv-head slices of the past K/V inputs. GQA falls out of slicing the grouped
//! reshape: query head h reads kv head h / (H / Hkv). Extraction minimises the critical path
//! and forbids batched matmuls (or, with `heads`, penalises them by batch size), so the
//! single-head form is chosen; `canonical` rules
//! clean up reshapes. Graph I/O is unchanged. With `q-only`, slices stop at the KV-cache
//! concatenations: K/V projections stay merged and each head reads a slice of its kv head.
//!
//! Contract: values are unchanged (slices and concatenations only regroup them); the
//! function's signature is unchanged; encodings are copied per head.

use egg::Id;
use mllm_ir::{Function, OpKind};

use crate::egraph::convert::to_egraph;
use crate::egraph::cost::CostModel;
use crate::egraph::rules::slicing::make_slice;
use crate::egraph::{
    add_build, rewrite_converted, rules, Build, EGraph, EGraphExt, Limits, Rule, LIMIT_OPTIONS,
};
use crate::pass::{Anchor, FuncContext, Pass, PassError, PassResult};
use crate::registry::{OptKind, OptSpec, Options, PassInfo};

/// The pass.
pub struct ShaSplit {
    limits: Limits,
    heads: usize,
    q_only: bool,
}

static OPTIONS: [OptSpec; 5] = [
    OptSpec {
        name: "heads",
        kind: OptKind::UInt,
        default: "0",
        help: "number of head groups to split into (0: one per head); must divide the head count",
    },
    OptSpec {
        name: "q-only",
        kind: OptKind::Bool,
        default: "false",
        help: "split only the query side: K/V projections and the cache concatenations stay merged (each head reads its kv head's slice)",
    },
    LIMIT_OPTIONS[0],
    LIMIT_OPTIONS[1],
    LIMIT_OPTIONS[2],
];

/// Registry entry.
pub const INFO: PassInfo = PassInfo {
    name: "sha-split",
    summary: "Split multi-head attention into single-head attention (e-graph rules `slicing` + `canonical`)",
    anchor: Anchor::Function,
    options: &OPTIONS,
    create: |o: &Options| {
        let mut limits = Limits::from_options(o);
        limits.iterations = limits.iterations.max(100);
        Ok(Box::new(ShaSplit {
            limits,
            heads: o.usize("heads"),
            q_only: o.bool("q-only"),
        }))
    },
};

/// Unifies `class` (of shape `[.., n, ..]` along `axis`) with the concatenation of
/// `groups` slices along `axis`.
pub fn seed_split(eg: &mut EGraph, class: Id, axis: usize, groups: usize) -> Result<bool, String> {
    let ty = eg.ty(class).clone();
    let n = ty.shape()[axis];
    if groups <= 1 || !n.is_multiple_of(groups) {
        return Ok(false);
    }
    let step = n / groups;
    let mut parts = Vec::new();
    for g in 0..groups {
        let mut b: Vec<(usize, usize)> = ty.shape().iter().map(|d| (0, *d)).collect();
        b[axis] = (g * step, (g + 1) * step);
        let (_, s) = make_slice(&ty, Build::Class(class), &b)
            .ok_or_else(|| format!("cannot slice {ty} along axis {axis}"))?;
        parts.push(s);
    }
    let attrs = mllm_ir::attrs([("axis", mllm_ir::Attr::Int(axis as i64))]);
    let cat = add_build(eg, &Build::op(OpKind::Concat, attrs, ty, parts));
    Ok(eg.union(class, cat))
}

impl Pass for ShaSplit {
    fn name(&self) -> &'static str {
        "sha-split"
    }
    fn anchor(&self) -> Anchor {
        Anchor::Function
    }
    fn run_on_function(
        &mut self,
        f: &mut Function,
        ctx: &mut FuncContext<'_>,
    ) -> Result<PassResult, PassError> {
        let mut conv = to_egraph(f);
        let fail = |message: String| PassError::Failed {
            pass: "sha-split".into(),
            message,
        };
        // Head-merging reshapes.
        let mut seeds: Vec<(Id, usize, usize)> = Vec::new();
        for class in conv.egraph.classes() {
            for node in class
                .nodes
                .iter()
                .filter(|n| n.kind() == Some(OpKind::Reshape))
            {
                let x = conv.egraph.ty(node.children[0]).shape().to_vec();
                let out = conv.egraph.ty(class.id).shape().to_vec();
                let r = x.len();
                if r >= 2
                    && out.len() == r - 1
                    && x[..r - 2] == out[..r - 2]
                    && x[r - 2] > 1
                    && out[r - 2] == x[r - 2] * x[r - 1]
                {
                    let groups = if self.heads == 0 {
                        x[r - 2]
                    } else {
                        self.heads
                    };
                    if x[r - 2] % groups != 0 {
                        return Err(fail(format!(
                            "@{}: heads={groups} does not divide the {} heads merged by a reshape to {:?}",
                            f.name,
                            x[r - 2],
                            out
                        )));
                    }
                    seeds.push((class.id, r - 2, groups));
                }
            }
        }
        // Returned new K/V: split per kv head.
        for (i, root) in conv.roots.iter().enumerate() {
            let name = f.result_names.get(i).cloned().flatten().unwrap_or_default();
            if !self.q_only
                && (name.starts_with("present_key") || name.starts_with("present_value"))
            {
                let t = conv.egraph.ty(*root).clone();
                if t.rank() >= 2 && t.shape()[1] > 1 {
                    seeds.push((*root, 1, t.shape()[1]));
                }
            }
        }
        let mut seeded = 0;
        for (class, axis, groups) in seeds {
            if seed_split(&mut conv.egraph, class, axis, groups).map_err(&fail)? {
                seeded += 1;
            }
        }
        conv.egraph.rebuild();
        ctx.stats.record("seeded splits", seeded);
        let slicing = if self.q_only {
            rules::slicing::RULES_KEEP_CACHE
        } else {
            rules::slicing::RULES
        };
        let set: Vec<&dyn Rule> = slicing
            .iter()
            .chain(rules::canonical::RULES)
            .copied()
            .collect();
        // Extraction by critical path (tree cost would count the shared input of the
        // heads once per head); a full split forbids batched matmuls outright, head
        // groups use a penalty growing with the batch.
        let model = CostModel {
            batched_matmul_penalty: if self.heads == 0 {
                f64::INFINITY
            } else {
                1000.0
            },
            critical_path: true,
        };
        let changed = rewrite_converted(f, conv, &set, self.limits, model, ctx.stats, "sha-split")?;
        Ok(PassResult::from_changed(changed))
    }
}
