//! `mllm-translate`.
fn main() {}
