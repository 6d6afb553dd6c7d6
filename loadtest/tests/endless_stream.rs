//! A server that never ends a line, or never ends an event, must not grow the client's memory
//! without bound: past `--max-event-bytes` the connection is closed, counted as
//! `event too large`, and reopened after the retry delay. A hostile in-test server on
//! 127.0.0.1 answers `200 text/event-stream` and then writes 64 KiB after 64 KiB for as long
//! as the client reads (at most [`SERVE_AT_MOST`]). The load test runs against it in this
//! process, whose peak RSS is read from `/proc/self/status`; `sse-client`, the same client
//! code, runs as its own process and its peak RSS is read from `/proc/PID/status`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser as _;
use loadtest::{run, Options};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[path = "common/request_head.rs"]
mod request_head;
use request_head::read_head;

/// Goose keeps process-wide state, and the RSS of one run must not include another's.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The longest the hostile server writes to one connection.
const SERVE_AT_MOST: Duration = Duration::from_secs(5);

/// One write of the hostile server.
const WRITE_BYTES: usize = 64 * 1024;

/// The limit the tests run with: 256 KiB.
const MAX_EVENT_BYTES: &str = "262144";

/// The most a run may add to the peak RSS. Without the limit the client holds everything
/// it reads: hundreds of MiB within 2 s on loopback.
const RSS_GROWTH_AT_MOST_KIB: u64 = 64 * 1024;

/// What the hostile server sends after `data: `.
#[derive(Debug, Clone, Copy)]
enum Endless {
    /// One line that never ends: `xxxx…`.
    Line,
    /// One event that never ends: `x\ndata: x\ndata: x\n…`, never a blank line.
    Event,
}

impl Endless {
    /// One write's worth.
    fn block(self) -> Vec<u8> {
        match self {
            Self::Line => vec![b'x'; WRITE_BYTES],
            Self::Event => b"x\ndata: ".repeat(WRITE_BYTES / 8),
        }
    }
}

/// Starts the hostile server; it counts the connections it served.
async fn endless_server(endless: Endless) -> (SocketAddr, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let served = Arc::new(AtomicU64::new(0));
    tokio::spawn({
        let served = Arc::clone(&served);
        async move {
            while let Ok((socket, _)) = listener.accept().await {
                served.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(serve(socket, endless));
            }
        }
    });
    (addr, served)
}

/// Answers one request with the endless body until the client leaves (a write fails) or
/// [`SERVE_AT_MOST`] has passed.
async fn serve(mut socket: TcpStream, endless: Endless) {
    if read_head(&mut socket).await.is_none() {
        return;
    }
    let start = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\
                 cache-control: no-cache\r\nconnection: close\r\n\r\ndata: ";
    if socket.write_all(start.as_bytes()).await.is_err() {
        return;
    }
    let block = endless.block();
    let until = Instant::now() + SERVE_AT_MOST;
    while Instant::now() < until {
        if socket.write_all(&block).await.is_err() {
            return;
        }
    }
    let _ = socket.shutdown().await;
}

/// A figure in KiB from a `/proc/…/status` file (`VmRSS`, `VmHWM`).
fn status_kib(status_path: &str, field: &str) -> u64 {
    let status = std::fs::read_to_string(status_path).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|value| value.trim().strip_suffix("kB")?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in {status_path}"))
}

/// Runs the load test for 2 s with 2 users against a server that sends `endless` through
/// `transport`, and checks that it cut, reconnected, ended on time and kept its memory.
async fn load_test_against(endless: Endless, transport: &str) {
    let _one_at_a_time = ONE_AT_A_TIME.lock().await;
    let (addr, served) = endless_server(endless).await;
    let host = format!("http://{addr}");
    let args = [
        "loadtest",
        "-H",
        &host,
        "-u",
        "2",
        "-r",
        "100",
        "-t",
        "2s",
        "-q",
        "--no-print-metrics",
        "--progress-secs",
        "0",
        "--interval-ms",
        "50",
        "--retry-ms",
        "100",
        "--transport",
        transport,
        "--max-event-bytes",
        MAX_EVENT_BYTES,
    ];
    // Resets the peak RSS to the current one, so the peak read after is this run's.
    std::fs::write("/proc/self/clear_refs", "5").unwrap();
    let rss_before = status_kib("/proc/self/status", "VmRSS");
    let started = Instant::now();
    let s = run(Options::try_parse_from(args).unwrap()).await.unwrap();
    let took = started.elapsed();
    let peak = status_kib("/proc/self/status", "VmHWM");
    let growth = peak.saturating_sub(rss_before);
    eprintln!(
        "{endless:?} via {transport}: RSS {rss_before} KiB before, peak {peak} KiB \
         (+{growth} KiB); {} cut, {} reconnects, {} connections served, {took:?}",
        s.counters.event_too_large,
        s.counters.reconnects,
        served.load(Ordering::Relaxed)
    );
    let c = &s.counters;
    assert!(c.event_too_large >= 2, "each user cut at least once: {c:?}");
    assert!(c.reconnects >= 2, "each user reconnected: {c:?}");
    assert!(served.load(Ordering::Relaxed) >= 4, "{c:?}");
    assert_eq!(c.events, 0, "no event ever ended");
    assert!(!s.is_clean());
    assert!(took < Duration::from_secs(10), "the run took {took:?}");
    assert!(
        growth < RSS_GROWTH_AT_MOST_KIB,
        "peak RSS grew by {growth} KiB (at most {RSS_GROWTH_AT_MOST_KIB})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_line_is_cut_and_reconnected_with_memory_bounded() {
    load_test_against(Endless::Line, "hyper").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_event_is_cut_and_reconnected_with_memory_bounded() {
    load_test_against(Endless::Event, "raw").await;
}

/// `sse-client` is the same event source as the load test's users, given the limit by its
/// own flag: run as its own process against an endless line, it says why it reconnects and
/// its peak RSS stays bounded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_client_cuts_an_endless_line_and_stays_small() {
    let (addr, served) = endless_server(Endless::Line).await;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_sse-client"))
        .arg(format!("http://{addr}/"))
        .args(["--retry-ms", "100", "--max-event-bytes", MAX_EVENT_BYTES])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let pid = child.id().expect("sse-client is still running");
    let peak = status_kib(&format!("/proc/{pid}/status"), "VmHWM");
    child.start_kill().unwrap();
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .await
        .unwrap();
    let _ = child.wait().await;
    let cuts = stdout
        .matches("Event: error (event too large (over --max-event-bytes); reconnecting in 100 ms)")
        .count();
    eprintln!(
        "sse-client: peak RSS {peak} KiB, {cuts} cuts, {} connections served",
        served.load(Ordering::Relaxed)
    );
    assert!(cuts >= 2, "{stdout}");
    assert!(stdout.matches("Event: open").count() >= 2, "{stdout}");
    assert!(
        peak < RSS_GROWTH_AT_MOST_KIB,
        "sse-client's peak RSS {peak} KiB"
    );
}
