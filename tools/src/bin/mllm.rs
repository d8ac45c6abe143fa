//! `mllm`.
fn main() {}
