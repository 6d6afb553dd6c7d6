//! Gives freed heap memory back to the operating system after streams close.
//!
//! glibc's allocator keeps the pages of freed connection buffers for reuse, so after a burst
//! of clients leaves, the server's RSS would stay at its peak. A background task checks every
//! few seconds whether streams have ended since its last look and, if so, asks the allocator
//! to return what it can (`malloc_trim`). Nothing runs on the per-event path.

use std::sync::Arc;
use std::time::Duration;

use crate::telemetry::Metrics;

/// How often the task looks.
pub const TRIM_PERIOD: Duration = Duration::from_secs(5);

/// Runs until dropped: after every period in which streams ended, trims the heap.
///
/// It counts ended streams rather than comparing the open gauge between two looks: under
/// churn the gauge can read the same at both looks while thousands of streams came and went
/// in between, and their memory would never be returned.
pub async fn trim_after_streams_close(metrics: Arc<Metrics>, period: Duration) {
    trim_whenever_streams_end(&metrics, period, release_free_memory).await;
}

async fn trim_whenever_streams_end(
    metrics: &Metrics,
    period: Duration,
    mut trim: impl FnMut() -> bool,
) {
    let mut last_ended = metrics.streams_ended_total();
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let ended = metrics.streams_ended_total();
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

/// The glibc tunables the server binary runs with unless `GLIBC_TUNABLES` is already set.
///
/// - `tcache_count=0`: glibc's per-thread cache keeps up to 7 freed chunks of each small size
///   on each thread. After a burst of connections the last ones freed lie all over the heap
///   the burst grew, and `malloc_trim` cannot return the pages under them: about 0.7 MiB
///   stayed after the first burst of 2,000 streams. The cache only speeds up allocation,
///   which this server does per connection, never per event.
/// - `mmap_threshold=8192`: each connection's two 8 KiB buffers (actix-http's read and write
///   buffers) get pages of their own, where only the first page, the one written, is ever
///   resident, and they go back to the system as soon as they are freed. In the heap they sat
///   between small allocations and kept about 0.5 KiB more per stream resident (10.7 against
///   10.2 KiB per stream at 10,000 streams).
///
/// - `mxfast=0`: no fastbins, so every free merges with its free neighbours at once. Freed
///   chunks of up to 128 bytes otherwise wait in fastbins until a consolidation, and the one
///   `malloc_trim` runs merged them into a worker arena's top chunk, which `malloc_trim` never
///   shrinks outside the main arena (only `free` does). Seen with gdb: a worker's top chunk
///   held 0.6 to 2.1 MiB resident after a burst, and 11 of 31 bursts of 2,000 streams left
///   +11 to +36% RSS; with fastbins off the top chunk was 128 to 132 KiB after each of 5.
/// - `top_pad=0`: when `free` shrinks an arena's top chunk it leaves no spare 128 KiB
///   resident in each worker's arena (0.1 to 117 KiB left after each of 4 bursts).
///
/// All four can only be set at start-up. The server allocates per connection, never per
/// event, so none of them shows in CPU per event (README, "Memory after clients leave").
pub const GLIBC_TUNABLES: &str = "glibc.malloc.tcache_count=0:glibc.malloc.mmap_threshold=8192:\
     glibc.malloc.mxfast=0:glibc.malloc.top_pad=0";

/// Runs this program again, in place (same pid, same arguments), with [`GLIBC_TUNABLES`]
/// set. Returns without doing anything when `GLIBC_TUNABLES` is already set (the operator's
/// choice, or this is the second start), and returns the error when the exec fails, so the
/// caller carries on with the defaults. Call it first thing in `main`, before any thread
/// starts.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn reexec_with_glibc_tunables() -> Option<std::io::Error> {
    use std::os::unix::process::CommandExt as _;
    if std::env::var_os("GLIBC_TUNABLES").is_some() {
        return None;
    }
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(error) => return Some(error),
    };
    let mut args = std::env::args_os();
    let mut command = std::process::Command::new(exe);
    if let Some(arg0) = args.next() {
        command.arg0(arg0);
    }
    Some(
        command
            .args(args)
            .env("GLIBC_TUNABLES", GLIBC_TUNABLES)
            .exec(),
    )
}

/// Other C libraries have no such cache to turn off.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn reexec_with_glibc_tunables() -> Option<std::io::Error> {
    None
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
        let metrics = Metrics::new(10);
        let trims = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&trims);
        let period = Duration::from_secs(5);
        let watcher = {
            let metrics = Arc::clone(&metrics);
            tokio::spawn(async move {
                trim_whenever_streams_end(&metrics, period, || {
                    counted.fetch_add(1, Ordering::SeqCst);
                    true
                })
                .await;
            })
        };
        let held = metrics.open_stream().unwrap();
        // Let the first look pass with nothing ended.
        tokio::time::sleep(period + Duration::from_millis(1)).await;
        assert_eq!(trims.load(Ordering::SeqCst), 0);
        // Churn: one stream leaves and another arrives; the gauge reads 1 at both looks.
        drop(held);
        let _replacement = metrics.open_stream().unwrap();
        tokio::time::sleep(period).await;
        assert_eq!(trims.load(Ordering::SeqCst), 1);
        // Nothing ended since: no further trim.
        tokio::time::sleep(period * 2).await;
        assert_eq!(trims.load(Ordering::SeqCst), 1);
        watcher.abort();
    }
}
