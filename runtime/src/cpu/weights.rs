//! Weight decoding for the CPU executor, shared by every function of a module.
//!
//! A `builtin.weight` is decoded once per module (the prefill and decode functions
//! share the result through [`WeightCache`]):
//! - as a plain tensor in the executor's representation of its IR type ([`Static`]):
//!   f32 for float types (whatever the store's physical dtype: bf16 and f16 bytes are
//!   widened), integer codes for quantized types in fixed-point mode, dequantized f32
//!   for quantized types in float mode;
//! - and, when it is the weight operand of `nn.linear` or of a 1x1 `nn.conv2d`, as a
//!   GEMM-packed f32 matrix ([`Packed`]), dequantized once (LPBQ and per-axis int8
//!   included). Panels are bf16 when every value of the weight is exactly a bf16
//!   (a bf16 checkpoint: 2 bytes per parameter, exact), f32 otherwise (e.g.
//!   dequantized LPBQ: 4 bytes per parameter). The plain tensor is only built if some
//!   other op reads the weight.
//!
//! This favours speed and exactness over footprint: a float Qwen3-1.7B from a bf16
//! checkpoint takes about 3.4 GB, its LPBQ-quantized form about 6.8 GB.

use std::collections::HashMap;
use std::sync::Arc;

use mllm_ir::types::{ElemType, Storage, Type};
use mllm_ir::{WDType, Weight, WeightStore};

use super::error::CpuError;
use super::gemm::{self, MatRef};
use super::quant;
use super::Repr;
use crate::buffer::AlignedBytes;

/// An immutable tensor in the executor's representation, 8-byte aligned.
#[derive(Debug)]
pub struct Static {
    words: Vec<u64>,
    len: usize,
}

impl Static {
    /// Wraps little-endian bytes.
    pub fn from_bytes(b: &[u8]) -> Static {
        let mut words = vec![0u64; b.len().div_ceil(8)];
        bytemuck::cast_slice_mut::<u64, u8>(&mut words)[..b.len()].copy_from_slice(b);
        Static {
            words,
            len: b.len(),
        }
    }
    /// Wraps f32 values.
    pub fn from_f32(v: &[f32]) -> Static {
        Static::from_bytes(bytemuck::cast_slice(v))
    }
    /// The bytes.
    pub fn bytes(&self) -> &[u8] {
        &bytemuck::cast_slice::<u64, u8>(&self.words)[..self.len]
    }
}

/// A weight packed for the GEMM: `B(k, n)` of a `K x N` product, in panels.
#[derive(Debug)]
pub struct Packed {
    /// Contraction length.
    pub k: usize,
    /// Output columns.
    pub n: usize,
    /// Panels.
    pub data: PackedData,
}

/// Element type of packed panels. The bytes live in transparent huge pages when large
/// ([`AlignedBytes::zeroed_huge`]): a product streams its weight once, and with 4 KiB
/// pages every 4 KiB of it is a TLB miss (a two-level page walk in a virtual machine).
#[derive(Debug)]
pub enum PackedData {
    /// f32 panels ([`gemm::pack_b`]).
    F32(AlignedBytes),
    /// bf16 panels ([`gemm::pack_b_bf16`]), used when every value is exactly a bf16
    /// (e.g. a bf16 checkpoint): same results, half the memory and bandwidth.
    Bf16(AlignedBytes),
}

impl Packed {
    /// The panels as a GEMM operand.
    pub fn panels(&self) -> gemm::BRef<'_> {
        match &self.data {
            PackedData::F32(v) => gemm::BRef::F32(bytemuck::cast_slice(v.as_bytes())),
            PackedData::Bf16(v) => gemm::BRef::Bf16(bytemuck::cast_slice(v.as_bytes())),
        }
    }
}

/// How a packed weight is laid out in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PackLayout {
    /// `nn.linear` weight `[N, K]`: `B = W^T`.
    NK,
    /// 1x1 `nn.conv2d` HWIO weight `[1, 1, K, N]`: `B = W`.
    KN,
}

/// Per-module cache of decoded weights, keyed by name and IR type.
#[derive(Debug, Default)]
pub struct WeightCache {
    statics: HashMap<(String, Type, bool), Arc<Static>>,
    packed: HashMap<(String, Type, PackLayout), Arc<Packed>>,
}

impl WeightCache {
    /// An empty cache.
    pub fn new() -> WeightCache {
        WeightCache::default()
    }

