//! Cache prefetch hints for the flow path.
//!
//! Applying a flow touches a device and its traffic profile chosen by the
//! flow's address: random memory in a fleet-sized working set, so the cost
//! is cache misses, not instructions. The engine therefore applies flows in
//! small rounds: it first finds every flow's device and asks for the memory
//! it will touch, then does the work, so the misses of a round overlap
//! instead of following one another. A hint changes no state: results are
//! the same with or without it (and on targets without one).

/// Asks the CPU to bring the cache line holding `p` into cache.
#[inline(always)]
pub(crate) fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    #[allow(unused_unsafe)]
    // SAFETY: a prefetch is only a hint: it never faults, whatever the
    // address, and neither reads nor writes program-visible memory.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p.cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Prefetches every cache line of `*p` (at most a few lines: for small structs).
#[inline(always)]
pub(crate) fn prefetch_all<T>(p: *const T) {
    let start = p as usize & !63;
    let end = p as usize + std::mem::size_of::<T>();
    let mut a = start;
    while a < end {
        prefetch(a as *const u8);
        a += 64;
    }
}
