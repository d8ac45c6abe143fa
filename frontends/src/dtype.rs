//! The element types a checkpoint tensor can have, shared by the safetensors and `.mllm` readers.
//!
//! [`DType`] knows its element size, its `.mllm` v2 dtype code and its safetensors name, so the two
//! formats convert into each other through it.

use std::fmt;
use std::str::FromStr;

/// Element type of a stored tensor.
///
/// Sub-byte types ([`DType::Int4`], [`DType::UInt4`]) are packed two values per byte, so a tensor
/// of `n` elements takes `ceil(n / 2)` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DType {
    /// IEEE 754 binary32.
    F32,
    /// IEEE 754 binary16.
    F16,
    /// bfloat16 (the upper half of a binary32).
    BF16,
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
    /// Unsigned 32-bit integer.
    U32,
    /// Unsigned 64-bit integer.
    U64,
    /// Opaque byte (mllm's `kByte`); exported to safetensors as `U8`.
    Byte,
    /// Boolean stored as one byte (0 or 1).
    Bool,
    /// Signed 4-bit integer, two per byte (mllm's `kInt4`); no safetensors equivalent.
    Int4,
    /// Unsigned 4-bit integer, two per byte (mllm's `kUInt4`); no safetensors equivalent.
    UInt4,
}

impl DType {
    /// Every supported element type.
    pub const ALL: [DType; 15] = [
        DType::F32,
        DType::F16,
        DType::BF16,
        DType::I8,
        DType::I16,
        DType::I32,
        DType::I64,
        DType::U8,
        DType::U16,
        DType::U32,
        DType::U64,
        DType::Byte,
        DType::Bool,
        DType::Int4,
        DType::UInt4,
    ];

