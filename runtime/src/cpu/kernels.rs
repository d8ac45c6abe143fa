//! f32 compute kernels and element-size-generic data movement, all allocation-free.
//! Plans (broadcast strides, strided copies) are computed once at compile time; the
//! kernels only walk them. Large problems are split over rows with rayon.

use rayon::prelude::*;

/// Elements below which kernels run on the calling thread.
pub const PAR_MIN: usize = 1 << 15;

/// Row-major strides of `shape`.
pub fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// Strides of an operand of shape `s` broadcast to `out` (0 on broadcast dims).
pub fn bcast_strides(s: &[usize], out: &[usize]) -> Vec<usize> {
    let st = strides(s);
    let mut r = vec![0; out.len()];
    let lead = out.len() - s.len();
    for i in 0..s.len() {
        if s[i] != 1 || out[lead + i] == 1 {
            r[lead + i] = if s[i] == 1 { 0 } else { st[i] };
        }
    }
    r
}

/// An `N`-operand broadcast walk over a row-major output: collapsed outer dims, each
/// with one stride per operand, and an inner run of `inner` elements.
#[derive(Debug, Clone)]
pub struct Bcast<const N: usize> {
    /// Outer dimensions (size, stride of each operand), outermost first.
    pub outer: Vec<(usize, [usize; N])>,
    /// Length of the inner run.
    pub inner: usize,
    /// Stride of each operand along the inner run (0 or 1 after collapsing).
    pub inner_s: [usize; N],
}

impl<const N: usize> Bcast<N> {
    /// Plans the walk of `out` with operands of the given shapes (each broadcastable
    /// to `out`). With `keep_last`, the last dimension is never merged with others.
    pub fn new(out: &[usize], shapes: [&[usize]; N], keep_last: bool) -> Bcast<N> {
        let st: Vec<Vec<usize>> = shapes.iter().map(|s| bcast_strides(s, out)).collect();
        let mut dims: Vec<(usize, [usize; N])> = Vec::new();
        for (d, &size) in out.iter().enumerate() {
            let mut s = [0; N];
            for k in 0..N {
                s[k] = st[k][d];
            }
            let last = d + 1 == out.len();
            if let Some(prev) = dims.last_mut() {
                let merge = (!keep_last || !last) && (0..N).all(|k| prev.1[k] == s[k] * size);
                if merge {
                    prev.0 *= size;
                    prev.1 = s;
                    continue;
                }
            }
            dims.push((size, s));
        }
        let (inner, inner_s) = dims.pop().unwrap_or((1, [0; N]));
        Bcast {
            outer: dims,
            inner,
            inner_s,
        }
    }

    /// Operand offsets of output row `r` (a row is one inner run).
    #[inline]
    pub fn offsets(&self, mut r: usize) -> [usize; N] {
        let mut o = [0; N];
        for (size, s) in self.outer.iter().rev() {
            let i = r % size;
            r /= size;
            for k in 0..N {
                o[k] += i * s[k];
            }
        }
        o
    }
}

/// Runs `f(row, out_row)` over rows of `inner` elements, in parallel when large. Each block
/// of rows runs under the best instruction set the CPU has (`pulp` dispatch; `f` is inlined
/// there), so plain element loops auto-vectorize with its widest registers; the arithmetic
/// and its order are unchanged.
#[inline]
pub fn rows_mut<T: Send>(out: &mut [T], inner: usize, f: impl Fn(usize, &mut [T]) + Sync + Send) {
    let inner = inner.max(1);
    let parallel = out.len() >= PAR_MIN && out.len() / inner > 1;
    let per = if parallel {
        (PAR_MIN / inner).max(1)
    } else {
        out.len().div_ceil(inner).max(1)
    };
    let run = |(b, block): (usize, &mut [T])| {
        pulp::Arch::new().dispatch(|| {
            for (j, o) in block.chunks_mut(inner).enumerate() {
                f(b * per + j, o);
            }
        })
    };
    if parallel {
        out.par_chunks_mut(per * inner).enumerate().for_each(run);
    } else {
        run((0, out));
    }
}

/// Elementwise binary op with broadcasting: `out[i] = f(a[..], b[..])`.
pub fn binary<T: Send + Copy>(
    p: &Bcast<2>,
    a: &[f32],
    b: &[f32],
    out: &mut [T],
    f: impl Fn(f32, f32) -> T + Sync + Send,
) {
    let [ia, ib] = p.inner_s;
    rows_mut(out, p.inner, |r, o| {
        let [oa, ob] = p.offsets(r);
        let n = o.len();
        match (ia, ib) {
            (1, 1) => {
                for ((x, y), z) in a[oa..oa + n].iter().zip(&b[ob..ob + n]).zip(o) {
                    *z = f(*x, *y);
                }
            }
            (1, 0) => {
                let y = b[ob];
                for (x, z) in a[oa..oa + n].iter().zip(o) {
                    *z = f(*x, y);
                }
            }
            (0, 1) => {
                let x = a[oa];
                for (y, z) in b[ob..ob + n].iter().zip(o) {
                    *z = f(x, *y);
                }
            }
            _ => {
                for (j, z) in o.iter_mut().enumerate() {
                    *z = f(a[oa + j * ia], b[ob + j * ib]);
                }
            }
        }
    });
}

