//! Quantization: weight quantization math (LPBQ, per-channel int8), activation and KV
//! encodings, AOT recipes.

pub mod apply;
pub mod lpbq;
pub mod mask_fill;
pub mod recipe;
