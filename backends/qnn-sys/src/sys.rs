//! Hand-written `#[repr(C)]` declarations of the subset of the QNN C API this
//! project uses (LP64: x86_64 Linux and aarch64 Android).
//!
//! Every layout here is pinned by the tests at the bottom of this file against
//! the offsets verified on the real 2.51 library (`docs/qnn-abi.md` in the
//! shared notes). Names follow the C API (`Qnn_Tensor_t` -> [`Qnn_Tensor_t`])
//! so that the code reads like the QNN documentation; the safe wrappers in the
//! rest of the crate are the intended interface.
//!
//! Conventions of the ABI:
//! - all C enums are 32-bit (`u32` here, constants in submodules);
//! - [`Qnn_ErrorHandle_t`] is a `u64` whose low 16 bits are the error code;
//! - handles are opaque pointers;
//! - unions that contain a pointer are 8-aligned, which pads after a leading `u32`.

#![allow(non_camel_case_types, non_snake_case, missing_docs)]

use std::ffi::{c_char, c_void};

/// Return type of every QNN function; the error code is the low 16 bits.
pub type Qnn_ErrorHandle_t = u64;
/// Opaque handle (all handle kinds are pointers).
pub type Qnn_Handle_t = *mut c_void;
/// Backend handle.
pub type Qnn_BackendHandle_t = Qnn_Handle_t;
/// Device handle.
pub type Qnn_DeviceHandle_t = Qnn_Handle_t;
/// Context handle.
pub type Qnn_ContextHandle_t = Qnn_Handle_t;
/// Graph handle (owned by its context).
pub type Qnn_GraphHandle_t = Qnn_Handle_t;
/// Log handle.
pub type Qnn_LogHandle_t = Qnn_Handle_t;
/// Profile handle.
pub type Qnn_ProfileHandle_t = Qnn_Handle_t;
/// Signal handle.
pub type Qnn_SignalHandle_t = Qnn_Handle_t;
/// Registered-memory handle.
pub type Qnn_MemHandle_t = Qnn_Handle_t;
/// System context handle (libQnnSystem).
pub type QnnSystemContext_Handle_t = Qnn_Handle_t;

/// Extracts the error code (low 16 bits) of an error handle.
pub const fn error_code(handle: Qnn_ErrorHandle_t) -> u16 {
    (handle & 0xFFFF) as u16
}

/// Success.
pub const QNN_SUCCESS: Qnn_ErrorHandle_t = 0;

/// Error codes (low 16 bits of [`Qnn_ErrorHandle_t`]).
pub mod error {
    /// Feature not supported.
    pub const COMMON_NOT_SUPPORTED: u16 = 1000;
    /// Memory allocation failed.
    pub const COMMON_MEM_ALLOC: u16 = 1002;
    /// System error.
    pub const COMMON_SYSTEM: u16 = 1003;
    /// Invalid argument.
    pub const COMMON_INVALID_ARGUMENT: u16 = 1004;
    /// Operation not permitted.
    pub const COMMON_OPERATION_NOT_PERMITTED: u16 = 1005;
    /// Platform not supported.
    pub const COMMON_PLATFORM_NOT_SUPPORTED: u16 = 1006;
    /// Incompatible binaries.
    pub const COMMON_INCOMPATIBLE_BINARIES: u16 = 1008;
    /// First property error.
    pub const MIN_PROPERTY: u16 = 2000;
    /// First backend error.
    pub const MIN_BACKEND: u16 = 4000;
    /// Backend: invalid argument.
    pub const BACKEND_INVALID_ARGUMENT: u16 = 4004;
    /// Backend: invalid config.
    pub const BACKEND_INVALID_CONFIG: u16 = 4012;
    /// First context error.
    pub const MIN_CONTEXT: u16 = 5000;
    /// Context: invalid argument.
    pub const CONTEXT_INVALID_ARGUMENT: u16 = 5000;
    /// Context: binary version mismatch.
    pub const CONTEXT_BINARY_VERSION: u16 = 5004;
    /// Context: create from binary failed.
    pub const CONTEXT_CREATE_FROM_BINARY: u16 = 5005;
    /// Context: invalid config.
    pub const CONTEXT_INVALID_CONFIG: u16 = 5010;
    /// First graph error.
    pub const MIN_GRAPH: u16 = 6000;
    /// Graph: invalid argument.
    pub const GRAPH_INVALID_ARGUMENT: u16 = 6000;
    /// Graph: graph does not exist.
    pub const GRAPH_DOES_NOT_EXIST: u16 = 6002;
    /// Graph: invalid name.
    pub const GRAPH_INVALID_NAME: u16 = 6003;
    /// Graph: invalid tensor.
    pub const GRAPH_INVALID_TENSOR: u16 = 6004;
    /// Graph: invalid op config.
    pub const GRAPH_INVALID_OP_CONFIG: u16 = 6005;
    /// Graph: finalize failed.
    pub const GRAPH_FINALIZE_FAILED: u16 = 6022;
    /// Graph: not finalized.
    pub const GRAPH_NOT_FINALIZED: u16 = 6023;
    /// First tensor error.
    pub const MIN_TENSOR: u16 = 7000;
    /// Tensor: invalid tensor parameter.
    pub const TENSOR_INVALID_TENSOR_PARAM: u16 = 7004;
    /// First log error.
    pub const MIN_LOG: u16 = 11000;
    /// First device error.
    pub const MIN_DEVICE: u16 = 14000;
    /// Device: invalid config.
    pub const DEVICE_INVALID_CONFIG: u16 = 14001;
    /// First system error.
    pub const MIN_SYSTEM: u16 = 30000;
    /// System context: malformed binary.
    pub const SYSTEM_CONTEXT_MALFORMED_BINARY: u16 = 30010;
}

/// Backend ids reported in `QnnInterface_t::backendId`.
pub mod backend_id {
    /// CPU backend.
    pub const CPU: u32 = 3;
    /// GPU backend.
    pub const GPU: u32 = 4;
    /// DSP backend.
    pub const DSP: u32 = 5;
    /// HTP (Hexagon NPU) backend.
    pub const HTP: u32 = 6;
}

/// `Qnn_DataType_t` values.
pub mod data_type {
    pub const INT_8: u32 = 0x0008;
    pub const INT_16: u32 = 0x0016;
    pub const INT_32: u32 = 0x0032;
    pub const INT_64: u32 = 0x0064;
    pub const UINT_8: u32 = 0x0108;
    pub const UINT_16: u32 = 0x0116;
    pub const UINT_32: u32 = 0x0132;
    pub const UINT_64: u32 = 0x0164;
    pub const FLOAT_16: u32 = 0x0216;
    pub const BFLOAT_16: u32 = 0x0226;
    pub const FLOAT_32: u32 = 0x0232;
    pub const FLOAT_64: u32 = 0x0264;
    pub const SFIXED_POINT_4: u32 = 0x0304;
    pub const SFIXED_POINT_8: u32 = 0x0308;
    pub const SFIXED_POINT_16: u32 = 0x0316;
    pub const SFIXED_POINT_32: u32 = 0x0332;
    pub const UFIXED_POINT_4: u32 = 0x0404;
    pub const UFIXED_POINT_8: u32 = 0x0408;
    pub const UFIXED_POINT_16: u32 = 0x0416;
    pub const UFIXED_POINT_32: u32 = 0x0432;
    pub const BOOL_8: u32 = 0x0508;
    pub const STRING: u32 = 0x0608;
    pub const UNDEFINED: u32 = 0x7FFF_FFFF;
}

