//! The `sse-digits` binary itself, started as a process on 127.0.0.1 (an ephemeral port it
//! reports in its log): it serves without touching its own environment; its log stays quiet
//! about malformed requests unless asked; under a low open-files limit it refuses streams
//! with 503 while it still has files to answer with.

use std::time::Duration;

use crate::process::{launch, Launch, Running};
use sse_digits::telemetry::names;

/// Starts the binary and waits (at most 10 s) for its "listening" log line.
fn start() -> Running {
    start_with_log_filter(Some("info"))
}

/// [`start`] with `RUST_LOG` set to `rust_log`, or unset for the binary's default.
fn start_with_log_filter(rust_log: Option<&str>) -> Running {
    launch(&Launch {
        rust_log,
        ..Launch::default()
    })
}

/// Starts the binary with `RUST_LOG=info` and its open-files limit (soft and hard) set to
/// `open_files`.
#[cfg(unix)]
fn start_with_open_files(open_files: u64) -> Running {
    launch(&Launch {
        open_files: Some(open_files),
        ..Launch::default()
    })
}

async fn serves(running: &Running) {
    let response = reqwest::get(format!("http://{}/healthz", running.addr))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

/// The allocator is configured in-process (`mallopt`), not by restarting with
/// `GLIBC_TUNABLES` in the environment, which would override an operator's own tunables.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn the_binary_serves_without_changing_its_environment() {
    let running = start();
    serves(&running).await;
    let environ = std::fs::read(format!("/proc/{}/environ", running.child.id())).unwrap();
    let names: Vec<&[u8]> = environ
        .split(|&byte| byte == 0)
        .filter_map(|entry| entry.split(|&byte| byte == b'=').next())
        .collect();
    assert!(
        names.contains(&b"RUST_LOG".as_slice()),
        "environ unreadable"
    );
    assert!(!names.contains(&b"GLIBC_TUNABLES".as_slice()));
}

/// Its log goes to a pipe here (as to a file or a journal): plain text, no colour codes,
/// with `NO_COLOR` unset.
#[tokio::test]
async fn a_log_that_is_not_a_terminal_has_no_colour_codes() {
    let running = start();
    assert!(!running.startup_lines.is_empty());
    for line in &running.startup_lines {
        assert!(!line.contains('\x1b'), "colour code in {line:?}");
    }
}

/// Malformed requests (each answered 400 or 431 by actix-http), then a clean stop: the log
/// lines they left, with `RUST_LOG` as given.
async fn log_after_malformed_requests(rust_log: Option<&str>) -> Vec<String> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut running = start_with_log_filter(rust_log);
    let oversized_header = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(100_000));
    let requests: [&[u8]; 3] = [
        b"GARBAGE\r\n\r\n",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        oversized_header.as_bytes(),
    ];
    for request in requests {
        let mut socket = tokio::net::TcpStream::connect(&running.addr).await.unwrap();
        socket.write_all(request).await.unwrap();
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), socket.read_to_end(&mut answer)).await;
    }
    serves(&running).await;
    // SIGTERM: the binary drains and exits, which ends its log.
    crate::process::terminate(&running);
    let mut lines = Vec::new();
    while let Ok(line) = running.later_lines.recv_timeout(Duration::from_secs(10)) {
        lines.push(line);
    }
    let _ = running.child.wait();
    lines
}

#[cfg(unix)]
#[tokio::test]
async fn malformed_requests_do_not_fill_the_log_by_default() {
    let lines = log_after_malformed_requests(None).await;
    assert!(
        lines.iter().any(|line| line.contains("draining")),
        "the log was read to the end: {lines:?}"
    );
    let errors: Vec<_> = lines.iter().filter(|line| line.contains("ERROR")).collect();
    assert!(errors.is_empty(), "{errors:?}");
}

#[cfg(unix)]
#[tokio::test]
async fn asked_for_they_are_logged() {
    // The same requests with RUST_LOG=info: actix-http's lines are there, so the test above
    // would see them if the default let them through.
    let lines = log_after_malformed_requests(Some("info")).await;
    let parse_errors = lines
        .iter()
        .filter(|line| line.contains("request parse error"))
        .count();
    assert_eq!(parse_errors, 3, "{lines:?}");
}

/// An open `/digits` stream over a raw socket (an event every 100 ms, so the server soon
/// notices when it is dropped), and the status its response began with.
#[cfg(unix)]
async fn open_stream(addr: &str) -> (tokio::net::TcpStream, u16) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET /digits?interval_ms=100 HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut head = [0u8; 12];
    tokio::time::timeout(Duration::from_secs(5), socket.read_exact(&mut head))
        .await
        .expect("an answer within 5 s, not a wait in the accept queue")
        .unwrap();
    let status = std::str::from_utf8(&head[9..12]).unwrap().parse().unwrap();
    (socket, status)
}

#[cfg(unix)]
#[tokio::test]
async fn under_a_low_open_files_limit_streams_past_it_get_503() {
    // 120 files, 1 worker: 40 for the process, 80 for connections, 32 of them kept free of
    // streams. Without the cap, streams would be admitted until accept failed for want of
    // files (about 100), and the next client would wait unanswered.
    let limit = 120;
    let capacity = sse_digits::open_files::Capacity::within(100_000, 1024, 1, limit);
    assert_eq!(capacity.streams, 48);
    let running = start_with_open_files(limit);
    let warning = running
        .startup_lines
        .iter()
        .find(|line| line.contains("WARN") && line.contains("max_streams=48"));
    assert!(warning.is_some(), "{:?}", running.startup_lines);

    let mut held = Vec::new();
    for _ in 0..capacity.streams {
        let (socket, status) = open_stream(&running.addr).await;
        assert_eq!(status, 200);
        held.push(socket);
    }
    // Past the cap: refused with 503, and more than once (refusals give their files back).
    for _ in 0..20 {
        let (_socket, status) = open_stream(&running.addr).await;
        assert_eq!(status, 503);
    }
    serves(&running).await;
    let metrics = reqwest::get(format!("http://{}/metrics", running.addr))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(&format!("\n{} 48\n", names::STREAMS_MAX)),
        "{metrics}"
    );
    // A stream that ends frees its place.
    held.pop();
    let mut status = 503;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let (socket, answered) = open_stream(&running.addr).await;
        status = answered;
        if status == 200 {
            held.push(socket);
            break;
        }
    }
    assert_eq!(status, 200);
}
