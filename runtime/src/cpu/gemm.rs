//! Cache-blocked f32 matrix multiplication in safe Rust, vectorized with `pulp`
//! (runtime dispatch to AVX-512 (`x86-v4`), AVX2+FMA (`x86-v3`) or portable scalar
//! code) and multithreaded with rayon.
//!
//! `C[M, N] = A[M, K] · B[K, N]` in the GotoBLAS style:
//! - `B` is packed into column panels of [`NR`] = 32 columns, each panel `K x NR`
//!   contiguous (zero-padded past `N`). Weights of `nn.linear` / 1x1 `nn.conv2d` are
//!   packed once when a program is compiled; activations are packed per call into
//!   preallocated scratch. Weights that are exactly bf16 are packed as bf16 (half the
//!   bytes to stream, see [`BRef::Bf16`]).
//! - `A` is packed into micro-panels of [`MR`] = 12 rows (`kk`-major inside a tile).
//!   When the caller's scratch holds all of `A` (the usual case: prefill chunks and
//!   decode rows), it is packed once per product, in parallel, and shared by every task;
//!   otherwise each task packs `(KC x MC)` blocks for itself.
//! - The micro-kernel keeps a `rows x 2 vectors` block of accumulators in registers:
//!   with AVX-512 a 12 x 32 tile (24 zmm accumulators), with AVX2 6 x 16 sub-tiles
//!   (12 ymm accumulators). It accumulates into an output laid out panel-major
//!   (`[panel][M][NR]`), which a final pass scatters into the row-major result (adding
//!   a bias when given).
//! - Parallelism is over groups of panels (each task owns its output panels), so
//!   decode-style GEMV (`M = 1`) and prefill GEMM (`M = 128`) both use every core and
//!   read each weight once.
//!
//! Nothing here allocates: every buffer comes from the caller (see [`GemmDims`] for the
//! scratch sizes).

use pulp::{Simd, WithSimd};
use rayon::prelude::*;

/// Columns per packed `B` panel.
pub const NR: usize = 32;
/// Rows per packed `A` micro-panel (and per AVX-512 micro-kernel tile).
pub const MR: usize = 12;
/// Depth of a `K` block.
pub const KC: usize = 256;
/// Rows of an `M` block when a task packs `A` itself (a multiple of [`MR`]).
pub const MC: usize = 144;

/// Size of one task's A-pack buffer, in f32 elements. Callers provide
/// `APACK * max_tasks()`; when that holds all of `A` rounded up to [`MR`] rows
/// (`M <= 144` with `K <= 8192` for two threads), `A` is packed once and shared.
pub const APACK: usize = MC * 1024;

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
    /// f32 elements of `A` packed whole (rows rounded up to [`MR`]).
    pub fn packed_a_len(&self) -> usize {
        self.m.div_ceil(MR) * MR * self.k
    }
}

/// Maximum number of parallel tasks of one GEMM (A-pack buffers to preallocate).
pub fn max_tasks() -> usize {
    4 * rayon::current_num_threads().max(1)
}

/// Packs `B(kk, j) = src[off + kk * rs + j * cs]` (`k x n`) into panels (`dst` has
/// [`GemmDims::packed_b_len`] elements). Runs in parallel when `parallel`.
pub fn pack_b(k: usize, n: usize, b: MatRef<'_>, dst: &mut [f32], parallel: bool) {
    if b.cs == 1 {
        let row = |r: usize| &b.data[b.off + r * b.rs..];
        pack_b_rows(k, n, false, &row, dst, parallel);
    } else if b.rs == 1 {
        let row = |r: usize| &b.data[b.off + r * b.cs..];
        pack_b_rows(k, n, true, &row, dst, parallel);
    } else {
        let np = n.div_ceil(NR);
        let one = |(p, panel): (usize, &mut [f32])| {
            let c0 = p * NR;
            let w = NR.min(n - c0);
            for j in 0..NR {
                for kk in 0..k {
                    panel[kk * NR + j] = if j < w {
                        b.data[b.off + (c0 + j) * b.cs + kk * b.rs]
                    } else {
                        0.0
                    };
                }
            }
        };
        let dst = &mut dst[..np * k * NR];
        if parallel && k * n > 1 << 14 {
            dst.par_chunks_mut(k.max(1) * NR).enumerate().for_each(one);
        } else {
            dst.chunks_mut(k.max(1) * NR).enumerate().for_each(one);
        }
    }
}