/// `Qnn_TensorType_t` values.
pub mod tensor_type {
    pub const APP_WRITE: u32 = 0;
    pub const APP_READ: u32 = 1;
    pub const APP_READWRITE: u32 = 2;
    pub const NATIVE: u32 = 3;
    pub const STATIC: u32 = 4;
    pub const NULL: u32 = 5;
}

/// `Qnn_TensorVersion_t` values.
pub mod tensor_version {
    pub const V1: u32 = 1;
    pub const V2: u32 = 2;
}

/// `Qnn_TensorMemType_t` values.
pub mod mem_type {
    pub const RAW: u32 = 0;
    pub const MEMHANDLE: u32 = 1;
}

/// Tensor data formats.
pub const QNN_TENSOR_DATA_FORMAT_FLAT_BUFFER: u32 = 0;

/// `Qnn_Definition_t` values.
pub mod definition {
    pub const IMPL_GENERATED: u32 = 0;
    pub const DEFINED: u32 = 1;
    pub const UNDEFINED: u32 = 0x7FFF_FFFF;
}

/// `Qnn_QuantizationEncoding_t` values.
pub mod quant_encoding {
    pub const SCALE_OFFSET: u32 = 0;
    pub const AXIS_SCALE_OFFSET: u32 = 1;
    pub const BW_SCALE_OFFSET: u32 = 2;
    pub const BW_AXIS_SCALE_OFFSET: u32 = 3;
    pub const BLOCK: u32 = 4;
    pub const BLOCKWISE_EXPANSION: u32 = 5;
    pub const UNDEFINED: u32 = 0x7FFF_FFFF;
}

/// `Qnn_BlockwiseExpansionBlockScaleStorageType_t` values.
pub mod block_scale_storage {
    pub const BITS_8: u32 = 0;
    pub const BITS_16: u32 = 1;
}

/// `Qnn_ParamType_t` values.
pub mod param_type {
    pub const SCALAR: u32 = 0;
    pub const TENSOR: u32 = 1;
}

/// `Qnn_OpConfigVersion_t` values.
pub const QNN_OPCONFIG_VERSION_1: u32 = 1;

/// `QnnLog_Level_t` values.
pub mod log_level {
    pub const ERROR: u32 = 1;
    pub const WARN: u32 = 2;
    pub const INFO: u32 = 3;
    pub const VERBOSE: u32 = 4;
    pub const DEBUG: u32 = 5;
}

/// `Qnn_Precision_t` values.
pub mod precision {
    pub const FLOAT32: u32 = 0;
    pub const FLOAT16: u32 = 1;
}

/// Generic config option values (`QnnBackend/Context/Graph/Device_ConfigOption_t`).
pub const QNN_CONFIG_OPTION_CUSTOM: u32 = 0;

/// HTP device custom config options (`QnnHtpDevice_ConfigOption_t`).
pub mod htp_device_option {
    pub const SOC: u32 = 0;
    pub const ARCH: u32 = 1;
    pub const SIGNEDPD: u32 = 2;
    pub const SECUREPD: u32 = 3;
}

/// HTP context custom config options (`QnnHtpContext_ConfigOption_t`).
pub mod htp_context_option {
    pub const WEIGHT_SHARING_ENABLED: u32 = 1;
}

/// HTP graph custom config options (`QnnHtpGraph_ConfigOption_t`).
pub mod htp_graph_option {
    pub const OPTIMIZATION: u32 = 1;
    pub const PRECISION: u32 = 2;
    pub const VTCM_SIZE_IN_MB: u32 = 3;
    pub const NUM_HVX_THREADS: u32 = 6;
}

/// HTP graph optimization types (`QnnHtpGraph_OptimizationType_t`).
pub mod htp_graph_optimization {
    pub const SCHEDULE_THRESHOLD: u32 = 1;
    pub const FINALIZE_RETRIES: u32 = 2;
    pub const FINALIZE_OPTIMIZATION_FLAG: u32 = 3;
}

/// Versions of `QnnSystemContext_BinaryInfo_t` / `QnnSystemContext_GraphInfo_t`.
pub mod system_info_version {
    pub const V1: u32 = 1;
    pub const V2: u32 = 2;
    pub const V3: u32 = 3;
}

// ---------------------------------------------------------------------------
// Versions
// ---------------------------------------------------------------------------

/// `Qnn_Version_t`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Qnn_Version_t {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

/// `Qnn_ApiVersion_t`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Qnn_ApiVersion_t {
    pub coreApiVersion: Qnn_Version_t,
    pub backendApiVersion: Qnn_Version_t,
}

// ---------------------------------------------------------------------------
// Quantization
// ---------------------------------------------------------------------------

/// `Qnn_ScaleOffset_t`: real = (q + offset) * scale.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Qnn_ScaleOffset_t {
    pub scale: f32,
    pub offset: i32,
}

/// `Qnn_AxisScaleOffset_t`: one scale/offset per index along `axis`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct Qnn_AxisScaleOffset_t {
    pub axis: i32,
    pub numScaleOffsets: u32,
    pub scaleOffset: *mut Qnn_ScaleOffset_t,
}

/// `Qnn_BwAxisScaleOffset_t` (declared for the union size only).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct Qnn_BwAxisScaleOffset_t {
    pub bitwidth: u32,
    pub axis: i32,
    pub numElements: u32,
    pub scales: *mut f32,
    pub offsets: *mut i32,
}

/// `Qnn_BlockwiseExpansion_t` (LPBQ): per-channel float scales times
/// low-bit per-block integer scales.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct Qnn_BlockwiseExpansion_t {
    /// Output-channel axis of the weight.
    pub axis: i32,
    /// One `{scale, offset = 0}` per channel along `axis`.
    pub scaleOffsets: *mut Qnn_ScaleOffset_t,
    /// Blocks per channel (= in_channels / block size).
    pub numBlocksPerAxis: u32,
    /// Bit width of the block scales (4 for LPBQ).
    pub blockScaleBitwidth: u32,
    /// [`block_scale_storage`] value.
    pub blockScaleStorageType: u32,
    /// `u8*` (or `u16*`) block scales laid out `[channel * numBlocks + block]`.
    pub blocksScale: *mut c_void,
}

/// The encoding union of [`Qnn_QuantizeParams_t`] (32 bytes, 8-aligned).
#[repr(C)]
#[derive(Clone, Copy)]
pub union Qnn_QuantizeParamsUnion {
    pub scaleOffsetEncoding: Qnn_ScaleOffset_t,
    pub axisScaleOffsetEncoding: Qnn_AxisScaleOffset_t,
    pub bwAxisScaleOffsetEncoding: Qnn_BwAxisScaleOffset_t,
    pub blockwiseExpansion: *mut Qnn_BlockwiseExpansion_t,
}

/// `Qnn_QuantizeParams_t` (40 bytes).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Qnn_QuantizeParams_t {
    /// [`definition`] value.
    pub encodingDefinition: u32,
    /// [`quant_encoding`] value.
    pub quantizationEncoding: u32,
    pub u: Qnn_QuantizeParamsUnion,
}

