//! KV cache manager ("smart mask").
//!
//! # Layout
//!
//! For each layer the cache owns one preallocated key buffer and one value buffer, sized for the
//! largest row stride it will ever use (`C - min(S)` over the graphs it serves). With the
//! current graph's ar_len `S` and stride `W = C - S`:
//!
//! * keys and values are both stored `[1, Hkv, W, D]`: head `h` holds one row of `D` elements
//!   per cached position, rows `[0, n_past)` hold data and the rest is masked. (The graphs read
//!   the keys transposed, `q x k^T`; see `mllm_frontends::qwen3`.)
//!
//! The first `Hkv * W * D` elements of each buffer are exactly the graph's `past_key_{l}` /
//! `past_value_{l}` input, so the graph reads the cache in place ([`KvCache::key`],
//! [`KvCache::value`]). Committing the new entries of a step is one contiguous copy of
//! `n * D` elements per head, for keys and values alike ([`KvCache::commit`]), or the same copy
//! done by the executor into the buffers of [`KvCache::split_mut`] (then [`KvCache::advance`]). Switching
//! between graphs of different `S` re-strides the buffers in place ([`KvCache::set_layout`]):
//! the `n_past` rows of every head move as one block; buffers never move and never
//! reallocate.
//!
//! # Mask
//!
//! The mask `[1, 1, S, C]` addresses the cache with columns `[0, C-S)` and the current chunk with
//! columns `[C-S, C)`. Row `i` (chunk token `i`) attends to columns `[0, n_past)` and to
//! `C-S+j` for `j <= i` (causal within the chunk); everything else is masked. After each commit
//! of `n` tokens, columns `[n_past, n_past+n)` are switched on in every row (incremental update,
//! `S * n` element writes).
//!
//! Values: an integer mask (u16, u8) uses the largest code (65535 / 255) for "attend" and 0 for
//! "masked" — graphs test `mask == attend` and never add -inf. A float mask (f32, f16) uses the
//! same semantics converted to real values: `1.0` attend, `0.0` masked (the real value of the
//! u16 code 65535 under the encoding scale 1/65535, offset 0), so a float graph's
//! `where(mask == 1.0, qk, min(qk) - 20)` behaves like the quantized graph's.
//!
//! # Zero allocation
//!
//! Everything is allocated in [`KvCache::new`]; commit, advance, re-stride and mask updates only
//! copy bytes.

use crate::buffer::AlignedBytes;
use crate::error::{Result, RuntimeError};
use crate::executor::{CacheWrite, DType, ModelDims};

/// Mask code meaning "attend" for a u16 mask.
pub const MASK_ATTEND_U16: u16 = u16::MAX;
/// Mask code meaning "attend" for a u8 mask.
pub const MASK_ATTEND_U8: u8 = u8::MAX;
/// Mask value meaning "attend" for a float mask.
pub const MASK_ATTEND_F32: f32 = 1.0;

/// Little-endian bytes of (attend, masked) for a mask dtype.
fn mask_values(dtype: DType) -> Result<([u8; 4], [u8; 4])> {
    let mut a = [0u8; 4];
    let mut m = [0u8; 4];
    match dtype {
        DType::U16 => a[..2].copy_from_slice(&MASK_ATTEND_U16.to_le_bytes()),
        DType::U8 => a[0] = MASK_ATTEND_U8,
        DType::F32 => {
            a.copy_from_slice(&MASK_ATTEND_F32.to_le_bytes());
            m.copy_from_slice(&0f32.to_le_bytes());
        }
        DType::F16 => {
            a[..2].copy_from_slice(&half::f16::from_f32(MASK_ATTEND_F32).to_le_bytes());
            m[..2].copy_from_slice(&half::f16::ZERO.to_le_bytes());
        }
        other => {
            return Err(RuntimeError::Config(format!(
                "mask dtype {other} is not supported (u16, u8, f32, f16)"
            )))
        }
    }
    Ok((a, m))
}

