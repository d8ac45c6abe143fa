//! Safe descriptions of tensors, quantization and op parameters, and their
//! conversion to the raw C structs (with owned backing storage).

use std::ffi::{c_void, CString};

use crate::error::{QnnError, Result};
use crate::sys;

/// Tensor element types supported by the wrappers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataType {
    /// `INT_8`.
    Int8,
    /// `INT_16`.
    Int16,
    /// `INT_32`.
    Int32,
    /// `INT_64`.
    Int64,
    /// `UINT_8`.
    UInt8,
    /// `UINT_16`.
    UInt16,
    /// `UINT_32`.
    UInt32,
    /// `UINT_64`.
    UInt64,
    /// `FLOAT_16`.
    Float16,
    /// `BFLOAT_16`.
    BFloat16,
    /// `FLOAT_32`.
    Float32,
    /// `SFIXED_POINT_4` (not usable for I/O or static data here).
    SFixed4,
    /// `SFIXED_POINT_8`.
    SFixed8,
    /// `SFIXED_POINT_16`.
    SFixed16,
    /// `SFIXED_POINT_32`.
    SFixed32,
    /// `UFIXED_POINT_4` (not usable for I/O or static data here).
    UFixed4,
    /// `UFIXED_POINT_8`.
    UFixed8,
    /// `UFIXED_POINT_16`.
    UFixed16,
    /// `UFIXED_POINT_32`.
    UFixed32,
    /// `BOOL_8`.
    Bool8,
}

impl DataType {
    const TABLE: [(DataType, u32); 20] = [
        (DataType::Int8, sys::data_type::INT_8),
        (DataType::Int16, sys::data_type::INT_16),
        (DataType::Int32, sys::data_type::INT_32),
        (DataType::Int64, sys::data_type::INT_64),
        (DataType::UInt8, sys::data_type::UINT_8),
        (DataType::UInt16, sys::data_type::UINT_16),
        (DataType::UInt32, sys::data_type::UINT_32),
        (DataType::UInt64, sys::data_type::UINT_64),
        (DataType::Float16, sys::data_type::FLOAT_16),
        (DataType::BFloat16, sys::data_type::BFLOAT_16),
        (DataType::Float32, sys::data_type::FLOAT_32),
        (DataType::SFixed4, sys::data_type::SFIXED_POINT_4),
        (DataType::SFixed8, sys::data_type::SFIXED_POINT_8),
        (DataType::SFixed16, sys::data_type::SFIXED_POINT_16),
        (DataType::SFixed32, sys::data_type::SFIXED_POINT_32),
        (DataType::UFixed4, sys::data_type::UFIXED_POINT_4),
        (DataType::UFixed8, sys::data_type::UFIXED_POINT_8),
        (DataType::UFixed16, sys::data_type::UFIXED_POINT_16),
        (DataType::UFixed32, sys::data_type::UFIXED_POINT_32),
        (DataType::Bool8, sys::data_type::BOOL_8),
    ];

    /// The `Qnn_DataType_t` value.
    pub fn raw(self) -> u32 {
        Self::TABLE
            .iter()
            .find(|(d, _)| *d == self)
            .map(|(_, r)| *r)
            .unwrap_or(sys::data_type::UNDEFINED)
    }

    /// Maps a `Qnn_DataType_t` value back.
    pub fn from_raw(raw: u32) -> Option<DataType> {
        Self::TABLE.iter().find(|(_, r)| *r == raw).map(|(d, _)| *d)
    }

    /// Bytes per element; `None` for the 4-bit types, whose buffer layout
    /// this crate does not handle.
    pub fn size_bytes(self) -> Option<usize> {
        match self {
            DataType::SFixed4 | DataType::UFixed4 => None,
            DataType::Int8
            | DataType::UInt8
            | DataType::SFixed8
            | DataType::UFixed8
            | DataType::Bool8 => Some(1),
            DataType::Int16
            | DataType::UInt16
            | DataType::Float16
            | DataType::BFloat16
            | DataType::SFixed16
            | DataType::UFixed16 => Some(2),
            DataType::Int32
            | DataType::UInt32
            | DataType::Float32
            | DataType::SFixed32
            | DataType::UFixed32 => Some(4),
            DataType::Int64 | DataType::UInt64 => Some(8),
        }
    }