/// `out = cond ? a : b` with broadcasting (`cond` is one byte per element).
pub fn select(p: &Bcast<3>, c: &[u8], a: &[f32], b: &[f32], out: &mut [f32]) {
    let [ic, ia, ib] = p.inner_s;
    rows_mut(out, p.inner, |r, o| {
        let [oc, oa, ob] = p.offsets(r);
        for (j, z) in o.iter_mut().enumerate() {
            *z = if c[oc + j * ic] != 0 {
                a[oa + j * ia]
            } else {
                b[ob + j * ib]
            };
        }
    });
}

/// Elementwise op given as a slice kernel `f(x_chunk, out_chunk)`, split over threads
/// when large.
pub fn map_chunks(x: &[f32], out: &mut [f32], f: impl Fn(&[f32], &mut [f32]) + Sync + Send) {
    let n = x.len().min(out.len());
    let (x, out) = (&x[..n], &mut out[..n]);
    if n >= PAR_MIN {
        out.par_chunks_mut(1 << 14)
            .zip(x.par_chunks(1 << 14))
            .for_each(|(o, x)| f(x, o));
    } else {
        f(x, out);
    }
}

/// Elementwise unary op.
pub fn unary(x: &[f32], out: &mut [f32], f: impl Fn(f32) -> f32 + Sync + Send) {
    let n = x.len().min(out.len());
    let (x, out) = (&x[..n], &mut out[..n]);
    if n >= PAR_MIN {
        out.par_chunks_mut(1 << 14)
            .zip(x.par_chunks(1 << 14))
            .for_each(|(o, x)| o.iter_mut().zip(x).for_each(|(o, x)| *o = f(*x)));
    } else {
        out.iter_mut().zip(x).for_each(|(o, x)| *o = f(*x));
    }
}

/// Shape `[outer, d, inner]` view of a tensor around `axis`.
#[derive(Debug, Clone, Copy)]
pub struct AxisView {
    /// Product of the dims before the axis.
    pub outer: usize,
    /// The axis length.
    pub d: usize,
    /// Product of the dims after the axis.
    pub inner: usize,
}

impl AxisView {
    /// View of `shape` around `axis`.
    pub fn new(shape: &[usize], axis: usize) -> AxisView {
        AxisView {
            outer: shape[..axis].iter().product(),
            d: shape[axis],
            inner: shape[axis + 1..].iter().product(),
        }
    }
}

/// Softmax along the axis of `v`.
pub fn softmax(v: AxisView, x: &[f32], out: &mut [f32]) {
    if v.inner == 1 {
        rows_mut(out, v.d, |r, o| {
            o.copy_from_slice(&x[r * v.d..(r + 1) * v.d]);
            super::simd::softmax_row(o);
        });
        return;
    }
    rows_mut(out, v.d * v.inner, |r, o| {
        let xs = &x[r * v.d * v.inner..(r + 1) * v.d * v.inner];
        for i in 0..v.inner {
            let m = (0..v.d).fold(f32::NEG_INFINITY, |m, j| m.max(xs[j * v.inner + i]));
            let mut s = 0f32;
            for j in 0..v.d {
                let e = (xs[j * v.inner + i] - m).exp();
                o[j * v.inner + i] = e;
                s += e;
            }
            let inv = 1.0 / s;
            for j in 0..v.d {
                o[j * v.inner + i] *= inv;
            }
        }
    });
}

/// RMS norm along the axis of `v`: `x / sqrt(mean(x^2) + eps) * w`.
pub fn rms_norm(v: AxisView, x: &[f32], w: &[f32], eps: f32, out: &mut [f32]) {
    let d = v.d as f32;
    if v.inner == 1 {
        rows_mut(out, v.d, |r, o| {
            let xs = &x[r * v.d..(r + 1) * v.d];
            let ss: f32 = xs.iter().map(|y| y * y).sum();
            let k = 1.0 / (ss / d + eps).sqrt();
            for ((o, y), w) in o.iter_mut().zip(xs).zip(w) {
                *o = *y * k * *w;
            }
        });
        return;
    }
    rows_mut(out, v.d * v.inner, |r, o| {
        let xs = &x[r * v.d * v.inner..(r + 1) * v.d * v.inner];
        for i in 0..v.inner {
            let ss: f32 = (0..v.d).map(|j| xs[j * v.inner + i].powi(2)).sum();
            let k = 1.0 / (ss / d + eps).sqrt();
            for j in 0..v.d {
                o[j * v.inner + i] = xs[j * v.inner + i] * k * w[j];
            }
        }
    });
}

