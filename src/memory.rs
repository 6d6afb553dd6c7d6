//! Gives freed heap memory back to the operating system after streams close.
//!
//! glibc's allocator keeps the pages of freed connection buffers for reuse, so after a burst
//! of clients leaves, the server's RSS would stay at its peak. A background task checks the
//! open-streams gauge every few seconds and, when it has fallen, asks the allocator to
//! return what it can (`malloc_trim`). Nothing runs on the per-event path.

use std::sync::Arc;
use std::time::Duration;

use crate::telemetry::Metrics;

/// How often the gauge is checked.
pub const TRIM_PERIOD: Duration = Duration::from_secs(5);

/// Runs until dropped: after every period in which open streams fell, trims the heap.
pub async fn trim_after_streams_close(metrics: Arc<Metrics>, period: Duration) {
    let mut last_open = metrics.streams_open();
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let open = metrics.streams_open();
        if open < last_open {
            let released = release_free_memory();
            tracing::debug!(open, was = last_open, released, "returned freed memory");
        }
        last_open = open;
    }
}

/// Returns free heap pages to the OS now; true when some were released. The server does
/// this by itself after streams close; a process embedding it may call it after a run.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[must_use]
pub fn release_free_memory() -> bool {
    // SAFETY: malloc_trim only walks glibc's own arenas; 0 keeps no extra padding.
    unsafe { libc::malloc_trim(0) == 1 }
}

/// Other allocators return memory by themselves, or offer no such call.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
#[must_use]
pub fn release_free_memory() -> bool {
    false
}

/// This process's resident memory, bytes (`None` where `/proc` is not available).
#[must_use]
pub fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page).ok()?)
}