impl Qnn_QuantizeParams_t {
    /// "Not quantized" (undefined encoding).
    pub const fn undefined() -> Self {
        Self {
            encodingDefinition: definition::UNDEFINED,
            quantizationEncoding: quant_encoding::UNDEFINED,
            u: Qnn_QuantizeParamsUnion {
                bwAxisScaleOffsetEncoding: Qnn_BwAxisScaleOffset_t {
                    bitwidth: 0,
                    axis: 0,
                    numElements: 0,
                    scales: std::ptr::null_mut(),
                    offsets: std::ptr::null_mut(),
                },
            },
        }
    }
}

// ---------------------------------------------------------------------------
// Tensors
// ---------------------------------------------------------------------------

/// `Qnn_ClientBuffer_t`: caller memory for a tensor.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct Qnn_ClientBuffer_t {
    pub data: *mut c_void,
    pub dataSize: u32,
}

/// Memory union of a tensor (client buffer or registered memory handle).
#[repr(C)]
#[derive(Clone, Copy)]
pub union Qnn_TensorMemUnion {
    pub clientBuf: Qnn_ClientBuffer_t,
    pub memHandle: Qnn_MemHandle_t,
}

/// `Qnn_TensorV1_t` (112 bytes).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Qnn_TensorV1_t {
    pub id: u32,
    pub name: *const c_char,
    /// [`tensor_type`] value.
    pub type_: u32,
    pub dataFormat: u32,
    /// [`data_type`] value.
    pub dataType: u32,
    pub quantizeParams: Qnn_QuantizeParams_t,
    pub rank: u32,
    pub dimensions: *mut u32,
    /// [`mem_type`] value.
    pub memType: u32,
    pub mem: Qnn_TensorMemUnion,
}

/// `Qnn_SparseParams_t` (12 bytes).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct Qnn_SparseParams_t {
    pub type_: u32,
    pub numSpecifiedElements: u32,
    pub numSparseDimensions: u32,
}

/// `Qnn_TensorV2_t` (136 bytes): V1 plus dynamic-shape and sparsity fields.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Qnn_TensorV2_t {
    pub v1: Qnn_TensorV1_t,
    pub isDynamicDimensions: *mut u8,
    pub sparseParams: Qnn_SparseParams_t,
    pub isProduced: u8,
}

/// Version union of [`Qnn_Tensor_t`].
#[repr(C)]
#[derive(Clone, Copy)]
pub union Qnn_TensorUnion {
    pub v1: Qnn_TensorV1_t,
    pub v2: Qnn_TensorV2_t,
}

/// `Qnn_Tensor_t` (144 bytes; arrays of tensors are strided by 144).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Qnn_Tensor_t {
    /// [`tensor_version`] value.
    pub version: u32,
    pub u: Qnn_TensorUnion,
}

impl Qnn_Tensor_t {
    /// The fields common to every tensor version (V2 starts with the V1 layout).
    ///
    /// Only meaningful for `version` 1 or 2.
    pub fn v1(&self) -> &Qnn_TensorV1_t {
        // SAFETY: both union members start with the same `Qnn_TensorV1_t`
        // layout, and every bit pattern of its plain fields is a valid value
        // (integers and raw pointers), so reading `v1` is always defined.
        unsafe { &self.u.v1 }
    }
}

// ---------------------------------------------------------------------------
// Params and op configs
// ---------------------------------------------------------------------------

/// Value union of [`Qnn_Scalar_t`].
#[repr(C)]
#[derive(Clone, Copy)]
pub union Qnn_ScalarValue {
    pub floatValue: f32,
    pub doubleValue: f64,
    pub uint64Value: u64,
    pub int64Value: i64,
    pub uint32Value: u32,
    pub int32Value: i32,
    pub uint16Value: u16,
    pub int16Value: i16,
    pub uint8Value: u8,
    pub int8Value: i8,
    pub bool8Value: u8,
    pub stringValue: *const c_char,
}

/// `Qnn_Scalar_t` (16 bytes).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Qnn_Scalar_t {
    /// [`data_type`] value.
    pub dataType: u32,
    pub value: Qnn_ScalarValue,
}

/// Union of [`Qnn_Param_t`].
#[repr(C)]
#[derive(Clone, Copy)]
pub union Qnn_ParamUnion {
    pub scalarParam: Qnn_Scalar_t,
    pub tensorParam: Qnn_Tensor_t,
}

/// `Qnn_Param_t` (160 bytes).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Qnn_Param_t {
    /// [`param_type`] value.
    pub paramType: u32,
    pub name: *const c_char,
    pub u: Qnn_ParamUnion,
}

/// `Qnn_OpConfigV1_t` (72 bytes).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct Qnn_OpConfigV1_t {
    pub name: *const c_char,
    pub packageName: *const c_char,
    pub typeName: *const c_char,
    pub numOfParams: u32,
    pub params: *mut Qnn_Param_t,
    pub numOfInputs: u32,
    pub inputTensors: *mut Qnn_Tensor_t,
    pub numOfOutputs: u32,
    pub outputTensors: *mut Qnn_Tensor_t,
}

/// `Qnn_OpConfig_t` (80 bytes; passed by value to `graphAddNode`).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct Qnn_OpConfig_t {
    /// [`QNN_OPCONFIG_VERSION_1`].
    pub version: u32,
    pub v1: Qnn_OpConfigV1_t,
}

// ---------------------------------------------------------------------------
// Configs
// ---------------------------------------------------------------------------

/// Payload union shared by the generic config structs; only `custom` is used.
#[repr(C)]
#[derive(Clone, Copy)]
pub union Qnn_ConfigUnion {
    /// Pointer to a backend-specific custom config struct.
    pub customConfig: *mut c_void,
    pub uint64Value: u64,
    pub uint32Value: u32,
    pub stringValue: *const c_char,
}

/// Layout shared by `QnnBackend_Config_t`, `QnnContext_Config_t`,
/// `QnnGraph_Config_t` and `QnnDevice_Config_t`: `{u32 option; union @8}` (16 bytes).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Qnn_GenericConfig_t {
    /// Option; [`QNN_CONFIG_OPTION_CUSTOM`] = custom pointer.
    pub option: u32,
    pub u: Qnn_ConfigUnion,
}

/// `QnnBackend_Config_t`.
pub type QnnBackend_Config_t = Qnn_GenericConfig_t;
/// `QnnContext_Config_t`.
pub type QnnContext_Config_t = Qnn_GenericConfig_t;
/// `QnnGraph_Config_t`.
pub type QnnGraph_Config_t = Qnn_GenericConfig_t;
/// `QnnDevice_Config_t`.
pub type QnnDevice_Config_t = Qnn_GenericConfig_t;

/// `QnnHtpDevice_Minimum_Arch_t`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct QnnHtpDevice_Arch_t {
    pub deviceId: u32,
    pub arch: u32,
}

/// `QnnHtpDevice_UseSignedProcessDomain_t`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct QnnHtpDevice_SignedPd_t {
    pub deviceId: u32,
    pub useSignedProcessDomain: bool,
}

/// Union of [`QnnHtpDevice_CustomConfig_t`]; 8-aligned as the 2.51 library reads it.
#[repr(C, align(8))]
#[derive(Clone, Copy)]
pub union QnnHtpDevice_CustomConfigUnion {
    pub socModel: u32,
    pub arch: QnnHtpDevice_Arch_t,
    pub useSignedProcessDomain: QnnHtpDevice_SignedPd_t,
}

