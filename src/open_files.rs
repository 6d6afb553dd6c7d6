//! The open-files limit. Every connection holds a socket, so the file limit, not
//! `--max-connections`, is often what bounds the server: at the common soft limit of 1,024 a
//! server would otherwise take about a thousand streams and then fail every `accept` with
//! "too many open files" (actix-server logs each failure at ERROR and pauses accepting), while
//! clients wait in the accept queue with no answer. So the binary raises its soft limit to the
//! hard one at start-up, and the server admits no more streams than the limit leaves files
//! for: past that, stream requests get the same 503 with `Retry-After` as past
//! `--max-connections`, on files kept free for it.

use std::io;

/// Files the process holds besides its connections. Measured idle: 14 plus 4 per worker
/// (each worker's epoll, eventfd and runtime; 18, 22 and 46 for 1, 2 and 8 workers); doubled
/// for what opens briefly (a static file being served, a log file).
fn internal_files(workers: usize) -> u64 {
    let workers = u64::try_from(workers).unwrap_or(u64::MAX);
    workers.saturating_mul(8).saturating_add(32)
}

/// Connections kept free of streams: the 503s that refuse streams past the limit, health
/// checks, metric scrapes and static files.
const NON_STREAM_CONNECTIONS: u64 = 32;

/// The process's open-files limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct FileLimit {
    /// The limit in force.
    pub soft: u64,
    /// The most the soft limit can be raised to without privileges.
    pub hard: u64,
}

/// The limit now in force.
///
/// # Errors
/// When the limit cannot be read.
pub fn current() -> io::Result<FileLimit> {
    let (soft, hard) = rlimit::Resource::NOFILE.get()?;
    Ok(FileLimit { soft, hard })
}

/// Raises the soft limit to the hard one, as a shell's `ulimit -n "$(ulimit -Hn)"` would.
///
/// # Errors
/// When the limit cannot be read or set.
pub fn raise_to_hard_limit() -> io::Result<FileLimit> {
    rlimit::increase_nofile_limit(u64::MAX)?;
    current()
}

/// What a file limit leaves room for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capacity {
    /// Streams open at once: the configured maximum, or fewer if the limit says so.
    pub streams: usize,
    /// Connections each worker accepts at once (actix-server's limit is per worker): past
    /// it, new clients wait in the accept queue instead of failing `accept`.
    pub connections_per_worker: usize,
}

impl Capacity {
    /// Room for `max_streams` streams (plus `connection_headroom` other connections) on
    /// `workers` workers under a soft limit of `soft_limit` files.
    #[must_use]
    pub fn within(
        max_streams: usize,
        connection_headroom: usize,
        workers: usize,
        soft_limit: u64,
    ) -> Self {
        let for_connections = soft_limit.saturating_sub(internal_files(workers));
        let for_streams = for_connections.saturating_sub(NON_STREAM_CONNECTIONS);
        let per_worker = for_connections / u64::try_from(workers.max(1)).unwrap_or(u64::MAX);
        Self {
            streams: max_streams.min(usize::try_from(for_streams).unwrap_or(usize::MAX)),
            // At least one: a worker that accepts nothing would leave clients waiting.
            connections_per_worker: max_streams
                .saturating_add(connection_headroom)
                .min(usize::try_from(per_worker).unwrap_or(usize::MAX))
                .max(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_high_limit_leaves_the_configured_maximum() {
        let capacity = Capacity::within(100_000, 1024, 2, 1_048_576);
        assert_eq!(capacity.streams, 100_000);
        assert_eq!(capacity.connections_per_worker, 101_024);
    }

    #[test]
    fn a_low_limit_caps_streams_below_the_connections_it_accepts() {
        // 1,024 files, 2 workers: 48 for the process, 976 for connections, 32 of them kept
        // free of streams, and 488 connections for each worker.
        let capacity = Capacity::within(100_000, 1024, 2, 1024);
        assert_eq!(capacity.streams, 1024 - 48 - 32);
        assert_eq!(capacity.connections_per_worker, (1024 - 48) / 2);
    }

    #[test]
    fn a_limit_below_what_the_process_needs_admits_no_stream() {
        let capacity = Capacity::within(100_000, 1024, 8, 50);
        assert_eq!(capacity.streams, 0);
        assert_eq!(capacity.connections_per_worker, 1);
    }

    #[test]
    fn an_unlimited_limit_does_not_overflow() {
        // RLIM_INFINITY reads as u64::MAX.
        let capacity = Capacity::within(100_000, 1024, 512, u64::MAX);
        assert_eq!(capacity.streams, 100_000);
        assert_eq!(capacity.connections_per_worker, 101_024);
        let capacity = Capacity::within(usize::MAX, usize::MAX, 0, u64::MAX);
        assert!(capacity.streams > usize::MAX / 2);
        assert!(capacity.connections_per_worker > usize::MAX / 2);
    }

    #[test]
    fn the_limit_reads_back_as_raised() {
        let raised = raise_to_hard_limit().unwrap();
        assert_eq!(raised.soft, raised.hard);
        assert_eq!(current().unwrap(), raised);
    }
}
