//! The weight store: named tensors that `builtin.weight` ops refer to. Data is
//! memory-mapped (or owned when a pass computed it) and never copied into the IR;
//! slices are views until someone asks for the bytes.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use crate::IrError;

/// Physical element type of stored weight bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WDType {
    /// f32.
    F32,
    /// f16.
    F16,
    /// bf16.
    BF16,
    /// i8 (also holds i4 values, one per byte).
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
}

impl WDType {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            WDType::I8 | WDType::U8 => 1,
            WDType::F16 | WDType::BF16 | WDType::I16 | WDType::U16 => 2,
            WDType::F32 | WDType::I32 => 4,
            WDType::I64 => 8,
        }
    }
}

/// Something that owns weight bytes: a memory map, or a buffer a pass computed.
pub trait WeightBytes: Send + Sync {
    /// The bytes.
    fn bytes(&self) -> &[u8];
}

impl WeightBytes for memmap2::Mmap {
    fn bytes(&self) -> &[u8] {
        self
    }
}

impl WeightBytes for Vec<u8> {
    fn bytes(&self) -> &[u8] {
        self
    }
}

/// Where a weight's bytes are.
#[derive(Clone)]
pub enum WeightData {
    /// A byte range of a shared backing (mmap or buffer).
    Range {
        /// Backing storage.
        src: Arc<dyn WeightBytes>,
        /// Start offset in bytes.
        offset: usize,
        /// Length in bytes.
        len: usize,
    },
    /// A view: `base[.., start..start+len, ..]` along `axis`.
    Slice {
        /// Sliced weight.
        base: Arc<Weight>,
        /// Axis.
        axis: usize,
        /// First index.
        start: usize,
    },
}

/// One stored tensor.
#[derive(Clone)]
pub struct Weight {
    /// Element type of the bytes.
    pub dtype: WDType,
    /// Shape.
    pub shape: Vec<usize>,
    /// Data.
    pub data: WeightData,
}

impl fmt::Debug for Weight {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Weight({:?}, {:?})", self.dtype, self.shape)
    }
}

impl Weight {
    /// A weight owning `bytes` (checked against dtype and shape).
    pub fn owned(dtype: WDType, shape: Vec<usize>, bytes: Vec<u8>) -> Result<Weight, IrError> {
        let len = bytes.len();
        Weight::from_range(dtype, shape, Arc::new(bytes), 0, len)
    }

    /// A weight viewing `len` bytes at `offset` of `src`.
    pub fn from_range(
        dtype: WDType,
        shape: Vec<usize>,
        src: Arc<dyn WeightBytes>,
        offset: usize,
        len: usize,
    ) -> Result<Weight, IrError> {
        let want = shape.iter().product::<usize>() * dtype.size();
        if want != len
            || offset
                .checked_add(len)
                .is_none_or(|e| e > src.bytes().len())
        {
            return Err(IrError::Weight(format!(
                "weight data of {len} bytes at offset {offset} does not fit {dtype:?} {shape:?} ({want} bytes) in a {}-byte buffer",
                src.bytes().len()
            )));
        }
        Ok(Weight {
            dtype,
            shape,
            data: WeightData::Range { src, offset, len },
        })
    }