/// `QnnHtpDevice_CustomConfig_t` as the 2.51 library reads it: union at @8,
/// 16 bytes (older headers put it at @4, which the library misreads).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct QnnHtpDevice_CustomConfig_t {
    /// [`htp_device_option`] value.
    pub option: u32,
    pub u: QnnHtpDevice_CustomConfigUnion,
}

/// `QnnHtpContext_GroupRegistration_t` (declared for the union size).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct QnnHtpContext_GroupRegistration_t {
    pub firstGroupHandle: Qnn_ContextHandle_t,
    pub maxSpillFillBuffer: u64,
}

/// Union of [`QnnHtpContext_CustomConfig_t`].
#[repr(C)]
#[derive(Clone, Copy)]
pub union QnnHtpContext_CustomConfigUnion {
    pub weightSharingEnabled: bool,
    pub groupRegistration: QnnHtpContext_GroupRegistration_t,
    pub fileReadMemoryBudgetInMb: u64,
}

/// `QnnHtpContext_CustomConfig_t`: `{u32 option; union @8}`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct QnnHtpContext_CustomConfig_t {
    /// [`htp_context_option`] value.
    pub option: u32,
    pub u: QnnHtpContext_CustomConfigUnion,
}

/// `QnnHtpGraph_OptimizationOption_t`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct QnnHtpGraph_OptimizationOption_t {
    /// [`htp_graph_optimization`] value.
    pub type_: u32,
    pub floatValue: f32,
}

/// Union of [`QnnHtpGraph_CustomConfig_t`] (sized like the 2.43 headers: 48 bytes).
#[repr(C)]
#[derive(Clone, Copy)]
pub union QnnHtpGraph_CustomConfigUnion {
    pub optimizationOption: QnnHtpGraph_OptimizationOption_t,
    /// [`precision`] value.
    pub precision: u32,
    pub vtcmSizeInMB: u32,
    pub numHvxThreads: u64,
    pub reserved: *mut c_void,
    pub _size: [u64; 6],
}

/// `QnnHtpGraph_CustomConfig_t`: `{u32 option; union @8}`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct QnnHtpGraph_CustomConfig_t {
    /// [`htp_graph_option`] value.
    pub option: u32,
    pub u: QnnHtpGraph_CustomConfigUnion,
}

// ---------------------------------------------------------------------------
// Interface table
// ---------------------------------------------------------------------------

/// `QnnLog_Callback_t`. The last argument is a C `va_list`, which on every
/// LP64 ABI we target arrives as a single pointer-sized value (x86_64: the
/// array type decays to a pointer; AAPCS64: the 32-byte struct is passed by
/// reference), so it can be forwarded to `vsnprintf` unchanged.
pub type QnnLog_Callback_t =
    Option<unsafe extern "C" fn(fmt: *const c_char, level: u32, timestamp: u64, args: *mut c_void)>;

/// An interface slot whose signature this crate does not use.
pub type UnusedFn = Option<unsafe extern "C" fn()>;

pub type PropertyHasCapabilityFn = Option<unsafe extern "C" fn(u32) -> Qnn_ErrorHandle_t>;
pub type BackendCreateFn = Option<
    unsafe extern "C" fn(
        Qnn_LogHandle_t,
        *const *const QnnBackend_Config_t,
        *mut Qnn_BackendHandle_t,
    ) -> Qnn_ErrorHandle_t,
>;
pub type BackendGetApiVersionFn =
    Option<unsafe extern "C" fn(*mut Qnn_ApiVersion_t) -> Qnn_ErrorHandle_t>;
pub type BackendGetBuildIdFn =
    Option<unsafe extern "C" fn(*mut *const c_char) -> Qnn_ErrorHandle_t>;
pub type BackendValidateOpConfigFn =
    Option<unsafe extern "C" fn(Qnn_BackendHandle_t, Qnn_OpConfig_t) -> Qnn_ErrorHandle_t>;
pub type BackendFreeFn = Option<unsafe extern "C" fn(Qnn_BackendHandle_t) -> Qnn_ErrorHandle_t>;
pub type ContextCreateFn = Option<
    unsafe extern "C" fn(
        Qnn_BackendHandle_t,
        Qnn_DeviceHandle_t,
        *const *const QnnContext_Config_t,
        *mut Qnn_ContextHandle_t,
    ) -> Qnn_ErrorHandle_t,
>;
pub type ContextGetBinarySizeFn =
    Option<unsafe extern "C" fn(Qnn_ContextHandle_t, *mut u64) -> Qnn_ErrorHandle_t>;
pub type ContextGetBinaryFn = Option<
    unsafe extern "C" fn(Qnn_ContextHandle_t, *mut c_void, u64, *mut u64) -> Qnn_ErrorHandle_t,
>;
pub type ContextCreateFromBinaryFn = Option<
    unsafe extern "C" fn(
        Qnn_BackendHandle_t,
        Qnn_DeviceHandle_t,
        *const *const QnnContext_Config_t,
        *const c_void,
        u64,
        *mut Qnn_ContextHandle_t,
        Qnn_ProfileHandle_t,
    ) -> Qnn_ErrorHandle_t,
>;
pub type ContextFreeFn =
    Option<unsafe extern "C" fn(Qnn_ContextHandle_t, Qnn_ProfileHandle_t) -> Qnn_ErrorHandle_t>;
pub type GraphCreateFn = Option<
    unsafe extern "C" fn(
        Qnn_ContextHandle_t,
        *const c_char,
        *const *const QnnGraph_Config_t,
        *mut Qnn_GraphHandle_t,
    ) -> Qnn_ErrorHandle_t,
>;
pub type GraphAddNodeFn =
    Option<unsafe extern "C" fn(Qnn_GraphHandle_t, Qnn_OpConfig_t) -> Qnn_ErrorHandle_t>;
pub type GraphFinalizeFn = Option<
    unsafe extern "C" fn(
        Qnn_GraphHandle_t,
        Qnn_ProfileHandle_t,
        Qnn_SignalHandle_t,
    ) -> Qnn_ErrorHandle_t,
>;
pub type GraphRetrieveFn = Option<
    unsafe extern "C" fn(
        Qnn_ContextHandle_t,
        *const c_char,
        *mut Qnn_GraphHandle_t,
    ) -> Qnn_ErrorHandle_t,
>;
pub type GraphExecuteFn = Option<
    unsafe extern "C" fn(
        Qnn_GraphHandle_t,
        *const Qnn_Tensor_t,
        u32,
        *mut Qnn_Tensor_t,
        u32,
        Qnn_ProfileHandle_t,
        Qnn_SignalHandle_t,
    ) -> Qnn_ErrorHandle_t,
>;
pub type TensorCreateGraphTensorFn =
    Option<unsafe extern "C" fn(Qnn_GraphHandle_t, *mut Qnn_Tensor_t) -> Qnn_ErrorHandle_t>;
pub type TensorCreateContextTensorFn =
    Option<unsafe extern "C" fn(Qnn_ContextHandle_t, *mut Qnn_Tensor_t) -> Qnn_ErrorHandle_t>;
pub type LogCreateFn =
    Option<unsafe extern "C" fn(QnnLog_Callback_t, u32, *mut Qnn_LogHandle_t) -> Qnn_ErrorHandle_t>;