/// The KV cache of every layer plus the attention mask (see the module docs).
pub struct KvCache {
    layers: usize,
    heads: usize,
    head_dim: usize,
    context: usize,
    elem: usize,
    max_stride: usize,
    max_ar_len: usize,
    ar_len: usize,
    stride: usize,
    n_past: usize,
    /// Bytes reserved per layer in `k` / `v` (the largest layout, rounded up to 64).
    layer_bytes: usize,
    /// Keys of every layer, layer `l` at `l * layer_bytes`.
    k: AlignedBytes,
    /// Values of every layer, likewise.
    v: AlignedBytes,
    mask: AlignedBytes,
    mask_dtype: DType,
    attend: [u8; 4],
    masked: [u8; 4],
}

impl std::fmt::Debug for KvCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KvCache")
            .field("layers", &self.layers)
            .field("kv_heads", &self.heads)
            .field("head_dim", &self.head_dim)
            .field("context", &self.context)
            .field("elem_size", &self.elem)
            .field("ar_len", &self.ar_len)
            .field("n_past", &self.n_past)
            .finish()
    }
}

impl KvCache {
    /// Allocates a cache for `dims` whose elements are `kv_elem_size` bytes (1 for u8 KV, 4 for
    /// f32), with a mask of `mask_dtype`, able to serve graphs of every ar_len in `ar_lens`. The
    /// initial layout is `ar_lens[0]`, with an empty cache.
    pub fn new(
        dims: &ModelDims,
        kv_elem_size: usize,
        mask_dtype: DType,
        ar_lens: &[usize],
    ) -> Result<KvCache> {
        let c = dims.context;
        let (Some(&min_s), Some(&max_s)) = (ar_lens.iter().min(), ar_lens.iter().max()) else {
            return Err(RuntimeError::Config("KV cache: no ar_len given".into()));
        };
        if min_s == 0 || max_s > c {
            return Err(RuntimeError::Config(format!(
                "KV cache: ar_len values {ar_lens:?} must be in 1..={c}"
            )));
        }
        if kv_elem_size == 0 || dims.layers == 0 || dims.kv_heads == 0 || dims.head_dim == 0 {
            return Err(RuntimeError::Config(format!(
                "KV cache: degenerate dims {dims:?} / element size {kv_elem_size}"
            )));
        }
        let (attend, masked) = mask_values(mask_dtype)?;
        let max_stride = c - min_s;
        let per_layer = dims.kv_heads * dims.head_dim * max_stride * kv_elem_size;
        let layer_bytes = per_layer.div_ceil(64) * 64;
        let mut cache = KvCache {
            layers: dims.layers,
            heads: dims.kv_heads,
            head_dim: dims.head_dim,
            context: c,
            elem: kv_elem_size,
            max_stride,
            max_ar_len: max_s,
            ar_len: ar_lens[0],
            stride: c - ar_lens[0],
            n_past: 0,
            layer_bytes,
            k: AlignedBytes::zeroed_huge(dims.layers * layer_bytes),
            v: AlignedBytes::zeroed_huge(dims.layers * layer_bytes),
            mask: AlignedBytes::zeroed(max_s * c * mask_dtype.size()),
            mask_dtype,
            attend,
            masked,
        };
        cache.rebuild_mask();
        Ok(cache)
    }

    /// Number of cached positions.
    pub fn n_past(&self) -> usize {
        self.n_past
    }

    /// ar_len of the current layout.
    pub fn ar_len(&self) -> usize {
        self.ar_len
    }

    /// Row stride of the current layout, `C - S`: the number of positions the cache can hold
    /// while serving a graph of the current ar_len.
    pub fn stride(&self) -> usize {
        self.stride
    }

    /// Context length C.
    pub fn context(&self) -> usize {
        self.context
    }

    /// Number of layers.
    pub fn layers(&self) -> usize {
        self.layers
    }

    /// Size of one cache element in bytes.
    pub fn elem_size(&self) -> usize {
        self.elem
    }

    /// Mask element type.
    pub fn mask_dtype(&self) -> DType {
        self.mask_dtype
    }

    fn kv_bytes(&self) -> usize {
        self.heads * self.head_dim * self.stride * self.elem
    }

    /// Layer `l`'s keys in the current layout, `[1, Hkv, C-S, D]` — the `past_key_{l}` input.
    /// Panics if `l >= layers` (callers index with validated bindings).
    pub fn key(&self, l: usize) -> &[u8] {
        let at = l * self.layer_bytes;
        &self.k.as_bytes()[at..at + self.kv_bytes()]
    }

