//! How the executor holds a value of a given IR element type.

use mllm_ir::types::{ElemType, Storage};

/// In-memory representation of a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repr {
    /// f32 (all float types; quantized types in float mode).
    F32,
    /// i8 (plain i8; i8 and i4 codes).
    I8,
    /// u8.
    U8,
    /// i16.
    I16,
    /// u16.
    U16,
    /// i32.
    I32,
    /// i64.
    I64,
    /// One byte, 0 or 1.
    Bool,
}

impl Repr {
    /// Representation of `elem`; quantized types hold codes when `fixed`.
    pub fn of(elem: &ElemType, fixed: bool) -> Repr {
        match elem {
            ElemType::F32 | ElemType::F16 | ElemType::BF16 => Repr::F32,
            ElemType::Bool => Repr::Bool,
            ElemType::I8 => Repr::I8,
            ElemType::I16 => Repr::I16,
            ElemType::I32 => Repr::I32,
            ElemType::I64 => Repr::I64,
            ElemType::U8 => Repr::U8,
            ElemType::U16 => Repr::U16,
            ElemType::Quant(q) if fixed => match q.storage {
                Storage::U8 => Repr::U8,
                Storage::U16 => Repr::U16,
                Storage::I8 | Storage::I4 => Repr::I8,
                Storage::I16 => Repr::I16,
                Storage::I32 => Repr::I32,
            },
            ElemType::Quant(_) => Repr::F32,
        }
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Repr::I8 | Repr::U8 | Repr::Bool => 1,
            Repr::I16 | Repr::U16 => 2,
            Repr::F32 | Repr::I32 => 4,
            Repr::I64 => 8,
        }
    }

    /// Element `i` of `b` as f64.
    pub fn load(self, b: &[u8], i: usize) -> f64 {
        let s = self.size();
        let e = &b[i * s..i * s + s];
        match self {
            Repr::F32 => f32::from_le_bytes([e[0], e[1], e[2], e[3]]) as f64,
            Repr::I8 => e[0] as i8 as f64,
            Repr::U8 | Repr::Bool => e[0] as f64,
            Repr::I16 => i16::from_le_bytes([e[0], e[1]]) as f64,
            Repr::U16 => u16::from_le_bytes([e[0], e[1]]) as f64,
            Repr::I32 => i32::from_le_bytes([e[0], e[1], e[2], e[3]]) as f64,
            Repr::I64 => {
                i64::from_le_bytes([e[0], e[1], e[2], e[3], e[4], e[5], e[6], e[7]]) as f64
            }
        }
    }

    /// Stores `v` as element `i` of `b` (integers truncate toward zero and saturate;
    /// booleans are `v != 0`).
    pub fn store(self, b: &mut [u8], i: usize, v: f64) {
        let s = self.size();
        let e = &mut b[i * s..i * s + s];
        match self {
            Repr::F32 => e.copy_from_slice(&(v as f32).to_le_bytes()),
            Repr::I8 => e[0] = v as i8 as u8,
            Repr::U8 => e[0] = v as u8,
            Repr::Bool => e[0] = (v != 0.0) as u8,
            Repr::I16 => e.copy_from_slice(&(v as i16).to_le_bytes()),
            Repr::U16 => e.copy_from_slice(&(v as u16).to_le_bytes()),
            Repr::I32 => e.copy_from_slice(&(v as i32).to_le_bytes()),
            Repr::I64 => e.copy_from_slice(&(v as i64).to_le_bytes()),
        }
    }
}
