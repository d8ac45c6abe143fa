//! With `--features bindgen`: checks the hand-written layouts in
//! `mllm_qnn_sys::sys` against bindings generated from a QNN SDK's headers.
//!
//! One difference is by design: the HTP device custom config is declared the
//! way the 2.51 library reads it (union at offset 8); SDK 2.43 headers put it
//! at offset 4. That check is only printed.
#![cfg(feature = "bindgen")]
#![allow(
    non_camel_case_types,
    non_snake_case,
    non_upper_case_globals,
    dead_code,
    missing_docs
)]
#![allow(clippy::all)]

mod generated {
    include!(concat!(env!("OUT_DIR"), "/qnn_bindings.rs"));
}

use generated as g;
use mllm_qnn_sys::sys as h;
use std::mem::{offset_of, size_of};

macro_rules! same_size {
    ($hand:ty, $gen:ty) => {
        assert_eq!(
            size_of::<$hand>(),
            size_of::<$gen>(),
            "size of {} vs generated {}",
            stringify!($hand),
            stringify!($gen)
        );
    };
}

macro_rules! same_offset {
    ($hand:ty, $hf:ident, $gen:ty, $gf:ident) => {
        assert_eq!(
            offset_of!($hand, $hf),
            offset_of!($gen, $gf),
            "offset of {}::{} vs generated {}::{}",
            stringify!($hand),
            stringify!($hf),
            stringify!($gen),
            stringify!($gf)
        );
    };
}

#[test]
fn core_structs_match_headers() {
    same_size!(h::Qnn_Tensor_t, g::Qnn_Tensor_t);
    same_size!(h::Qnn_TensorV1_t, g::Qnn_TensorV1_t);
    same_size!(h::Qnn_TensorV2_t, g::Qnn_TensorV2_t);
    same_size!(h::Qnn_QuantizeParams_t, g::Qnn_QuantizeParams_t);
    same_size!(h::Qnn_BlockwiseExpansion_t, g::Qnn_BlockwiseExpansion_t);
    same_size!(h::Qnn_AxisScaleOffset_t, g::Qnn_AxisScaleOffset_t);
    same_size!(h::Qnn_Scalar_t, g::Qnn_Scalar_t);
    same_size!(h::Qnn_Param_t, g::Qnn_Param_t);
    same_size!(h::Qnn_OpConfig_t, g::Qnn_OpConfig_t);
    same_size!(h::Qnn_OpConfigV1_t, g::Qnn_OpConfigV1_t);
    same_size!(h::Qnn_ApiVersion_t, g::Qnn_ApiVersion_t);
    same_size!(h::QnnBackend_Config_t, g::QnnBackend_Config_t);
    same_size!(h::QnnContext_Config_t, g::QnnContext_Config_t);
    same_size!(h::QnnGraph_Config_t, g::QnnGraph_Config_t);
    same_size!(h::QnnDevice_Config_t, g::QnnDevice_Config_t);

    same_offset!(h::Qnn_TensorV1_t, name, g::Qnn_TensorV1_t, name);
    same_offset!(h::Qnn_TensorV1_t, type_, g::Qnn_TensorV1_t, type_);
    same_offset!(h::Qnn_TensorV1_t, dataFormat, g::Qnn_TensorV1_t, dataFormat);
    same_offset!(h::Qnn_TensorV1_t, dataType, g::Qnn_TensorV1_t, dataType);
    same_offset!(
        h::Qnn_TensorV1_t,
        quantizeParams,
        g::Qnn_TensorV1_t,
        quantizeParams
    );
    same_offset!(h::Qnn_TensorV1_t, rank, g::Qnn_TensorV1_t, rank);
    same_offset!(h::Qnn_TensorV1_t, dimensions, g::Qnn_TensorV1_t, dimensions);
    same_offset!(h::Qnn_TensorV1_t, memType, g::Qnn_TensorV1_t, memType);
    same_offset!(
        h::Qnn_TensorV2_t,
        isDynamicDimensions,
        g::Qnn_TensorV2_t,
        isDynamicDimensions
    );
    same_offset!(
        h::Qnn_TensorV2_t,
        sparseParams,
        g::Qnn_TensorV2_t,
        sparseParams
    );
    same_offset!(h::Qnn_TensorV2_t, isProduced, g::Qnn_TensorV2_t, isProduced);
    same_offset!(
        h::Qnn_QuantizeParams_t,
        quantizationEncoding,
        g::Qnn_QuantizeParams_t,
        quantizationEncoding
    );
    same_offset!(
        h::Qnn_BlockwiseExpansion_t,
        scaleOffsets,
        g::Qnn_BlockwiseExpansion_t,
        scaleOffsets
    );
    same_offset!(
        h::Qnn_BlockwiseExpansion_t,
        numBlocksPerAxis,
        g::Qnn_BlockwiseExpansion_t,
        numBlocksPerAxis
    );
    same_offset!(
        h::Qnn_BlockwiseExpansion_t,
        blockScaleBitwidth,
        g::Qnn_BlockwiseExpansion_t,
        blockScaleBitwidth
    );
    same_offset!(
        h::Qnn_BlockwiseExpansion_t,
        blockScaleStorageType,
        g::Qnn_BlockwiseExpansion_t,
        blockScaleStorageType
    );
    same_offset!(h::Qnn_Param_t, name, g::Qnn_Param_t, name);
    same_offset!(h::Qnn_OpConfigV1_t, params, g::Qnn_OpConfigV1_t, params);
    same_offset!(
        h::Qnn_OpConfigV1_t,
        numOfInputs,
        g::Qnn_OpConfigV1_t,
        numOfInputs
    );
    same_offset!(
        h::Qnn_OpConfigV1_t,
        inputTensors,
        g::Qnn_OpConfigV1_t,
        inputTensors
    );
    same_offset!(
        h::Qnn_OpConfigV1_t,
        numOfOutputs,
        g::Qnn_OpConfigV1_t,
        numOfOutputs
    );
    same_offset!(
        h::Qnn_OpConfigV1_t,
        outputTensors,
        g::Qnn_OpConfigV1_t,
        outputTensors
    );
}

