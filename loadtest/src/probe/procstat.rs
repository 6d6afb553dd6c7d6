//! Memory and CPU of a process (this one, or a server given by pid) from `/proc`, and the
//! open-files limit: what the report needs to say per-connection costs.

use std::path::Path;
use std::time::Duration;

use serde::Serialize;

/// One reading of a process.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ProcSample {
    /// Resident set size, bytes.
    pub rss_bytes: u64,
    /// User plus system CPU time since the process started.
    pub cpu: Duration,
    /// Of `cpu`, the part spent by live threads whose name starts with `actix` (the
    /// embedded server's); zero for another process.
    pub server_threads_cpu: Duration,
}

/// Reads `/proc/<pid>` (or `/proc/self` when `pid` is `None`).
///
/// # Errors
/// When the process is gone or `/proc` cannot be read.
pub fn sample(pid: Option<u32>) -> std::io::Result<ProcSample> {
    let dir = pid.map_or_else(|| "/proc/self".to_owned(), |pid| format!("/proc/{pid}"));
    let stat = std::fs::read_to_string(format!("{dir}/stat"))?;
    let parsed = parse_stat(&stat).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{dir}/stat: unexpected format"),
        )
    })?;
    let server_threads_cpu = if pid.is_none() {
        threads_cpu(Path::new("/proc/self/task"), "actix")
    } else {
        Duration::ZERO
    };
    Ok(ProcSample {
        rss_bytes: parsed.rss_pages * page_size(),
        cpu: ticks(parsed.utime + parsed.stime),
        server_threads_cpu,
    })
}

/// The fields of `/proc/<pid>/stat` the report uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stat<'a> {
    /// The thread or process name (the `comm` field).
    comm: &'a str,
    /// User CPU, clock ticks.
    utime: u64,
    /// System CPU, clock ticks.
    stime: u64,
    /// Resident pages.
    rss_pages: u64,
}

/// Parses a `stat` line; the name may hold spaces and parentheses, so fields are counted
/// from the last `)`.
fn parse_stat(line: &str) -> Option<Stat<'_>> {
    let open = line.find('(')?;
    let close = line.rfind(')')?;
    let comm = line.get(open + 1..close)?;
    let rest: Vec<&str> = line.get(close + 1..)?.split_whitespace().collect();
    // rest[0] is field 3 (state); utime is field 14, stime 15, rss 24.
    Some(Stat {
        comm,
        utime: rest.get(11)?.parse().ok()?,
        stime: rest.get(12)?.parse().ok()?,
        rss_pages: rest.get(21)?.parse().ok()?,
    })
}

/// CPU of the live threads under `task_dir` whose name starts with `prefix`.
fn threads_cpu(task_dir: &Path, prefix: &str) -> Duration {
    let Ok(entries) = std::fs::read_dir(task_dir) else {
        return Duration::ZERO;
    };
    let mut total = 0;
    for entry in entries.flatten() {
        if let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) {
            if let Some(s) = parse_stat(&stat) {
                if s.comm.starts_with(prefix) {
                    total += s.utime + s.stime;
                }
            }
        }
    }
    ticks(total)
}

fn ticks(n: u64) -> Duration {
    // SAFETY: sysconf only reads a configuration value.
    let per_sec = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let per_sec = u64::try_from(per_sec)
        .ok()
        .filter(|&t| t > 0)
        .unwrap_or(100);
    Duration::from_nanos(n.saturating_mul(1_000_000_000) / per_sec)
}

fn page_size() -> u64 {
    // SAFETY: sysconf only reads a configuration value.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(size).ok().filter(|&s| s > 0).unwrap_or(4096)
}

/// The open-files limit, raised and read through the server's own module (one
/// implementation for both processes).
pub use sse_digits::open_files::{raise_to_hard_limit as raise_nofile_limit, FileLimit};

/// Files the process needs besides its connections (listeners, epoll, logs, threads).
pub const FILES_RESERVED: u64 = 200;

/// The streams an embedded server can hold: half the open-files limit, since both ends of
/// each connection live in this process. Given to it as its stream limit, so it does not
/// count the load generator's half as its own. Half of the whole limit, not of what is left
/// after the reserve, so that a stream the server has not yet seen closed does not turn its
/// client's reconnection into a 503 when every user the budget lets in is connected.
#[must_use]
pub fn embedded_server_streams(limit: FileLimit) -> usize {
    usize::try_from(limit.soft / 2).unwrap_or(usize::MAX)
}

/// Checks that `connections` fit in the open-files limit; with the server embedded each
/// connection costs two files (both ends live in this process).
///
/// # Errors
/// A message that says how many connections fit and what to do instead.
pub fn check_file_budget(connections: u64, embedded: bool, limit: FileLimit) -> Result<(), String> {
    let per_connection = if embedded { 2 } else { 1 };
    let needed = connections * per_connection + FILES_RESERVED;
    if needed <= limit.soft {
        return Ok(());
    }
    let fits = limit.soft.saturating_sub(FILES_RESERVED) / per_connection;
    let mut message = format!(
        "{connections} connections need about {needed} open files, but this process may open \
         {} (hard limit {}): at most {fits} connections fit.",
        limit.soft, limit.hard
    );
    if embedded {
        message.push_str(
            " With the server embedded, both ends of every connection live in this process. \
             For more, run the server as its own process (`cargo run --release`) and point \
             the load test at it with --host http://127.0.0.1:8080.",
        );
    } else {
        message.push_str(" Use fewer users (-u).");
    }
    Err(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stat_line_with_spaces_and_parens_in_the_name_parses() {
        let line = "1234 (actix-rt|sys (x) 1) S 1 1234 1234 0 -1 4194560 100 0 0 0 \
                    250 50 0 0 20 0 9 0 12345 1000000 2560 18446744073709551615";
        let stat = parse_stat(line).unwrap();
        assert_eq!(stat.comm, "actix-rt|sys (x) 1");
        assert_eq!((stat.utime, stat.stime, stat.rss_pages), (250, 50, 2560));
    }

    #[test]
    fn this_process_can_be_sampled() {
        let s = sample(None).unwrap();
        assert!(s.rss_bytes > 0);
    }

    #[test]
    fn the_budget_counts_both_ends_when_embedded() {
        let limit = FileLimit {
            soft: 20_000,
            hard: 20_000,
        };
        assert!(check_file_budget(9_900, true, limit).is_ok());
        let err = check_file_budget(10_000, true, limit).unwrap_err();
        assert!(err.contains("at most 9900 connections fit"), "{err}");
        assert!(err.contains("--host"), "{err}");
        assert!(check_file_budget(15_000, false, limit).is_ok());
        assert!(check_file_budget(20_000, false, limit).is_err());
    }

    #[test]
    fn the_embedded_server_gets_the_streams_the_budget_lets_in() {
        let limit = FileLimit {
            soft: 20_000,
            hard: 20_000,
        };
        // Every user the budget lets in, with room for streams not yet seen closed.
        assert_eq!(embedded_server_streams(limit), 10_000);
        assert!(check_file_budget(9_900, true, limit).is_ok());
        assert!(check_file_budget(9_901, true, limit).is_err());
        // Within what the server itself finds room for under the same limit, so it admits
        // them all and does not warn.
        let capacity = sse_digits::open_files::Capacity::within(10_000, 1024, 2, limit.soft);
        assert_eq!(capacity.streams, 10_000);
    }
}
