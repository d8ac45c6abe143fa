//! Cache-blocked f32 matrix multiplication in safe Rust, vectorized with `pulp`
//! (runtime dispatch to AVX2+FMA on x86-64, portable scalar code elsewhere) and
//! multithreaded with rayon.
//!
//! `C[M, N] = A[M, K] · B[K, N]` in the GotoBLAS style:
//! - `B` is packed into column panels of [`NR`] = 16 columns, each panel `K x NR`
//!   contiguous (zero-padded past `N`). Weights of `nn.linear` / 1x1 `nn.conv2d` are
//!   packed once when a program is compiled; activations are packed per call into
//!   preallocated scratch.
//! - `A` is packed per `(KC x MC)` block into micro-panels of [`MR`] = 6 rows.
//! - A `MR x NR` register-blocked micro-kernel (12 accumulators of 8 lanes) accumulates
//!   into an output laid out panel-major (`[panel][M][NR]`), which a final pass scatters
//!   into the row-major result (adding a bias when given).
//! - Parallelism is over groups of panels (each task owns its output panels and its
//!   A-pack buffer), so decode-style GEMV (`M = 1`) and prefill GEMM (`M = 128`) both
//!   use every core.
//!
//! Nothing here allocates: every buffer comes from the caller (see [`GemmDims`] for the
//! scratch sizes).

use pulp::{Simd, WithSimd};
use rayon::prelude::*;

/// Columns per packed `B` panel.
pub const NR: usize = 16;
/// Rows per micro-kernel tile.
pub const MR: usize = 6;
/// Depth of a `K` block.
pub const KC: usize = 256;
/// Rows of an `M` block (a multiple of [`MR`]).
pub const MC: usize = 126;

/// Size of one task's A-pack buffer, in f32 elements.
pub const APACK: usize = MC * KC;

/// A strided read-only matrix view: element `(i, k)` is `data[off + i * rs + k * cs]`.
#[derive(Debug, Clone, Copy)]
pub struct MatRef<'a> {
    /// Backing data.
    pub data: &'a [f32],
    /// Offset of element `(0, 0)`.
    pub off: usize,
    /// Row stride.
    pub rs: usize,
    /// Column stride.
    pub cs: usize,
}

/// Problem sizes and the scratch they need.
#[derive(Debug, Clone, Copy)]
pub struct GemmDims {
    /// Rows of `A` and `C`.
    pub m: usize,
    /// Contraction length.
    pub k: usize,
    /// Columns of `B` and `C`.
    pub n: usize,
}

impl GemmDims {
    /// Number of packed `B` panels.
    pub fn panels(&self) -> usize {
        self.n.div_ceil(NR)
    }
    /// f32 elements of a packed `B`.
    pub fn packed_b_len(&self) -> usize {
        self.panels() * self.k * NR
    }
    /// f32 elements of the panel-major output.
    pub fn out_len(&self) -> usize {
        self.panels() * self.m * NR
    }
}

/// Maximum number of parallel tasks of one GEMM (A-pack buffers to preallocate).
pub fn max_tasks() -> usize {
    4 * rayon::current_num_threads().max(1)
}

/// Packs `B(kk, j) = src[off + kk * rs + j * cs]` (`k x n`) into panels (`dst` has
/// [`GemmDims::packed_b_len`] elements). Runs in parallel when `parallel`.
pub fn pack_b(k: usize, n: usize, b: MatRef<'_>, dst: &mut [f32], parallel: bool) {
    let np = n.div_ceil(NR);
    let dst = &mut dst[..np * k * NR];
    let one = |(p, panel): (usize, &mut [f32])| {
        let c0 = p * NR;
        let w = NR.min(n - c0);
        if b.cs == 1 {
            for kk in 0..k {
                let row = &mut panel[kk * NR..kk * NR + NR];
                let s = b.off + kk * b.rs + c0;
                row[..w].copy_from_slice(&b.data[s..s + w]);
                row[w..].fill(0.0);
            }
        } else {
            for j in 0..NR {
                if j < w {
                    let s = b.off + (c0 + j) * b.cs;
                    for kk in 0..k {
                        panel[kk * NR + j] = b.data[s + kk * b.rs];
                    }
                } else {
                    for kk in 0..k {
                        panel[kk * NR + j] = 0.0;
                    }
                }
            }
        }
    };
    if parallel && k * n > 1 << 14 {
        dst.par_chunks_mut(k.max(1) * NR).enumerate().for_each(one);
    } else {
        dst.chunks_mut(k.max(1) * NR).enumerate().for_each(one);
    }
}

