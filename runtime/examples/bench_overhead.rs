//! Times the host work of a decode step for the 28-layer benchmark layout, in parts
//! (K/V commit, u16 argmax) and as a whole, with warm and with cold caches. Usage:
//! `cargo run --release -p mllm-runtime --example bench_overhead [context]`.
use mllm_runtime::bench::{bench_decode_overhead, bench_decode_overhead_with, BENCH_DIMS};

fn main() {
    let c: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1024);
    let d = mllm_runtime::ModelDims {
        context: c,
        ..BENCH_DIMS
    };
    for _ in 0..3 {
        match bench_decode_overhead(d, 2000, None) {
            Ok(r) => println!("{r}"),
            Err(e) => eprintln!("error: {e}"),
        }
        // Cold caches: every no-op execute reads 256 MiB first, like a real graph.
        match bench_decode_overhead_with(d, 200, None, 256 << 20) {
            Ok(r) => println!("{r}"),
            Err(e) => eprintln!("error: {e}"),
        }
    }
}
