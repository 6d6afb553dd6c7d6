//! The load test against servers that misbehave on purpose, one row each. A hostile server
//! in this test, on 127.0.0.1, answers each request with a script of writes and pauses. For
//! every row the whole command runs (`run::command::execute`, as `cargo run -p loadtest`
//! does) with a JSON summary, an HTML report and a gate on the row's counter, and the test
//! checks that:
//! - the run ended on time, however the server behaved;
//! - the summary and the report were written;
//! - the misbehaviour was counted under its own name;
//! - the gate failed on that counter, naming it;
//! - the process's peak RSS (`VmHWM` in `/proc/self/status`, reset before the run) grew by
//!   less than [`RSS_GROWTH_AT_MOST_KIB`];
//! - and, where the server asks for one, the load test made no reconnection storm.
//!
//! The endless line and the endless event have their own test (`endless_stream.rs`).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser as _;
use loadtest::run::command::execute;
use loadtest::Options;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[path = "common/request_head.rs"]
mod request_head;
use request_head::read_head;

/// Goose keeps process-wide state, and one run's RSS must not include another's.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// How long each run lasts.
const RUN_SECS: u64 = 3;

/// The most a run may take past its deadline (ramp-up, the report, a loaded machine).
const LATE_AT_MOST: Duration = Duration::from_secs(8);

/// The most a run may add to the process's peak RSS (runs here add 1 to 16 MiB: goose's
/// report and the histograms).
const RSS_GROWTH_AT_MOST_KIB: u64 = 32 * 1024;

/// The longest the hostile server keeps one connection.
const SERVE_AT_MOST: Duration = Duration::from_secs(RUN_SECS + 5);

/// The users of each run.
const USERS: u64 = 2;

/// One step of the hostile server's answer.
#[derive(Debug, Clone)]
enum Step {
    /// Write these bytes.
    Write(Vec<u8>),
    /// Wait.
    Pause(Duration),
    /// Write these bytes over and over until the client leaves.
    Flood(Vec<u8>),
    /// Keep the connection open, writing nothing, until the client leaves.
    Hold,
}

use Step::{Flood, Hold, Pause, Write};

/// What the hostile server answers to a request head.
type Script = fn(&str) -> Vec<Step>;

/// The head of a `200 text/event-stream` answer that ends with the connection.
const SSE_HEAD: &str = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\
                        cache-control: no-cache\r\nconnection: close\r\n\r\n";

/// The same, with a chunked body.
const SSE_HEAD_CHUNKED: &str = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\
                                cache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n";

fn bytes(text: &str) -> Step {
    Write(text.as_bytes().to_vec())
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A server that runs `script` for each connection and counts the streams requested.
async fn hostile_server(script: Script) -> (SocketAddr, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let served = Arc::new(AtomicU64::new(0));
    tokio::spawn({
        let served = Arc::clone(&served);
        async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(serve(socket, script, Arc::clone(&served)));
            }
        }
    });
    (addr, served)
}

/// Answers one request with `script`; counts it unless it is the load test's look at
/// `/metrics` (hostile servers answer that the same way, but it is no stream).
async fn serve(mut socket: TcpStream, script: Script, served: Arc<AtomicU64>) {
    let Some(head) = read_head(&mut socket).await else {
        return;
    };
    let head = String::from_utf8_lossy(&head);
    if !head.starts_with("GET /metrics ") {
        served.fetch_add(1, Ordering::Relaxed);
    }
    let until = tokio::time::Instant::now() + SERVE_AT_MOST;
    for step in script(&head) {
        let alive = match step {
            Write(bytes) => socket.write_all(&bytes).await.is_ok(),
            Pause(duration) => {
                tokio::time::sleep(duration).await;
                true
            }
            Flood(block) => {
                while tokio::time::Instant::now() < until {
                    if socket.write_all(&block).await.is_err() {
                        break;
                    }
                }
                false
            }
            Hold => {
                // Until the client closes (a read of 0) or the time is up.
                let _ = tokio::time::timeout_at(until, socket.read(&mut [0u8; 1024])).await;
                false
            }
        };
        if !alive {
            break;
        }
    }
    let _ = socket.shutdown().await;
}