    /// Whether values are quantized (need [`Quant`] parameters).
    pub fn is_fixed_point(self) -> bool {
        matches!(
            self,
            DataType::SFixed4
                | DataType::SFixed8
                | DataType::SFixed16
                | DataType::SFixed32
                | DataType::UFixed4
                | DataType::UFixed8
                | DataType::UFixed16
                | DataType::UFixed32
        )
    }
}

/// Role of a graph tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TensorKind {
    /// Graph input written by the application.
    AppWrite,
    /// Graph output read by the application.
    AppRead,
    /// Intermediate tensor.
    Native,
    /// Constant data baked into the graph.
    Static,
}

impl TensorKind {
    /// The `Qnn_TensorType_t` value.
    pub fn raw(self) -> u32 {
        match self {
            TensorKind::AppWrite => sys::tensor_type::APP_WRITE,
            TensorKind::AppRead => sys::tensor_type::APP_READ,
            TensorKind::Native => sys::tensor_type::NATIVE,
            TensorKind::Static => sys::tensor_type::STATIC,
        }
    }

    /// Maps a `Qnn_TensorType_t` value back (READWRITE and others -> `None`).
    pub fn from_raw(raw: u32) -> Option<TensorKind> {
        match raw {
            sys::tensor_type::APP_WRITE => Some(TensorKind::AppWrite),
            sys::tensor_type::APP_READ => Some(TensorKind::AppRead),
            sys::tensor_type::NATIVE => Some(TensorKind::Native),
            sys::tensor_type::STATIC => Some(TensorKind::Static),
            _ => None,
        }
    }
}

/// Quantization of a tensor. Convention: `real = (q + offset) * scale`, so
/// `offset` is the negated zero point.
#[derive(Debug, Clone, PartialEq)]
pub enum Quant {
    /// Not quantized (float / integer tensors).
    None,
    /// One scale and offset for the whole tensor.
    ScaleOffset {
        /// Scale.
        scale: f32,
        /// Offset (negated zero point).
        offset: i32,
    },
    /// One scale and offset per index along `axis` (per-channel).
    AxisScaleOffset {
        /// Channel axis.
        axis: u32,
        /// One scale per channel.
        scales: Vec<f32>,
        /// One offset per channel.
        offsets: Vec<i32>,
    },
    /// LPBQ: per-channel float scale times a low-bit integer scale per block;
    /// dequantized weight = `q * channel_scales[c] * block_scales[c, k / block]`.
    BlockwiseExpansion {
        /// Output-channel axis of the weight.
        axis: u32,
        /// One float scale per channel along `axis`.
        channel_scales: Vec<f32>,
        /// Blocks per channel (in_channels / block size).
        num_blocks_per_axis: u32,
        /// Bit width of the block scales (4 for LPBQ).
        block_scale_bitwidth: u32,
        /// Block scales, `[channel * num_blocks_per_axis + block]`.
        block_scales_u8: Vec<u8>,
    },
    /// An encoding reported by the library that these wrappers do not model
    /// (only appears in [`TensorInfo`]; cannot be used to create tensors).
    Other {
        /// `Qnn_QuantizationEncoding_t` value.
        encoding: u32,
    },
}

/// Describes a tensor to create in a graph.
#[derive(Debug, Clone)]
pub struct TensorSpec<'d> {
    /// Unique name within the graph (for op parameters, empty = generated).
    pub name: String,
    /// Role of the tensor.
    pub kind: TensorKind,
    /// Element type.
    pub dtype: DataType,
    /// Dimensions (rank >= 1, each > 0).
    pub dims: Vec<u32>,
    /// Quantization (required exactly for fixed-point types).
    pub quant: Quant,
    /// Contents of a [`TensorKind::Static`] tensor, exactly `byte_size` bytes;
    /// borrowed only for the call that creates the tensor (QNN copies it).
    pub data: Option<&'d [u8]>,
}

