//! Raw clocks shared by the lab and its workers: CLOCK_MONOTONIC nanoseconds (comparable across processes on
//! Linux, unlike `Instant`) and the current CPU core.
//!
//! A leaf: imports nothing of parlab's.

/// CLOCK_MONOTONIC in nanoseconds.
pub(crate) fn now_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// The CPU core this thread is running on, or -1.
pub(crate) fn cpu() -> i32 {
    // SAFETY: sched_getcpu takes no arguments and only reads per-thread state.
    unsafe { libc::sched_getcpu() }
}

/// The kernel thread id of the calling thread.
pub(crate) fn tid() -> u32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::gettid() as u32 }
}

/// A point in time and the core it was taken on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Mark {
    pub ns: u64,
    pub cpu: i32,
}

impl Mark {
    pub(crate) fn now() -> Mark {
        Mark { ns: now_ns(), cpu: cpu() }
    }
}