    /// A view of `len` indices starting at `start` along `axis`.
    pub fn slice(
        base: Arc<Weight>,
        axis: usize,
        start: usize,
        len: usize,
    ) -> Result<Weight, IrError> {
        if axis >= base.shape.len() || start + len > base.shape[axis] || len == 0 {
            return Err(IrError::Weight(format!(
                "slice [{start}, {}) of axis {axis} is out of range for shape {:?}",
                start + len,
                base.shape
            )));
        }
        let mut shape = base.shape.clone();
        shape[axis] = len;
        Ok(Weight {
            dtype: base.dtype,
            shape,
            data: WeightData::Slice { base, axis, start },
        })
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// The bytes, row-major. Borrowed for plain ranges; slices are materialized.
    pub fn bytes(&self) -> Cow<'_, [u8]> {
        match &self.data {
            WeightData::Range { src, offset, len } => {
                Cow::Borrowed(&src.bytes()[*offset..offset + len])
            }
            WeightData::Slice { base, axis, start } => {
                let src = base.bytes();
                let es = self.dtype.size();
                let outer: usize = base.shape[..*axis].iter().product();
                let inner: usize = base.shape[axis + 1..].iter().product::<usize>() * es;
                let (bd, d) = (base.shape[*axis], self.shape[*axis]);
                let mut out = Vec::with_capacity(self.numel() * es);
                for o in 0..outer {
                    let s = (o * bd + start) * inner;
                    out.extend_from_slice(&src[s..s + d * inner]);
                }
                Cow::Owned(out)
            }
        }
    }

    /// Values converted to f32 (floats and integers alike).
    pub fn to_f32(&self) -> Vec<f32> {
        let b = self.bytes();
        let n = self.numel();
        let mut out = Vec::with_capacity(n);
        match self.dtype {
            WDType::F32 => out.extend(
                b.chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
            ),
            WDType::F16 => out.extend(
                b.chunks_exact(2)
                    .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32()),
            ),
            WDType::BF16 => out.extend(
                b.chunks_exact(2)
                    .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32()),
            ),
            WDType::I8 => out.extend(b.iter().map(|v| *v as i8 as f32)),
            WDType::U8 => out.extend(b.iter().map(|v| *v as f32)),
            WDType::I16 => out.extend(
                b.chunks_exact(2)
                    .map(|c| i16::from_le_bytes([c[0], c[1]]) as f32),
            ),
            WDType::U16 => out.extend(
                b.chunks_exact(2)
                    .map(|c| u16::from_le_bytes([c[0], c[1]]) as f32),
            ),
            WDType::I32 => out.extend(
                b.chunks_exact(4)
                    .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f32),
            ),
            WDType::I64 => out.extend(b.chunks_exact(8).map(|c| {
                i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32
            })),
        }
        out
    }
}

/// Named weights, in name order.
#[derive(Clone, Default)]
pub struct WeightStore {
    entries: BTreeMap<String, Arc<Weight>>,
}

impl fmt::Debug for WeightStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WeightStore({} weights)", self.entries.len())
    }
}

impl WeightStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
    /// Adds or replaces a weight.
    pub fn insert(&mut self, name: impl Into<String>, w: Weight) {
        self.entries.insert(name.into(), Arc::new(w));
    }
    /// Adds or replaces a shared weight.
    pub fn insert_arc(&mut self, name: impl Into<String>, w: Arc<Weight>) {
        self.entries.insert(name.into(), w);
    }
    /// Looks a weight up.
    pub fn get(&self, name: &str) -> Option<&Arc<Weight>> {
        self.entries.get(name)
    }
    /// Whether the store holds `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.entries.contains_key(name)
    }
    /// Number of weights.
    pub fn len(&self) -> usize {
        self.entries.len()
    }
    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
    /// Weights in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Arc<Weight>)> {
        self.entries.iter()
    }
    /// Removes a weight.
    pub fn remove(&mut self, name: &str) -> Option<Arc<Weight>> {
        self.entries.remove(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_are_views_with_correct_bytes() {
        let data: Vec<u8> = (0..24u8).collect();
        let w = Arc::new(Weight::owned(WDType::U8, vec![2, 3, 4], data).unwrap());
        let s = Weight::slice(w.clone(), 1, 1, 2).unwrap();
        assert_eq!(s.shape, vec![2, 2, 4]);
        let b = s.bytes();
        assert_eq!(
            &b[..],
            &[4, 5, 6, 7, 8, 9, 10, 11, 16, 17, 18, 19, 20, 21, 22, 23]
        );
        assert!(Weight::slice(w, 1, 2, 2).is_err());
        assert!(Weight::owned(WDType::F32, vec![3], vec![0; 8]).is_err());
    }
}
