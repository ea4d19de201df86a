//! How the allocator hands memory back to the system.
//!
//! k8snet runs on mimalloc (`src/main.rs`). Loading a large cluster frees the document tree and
//! the decoded scenario (about 300 MB at Kubernetes' limits) just before the compiler builds the
//! network state. mimalloc keeps freed pages for a second by default before it returns them; in
//! that second the compiler's new pages come on top, and the peak is the sum of both. Returned at
//! once, they are not counted twice: a 5,000-node trace peaks at 415 MB instead of 489 MB, for the
//! same CPU time (docs/performance.md).

/// mimalloc's `mi_option_purge_delay` (`mimalloc.h` of mimalloc v3, which `libmimalloc-sys`
/// builds; the test below pins the number).
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Makes mimalloc return freed memory to the system as soon as it is free, unless the
/// environment already says how (`MIMALLOC_PURGE_DELAY`, which mimalloc reads itself). Call it
/// first thing in a process that uses mimalloc as its global allocator.
pub fn return_freed_memory_at_once() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return;
    }
    // SAFETY: mi_option_set only stores the value; any option may be set at any time.
    unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, 0) }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_option_set_is_the_purge_delay() {
        // Nothing in the test binary sets it, and mimalloc's purge delay is the only option that
        // defaults to 1000 (milliseconds): a renumbered option list fails here.
        // SAFETY: reading an option has no precondition.
        let default = unsafe { libmimalloc_sys::mi_option_get(super::PURGE_DELAY) };
        assert_eq!(default, 1000);
    }
}
