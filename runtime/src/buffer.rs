//! 64-byte aligned, zero-initialised byte buffers.
//!
//! Every buffer the runtime hands to an executor (graph inputs, outputs, KV cache) is an
//! [`AlignedBytes`], so an executor may reinterpret it as `&[f32]`, `&[u16]`, ... with
//! `bytemuck::cast_slice` without copying and without `unsafe`.
//!
//! Large buffers that are accessed sparsely (the KV cache: a decode step writes one byte into
//! each of tens of thousands of rows) can ask for transparent huge pages
//! ([`AlignedBytes::zeroed_huge`]), so that those writes do not miss the TLB as well.

/// One 64-byte block (cache-line sized, 64-byte aligned).
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C, align(64))]
struct Block([u8; 64]);

/// Size and alignment of a (transparent) huge page.
const HUGE_PAGE: usize = 2 << 20;

/// Where the bytes live.
enum Storage {
    /// Heap blocks.
    Blocks(Vec<Block>),
    /// An anonymous mapping advised to use huge pages; the bytes start at `off` (the first
    /// huge-page boundary inside it).
    Map { map: memmap2::MmapMut, off: usize },
}

/// A fixed-length byte buffer whose start is 64-byte aligned.
///
/// The length is set at construction and never changes (no reallocation ever happens after
/// [`AlignedBytes::zeroed`] / [`AlignedBytes::zeroed_huge`]).
pub struct AlignedBytes {
    storage: Storage,
    len: usize,
}

impl Clone for AlignedBytes {
    fn clone(&self) -> Self {
        let mut c = match self.storage {
            Storage::Blocks(_) => AlignedBytes::zeroed(self.len),
            Storage::Map { .. } => AlignedBytes::zeroed_huge(self.len),
        };
        c.as_bytes_mut().copy_from_slice(self.as_bytes());
        c
    }
}

impl AlignedBytes {
    /// A zero-filled buffer of `len` bytes.
    pub fn zeroed(len: usize) -> Self {
        AlignedBytes {
            storage: Storage::Blocks(vec![Block([0; 64]); len.div_ceil(64)]),
            len,
        }
    }

    /// A zero-filled buffer of `len` bytes, starting on a 2 MiB boundary of an anonymous
    /// mapping advised (on Linux) to use transparent huge pages. Falls back to
    /// [`AlignedBytes::zeroed`] for buffers under 2 MiB or when the mapping fails.
    pub fn zeroed_huge(len: usize) -> Self {
        if len < HUGE_PAGE {
            return AlignedBytes::zeroed(len);
        }
        let Ok(map) = memmap2::MmapMut::map_anon(len + HUGE_PAGE) else {
            return AlignedBytes::zeroed(len);
        };
        // Best effort: without huge pages the buffer only costs more TLB misses.
        #[cfg(target_os = "linux")]
        let _ = map.advise(memmap2::Advice::HugePage);
        let addr = map.as_ptr() as usize;
        let off = (HUGE_PAGE - addr % HUGE_PAGE) % HUGE_PAGE;
        let mut b = AlignedBytes {
            storage: Storage::Map { map, off },
            len,
        };
        // Fault every page in now (as huge pages where granted), not during the first steps.
        b.as_bytes_mut().fill(0);
        b
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the buffer holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match &self.storage {
            Storage::Blocks(b) => &bytemuck::cast_slice::<Block, u8>(b)[..self.len],
            Storage::Map { map, off } => &map[*off..off + self.len],
        }
    }

    /// The bytes, mutably.
    pub fn as_bytes_mut(&mut self) -> &mut [u8] {
        match &mut self.storage {
            Storage::Blocks(b) => &mut bytemuck::cast_slice_mut::<Block, u8>(b)[..self.len],
            Storage::Map { map, off } => &mut map[*off..*off + self.len],
        }
    }
}

impl std::fmt::Debug for AlignedBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AlignedBytes({} bytes)", self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_and_sized() {
        for (len, huge) in [0usize, 1, 63, 64, 65, 1000, 3 << 20]
            .into_iter()
            .flat_map(|l| [(l, false), (l, true)])
        {
            let mut b = if huge {
                AlignedBytes::zeroed_huge(len)
            } else {
                AlignedBytes::zeroed(len)
            };
            assert_eq!(b.len(), len);
            assert_eq!(b.as_bytes().len(), len);
            assert_eq!(b.as_bytes().as_ptr() as usize % 64, 0);
            assert!(b.as_bytes().iter().all(|&x| x == 0));
            if len >= 4 {
                let f: &mut [f32] = bytemuck::cast_slice_mut(&mut b.as_bytes_mut()[..4]);
                f[0] = 1.5;
                assert_eq!(&b.as_bytes()[..4], &1.5f32.to_le_bytes());
                let c = b.clone();
                assert_eq!(c.as_bytes(), b.as_bytes());
            }
            if huge && len >= 2 << 20 {
                assert_eq!(b.as_bytes().as_ptr() as usize % (2 << 20), 0);
            }
        }
    }
}
