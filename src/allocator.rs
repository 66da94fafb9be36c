//! The binaries' allocator: mimalloc, tuned so the peak stays bounded.
//!
//! Why mimalloc: an agreement run allocates and frees every message's XML on several threads;
//! with glibc's malloc, its arena locks were a third of an exploration's profile (`client
//! explore --protocol om -n 7 -m 2`: 3.7 s with glibc, 2.1 s with mimalloc), and OM(4) over 13
//! nodes took 930 ms instead of 450 ms. Why tuned: by default mimalloc asks the kernel for
//! transparent huge pages (2 MiB) and purges freed memory only after a delay, which raised the
//! 13-node server's peak RSS after OM(4) from 55 MB (glibc) to 82 MB, past the 64 MB the rounds
//! issue allows, and the forced OM(5) server's from 238 MB to 301 MB (limit 256 MB). Built
//! without huge pages (`no_thp`, Cargo.toml) and, in the server ([`configure`]), purging at
//! once, the peaks are 54 MB and 233 MB at the same speed (BENCHMARKS.md, "Agreement in
//! explicit rounds"). The client keeps mimalloc's purge delay: purging at once cost the
//! explorer 3% of its speed, and it has no memory target.

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