/// Packs a `k x n` operand `B` given by its stored rows (each contiguous): without
/// `transposed`, `B(kk, j) = row(kk)[j]`; with it, `B(kk, j) = row(j)[kk]` (a
/// transposed operand, e.g. the keys of `q x k^T`). The rows may come from different
/// buffers, e.g. the two inputs of a concat that is never materialized.
pub fn pack_b_rows<'a>(
    k: usize,
    n: usize,
    transposed: bool,
    row: &(dyn Fn(usize) -> &'a [f32] + Sync),
    dst: &mut [f32],
    parallel: bool,
) {
    let np = n.div_ceil(NR);
    let dst = &mut dst[..np * k * NR];
    let one = |(p, panel): (usize, &mut [f32])| {
        let c0 = p * NR;
        let w = NR.min(n - c0);
        if !transposed {
            for kk in 0..k {
                let out = &mut panel[kk * NR..kk * NR + NR];
                out[..w].copy_from_slice(&row(kk)[c0..c0 + w]);
                out[w..].fill(0.0);
            }
            return;
        }
        // Column j of B is contiguous: gather 16 columns at a time, so the 16 source
        // rows stream in order and every panel row segment is one contiguous store.
        let col = |j: usize| &row(c0 + j)[..k];
        const G: usize = 16;
        let full = w / G * G;
        for j0 in (0..full).step_by(G) {
            let src: [&[f32]; G] = std::array::from_fn(|t| col(j0 + t));
            for (kk, out) in panel.chunks_exact_mut(NR).take(k).enumerate() {
                let seg: [f32; G] = std::array::from_fn(|t| src[t][kk]);
                out[j0..j0 + G].copy_from_slice(&seg);
            }
        }
        for j in full..w {
            for (out, &x) in panel.chunks_exact_mut(NR).zip(col(j)) {
                out[j] = x;
            }
        }
        for out in panel.chunks_exact_mut(NR).take(k) {
            out[w..].fill(0.0);
        }
    };
    // Compiled under the dispatched instruction set (the closure is inlined there), so
    // the copies and the transposing gather vectorize with the wide registers.
    let one = |pp: (usize, &mut [f32])| pulp::Arch::new().dispatch(|| one(pp));
    if parallel && k * n > 1 << 14 {
        dst.par_chunks_mut(k.max(1) * NR).enumerate().for_each(one);
    } else {
        dst.chunks_mut(k.max(1) * NR).enumerate().for_each(one);
    }
}

/// Packed `B` panels: f32, or bf16 pairs in `u32` words (half the bytes to stream).
///
/// In the bf16 form a panel row of [`NR`] columns is `NR / 2` words; word `j` holds
/// column `j` in its low half and column `j + NR / 2` in its high half, so that one shift
/// and one mask turn a vector of words into two f32 vectors of the row (columns
/// `[j, j + lanes)` and `[j + NR / 2, j + NR / 2 + lanes)`).
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
/// (`tile t` at `t * kc * MR`, element `(r, kk)` at `kk * MR + r`). Rows of the last tile
/// past `mc` are left as they are: kernels never read them.
fn pack_a(a: MatRef<'_>, i0: usize, mc: usize, p0: usize, kc: usize, dst: &mut [f32]) {
    for (t, tile) in dst[..mc.div_ceil(MR) * kc * MR]
        .chunks_exact_mut(kc * MR)
        .enumerate()
    {
        pack_a_tile(a, i0 + t * MR, MR.min(mc - t * MR), p0, kc, tile);
    }
}

/// Packs one micro-panel: rows `[i0, i0 + rows)`, depth `[p0, p0 + kc)`.
fn pack_a_tile(a: MatRef<'_>, i0: usize, rows: usize, p0: usize, kc: usize, tile: &mut [f32]) {
    for r in 0..rows {
        let s = a.off + (i0 + r) * a.rs + p0 * a.cs;
        if a.cs == 1 {
            for (dst, v) in tile.chunks_exact_mut(MR).zip(&a.data[s..s + kc]) {
                dst[r] = *v;
            }
        } else {
            for (kk, dst) in tile.chunks_exact_mut(MR).take(kc).enumerate() {
                dst[r] = a.data[s + kk * a.cs];
            }
        }
    }
}

/// Packs all of `A` (`m x k`) into `dst` ([`GemmDims::packed_a_len`] elements): depth
/// block `b` (of [`KC`]) at `mpad * b * KC`, its tiles as in [`pack_a`].
fn pack_a_whole(d: GemmDims, a: MatRef<'_>, dst: &mut [f32], parallel: bool) {
    let tiles = d.m.div_ceil(MR);
    let mpad = tiles * MR;
    let dst = &mut dst[..mpad * d.k];
    let one = |(bi, block): (usize, &mut [f32])| {
        let p0 = bi * KC;
        let kc = KC.min(d.k - p0);
        for (t, tile) in block.chunks_exact_mut(kc * MR).enumerate() {
            pack_a_tile(a, t * MR, MR.min(d.m - t * MR), p0, kc, tile);
        }
    };
    if parallel && d.m * d.k > 1 << 15 {
        dst.par_chunks_mut(mpad * KC).enumerate().for_each(one);
    } else {
        dst.chunks_mut(mpad * KC).enumerate().for_each(one);
    }
}

/// Reads one packed `B` row (a chunk of the block) as the two f32 vectors a micro-kernel
/// multiplies: column vectors `w` and `w + NR / 2 / lanes` of the panel.
trait RowLoad<S: Simd>: Copy {
    /// Element type of the block.
    type T: Copy;
    /// Block elements per row.
    const STEP: usize;
    fn load(self, s: S, row: &[Self::T], w: usize) -> (S::f32s, S::f32s);
}

#[derive(Clone, Copy)]
struct F32Rows;
#[derive(Clone, Copy)]
struct Bf16Rows;

impl<S: Simd> RowLoad<S> for F32Rows {
    type T = S::f32s;
    const STEP: usize = NR / S::F32_LANES;
    #[inline(always)]
    fn load(self, _s: S, row: &[S::f32s], w: usize) -> (S::f32s, S::f32s) {
        (row[w], row[w + NR / 2 / S::F32_LANES])
    }
}

