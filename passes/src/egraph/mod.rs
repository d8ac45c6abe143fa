//! The generic e-graph rewrite driver on `egg`, shared by every rewrite pass:
//!
//! 1. [`convert::to_egraph`]: a function's pure dataflow becomes an `EGraph<Node,
//!    IrAnalysis>`; arguments become opaque leaves, `func.return` operands are roots.
//! 2. The analysis carries each e-class's full type (shape + encoding), a splat
//!    constant if any and the op name (`loc`) to keep; `merge` records a conflict when
//!    two e-classes of different types are unified, so an unsound rule fails loudly.
//! 3. [`run`] saturates a rule set under limits (iterations, nodes, time) and records
//!    statistics and the stop reason.
//! 4. [`convert::from_egraph`] extracts the cheapest program under the QNN-aware
//!    cost model ([`cost::QnnCost`]) and rebuilds the function; callers then run
//!    `cse`/`dce`.
//!
//! Rules live in [`rules`]; see `rules/README.md` for how to write one.

pub mod analysis;
pub mod convert;
pub mod cost;
pub mod lang;
pub mod rules;

use std::time::{Duration, Instant};

use egg::Id;
use mllm_ir::{Attrs, OpKind, Type};

pub use analysis::{ClassData, IrAnalysis};
pub use lang::{Node, Op, Tables};

/// The e-graph type of the driver.
pub type EGraph = egg::EGraph<Node, IrAnalysis>;

/// A rewrite result: a tree of new nodes over existing e-classes.
#[derive(Debug, Clone)]
pub enum Build {
    /// An existing e-class.
    Class(Id),
    /// A new op node.
    Op {
        /// Kind.
        kind: OpKind,
        /// Attributes.
        attrs: Attrs,
        /// Result type.
        ty: Type,
        /// Operands.
        children: Vec<Build>,
        /// `loc` name for the new op (when its e-class has none yet).
        name: Option<String>,
    },
}

impl Build {
    /// A new op node.
    pub fn op(kind: OpKind, attrs: Attrs, ty: Type, children: Vec<Build>) -> Build {
        Build::Op {
            kind,
            attrs,
            ty,
            children,
            name: None,
        }
    }

    /// Gives a new op a name.
    pub fn named(mut self, n: Option<String>) -> Build {
        if let Build::Op { name, .. } = &mut self {
            *name = n;
        }
        self
    }
}

/// Adds a [`Build`] tree to the e-graph; returns its e-class.
pub fn add_build(eg: &mut EGraph, b: &Build) -> Id {
    match b {
        Build::Class(id) => eg.find(*id),
        Build::Op {
            kind,
            attrs,
            ty,
            children,
            name,
        } => {
            let ch: smallvec::SmallVec<[Id; 3]> =
                children.iter().map(|c| add_build(eg, c)).collect();
            let attrs = eg.analysis.tables.attrs_id(attrs);
            let ty = eg.analysis.tables.type_id(ty);
            let id = eg.add(Node {
                op: Op::Ir {
                    kind: *kind,
                    attrs,
                    ty,
                },
                children: ch,
            });
            if let (Some(n), None) = (name, &eg[id].data.name) {
                eg[id].data.name = Some((n.clone(), *kind));
            }
            id
        }
    }
}

/// A rewrite rule: given a node of kind [`Rule::root`] in e-class `class`, proposes
/// an equivalent [`Build`]. Rules only read the e-graph; the driver applies.
pub trait Rule: Sync {
    /// Kebab-case name.
    fn name(&self) -> &'static str;
    /// The op kind the rule's left-hand side is rooted at.
    fn root(&self) -> OpKind;
    /// Proposes a rewrite of `node` (whose e-class is `class`).
    fn apply(&self, eg: &EGraph, class: Id, node: &Node) -> Option<Build>;
}