/// A figure in KiB from `/proc/self/status` (`VmRSS`, `VmHWM`).
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|value| value.trim().strip_suffix("kB")?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"))
}

/// One hostile server and what the load test must make of it.
struct Row {
    /// What the server does, for the failure messages.
    name: &'static str,
    /// Its answer to each request.
    script: Script,
    /// The path requested.
    path: &'static str,
    /// The load test's transport.
    transport: &'static str,
    /// Options of the row.
    args: &'static [&'static str],
    /// The counter that names the misbehaviour (its JSON key), and the least it must read.
    counter: (&'static str, u64),
    /// The most connections the server may see (no reconnection storm), if the row says.
    served_at_most: Option<u64>,
}

/// What a row's run left behind.
struct Outcome {
    /// The JSON summary.
    summary: Value,
    /// Why the command failed (the gate, naming its failed checks).
    error: String,
    /// The connections the server saw.
    served: u64,
}

impl Outcome {
    fn counter(&self, name: &str) -> u64 {
        self.summary["counters"][name]
            .as_u64()
            .unwrap_or_else(|| panic!("no counter {name} in {}", self.summary["counters"]))
    }
}

/// Runs the load test against the row's server and checks what every row must show.
async fn run_row(row: &Row) -> Outcome {
    let _one_at_a_time = ONE_AT_A_TIME.lock().await;
    let (addr, served) = hostile_server(row.script).await;
    let dir = std::env::temp_dir().join(format!(
        "hostile-{}-{}",
        row.name.replace(' ', "-"),
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("http://{addr}{}", row.path);
    let json = dir.join("summary.json");
    let report = dir.join("report");
    let (counter, at_least) = row.counter;
    let gate = format!("{counter}={}", at_least - 1);
    let users = USERS.to_string();
    let run_for = format!("{RUN_SECS}s");
    let mut args = vec![
        "loadtest",
        "--url",
        &url,
        "-u",
        &users,
        "-r",
        "100",
        "-t",
        &run_for,
        "-q",
        "--no-print-metrics",
        "--progress-secs",
        "0",
        "--transport",
        row.transport,
        "--summary-json",
        json.to_str().unwrap(),
        "--report-dir",
        report.to_str().unwrap(),
        "--gate-max-count",
        &gate,
    ];
    args.extend_from_slice(row.args);
    let options = Options::try_parse_from(&args).unwrap();

    std::fs::write("/proc/self/clear_refs", "5").unwrap();
    let rss_before = status_kib("VmRSS");
    let started = Instant::now();
    let result = execute(options).await;
    let took = started.elapsed();
    let growth = status_kib("VmHWM").saturating_sub(rss_before);
    let served = served.load(Ordering::Relaxed);
    let name = row.name;
    eprintln!("{name}: {took:?}, peak RSS +{growth} KiB, {served} connections served");

    let error = result
        .expect_err("the gate on the row's counter must fail")
        .to_string();
    assert!(
        error.contains("gate failed") && error.contains(counter),
        "{name}: {error}"
    );
    assert!(
        took < Duration::from_secs(RUN_SECS) + LATE_AT_MOST,
        "{name}: the run took {took:?}"
    );
    assert!(
        growth < RSS_GROWTH_AT_MOST_KIB,
        "{name}: peak RSS grew by {growth} KiB (at most {RSS_GROWTH_AT_MOST_KIB})"
    );
    let summary: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_report_written(&report, name);
    let outcome = Outcome {
        summary,
        error,
        served,
    };
    let counted = outcome.counter(counter);
    assert!(
        counted >= at_least,
        "{name}: {counter} {counted} (at least {at_least}): {}",
        outcome.summary["counters"]
    );
    if let Some(most) = row.served_at_most {
        assert!(
            served <= most,
            "{name}: {served} connections (at most {most})"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    outcome
}

fn assert_report_written(dir: &Path, name: &str) {
    let page = std::fs::read_to_string(dir.join("index.html"))
        .unwrap_or_else(|e| panic!("{name}: no report page: {e}"));
    assert!(page.contains("</html>"), "{name}: the page is cut short");
}

/// Options of rows that want quick timeouts.
const QUICK: &[&str] = &["--open-timeout-ms", "500", "--idle-timeout-secs", "1"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_answers_is_an_open_timeout() {
    run_row(&Row {
        name: "never answers",
        script: |_| vec![Hold],
        path: "/",
        transport: "hyper",
        args: QUICK,
        counter: ("failed_timeout", USERS),
        served_at_most: None,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_and_then_nothing_is_an_idle_timeout() {
    run_row(&Row {
        name: "headers then nothing",
        script: |_| vec![bytes(SSE_HEAD), Hold],
        path: "/",
        transport: "raw",
        args: QUICK,
        counter: ("idle_timeouts", USERS),
        served_at_most: None,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickle_of_bytes_is_a_stall_and_the_run_ends_on_time() {
    // One byte every 300 ms keeps the idle timeout away, and never completes an event.
    let outcome = run_row(&Row {
        name: "trickle",
        script: |_| {
            let mut steps = vec![bytes(SSE_HEAD), bytes("data: ")];
            for _ in 0..100 {
                steps.push(bytes("x"));
                steps.push(Pause(ms(300)));
            }
            steps
        },
        path: "/",
        transport: "hyper",
        args: &["--idle-timeout-secs", "1", "--stall-intervals", "1"],
        counter: ("stalls", USERS),
        served_at_most: None,
    })
    .await;
    assert_eq!(outcome.counter("idle_timeouts"), 0);
    assert_eq!(outcome.counter("events"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_that_was_not_asked_for_is_a_named_failure() {
    for transport in ["hyper", "raw"] {
        run_row(&Row {
            name: "content-encoding gzip",
            script: |_| {
                vec![
                    bytes(
                        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\
                         content-encoding: gzip\r\nconnection: close\r\n\r\n",
                    ),
                    // A gzip header and some deflate bytes: not text.
                    Write(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\xcb\x48\xcd".to_vec()),
                    Hold,
                ]
            },
            path: "/",
            transport,
            args: &[],
            counter: ("failed_encoding", USERS),
            // Given up on, as a browser gives up on what it cannot read.
            served_at_most: Some(USERS),
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_transfer_coding_is_a_named_failure() {
    for transport in ["hyper", "raw"] {
        run_row(&Row {
            name: "transfer-encoding gzip, chunked",
            script: |_| {
                vec![
                    bytes(
                        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\
                         transfer-encoding: gzip, chunked\r\n\r\n",
                    ),
                    Write(b"a\r\n\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\r\n".to_vec()),
                    Hold,
                ]
            },
            path: "/",
            transport,
            args: &[],
            counter: ("failed_encoding", USERS),
            served_at_most: Some(USERS),
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunk_size_that_is_not_hex_is_a_framing_error() {
    for transport in ["hyper", "raw"] {
        let outcome = run_row(&Row {
            name: "bad chunk size",
            script: |_| {
                vec![
                    bytes(SSE_HEAD_CHUNKED),
                    bytes("1a\r\nretry: 200\nid: 1\ndata: 1\n\n\r\n"),
                    bytes("zz\r\nid: 2\ndata: 2\n\n\r\n"),
                    Hold,
                ]
            },
            path: "/",
            transport,
            args: &[],
            counter: ("framing_errors", USERS),
            served_at_most: None,
        })
        .await;
        assert!(outcome.counter("read_errors") >= USERS);
        assert!(
            outcome.counter("reconnects") >= USERS,
            "a browser reconnects"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_cut_inside_a_chunk_is_counted_as_cut() {
    for transport in ["hyper", "raw"] {
        run_row(&Row {
            name: "cut mid-chunk",
            script: |_| {
                vec![
                    bytes(SSE_HEAD_CHUNKED),
                    bytes("1a\r\nretry: 200\nid: 1\ndata: 1\n\n\r\n"),
                    // 16 bytes announced, 14 sent, then the connection closes.
                    bytes("10\r\nid: 2\ndata: 2\n"),
                ]
            },
            path: "/",
            transport,
            args: &[],
            counter: ("body_cut", USERS),
            served_at_most: None,
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_zero_is_raised_to_the_minimum_with_no_storm() {
    // Each stream sends one event and ends at once, asking to come back after 0 ms.
    run_row(&Row {
        name: "retry 0",
        script: |_| vec![bytes(SSE_HEAD), bytes("retry: 0\nid: 1\ndata: 1\n\n")],
        path: "/",
        transport: "raw",
        args: &["--min-retry-ms", "250"],
        counter: ("retry_clamped", USERS),
        // 250 ms apart over the run and its ramp: about 16 per user, far from thousands.
        served_at_most: Some(USERS * (RUN_SECS + 1) * 4 + USERS),
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_retry_is_cut_to_the_maximum() {
    let outcome = run_row(&Row {
        name: "retry 1e9",
        script: |_| {
            vec![
                bytes(SSE_HEAD),
                bytes("retry: 1000000000\nid: 1\ndata: 1\n\n"),
            ]
        },
        path: "/",
        transport: "hyper",
        args: &["--max-retry-ms", "500"],
        counter: ("retry_clamped", USERS),
        // 500 ms apart over the run and its ramp.
        served_at_most: Some(USERS * ((RUN_SECS + 1) * 2 + 1)),
    })
    .await;
    // Within 3 s, each user came back more than once instead of waiting 11 days.
    assert!(outcome.served >= USERS * 3, "{} served", outcome.served);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_500_on_reconnect_ends_the_source_as_a_browser_does() {
    let outcome = run_row(&Row {
        name: "500 on reconnect",
        script: |head| {
            if head.to_ascii_lowercase().contains("last-event-id") {
                vec![bytes(
                    "HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\n\r\n",
                )]
            } else {
                vec![bytes(SSE_HEAD), bytes("retry: 100\nid: 1\ndata: 1\n\n")]
            }
        },
        path: "/",
        transport: "raw",
        args: &[],
        counter: ("failed_status", USERS),
        served_at_most: Some(USERS * 2),
    })
    .await;
    assert_eq!(outcome.summary["counters"]["status_codes"]["500"], USERS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_503_with_retry_after_is_waited_out() {
    let outcome = run_row(&Row {
        name: "503 retry-after",
        script: |head| {
            if head.to_ascii_lowercase().contains("last-event-id") {
                vec![bytes(
                    "HTTP/1.1 503 Service Unavailable\r\nretry-after: 1\r\n\
                     content-length: 0\r\n\r\n",
                )]
            } else {
                vec![bytes(SSE_HEAD), bytes("retry: 100\nid: 1\ndata: 1\n\n")]
            }
        },
        path: "/",
        transport: "hyper",
        args: &[],
        counter: ("retry_after", USERS),
        // The first stream, then a 503 about every second: at 100 ms it would be ~30 each.
        served_at_most: Some(USERS * (RUN_SECS + 2)),
    })
    .await;
    assert!(outcome.counter("failed_status") >= USERS);
    // The wait after each stream is its `retry: 100`; every wait after a 503 is the 1 s
    // Retry-After asked, which comes before the stream's hint.
    let hint = &outcome.summary["latencies"]["retry_hint"];
    assert_eq!(outcome.counter("retry_from_field"), USERS, "{hint}");
    assert_eq!(
        hint["count"].as_u64().unwrap(),
        USERS + outcome.counter("retry_after"),
        "{hint}"
    );
    let max_ms = hint["max_ms"].as_f64().unwrap();
    assert!((max_ms - 1000.0).abs() <= 1.0, "{hint}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_are_followed_and_reconnections_start_at_the_first_url() {
    for transport in ["hyper", "raw"] {
        let outcome = run_row(&Row {
            name: "301 then 307",
            script: |head| {
                if head.starts_with("GET /start ") {
                    vec![bytes(
                        "HTTP/1.1 301 Moved Permanently\r\nlocation: /middle\r\n\
                         content-length: 0\r\n\r\n",
                    )]
                } else if head.starts_with("GET /middle ") {
                    // Relative to /middle: /stream.
                    vec![bytes(
                        "HTTP/1.1 307 Temporary Redirect\r\nlocation: stream\r\n\
                         content-length: 0\r\n\r\n",
                    )]
                } else if head.starts_with("GET /stream ") {
                    vec![
                        bytes(SSE_HEAD),
                        bytes("retry: 200\nid: 1\ndata: 1\n\nid: 2\ndata: 2\n\n"),
                    ]
                } else {
                    vec![bytes("HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")]
                }
            },
            path: "/start",
            transport,
            args: &[],
            counter: ("redirects", USERS * 2),
            served_at_most: None,
        })
        .await;
        assert!(outcome.counter("events") >= USERS * 2);
        // Every connection came through /start again: two redirects for each.
        let opened = outcome.counter("connections_opened");
        assert_eq!(outcome.counter("redirects"), opened * 2);
        assert_eq!(outcome.counter("failed_status"), 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_loop_ends_at_the_limit() {
    let outcome = run_row(&Row {
        name: "redirect loop",
        script: |_| {
            vec![bytes(
                "HTTP/1.1 302 Found\r\nlocation: /loop\r\ncontent-length: 0\r\n\r\n",
            )]
        },
        path: "/loop",
        transport: "hyper",
        args: &["--max-redirects", "3"],
        counter: ("failed_redirects", USERS),
        // The first request and three redirects, once per user.
        served_at_most: Some(USERS * 4),
    })
    .await;
    assert_eq!(outcome.counter("redirects"), USERS * 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_utf8_nul_and_a_late_bom_are_read_as_the_standard_says() {
    let outcome = run_row(&Row {
        name: "invalid utf-8",
        script: |_| {
            vec![
                bytes(SSE_HEAD),
                Write(
                    b"data: a\xFFb\n\ndata: n\x00l\n\n\xEF\xBB\xBFdata: hidden\n\ndata: end\n\n"
                        .to_vec(),
                ),
                Hold,
            ]
        },
        path: "/",
        transport: "raw",
        args: &[],
        counter: ("invalid_utf8", USERS),
        served_at_most: Some(USERS),
    })
    .await;
    // `a\u{FFFD}b`, `n\0l` and `end`; the line after the BOM is an unknown field.
    assert_eq!(outcome.counter("events"), USERS * 3);
    assert_eq!(outcome.counter("invalid_utf8"), USERS);
}

/// A server that writes tiny events as fast as the socket takes them: they are counted,
/// and the load generator's CPU with every stream open is reported and can fail the gate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_tiny_events_is_counted_and_the_load_generators_cpu_shown() {
    let outcome = run_row(&Row {
        name: "flood",
        script: |_| vec![bytes(SSE_HEAD), Flood(b"data:x\n\n".repeat(8192))],
        path: "/",
        transport: "raw",
        args: &["--gate-max-load-generator-cpu-pct", "1"],
        counter: ("events", 100_000),
        served_at_most: Some(USERS),
    })
    .await;
    assert!(
        outcome
            .error
            .contains("load generator CPU with every stream open"),
        "{}",
        outcome.error
    );
    let steady = outcome.summary["processes"]["this_process"]["cpu_percent_steady"]
        .as_f64()
        .expect("CPU with every stream open is reported");
    assert!(steady > 1.0, "{steady}");
}

/// `sse-client` takes the same limits: against a server that redirects and then asks for a
/// `retry:` of 0, it follows the redirect, says so, and waits the minimum, saying what the
/// server asked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_client_keeps_to_the_same_limits() {
    let (addr, served) = hostile_server(|head| {
        if head.starts_with("GET /start ") {
            vec![bytes(
                "HTTP/1.1 307 Temporary Redirect\r\nlocation: /stream\r\ncontent-length: 0\r\n\r\n",
            )]
        } else {
            vec![bytes(SSE_HEAD), bytes("retry: 0\nid: 1\ndata: 1\n\n")]
        }
    })
    .await;
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_sse-client"))
        .arg(format!("http://{addr}/start"))
        .args(["--min-retry-ms", "400", "--max-events", "3"])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let output = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .expect("sse-client exits after 3 events")
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(output.status.success(), "{stdout}");
    let redirect = format!("Event: redirect (307 to http://{addr}/stream)");
    assert_eq!(stdout.matches(&redirect).count(), 3, "{stdout}");
    let clamped = "Event: error (stream ended by the server; reconnecting in 400 ms, \
                   the server asked 0 ms)";
    assert!(stdout.matches(clamped).count() >= 2, "{stdout}");
    // Three streams, each through the redirect: no more.
    assert_eq!(served.load(Ordering::Relaxed), 6, "{stdout}");
}