/// Packed `B` panels: f32, or bf16 pairs in `u32` words (half the bytes to stream).
///
/// In the bf16 form a panel row of [`NR`] columns is 8 words; word `j` holds column
/// `j` in its low half and column `j + 8` in its high half, so that one shift and one
/// mask turn a vector of words into the two f32 vectors of the row.
#[derive(Debug, Clone, Copy)]
pub enum BRef<'a> {
    /// f32 panels.
    F32(&'a [f32]),
    /// bf16 panels.
    Bf16(&'a [u32]),
}

impl<'a> BRef<'a> {
    /// Rows `[p0, p0 + kc)` of panel `p` (panels of depth `k`).
    fn block(self, p: usize, k: usize, p0: usize, kc: usize) -> BRef<'a> {
        match self {
            BRef::F32(b) => BRef::F32(&b[p * k * NR + p0 * NR..p * k * NR + (p0 + kc) * NR]),
            BRef::Bf16(b) => {
                let w = NR / 2;
                BRef::Bf16(&b[p * k * w + p0 * w..p * k * w + (p0 + kc) * w])
            }
        }
    }
    /// Panels `[p0, p0 + cnt)`.
    fn panels(self, k: usize, p0: usize, cnt: usize) -> BRef<'a> {
        match self {
            BRef::F32(b) => BRef::F32(&b[p0 * k * NR..(p0 + cnt) * k * NR]),
            BRef::Bf16(b) => BRef::Bf16(&b[p0 * k * NR / 2..(p0 + cnt) * k * NR / 2]),
        }
    }
}

/// Whether every value is exactly representable in bf16 (then [`pack_b_bf16`] is exact).
pub fn bf16_exact(v: &[f32]) -> bool {
    v.iter()
        .all(|x| half::bf16::from_f32(*x).to_f32().to_bits() == x.to_bits())
}

/// Like [`pack_b`] into the bf16 word layout of [`BRef::Bf16`] (`dst` has
/// `packed_b_len / 2` words). Values are truncated to bf16 (exact for bf16 values).
pub fn pack_b_bf16(k: usize, n: usize, b: MatRef<'_>, dst: &mut [u32]) {
    let np = n.div_ceil(NR);
    let h = NR / 2;
    let dst = &mut dst[..np * k * h];
    let bits = |kk: usize, col: usize| -> u32 {
        if col < n {
            (b.data[b.off + kk * b.rs + col * b.cs].to_bits() >> 16) & 0xFFFF
        } else {
            0
        }
    };
    dst.par_chunks_mut(k.max(1) * h)
        .enumerate()
        .for_each(|(p, panel)| {
            let c0 = p * NR;
            for kk in 0..k {
                for j in 0..h {
                    panel[kk * h + j] = bits(kk, c0 + j) | (bits(kk, c0 + j + h) << 16);
                }
            }
        });
}

/// Packs rows `[i0, i0 + mc)` and depth `[p0, p0 + kc)` of `A` into micro-panels
/// (`tile t` at `t * kc * MR`, element `(r, kk)` at `kk * MR + r`), zero-padding rows.
fn pack_a(a: MatRef<'_>, i0: usize, mc: usize, p0: usize, kc: usize, dst: &mut [f32]) {
    let tiles = mc.div_ceil(MR);
    for t in 0..tiles {
        let tile = &mut dst[t * kc * MR..(t + 1) * kc * MR];
        for r in 0..MR {
            let i = t * MR + r;
            if i < mc {
                let s = a.off + (i0 + i) * a.rs + p0 * a.cs;
                if a.cs == 1 {
                    for (kk, v) in a.data[s..s + kc].iter().enumerate() {
                        tile[kk * MR + r] = *v;
                    }
                } else {
                    for kk in 0..kc {
                        tile[kk * MR + r] = a.data[s + kk * a.cs];
                    }
                }
            } else {
                for kk in 0..kc {
                    tile[kk * MR + r] = 0.0;
                }
            }
        }
    }
}