impl<S: Simd> RowLoad<S> for Bf16Rows {
    type T = S::u32s;
    const STEP: usize = NR / 2 / S::U32_LANES;
    #[inline(always)]
    fn load(self, s: S, row: &[S::u32s], w: usize) -> (S::f32s, S::f32s) {
        let x = row[w];
        let lo = s.wrapping_dyn_shl_u32s(x, s.splat_u32s(16));
        let hi = s.and_u32s(x, s.splat_u32s(0xFFFF_0000));
        (s.transmute_f32s_u32s(lo), s.transmute_f32s_u32s(hi))
    }
}

/// The micro-kernel: rows `[r0, r0 + R)` of a packed `A` tile times column vectors `w`
/// and `w + NR / 2 / lanes` of a packed `B` block; `c` holds the tile's output rows
/// (`NR / lanes` vectors each, `ldc` vectors apart), overwritten or accumulated into.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn micro<S: Simd, L: RowLoad<S>, const R: usize>(
    s: S,
    ld: L,
    a: &[f32],
    r0: usize,
    b: &[L::T],
    w: usize,
    c: &mut [S::f32s],
    ldc: usize,
    accumulate: bool,
) {
    let nrv = NR / S::F32_LANES;
    let h = nrv / 2;
    let z = s.splat_f32s(0.0);
    let mut acc = [[z; 2]; R];
    for (bk, ak) in b.chunks_exact(L::STEP).zip(a.chunks_exact(MR)) {
        let (b0, b1) = ld.load(s, bk, w);
        let ak = &ak[r0..r0 + R];
        for r in 0..R {
            let ar = s.splat_f32s(ak[r]);
            acc[r][0] = s.mul_add_f32s(ar, b0, acc[r][0]);
            acc[r][1] = s.mul_add_f32s(ar, b1, acc[r][1]);
        }
    }
    for (r, acc) in acc.iter().enumerate() {
        let row = &mut c[(r0 + r) * ldc..(r0 + r) * ldc + nrv];
        if accumulate {
            row[w] = s.add_f32s(row[w], acc[0]);
            row[w + h] = s.add_f32s(row[w + h], acc[1]);
        } else {
            row[w] = acc[0];
            row[w + h] = acc[1];
        }
    }
}

/// Panels a one-row product (decode GEMV) runs through at once: `2 * GEMV_PANELS`
/// independent accumulator chains hide the FMA latency and keep that many weight
/// streams in flight.
const GEMV_PANELS: usize = 4;

/// Row 0 of a packed `A` tile times `P` packed `B` blocks (one per consecutive panel),
/// accumulating each panel in exactly the order [`micro`] does (so results are
/// bit-identical to the one-panel path); `c` holds the `P` panels' output rows.
#[inline(always)]
fn micro_panels<S: Simd, L: RowLoad<S>, const P: usize>(
    s: S,
    ld: L,
    a: &[f32],
    b: [&[L::T]; P],
    c: &mut [S::f32s],
    pstride: usize,
    accumulate: bool,
) {
    let nrv = NR / S::F32_LANES;
    let h = nrv / 2;
    let kc = a.len() / MR;
    let b = b.map(|x| &x[..kc * L::STEP]);
    for w in 0..h {
        let z = s.splat_f32s(0.0);
        let mut acc = [[z; 2]; P];
        for (kk, ak) in a.chunks_exact(MR).enumerate() {
            let ar = s.splat_f32s(ak[0]);
            for p in 0..P {
                let (b0, b1) = ld.load(s, &b[p][kk * L::STEP..(kk + 1) * L::STEP], w);
                acc[p][0] = s.mul_add_f32s(ar, b0, acc[p][0]);
                acc[p][1] = s.mul_add_f32s(ar, b1, acc[p][1]);
            }
        }
        for (p, acc) in acc.iter().enumerate() {
            let row = &mut c[p * pstride..p * pstride + nrv];
            if accumulate {
                row[w] = s.add_f32s(row[w], acc[0]);
                row[w + h] = s.add_f32s(row[w + h], acc[1]);
            } else {
                row[w] = acc[0];
                row[w + h] = acc[1];
            }
        }
    }
}

/// Rows `[r0, r0 + rows)` of a tile, every column pair of the panel.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn micro_rows<S: Simd, L: RowLoad<S>>(
    s: S,
    ld: L,
    a: &[f32],
    r0: usize,
    rows: usize,
    b: &[L::T],
    c: &mut [S::f32s],
    ldc: usize,
    accumulate: bool,
) {
    for w in 0..NR / 2 / S::F32_LANES {
        macro_rules! go {
            ($($n:literal)*) => {
                match rows {
                    $($n => micro::<S, L, $n>(s, ld, a, r0, b, w, c, ldc, accumulate),)*
                    _ => {}
                }
            };
        }
        go!(1 2 3 4 5 6 7 8 9 10 11 12);
    }
}

/// One tile of `rows` valid rows (<= [`MR`]): 12-row kernels when the instruction set has
/// 32 vector registers (AVX-512), 6-row halves otherwise.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn tile<S: Simd, L: RowLoad<S>>(
    s: S,
    ld: L,
    a: &[f32],
    rows: usize,
    b: &[L::T],
    c: &mut [S::f32s],
    ldc: usize,
    accumulate: bool,
) {
    if S::REGISTER_COUNT >= 32 || S::F32_LANES == 1 {
        micro_rows(s, ld, a, 0, rows, b, c, ldc, accumulate);
    } else {
        micro_rows(s, ld, a, 0, rows.min(6), b, c, ldc, accumulate);
        if rows > 6 {
            micro_rows(s, ld, a, 6, rows - 6, b, c, ldc, accumulate);
        }
    }
}