/// Helpers for rules.
pub trait EGraphExt {
    /// Type of an e-class.
    fn ty(&self, id: Id) -> &Type;
    /// Attributes of an IR node.
    fn attrs_of(&self, n: &Node) -> &Attrs;
    /// Nodes of kind `kind` in e-class `id`.
    fn nodes_of(&self, id: Id, kind: OpKind) -> Vec<Node>;
    /// Splat constant value of an e-class, if known.
    fn splat(&self, id: Id) -> Option<f64>;
    /// Type of a node's result.
    fn node_ty(&self, n: &Node) -> &Type;
    /// `loc` name of an e-class's original op.
    fn name(&self, id: Id) -> Option<String>;
}

impl EGraphExt for EGraph {
    fn ty(&self, id: Id) -> &Type {
        &self[id].data.ty
    }
    fn attrs_of(&self, n: &Node) -> &Attrs {
        match n.op {
            Op::Ir { attrs, .. } => &self.analysis.tables.attrs[attrs as usize],
            Op::Arg { .. } => &self.analysis.empty_attrs,
        }
    }
    fn nodes_of(&self, id: Id, kind: OpKind) -> Vec<Node> {
        self[id]
            .nodes
            .iter()
            .filter(|n| n.kind() == Some(kind))
            .cloned()
            .collect()
    }
    fn splat(&self, id: Id) -> Option<f64> {
        self[id].data.splat
    }
    fn node_ty(&self, n: &Node) -> &Type {
        &self.analysis.tables.types[n.ty_index() as usize]
    }
    fn name(&self, id: Id) -> Option<String> {
        self[id].data.name.as_ref().map(|(n, _)| n.clone())
    }
}

/// Limits of one saturation run.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Maximum rule-application sweeps.
    pub iterations: usize,
    /// Stop when the e-graph holds more e-nodes.
    pub nodes: usize,
    /// Wall-time budget.
    pub time: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            iterations: 30,
            nodes: 1_000_000,
            time: Duration::from_secs(60),
        }
    }
}

/// Why saturation stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// No rule changed anything.
    Saturated,
    /// Iteration limit.
    IterationLimit,
    /// Node limit.
    NodeLimit,
    /// Time limit.
    TimeLimit,
}

/// Statistics of one run.
#[derive(Debug, Clone)]
pub struct RunStats {
    /// Sweeps performed.
    pub iterations: usize,
    /// E-nodes at the end.
    pub enodes: usize,
    /// E-classes at the end.
    pub eclasses: usize,
    /// Rewrites applied (unions that changed the e-graph).
    pub applied: usize,
    /// Stop reason.
    pub stop: StopReason,
    /// Wall time of saturation.
    pub time: Duration,
}

