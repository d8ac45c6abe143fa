//! Prints the CPU executor's kernel benchmark figures (GEMM GFLOP/s, GEMV GB/s).

fn main() {
    let iters = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    println!("threads: {}", rayon::current_num_threads());
    for r in mllm_runtime::cpu::bench::standard(iters) {
        println!(
            "[{} x {}] x [{} x {}]: {:.3} ms, {:.1} GFLOP/s, {:.2} GB/s of {} weights ({})",
            r.m,
            r.k,
            r.k,
            r.n,
            r.seconds * 1e3,
            r.gflops,
            r.weight_gbps,
            if r.bf16 { "bf16" } else { "f32" },
            if r.copies > 1 {
                format!("streaming {} distinct copies", r.copies)
            } else {
                "cache-resident".to_string()
            }
        );
    }
}
