//! Shared helpers of the command-line tools.
pub mod bench;
pub mod bench_ir;
pub mod compile;
pub mod demo;
pub mod pymllm;
pub mod qnn;
pub mod quantize;
pub mod report;
pub mod run;
pub mod synth;
pub mod translate;
