//! Gives freed heap memory back to the operating system after streams close.
//!
//! glibc's allocator keeps the pages of freed connection buffers for reuse, so after a burst
//! of clients leaves, the server's RSS would stay at its peak. A background task checks every
//! few seconds whether streams have ended since its last look and, if so, asks the allocator
//! to return what it can (`malloc_trim`). Nothing runs on the per-event path.

use std::sync::Arc;
use std::time::Duration;

use crate::limits::StreamLimit;

/// How often the task looks.
pub const TRIM_PERIOD: Duration = Duration::from_secs(5);

/// Runs until dropped: after every period in which streams ended, trims the heap.
///
/// It counts ended streams rather than comparing the open gauge between two looks: under
/// churn the gauge can read the same at both looks while thousands of streams came and went
/// in between, and their memory would never be returned.
pub async fn trim_after_streams_close(limit: Arc<StreamLimit>, period: Duration) {
    trim_whenever_streams_end(&limit, period, release_free_memory).await;
}

async fn trim_whenever_streams_end(
    limit: &StreamLimit,
    period: Duration,
    mut trim: impl FnMut() -> bool,
) {
    let mut last_ended = limit.released_total();
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let ended = limit.released_total();
        if ended > last_ended {
            // Timed because the trim holds each arena's lock in turn while it walks it, and
            // every worker allocating a connection meanwhile waits.
            let started = std::time::Instant::now();
            let released = trim();
            tracing::debug!(
                ended = ended - last_ended,
                released,
                took_us = started.elapsed().as_micros(),
                "returned freed memory"
            );
        }
        last_ended = ended;
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

/// glibc's allocator settings for a server whose memory is per connection, never per event.
///
/// - `M_MMAP_THRESHOLD` 8 KiB: each connection's two 8 KiB buffers (actix-http's read and
///   write buffers) get pages of their own, of which only the first, the one written, is ever
///   resident, and they go back to the system as soon as they are freed. In the heap they sit
///   between small allocations and keep about 0.5 KiB more per stream resident.
/// - `M_MXFAST` 0: no fastbins, so every free merges with its free neighbours at once. Freed
///   small chunks otherwise wait in fastbins until a consolidation, and the one `malloc_trim`
///   runs merges them into a worker arena's top chunk, which `malloc_trim` never shrinks
///   outside the main arena (only `free` does): after a burst, a worker's top chunk held up to
///   2 MiB resident.
/// - `M_TOP_PAD` 0: when `free` shrinks an arena's top chunk it keeps no spare 128 KiB.
///
/// `mallopt` changes them at run time for the whole process, so the binary, the tests and the
/// load test's embedded server all run with them. glibc's per-thread cache (`tcache`) can only
/// be set through `GLIBC_TUNABLES` at start-up, which this process does not touch; the
/// decision record `docs/decisions/0005-allocator.md` has the measurements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AllocatorSettings {
    /// Allocations of at least this many bytes get pages of their own.
    pub mmap_threshold: i32,
    /// The largest chunk kept in a fastbin (0: none).
    pub max_fast: i32,
    /// Spare bytes kept at the top of an arena when it grows or shrinks.
    pub top_pad: i32,
}

/// The settings the server runs with.
pub const ALLOCATOR_SETTINGS: AllocatorSettings = AllocatorSettings {
    mmap_threshold: 8192,
    max_fast: 0,
    top_pad: 0,
};

/// Applies `settings` to glibc's allocator, for the whole process.
///
/// # Errors
/// Names the first setting glibc refused.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn configure_allocator(settings: AllocatorSettings) -> Result<(), String> {
    let options = [
        (
            libc::M_MMAP_THRESHOLD,
            settings.mmap_threshold,
            "M_MMAP_THRESHOLD",
        ),
        (libc::M_MXFAST, settings.max_fast, "M_MXFAST"),
        (libc::M_TOP_PAD, settings.top_pad, "M_TOP_PAD"),
    ];
    for (option, value, name) in options {
        // SAFETY: mallopt only changes glibc's own parameters under its arena locks; it
        // returns 0 for a value it refuses and changes nothing then.
        if unsafe { libc::mallopt(option, value) } == 0 {
            return Err(format!("glibc refused {name}={value}"));
        }
    }
    Ok(())
}

/// Other allocators have their own settings; there is nothing to apply.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn configure_allocator(_settings: AllocatorSettings) -> Result<(), String> {
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test(start_paused = true)]
    async fn trims_after_streams_ended_even_when_the_gauge_reads_the_same() {
        let limit = StreamLimit::new(10);
        let trims = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&trims);
        let period = Duration::from_secs(5);
        let watcher = {
            let limit = Arc::clone(&limit);
            tokio::spawn(async move {
                trim_whenever_streams_end(&limit, period, || {
                    counted.fetch_add(1, Ordering::SeqCst);
                    true
                })
                .await;
            })
        };
        let held = limit.try_acquire().unwrap();
        // Let the first look pass with nothing ended.
        tokio::time::sleep(period + Duration::from_millis(1)).await;
        assert_eq!(trims.load(Ordering::SeqCst), 0);
        // Churn: one stream leaves and another arrives; the gauge reads 1 at both looks.
        drop(held);
        let _replacement = limit.try_acquire().unwrap();
        tokio::time::sleep(period).await;
        assert_eq!(trims.load(Ordering::SeqCst), 1);
        // Nothing ended since: no further trim.
        tokio::time::sleep(period * 2).await;
        assert_eq!(trims.load(Ordering::SeqCst), 1);
        watcher.abort();
    }
}