pub type LogSetLogLevelFn = Option<unsafe extern "C" fn(Qnn_LogHandle_t, u32) -> Qnn_ErrorHandle_t>;
pub type LogFreeFn = Option<unsafe extern "C" fn(Qnn_LogHandle_t) -> Qnn_ErrorHandle_t>;
pub type DeviceCreateFn = Option<
    unsafe extern "C" fn(
        Qnn_LogHandle_t,
        *const *const QnnDevice_Config_t,
        *mut Qnn_DeviceHandle_t,
    ) -> Qnn_ErrorHandle_t,
>;
pub type DeviceFreeFn = Option<unsafe extern "C" fn(Qnn_DeviceHandle_t) -> Qnn_ErrorHandle_t>;
pub type ErrorGetMessageFn =
    Option<unsafe extern "C" fn(Qnn_ErrorHandle_t, *mut *const c_char) -> Qnn_ErrorHandle_t>;
pub type ErrorFreeVerboseMessageFn =
    Option<unsafe extern "C" fn(*const c_char) -> Qnn_ErrorHandle_t>;
pub type ContextValidateBinaryFn = Option<
    unsafe extern "C" fn(
        Qnn_BackendHandle_t,
        Qnn_DeviceHandle_t,
        *const *const QnnContext_Config_t,
        *const c_void,
        u64,
    ) -> Qnn_ErrorHandle_t,
>;

/// The core function table (`QNN_INTERFACE_VER_TYPE`), slots 0..=54.
///
/// Newer libraries append slots; this prefix stays valid. Only read through a
/// pointer handed out by `QnnInterface_getProviders`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct QnnInterfaceFunctions {
    /* 0 */ pub propertyHasCapability: PropertyHasCapabilityFn,
    /* 1 */ pub backendCreate: BackendCreateFn,
    /* 2 */ pub backendSetConfig: UnusedFn,
    /* 3 */ pub backendGetApiVersion: BackendGetApiVersionFn,
    /* 4 */ pub backendGetBuildId: BackendGetBuildIdFn,
    /* 5 */ pub backendRegisterOpPackage: UnusedFn,
    /* 6 */ pub backendGetSupportedOperations: UnusedFn,
    /* 7 */ pub backendValidateOpConfig: BackendValidateOpConfigFn,
    /* 8 */ pub backendFree: BackendFreeFn,
    /* 9 */ pub contextCreate: ContextCreateFn,
    /* 10 */ pub contextSetConfig: UnusedFn,
    /* 11 */ pub contextGetBinarySize: ContextGetBinarySizeFn,
    /* 12 */ pub contextGetBinary: ContextGetBinaryFn,
    /* 13 */ pub contextCreateFromBinary: ContextCreateFromBinaryFn,
    /* 14 */ pub contextFree: ContextFreeFn,
    /* 15 */ pub graphCreate: GraphCreateFn,
    /* 16 */ pub graphCreateSubgraph: UnusedFn,
    /* 17 */ pub graphSetConfig: UnusedFn,
    /* 18 */ pub graphAddNode: GraphAddNodeFn,
    /* 19 */ pub graphFinalize: GraphFinalizeFn,
    /* 20 */ pub graphRetrieve: GraphRetrieveFn,
    /* 21 */ pub graphExecute: GraphExecuteFn,
    /* 22 */ pub graphExecuteAsync: UnusedFn,
    /* 23 */ pub tensorCreateContextTensor: TensorCreateContextTensorFn,
    /* 24 */ pub tensorCreateGraphTensor: TensorCreateGraphTensorFn,
    /* 25 */ pub logCreate: LogCreateFn,
    /* 26 */ pub logSetLogLevel: LogSetLogLevelFn,
    /* 27 */ pub logFree: LogFreeFn,
    /* 28 */ pub profileCreate: UnusedFn,
    /* 29 */ pub profileSetConfig: UnusedFn,
    /* 30 */ pub profileGetEvents: UnusedFn,
    /* 31 */ pub profileGetSubEvents: UnusedFn,
    /* 32 */ pub profileGetEventData: UnusedFn,
    /* 33 */ pub profileGetExtendedEventData: UnusedFn,
    /* 34 */ pub profileFree: UnusedFn,
    /* 35 */ pub memRegister: UnusedFn,
    /* 36 */ pub memDeRegister: UnusedFn,
    /* 37 */ pub deviceGetPlatformInfo: UnusedFn,
    /* 38 */ pub deviceFreePlatformInfo: UnusedFn,
    /* 39 */ pub deviceGetInfrastructure: UnusedFn,
    /* 40 */ pub deviceCreate: DeviceCreateFn,
    /* 41 */ pub deviceSetConfig: UnusedFn,
    /* 42 */ pub deviceGetInfo: UnusedFn,
    /* 43 */ pub deviceFree: DeviceFreeFn,
    /* 44 */ pub signalCreate: UnusedFn,
    /* 45 */ pub signalSetConfig: UnusedFn,
    /* 46 */ pub signalTrigger: UnusedFn,
    /* 47 */ pub signalFree: UnusedFn,
    /* 48 */ pub errorGetMessage: ErrorGetMessageFn,
    /* 49 */ pub errorGetVerboseMessage: ErrorGetMessageFn,
    /* 50 */ pub errorFreeVerboseMessage: ErrorFreeVerboseMessageFn,
    /* 51 */ pub graphPrepareExecutionEnvironment: UnusedFn,
    /* 52 */ pub graphReleaseExecutionEnvironment: UnusedFn,
    /* 53 */ pub graphGetProperty: UnusedFn,
    /* 54 */ pub contextValidateBinary: ContextValidateBinaryFn,
}

/// Number of slots declared in [`QnnInterfaceFunctions`].
pub const QNN_INTERFACE_DECLARED_SLOTS: usize = 55;

/// `QnnInterface_t`: provider description followed by the function table @40.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct QnnInterface_t {
    pub backendId: u32,
    pub providerName: *const c_char,
    pub apiVersion: Qnn_ApiVersion_t,
    pub functions: QnnInterfaceFunctions,
}

/// `QnnInterface_getProviders`.
pub type QnnInterfaceGetProvidersFn =
    unsafe extern "C" fn(*mut *mut *const QnnInterface_t, *mut u32) -> Qnn_ErrorHandle_t;

/// Symbol name of the core provider entry point.
pub const QNN_INTERFACE_GET_PROVIDERS: &[u8] = b"QnnInterface_getProviders\0";

// ---------------------------------------------------------------------------
// System API (libQnnSystem)
// ---------------------------------------------------------------------------

pub type SystemContextCreateFn =
    Option<unsafe extern "C" fn(*mut QnnSystemContext_Handle_t) -> Qnn_ErrorHandle_t>;
pub type SystemContextGetBinaryInfoFn = Option<
    unsafe extern "C" fn(
        QnnSystemContext_Handle_t,
        *mut c_void,
        u64,
        *mut *const QnnSystemContext_BinaryInfo_t,
        *mut u64,
    ) -> Qnn_ErrorHandle_t,
>;
pub type SystemContextGetMetaDataFn = Option<
    unsafe extern "C" fn(
        QnnSystemContext_Handle_t,
        *const c_void,
        u64,
        *mut *const QnnSystemContext_BinaryInfo_t,
    ) -> Qnn_ErrorHandle_t,
