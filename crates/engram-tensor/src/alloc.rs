//! Keeping freed tensor buffers in the heap for reuse, on glibc.
//!
//! The CPU backends allocate a fresh buffer for every op's result. glibc serves blocks above
//! its mmap threshold (128 KiB until it adapts) with `mmap` and unmaps them when freed, so the
//! next tensor of that size page-faults and zeroes every page again; in a training step of
//! the benchmark classifier (batch 32 × 128 tokens, d_model 256) the kernel's page-fault
//! handling was about a tenth of the CPU time. Raising the mmap threshold to 32 MiB and the
//! trim threshold above it keeps those buffers in the heap, where the next op reuses them.
//! The process keeps its peak heap instead of returning it between ops.

/// Sets glibc's malloc thresholds once per process, unless the user chose them through
/// `MALLOC_MMAP_THRESHOLD_`, `MALLOC_TRIM_THRESHOLD_` or `GLIBC_TUNABLES`.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[cfg_attr(not(any(feature = "flex", feature = "ndarray")), allow(dead_code))]
pub(crate) fn keep_freed_buffers() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let chosen = ["MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES"]
            .iter()
            .any(|name| std::env::var_os(name).is_some());
        if chosen {
            return;
        }
        // SAFETY: mallopt only changes allocator parameters; it is thread-safe in glibc and
        // blocks already handed out are unaffected.
        unsafe {
            // 32 MiB: the largest threshold every glibc accepts (older ones cap it at half
            // their 64 MiB heap size); larger blocks are rare and still mmapped.
            libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
            libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20);
        }
    });
}

/// Other allocators manage their own memory.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
#[cfg_attr(not(any(feature = "flex", feature = "ndarray")), allow(dead_code))]
pub(crate) fn keep_freed_buffers() {}
