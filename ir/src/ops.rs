//! The closed op set and its per-op info table (name, arity, purity, attribute
//! schema). Semantics of every op are documented on its variant; the CPU reference
//! executor implements exactly these semantics.

/// Every op the IR knows. Names are `dialect.op`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OpKind {
    /// `builtin.weight {name}`: a tensor from the weight store, by name.
    Weight,
    /// `builtin.constant {value}`: a small constant; `value` is a float list of one
    /// element (splat) or `numel` elements, in real (unquantized) units.
    Constant,
    /// `func.return`: the function's results. Terminator.
    Return,
    /// `tensor.reshape {shape}`: same elements, new shape. Keeps the element type.
    Reshape,
    /// `tensor.transpose {perm}`: `out.dims[i] = in.dims[perm[i]]`. Keeps the element type.
    Transpose,
    /// `tensor.concat {axis}`: concatenation of one or more inputs along `axis`.
    Concat,
    /// `tensor.slice {starts, ends, steps?}`: per-dimension `[start, end)` with
    /// positive steps (default 1). Keeps the element type.
    Slice,
    /// `tensor.gather {axis}` (data, indices: i32): `out = data` indexed along `axis`;
    /// out shape = data[..axis] ++ indices.shape ++ data[axis+1..]. Keeps the element type.
    Gather,
    /// `tensor.repeat {axis, times}`: repeat-interleave: every index along `axis` is
    /// repeated `times` times consecutively. Keeps the element type.
    Repeat,
    /// `nn.matmul {transpose_a?, transpose_b?}`: batched matmul `[.., M, K] x [.., K, N]`
    /// with numpy broadcasting over the batch dimensions.
    MatMul,
    /// `nn.linear` (x: [.., K], w: [N, K], bias?: [N]) -> [.., N]: `x @ w^T + bias`.
    Linear,
    /// `nn.conv2d {stride?, pad?, dilation?, group?}` (x: NHWC, w: HWIO, bias?: [O]).
    /// `pad` is `[top, bottom, left, right]`.
    Conv2d,
    /// `nn.rms_norm {epsilon, axis?}` (x, w): `x / sqrt(mean(x^2, axis) + eps) * w`;
    /// axis defaults to -1 (the last).
    RmsNorm,
    /// `nn.softmax {axis?}`: softmax along `axis` (default -1).
    Softmax,
    /// `nn.rope` (x: [.., S, D], cos, sin broadcastable to x):
    /// `x * cos + rotate_half(x) * sin`, `rotate_half(x) = concat(-x[.., D/2:], x[.., :D/2])`.
    Rope,
    /// `nn.silu`: `x * sigmoid(x)`.
    Silu,
    /// `nn.sigmoid`: `1 / (1 + exp(-x))`.
    Sigmoid,
    /// `nn.neg`: `-x`.
    Neg,
    /// `nn.add`: elementwise sum with numpy broadcasting.
    Add,
    /// `nn.sub`: elementwise difference with numpy broadcasting.
    Sub,
    /// `nn.mul`: elementwise product with numpy broadcasting.
    Mul,
    /// `nn.equal`: elementwise `a == b` with broadcasting; result is `i1`.
    Equal,
    /// `nn.where` (cond: i1, a, b): elementwise select with broadcasting.
    Where,
    /// `nn.reduce_min {axes, keepdims?}`: minimum over `axes` (keepdims defaults to true).
    ReduceMin,
    /// `nn.embedding` (ids: i32 [..], table: [V, H]) -> [.., H]: row lookup.
    Embedding,
    /// `nn.cast`: element type conversion between plain types (e.g. i32 -> f32).
    Cast,
    /// `quant.quantize`: float -> quantized (encoding from the result type).
    Quantize,
    /// `quant.dequantize`: quantized -> float.
    Dequantize,
    /// `quant.requantize`: quantized -> quantized with another encoding.
    Requantize,
}