/// RoPE: `x * cos + rotate_half(x) * sin` over rows of the last dim `d`; `p` walks
/// `(cos, sin)` broadcast to `x` with the last dim kept separate.
pub fn rope(p: &Bcast<2>, d: usize, x: &[f32], cos: &[f32], sin: &[f32], out: &mut [f32]) {
    let h = d / 2;
    let [ic, is] = p.inner_s;
    rows_mut(out, d, |r, o| {
        let [oc, os] = p.offsets(r);
        let xs = &x[r * d..(r + 1) * d];
        for j in 0..d {
            let rot = if j < h { -xs[j + h] } else { xs[j - h] };
            o[j] = xs[j] * cos[oc + j * ic] + rot * sin[os + j * is];
        }
    });
}

/// Minimum over the trailing `inner` elements of each row.
pub fn reduce_min_rows(x: &[f32], inner: usize, out: &mut [f32]) {
    rows_mut(out, 1, |r, o| {
        o[0] = super::simd::row_min(&x[r * inner..(r + 1) * inner]);
    });
}

/// Minimum over arbitrary axes: `map` gives, for every input dim, the output stride
/// (0 on reduced dims).
pub fn reduce_min_general(x: &[f32], in_shape: &[usize], map: &[usize], out: &mut [f32]) {
    out.fill(f32::INFINITY);
    let mut idx = vec![0usize; in_shape.len()];
    for v in x {
        let o: usize = idx.iter().zip(map).map(|(i, s)| i * s).sum();
        if *v < out[o] || v.is_nan() {
            out[o] = *v;
        }
        for d in (0..in_shape.len()).rev() {
            idx[d] += 1;
            if idx[d] < in_shape[d] {
                break;
            }
            idx[d] = 0;
        }
    }
}

/// A strided gather into a contiguous output: output element with multi-index `i`
/// comes from `base + sum(i[d] * stride[d])` (in elements).
#[derive(Debug, Clone)]
pub struct Strided {
    /// Input offset of output element 0.
    pub base: usize,
    /// Outer dims: (size, input stride).
    pub outer: Vec<(usize, usize)>,
    /// Inner run length.
    pub inner: usize,
    /// Input stride along the inner run.
    pub inner_s: usize,
}

impl Strided {
    /// Plans a copy of an output of shape `out` whose dim `d` walks the input with
    /// stride `st[d]`, starting at `base`. Adjacent dims are merged when contiguous.
    pub fn new(base: usize, out: &[usize], st: &[usize]) -> Strided {
        let mut dims: Vec<(usize, usize)> = Vec::new();
        for (&size, &s) in out.iter().zip(st) {
            if size == 1 {
                continue;
            }
            if let Some(prev) = dims.last_mut() {
                if prev.1 == s * size {
                    prev.0 *= size;
                    prev.1 = s;
                    continue;
                }
            }
            dims.push((size, s));
        }
        let (inner, inner_s) = dims.pop().unwrap_or((1, 1));
        Strided {
            base,
            outer: dims,
            inner,
            inner_s,
        }
    }

    #[inline]
    fn offset(&self, mut r: usize) -> usize {
        let mut o = self.base;
        for (size, s) in self.outer.iter().rev() {
            o += (r % size) * s;
            r /= size;
        }
        o
    }

    fn run<T: Copy + Send + Sync>(&self, src: &[T], dst: &mut [T]) {
        rows_mut(dst, self.inner, |r, o| {
            let s0 = self.offset(r);
            if self.inner_s == 1 {
                o.copy_from_slice(&src[s0..s0 + o.len()]);
            } else {
                for (j, v) in o.iter_mut().enumerate() {
                    *v = src[s0 + j * self.inner_s];
                }
            }
        });
    }

    /// Runs the copy on byte buffers whose elements are `es` bytes.
    pub fn copy_bytes(&self, es: usize, src: &[u8], dst: &mut [u8]) {
        match es {
            1 => self.run::<u8>(src, dst),
            2 => self.run::<u16>(bytemuck::cast_slice(src), bytemuck::cast_slice_mut(dst)),
            4 => self.run::<u32>(bytemuck::cast_slice(src), bytemuck::cast_slice_mut(dst)),
            _ => self.run::<u64>(bytemuck::cast_slice(src), bytemuck::cast_slice_mut(dst)),
        }
    }
}
