//! Bridge from an opened [`Checkpoint`] (safetensors file, sharded safetensors, or `.mllm` v2) to
//! the IR's [`WeightStore`], without copying any payload.
//!
//! Every imported [`Weight`] is a byte range over a [`TensorBytes`] handle that keeps the
//! checkpoint (and so its memory maps) alive: importing a multi-gigabyte checkpoint costs a few
//! bytes of bookkeeping per tensor, and pages are only faulted in when a consumer reads them.
//!
//! Convention (shared with the model builders): a weight's *store* dtype is its physical storage
//! (e.g. bf16 as in the checkpoint), while the element type a `builtin.weight` op declares in the
//! IR is its *logical* type (f32 for a float model). Consumers convert on read
//! ([`Weight::to_f32`]); [`mllm_ir::verify::verify_weights`] checks element counts, not dtypes.

use std::sync::Arc;

use mllm_ir::{WDType, Weight, WeightBytes, WeightStore};

use crate::checkpoint::Checkpoint;
use crate::dtype::DType;
use crate::error::{Error, Result};

/// Zero-copy handle on the payload of one checkpoint tensor: holds a (cheap) clone of the
/// checkpoint, which shares its memory maps, so the bytes stay mapped as long as a weight uses
/// them.
pub struct TensorBytes {
    ckpt: Arc<Checkpoint>,
    name: String,
}

impl TensorBytes {
    /// A handle on tensor `name` of `ckpt` (`None` when the checkpoint has no such tensor).
    pub fn new(ckpt: Arc<Checkpoint>, name: &str) -> Option<TensorBytes> {
        ckpt.contains(name).then(|| TensorBytes {
            ckpt,
            name: name.to_string(),
        })
    }

    /// Name of the tensor.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl WeightBytes for TensorBytes {
    fn bytes(&self) -> &[u8] {
        // The tensor existed when the handle was made and a checkpoint never changes.
        self.ckpt.get(&self.name).map(|v| v.bytes).unwrap_or(&[])
    }
}

/// The weight-store dtype of a checkpoint dtype, if the IR can hold it. Opaque bytes and
/// booleans are stored as `u8`; 32/64-bit unsigned and packed 4-bit types have no equivalent.
pub fn wdtype_of(dtype: DType) -> Option<WDType> {
    Some(match dtype {
        DType::F32 => WDType::F32,
        DType::F16 => WDType::F16,
        DType::BF16 => WDType::BF16,
        DType::I8 => WDType::I8,
        DType::I16 => WDType::I16,
        DType::I32 => WDType::I32,
        DType::I64 => WDType::I64,
        DType::U8 | DType::Byte | DType::Bool => WDType::U8,
        DType::U16 => WDType::U16,
        DType::U32 | DType::U64 | DType::Int4 | DType::UInt4 => return None,
    })
}

/// One tensor of `ckpt` as a zero-copy [`Weight`].
pub fn import_tensor(ckpt: &Arc<Checkpoint>, name: &str) -> Result<Weight> {
    let view = ckpt.tensor(name)?;
    let dtype = wdtype_of(view.dtype).ok_or_else(|| Error::Tensor {
        tensor: name.to_string(),
        msg: format!("dtype {} cannot be held by the IR weight store", view.dtype),
    })?;
    let shape = view.shape.to_vec();
    let len = view.bytes.len();
    let src = TensorBytes::new(ckpt.clone(), name).ok_or_else(|| Error::TensorNotFound {
        path: ckpt.path().to_path_buf(),
        name: name.to_string(),
    })?;
    Weight::from_range(dtype, shape, Arc::new(src), 0, len).map_err(|e| Error::Tensor {
        tensor: name.to_string(),
        msg: e.to_string(),
    })
}

/// Every tensor of `ckpt`, under its checkpoint name, as zero-copy weights. Fails (naming the
/// tensor) on a dtype the store cannot hold; use [`import_tensors`] to pick tensors.
pub fn import_checkpoint(ckpt: &Arc<Checkpoint>) -> Result<WeightStore> {
    let names: Vec<String> = ckpt.names().map(str::to_string).collect();
    import_tensors(ckpt, names.iter().map(String::as_str))
}

/// The named tensors of `ckpt` as zero-copy weights (an absent name is an error).
pub fn import_tensors<'a>(
    ckpt: &Arc<Checkpoint>,
    names: impl IntoIterator<Item = &'a str>,
) -> Result<WeightStore> {
    let mut store = WeightStore::new();
    for name in names {
        let w = import_tensor(ckpt, name)?;
        store.insert(name, w);
    }
    Ok(store)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::safetensors::{SafetensorsWriter, TensorSpec};

    #[test]
    fn imported_weights_view_the_mapped_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.safetensors");
        let specs = vec![
            TensorSpec::new("a", DType::F32, vec![2, 2]),
            TensorSpec::new("b", DType::BF16, vec![3]),
            TensorSpec::new("c", DType::U32, vec![1]),
        ];
        let mut w = SafetensorsWriter::create(&path, &specs, &Default::default()).unwrap();
        let a: Vec<u8> = [1.0f32, 2.0, -3.5, 4.25]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        w.write_tensor("a", &a).unwrap();
        let b: Vec<u8> = [0.5f32, -1.0, 8.0]
            .iter()
            .flat_map(|v| half::bf16::from_f32(*v).to_le_bytes())
            .collect();
        w.write_tensor("b", &b).unwrap();
        w.write_tensor("c", &7u32.to_le_bytes()).unwrap();
        w.finish().unwrap();

        let ckpt = Arc::new(Checkpoint::open(&path).unwrap());
        let store = import_tensors(&ckpt, ["a", "b"]).unwrap();
        let wa = store.get("a").unwrap();
        assert_eq!(wa.dtype, WDType::F32);
        assert_eq!(wa.shape, vec![2, 2]);
        assert_eq!(wa.to_f32(), vec![1.0, 2.0, -3.5, 4.25]);
        // Zero copy: the weight's bytes are the checkpoint's mapped bytes.
        let mapped = ckpt.tensor("a").unwrap().bytes;
        assert_eq!(wa.bytes().as_ptr(), mapped.as_ptr());
        let wb = store.get("b").unwrap();
        assert_eq!(wb.dtype, WDType::BF16);
        assert_eq!(wb.to_f32(), vec![0.5, -1.0, 8.0]);

        let err = import_checkpoint(&ckpt).unwrap_err().to_string();
        assert!(err.contains("tensor c") && err.contains("u32"), "{err}");
        let err = import_tensors(&ckpt, ["nope"]).unwrap_err().to_string();
        assert!(err.contains("nope"), "{err}");
    }
}
