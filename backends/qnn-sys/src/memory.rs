//! Memory hygiene around the library: handing resident pages of data QNN has already
//! copied (weights read from a memory-mapped checkpoint) back to the kernel, and the C
//! heap's free memory after a context is freed.

/// Asks the kernel to reclaim the resident pages that lie wholly inside `bytes`
/// (`madvise(MADV_PAGEOUT)`, Linux 5.4+ and Android). Purely advisory and
/// non-destructive: the contents stay the same, a later access faults clean file pages
/// back in from the file and anonymous pages from swap (without swap they simply stay).
/// Used after a weight's bytes were copied into a QNN tensor, so a mapped checkpoint
/// does not stay resident (and counted in the peak RSS) while the graphs finalize.
/// Returns whether the kernel accepted the advice (always `false` on other systems).
pub fn release_pages(bytes: &[u8]) -> bool {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        const PAGE: usize = 4096;
        const MADV_PAGEOUT: std::ffi::c_int = 21;
        extern "C" {
            fn madvise(
                addr: *mut std::ffi::c_void,
                len: usize,
                advice: std::ffi::c_int,
            ) -> std::ffi::c_int;
        }
        let addr = bytes.as_ptr() as usize;
        let start = addr.div_ceil(PAGE) * PAGE;
        let end = (addr + bytes.len()) / PAGE * PAGE;
        if end <= start {
            return false;
        }
        // SAFETY: `[start, end)` lies inside the live slice `bytes`, page aligned.
        // MADV_PAGEOUT never changes the contents of the memory (unlike MADV_DONTNEED):
        // the kernel only writes back / drops its resident copies, so no Rust reference
        // can observe a difference. Errors (old kernel, locked pages) are reported as false.
        let rc = unsafe { madvise(start as *mut std::ffi::c_void, end - start, MADV_PAGEOUT) };
        rc == 0
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let _ = bytes;
        false
    }
}

/// Returns the C heap's free memory to the kernel (`malloc_trim(0)` with glibc: trims the
/// top of every arena and drops the whole free pages inside them). QNN allocates a
/// context's graphs through the C heap; after a context is freed, its memory otherwise
/// stays resident in the allocator and raises the next context's peak. Returns whether
/// anything was released (always `false` without glibc).
pub fn trim_heap() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        extern "C" {
            fn malloc_trim(pad: usize) -> std::ffi::c_int;
        }
        // SAFETY: malloc_trim only walks glibc's own arenas under their locks; it takes no
        // pointers from us and is documented as safe to call at any time.
        let rc = unsafe { malloc_trim(0) };
        rc == 1
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pageout_keeps_the_contents() {
        let v: Vec<u8> = (0..64 * 1024).map(|i| (i % 251) as u8).collect();
        let sum_before: u64 = v.iter().map(|b| u64::from(*b)).sum();
        let _ = release_pages(&v);
        let sum_after: u64 = v.iter().map(|b| u64::from(*b)).sum();
        assert_eq!(sum_before, sum_after);
        assert!(!release_pages(&v[..100]), "no whole page inside 100 bytes");
    }

    #[test]
    fn trim_heap_keeps_live_allocations() {
        let keep: Vec<u64> = (0..10_000).collect();
        drop(vec![7u8; 8 << 20]);
        let _ = trim_heap();
        assert_eq!(keep.iter().sum::<u64>(), 10_000 * 9_999 / 2);
    }
}