/// The micro-kernel: `c[r][j] (+)= sum_kk a[kk][r] * b[kk][j]` for `r < R`.
#[inline(always)]
fn kernel<S: Simd, const R: usize>(s: S, a: &[f32], b: &[f32], c: &mut [f32], accumulate: bool) {
    if core::mem::size_of::<S::f32s>() * 2 == NR * 4 {
        let (bv, _) = S::as_simd_f32s(b);
        let mut acc = [[s.splat_f32s(0.0); 2]; R];
        for (bk, ak) in bv.chunks_exact(2).zip(a.chunks_exact(MR)) {
            let (b0, b1) = (bk[0], bk[1]);
            for r in 0..R {
                let ar = s.splat_f32s(ak[r]);
                acc[r][0] = s.mul_add_f32s(ar, b0, acc[r][0]);
                acc[r][1] = s.mul_add_f32s(ar, b1, acc[r][1]);
            }
        }
        let (cv, _) = S::as_mut_simd_f32s(&mut c[..R * NR]);
        for r in 0..R {
            if accumulate {
                cv[2 * r] = s.add_f32s(cv[2 * r], acc[r][0]);
                cv[2 * r + 1] = s.add_f32s(cv[2 * r + 1], acc[r][1]);
            } else {
                cv[2 * r] = acc[r][0];
                cv[2 * r + 1] = acc[r][1];
            }
        }
    } else {
        let mut acc = [[0f32; NR]; R];
        for (bk, ak) in b.chunks_exact(NR).zip(a.chunks_exact(MR)) {
            for r in 0..R {
                let ar = ak[r];
                for j in 0..NR {
                    acc[r][j] = ar.mul_add(bk[j], acc[r][j]);
                }
            }
        }
        for r in 0..R {
            let row = &mut c[r * NR..(r + 1) * NR];
            for j in 0..NR {
                row[j] = if accumulate {
                    row[j] + acc[r][j]
                } else {
                    acc[r][j]
                };
            }
        }
    }
}

/// Portable bf16 micro-kernel (the AVX2 one is [`kernel_bf16_v3`]).
#[inline(always)]
fn kernel_bf16_scalar<const R: usize>(a: &[f32], b: &[u32], c: &mut [f32], accumulate: bool) {
    let h = NR / 2;
    let mut acc = [[0f32; NR]; R];
    for (bk, ak) in b.chunks_exact(h).zip(a.chunks_exact(MR)) {
        let mut row = [0f32; NR];
        for j in 0..h {
            row[j] = f32::from_bits(bk[j] << 16);
            row[j + h] = f32::from_bits(bk[j] & 0xFFFF_0000);
        }
        for r in 0..R {
            for j in 0..NR {
                acc[r][j] = ak[r].mul_add(row[j], acc[r][j]);
            }
        }
    }
    for r in 0..R {
        let row = &mut c[r * NR..(r + 1) * NR];
        for j in 0..NR {
            row[j] = if accumulate {
                row[j] + acc[r][j]
            } else {
                acc[r][j]
            };
        }
    }
}

/// AVX2 bf16 micro-kernel: widens each packed row with a shift and a mask.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn kernel_bf16_v3<const R: usize>(
    v: pulp::x86::V3,
    a: &[f32],
    b: &[u32],
    c: &mut [f32],
    accumulate: bool,
) {
    use pulp::{f32x8, u32x8};
    let (bv, _) = pulp::x86::V3::as_simd_u32s(b);
    let mask = v.splat_u32x8(0xFFFF_0000);
    let z = v.splat_f32x8(0.0);
    let mut acc = [[z; 2]; R];
    for (w, ak) in bv.iter().zip(a.chunks_exact(MR)) {
        let b0: f32x8 = pulp::cast(v.shl_const_u32x8::<16>(*w));
        let b1: f32x8 = pulp::cast::<u32x8, f32x8>(v.and_u32x8(*w, mask));
        for r in 0..R {
            let ar = v.splat_f32x8(ak[r]);
            acc[r][0] = v.mul_add_f32x8(ar, b0, acc[r][0]);
            acc[r][1] = v.mul_add_f32x8(ar, b1, acc[r][1]);
        }
    }
    let (cv, _) = pulp::x86::V3::as_mut_simd_f32s(&mut c[..R * NR]);
    for r in 0..R {
        if accumulate {
            cv[2 * r] = v.add_f32x8(cv[2 * r], acc[r][0]);
            cv[2 * r + 1] = v.add_f32x8(cv[2 * r + 1], acc[r][1]);
        } else {
            cv[2 * r] = acc[r][0];
            cv[2 * r + 1] = acc[r][1];
        }
    }
}

/// One task: all `m` rows times `panels` consecutive packed panels.
struct Task<'a> {
    m: usize,
    k: usize,
    a: MatRef<'a>,
    bp: BRef<'a>,
    panels: usize,
    out: &'a mut [f32],
    apack: &'a mut [f32],
}