/// Where a task finds its packed `A`.
enum APack<'a> {
    /// All of `A`, packed once (see [`pack_a_whole`]).
    Shared(&'a [f32]),
    /// The task's own buffer, packed block by block.
    Own(&'a mut [f32]),
}

/// One task: all `m` rows times `panels` consecutive packed panels.
struct Task<'a> {
    m: usize,
    k: usize,
    a: MatRef<'a>,
    ap: APack<'a>,
    bp: BRef<'a>,
    panels: usize,
    out: &'a mut [f32],
    /// Output layout, in f32 elements: stride between rows and between panels
    /// (panel-major: `NR` and `m * NR`; row-major `m x n`: `n` and `NR`).
    ldc: usize,
    pstride: usize,
}

impl WithSimd for Task<'_> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        let Task {
            m,
            k,
            a,
            ap,
            bp,
            panels,
            out,
            ldc,
            pstride,
        } = self;
        if k == 0 {
            out.fill(0.0);
            return;
        }
        let mpad = m.div_ceil(MR) * MR;
        let (out, _) = S::as_mut_simd_f32s(out);
        let nrv = NR / S::F32_LANES;
        let (ldc, pstride) = (ldc / S::F32_LANES, pstride / S::F32_LANES);
        let o = Out { ldc, pstride, nrv };
        match ap {
            APack::Shared(sh) => {
                // Panels outer, depth blocks inner: each panel's K rows stream from memory
                // once and in order (weights are usually cold: read once per product).
                let group = if m == 1 { GEMV_PANELS } else { 1 };
                let mut p = 0;
                while p < panels {
                    let hi = (p + group).min(panels);
                    let mut p0 = 0;
                    while p0 < k {
                        let kc = KC.min(k - p0);
                        let apk = &sh[mpad * p0..mpad * p0 + mpad * kc];
                        let blk = Block {
                            p0,
                            kc,
                            i0: 0,
                            mc: m,
                        };
                        panel_range(s, bp, k, apk, blk, p, hi, m, out, o);
                        p0 += kc;
                    }
                    p = hi;
                }
            }
            APack::Own(buf) => {
                let mut p0 = 0;
                while p0 < k {
                    let kc = KC.min(k - p0);
                    let mut i0 = 0;
                    while i0 < m {
                        let mc = MC.min(m - i0);
                        pack_a(a, i0, mc, p0, kc, buf);
                        let apk = &buf[..mc.div_ceil(MR) * MR * kc];
                        let blk = Block { p0, kc, i0, mc };
                        panel_range(s, bp, k, apk, blk, 0, panels, m, out, o);
                        i0 += mc;
                    }
                    p0 += kc;
                }
            }
        }
    }
}

/// Output geometry of a task, in vectors: row stride, panel stride, vectors per panel row.
#[derive(Clone, Copy)]
struct Out {
    ldc: usize,
    pstride: usize,
    nrv: usize,
}

/// The block of `A` being multiplied: depth `[p0, p0 + kc)`, rows `[i0, i0 + mc)`.
#[derive(Clone, Copy)]
struct Block {
    p0: usize,
    kc: usize,
    i0: usize,
    mc: usize,
}

/// Multiplies the packed `A` block `apk` by depth block `blk` of panels `[lo, hi)` of `B`,
/// into `out` (overwriting on the first depth block, accumulating after).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn panel_range<S: Simd>(
    s: S,
    bp: BRef<'_>,
    k: usize,
    apk: &[f32],
    blk: Block,
    lo: usize,
    hi: usize,
    m: usize,
    out: &mut [S::f32s],
    o: Out,
) {
    let Block { p0, kc, i0, mc } = blk;
    let Out { ldc, pstride, nrv } = o;
    let acc = p0 > 0;
    let mut first = lo;
    if m == 1 {
        // Decode GEMV: several panels at once (same per-panel arithmetic).
        let at = &apk[..kc * MR];
        while first + GEMV_PANELS <= hi {
            let o0 = first * pstride;
            let c = &mut out[o0..o0 + (GEMV_PANELS - 1) * pstride + nrv];
            match bp {
                BRef::F32(_) => {
                    let bs: [&[S::f32s]; GEMV_PANELS] =
                        std::array::from_fn(|j| match bp.block(first + j, k, p0, kc) {
                            BRef::F32(x) => S::as_simd_f32s(x).0,
                            BRef::Bf16(_) => &[],
                        });
                    micro_panels(s, F32Rows, at, bs, c, pstride, acc);
                }
                BRef::Bf16(_) => {
                    let bs: [&[S::u32s]; GEMV_PANELS] =
                        std::array::from_fn(|j| match bp.block(first + j, k, p0, kc) {
                            BRef::Bf16(x) => S::as_simd_u32s(x).0,
                            BRef::F32(_) => &[],
                        });
                    micro_panels(s, Bf16Rows, at, bs, c, pstride, acc);
                }
            }
            first += GEMV_PANELS;
        }
    }
    for p in first..hi {
        let bblock = bp.block(p, k, p0, kc);
        for (t, at) in apk.chunks_exact(kc * MR).enumerate() {
            let rows = MR.min(mc - t * MR);
            let o0 = p * pstride + (i0 + t * MR) * ldc;
            let c = &mut out[o0..o0 + (rows - 1) * ldc + nrv];
            match bblock {
                BRef::F32(bb) => {
                    let (bv, _) = S::as_simd_f32s(bb);
                    tile(s, F32Rows, at, rows, bv, c, ldc, acc)
                }
                BRef::Bf16(bb) => {
                    let (bv, _) = S::as_simd_u32s(bb);
                    tile(s, Bf16Rows, at, rows, bv, c, ldc, acc)
                }
            }
        }
    }
}

