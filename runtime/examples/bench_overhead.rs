//! Times the host work of a decode step for the 28-layer benchmark layout, in parts
//! (K/V commit, u16 argmax) and as a whole. Usage: `cargo run --release -p mllm-runtime
//! --example bench_overhead [context]`.
use std::time::Instant;

use mllm_runtime::bench::{bench_decode_overhead, BENCH_DIMS};
use mllm_runtime::kv::KvCache;
use mllm_runtime::sampler::argmax_u16;
use mllm_runtime::DType;

fn main() {
    let c: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1024);
    let d = mllm_runtime::ModelDims {
        context: c,
        ..BENCH_DIMS
    };
    let mut kv = KvCache::new(&d, 1, DType::U16, &[1]).unwrap();
    let pk = vec![3u8; d.kv_heads * d.head_dim];
    let n = 1000;
    let t = Instant::now();
    for _ in 0..n {
        if !kv.has_room(1) {
            kv.reset();
        }
        kv.commit(1, 1, |_| (&pk[..], &pk[..])).unwrap();
    }
    println!(
        "commit 28 layers: {:.1} us",
        t.elapsed().as_secs_f64() * 1e6 / n as f64
    );
    let row = vec![7u8; d.vocab * 2];
    let t = Instant::now();
    let mut acc = 0;
    for _ in 0..n {
        acc += argmax_u16(std::hint::black_box(&row));
    }
    println!(
        "argmax u16 {}: {:.1} us ({acc})",
        d.vocab,
        t.elapsed().as_secs_f64() * 1e6 / n as f64
    );
    for _ in 0..3 {
        println!("{}", bench_decode_overhead(d, 1000, None).unwrap());
    }
}