impl WithSimd for Task<'_> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        let Task {
            m,
            k,
            a,
            bp,
            panels,
            out,
            apack,
        } = self;
        if k == 0 {
            out.fill(0.0);
            return;
        }
        let mut p0 = 0;
        while p0 < k {
            let kc = KC.min(k - p0);
            let mut i0 = 0;
            while i0 < m {
                let mc = MC.min(m - i0);
                pack_a(a, i0, mc, p0, kc, apack);
                for p in 0..panels {
                    let bblock = bp.block(p, k, p0, kc);
                    for t in 0..mc.div_ceil(MR) {
                        let r = MR.min(mc - t * MR);
                        let at = &apack[t * kc * MR..(t + 1) * kc * MR];
                        let o0 = p * m * NR + (i0 + t * MR) * NR;
                        let c = &mut out[o0..o0 + r * NR];
                        let acc = p0 > 0;
                        match bblock {
                            BRef::F32(bb) => match r {
                                6 => kernel::<S, 6>(s, at, bb, c, acc),
                                5 => kernel::<S, 5>(s, at, bb, c, acc),
                                4 => kernel::<S, 4>(s, at, bb, c, acc),
                                3 => kernel::<S, 3>(s, at, bb, c, acc),
                                2 => kernel::<S, 2>(s, at, bb, c, acc),
                                _ => kernel::<S, 1>(s, at, bb, c, acc),
                            },
                            BRef::Bf16(bb) => bf16_tile(r, at, bb, c, acc),
                        }
                    }
                }
                i0 += mc;
            }
            p0 += kc;
        }
    }
}

/// One bf16 tile: AVX2 kernel when available, portable kernel otherwise. Only called
/// from inside a task that `pulp` already dispatched to its best instruction set, so
/// the V3 kernel inlines into AVX2 code.
#[inline(always)]
fn bf16_tile(r: usize, a: &[f32], b: &[u32], c: &mut [f32], acc: bool) {
    #[cfg(target_arch = "x86_64")]
    if let Some(v) = pulp::x86::V3::try_new() {
        match r {
            6 => kernel_bf16_v3::<6>(v, a, b, c, acc),
            5 => kernel_bf16_v3::<5>(v, a, b, c, acc),
            4 => kernel_bf16_v3::<4>(v, a, b, c, acc),
            3 => kernel_bf16_v3::<3>(v, a, b, c, acc),
            2 => kernel_bf16_v3::<2>(v, a, b, c, acc),
            _ => kernel_bf16_v3::<1>(v, a, b, c, acc),
        }
        return;
    }
    match r {
        6 => kernel_bf16_scalar::<6>(a, b, c, acc),
        5 => kernel_bf16_scalar::<5>(a, b, c, acc),
        4 => kernel_bf16_scalar::<4>(a, b, c, acc),
        3 => kernel_bf16_scalar::<3>(a, b, c, acc),
        2 => kernel_bf16_scalar::<2>(a, b, c, acc),
        _ => kernel_bf16_scalar::<1>(a, b, c, acc),
    }
}

fn run_task(t: Task<'_>) {
    pulp::Arch::new().dispatch(t)
}

/// Computes the panel-major product of `A` (`m x k`) and the packed `B` into `out`
/// ([`GemmDims::out_len`] elements). `apack` holds at least one [`APACK`] buffer per
/// task; with `parallel`, panels are split into up to `apack.len() / APACK` tasks.
pub fn gemm_panels(
    d: GemmDims,
    a: MatRef<'_>,
    bp: BRef<'_>,
    out: &mut [f32],
    apack: &mut [f32],
    parallel: bool,
) {
    let np = d.panels();
    if np == 0 || d.m == 0 {
        return;
    }
    let out = &mut out[..np * d.m * NR];
    let flops = d.m * d.k * d.n;
    let max_t = (apack.len() / APACK).max(1);
    let tasks = if parallel && flops > 1 << 16 {
        max_t.min(np)
    } else {
        1
    };
    let ppt = np.div_ceil(tasks);
    let (m, k) = (d.m, d.k);
    if tasks == 1 {
        run_task(Task {
            m,
            k,
            a,
            bp,
            panels: np,
            out,
            apack: &mut apack[..APACK],
        });
        return;
    }
    out.par_chunks_mut(ppt * m * NR)
        .zip(apack.par_chunks_mut(APACK))
        .enumerate()
        .for_each(|(t, (o, ap))| {
            let p0 = t * ppt;
            let cnt = o.len() / (m * NR);
            run_task(Task {
                m,
                k,
                a,
                bp: bp.panels(k, p0, cnt),
                panels: cnt,
                out: o,
                apack: ap,
            });
        });
}