impl<'d> TensorSpec<'d> {
    /// A tensor without data.
    pub fn new(
        name: impl Into<String>,
        kind: TensorKind,
        dtype: DataType,
        dims: &[u32],
        quant: Quant,
    ) -> Self {
        TensorSpec {
            name: name.into(),
            kind,
            dtype,
            dims: dims.to_vec(),
            quant,
            data: None,
        }
    }

    /// A static tensor holding `data`.
    pub fn constant(
        name: impl Into<String>,
        dtype: DataType,
        dims: &[u32],
        quant: Quant,
        data: &'d [u8],
    ) -> Self {
        TensorSpec {
            name: name.into(),
            kind: TensorKind::Static,
            dtype,
            dims: dims.to_vec(),
            quant,
            data: Some(data),
        }
    }
}

/// A tensor as described by the library (graph I/O of a context binary) or
/// as created by a [`crate::GraphBuilder`].
#[derive(Debug, Clone, PartialEq)]
pub struct TensorInfo {
    /// Tensor id within its graph.
    pub id: u32,
    /// Name.
    pub name: String,
    /// Role, when it is one of the modelled kinds.
    pub kind: Option<TensorKind>,
    /// Element type.
    pub dtype: DataType,
    /// Dimensions.
    pub dims: Vec<u32>,
    /// Quantization.
    pub quant: Quant,
}

impl TensorInfo {
    /// Number of elements.
    pub fn num_elements(&self) -> usize {
        self.dims.iter().map(|&d| d as usize).product()
    }

    /// Exact byte size of the tensor's buffer (`None` for 4-bit types).
    pub fn byte_size(&self) -> Option<usize> {
        self.dtype.size_bytes().map(|b| b * self.num_elements())
    }
}

/// Value of a scalar op parameter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ScalarValue {
    /// `BOOL_8`.
    Bool(bool),
    /// `INT_8`.
    I8(i8),
    /// `UINT_8`.
    U8(u8),
    /// `INT_16`.
    I16(i16),
    /// `UINT_16`.
    U16(u16),
    /// `INT_32`.
    I32(i32),
    /// `UINT_32`.
    U32(u32),
    /// `FLOAT_32`.
    F32(f32),
}

impl ScalarValue {
    pub(crate) fn to_raw(self) -> sys::Qnn_Scalar_t {
        use sys::data_type as dt;
        let (data_type, value) = match self {
            ScalarValue::Bool(v) => (
                dt::BOOL_8,
                sys::Qnn_ScalarValue {
                    bool8Value: v as u8,
                },
            ),
            ScalarValue::I8(v) => (dt::INT_8, sys::Qnn_ScalarValue { int8Value: v }),
            ScalarValue::U8(v) => (dt::UINT_8, sys::Qnn_ScalarValue { uint8Value: v }),
            ScalarValue::I16(v) => (dt::INT_16, sys::Qnn_ScalarValue { int16Value: v }),
            ScalarValue::U16(v) => (dt::UINT_16, sys::Qnn_ScalarValue { uint16Value: v }),
            ScalarValue::I32(v) => (dt::INT_32, sys::Qnn_ScalarValue { int32Value: v }),
            ScalarValue::U32(v) => (dt::UINT_32, sys::Qnn_ScalarValue { uint32Value: v }),
            ScalarValue::F32(v) => (dt::FLOAT_32, sys::Qnn_ScalarValue { floatValue: v }),
        };
        // Zero the full 8-byte value first so no byte is left undefined.
        let mut scalar = sys::Qnn_Scalar_t {
            dataType: data_type,
            value: sys::Qnn_ScalarValue { uint64Value: 0 },
        };
        scalar.value = value;
        scalar
    }
}

