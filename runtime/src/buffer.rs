//! 64-byte aligned, zero-initialised byte buffers.
//!
//! Every buffer the runtime hands to an executor (graph inputs, outputs, KV cache) is an
//! [`AlignedBytes`], so an executor may reinterpret it as `&[f32]`, `&[u16]`, ... with
//! `bytemuck::cast_slice` without copying and without `unsafe`.

/// One 64-byte block (cache-line sized, 64-byte aligned).
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C, align(64))]
struct Block([u8; 64]);

/// A fixed-length byte buffer whose start is 64-byte aligned.
///
/// The length is set at construction and never changes (no reallocation ever happens after
/// [`AlignedBytes::zeroed`]).
#[derive(Clone)]
pub struct AlignedBytes {
    blocks: Vec<Block>,
    len: usize,
}

impl AlignedBytes {
    /// A zero-filled buffer of `len` bytes.
    pub fn zeroed(len: usize) -> Self {
        AlignedBytes {
            blocks: vec![Block([0; 64]); len.div_ceil(64)],
            len,
        }
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
        &bytemuck::cast_slice::<Block, u8>(&self.blocks)[..self.len]
    }

    /// The bytes, mutably.
    pub fn as_bytes_mut(&mut self) -> &mut [u8] {
        &mut bytemuck::cast_slice_mut::<Block, u8>(&mut self.blocks)[..self.len]
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
        for len in [0usize, 1, 63, 64, 65, 1000] {
            let mut b = AlignedBytes::zeroed(len);
            assert_eq!(b.len(), len);
            assert_eq!(b.as_bytes().len(), len);
            assert_eq!(b.as_bytes().as_ptr() as usize % 64, 0);
            assert!(b.as_bytes().iter().all(|&x| x == 0));
            if len >= 4 {
                let f: &mut [f32] = bytemuck::cast_slice_mut(&mut b.as_bytes_mut()[..4]);
                f[0] = 1.5;
                assert_eq!(&b.as_bytes()[..4], &1.5f32.to_le_bytes());
            }
        }
    }
}
