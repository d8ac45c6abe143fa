//! Function <-> e-graph conversion.

use std::collections::HashMap;

use std::collections::VecDeque;

use egg::{CostFunction, Id};
use mllm_ir::{Function, ValueId};

use crate::egraph::cost::{CostModel, QnnCost};
use crate::egraph::lang::{Node, Op};
use crate::egraph::{EGraph, IrAnalysis};

/// A function's dataflow in an e-graph.
pub struct Converted {
    /// The e-graph.
    pub egraph: EGraph,
    /// E-classes of the returned values, in order.
    pub roots: Vec<Id>,
}

/// Adds every linked op of `f` (all current ops are pure, except `func.return`
/// whose operands become the roots). Arguments are opaque leaves.
pub fn to_egraph(f: &Function) -> Converted {
    let mut eg = EGraph::new(IrAnalysis::default());
    let mut class: HashMap<ValueId, Id> = HashMap::new();
    for (i, a) in f.args().iter().enumerate() {
        let ty = eg.analysis.tables.type_id(f.ty(*a));
        let id = eg.add(Node {
            op: Op::Arg {
                index: i as u32,
                ty,
            },
            children: Default::default(),
        });
        class.insert(*a, id);
    }
    let mut roots = Vec::new();
    for op in f.op_ids() {
        let o = f.op(op);
        let children: smallvec::SmallVec<[Id; 3]> = o.operands.iter().map(|v| class[v]).collect();
        if o.kind == mllm_ir::OpKind::Return {
            roots = children.to_vec();
            continue;
        }
        let attrs = eg.analysis.tables.attrs_id(&o.attrs);
        let ty = eg.analysis.tables.type_id(f.ty(o.results[0]));
        let id = eg.add(Node {
            op: Op::Ir {
                kind: o.kind,
                attrs,
                ty,
            },
            children,
        });
        if eg[id].data.name.is_none() {
            eg[id].data.name = o.name.clone().map(|n| (n, o.kind));
        }
        class.insert(o.results[0], id);
    }
    eg.rebuild();
    Converted { egraph: eg, roots }
}

/// Extracts the cheapest program for the roots and rebuilds `f` in place (arguments,
/// names and attributes kept). Returns the number of ops in the new body.
pub fn from_egraph(f: &mut Function, c: &Converted, model: CostModel) -> usize {
    let eg = &c.egraph;
    let best = extract(eg, model);
    let mut out = Function::new(f.name.clone());
    out.attrs = f.attrs.clone();
    out.src = f.src.clone();
    out.result_names = f.result_names.clone();
    let mut arg_vals = Vec::new();
    for (i, a) in f.args().iter().enumerate() {
        arg_vals.push(out.add_arg(f.ty(*a).clone(), f.arg_names[i].as_deref()));
    }
    let mut built: HashMap<Id, ValueId> = HashMap::new();
    let entry = out.entry();
    // Iterative post-order over chosen nodes.
    let mut stack: Vec<(Id, bool)> = c.roots.iter().rev().map(|r| (eg.find(*r), false)).collect();
    while let Some((id, expanded)) = stack.pop() {
        let id = eg.find(id);
        if built.contains_key(&id) {
            continue;
        }
        let node = best[&id].clone();
        if !expanded {
            stack.push((id, true));
            for ch in node.children.iter().rev() {
                if !built.contains_key(&eg.find(*ch)) {
                    stack.push((*ch, false));
                }
            }
            continue;
        }
        let v = match node.op {
            Op::Arg { index, .. } => arg_vals[index as usize],
            Op::Ir { kind, attrs, ty } => {
                let operands: Vec<ValueId> = node
                    .children
                    .iter()
                    .map(|ch| built[&eg.find(*ch)])
                    .collect();
                let t = eg.analysis.tables.types[ty as usize].clone();
                let a = eg.analysis.tables.attrs[attrs as usize].clone();
                let op = out.create_op(kind, &operands, &[t], a);
                out.op_mut(op).name = match &eg[id].data.name {
                    Some((n, k)) if *k == kind => Some(n.clone()),
                    _ => None,
                };
                out.append(entry, op);
                out.op(op).results[0]
            }
        };
        built.insert(id, v);
    }
    let rets: Vec<ValueId> = c.roots.iter().map(|r| built[&eg.find(*r)]).collect();
    let ret = out.create_op(mllm_ir::OpKind::Return, &rets, &[], Default::default());
    out.append(entry, ret);
    let n = out.num_ops();
    *f = out;
    n
}

/// The cheapest e-node of every e-class under `model`, by a worklist fixpoint: a class
/// is re-evaluated only when one of its children got cheaper (linear in practice, where
/// egg's extractor sweeps every class once per level of depth).
pub fn extract(eg: &crate::egraph::EGraph, model: CostModel) -> HashMap<Id, crate::egraph::Node> {
    let mut cf = QnnCost::new(eg, model);
    let mut cost: HashMap<Id, (f64, usize)> = HashMap::new();
    let mut queue: VecDeque<Id> = eg.classes().map(|c| c.id).collect();
    let mut queued: std::collections::HashSet<Id> = queue.iter().copied().collect();
    while let Some(id) = queue.pop_front() {
        queued.remove(&id);
        let class = &eg[id];
        let mut best: Option<(f64, usize)> = None;
        for (i, n) in class.nodes.iter().enumerate() {
            if !n.children.iter().all(|c| cost.contains_key(&eg.find(*c))) {
                continue;
            }
            let c = cf.cost(n, |ch| cost[&eg.find(ch)].0);
            if best.is_none_or(|(b, _)| c < b) {
                best = Some((c, i));
            }
        }
        let Some(b) = best else { continue };
        let improved = cost.get(&class.id).is_none_or(|(old, _)| b.0 < *old);
        if improved {
            cost.insert(class.id, b);
            for (_, p) in class.parents() {
                let p = eg.find(p);
                if queued.insert(p) {
                    queue.push_back(p);
                }
            }
        }
    }
    cost.into_iter()
        .map(|(id, (_, i))| (id, eg[id].nodes[i].clone()))
        .collect()
}