/// Saturates `eg` with `rules` under `limits`. Fails if an unsound rule unified two
/// e-classes of different types.
pub fn run(eg: &mut EGraph, rules: &[&dyn Rule], limits: Limits) -> Result<RunStats, String> {
    let start = Instant::now();
    let mut iterations = 0;
    let mut applied = 0;
    let mut fired: std::collections::HashSet<(usize, Node)> = std::collections::HashSet::new();
    let stop = loop {
        if iterations >= limits.iterations {
            break StopReason::IterationLimit;
        }
        if eg.total_number_of_nodes() > limits.nodes {
            break StopReason::NodeLimit;
        }
        if start.elapsed() > limits.time {
            break StopReason::TimeLimit;
        }
        iterations += 1;
        // Search (read-only), then apply. A rule that already fired on a (canonical)
        // node would only rebuild the same terms: skip it. A rule that did not fire is
        // retried, since the classes it looks into may have grown.
        let mut matches: Vec<(&'static str, Id, Build)> = Vec::new();
        for class in eg.classes() {
            for node in &class.nodes {
                let Some(kind) = node.kind() else { continue };
                for (ri, r) in rules.iter().enumerate().filter(|(_, r)| r.root() == kind) {
                    if fired.contains(&(ri, node.clone())) {
                        continue;
                    }
                    if let Some(b) = r.apply(eg, class.id, node) {
                        matches.push((r.name(), class.id, b));
                        fired.insert((ri, node.clone()));
                    }
                }
            }
        }
        let mut changed = false;
        for (name, class, b) in matches {
            let new = add_build(eg, &b);
            if eg.union(class, new) {
                changed = true;
                applied += 1;
            }
            if let Some(c) = eg.analysis.conflict.take() {
                return Err(format!("rule '{name}' is unsound: it unified {c}"));
            }
        }
        eg.rebuild();
        if let Some(c) = eg.analysis.conflict.take() {
            return Err(format!("a rewrite is unsound: it unified {c}"));
        }
        if !changed {
            break StopReason::Saturated;
        }
    };
    Ok(RunStats {
        iterations,
        enodes: eg.total_number_of_nodes(),
        eclasses: eg.number_of_classes(),
        applied,
        stop,
        time: start.elapsed(),
    })
}

impl RunStats {
    /// Records the statistics into a pass's stats.
    pub fn record(&self, stats: &mut crate::PassStats) {
        stats.record("e-graph iterations", self.iterations);
        stats.record("e-nodes", self.enodes);
        stats.record("e-classes", self.eclasses);
        stats.record("rewrites applied", self.applied);
        stats.record("stop reason", format!("{:?}", self.stop));
        stats.record(
            "saturation time (s)",
            format!("{:.6}", self.time.as_secs_f64()),
        );
    }
}

/// Limit options shared by every e-graph pass.
pub const LIMIT_OPTIONS: [crate::OptSpec; 3] = [
    crate::OptSpec {
        name: "max-iterations",
        kind: crate::OptKind::UInt,
        default: "30",
        help: "maximum rewrite sweeps of the e-graph",
    },
    crate::OptSpec {
        name: "max-nodes",
        kind: crate::OptKind::UInt,
        default: "1000000",
        help: "stop saturating above this many e-nodes",
    },
    crate::OptSpec {
        name: "time-limit-ms",
        kind: crate::OptKind::UInt,
        default: "60000",
        help: "stop saturating after this many milliseconds",
    },
];

impl Limits {
    /// Limits from a pass's options (see [`LIMIT_OPTIONS`]).
    pub fn from_options(o: &crate::Options) -> Limits {
        Limits {
            iterations: o.usize("max-iterations").max(1),
            nodes: o.usize("max-nodes").max(1),
            time: Duration::from_millis(o.usize("time-limit-ms") as u64),
        }
    }
}

/// The whole driver on one function: convert, saturate, extract, rebuild, then
/// `cse` and `dce`. Returns whether the function changed.
pub fn rewrite_function(
    f: &mut mllm_ir::Function,
    rules: &[&dyn Rule],
    limits: Limits,
    stats: &mut crate::PassStats,
    pass: &str,
) -> Result<bool, crate::PassError> {
    let conv = convert::to_egraph(f);
    rewrite_converted(
        f,
        conv,
        rules,
        limits,
        cost::CostModel::default(),
        stats,
        pass,
    )
}

/// [`rewrite_function`] on an already converted (and possibly seeded) e-graph.
pub fn rewrite_converted(
    f: &mut mllm_ir::Function,
    mut conv: convert::Converted,
    rules: &[&dyn Rule],
    limits: Limits,
    cost_model: cost::CostModel,
    stats: &mut crate::PassStats,
    pass: &str,
) -> Result<bool, crate::PassError> {
    let rs = run(&mut conv.egraph, rules, limits).map_err(|message| crate::PassError::Failed {
        pass: pass.into(),
        message: format!("@{}: {message}", f.name),
    })?;
    rs.record(stats);
    let before = f.clone();
    convert::from_egraph(f, &conv, cost_model);
    crate::transforms::cse::cse(f);
    crate::transforms::dce::dce(f);
    *f = f.compact();
    Ok(mllm_ir::equiv::function_eq(&before.compact(), f).is_err())
}
