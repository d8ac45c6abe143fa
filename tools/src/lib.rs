//! Shared helpers of the command-line tools.
pub mod demo;
pub mod quantize;
pub mod run;
pub mod synth;
pub mod translate;
