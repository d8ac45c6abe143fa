//! A builder that creates ops at an insertion point with inferred result types.

use crate::attr::{Attr, Attrs};
use crate::function::{BlockId, Function, OpId, ValueId};
use crate::infer::{default_elem, infer_shape};
use crate::ops::OpKind;
use crate::types::{ElemType, Type};
use crate::IrError;

/// Where new ops go.
#[derive(Debug, Clone, Copy)]
enum Point {
    End(BlockId),
    Before(OpId),
}

/// Creates ops in a function. Result types are inferred from the shape rules; the
/// element type defaults to the first operand's (see [`default_elem`]).
pub struct Builder<'f> {
    /// The function being built.
    pub func: &'f mut Function,
    point: Point,
    name_prefix: Option<String>,
}

impl<'f> Builder<'f> {
    /// Appends at the end of `block`.
    pub fn at_end(func: &'f mut Function, block: BlockId) -> Self {
        Builder {
            func,
            point: Point::End(block),
            name_prefix: None,
        }
    }

    /// Inserts before `op`.
    pub fn before(func: &'f mut Function, op: OpId) -> Self {
        Builder {
            func,
            point: Point::Before(op),
            name_prefix: None,
        }
    }

    /// Names given with [`Builder::named`] are prefixed with `prefix.`.
    pub fn set_prefix(&mut self, prefix: Option<String>) {
        self.name_prefix = prefix;
    }

    fn link(&mut self, op: OpId) {
        match self.point {
            Point::End(b) => self.func.append(b, op),
            Point::Before(a) => self.func.insert_before(a, op),
        }
    }

    /// Creates an op with explicit result types.
    pub fn op_typed(
        &mut self,
        kind: OpKind,
        operands: &[ValueId],
        attrs: Attrs,
        result_types: &[Type],
    ) -> OpId {
        let op = self.func.create_op(kind, operands, result_types, attrs);
        self.link(op);
        op
    }

    /// Creates a single-result op whose type is inferred.
    pub fn op(
        &mut self,
        kind: OpKind,
        operands: &[ValueId],
        attrs: Attrs,
    ) -> Result<ValueId, IrError> {
        let tys: Vec<Type> = operands.iter().map(|v| self.func.ty(*v).clone()).collect();
        let refs: Vec<&Type> = tys.iter().collect();
        let shape = infer_shape(kind, &attrs, &refs)
            .map_err(|m| IrError::Build(format!("{}: {m}", kind.name())))?
            .ok_or_else(|| {
                IrError::Build(format!("{} needs an explicit result type", kind.name()))
            })?;
        let elem = default_elem(kind, &attrs, &refs, &shape);
        let ty = Type::tensor(shape, elem);
        let op = self.op_typed(kind, operands, attrs, &[ty]);
        Ok(self.func.op(op).results[0])
    }

    /// Like [`Builder::op`], and gives the op a symbolic name.
    pub fn named(
        &mut self,
        name: &str,
        kind: OpKind,
        operands: &[ValueId],
        attrs: Attrs,
    ) -> Result<ValueId, IrError> {
        let v = self.op(kind, operands, attrs)?;
        if let Some(op) = self.func.def_op(v) {
            let full = match &self.name_prefix {
                Some(p) => format!("{p}.{name}"),
                None => name.to_owned(),
            };
            self.func.op_mut(op).name = Some(full);
        }
        Ok(v)
    }

    /// `builtin.weight {name}` of the given type.
    pub fn weight(&mut self, name: &str, ty: Type) -> ValueId {
        let op = self.op_typed(
            OpKind::Weight,
            &[],
            attrs([("name", Attr::Str(name.into()))]),
            &[ty],
        );
        self.func.op(op).results[0]
    }

    /// `builtin.constant {value}` of the given type (`value` has 1 or numel entries).
    pub fn constant(&mut self, value: Vec<f64>, ty: Type) -> ValueId {
        let op = self.op_typed(
            OpKind::Constant,
            &[],
            attrs([("value", Attr::Floats(value))]),
            &[ty],
        );
        self.func.op(op).results[0]
    }

    /// A scalar-like constant of shape `[1]` and element type `elem`.
    pub fn scalar(&mut self, value: f64, elem: ElemType) -> ValueId {
        self.constant(vec![value], Type::tensor(vec![1], elem))
    }

    /// `func.return`.
    pub fn ret(&mut self, values: &[ValueId]) -> OpId {
        self.op_typed(OpKind::Return, values, Attrs::new(), &[])
    }

    /// Binary op helper.
    pub fn binary(&mut self, kind: OpKind, a: ValueId, b: ValueId) -> Result<ValueId, IrError> {
        self.op(kind, &[a, b], Attrs::new())
    }

    /// Unary op helper.
    pub fn unary(&mut self, kind: OpKind, a: ValueId) -> Result<ValueId, IrError> {
        self.op(kind, &[a], Attrs::new())
    }

    /// `tensor.reshape`.
    pub fn reshape(&mut self, a: ValueId, shape: &[usize]) -> Result<ValueId, IrError> {
        let s = shape.iter().map(|d| *d as i64).collect();
        self.op(OpKind::Reshape, &[a], attrs([("shape", Attr::Ints(s))]))
    }

    /// `tensor.transpose`.
    pub fn transpose(&mut self, a: ValueId, perm: &[i64]) -> Result<ValueId, IrError> {
        self.op(
            OpKind::Transpose,
            &[a],
            attrs([("perm", Attr::Ints(perm.to_vec()))]),
        )
    }

    /// `tensor.concat`.
    pub fn concat(&mut self, xs: &[ValueId], axis: i64) -> Result<ValueId, IrError> {
        self.op(OpKind::Concat, xs, attrs([("axis", Attr::Int(axis))]))
    }

    /// `tensor.slice` with unit steps.
    pub fn slice(&mut self, a: ValueId, starts: &[i64], ends: &[i64]) -> Result<ValueId, IrError> {
        self.op(
            OpKind::Slice,
            &[a],
            attrs([
                ("starts", Attr::Ints(starts.to_vec())),
                ("ends", Attr::Ints(ends.to_vec())),
            ]),
        )
    }

    /// A cast-like op (`nn.cast`, `quant.*`) to an explicit type.
    pub fn convert(&mut self, kind: OpKind, a: ValueId, ty: Type) -> ValueId {
        let op = self.op_typed(kind, &[a], Attrs::new(), &[ty]);
        self.func.op(op).results[0]
    }
}

/// Builds an attribute map from pairs.
pub fn attrs<const N: usize>(pairs: [(&str, Attr); N]) -> Attrs {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}
