//! Interned types: tensor types made of a static shape and an element type, where a
//! quantized element type carries its whole encoding (so type equality is encoding
//! equality).
//!
//! Types are hash-consed in a process-wide interner: a [`Type`] is a pointer to its
//! unique [`TypeData`], so cloning is a reference-count bump and equality/hashing are
//! pointer operations.

use std::collections::HashSet;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, OnceLock};

/// Storage (integer) type of a quantized value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Storage {
    /// Unsigned 8-bit.
    U8,
    /// Unsigned 16-bit.
    U16,
    /// Signed 8-bit.
    I8,
    /// Signed 4-bit, held in one `i8` per element.
    I4,
    /// Signed 16-bit.
    I16,
    /// Signed 32-bit.
    I32,
}

impl Storage {
    /// Smallest representable integer.
    pub fn min(self) -> i64 {
        match self {
            Storage::U8 | Storage::U16 => 0,
            Storage::I8 => -128,
            Storage::I4 => -8,
            Storage::I16 => -32768,
            Storage::I32 => i32::MIN as i64,
        }
    }
    /// Largest representable integer.
    pub fn max(self) -> i64 {
        match self {
            Storage::U8 => 255,
            Storage::U16 => 65535,
            Storage::I8 => 127,
            Storage::I4 => 7,
            Storage::I16 => 32767,
            Storage::I32 => i32::MAX as i64,
        }
    }
    /// Bytes per element in memory (`i4` is held in one byte).
    pub fn byte_size(self) -> usize {
        match self {
            Storage::U8 | Storage::I8 | Storage::I4 => 1,
            Storage::U16 | Storage::I16 => 2,
            Storage::I32 => 4,
        }
    }
    /// Textual name (`u8`, `u16`, `i8`, `i4`, `i16`, `i32`).
    pub fn name(self) -> &'static str {
        match self {
            Storage::U8 => "u8",
            Storage::U16 => "u16",
            Storage::I8 => "i8",
            Storage::I4 => "i4",
            Storage::I16 => "i16",
            Storage::I32 => "i32",
        }
    }
    /// Parses a textual storage name.
    pub fn from_name(s: &str) -> Option<Storage> {
        Some(match s {
            "u8" => Storage::U8,
            "u16" => Storage::U16,
            "i8" => Storage::I8,
            "i4" => Storage::I4,
            "i16" => Storage::I16,
            "i32" => Storage::I32,
            _ => return None,
        })
    }
}

/// Expressed (real) type of a quantized value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Expressed {
    /// 32-bit float.
    F32,
    /// 16-bit float.
    F16,
}

impl Expressed {
    /// Textual name.
    pub fn name(self) -> &'static str {
        match self {
            Expressed::F32 => "f32",
            Expressed::F16 => "f16",
        }
    }
}

/// How quantized integers map to real numbers. Offsets follow QNN's convention:
/// `real = (q + offset) * scale`, so an offset is the negated zero point.
#[derive(Debug, Clone)]
pub enum Encoding {
    /// One scale and offset for the whole tensor.
    PerTensor {
        /// Scale.
        scale: f32,
        /// Offset (negated zero point).
        offset: i32,
    },
    /// One scale and offset per index of `axis`.
    PerAxis {
        /// Channel axis.
        axis: u32,
        /// One scale per channel.
        scales: Arc<[f32]>,
        /// One offset per channel.
        offsets: Arc<[i32]>,
    },
    /// LPBQ: low-power blockwise quantization. Channel `c` along `axis` has a float
    /// scale `channel_scales[c]`; the elements of that channel, flattened in row-major
    /// order over all other axes, are cut into blocks of `block_size`, each with an
    /// integer block scale `block_scales[c * num_blocks + b]`.
    /// `real = q * block_scales[c, b] * channel_scales[c]`.
    Blockwise {
        /// Output-channel axis.
        axis: u32,
        /// Elements per block along the flattened reduction axes.
        block_size: u32,
        /// Bit width of the block scales (4 for LPBQ).
        block_scale_bits: u32,
        /// Integer block scales, channel-major.
        block_scales: Arc<[u8]>,
        /// One float scale per channel.
        channel_scales: Arc<[f32]>,
    },
}

impl Encoding {
    /// Per-tensor `(scale, offset)`, if this is a per-tensor encoding.
    pub fn per_tensor(&self) -> Option<(f32, i32)> {
        match self {
            Encoding::PerTensor { scale, offset } => Some((*scale, *offset)),
            _ => None,
        }
    }
}