/// Maximum rank accepted.
pub const MAX_RANK: usize = 8;

/// Checks a name for use as a C string.
pub(crate) fn c_name(what: &str, name: &str) -> Result<CString> {
    if name.is_empty() {
        return Err(QnnError::invalid(what, "empty name"));
    }
    CString::new(name).map_err(|_| QnnError::invalid(what, format!("name {name:?} contains NUL")))
}

fn positive_finite(v: f32) -> bool {
    v.is_finite() && v > 0.0
}

/// Validates a spec (without uniqueness, which needs the graph) and returns
/// its exact byte size.
pub(crate) fn validate_spec(subject: &str, spec: &TensorSpec<'_>) -> Result<usize> {
    let bad = |reason: String| QnnError::invalid(subject, reason);
    if spec.name.is_empty() {
        return Err(bad("empty tensor name".into()));
    }
    if spec.name.as_bytes().contains(&0) {
        return Err(bad("tensor name contains NUL".into()));
    }
    if spec.dims.is_empty() || spec.dims.len() > MAX_RANK {
        return Err(bad(format!(
            "rank {} not in 1..={MAX_RANK}",
            spec.dims.len()
        )));
    }
    if spec.dims.contains(&0) {
        return Err(bad(format!("zero dimension in {:?}", spec.dims)));
    }
    let elem = spec.dtype.size_bytes().ok_or_else(|| {
        bad(format!(
            "{:?} tensors are not supported (store 4-bit values in an 8-bit type)",
            spec.dtype
        ))
    })?;
    let bytes = spec
        .dims
        .iter()
        .try_fold(elem as u64, |acc, &d| acc.checked_mul(d as u64))
        .filter(|&b| b <= u32::MAX as u64)
        .ok_or_else(|| bad(format!("{:?} x {:?} exceeds 4 GiB", spec.dims, spec.dtype)))?
        as usize;
    let rank = spec.dims.len();
    match (&spec.quant, spec.dtype.is_fixed_point()) {
        (Quant::None, true) => {
            return Err(bad(format!(
                "fixed-point type {:?} needs quantization parameters",
                spec.dtype
            )))
        }
        (Quant::None, false) => {}
        (_, false) => {
            return Err(bad(format!(
                "quantization given for non-fixed-point type {:?}",
                spec.dtype
            )))
        }
        (Quant::ScaleOffset { scale, .. }, true) => {
            if !positive_finite(*scale) {
                return Err(bad(format!("scale {scale} must be finite and > 0")));
            }
        }
        (
            Quant::AxisScaleOffset {
                axis,
                scales,
                offsets,
            },
            true,
        ) => {
            let axis = *axis as usize;
            if axis >= rank {
                return Err(bad(format!("quant axis {axis} >= rank {rank}")));
            }
            let n = spec.dims[axis] as usize;
            if scales.len() != n || offsets.len() != n {
                return Err(bad(format!(
                    "{} scales / {} offsets for {n} channels on axis {axis}",
                    scales.len(),
                    offsets.len()
                )));
            }
            if let Some(s) = scales.iter().find(|s| !positive_finite(**s)) {
                return Err(bad(format!("channel scale {s} must be finite and > 0")));
            }
        }
        (
            Quant::BlockwiseExpansion {
                axis,
                channel_scales,
                num_blocks_per_axis,
                block_scale_bitwidth,
                block_scales_u8,
            },
            true,
        ) => {
            let axis = *axis as usize;
            if axis >= rank {
                return Err(bad(format!("quant axis {axis} >= rank {rank}")));
            }
            let n = spec.dims[axis] as usize;
            if channel_scales.len() != n {
                return Err(bad(format!(
                    "{} channel scales for {n} channels on axis {axis}",
                    channel_scales.len()
                )));
            }
            if let Some(s) = channel_scales.iter().find(|s| !positive_finite(**s)) {
                return Err(bad(format!("channel scale {s} must be finite and > 0")));
            }
            if *num_blocks_per_axis == 0 {
                return Err(bad("num_blocks_per_axis must be > 0".into()));
            }
            if !(1..=8).contains(block_scale_bitwidth) {
                return Err(bad(format!(
                    "block scale bitwidth {block_scale_bitwidth} not in 1..=8"
                )));
            }
            let want = n.checked_mul(*num_blocks_per_axis as usize);
            if want != Some(block_scales_u8.len()) {
                return Err(bad(format!(
                    "{} block scales, expected {n} channels x {num_blocks_per_axis} blocks",
                    block_scales_u8.len()
                )));
            }
            let max = (1u32 << block_scale_bitwidth) - 1;
            if let Some(b) = block_scales_u8.iter().find(|&&b| b as u32 > max) {
                return Err(bad(format!(
                    "block scale {b} does not fit {block_scale_bitwidth} bits"
                )));
            }
        }
        (Quant::Other { encoding }, true) => {
            return Err(bad(format!(
                "quantization encoding {encoding} cannot be used to create tensors"
            )))
        }
    }
    match (spec.kind, spec.data) {
        (TensorKind::Static, None) => Err(bad("static tensor without data".into())),
        (TensorKind::Static, Some(d)) if d.len() != bytes => Err(bad(format!(
            "static data has {} bytes, expected exactly {bytes} ({:?} x {:?})",
            d.len(),
            spec.dims,
            spec.dtype
        ))),
        (TensorKind::Static, Some(_)) => Ok(bytes),
        (kind, Some(_)) => Err(bad(format!("{kind:?} tensor must not carry data"))),
        (_, None) => Ok(bytes),
    }
}

