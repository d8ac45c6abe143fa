//! Shared helpers of the command-line tools.
pub mod quantize;
pub mod synth;
pub mod translate;