    /// Layer `l`'s values in the current layout, `[1, Hkv, C-S, D]` — the `past_value_{l}` input.
    /// Panics if `l >= layers`.
    pub fn value(&self, l: usize) -> &[u8] {
        let at = l * self.layer_bytes;
        &self.v.as_bytes()[at..at + self.kv_bytes()]
    }

    /// The mask (as [`KvCache::mask`]) and every layer's keys and values in the current layout
    /// (as [`KvCache::key`] / [`KvCache::value`], layer 0 first), the keys and values mutable:
    /// the inputs of an executor that writes a step's new entries in place
    /// ([`crate::GraphInput::Cache`]). Call [`KvCache::advance`] once they are written.
    pub fn split_mut(
        &mut self,
    ) -> (
        &[u8],
        impl Iterator<Item = &mut [u8]>,
        impl Iterator<Item = &mut [u8]>,
    ) {
        let (lb, kvb) = (self.layer_bytes, self.kv_bytes());
        let mask = &self.mask.as_bytes()[..self.ar_len * self.context * self.mask_dtype.size()];
        // A cache without room (stride 0) has empty layers.
        let empty = if lb == 0 { self.layers } else { 0 };
        fn split(
            b: &mut AlignedBytes,
            lb: usize,
            kvb: usize,
            empty: usize,
        ) -> impl Iterator<Item = &mut [u8]> {
            b.as_bytes_mut()
                .chunks_exact_mut(lb.max(1))
                .map(move |c| &mut c[..kvb])
                .chain(std::iter::repeat_with(|| &mut [][..]).take(empty))
        }
        (
            mask,
            split(&mut self.k, lb, kvb, empty),
            split(&mut self.v, lb, kvb, empty),
        )
    }

    /// The mask for the current layout, `[1, 1, S, C]`.
    pub fn mask(&self) -> &[u8] {
        &self.mask.as_bytes()[..self.ar_len * self.context * self.mask_dtype.size()]
    }

    /// True when the mask element at (`row`, `col`) of the current layout says "attend".
    pub fn mask_attends(&self, row: usize, col: usize) -> bool {
        let e = self.mask_dtype.size();
        let at = (row * self.context + col) * e;
        self.mask().get(at..at + e) == Some(&self.attend[..e])
    }

    /// Switches to the layout of a graph with ar_len `ar_len` (stride `C - ar_len` rows per
    /// head), moving the `n_past` cached rows of every head in place (from the last head when
    /// the stride grows, from the first when it shrinks) and rebuilding the mask. No-op if the
    /// layout is unchanged.
    pub fn set_layout(&mut self, ar_len: usize) -> Result<()> {
        if ar_len == self.ar_len {
            return Ok(());
        }
        if ar_len == 0 || ar_len > self.max_ar_len || self.context - ar_len > self.max_stride {
            return Err(RuntimeError::Cache(format!(
                "ar_len {ar_len} is outside what this cache was allocated for (ar_len 1..={}, \
                 stride <= {})",
                self.max_ar_len, self.max_stride
            )));
        }
        let new_stride = self.context - ar_len;
        if self.n_past > new_stride {
            return Err(RuntimeError::Cache(format!(
                "cannot switch to ar_len {ar_len}: {} cached positions exceed its capacity {}",
                self.n_past, new_stride
            )));
        }
        let row = self.head_dim * self.elem;
        let (old, new, valid) = (self.stride * row, new_stride * row, self.n_past * row);
        let lb = self.layer_bytes;
        for buf in [&mut self.k, &mut self.v] {
            for layer in buf.as_bytes_mut().chunks_exact_mut(lb) {
                restride_rows(layer, self.heads, old, new, valid);
            }
        }
        self.stride = new_stride;
        self.ar_len = ar_len;
        self.rebuild_mask();
        Ok(())
    }

    /// Alias of [`KvCache::set_layout`] taking the new ar_len.
    pub fn restride(&mut self, new_ar_len: usize) -> Result<()> {
        self.set_layout(new_ar_len)
    }

