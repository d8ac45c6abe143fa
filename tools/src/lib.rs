//! Shared helpers of the command-line tools.
pub mod quantize;
pub mod run;
pub mod synth;
pub mod translate;