/// Heap storage that a raw tensor's pointers refer to.
#[derive(Debug)]
enum QuantStorage {
    None,
    Axis(#[allow(dead_code)] Box<[sys::Qnn_ScaleOffset_t]>),
    Block {
        _scale_offsets: Box<[sys::Qnn_ScaleOffset_t]>,
        _block_scales: Box<[u8]>,
        _params: Box<sys::Qnn_BlockwiseExpansion_t>,
    },
}

/// A `Qnn_Tensor_t` together with the owned storage its pointers refer to
/// (name, dimensions, quantization arrays). Moving a `RawTensor` keeps the
/// pointers valid: they point into heap allocations, not into the struct.
pub(crate) struct RawTensor {
    pub raw: sys::Qnn_Tensor_t,
    _name: CString,
    _dims: Box<[u32]>,
    _quant: QuantStorage,
}

// SAFETY: the raw pointers refer to heap storage owned by this struct (or,
// for static data, to caller memory whose lifetime the graph builder
// enforces); nothing is shared with other threads implicitly.
unsafe impl Send for RawTensor {}
// SAFETY: `RawTensor` is never mutated through `&self`.
unsafe impl Sync for RawTensor {}

impl RawTensor {
    /// Builds a V1 tensor. `data` is the client buffer for static tensors.
    /// The caller has validated the description.
    pub fn build(
        id: u32,
        name: &str,
        kind_raw: u32,
        dtype: DataType,
        dims: &[u32],
        quant: &Quant,
        data: Option<&[u8]>,
    ) -> Result<RawTensor> {
        let c_name = c_name(name, name)?;
        let mut dims: Box<[u32]> = dims.into();
        let (params, storage) = raw_quant(quant);
        let (data_ptr, data_size) = match data {
            Some(d) => (d.as_ptr() as *mut c_void, d.len() as u32),
            None => (std::ptr::null_mut(), 0),
        };
        let v1 = sys::Qnn_TensorV1_t {
            id,
            name: c_name.as_ptr(),
            type_: kind_raw,
            dataFormat: sys::QNN_TENSOR_DATA_FORMAT_FLAT_BUFFER,
            dataType: dtype.raw(),
            quantizeParams: params,
            rank: dims.len() as u32,
            dimensions: dims.as_mut_ptr(),
            memType: sys::mem_type::RAW,
            mem: sys::Qnn_TensorMemUnion {
                clientBuf: sys::Qnn_ClientBuffer_t {
                    data: data_ptr,
                    dataSize: data_size,
                },
            },
        };
        Ok(RawTensor {
            raw: sys::Qnn_Tensor_t {
                version: sys::tensor_version::V1,
                u: sys::Qnn_TensorUnion { v1 },
            },
            _name: c_name,
            _dims: dims,
            _quant: storage,
        })
    }

