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
            let released = trim_heap();
            tracing::debug!(open, was = last_open, released, "returned freed memory");
        }
        last_open = open;
    }
}

/// Returns free heap pages to the OS; true when some were released.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim_heap() -> bool {
    // SAFETY: malloc_trim only walks glibc's own arenas; 0 keeps no extra padding.
    unsafe { libc::malloc_trim(0) == 1 }
}

/// Other allocators return memory by themselves, or offer no such call.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim_heap() -> bool {
    false
}
