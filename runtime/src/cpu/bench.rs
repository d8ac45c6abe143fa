//! Kernel benchmarks of the CPU executor (used by `mllm bench runtime`): a prefill-style
//! GEMM and a decode-style GEMV through the same packed-weight path `nn.linear` uses.
//! They print nothing and assert nothing; callers print the figures.

use std::time::Instant;

use super::gemm::{self, BRef, GemmDims, MatRef, APACK};

/// Figures of one benchmark.
#[derive(Debug, Clone, Copy)]
pub struct BenchResult {
    /// `M` of `[M x K] x [K x N]`.
    pub m: usize,
    /// `K`.
    pub k: usize,
    /// `N`.
    pub n: usize,
    /// Best wall time of one product, seconds.
    pub seconds: f64,
    /// `2 M K N / seconds / 1e9`.
    pub gflops: f64,
    /// Weight bytes (`K N` f32 or bf16) streamed per second / 1e9.
    pub weight_gbps: f64,
    /// Whether the weight was packed as bf16.
    pub bf16: bool,
    /// Distinct weight copies cycled through (1: the weight stays in cache).
    pub copies: usize,
}

/// Times `x[M, K] · W^T` for a weight `W[N, K]` packed like an `nn.linear` weight
/// (as f32, or as bf16 like the weights of a bf16 checkpoint),
/// taking the best of `iters` runs after one warm-up (the scatter into the row-major
/// result is included).
pub fn bench_linear(m: usize, k: usize, n: usize, bf16: bool, iters: usize) -> BenchResult {
    bench_linear_copies(m, k, n, bf16, 1, iters)
}

/// Like [`bench_linear`], cycling through `copies` distinct packed copies of the weight
/// so that the weights streamed per run can exceed the last-level cache (decode reads
/// every weight of a model once per token, so it streams from DRAM).
pub fn bench_linear_copies(
    m: usize,
    k: usize,
    n: usize,
    bf16: bool,
    copies: usize,
    iters: usize,
) -> BenchResult {
    let copies = copies.max(1);
    let d = GemmDims { m, k, n };
    let x: Vec<f32> = (0..m * k).map(|i| ((i % 17) as f32 - 8.0) * 0.01).collect();
    let w: Vec<f32> = (0..n * k).map(|i| ((i % 13) as f32 - 6.0) * 0.01).collect();
    let wv = MatRef {
        data: &w,
        off: 0,
        rs: 1,
        cs: k,
    };
    let (mut bp, mut bw) = (Vec::new(), Vec::new());
    for _ in 0..copies {
        if bf16 {
            let mut v = vec![0u32; d.packed_b_len() / 2];
            gemm::pack_b_bf16(k, n, wv, &mut v);
            bw.push(v);
        } else {
            let mut v = vec![0f32; d.packed_b_len()];
            gemm::pack_b(k, n, wv, &mut v, true);
            bp.push(v);
        }
    }
    drop(w);
    let b = |i: usize| {
        if bf16 {
            BRef::Bf16(&bw[i % copies])
        } else {
            BRef::F32(&bp[i % copies])
        }
    };
    let mut panels = vec![0f32; d.out_len()];
    let mut apack = vec![0f32; APACK * gemm::max_tasks()];
    let mut c = vec![0f32; m * n];
    let xv = MatRef {
        data: &x,
        off: 0,
        rs: k,
        cs: 1,
    };
    let mut best = f64::INFINITY;
    let mut next = 0;
    for it in 0..iters.max(1) + 1 {
        // One timed run streams every copy once (the first run only warms up).
        let t = Instant::now();
        for _ in 0..copies {
            gemm::gemm_panels(d, xv, b(next), &mut panels, &mut apack, true);
            gemm::scatter(d, &panels, &mut c, None, true);
            next += 1;
        }
        let s = t.elapsed().as_secs_f64() / copies as f64;
        if it > 0 {
            best = best.min(s);
        }
    }
    std::hint::black_box(&c);
    BenchResult {
        m,
        k,
        n,
        seconds: best,
        gflops: 2.0 * (m * k * n) as f64 / best / 1e9,
        weight_gbps: (k * n * if bf16 { 2 } else { 4 }) as f64 / best / 1e9,
        bf16,
        copies,
    }
}

/// The standard figures: prefill GEMM `[128 x 2048] x [2048 x 2048]` and decode GEMV
/// `[1 x 2048] x [2048 x 6144]`, each with f32 and with bf16 weights; the GEMVs once with
/// a cache-resident weight and once streaming about 1 GiB of distinct weights per run
/// (what a decode step does).
pub fn standard(iters: usize) -> [BenchResult; 6] {
    let gemv_copies = |bytes: usize| (1usize << 30).div_ceil(2048 * 6144 * bytes);
    [
        bench_linear(128, 2048, 2048, false, iters),
        bench_linear(128, 2048, 2048, true, iters),
        bench_linear(1, 2048, 6144, false, iters),
        bench_linear(1, 2048, 6144, true, iters),
        bench_linear_copies(1, 2048, 6144, false, gemv_copies(4), iters.min(3)),
        bench_linear_copies(1, 2048, 6144, true, gemv_copies(2), iters.min(3)),
    ]
}
