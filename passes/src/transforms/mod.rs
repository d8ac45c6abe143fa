//! Transform passes, one per file.

pub mod canonicalize;
pub mod cse;
pub mod dce;
pub mod decompose;
pub mod linear_to_conv2d;
pub mod lpbq_fold;
pub mod quant_fix;
pub mod sha_split;
pub mod split_graph;