>;
pub type SystemContextFreeFn =
    Option<unsafe extern "C" fn(QnnSystemContext_Handle_t) -> Qnn_ErrorHandle_t>;

/// The system function table (slots 0..=3 are used).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct QnnSystemInterfaceFunctions {
    /* 0 */ pub systemContextCreate: SystemContextCreateFn,
    /* 1 */ pub systemContextGetBinaryInfo: SystemContextGetBinaryInfoFn,
    /* 2 */ pub systemContextGetMetaData: SystemContextGetMetaDataFn,
    /* 3 */ pub systemContextFree: SystemContextFreeFn,
}

/// `QnnSystemInterface_t`: the function table starts @32.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct QnnSystemInterface_t {
    pub backendId: u32,
    pub providerName: *const c_char,
    pub systemApiVersion: Qnn_Version_t,
    pub functions: QnnSystemInterfaceFunctions,
}

/// `QnnSystemInterface_getProviders`.
pub type QnnSystemInterfaceGetProvidersFn =
    unsafe extern "C" fn(*mut *mut *const QnnSystemInterface_t, *mut u32) -> Qnn_ErrorHandle_t;

/// Symbol name of the system provider entry point.
pub const QNN_SYSTEM_INTERFACE_GET_PROVIDERS: &[u8] = b"QnnSystemInterface_getProviders\0";

/// `QnnSystemContext_GraphInfoV1_t`; V2 and V3 start with the same fields.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct QnnSystemContext_GraphInfoV1_t {
    pub graphName: *const c_char,
    pub numGraphInputs: u32,
    pub graphInputs: *mut Qnn_Tensor_t,
    pub numGraphOutputs: u32,
    pub graphOutputs: *mut Qnn_Tensor_t,
}

/// `QnnSystemContext_GraphInfoV3_t` (the largest version; sets the array stride).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct QnnSystemContext_GraphInfoV3_t {
    pub base: QnnSystemContext_GraphInfoV1_t,
    pub numUpdateableTensors: u32,
    pub updateableTensors: *mut Qnn_Tensor_t,
    pub graphBlobInfoSize: u32,
    pub graphBlobInfo: *mut c_void,
    pub startOpIndex: u32,
    pub endOpIndex: u32,
}

/// Version union of [`QnnSystemContext_GraphInfo_t`].
#[repr(C)]
#[derive(Clone, Copy)]
pub union QnnSystemContext_GraphInfoUnion {
    pub graphInfoV1: QnnSystemContext_GraphInfoV1_t,
    pub graphInfoV3: QnnSystemContext_GraphInfoV3_t,
}

/// `QnnSystemContext_GraphInfo_t` (88 bytes).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct QnnSystemContext_GraphInfo_t {
    /// [`system_info_version`] value.
    pub version: u32,
    pub u: QnnSystemContext_GraphInfoUnion,
}

/// `QnnSystemContext_BinaryInfoV1_t` (128 bytes).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct QnnSystemContext_BinaryInfoV1_t {
    pub backendId: u32,
    pub buildId: *const c_char,
    pub coreApiVersion: Qnn_Version_t,
    pub backendApiVersion: Qnn_Version_t,
    pub socVersion: *const c_char,
    pub hwInfoBlobVersion: Qnn_Version_t,
    pub contextBlobVersion: Qnn_Version_t,
    pub hwInfoBlobSize: u32,
    pub hwInfoBlob: *mut c_void,
    pub contextBlobSize: u64,
    pub numContextTensors: u32,
    pub contextTensors: *mut Qnn_Tensor_t,
    pub numGraphs: u32,
    pub graphs: *mut QnnSystemContext_GraphInfo_t,
}

/// `QnnSystemContext_BinaryInfoV2_t` (V1 plus `platformInfo`, 136 bytes).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct QnnSystemContext_BinaryInfoV2_t {
    pub v1: QnnSystemContext_BinaryInfoV1_t,
    pub platformInfo: *mut c_void,
}

/// `QnnSystemContext_BinaryInfoV3_t` (136 bytes); not a prefix of V1.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct QnnSystemContext_BinaryInfoV3_t {
    pub backendId: u32,
    pub buildId: *const c_char,
    pub coreApiVersion: Qnn_Version_t,
    pub backendApiVersion: Qnn_Version_t,
    pub socVersion: *const c_char,
    pub contextBlobVersion: Qnn_Version_t,
    pub contextBlobSize: u64,
    pub numContextTensors: u32,
    pub contextTensors: *mut Qnn_Tensor_t,
    pub numGraphs: u32,
    pub graphs: *mut QnnSystemContext_GraphInfo_t,
    pub platformInfo: *mut c_void,
    pub contextMetadataSize: u32,
    pub contextMetadata: *mut c_void,
    pub socModel: u32,
}

/// Version union of [`QnnSystemContext_BinaryInfo_t`].
#[repr(C)]
#[derive(Clone, Copy)]
pub union QnnSystemContext_BinaryInfoUnion {
    pub contextBinaryInfoV1: QnnSystemContext_BinaryInfoV1_t,
    pub contextBinaryInfoV2: QnnSystemContext_BinaryInfoV2_t,
    pub contextBinaryInfoV3: QnnSystemContext_BinaryInfoV3_t,
}

/// `QnnSystemContext_BinaryInfo_t`: `{u32 version; union @8}`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct QnnSystemContext_BinaryInfo_t {
    /// [`system_info_version`] value.
    pub version: u32,
    pub u: QnnSystemContext_BinaryInfoUnion,
}

#[cfg(test)]
mod layout_tests {
    //! Pins every size and offset stated in the verified ABI notes.
    use super::*;
    use std::mem::{align_of, offset_of, size_of};

    #[test]
    fn scalar_sizes() {
        assert_eq!(size_of::<Qnn_ErrorHandle_t>(), 8);
        assert_eq!(size_of::<Qnn_Handle_t>(), 8);
        assert_eq!(error_code(0xABCD_0000_1388), 0x1388);
        assert_eq!(error_code(30010), 30010);
    }