/// Static facts about one op kind.
#[derive(Debug, Clone, Copy)]
pub struct OpInfo {
    /// `dialect.op` name.
    pub name: &'static str,
    /// Minimum operand count.
    pub min_operands: usize,
    /// Maximum operand count (`usize::MAX` for variadic).
    pub max_operands: usize,
    /// Result count (`usize::MAX` for "any", used by nothing yet).
    pub results: usize,
    /// No side effects: may be CSE'd and DCE'd.
    pub pure: bool,
    /// Required attributes and their kinds.
    pub required_attrs: &'static [(&'static str, AttrKind)],
    /// Optional attributes and their kinds.
    pub optional_attrs: &'static [(&'static str, AttrKind)],
}

/// The kind of value an attribute must hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttrKind {
    /// Boolean.
    Bool,
    /// Integer.
    Int,
    /// Float (integers accepted).
    Float,
    /// String.
    Str,
    /// Integer list.
    Ints,
    /// Float list.
    Floats,
}

impl AttrKind {
    /// Name used in diagnostics.
    pub fn name(self) -> &'static str {
        match self {
            AttrKind::Bool => "bool",
            AttrKind::Int => "integer",
            AttrKind::Float => "float",
            AttrKind::Str => "string",
            AttrKind::Ints => "integer list",
            AttrKind::Floats => "float list",
        }
    }
    /// Whether `a` is acceptable for this kind.
    pub fn accepts(self, a: &crate::Attr) -> bool {
        use crate::Attr;
        matches!(
            (self, a),
            (AttrKind::Bool, Attr::Bool(_))
                | (AttrKind::Int, Attr::Int(_))
                | (AttrKind::Float, Attr::Float(_) | Attr::Int(_))
                | (AttrKind::Str, Attr::Str(_))
                | (AttrKind::Ints, Attr::Ints(_))
                | (AttrKind::Floats, Attr::Floats(_) | Attr::Ints(_))
        )
    }
}

const V: usize = usize::MAX;
use AttrKind as K;

macro_rules! info {
    ($name:expr, $min:expr, $max:expr, $res:expr, $pure:expr, [$($r:expr),*], [$($o:expr),*]) => {
        OpInfo {
            name: $name,
            min_operands: $min,
            max_operands: $max,
            results: $res,
            pure: $pure,
            required_attrs: &[$($r),*],
            optional_attrs: &[$($o),*],
        }
    };
}

