//! The e-class analysis: every e-class's type (shape + encoding), its splat constant
//! value if it is one, and the op name to give it when it is rebuilt.

use egg::{Analysis, DidMerge};
use mllm_ir::{Attr, Attrs, OpKind, Type};

use crate::egraph::lang::{Node, Op, Tables};
use crate::egraph::EGraph;

/// Per-e-class facts.
#[derive(Debug, Clone)]
pub struct ClassData {
    /// Type of every value in the class.
    pub ty: Type,
    /// Value of a splat constant (all elements equal).
    pub splat: Option<f64>,
    /// `loc` name of an original op of this class, with that op's kind: a rebuilt op
    /// takes the name only if it is of the same kind.
    pub name: Option<(String, OpKind)>,
    /// Computed only from weights and constants (data movement on it is folded at
    /// compile time, so it costs nothing at run time).
    pub is_static: bool,
}

/// The analysis: interning tables and the first type conflict seen.
#[derive(Debug, Default)]
pub struct IrAnalysis {
    /// Attribute and type tables of the language.
    pub tables: Tables,
    /// Set when two e-classes of different types were unified.
    pub conflict: Option<String>,
    /// An empty attribute map (for argument leaves).
    pub empty_attrs: Attrs,
}

impl Analysis<Node> for IrAnalysis {
    type Data = ClassData;

    fn make(eg: &EGraph, enode: &Node) -> ClassData {
        let tables = &eg.analysis.tables;
        let ty = tables.types[enode.ty_index() as usize].clone();
        let splat = match enode.op {
            Op::Ir {
                kind: OpKind::Constant,
                attrs,
                ..
            } => match tables.attrs[attrs as usize].get("value") {
                Some(Attr::Floats(v))
                    if !v.is_empty() && v.iter().all(|x| x.to_bits() == v[0].to_bits()) =>
                {
                    Some(v[0])
                }
                _ => None,
            },
            _ => None,
        };
        let is_static = match enode.op {
            Op::Ir {
                kind: OpKind::Weight | OpKind::Constant,
                ..
            } => true,
            Op::Ir { kind, .. } if kind.is_data_movement() || kind == OpKind::Concat => {
                enode.children.iter().all(|c| eg[*c].data.is_static)
            }
            _ => false,
        };
        ClassData {
            ty,
            splat,
            name: None,
            is_static,
        }
    }

    fn merge(&mut self, a: &mut ClassData, b: ClassData) -> DidMerge {
        if a.ty != b.ty {
            if self.conflict.is_none() {
                self.conflict = Some(format!(
                    "a value of type {} with one of type {}",
                    a.ty, b.ty
                ));
            }
            return DidMerge(false, false);
        }
        let mut changed_a = false;
        if a.name.is_none() && b.name.is_some() {
            a.name = b.name.clone();
            changed_a = true;
        }
        if a.splat.is_none() && b.splat.is_some() {
            a.splat = b.splat;
            changed_a = true;
        }
        if !a.is_static && b.is_static {
            a.is_static = true;
            changed_a = true;
        }
        DidMerge(
            changed_a,
            a.name != b.name || a.splat != b.splat || a.is_static != b.is_static,
        )
    }
}
