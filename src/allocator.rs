//! The binaries' allocator: mimalloc, tuned so the peak stays bounded.
//!
//! Why mimalloc: an agreement run allocates and frees every message's XML on several threads,
//! and glibc's arena locks dominated an exploration's profile. Why tuned: by default mimalloc
//! asks the kernel for transparent huge pages and purges freed memory only after a delay,
//! which raised the servers' peak RSS past the rounds issue's memory limits. Built without
//! huge pages (`no_thp`, Cargo.toml) and, in the server ([`configure`]), purging at once, the
//! peaks are back under the limits at the same speed. The client keeps mimalloc's purge
//! delay: purging at once slowed the explorer, and the client has no memory target. The
//! figures: BENCHMARKS.md, "Agreement in explicit rounds".

/// The allocator type for `#[global_allocator]`.
pub type Allocator = mimalloc::MiMalloc;

/// mimalloc 3's `mi_option_purge_delay` (`mimalloc.h`, `enum mi_option_e`, as bundled by
/// `libmimalloc-sys` 0.1.49): a position in a C enum, so re-check it when mimalloc is upgraded
/// (`MIMALLOC_VERBOSE=1 server` lists the options in order).
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Set the server's allocator options; call first thing in `main`, before any thread starts
/// (mimalloc's option setters are not thread safe). Environment variables (`MIMALLOC_...`)
/// set before start still win for anything not set here.
pub fn configure() {
    // SAFETY: plain integer options, set before any other thread exists.
    unsafe {
        libmimalloc_sys::mi_option_set(PURGE_DELAY, 0);
    }
}