    /// Copy of the raw tensor with its client buffer pointing at `data`.
    pub fn with_buffer(&self, data: *mut c_void, size: u32) -> sys::Qnn_Tensor_t {
        let mut t = self.raw;
        // `raw` is always built as a V1 tensor by `build` (writing union
        // fields of plain data is safe).
        t.u.v1.memType = sys::mem_type::RAW;
        t.u.v1.mem.clientBuf = sys::Qnn_ClientBuffer_t {
            data,
            dataSize: size,
        };
        t
    }

    /// Drops the reference to caller data (after the library copied it).
    pub fn clear_buffer(&mut self) {
        self.raw.u.v1.mem.clientBuf = sys::Qnn_ClientBuffer_t {
            data: std::ptr::null_mut(),
            dataSize: 0,
        };
    }

    /// The id (assigned by the library once created).
    pub fn id(&self) -> u32 {
        self.raw.v1().id
    }
}

fn raw_quant(quant: &Quant) -> (sys::Qnn_QuantizeParams_t, QuantStorage) {
    let mut p = sys::Qnn_QuantizeParams_t::undefined();
    match quant {
        Quant::None | Quant::Other { .. } => (p, QuantStorage::None),
        Quant::ScaleOffset { scale, offset } => {
            p.encodingDefinition = sys::definition::DEFINED;
            p.quantizationEncoding = sys::quant_encoding::SCALE_OFFSET;
            p.u.scaleOffsetEncoding = sys::Qnn_ScaleOffset_t {
                scale: *scale,
                offset: *offset,
            };
            (p, QuantStorage::None)
        }
        Quant::AxisScaleOffset {
            axis,
            scales,
            offsets,
        } => {
            let mut so: Box<[sys::Qnn_ScaleOffset_t]> = scales
                .iter()
                .zip(offsets)
                .map(|(&scale, &offset)| sys::Qnn_ScaleOffset_t { scale, offset })
                .collect();
            p.encodingDefinition = sys::definition::DEFINED;
            p.quantizationEncoding = sys::quant_encoding::AXIS_SCALE_OFFSET;
            p.u.axisScaleOffsetEncoding = sys::Qnn_AxisScaleOffset_t {
                axis: *axis as i32,
                numScaleOffsets: so.len() as u32,
                scaleOffset: so.as_mut_ptr(),
            };
            (p, QuantStorage::Axis(so))
        }
        Quant::BlockwiseExpansion {
            axis,
            channel_scales,
            num_blocks_per_axis,
            block_scale_bitwidth,
            block_scales_u8,
        } => {
            let mut so: Box<[sys::Qnn_ScaleOffset_t]> = channel_scales
                .iter()
                .map(|&scale| sys::Qnn_ScaleOffset_t { scale, offset: 0 })
                .collect();
            let mut blocks: Box<[u8]> = block_scales_u8.as_slice().into();
            let mut params = Box::new(sys::Qnn_BlockwiseExpansion_t {
                axis: *axis as i32,
                scaleOffsets: so.as_mut_ptr(),
                numBlocksPerAxis: *num_blocks_per_axis,
                blockScaleBitwidth: *block_scale_bitwidth,
                blockScaleStorageType: sys::block_scale_storage::BITS_8,
                blocksScale: blocks.as_mut_ptr().cast(),
            });
            p.encodingDefinition = sys::definition::DEFINED;
            p.quantizationEncoding = sys::quant_encoding::BLOCKWISE_EXPANSION;
            p.u.blockwiseExpansion = &mut *params;
            (
                p,
                QuantStorage::Block {
                    _scale_offsets: so,
                    _block_scales: blocks,
                    _params: params,
                },
            )
        }
    }
}

/// Reads a raw tensor description from the library into a [`TensorInfo`].
///
/// # Safety
/// `t` must be a tensor description produced by the library whose pointers
/// are valid for reads for the duration of the call.
pub(crate) unsafe fn tensor_info_from_raw(
    t: &sys::Qnn_Tensor_t,
    function: &'static str,
) -> Result<TensorInfo> {
    let malformed = |reason: String| QnnError::Malformed { function, reason };
    if t.version != sys::tensor_version::V1 && t.version != sys::tensor_version::V2 {
        return Err(malformed(format!("tensor version {}", t.version)));
    }
    let v = t.v1();
    // SAFETY: caller guarantees the name pointer is NULL or a valid C string.
    let name = unsafe { crate::library::c_str_to_string(v.name) };
    let dtype = DataType::from_raw(v.dataType).ok_or_else(|| {
        malformed(format!(
            "tensor '{name}': unknown data type {:#x}",
            v.dataType
        ))
    })?;
    let rank = v.rank as usize;
    if rank > 64 || (rank > 0 && v.dimensions.is_null()) {
        return Err(malformed(format!(
            "tensor '{name}': rank {rank} with dims {:p}",
            v.dimensions
        )));
    }
    let dims = if rank == 0 {
        Vec::new()
    } else {
        // SAFETY: non-null array of `rank` dims owned by the library.
        unsafe { std::slice::from_raw_parts(v.dimensions, rank) }.to_vec()
    };
    let q = &v.quantizeParams;
    let quant = if q.encodingDefinition != sys::definition::DEFINED {
        Quant::None
    } else {
        match q.quantizationEncoding {
            sys::quant_encoding::SCALE_OFFSET => {
                // SAFETY: the encoding selects this union member (plain data).
                let so = unsafe { q.u.scaleOffsetEncoding };
                Quant::ScaleOffset {
                    scale: so.scale,
                    offset: so.offset,
                }
            }
            sys::quant_encoding::AXIS_SCALE_OFFSET => {
                // SAFETY: the encoding selects this union member.
                let a = unsafe { q.u.axisScaleOffsetEncoding };
                let n = a.numScaleOffsets as usize;
                if n > 0 && a.scaleOffset.is_null() {
                    return Err(malformed(format!("tensor '{name}': null per-axis scales")));
                }
                let so = if n == 0 {
                    &[][..]
                } else {
                    // SAFETY: non-null array of `n` entries owned by the library.
                    unsafe { std::slice::from_raw_parts(a.scaleOffset, n) }
                };
                Quant::AxisScaleOffset {
                    axis: a.axis.max(0) as u32,
                    scales: so.iter().map(|s| s.scale).collect(),
                    offsets: so.iter().map(|s| s.offset).collect(),
                }
            }
            other => Quant::Other { encoding: other },
        }
    };
    Ok(TensorInfo {
        id: v.id,
        name,
        kind: TensorKind::from_raw(v.type_),
        dtype,
        dims,
        quant,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_type_round_trip_and_sizes() {
        for (d, raw) in DataType::TABLE {
            assert_eq!(d.raw(), raw);
            assert_eq!(DataType::from_raw(raw), Some(d));
        }
        assert_eq!(DataType::UFixed16.raw(), 0x0416);
        assert_eq!(DataType::SFixed8.raw(), 0x0308);
        assert_eq!(DataType::UFixed16.size_bytes(), Some(2));
        assert_eq!(DataType::SFixed4.size_bytes(), None);
        assert!(DataType::UFixed8.is_fixed_point());
        assert!(!DataType::Float32.is_fixed_point());
        assert_eq!(DataType::from_raw(0x1234), None);
    }

    fn spec(quant: Quant, dtype: DataType) -> TensorSpec<'static> {
        TensorSpec::new("t", TensorKind::AppWrite, dtype, &[2, 3], quant)
    }

    #[test]
    fn validation_rejects_bad_specs() {
        let so = Quant::ScaleOffset {
            scale: 0.1,
            offset: -128,
        };
        assert_eq!(
            validate_spec("g", &spec(so.clone(), DataType::UFixed8)).unwrap(),
            6
        );
        assert!(validate_spec("g", &spec(Quant::None, DataType::UFixed8)).is_err());
        assert!(validate_spec("g", &spec(so.clone(), DataType::Float32)).is_err());
        let mut s = spec(so.clone(), DataType::UFixed8);
        s.dims = vec![2, 0];
        assert!(validate_spec("g", &s).is_err());
        s.dims = vec![];
        assert!(validate_spec("g", &s).is_err());
        s.dims = vec![65536, 65536];
        assert!(validate_spec("g", &s).is_err());
        let axis = Quant::AxisScaleOffset {
            axis: 1,
            scales: vec![0.1, 0.2],
            offsets: vec![0, 0],
        };
        let err = validate_spec("g", &spec(axis, DataType::SFixed8)).unwrap_err();
        assert!(err.to_string().contains("3 channels"), "{err}");
        let block = Quant::BlockwiseExpansion {
            axis: 0,
            channel_scales: vec![0.1, 0.1],
            num_blocks_per_axis: 3,
            block_scale_bitwidth: 4,
            block_scales_u8: vec![1, 2, 3, 4, 5, 16],
        };
        let err = validate_spec("g", &spec(block, DataType::SFixed8)).unwrap_err();
        assert!(err.to_string().contains("does not fit"), "{err}");
        // Static data must be exactly the tensor size.
        let data = [0u8; 5];
        let st = TensorSpec::constant("w", DataType::UFixed8, &[2, 3], so, &data);
        let err = validate_spec("g", &st).unwrap_err();
        assert!(err.to_string().contains("expected exactly 6"), "{err}");
    }

    #[test]
    fn raw_tensor_points_at_owned_storage() {
        let q = Quant::BlockwiseExpansion {
            axis: 0,
            channel_scales: vec![0.5, 0.25],
            num_blocks_per_axis: 2,
            block_scale_bitwidth: 4,
            block_scales_u8: vec![1, 2, 3, 4],
        };
        let data = [0u8; 8];
        let t = RawTensor::build(
            7,
            "w",
            sys::tensor_type::STATIC,
            DataType::SFixed8,
            &[2, 4],
            &q,
            Some(&data),
        )
        .unwrap();
        let moved = t; // pointers refer to heap storage, so a move keeps them valid
        let v = moved.raw.v1();
        assert_eq!(v.id, 7);
        assert_eq!(v.rank, 2);
        assert_eq!(
            v.quantizeParams.quantizationEncoding,
            sys::quant_encoding::BLOCKWISE_EXPANSION
        );
        // SAFETY: test reads back pointers into storage owned by `moved`.
        unsafe {
            assert_eq!(std::slice::from_raw_parts(v.dimensions, 2), &[2, 4]);
            let bw = &*v.quantizeParams.u.blockwiseExpansion;
            assert_eq!(bw.numBlocksPerAxis, 2);
            assert_eq!((*bw.scaleOffsets.add(1)).scale, 0.25);
            assert_eq!(*(bw.blocksScale as *const u8).add(3), 4);
            assert_eq!(v.mem.clientBuf.dataSize, 8);
            let info = tensor_info_from_raw(&moved.raw, "test").unwrap();
            assert_eq!(info.name, "w");
            assert_eq!(info.dims, vec![2, 4]);
            assert_eq!(info.kind, Some(TensorKind::Static));
        }
    }
}