#[test]
fn interface_tables_match_headers() {
    same_offset!(
        h::QnnInterface_t,
        providerName,
        g::QnnInterface_t,
        providerName
    );
    same_offset!(h::QnnInterface_t, apiVersion, g::QnnInterface_t, apiVersion);
    // The generated table is the header's full table; ours is a prefix.
    assert!(size_of::<g::mllm_core_table_t>() >= size_of::<h::QnnInterfaceFunctions>());
    type T = h::QnnInterfaceFunctions;
    type G = g::mllm_core_table_t;
    same_offset!(T, backendCreate, G, backendCreate);
    same_offset!(T, backendValidateOpConfig, G, backendValidateOpConfig);
    same_offset!(T, contextCreate, G, contextCreate);
    same_offset!(T, contextGetBinary, G, contextGetBinary);
    same_offset!(T, contextCreateFromBinary, G, contextCreateFromBinary);
    same_offset!(T, contextFree, G, contextFree);
    same_offset!(T, graphCreate, G, graphCreate);
    same_offset!(T, graphAddNode, G, graphAddNode);
    same_offset!(T, graphFinalize, G, graphFinalize);
    same_offset!(T, graphRetrieve, G, graphRetrieve);
    same_offset!(T, graphExecute, G, graphExecute);
    same_offset!(T, tensorCreateGraphTensor, G, tensorCreateGraphTensor);
    same_offset!(T, logCreate, G, logCreate);
    same_offset!(T, logFree, G, logFree);
    same_offset!(T, deviceCreate, G, deviceCreate);
    same_offset!(T, deviceFree, G, deviceFree);
    same_offset!(T, errorGetMessage, G, errorGetMessage);
    same_offset!(T, contextValidateBinary, G, contextValidateBinary);

    same_offset!(
        h::QnnSystemInterface_t,
        systemApiVersion,
        g::QnnSystemInterface_t,
        systemApiVersion
    );
    type S = h::QnnSystemInterfaceFunctions;
    type GS = g::mllm_system_table_t;
    same_offset!(S, systemContextCreate, GS, systemContextCreate);
    same_offset!(
        S,
        systemContextGetBinaryInfo,
        GS,
        systemContextGetBinaryInfo
    );
    same_offset!(S, systemContextGetMetaData, GS, systemContextGetMetaData);
    same_offset!(S, systemContextFree, GS, systemContextFree);
}

#[test]
fn system_structs_match_headers() {
    same_size!(
        h::QnnSystemContext_BinaryInfoV1_t,
        g::QnnSystemContext_BinaryInfoV1_t
    );
    same_size!(
        h::QnnSystemContext_BinaryInfoV2_t,
        g::QnnSystemContext_BinaryInfoV2_t
    );
    same_size!(
        h::QnnSystemContext_BinaryInfoV3_t,
        g::QnnSystemContext_BinaryInfoV3_t
    );
    same_size!(
        h::QnnSystemContext_GraphInfoV1_t,
        g::QnnSystemContext_GraphInfoV1_t
    );
    same_size!(
        h::QnnSystemContext_GraphInfoV3_t,
        g::QnnSystemContext_GraphInfoV3_t
    );
    same_size!(
        h::QnnSystemContext_GraphInfo_t,
        g::QnnSystemContext_GraphInfo_t
    );
    type V3 = h::QnnSystemContext_BinaryInfoV3_t;
    type G3 = g::QnnSystemContext_BinaryInfoV3_t;
    same_offset!(V3, socVersion, G3, socVersion);
    same_offset!(V3, contextBlobSize, G3, contextBlobSize);
    same_offset!(V3, numGraphs, G3, numGraphs);
    same_offset!(V3, graphs, G3, graphs);
    same_offset!(V3, contextMetadata, G3, contextMetadata);
    same_offset!(V3, socModel, G3, socModel);
    type V1 = h::QnnSystemContext_BinaryInfoV1_t;
    type G1 = g::QnnSystemContext_BinaryInfoV1_t;
    same_offset!(V1, hwInfoBlob, G1, hwInfoBlob);
    same_offset!(V1, contextBlobSize, G1, contextBlobSize);
    same_offset!(V1, graphs, G1, graphs);
}

#[test]
fn htp_custom_configs() {
    // Context and graph configs: the union sits at 8 in the headers too.
    assert_eq!(
        offset_of!(h::QnnHtpContext_CustomConfig_t, u),
        offset_of!(g::QnnHtpContext_CustomConfig_t, __bindgen_anon_1)
    );
    assert_eq!(
        offset_of!(h::QnnHtpGraph_CustomConfig_t, u),
        offset_of!(g::QnnHtpGraph_CustomConfig_t, __bindgen_anon_1)
    );
    // Device config: reported only (see the module docs).
    let header_union_offset = offset_of!(g::QnnHtpDevice_CustomConfig_t, __bindgen_anon_1);
    println!(
        "HTP device custom config: headers put the union at {header_union_offset} (size {}), \
         the 2.51 library reads it at {} (size {})",
        size_of::<g::QnnHtpDevice_CustomConfig_t>(),
        offset_of!(h::QnnHtpDevice_CustomConfig_t, u),
        size_of::<h::QnnHtpDevice_CustomConfig_t>()
    );
}
