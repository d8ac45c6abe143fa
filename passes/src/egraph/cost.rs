//! The QNN-aware cost model used for extraction: what is cheap on the HTP is cheap
//! here. Reshapes are metadata; transposes that move real dimensions are expensive
//! data movement; a 1x1 conv2d is cheaper than the same linear (HTP runs convolutions
//! on its matrix unit with HWIO weights); arithmetic costs per element or per MAC.

use egg::{CostFunction, Id, Language};
use mllm_ir::{AttrsExt, OpKind, Type};

use crate::egraph::lang::{Node, Op, Tables};
use crate::egraph::EGraph;

/// Extraction cost function (tree cost: own cost plus children).
pub struct QnnCost<'a> {
    /// The e-graph (for operand types).
    pub eg: &'a EGraph,
    /// Extra cost per additional batch entry of a matmul (multi-head attention): the
    /// cost is multiplied by `1 + penalty * (batch - 1)`. 0 normally; `sha-split` raises
    /// it so single-head forms win extraction (the HTP runs per-head matmuls faster and
    /// compiles them faster).
    pub batched_matmul_penalty: f64,
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

impl CostFunction<Node> for QnnCost<'_> {
    type Cost = f64;
    fn cost<C>(&mut self, enode: &Node, mut costs: C) -> f64
    where
        C: FnMut(Id) -> f64,
    {
        let own = match enode.op {
            Op::Arg { .. } => 0.0,
            Op::Ir { kind, .. }
                if (kind.is_data_movement() || kind == OpKind::Concat)
                    && enode.children.iter().all(|c| self.eg[*c].data.is_static) =>
            {
                0.001
            }
            Op::Ir { kind, attrs, ty } => {
                let tables: &Tables = &self.eg.analysis.tables;
                let inputs: Vec<&Type> = enode
                    .children
                    .iter()
                    .map(|c| &self.eg[*c].data.ty)
                    .collect();
                let t = &tables.types[ty as usize];
                let c = op_cost(kind, &tables.attrs[attrs as usize], t, &inputs);
                let batch: usize = t.shape().iter().rev().skip(2).product();
                if kind == OpKind::MatMul && batch > 1 {
                    // Grows with the batch, so fewer heads per matmul is always cheaper.
                    c * (1.0 + self.batched_matmul_penalty * (batch - 1) as f64)
                } else {
                    c
                }
            }
        };
        enode.fold(own, |acc, c| acc + costs(c))
    }
}