    /// Copies the first `n` new entries of layer `l` into the cache at row `n_past`.
    ///
    /// `present_k` and `present_v` are `[1, Hkv, src_s, D]` (a graph's `present_key_{l}` /
    /// `present_value_{l}` output, `src_s` its ar_len): one contiguous copy of `n * D` elements
    /// per head for each.
    /// Does not advance `n_past`: call [`KvCache::advance`] once all layers are copied.
    pub fn commit_layer(
        &mut self,
        l: usize,
        present_k: &[u8],
        present_v: &[u8],
        src_s: usize,
        n: usize,
    ) -> Result<()> {
        self.check_room(n)?;
        let g = self.geometry(src_s, n)?;
        check_present(&g, l, present_k, present_v)?;
        let lb = self.layer_bytes;
        let (Some(kb), Some(vb)) = (
            self.k.as_bytes_mut().chunks_exact_mut(lb).nth(l),
            self.v.as_bytes_mut().chunks_exact_mut(lb).nth(l),
        ) else {
            return Err(RuntimeError::Cache(format!(
                "layer {l} out of range ({} layers)",
                self.layers
            )));
        };
        g.copy(kb, present_k);
        g.copy(vb, present_v);
        Ok(())
    }

    /// The geometry of a commit of `n` entries from a graph of ar_len `src_s` at the current
    /// `n_past` and layout (`pairs` empty), e.g. for [`crate::StepExtras::cache`].
    pub fn geometry(&self, src_s: usize, n: usize) -> Result<CacheWrite<'static>> {
        if n > src_s {
            return Err(RuntimeError::Cache(format!(
                "commit of {n} entries from a graph with ar_len {src_s}"
            )));
        }
        Ok(CacheWrite {
            pairs: &[],
            heads: self.heads,
            head_dim: self.head_dim,
            elem: self.elem,
            stride: self.stride,
            row: self.n_past,
            src_s,
            n,
            write_outputs: false,
        })
    }

    /// Commits `n` new entries of every layer (`present(l)` returns layer `l`'s
    /// `(present_key, present_value)` outputs of a graph with ar_len `src_s`) and advances.
    ///
    /// Every buffer is checked before anything is written. A decode step copies one row of
    /// `D` elements per layer, head and K/V (`2 * layers * Hkv` contiguous copies).
    pub fn commit<'a>(
        &mut self,
        src_s: usize,
        n: usize,
        mut present: impl FnMut(usize) -> (&'a [u8], &'a [u8]),
    ) -> Result<()> {
        self.check_room(n)?;
        let g = self.geometry(src_s, n)?;
        for l in 0..self.layers {
            let (k, v) = present(l);
            check_present(&g, l, k, v)?;
        }
        let lb = self.layer_bytes;
        let layers = self
            .k
            .as_bytes_mut()
            .chunks_exact_mut(lb)
            .zip(self.v.as_bytes_mut().chunks_exact_mut(lb));
        for (l, (kb, vb)) in layers.enumerate() {
            let (k, v) = present(l);
            g.copy(kb, k);
            g.copy(vb, v);
        }
        self.advance(n)
    }

    /// True when `n` more entries fit in the current layout.
    pub fn has_room(&self, n: usize) -> bool {
        self.n_past + n <= self.stride
    }

    fn check_room(&self, n: usize) -> Result<()> {
        if !self.has_room(n) {
            return Err(RuntimeError::Cache(format!(
                "cache full: {} cached + {n} new positions exceed the capacity {} of the \
                 ar_len-{} layout (context {})",
                self.n_past, self.stride, self.ar_len, self.context
            )));
        }
        Ok(())
    }

    /// Marks `n` newly committed positions as cached: `n_past += n` and columns
    /// `[n_past, n_past + n)` are switched on in every mask row.
    pub fn advance(&mut self, n: usize) -> Result<()> {
        self.check_room(n)?;
        let e = self.mask_dtype.size();
        let c = self.context;
        let attend = self.attend;
        let mask = self.mask.as_bytes_mut();
        for row in 0..self.ar_len {
            let start = (row * c + self.n_past) * e;
            for cell in mask[start..start + n * e].chunks_exact_mut(e) {
                cell.copy_from_slice(&attend[..e]);
            }
        }
        self.n_past += n;
        Ok(())
    }

    /// Forgets every position from `n` on (e.g. a chat turn whose history diverges from the
    /// cache). Rebuilds the mask.
    pub fn truncate(&mut self, n: usize) -> Result<()> {
        if n > self.n_past {
            return Err(RuntimeError::Cache(format!(
                "cannot truncate to {n} positions: only {} cached",
                self.n_past
            )));
        }
        self.n_past = n;
        self.rebuild_mask();
        Ok(())
    }

    /// Empties the cache (keeps the layout and the buffers).
    pub fn reset(&mut self) {
        self.n_past = 0;
        self.rebuild_mask();
    }

    fn rebuild_mask(&mut self) {
        let e = self.mask_dtype.size();
        let (c, s, np) = (self.context, self.ar_len, self.n_past);
        let (attend, masked) = (self.attend, self.masked);
        let rows = &mut self.mask.as_bytes_mut()[..s * c * e];
        for (i, row) in rows.chunks_exact_mut(c * e).enumerate() {
            for (j, cell) in row.chunks_exact_mut(e).enumerate() {
                let on = j < np || (j >= c - s && j <= c - s + i);
                cell.copy_from_slice(if on { &attend[..e] } else { &masked[..e] });
            }
        }
    }
}