/// Instruction set a product runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Isa {
    /// The best one the CPU has (what every caller gets).
    Best,
    /// Portable scalar code (tests).
    #[cfg(test)]
    Scalar,
    /// AVX2 + FMA if the CPU has it, else the best (tests).
    #[cfg(test)]
    V3,
}

fn run_task<W: WithSimd>(t: W, isa: Isa) -> W::Output {
    match isa {
        Isa::Best => pulp::Arch::new().dispatch(t),
        #[cfg(test)]
        Isa::Scalar => pulp::Simd::vectorize(pulp::Scalar::new(), t),
        #[cfg(test)]
        Isa::V3 => {
            #[cfg(target_arch = "x86_64")]
            if let Some(v) = pulp::x86::V3::try_new() {
                return pulp::Simd::vectorize(v, t);
            }
            pulp::Arch::new().dispatch(t)
        }
    }
}

/// Computes the panel-major product of `A` (`m x k`) and the packed `B` into `out`
/// ([`GemmDims::out_len`] elements). `apack` is scratch: when it holds
/// [`GemmDims::packed_a_len`] elements, `A` is packed once and shared; otherwise it must
/// hold at least one [`APACK`] buffer per task. With `parallel`, panels are split into up
/// to [`max_tasks`] tasks (at most `apack.len() / APACK` when `A` is not shared).
pub fn gemm_panels(
    d: GemmDims,
    a: MatRef<'_>,
    bp: BRef<'_>,
    out: &mut [f32],
    apack: &mut [f32],
    parallel: bool,
) {
    gemm_panels_isa(d, a, bp, out, apack, parallel, Isa::Best)
}

fn gemm_panels_isa(
    d: GemmDims,
    a: MatRef<'_>,
    bp: BRef<'_>,
    out: &mut [f32],
    apack: &mut [f32],
    parallel: bool,
    isa: Isa,
) {
    let np = d.panels();
    if np == 0 || d.m == 0 {
        return;
    }
    let out = &mut out[..np * d.m * NR];
    let flops = d.m * d.k * d.n;
    let shared = apack.len() >= d.packed_a_len();
    let max_t = if shared {
        max_tasks()
    } else {
        (apack.len() / APACK).max(1)
    };
    let tasks = if parallel && flops > 1 << 16 {
        max_t.min(np)
    } else {
        1
    };
    let ppt = np.div_ceil(tasks);
    let (m, k) = (d.m, d.k);
    if shared {
        pack_a_whole(d, a, apack, parallel);
        let sh: &[f32] = &apack[..d.packed_a_len()];
        let run = |(t, o): (usize, &mut [f32])| {
            let cnt = o.len() / (m * NR);
            run_task(
                Task {
                    m,
                    k,
                    a,
                    ap: APack::Shared(sh),
                    bp: bp.panels(k, t * ppt, cnt),
                    panels: cnt,
                    out: o,
                    ldc: NR,
                    pstride: m * NR,
                },
                isa,
            );
        };
        if tasks == 1 {
            run((0, out));
        } else {
            out.par_chunks_mut(ppt * m * NR).enumerate().for_each(run);
        }
        return;
    }
    if tasks == 1 {
        run_task(
            Task {
                m,
                k,
                a,
                ap: APack::Own(&mut apack[..APACK]),
                bp,
                panels: np,
                out,
                ldc: NR,
                pstride: m * NR,
            },
            isa,
        );
        return;
    }
    out.par_chunks_mut(ppt * m * NR)
        .zip(apack.par_chunks_mut(APACK))
        .enumerate()
        .for_each(|(t, (o, ap))| {
            let cnt = o.len() / (m * NR);
            run_task(
                Task {
                    m,
                    k,
                    a,
                    ap: APack::Own(ap),
                    bp: bp.panels(k, t * ppt, cnt),
                    panels: cnt,
                    out: o,
                    ldc: NR,
                    pstride: m * NR,
                },
                isa,
            );
        });
}

/// Computes `A · B` on the calling thread straight into the row-major `c` (`m x n`, no
/// panel-major buffer and no [`scatter`] pass: what pays for products with a short `k`
/// and a large output, like attention scores). Needs `n` a multiple of [`NR`] (returns
/// `false` and does nothing otherwise); `apack` as for [`gemm_panels`] (one task).
pub fn gemm_rows(
    d: GemmDims,
    a: MatRef<'_>,
    bp: BRef<'_>,
    c: &mut [f32],
    apack: &mut [f32],
) -> bool {
    gemm_rows_isa(d, a, bp, c, apack, Isa::Best)
}

