//! Times one packed-weight product shape repeatedly (for profiling the GEMM kernels).
//! Usage: `cargo run --release -p mllm-runtime --example gemm_probe -- M K N [bf16] [iters] [copies]`
//! (`RAYON_NUM_THREADS=1` for one core; `copies` > 1 cycles through that many distinct
//! packed weights, so each product streams its weight cold, as in a model).

fn main() {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let num = |i: usize, d: usize| a.get(i).and_then(|s| s.parse().ok()).unwrap_or(d);
    let (m, k, n) = (num(0, 128), num(1, 2048), num(2, 2048));
    let bf16 = a.get(3).is_some_and(|s| s == "bf16");
    let iters = num(4, 20);
    let copies = num(5, 1);
    for _ in 0..3 {
        let r = mllm_runtime::cpu::bench::bench_linear_copies(m, k, n, bf16, copies, iters);
        println!(
            "[{m} x {k}] x [{k} x {n}] {}: best {:.3} ms, {:.1} GFLOP/s, {:.2} GB/s of weights",
            if bf16 { "bf16" } else { "f32" },
            r.seconds * 1e3,
            r.gflops,
            r.weight_gbps
        );
    }
}