/// Checks layer `l`'s present K/V outputs against a commit's geometry.
fn check_present(g: &CacheWrite<'_>, l: usize, present_k: &[u8], present_v: &[u8]) -> Result<()> {
    let want = g.heads * g.src_s * g.head_dim * g.elem;
    if present_k.len() != want || present_v.len() != want {
        return Err(RuntimeError::BufferSize {
            what: format!("present_key_{l}/present_value_{l}"),
            expected: want,
            got: present_k.len().min(present_v.len()),
        });
    }
    Ok(())
}

/// Moves `rows` rows of `valid` meaningful bytes from stride `old` to stride `new` (bytes) in
/// place. Growing moves from the last row backwards, shrinking from the first row forwards, so
/// no row is overwritten before it has moved.
fn restride_rows(buf: &mut [u8], rows: usize, old: usize, new: usize, valid: usize) {
    if old == new || valid == 0 {
        return;
    }
    if new > old {
        for r in (1..rows).rev() {
            buf.copy_within(r * old..r * old + valid, r * new);
        }
    } else {
        for r in 1..rows {
            buf.copy_within(r * old..r * old + valid, r * new);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restride_rows_both_ways() {
        // 3 rows, stride 4 -> 6 -> 2, 2 valid bytes.
        let mut b = vec![0u8; 18];
        for r in 0..3 {
            b[r * 4] = 10 * r as u8 + 1;
            b[r * 4 + 1] = 10 * r as u8 + 2;
        }
        restride_rows(&mut b, 3, 4, 6, 2);
        for r in 0..3 {
            assert_eq!(&b[r * 6..r * 6 + 2], &[10 * r as u8 + 1, 10 * r as u8 + 2]);
        }
        restride_rows(&mut b, 3, 6, 2, 2);
        assert_eq!(&b[..6], &[1, 2, 11, 12, 21, 22]);
    }

    #[test]
    fn mask_values_by_dtype() {
        let dims = ModelDims {
            layers: 1,
            kv_heads: 1,
            head_dim: 1,
            context: 4,
            vocab: 1,
        };
        for dt in [DType::U16, DType::U8, DType::F32, DType::F16] {
            let kv = KvCache::new(&dims, 1, dt, &[2]).unwrap();
            // Row 0 attends column 2 only, row 1 columns 2 and 3.
            let expect = [[false, false, true, false], [false, false, true, true]];
            for (i, row) in expect.iter().enumerate() {
                for (j, &on) in row.iter().enumerate() {
                    assert_eq!(kv.mask_attends(i, j), on, "{dt} {i} {j}");
                    let real = DType::read_f32(dt, kv.mask(), i * 4 + j).unwrap();
                    let attend = match dt {
                        DType::U16 => 65535.0,
                        DType::U8 => 255.0,
                        _ => 1.0,
                    };
                    assert_eq!(real, if on { attend } else { 0.0 });
                }
            }
        }
        assert!(KvCache::new(&dims, 1, DType::I64, &[2]).is_err());
    }
}