fn gemm_rows_isa(
    d: GemmDims,
    a: MatRef<'_>,
    bp: BRef<'_>,
    c: &mut [f32],
    apack: &mut [f32],
    isa: Isa,
) -> bool {
    if !d.n.is_multiple_of(NR) {
        return false;
    }
    let (m, k, n) = (d.m, d.k, d.n);
    if m == 0 || n == 0 {
        return true;
    }
    let ap = if apack.len() >= d.packed_a_len() {
        pack_a_whole(d, a, apack, false);
        APack::Shared(&apack[..d.packed_a_len()])
    } else {
        APack::Own(&mut apack[..APACK])
    };
    run_task(
        Task {
            m,
            k,
            a,
            ap,
            bp,
            panels: d.panels(),
            out: &mut c[..m * n],
            ldc: n,
            pstride: NR,
        },
        isa,
    );
    true
}

/// Largest `m` [`small_m`] is meant for (decode attention: the query heads of one KV head).
pub const SMALL_M: usize = 4;

/// `C = A · B` for a few rows of `A` (`m <=` [`SMALL_M`]) without packing `B`: `B` is
/// given by its stored rows as for [`pack_b_rows`] (`transposed`: `B(kk, j) = row(j)[kk]`,
/// else `B(kk, j) = row(kk)[j]`) and read once, in place (for decode attention, the KV
/// cache). Every output element is computed exactly as [`gemm_panels`] computes it (one
/// fused multiply-add chain per [`KC`] block of `k`, the blocks added in order), so the
/// result is bit-identical. Runs on the calling thread; `c` is row-major `m x n`.
pub fn small_m<'a>(
    d: GemmDims,
    a: MatRef<'_>,
    transposed: bool,
    row: &(dyn Fn(usize) -> &'a [f32] + Sync),
    c: &mut [f32],
) {
    pulp::Arch::new().dispatch(SmallM {
        d,
        a,
        transposed,
        row,
        c,
    })
}

struct SmallM<'r, 'a, 'c> {
    d: GemmDims,
    a: MatRef<'r>,
    transposed: bool,
    row: &'r (dyn Fn(usize) -> &'a [f32] + Sync),
    c: &'c mut [f32],
}

