//! `mllm-opt`.
fn main() {}