impl PartialEq for Encoding {
    fn eq(&self, other: &Self) -> bool {
        use Encoding::*;
        match (self, other) {
            (
                PerTensor {
                    scale: a,
                    offset: b,
                },
                PerTensor {
                    scale: c,
                    offset: d,
                },
            ) => a.to_bits() == c.to_bits() && b == d,
            (
                PerAxis {
                    axis: a,
                    scales: s1,
                    offsets: o1,
                },
                PerAxis {
                    axis: b,
                    scales: s2,
                    offsets: o2,
                },
            ) => a == b && bits_eq(s1, s2) && o1 == o2,
            (
                Blockwise {
                    axis: a1,
                    block_size: b1,
                    block_scale_bits: k1,
                    block_scales: q1,
                    channel_scales: c1,
                },
                Blockwise {
                    axis: a2,
                    block_size: b2,
                    block_scale_bits: k2,
                    block_scales: q2,
                    channel_scales: c2,
                },
            ) => a1 == a2 && b1 == b2 && k1 == k2 && q1 == q2 && bits_eq(c1, c2),
            _ => false,
        }
    }
}
impl Eq for Encoding {}

fn bits_eq(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

impl Hash for Encoding {
    fn hash<H: Hasher>(&self, h: &mut H) {
        match self {
            Encoding::PerTensor { scale, offset } => {
                0u8.hash(h);
                scale.to_bits().hash(h);
                offset.hash(h);
            }
            Encoding::PerAxis {
                axis,
                scales,
                offsets,
            } => {
                1u8.hash(h);
                axis.hash(h);
                scales.len().hash(h);
                for s in scales.iter() {
                    s.to_bits().hash(h);
                }
                offsets.hash(h);
            }
            Encoding::Blockwise {
                axis,
                block_size,
                block_scale_bits,
                block_scales,
                channel_scales,
            } => {
                2u8.hash(h);
                axis.hash(h);
                block_size.hash(h);
                block_scale_bits.hash(h);
                block_scales.hash(h);
                channel_scales.len().hash(h);
                for s in channel_scales.iter() {
                    s.to_bits().hash(h);
                }
            }
        }
    }
}

/// A quantized element type: storage, expressed type and encoding.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct QuantType {
    /// Integer storage.
    pub storage: Storage,
    /// Real type the integers stand for.
    pub expressed: Expressed,
    /// Scale/offset scheme.
    pub encoding: Encoding,
}

/// Element type of a tensor.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ElemType {
    /// 32-bit float.
    F32,
    /// 16-bit float.
    F16,
    /// bfloat16.
    BF16,
    /// Boolean (printed `i1`).
    Bool,
    /// Signed 8-bit integer.
    I8,
    /// Signed 16-bit integer.
    I16,
    /// Signed 32-bit integer.
    I32,
    /// Signed 64-bit integer.
    I64,
    /// Unsigned 8-bit integer.
    U8,
    /// Unsigned 16-bit integer.
    U16,
    /// Quantized element with its encoding.
    Quant(QuantType),
}

impl ElemType {
    /// Whether this is a float type (f32, f16, bf16).
    pub fn is_float(&self) -> bool {
        matches!(self, ElemType::F32 | ElemType::F16 | ElemType::BF16)
    }
    /// Whether this is a plain (non-quantized) integer type.
    pub fn is_int(&self) -> bool {
        matches!(
            self,
            ElemType::I8
                | ElemType::I16
                | ElemType::I32
                | ElemType::I64
                | ElemType::U8
                | ElemType::U16
        )
    }
    /// The quantized element type, if any.
    pub fn quant(&self) -> Option<&QuantType> {
        match self {
            ElemType::Quant(q) => Some(q),
            _ => None,
        }
    }
    /// Bytes per element in memory.
    pub fn byte_size(&self) -> usize {
        match self {
            ElemType::F32 | ElemType::I32 => 4,
            ElemType::F16 | ElemType::BF16 | ElemType::I16 | ElemType::U16 => 2,
            ElemType::Bool | ElemType::I8 | ElemType::U8 => 1,
            ElemType::I64 => 8,
            ElemType::Quant(q) => q.storage.byte_size(),
        }
    }
    /// Name of a non-quantized element type.
    pub fn scalar_name(&self) -> Option<&'static str> {
        Some(match self {
            ElemType::F32 => "f32",
            ElemType::F16 => "f16",
            ElemType::BF16 => "bf16",
            ElemType::Bool => "i1",
            ElemType::I8 => "i8",
            ElemType::I16 => "i16",
            ElemType::I32 => "i32",
            ElemType::I64 => "i64",
            ElemType::U8 => "u8",
            ElemType::U16 => "u16",
            ElemType::Quant(_) => return None,
        })
    }
    /// Parses a non-quantized element type name.
    pub fn from_scalar_name(s: &str) -> Option<ElemType> {
        Some(match s {
            "f32" => ElemType::F32,
            "f16" => ElemType::F16,
            "bf16" => ElemType::BF16,
            "i1" => ElemType::Bool,
            "i8" => ElemType::I8,
            "i16" => ElemType::I16,
            "i32" => ElemType::I32,
            "i64" => ElemType::I64,
            "u8" => ElemType::U8,
            "u16" => ElemType::U16,
            _ => return None,
        })
    }
}