impl WithSimd for SmallM<'_, '_, '_> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        let SmallM {
            d,
            a,
            transposed,
            row,
            c,
        } = self;
        let (m, k, n) = (d.m, d.k, d.n);
        let c = &mut c[..m * n];
        let av = |i: usize, kk: usize| a.data[a.off + i * a.rs + kk * a.cs];
        if k == 0 {
            c.fill(0.0);
            return;
        }
        if transposed {
            // Eight columns (stored rows of B) at a time, one scalar FMA chain per output:
            // 8 * m independent chains, each loaded B value used by every row of A.
            const J: usize = 8;
            let mut out = [[0f32; J]; SMALL_M];
            for i0 in (0..m).step_by(SMALL_M) {
                let mi = SMALL_M.min(m - i0);
                for j0 in (0..n).step_by(J) {
                    let jn = J.min(n - j0);
                    let rows: [&[f32]; J] =
                        std::array::from_fn(|t| if t < jn { &row(j0 + t)[..k] } else { &[] });
                    let mut p0 = 0;
                    while p0 < k {
                        let kc = KC.min(k - p0);
                        let mut acc = [[0f32; J]; SMALL_M];
                        if jn == J && mi == SMALL_M.min(m) && a.cs == 1 {
                            let xs: [&[f32]; SMALL_M] = std::array::from_fn(|i| {
                                if i < mi {
                                    &a.data[a.off + (i0 + i) * a.rs + p0..][..kc]
                                } else {
                                    &[]
                                }
                            });
                            let blk: [&[f32]; J] = rows.map(|r| &r[p0..p0 + kc]);
                            for kk in 0..kc {
                                let bv: [f32; J] = std::array::from_fn(|t| blk[t][kk]);
                                for (acc, x) in acc.iter_mut().zip(&xs).take(mi) {
                                    let x = x[kk];
                                    for (a, b) in acc.iter_mut().zip(&bv) {
                                        *a = x.mul_add(*b, *a);
                                    }
                                }
                            }
                        } else {
                            for kk in p0..p0 + kc {
                                for (i, acc) in acc.iter_mut().enumerate().take(mi) {
                                    let x = av(i0 + i, kk);
                                    for (a, r) in acc.iter_mut().zip(&rows).take(jn) {
                                        *a = x.mul_add(r[kk], *a);
                                    }
                                }
                            }
                        }
                        for (o, a) in out.iter_mut().zip(&acc).take(mi) {
                            for (o, a) in o.iter_mut().zip(a).take(jn) {
                                *o = if p0 == 0 { *a } else { *o + *a };
                            }
                        }
                        p0 += kc;
                    }
                    for (i, o) in out.iter().enumerate().take(mi) {
                        let r = (i0 + i) * n + j0;
                        c[r..r + jn].copy_from_slice(&o[..jn]);
                    }
                }
            }
            return;
        }
        // Rows of B are contiguous: vector FMA chains across the columns (each lane one
        // output column), eight vectors at a time.
        const V: usize = 8;
        let lanes = S::F32_LANES;
        let nv = n / lanes;
        for i in 0..m {
            let crow = &mut c[i * n..(i + 1) * n];
            let (ch, ct) = S::as_mut_simd_f32s(crow);
            for v0 in (0..nv).step_by(V) {
                let vn = V.min(nv - v0);
                let mut p0 = 0;
                while p0 < k {
                    let kc = KC.min(k - p0);
                    let mut acc = [s.splat_f32s(0.0); V];
                    for kk in p0..p0 + kc {
                        let x = s.splat_f32s(av(i, kk));
                        let (bv, _) = S::as_simd_f32s(&row(kk)[..n]);
                        let bv = &bv[v0..v0 + vn];
                        for t in 0..vn {
                            acc[t] = s.mul_add_f32s(x, bv[t], acc[t]);
                        }
                    }
                    for t in 0..vn {
                        ch[v0 + t] = if p0 == 0 {
                            acc[t]
                        } else {
                            s.add_f32s(ch[v0 + t], acc[t])
                        };
                    }
                    p0 += kc;
                }
            }
            let j0 = nv * lanes;
            for (t, cj) in ct.iter_mut().enumerate() {
                let mut p0 = 0;
                while p0 < k {
                    let kc = KC.min(k - p0);
                    let mut acc = 0f32;
                    for kk in p0..p0 + kc {
                        acc = av(i, kk).mul_add(row(kk)[j0 + t], acc);
                    }
                    *cj = if p0 == 0 { acc } else { *cj + acc };
                    p0 += kc;
                }
            }
        }
    }
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

    /// Runs `A · B` through the packed path with `isa`, `apack` elements of scratch, f32
    /// or bf16 panels, and compares with a naive f64 product.
    fn check(m: usize, k: usize, n: usize, isa: Isa, apack_len: usize, bf16: bool) {
        let a: Vec<f32> = (0..m * k)
            .map(|i| ((i * 7 % 13) as f32 - 6.0) / 7.0)
            .collect();
        // Values exactly representable in bf16, so both packings give the same product.
        let b: Vec<f32> = (0..k * n)
            .map(|i| half::bf16::from_f32(((i * 5 % 11) as f32 - 5.0) / 3.0).to_f32())
            .collect();
        let d = GemmDims { m, k, n };
        let bv = MatRef {
            data: &b,
            off: 0,
            rs: n,
            cs: 1,
        };
        let mut bp = Vec::new();
        let mut bw = Vec::new();
        if bf16 {
            assert!(bf16_exact(&b));
            bw = vec![0u32; d.packed_b_len() / 2];
            pack_b_bf16(k, n, bv, &mut bw);
        } else {
            bp = vec![0f32; d.packed_b_len()];
            pack_b(k, n, bv, &mut bp, true);
        }
        let bref = if bf16 {
            BRef::Bf16(&bw)
        } else {
            BRef::F32(&bp)
        };
        // Garbage in the scratch and output: nothing may depend on their contents.
        let mut panels = vec![f32::NAN; d.out_len()];
        let mut apack = vec![f32::NAN; apack_len];
        let av = MatRef {
            data: &a,
            off: 0,
            rs: k,
            cs: 1,
        };
        gemm_panels_isa(d, av, bref, &mut panels, &mut apack, true, isa);
        let mut c = vec![0f32; m * n];
        scatter(d, &panels, &mut c, None, true);
        let want = naive(m, k, n, &a, &b);
        for (i, (x, y)) in c.iter().zip(&want).enumerate() {
            assert!(
                (x - y).abs() <= 1e-4 * (1.0 + y.abs()),
                "{m}x{k}x{n} {isa:?} bf16 {bf16} apack {apack_len}: element {i}: {x} vs {y}"
            );
        }
    }

    const SIZES: [(usize, usize, usize); 7] = [
        (1, 1, 1),
        (7, 300, 33),
        (130, 17, 5),
        (13, 513, 70),
        (1, 600, 260),
        (12, 256, 32),
        (25, 40, 97),
    ];

    #[test]
    fn blocked_gemm_matches_naive_on_odd_sizes() {
        for isa in [Isa::Best, Isa::V3, Isa::Scalar] {
            for &(m, k, n) in &SIZES {
                for bf16 in [false, true] {
                    check(m, k, n, isa, APACK * max_tasks(), bf16);
                }
            }
        }
    }

    #[test]
    fn tasks_packing_their_own_a_blocks_give_the_same_product() {
        // `A` (130 x 1200, 132 x 1200 packed) does not fit two APACK buffers, so each task
        // packs MC-row blocks itself; 1-buffer scratch runs one task.
        for isa in [Isa::Best, Isa::V3] {
            for bf16 in [false, true] {
                check(130, 1200, 70, isa, APACK * 2, bf16);
                check(150, 1100, 40, isa, APACK, bf16);
            }
        }
        assert!(
            GemmDims {
                m: 130,
                k: 1200,
                n: 70
            }
            .packed_a_len()
                > APACK
        );
    }

    /// Product of `rows` rows of `a` (`k` columns) with `b` through the packed path.
    fn product(rows: usize, k: usize, n: usize, a: &[f32], bref: BRef<'_>, isa: Isa) -> Vec<f32> {
        let d = GemmDims { m: rows, k, n };
        let mut panels = vec![0f32; d.out_len()];
        let mut apack = vec![0f32; APACK * max_tasks()];
        gemm_panels_isa(d, rows_of(a, k), bref, &mut panels, &mut apack, true, isa);
        let mut c = vec![0f32; rows * n];
        scatter(d, &panels, &mut c, None, true);
        c
    }

    /// Row-major view of `m x k` data.
    fn rows_of(a: &[f32], k: usize) -> MatRef<'_> {
        MatRef {
            data: a,
            off: 0,
            rs: k,
            cs: 1,
        }
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    /// Test operands: `A` (`m x k`) and a bf16-exact `B` (`k x n`) packed both ways
    /// (f32 panels, bf16 words).
    struct Operands {
        a: Vec<f32>,
        b: Vec<f32>,
        bp: Vec<f32>,
        bw: Vec<u32>,
    }

    fn operands(m: usize, k: usize, n: usize) -> Operands {
        let a = (0..m * k)
            .map(|i| ((i * 7 % 31) as f32 - 15.0) / 9.0)
            .collect();
        let b: Vec<f32> = (0..k * n)
            .map(|i| half::bf16::from_f32(((i * 5 % 17) as f32 - 8.0) / 5.0).to_f32())
            .collect();
        let d = GemmDims { m, k, n };
        let mut bp = vec![0f32; d.packed_b_len()];
        pack_b(k, n, rows_of(&b, n), &mut bp, true);
        let mut bw = vec![0u32; d.packed_b_len() / 2];
        pack_b_bf16(k, n, rows_of(&b, n), &mut bw);
        Operands { a, b, bp, bw }
    }

    const ISAS: [Isa; 3] = [Isa::Best, Isa::V3, Isa::Scalar];

    #[test]
    fn one_row_products_equal_the_rows_of_larger_ones_bit_for_bit() {
        // The GEMV path (several panels at once) must give every row exactly what the
        // tile path gives it, so decode and prefill agree: 5 full panel groups and a
        // remainder, and a depth with several KC blocks.
        let (k, n) = (600, 32 * 21 + 7);
        let o = operands(3, k, n);
        for isa in ISAS {
            for bref in [BRef::F32(&o.bp), BRef::Bf16(&o.bw)] {
                let all = product(3, k, n, &o.a, bref, isa);
                for r in 0..3 {
                    let one = product(1, k, n, &o.a[r * k..(r + 1) * k], bref, isa);
                    let want = &all[r * n..(r + 1) * n];
                    assert_eq!(bits(&one), bits(want), "{isa:?} row {r}");
                }
            }
        }
    }

    #[test]
    fn row_major_products_equal_panel_major_ones_bit_for_bit() {
        // (m, k, n, apack): shared A, one-row GEMV, and A packed block by block (Own).
        for (m, k, n, apack_len) in [
            (13, 300, 96, APACK * max_tasks()),
            (1, 600, 32 * 9, APACK * max_tasks()),
            (150, 1100, 64, APACK),
        ] {
            let o = operands(m, k, n);
            let d = GemmDims { m, k, n };
            for isa in ISAS {
                for bref in [BRef::F32(&o.bp), BRef::Bf16(&o.bw)] {
                    let want = product(m, k, n, &o.a, bref, isa);
                    let mut c = vec![f32::NAN; m * n];
                    let mut apack = vec![f32::NAN; apack_len];
                    assert!(gemm_rows_isa(
                        d,
                        rows_of(&o.a, k),
                        bref,
                        &mut c,
                        &mut apack,
                        isa
                    ));
                    assert_eq!(bits(&c), bits(&want), "{m}x{k}x{n} {isa:?}");
                }
            }
        }
        // n not a multiple of NR: refused, nothing written.
        let d = GemmDims { m: 2, k: 3, n: 33 };
        let bp = vec![0f32; d.packed_b_len()];
        let mut c = vec![7f32; 66];
        let mut apack = vec![0f32; APACK];
        assert!(!gemm_rows(
            d,
            rows_of(&[0f32; 6], 3),
            BRef::F32(&bp),
            &mut c,
            &mut apack
        ));
        assert!(c.iter().all(|x| *x == 7.0));
    }

    #[test]
    fn small_m_products_equal_packed_ones_bit_for_bit() {
        for (m, k, n) in [(1, 600, 70), (2, 128, 1024), (3, 700, 37), (4, 257, 128)] {
            let o = operands(m, k, n);
            let d = GemmDims { m, k, n };
            for transposed in [false, true] {
                // Stored rows: B itself (k rows of n), or B^T (n rows of k).
                let st: Vec<f32> = if transposed {
                    (0..n * k).map(|i| o.b[(i % k) * n + i / k]).collect()
                } else {
                    o.b.clone()
                };
                let w = if transposed { k } else { n };
                let row = |r: usize| &st[r * w..];
                let mut bp = vec![0f32; d.packed_b_len()];
                pack_b_rows(k, n, transposed, &row, &mut bp, false);
                for isa in ISAS {
                    let want = product(m, k, n, &o.a, BRef::F32(&bp), isa);
                    let mut c = vec![f32::NAN; m * n];
                    let t = SmallM {
                        d,
                        a: rows_of(&o.a, k),
                        transposed,
                        row: &row,
                        c: &mut c,
                    };
                    run_task(t, isa);
                    assert_eq!(
                        bits(&c),
                        bits(&want),
                        "{m}x{k}x{n} transposed {transposed} {isa:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn bf16_exactness() {
        assert!(bf16_exact(&[1.0, -0.5, 3_145_728.0, 0.0]));
        assert!(!bf16_exact(&[0.1]));
    }
}