    /// Short lower-case name (`"bf16"`, `"i8"`, ...), the one [`FromStr`] accepts and `Display` prints.
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F16 => "f16",
            DType::BF16 => "bf16",
            DType::I8 => "i8",
            DType::I16 => "i16",
            DType::I32 => "i32",
            DType::I64 => "i64",
            DType::U8 => "u8",
            DType::U16 => "u16",
            DType::U32 => "u32",
            DType::U64 => "u64",
            DType::Byte => "byte",
            DType::Bool => "bool",
            DType::Int4 => "int4",
            DType::UInt4 => "u4",
        }
    }

    /// Size in bits of one element (4 for the packed 4-bit types).
    pub fn bits(self) -> u64 {
        match self {
            DType::Int4 | DType::UInt4 => 4,
            DType::I8 | DType::U8 | DType::Byte | DType::Bool => 8,
            DType::F16 | DType::BF16 | DType::I16 | DType::U16 => 16,
            DType::F32 | DType::I32 | DType::U32 => 32,
            DType::I64 | DType::U64 => 64,
        }
    }

    /// Size in bytes of one element, `None` for the packed sub-byte types.
    pub fn elem_size(self) -> Option<usize> {
        match self {
            DType::Int4 | DType::UInt4 => None,
            _ => Some((self.bits() / 8) as usize),
        }
    }

    /// Number of bytes `numel` elements occupy, `None` on overflow.
    pub fn byte_size(self, numel: u64) -> Option<u64> {
        match self.elem_size() {
            Some(size) => numel.checked_mul(size as u64),
            None => Some(numel.div_ceil(2)),
        }
    }

    /// Whether this is a floating-point type (f32, f16, bf16).
    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F16 | DType::BF16)
    }

    /// The `.mllm` v2 dtype code (see `qwen3-flow.md` section 5).
    pub fn mllm_code(self) -> u32 {
        match self {
            DType::F32 => 0,
            DType::F16 => 1,
            DType::I8 => 16,
            DType::I16 => 17,
            DType::I32 => 18,
            DType::BF16 => 128,
            DType::U8 => 129,
            DType::U16 => 130,
            DType::U32 => 131,
            DType::I64 => 132,
            DType::U64 => 133,
            DType::Byte => 134,
            DType::Int4 => 136,
            DType::UInt4 => 137,
            DType::Bool => 156,
        }
    }

    /// The type of a `.mllm` v2 dtype code; `None` for codes this crate cannot read (GGUF block types,
    /// quantized per-tensor/per-channel codes, unassigned values).
    pub fn from_mllm_code(code: u32) -> Option<DType> {
        DType::ALL.into_iter().find(|d| d.mllm_code() == code)
    }

    /// The safetensors dtype string (`"BF16"`, ...); `None` for types safetensors cannot express
    /// (4-bit types). [`DType::Byte`] maps to `"U8"`.
    pub fn safetensors_name(self) -> Option<&'static str> {
        Some(match self {
            DType::F32 => "F32",
            DType::F16 => "F16",
            DType::BF16 => "BF16",
            DType::I8 => "I8",
            DType::I16 => "I16",
            DType::I32 => "I32",
            DType::I64 => "I64",
            DType::U8 | DType::Byte => "U8",
            DType::U16 => "U16",
            DType::U32 => "U32",
            DType::U64 => "U64",
            DType::Bool => "BOOL",
            DType::Int4 | DType::UInt4 => return None,
        })
    }

    /// The type of a safetensors dtype string; `None` for unsupported ones (F64, F8_*, ...).
    pub fn from_safetensors_name(name: &str) -> Option<DType> {
        Some(match name {
            "F32" => DType::F32,
            "F16" => DType::F16,
            "BF16" => DType::BF16,
            "I8" => DType::I8,
            "I16" => DType::I16,
            "I32" => DType::I32,
            "I64" => DType::I64,
            "U8" => DType::U8,
            "U16" => DType::U16,
            "U32" => DType::U32,
            "U64" => DType::U64,
            "BOOL" => DType::Bool,
            _ => return None,
        })
    }

    /// The matching `safetensors` crate dtype, if any.
    pub fn to_safetensors(self) -> Option<safetensors::Dtype> {
        use safetensors::Dtype as S;
        Some(match self {
            DType::F32 => S::F32,
            DType::F16 => S::F16,
            DType::BF16 => S::BF16,
            DType::I8 => S::I8,
            DType::I16 => S::I16,
            DType::I32 => S::I32,
            DType::I64 => S::I64,
            DType::U8 | DType::Byte => S::U8,
            DType::U16 => S::U16,
            DType::U32 => S::U32,
            DType::U64 => S::U64,
            DType::Bool => S::BOOL,
            DType::Int4 | DType::UInt4 => return None,
        })
    }

    /// The type matching a `safetensors` crate dtype, if supported.
    pub fn from_safetensors(dtype: safetensors::Dtype) -> Option<DType> {
        use safetensors::Dtype as S;
        Some(match dtype {
            S::F32 => DType::F32,
            S::F16 => DType::F16,
            S::BF16 => DType::BF16,
            S::I8 => DType::I8,
            S::I16 => DType::I16,
            S::I32 => DType::I32,
            S::I64 => DType::I64,
            S::U8 => DType::U8,
            S::U16 => DType::U16,
            S::U32 => DType::U32,
            S::U64 => DType::U64,
            S::BOOL => DType::Bool,
            _ => return None,
        })
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Error of [`DType::from_str`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown dtype {0:?} (expected one of f32, f16, bf16, i8, i16, i32, i64, u8, u16, u32, u64, byte, bool, int4, u4)")]
pub struct ParseDTypeError(pub String);

impl FromStr for DType {
    type Err = ParseDTypeError;

    /// Accepts the short names plus the usual aliases (`float32`, `fp32`, `bfloat16`, `float16`,
    /// `half`, `int8`, `uint8`, ...) and the safetensors spellings (`BF16`, ...).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        let d = match lower.as_str() {
            "f32" | "float32" | "fp32" | "float" => DType::F32,
            "f16" | "float16" | "fp16" | "half" => DType::F16,
            "bf16" | "bfloat16" => DType::BF16,
            "i8" | "int8" => DType::I8,
            "i16" | "int16" => DType::I16,
            "i32" | "int32" => DType::I32,
            "i64" | "int64" => DType::I64,
            "u8" | "uint8" => DType::U8,
            "u16" | "uint16" => DType::U16,
            "u32" | "uint32" => DType::U32,
            "u64" | "uint64" => DType::U64,
            "byte" => DType::Byte,
            "bool" => DType::Bool,
            "int4" | "i4" => DType::Int4,
            "u4" | "uint4" => DType::UInt4,
            _ => return Err(ParseDTypeError(s.to_string())),
        };
        Ok(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mllm_codes_round_trip_and_are_unique() {
        let mut codes: Vec<u32> = DType::ALL.iter().map(|d| d.mllm_code()).collect();
        for d in DType::ALL {
            assert_eq!(DType::from_mllm_code(d.mllm_code()), Some(d));
        }
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), DType::ALL.len());
        assert_eq!(DType::from_mllm_code(2), None);
        assert_eq!(DType::from_mllm_code(140), None);
    }

    #[test]
    fn doc_codes() {
        // Table from qwen3-flow.md section 5.
        let table = [
            ("f32", 0),
            ("f16", 1),
            ("int8", 16),
            ("int16", 17),
            ("int32", 18),
            ("bf16", 128),
            ("u8", 129),
            ("u16", 130),
            ("u32", 131),
            ("i64", 132),
            ("u64", 133),
            ("byte", 134),
            ("int4", 136),
            ("u4", 137),
            ("bool", 156),
        ];
        for (name, code) in table {
            let d: DType = name.parse().unwrap();
            assert_eq!(d.mllm_code(), code, "{name}");
        }
    }

    #[test]
    fn safetensors_mapping_agrees_with_crate() {
        for d in DType::ALL {
            match (d.safetensors_name(), d.to_safetensors()) {
                (Some(name), Some(st)) => {
                    assert_eq!(format!("{st:?}"), name);
                    let back = DType::from_safetensors_name(name).unwrap();
                    assert_eq!(DType::from_safetensors(st), Some(back));
                    assert_eq!(back.elem_size(), Some(st.size()));
                }
                (None, None) => assert!(matches!(d, DType::Int4 | DType::UInt4)),
                other => panic!("inconsistent mapping for {d}: {other:?}"),
            }
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(DType::BF16.byte_size(3), Some(6));
        assert_eq!(DType::Int4.byte_size(3), Some(2));
        assert_eq!(DType::I64.byte_size(u64::MAX), None);
        assert!("f64".parse::<DType>().is_err());
    }
}
