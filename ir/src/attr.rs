//! Attributes: the compile-time parameters of an op (axes, shapes, epsilon, names).
//! An op's attributes are a map sorted by key, so printing is deterministic.

use std::collections::BTreeMap;

use crate::types::Type;

/// One attribute value.
#[derive(Debug, Clone)]
pub enum Attr {
    /// Boolean (`true` / `false`).
    Bool(bool),
    /// Integer.
    Int(i64),
    /// Float (printed in shortest round-trip form).
    Float(f64),
    /// String.
    Str(String),
    /// List of integers (`[1, 2, 3]`).
    Ints(Vec<i64>),
    /// List of floats (`[1.0, 2.5]`).
    Floats(Vec<f64>),
    /// A type.
    Type(Type),
}

impl PartialEq for Attr {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Attr::Bool(a), Attr::Bool(b)) => a == b,
            (Attr::Int(a), Attr::Int(b)) => a == b,
            (Attr::Float(a), Attr::Float(b)) => a.to_bits() == b.to_bits(),
            (Attr::Str(a), Attr::Str(b)) => a == b,
            (Attr::Ints(a), Attr::Ints(b)) => a == b,
            (Attr::Floats(a), Attr::Floats(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
            }
            (Attr::Type(a), Attr::Type(b)) => a == b,
            _ => false,
        }
    }
}
impl Eq for Attr {}

impl std::hash::Hash for Attr {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        std::mem::discriminant(self).hash(h);
        match self {
            Attr::Bool(b) => b.hash(h),
            Attr::Int(i) => i.hash(h),
            Attr::Float(f) => f.to_bits().hash(h),
            Attr::Str(s) => s.hash(h),
            Attr::Ints(v) => v.hash(h),
            Attr::Floats(v) => {
                for f in v {
                    f.to_bits().hash(h)
                }
            }
            Attr::Type(t) => t.hash(h),
        }
    }
}

impl Attr {
    /// Kind name used in diagnostics.
    pub fn kind(&self) -> &'static str {
        match self {
            Attr::Bool(_) => "bool",
            Attr::Int(_) => "integer",
            Attr::Float(_) => "float",
            Attr::Str(_) => "string",
            Attr::Ints(_) => "integer list",
            Attr::Floats(_) => "float list",
            Attr::Type(_) => "type",
        }
    }
}

/// An op's attributes, sorted by name.
pub type Attrs = BTreeMap<String, Attr>;

/// Typed accessors used by verifiers and passes.
pub trait AttrsExt {
    /// Integer attribute.
    fn int(&self, key: &str) -> Option<i64>;
    /// Float attribute (an integer is accepted too).
    fn float(&self, key: &str) -> Option<f64>;
    /// Boolean attribute.
    fn bool(&self, key: &str) -> Option<bool>;
    /// String attribute.
    fn str(&self, key: &str) -> Option<&str>;
    /// Integer-list attribute.
    fn ints(&self, key: &str) -> Option<&[i64]>;
    /// Float-list attribute.
    fn floats(&self, key: &str) -> Option<&[f64]>;
}

impl AttrsExt for Attrs {
    fn int(&self, key: &str) -> Option<i64> {
        match self.get(key) {
            Some(Attr::Int(i)) => Some(*i),
            _ => None,
        }
    }
    fn float(&self, key: &str) -> Option<f64> {
        match self.get(key) {
            Some(Attr::Float(f)) => Some(*f),
            Some(Attr::Int(i)) => Some(*i as f64),
            _ => None,
        }
    }
    fn bool(&self, key: &str) -> Option<bool> {
        match self.get(key) {
            Some(Attr::Bool(b)) => Some(*b),
            _ => None,
        }
    }
    fn str(&self, key: &str) -> Option<&str> {
        match self.get(key) {
            Some(Attr::Str(s)) => Some(s),
            _ => None,
        }
    }
    fn ints(&self, key: &str) -> Option<&[i64]> {
        match self.get(key) {
            Some(Attr::Ints(v)) => Some(v),
            _ => None,
        }
    }
    fn floats(&self, key: &str) -> Option<&[f64]> {
        match self.get(key) {
            Some(Attr::Floats(v)) => Some(v),
            _ => None,
        }
    }
}