    /// Number of decoded tensors held (plain + packed).
    pub fn len(&self) -> usize {
        self.statics.len() + self.packed.len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The weight `name` of IR type `ty` in representation `repr` (`fixed` selects
    /// integer codes for quantized types).
    pub fn get_static(
        &mut self,
        store: &WeightStore,
        name: &str,
        ty: &Type,
        fixed: bool,
    ) -> Result<Arc<Static>, CpuError> {
        let key = (name.to_owned(), ty.clone(), fixed);
        if let Some(s) = self.statics.get(&key) {
            return Ok(s.clone());
        }
        let w = lookup(store, name, ty)?;
        let repr = Repr::of(ty.elem(), fixed);
        let vals = decode_values(&w, name, ty)?;
        let s = Arc::new(match (ty.elem(), repr) {
            (ElemType::Quant(q), Repr::F32) => {
                let mut f = vec![0f32; vals.len()];
                quant::dequantize::<f32_code::F>(
                    bytemuck::cast_slice(&vals),
                    &mut f,
                    &q.encoding,
                    ty.shape(),
                );
                Static::from_f32(&f)
            }
            (_, Repr::F32) => Static::from_f32(&vals),
            (_, r) => {
                let mut b = vec![0u8; vals.len() * r.size()];
                for (i, v) in vals.iter().enumerate() {
                    r.store(&mut b, i, *v as f64);
                }
                Static::from_bytes(&b)
            }
        });
        self.statics.insert(key, s.clone());
        Ok(s)
    }

    /// The weight `name` of IR type `ty` dequantized to f32 and packed for the GEMM.
    pub fn get_packed(
        &mut self,
        store: &WeightStore,
        name: &str,
        ty: &Type,
        layout: PackLayout,
    ) -> Result<Arc<Packed>, CpuError> {
        let key = (name.to_owned(), ty.clone(), layout);
        if let Some(p) = self.packed.get(&key) {
            return Ok(p.clone());
        }
        let w = lookup(store, name, ty)?;
        let mut vals = decode_values(&w, name, ty)?;
        if let ElemType::Quant(q) = ty.elem() {
            let codes = vals.clone();
            quant::dequantize::<f32_code::F>(
                bytemuck::cast_slice(&codes),
                &mut vals,
                &q.encoding,
                ty.shape(),
            );
        }
        let s = ty.shape();
        let (k, n, mr) = match layout {
            PackLayout::NK => (s[1], s[0], (1, s[1])),
            PackLayout::KN => {
                let (k, n) = (s[s.len() - 2], s[s.len() - 1]);
                (k, n, (n, 1))
            }
        };
        let d = gemm::GemmDims { m: 1, k, n };
        let b = MatRef {
            data: &vals,
            off: 0,
            rs: mr.0,
            cs: mr.1,
        };
        let data = if gemm::bf16_exact(&vals) {
            let mut data = AlignedBytes::zeroed_huge(d.packed_b_len() * 2);
            gemm::pack_b_bf16(k, n, b, bytemuck::cast_slice_mut(data.as_bytes_mut()));
            PackedData::Bf16(data)
        } else {
            let mut data = AlignedBytes::zeroed_huge(d.packed_b_len() * 4);
            gemm::pack_b(k, n, b, bytemuck::cast_slice_mut(data.as_bytes_mut()), true);
            PackedData::F32(data)
        };
        let p = Arc::new(Packed { k, n, data });
        self.packed.insert(key, p.clone());
        Ok(p)
    }
}

/// f32 values as "codes", so [`quant::dequantize`] can run on decoded weight values.
mod f32_code {
    /// A code held as f32.
    #[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
    #[repr(transparent)]
    pub struct F(pub f32);
    impl crate::cpu::quant::Code for F {
        fn to_f32(self) -> f32 {
            self.0
        }
        fn from_f32(v: f32) -> Self {
            F(v)
        }
    }
}

fn lookup(store: &WeightStore, name: &str, ty: &Type) -> Result<Arc<Weight>, CpuError> {
    let w = store.get(name).ok_or_else(|| CpuError::Weight {
        name: name.to_owned(),
        msg: "not in the weight store".into(),
    })?;
    if w.numel() != ty.numel() {
        return Err(CpuError::Weight {
            name: name.to_owned(),
            msg: format!(
                "store shape {:?} has {} elements but the IR type {ty} has {}",
                w.shape,
                w.numel(),
                ty.numel()
            ),
        });
    }
    Ok(w.clone())
}

/// The stored values as f32 (codes for quantized types), checked against the IR type.
fn decode_values(w: &Weight, name: &str, ty: &Type) -> Result<Vec<f32>, CpuError> {
    let bad = |msg: String| CpuError::Weight {
        name: name.to_owned(),
        msg,
    };
    let int_store = !matches!(w.dtype, WDType::F32 | WDType::F16 | WDType::BF16);
    match ty.elem() {
        ElemType::Quant(q) => {
            if !int_store {
                return Err(bad(format!(
                    "quantized IR type {ty} needs integer codes in the store, found {:?}",
                    w.dtype
                )));
            }
            let (lo, hi) = (q.storage.min() as f32, q.storage.max() as f32);
            let mut v = w.to_f32();
            for x in v.iter_mut() {
                // i4 codes stored as unsigned low nibbles (0..15) are sign-extended.
                if q.storage == Storage::I4 && *x > 7.0 && *x <= 15.0 {
                    *x -= 16.0;
                }
                if *x < lo || *x > hi {
                    return Err(bad(format!(
                        "code {x} is outside the {} range of {ty}",
                        q.storage.name()
                    )));
                }
            }
            Ok(v)
        }
        _ => Ok(w.to_f32()),
    }
}