/// The data behind an interned [`Type`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TypeData {
    /// Static dimensions (empty for a rank-0 tensor).
    pub shape: Vec<usize>,
    /// Element type.
    pub elem: ElemType,
}

/// An interned tensor type. Cheap to clone; equality and hashing are by identity,
/// which the interner makes equal to structural equality.
#[derive(Clone)]
pub struct Type(Arc<TypeData>);

fn interner() -> &'static Mutex<HashSet<Arc<TypeData>>> {
    static I: OnceLock<Mutex<HashSet<Arc<TypeData>>>> = OnceLock::new();
    I.get_or_init(|| Mutex::new(HashSet::new()))
}

impl Type {
    /// Interns a tensor type.
    pub fn tensor(shape: impl Into<Vec<usize>>, elem: ElemType) -> Type {
        let data = TypeData {
            shape: shape.into(),
            elem,
        };
        let mut set = match interner().lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if let Some(found) = set.get(&data) {
            return Type(found.clone());
        }
        let arc = Arc::new(data);
        set.insert(arc.clone());
        Type(arc)
    }
    /// Shape.
    pub fn shape(&self) -> &[usize] {
        &self.0.shape
    }
    /// Rank.
    pub fn rank(&self) -> usize {
        self.0.shape.len()
    }
    /// Element type.
    pub fn elem(&self) -> &ElemType {
        &self.0.elem
    }
    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.0.shape.iter().product()
    }
    /// Size in bytes of a dense buffer of this type.
    pub fn byte_size(&self) -> usize {
        self.numel() * self.0.elem.byte_size()
    }
    /// The same element type with another shape.
    pub fn with_shape(&self, shape: impl Into<Vec<usize>>) -> Type {
        Type::tensor(shape, self.0.elem.clone())
    }
    /// The same shape with another element type.
    pub fn with_elem(&self, elem: ElemType) -> Type {
        Type::tensor(self.0.shape.clone(), elem)
    }
    /// The quantized element type, if any.
    pub fn quant(&self) -> Option<&QuantType> {
        self.0.elem.quant()
    }
    /// Access to the underlying data.
    pub fn data(&self) -> &TypeData {
        &self.0
    }
}

impl PartialEq for Type {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}
impl Eq for Type {}
impl Hash for Type {
    fn hash<H: Hasher>(&self, h: &mut H) {
        (Arc::as_ptr(&self.0) as usize).hash(h)
    }
}

impl fmt::Debug for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", crate::print::type_to_string(self))
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", crate::print::type_to_string(self))
    }
}

/// Convenience constructor for a u16 asymmetric per-tensor quantized element type.
pub fn per_tensor(storage: Storage, scale: f32, offset: i32) -> ElemType {
    ElemType::Quant(QuantType {
        storage,
        expressed: Expressed::F32,
        encoding: Encoding::PerTensor { scale, offset },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interning_gives_identity_equality() {
        let a = Type::tensor(vec![1, 2], ElemType::F32);
        let b = Type::tensor(vec![1, 2], ElemType::F32);
        let c = Type::tensor(vec![2, 1], ElemType::F32);
        assert_eq!(a, b);
        assert!(Arc::ptr_eq(&a.0, &b.0));
        assert_ne!(a, c);
        let q1 = Type::tensor(vec![4], per_tensor(Storage::U16, 0.5, -3));
        let q2 = Type::tensor(vec![4], per_tensor(Storage::U16, 0.5, -4));
        assert_ne!(q1, q2);
        assert_eq!(q1, Type::tensor(vec![4], per_tensor(Storage::U16, 0.5, -3)));
    }
}