    #[test]
    fn interface_layout() {
        assert_eq!(size_of::<Qnn_Version_t>(), 12);
        assert_eq!(size_of::<Qnn_ApiVersion_t>(), 24);
        assert_eq!(offset_of!(QnnInterface_t, backendId), 0);
        assert_eq!(offset_of!(QnnInterface_t, providerName), 8);
        assert_eq!(offset_of!(QnnInterface_t, apiVersion), 16);
        assert_eq!(offset_of!(QnnInterface_t, functions), 40);
        assert_eq!(
            size_of::<QnnInterfaceFunctions>(),
            8 * QNN_INTERFACE_DECLARED_SLOTS
        );
        let slot = |off: usize| off / 8;
        assert_eq!(
            slot(offset_of!(QnnInterfaceFunctions, propertyHasCapability)),
            0
        );
        assert_eq!(slot(offset_of!(QnnInterfaceFunctions, backendCreate)), 1);
        assert_eq!(
            slot(offset_of!(QnnInterfaceFunctions, backendGetApiVersion)),
            3
        );
        assert_eq!(
            slot(offset_of!(QnnInterfaceFunctions, backendGetBuildId)),
            4
        );
        assert_eq!(
            slot(offset_of!(QnnInterfaceFunctions, backendValidateOpConfig)),
            7
        );
        assert_eq!(slot(offset_of!(QnnInterfaceFunctions, backendFree)), 8);
        assert_eq!(slot(offset_of!(QnnInterfaceFunctions, contextCreate)), 9);
        assert_eq!(
            slot(offset_of!(QnnInterfaceFunctions, contextGetBinarySize)),
            11
        );
        assert_eq!(
            slot(offset_of!(QnnInterfaceFunctions, contextGetBinary)),
            12
        );
        assert_eq!(
            slot(offset_of!(QnnInterfaceFunctions, contextCreateFromBinary)),
            13
        );
        assert_eq!(slot(offset_of!(QnnInterfaceFunctions, contextFree)), 14);
        assert_eq!(slot(offset_of!(QnnInterfaceFunctions, graphCreate)), 15);
        assert_eq!(slot(offset_of!(QnnInterfaceFunctions, graphAddNode)), 18);
        assert_eq!(slot(offset_of!(QnnInterfaceFunctions, graphFinalize)), 19);
        assert_eq!(slot(offset_of!(QnnInterfaceFunctions, graphRetrieve)), 20);
        assert_eq!(slot(offset_of!(QnnInterfaceFunctions, graphExecute)), 21);
        assert_eq!(
            slot(offset_of!(QnnInterfaceFunctions, tensorCreateContextTensor)),
            23
        );
        assert_eq!(
            slot(offset_of!(QnnInterfaceFunctions, tensorCreateGraphTensor)),
            24
        );
        assert_eq!(slot(offset_of!(QnnInterfaceFunctions, logCreate)), 25);
        assert_eq!(slot(offset_of!(QnnInterfaceFunctions, logSetLogLevel)), 26);
        assert_eq!(slot(offset_of!(QnnInterfaceFunctions, logFree)), 27);
        assert_eq!(slot(offset_of!(QnnInterfaceFunctions, profileCreate)), 28);
        assert_eq!(slot(offset_of!(QnnInterfaceFunctions, profileFree)), 34);
        assert_eq!(slot(offset_of!(QnnInterfaceFunctions, memRegister)), 35);
        assert_eq!(slot(offset_of!(QnnInterfaceFunctions, memDeRegister)), 36);
        assert_eq!(
            slot(offset_of!(QnnInterfaceFunctions, deviceGetPlatformInfo)),
            37
        );
        assert_eq!(slot(offset_of!(QnnInterfaceFunctions, deviceCreate)), 40);
        assert_eq!(slot(offset_of!(QnnInterfaceFunctions, deviceFree)), 43);
        assert_eq!(slot(offset_of!(QnnInterfaceFunctions, signalCreate)), 44);
        assert_eq!(slot(offset_of!(QnnInterfaceFunctions, signalFree)), 47);
        assert_eq!(slot(offset_of!(QnnInterfaceFunctions, errorGetMessage)), 48);
        assert_eq!(
            slot(offset_of!(QnnInterfaceFunctions, errorGetVerboseMessage)),
            49
        );
        assert_eq!(
            slot(offset_of!(QnnInterfaceFunctions, errorFreeVerboseMessage)),
            50
        );
        assert_eq!(
            slot(offset_of!(
                QnnInterfaceFunctions,
                graphPrepareExecutionEnvironment
            )),
            51
        );
        assert_eq!(
            slot(offset_of!(QnnInterfaceFunctions, graphGetProperty)),
            53
        );
        assert_eq!(
            slot(offset_of!(QnnInterfaceFunctions, contextValidateBinary)),
            54
        );
    }

    #[test]
    fn quantize_params_layout() {
        assert_eq!(size_of::<Qnn_ScaleOffset_t>(), 8);
        assert_eq!(size_of::<Qnn_QuantizeParams_t>(), 40);
        assert_eq!(align_of::<Qnn_QuantizeParams_t>(), 8);
        assert_eq!(offset_of!(Qnn_QuantizeParams_t, encodingDefinition), 0);
        assert_eq!(offset_of!(Qnn_QuantizeParams_t, quantizationEncoding), 4);
        assert_eq!(offset_of!(Qnn_QuantizeParams_t, u), 8);
        assert_eq!(size_of::<Qnn_QuantizeParamsUnion>(), 32);
        // Scale/offset: {f32 scale @8; i32 offset @12} of the outer struct.
        assert_eq!(offset_of!(Qnn_ScaleOffset_t, scale), 0);
        assert_eq!(offset_of!(Qnn_ScaleOffset_t, offset), 4);
        // Axis scale/offset: {i32 axis; u32 num; ScaleOffset* @8}.
        assert_eq!(offset_of!(Qnn_AxisScaleOffset_t, axis), 0);
        assert_eq!(offset_of!(Qnn_AxisScaleOffset_t, numScaleOffsets), 4);
        assert_eq!(offset_of!(Qnn_AxisScaleOffset_t, scaleOffset), 8);
        assert_eq!(size_of::<Qnn_AxisScaleOffset_t>(), 16);
    }

    #[test]
    fn blockwise_expansion_layout() {
        assert_eq!(size_of::<Qnn_BlockwiseExpansion_t>(), 40);
        assert_eq!(offset_of!(Qnn_BlockwiseExpansion_t, axis), 0);
        assert_eq!(offset_of!(Qnn_BlockwiseExpansion_t, scaleOffsets), 8);
        assert_eq!(offset_of!(Qnn_BlockwiseExpansion_t, numBlocksPerAxis), 16);
        assert_eq!(offset_of!(Qnn_BlockwiseExpansion_t, blockScaleBitwidth), 20);
        assert_eq!(
            offset_of!(Qnn_BlockwiseExpansion_t, blockScaleStorageType),
            24
        );
        assert_eq!(offset_of!(Qnn_BlockwiseExpansion_t, blocksScale), 32);
    }

    #[test]
    fn tensor_layout() {
        assert_eq!(size_of::<Qnn_Tensor_t>(), 144);
        assert_eq!(offset_of!(Qnn_Tensor_t, version), 0);
        assert_eq!(offset_of!(Qnn_Tensor_t, u), 8);
        assert_eq!(size_of::<Qnn_TensorV1_t>(), 112);
        assert_eq!(offset_of!(Qnn_TensorV1_t, id), 0);
        assert_eq!(offset_of!(Qnn_TensorV1_t, name), 8);
        assert_eq!(offset_of!(Qnn_TensorV1_t, type_), 16);
        assert_eq!(offset_of!(Qnn_TensorV1_t, dataFormat), 20);
        assert_eq!(offset_of!(Qnn_TensorV1_t, dataType), 24);
        assert_eq!(offset_of!(Qnn_TensorV1_t, quantizeParams), 32);
        assert_eq!(offset_of!(Qnn_TensorV1_t, rank), 72);
        assert_eq!(offset_of!(Qnn_TensorV1_t, dimensions), 80);
        assert_eq!(offset_of!(Qnn_TensorV1_t, memType), 88);
        assert_eq!(offset_of!(Qnn_TensorV1_t, mem), 96);
        assert_eq!(offset_of!(Qnn_ClientBuffer_t, data), 0);
        assert_eq!(offset_of!(Qnn_ClientBuffer_t, dataSize), 8);
        assert_eq!(size_of::<Qnn_TensorV2_t>(), 136);
        assert_eq!(offset_of!(Qnn_TensorV2_t, isDynamicDimensions), 112);
        assert_eq!(size_of::<Qnn_SparseParams_t>(), 12);
        assert_eq!(offset_of!(Qnn_TensorV2_t, sparseParams), 120);
        assert_eq!(offset_of!(Qnn_TensorV2_t, isProduced), 132);
    }

