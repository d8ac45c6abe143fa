//! The e-graph language: one node kind per IR op, with the op's attributes and its
//! result type interned as leaf indices (so two ops with different attributes or
//! result encodings are different nodes), plus opaque leaves for function arguments.

use std::collections::HashMap;

use egg::{Id, Language};
use mllm_ir::{Attrs, OpKind, Type};
use smallvec::SmallVec;

/// Operator of an e-node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    /// A pure IR op with interned attributes and result type.
    Ir {
        /// Op kind.
        kind: OpKind,
        /// Index into [`Tables::attrs`].
        attrs: u32,
        /// Index into [`Tables::types`].
        ty: u32,
    },
    /// An opaque leaf: argument `index` of the function.
    Arg {
        /// Argument position.
        index: u32,
        /// Index into [`Tables::types`].
        ty: u32,
    },
}

/// An e-node: operator and children e-classes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Node {
    /// Operator.
    pub op: Op,
    /// Operand e-classes.
    pub children: SmallVec<[Id; 3]>,
}

impl Language for Node {
    fn matches(&self, other: &Self) -> bool {
        self.op == other.op && self.children.len() == other.children.len()
    }
    fn children(&self) -> &[Id] {
        &self.children
    }
    fn children_mut(&mut self) -> &mut [Id] {
        &mut self.children
    }
}

impl Node {
    /// The IR op kind, if this is not an argument leaf.
    pub fn kind(&self) -> Option<OpKind> {
        match self.op {
            Op::Ir { kind, .. } => Some(kind),
            Op::Arg { .. } => None,
        }
    }
    /// Interned result-type index.
    pub fn ty_index(&self) -> u32 {
        match self.op {
            Op::Ir { ty, .. } | Op::Arg { ty, .. } => ty,
        }
    }
}

/// Interning tables for attributes and types (the leaves of the language).
#[derive(Debug, Default, Clone)]
pub struct Tables {
    /// Interned attribute maps.
    pub attrs: Vec<Attrs>,
    attr_idx: HashMap<Attrs, u32>,
    /// Interned types.
    pub types: Vec<Type>,
    type_idx: HashMap<Type, u32>,
}

impl Tables {
    /// Interns an attribute map.
    pub fn attrs_id(&mut self, a: &Attrs) -> u32 {
        if let Some(i) = self.attr_idx.get(a) {
            return *i;
        }
        let i = self.attrs.len() as u32;
        self.attrs.push(a.clone());
        self.attr_idx.insert(a.clone(), i);
        i
    }
    /// Interns a type.
    pub fn type_id(&mut self, t: &Type) -> u32 {
        if let Some(i) = self.type_idx.get(t) {
            return *i;
        }
        let i = self.types.len() as u32;
        self.types.push(t.clone());
        self.type_idx.insert(t.clone(), i);
        i
    }
}
