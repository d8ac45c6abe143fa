//! `mllm-convertor`.
fn main() {}
