//! The QNN-aware cost model used for extraction: what is cheap on the HTP is cheap
//! here. Reshapes are metadata; transposes that move real dimensions are expensive
//! data movement; a 1x1 conv2d is cheaper than the same linear (HTP runs convolutions
//! on its matrix unit with HWIO weights); arithmetic costs per element or per MAC.

use egg::{CostFunction, Id, Language};
use mllm_ir::{AttrsExt, OpKind, Type};

use crate::egraph::lang::{Node, Op, Tables};
use crate::egraph::EGraph;

/// Knobs of the cost model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CostModel {
    /// Extra cost per additional batch entry of a matmul (multi-head attention): the
    /// cost is multiplied by `1 + penalty * (batch - 1)`. 0 normally; `sha-split` sets it
    /// so single-head forms win extraction (the HTP runs per-head matmuls faster and
    /// compiles them faster); infinity forbids batched matmuls wherever an alternative
    /// exists.
    pub batched_matmul_penalty: f64,
    /// Combine children by `max` (critical path) instead of `sum` (tree cost). Tree cost
    /// counts a shared input once per user, which in deep graphs can outweigh any local
    /// saving of a rewrite that adds users (one per head); the critical path does not.
    pub critical_path: bool,
}

impl Default for CostModel {
    /// No penalty, critical-path combination: tree costs grow exponentially with depth
    /// in graphs where one value feeds many heads (they overflow to infinity around
    /// layer 5 of a single-head Qwen3-1.7B, and extraction then cannot tell choices
    /// apart), while the critical path stays finite and still ranks local choices.
    fn default() -> Self {
        CostModel {
            batched_matmul_penalty: 0.0,
            critical_path: true,
        }
    }
}

/// Extraction cost function: each e-node's own cost (precomputed once) plus its
/// children's, summed or maxed per [`CostModel::critical_path`].
pub struct QnnCost {
    own: std::collections::HashMap<Node, f64>,
    critical_path: bool,
}

impl QnnCost {
    /// Precomputes the own cost of every e-node of `eg`.
    pub fn new(eg: &EGraph, model: CostModel) -> QnnCost {
        let mut own = std::collections::HashMap::new();
        for class in eg.classes() {
            for n in &class.nodes {
                own.insert(n.clone(), node_cost(eg, n, model.batched_matmul_penalty));
            }
        }
        QnnCost {
            own,
            critical_path: model.critical_path,
        }
    }
}

/// Cost of one op with result type `ty` and operand types `inputs`.
pub fn op_cost(kind: OpKind, attrs: &mllm_ir::Attrs, ty: &Type, inputs: &[&Type]) -> f64 {
    let n = ty.numel() as f64;
    let contraction = |t: &&Type| *t.shape().last().unwrap_or(&1) as f64;
    match kind {
        OpKind::Weight | OpKind::Constant | OpKind::Return => 0.0,
        OpKind::Reshape => 0.01,
        OpKind::Transpose => {
            let perm = attrs.ints("perm").unwrap_or(&[]);
            let shape = inputs.first().map(|t| t.shape()).unwrap_or(&[]);
            let kept: Vec<i64> = perm
                .iter()
                .copied()
                .filter(|p| shape.get(*p as usize).is_some_and(|d| *d != 1))
                .collect();
            if kept.windows(2).all(|w| w[0] < w[1]) {
                0.01
            } else {
                1.0 + n
            }
        }
        OpKind::Slice | OpKind::Concat | OpKind::Gather | OpKind::Repeat => 0.5 + 0.5 * n,
        OpKind::Linear => 2.0 * n * inputs.first().map(contraction).unwrap_or(1.0),
        OpKind::Conv2d => 1.6 * n * inputs.first().map(contraction).unwrap_or(1.0),
        OpKind::MatMul => {
            let k = inputs
                .first()
                .map(|t| {
                    let s = t.shape();
                    if attrs.bool("transpose_a").unwrap_or(false) {
                        s[s.len().saturating_sub(2)]
                    } else {
                        *s.last().unwrap_or(&1)
                    }
                })
                .unwrap_or(1) as f64;
            2.0 * n * k
        }
        OpKind::Softmax | OpKind::RmsNorm | OpKind::Rope => 4.0 * n,
        OpKind::Silu | OpKind::Sigmoid => 3.0 * n,
        _ => 1.0 + n,
    }
}

fn node_cost(eg: &EGraph, enode: &Node, penalty: f64) -> f64 {
    match enode.op {
        Op::Arg { .. } => 0.0,
        Op::Ir { kind, .. }
            if (kind.is_data_movement() || kind == OpKind::Concat)
                && enode.children.iter().all(|c| eg[*c].data.is_static) =>
        {
            0.001
        }
        Op::Ir { kind, attrs, ty } => {
            let tables: &Tables = &eg.analysis.tables;
            let inputs: Vec<&Type> = enode.children.iter().map(|c| &eg[*c].data.ty).collect();
            let t = &tables.types[ty as usize];
            let c = op_cost(kind, &tables.attrs[attrs as usize], t, &inputs);
            let batch: usize = t.shape().iter().rev().skip(2).product();
            if kind == OpKind::MatMul && batch > 1 {
                // Grows with the batch, so fewer heads per matmul is always cheaper.
                c * (1.0 + penalty * (batch - 1) as f64)
            } else {
                c
            }
        }
    }
}

impl CostFunction<Node> for QnnCost {
    type Cost = f64;
    fn cost<C>(&mut self, enode: &Node, mut costs: C) -> f64
    where
        C: FnMut(Id) -> f64,
    {
        let own = self.own.get(enode).copied().unwrap_or(0.0);
        if self.critical_path {
            enode.fold(own, |acc, c| acc.max(own + costs(c)))
        } else {
            enode.fold(own, |acc, c| acc + costs(c))
        }
    }
}
