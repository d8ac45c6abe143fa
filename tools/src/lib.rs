//! Shared helpers of the command-line tools.
pub mod synth;
pub mod translate;