/// Scatters a panel-major product into the row-major `c` (`m x n`), adding `bias`
/// (one value per column) when given.
pub fn scatter(d: GemmDims, panels: &[f32], c: &mut [f32], bias: Option<&[f32]>, parallel: bool) {
    let (m, n) = (d.m, d.n);
    if n == 0 {
        return;
    }
    let row = |(i, crow): (usize, &mut [f32])| {
        for (p, chunk) in crow.chunks_mut(NR).enumerate() {
            let s = p * m * NR + i * NR;
            chunk.copy_from_slice(&panels[s..s + chunk.len()]);
            if let Some(b) = bias {
                for (x, bb) in chunk.iter_mut().zip(&b[p * NR..]) {
                    *x += *bb;
                }
            }
        }
    };
    let c = &mut c[..m * n];
    if parallel && m > 1 && m * n > 1 << 15 {
        c.par_chunks_mut(n).enumerate().for_each(row);
    } else {
        c.chunks_mut(n).enumerate().for_each(row);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(m: usize, k: usize, n: usize, a: &[f32], b: &[f32]) -> Vec<f32> {
        let mut c = vec![0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                let mut s = 0f64;
                for kk in 0..k {
                    s += a[i * k + kk] as f64 * b[kk * n + j] as f64;
                }
                c[i * n + j] = s as f32;
            }
        }
        c
    }

    #[test]
    fn blocked_gemm_matches_naive_on_odd_sizes() {
        for &(m, k, n) in &[
            (1, 1, 1),
            (7, 300, 33),
            (130, 17, 5),
            (13, 513, 70),
            (1, 600, 260),
        ] {
            let a: Vec<f32> = (0..m * k)
                .map(|i| ((i * 7 % 13) as f32 - 6.0) / 7.0)
                .collect();
            let b: Vec<f32> = (0..k * n)
                .map(|i| ((i * 5 % 11) as f32 - 5.0) / 5.0)
                .collect();
            let d = GemmDims { m, k, n };
            let mut bp = vec![0f32; d.packed_b_len()];
            let bv = MatRef {
                data: &b,
                off: 0,
                rs: n,
                cs: 1,
            };
            pack_b(k, n, bv, &mut bp, true);
            let mut panels = vec![0f32; d.out_len()];
            let mut apack = vec![0f32; APACK * max_tasks()];
            let av = MatRef {
                data: &a,
                off: 0,
                rs: k,
                cs: 1,
            };
            gemm_panels(d, av, BRef::F32(&bp), &mut panels, &mut apack, true);
            let mut c = vec![0f32; m * n];
            scatter(d, &panels, &mut c, None, true);
            let want = naive(m, k, n, &a, &b);
            for (x, y) in c.iter().zip(&want) {
                assert!(
                    (x - y).abs() <= 1e-4 * (1.0 + y.abs()),
                    "{m}x{k}x{n}: {x} vs {y}"
                );
            }
        }
    }

    #[test]
    fn bf16_panels_give_the_f32_result_for_bf16_weights() {
        for &(m, k, n) in &[(1, 300, 40), (13, 513, 33), (6, 16, 16)] {
            let a: Vec<f32> = (0..m * k)
                .map(|i| ((i * 7 % 13) as f32 - 6.0) / 7.0)
                .collect();
            // Values exactly representable in bf16.
            let b: Vec<f32> = (0..k * n)
                .map(|i| half::bf16::from_f32(((i * 5 % 11) as f32 - 5.0) / 3.0).to_f32())
                .collect();
            assert!(bf16_exact(&b));
            let d = GemmDims { m, k, n };
            let bv = MatRef {
                data: &b,
                off: 0,
                rs: n,
                cs: 1,
            };
            let mut bw = vec![0u32; d.packed_b_len() / 2];
            pack_b_bf16(k, n, bv, &mut bw);
            let mut panels = vec![0f32; d.out_len()];
            let mut apack = vec![0f32; APACK * max_tasks()];
            let av = MatRef {
                data: &a,
                off: 0,
                rs: k,
                cs: 1,
            };
            gemm_panels(d, av, BRef::Bf16(&bw), &mut panels, &mut apack, true);
            let mut c = vec![0f32; m * n];
            scatter(d, &panels, &mut c, None, true);
            let want = naive(m, k, n, &a, &b);
            for (x, y) in c.iter().zip(&want) {
                assert!(
                    (x - y).abs() <= 1e-4 * (1.0 + y.abs()),
                    "{m}x{k}x{n}: {x} vs {y}"
                );
            }
        }
        assert!(!bf16_exact(&[0.1]));
    }
}