impl OpKind {
    /// All op kinds, in declaration order.
    pub const ALL: &'static [OpKind] = &[
        OpKind::Weight,
        OpKind::Constant,
        OpKind::Return,
        OpKind::Reshape,
        OpKind::Transpose,
        OpKind::Concat,
        OpKind::Slice,
        OpKind::Gather,
        OpKind::Repeat,
        OpKind::MatMul,
        OpKind::Linear,
        OpKind::Conv2d,
        OpKind::RmsNorm,
        OpKind::Softmax,
        OpKind::Rope,
        OpKind::Silu,
        OpKind::Sigmoid,
        OpKind::Neg,
        OpKind::Add,
        OpKind::Sub,
        OpKind::Mul,
        OpKind::Equal,
        OpKind::Where,
        OpKind::ReduceMin,
        OpKind::Embedding,
        OpKind::Cast,
        OpKind::Quantize,
        OpKind::Dequantize,
        OpKind::Requantize,
    ];

    /// The info table entry of this op.
    pub fn info(self) -> OpInfo {
        match self {
            OpKind::Weight => info!("builtin.weight", 0, 0, 1, true, [("name", K::Str)], []),
            OpKind::Constant => info!(
                "builtin.constant",
                0,
                0,
                1,
                true,
                [("value", K::Floats)],
                []
            ),
            OpKind::Return => info!("func.return", 0, V, 0, false, [], []),
            OpKind::Reshape => info!("tensor.reshape", 1, 1, 1, true, [("shape", K::Ints)], []),
            OpKind::Transpose => info!("tensor.transpose", 1, 1, 1, true, [("perm", K::Ints)], []),
            OpKind::Concat => info!("tensor.concat", 1, V, 1, true, [("axis", K::Int)], []),
            OpKind::Slice => info!(
                "tensor.slice",
                1,
                1,
                1,
                true,
                [("starts", K::Ints), ("ends", K::Ints)],
                [("steps", K::Ints)]
            ),
            OpKind::Gather => info!("tensor.gather", 2, 2, 1, true, [("axis", K::Int)], []),
            OpKind::Repeat => info!(
                "tensor.repeat",
                1,
                1,
                1,
                true,
                [("axis", K::Int), ("times", K::Int)],
                []
            ),
            OpKind::MatMul => info!(
                "nn.matmul",
                2,
                2,
                1,
                true,
                [],
                [("transpose_a", K::Bool), ("transpose_b", K::Bool)]
            ),
            OpKind::Linear => info!("nn.linear", 2, 3, 1, true, [], []),
            OpKind::Conv2d => info!(
                "nn.conv2d",
                2,
                3,
                1,
                true,
                [],
                [
                    ("stride", K::Ints),
                    ("pad", K::Ints),
                    ("dilation", K::Ints),
                    ("group", K::Int)
                ]
            ),
            OpKind::RmsNorm => info!(
                "nn.rms_norm",
                2,
                2,
                1,
                true,
                [("epsilon", K::Float)],
                [("axis", K::Int)]
            ),
            OpKind::Softmax => info!("nn.softmax", 1, 1, 1, true, [], [("axis", K::Int)]),
            OpKind::Rope => info!("nn.rope", 3, 3, 1, true, [], []),
            OpKind::Silu => info!("nn.silu", 1, 1, 1, true, [], []),
            OpKind::Sigmoid => info!("nn.sigmoid", 1, 1, 1, true, [], []),
            OpKind::Neg => info!("nn.neg", 1, 1, 1, true, [], []),
            OpKind::Add => info!("nn.add", 2, 2, 1, true, [], []),
            OpKind::Sub => info!("nn.sub", 2, 2, 1, true, [], []),
            OpKind::Mul => info!("nn.mul", 2, 2, 1, true, [], []),
            OpKind::Equal => info!("nn.equal", 2, 2, 1, true, [], []),
            OpKind::Where => info!("nn.where", 3, 3, 1, true, [], []),
            OpKind::ReduceMin => info!(
                "nn.reduce_min",
                1,
                1,
                1,
                true,
                [("axes", K::Ints)],
                [("keepdims", K::Bool)]
            ),
            OpKind::Embedding => info!("nn.embedding", 2, 2, 1, true, [], []),
            OpKind::Cast => info!("nn.cast", 1, 1, 1, true, [], []),
            OpKind::Quantize => info!("quant.quantize", 1, 1, 1, true, [], []),
            OpKind::Dequantize => info!("quant.dequantize", 1, 1, 1, true, [], []),
            OpKind::Requantize => info!("quant.requantize", 1, 1, 1, true, [], []),
        }
    }

    /// `dialect.op` name.
    pub fn name(self) -> &'static str {
        self.info().name
    }

    /// Looks an op up by its `dialect.op` name.
    pub fn from_name(name: &str) -> Option<OpKind> {
        OpKind::ALL.iter().copied().find(|k| k.name() == name)
    }

    /// Whether the op ends a block.
    pub fn is_terminator(self) -> bool {
        self == OpKind::Return
    }

    /// Ops that move data without changing values: their result keeps the input's
    /// element type (and so its encoding).
    pub fn is_data_movement(self) -> bool {
        matches!(
            self,
            OpKind::Reshape | OpKind::Transpose | OpKind::Slice | OpKind::Gather | OpKind::Repeat
        )
    }

    /// Elementwise ops with numpy broadcasting.
    pub fn is_elementwise_binary(self) -> bool {
        matches!(
            self,
            OpKind::Add | OpKind::Sub | OpKind::Mul | OpKind::Equal
        )
    }

    /// Ops whose result type cannot be inferred from their operands and attributes
    /// (the element type must be given).
    pub fn needs_explicit_type(self) -> bool {
        matches!(
            self,
            OpKind::Weight
                | OpKind::Constant
                | OpKind::Cast
                | OpKind::Quantize
                | OpKind::Dequantize
                | OpKind::Requantize
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for k in OpKind::ALL {
            assert!(seen.insert(k.name()), "duplicate name {}", k.name());
            assert_eq!(OpKind::from_name(k.name()), Some(*k));
            assert!(k.name().contains('.'));
        }
        assert_eq!(OpKind::from_name("nn.nope"), None);
    }
}