    #[test]
    fn param_and_op_config_layout() {
        assert_eq!(size_of::<Qnn_Scalar_t>(), 16);
        assert_eq!(offset_of!(Qnn_Scalar_t, dataType), 0);
        assert_eq!(offset_of!(Qnn_Scalar_t, value), 8);
        assert_eq!(size_of::<Qnn_Param_t>(), 160);
        assert_eq!(offset_of!(Qnn_Param_t, paramType), 0);
        assert_eq!(offset_of!(Qnn_Param_t, name), 8);
        assert_eq!(offset_of!(Qnn_Param_t, u), 16);
        assert_eq!(size_of::<Qnn_OpConfig_t>(), 80);
        assert_eq!(offset_of!(Qnn_OpConfig_t, version), 0);
        assert_eq!(offset_of!(Qnn_OpConfig_t, v1), 8);
        assert_eq!(offset_of!(Qnn_OpConfigV1_t, name), 0);
        assert_eq!(offset_of!(Qnn_OpConfigV1_t, packageName), 8);
        assert_eq!(offset_of!(Qnn_OpConfigV1_t, typeName), 16);
        assert_eq!(offset_of!(Qnn_OpConfigV1_t, numOfParams), 24);
        assert_eq!(offset_of!(Qnn_OpConfigV1_t, params), 32);
        assert_eq!(offset_of!(Qnn_OpConfigV1_t, numOfInputs), 40);
        assert_eq!(offset_of!(Qnn_OpConfigV1_t, inputTensors), 48);
        assert_eq!(offset_of!(Qnn_OpConfigV1_t, numOfOutputs), 56);
        assert_eq!(offset_of!(Qnn_OpConfigV1_t, outputTensors), 64);
    }

    #[test]
    fn config_layouts() {
        assert_eq!(size_of::<Qnn_GenericConfig_t>(), 16);
        assert_eq!(offset_of!(Qnn_GenericConfig_t, option), 0);
        assert_eq!(offset_of!(Qnn_GenericConfig_t, u), 8);
        // HTP device custom config as the 2.51 library reads it.
        assert_eq!(size_of::<QnnHtpDevice_CustomConfig_t>(), 16);
        assert_eq!(offset_of!(QnnHtpDevice_CustomConfig_t, option), 0);
        assert_eq!(offset_of!(QnnHtpDevice_CustomConfig_t, u), 8);
        assert_eq!(offset_of!(QnnHtpDevice_Arch_t, deviceId), 0);
        assert_eq!(offset_of!(QnnHtpDevice_Arch_t, arch), 4);
        assert_eq!(
            offset_of!(QnnHtpDevice_SignedPd_t, useSignedProcessDomain),
            4
        );
        // HTP context / graph custom configs: union @8.
        assert_eq!(offset_of!(QnnHtpContext_CustomConfig_t, u), 8);
        assert_eq!(size_of::<QnnHtpContext_CustomConfig_t>(), 24);
        assert_eq!(offset_of!(QnnHtpGraph_CustomConfig_t, u), 8);
        assert_eq!(size_of::<QnnHtpGraph_CustomConfig_t>(), 56);
        assert_eq!(offset_of!(QnnHtpGraph_OptimizationOption_t, floatValue), 4);
    }

    #[test]
    fn system_layouts() {
        assert_eq!(offset_of!(QnnSystemInterface_t, backendId), 0);
        assert_eq!(offset_of!(QnnSystemInterface_t, providerName), 8);
        assert_eq!(offset_of!(QnnSystemInterface_t, systemApiVersion), 16);
        assert_eq!(offset_of!(QnnSystemInterface_t, functions), 32);
        assert_eq!(
            offset_of!(QnnSystemInterfaceFunctions, systemContextGetBinaryInfo),
            8
        );
        assert_eq!(
            offset_of!(QnnSystemInterfaceFunctions, systemContextGetMetaData),
            16
        );
        assert_eq!(
            offset_of!(QnnSystemInterfaceFunctions, systemContextFree),
            24
        );

        assert_eq!(offset_of!(QnnSystemContext_BinaryInfo_t, version), 0);
        assert_eq!(offset_of!(QnnSystemContext_BinaryInfo_t, u), 8);

        type V1 = QnnSystemContext_BinaryInfoV1_t;
        assert_eq!(offset_of!(V1, buildId), 8);
        assert_eq!(offset_of!(V1, coreApiVersion), 16);
        assert_eq!(offset_of!(V1, backendApiVersion), 28);
        assert_eq!(offset_of!(V1, socVersion), 40);
        assert_eq!(offset_of!(V1, hwInfoBlobVersion), 48);
        assert_eq!(offset_of!(V1, contextBlobVersion), 60);
        assert_eq!(offset_of!(V1, hwInfoBlobSize), 72);
        assert_eq!(offset_of!(V1, hwInfoBlob), 80);
        assert_eq!(offset_of!(V1, contextBlobSize), 88);
        assert_eq!(offset_of!(V1, numContextTensors), 96);
        assert_eq!(offset_of!(V1, contextTensors), 104);
        assert_eq!(offset_of!(V1, numGraphs), 112);
        assert_eq!(offset_of!(V1, graphs), 120);
        assert_eq!(size_of::<V1>(), 128);
        assert_eq!(
            offset_of!(QnnSystemContext_BinaryInfoV2_t, platformInfo),
            128
        );

        type V3 = QnnSystemContext_BinaryInfoV3_t;
        assert_eq!(offset_of!(V3, backendId), 0);
        assert_eq!(offset_of!(V3, buildId), 8);
        assert_eq!(offset_of!(V3, coreApiVersion), 16);
        assert_eq!(offset_of!(V3, backendApiVersion), 28);
        assert_eq!(offset_of!(V3, socVersion), 40);
        assert_eq!(offset_of!(V3, contextBlobVersion), 48);
        assert_eq!(offset_of!(V3, contextBlobSize), 64);
        assert_eq!(offset_of!(V3, numContextTensors), 72);
        assert_eq!(offset_of!(V3, contextTensors), 80);
        assert_eq!(offset_of!(V3, numGraphs), 88);
        assert_eq!(offset_of!(V3, graphs), 96);
        assert_eq!(offset_of!(V3, platformInfo), 104);
        assert_eq!(offset_of!(V3, contextMetadataSize), 112);
        assert_eq!(offset_of!(V3, contextMetadata), 120);
        assert_eq!(offset_of!(V3, socModel), 128);
        assert_eq!(size_of::<V3>(), 136);

        type G1 = QnnSystemContext_GraphInfoV1_t;
        assert_eq!(offset_of!(G1, graphName), 0);
        assert_eq!(offset_of!(G1, numGraphInputs), 8);
        assert_eq!(offset_of!(G1, graphInputs), 16);
        assert_eq!(offset_of!(G1, numGraphOutputs), 24);
        assert_eq!(offset_of!(G1, graphOutputs), 32);
        assert_eq!(offset_of!(QnnSystemContext_GraphInfo_t, u), 8);
        assert_eq!(size_of::<QnnSystemContext_GraphInfoV3_t>(), 80);
        assert_eq!(size_of::<QnnSystemContext_GraphInfo_t>(), 88);
    }
}
