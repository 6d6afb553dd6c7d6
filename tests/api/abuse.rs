//! Abusive clients: slow headers, many short-lived connections, clients that stop reading. The server answers or drops
//! them without holding a worker, and its books balance afterwards.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{read_events, spawn_app_with, TIMEOUT};
use sse_digits::telemetry::names;

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_cut_off_and_others_are_served_meanwhile() {
    let app = spawn_app_with(|c| c.request_timeout_ms = 300).await;
    let mut slow = TcpStream::connect(app.addr).await.unwrap();
    slow.write_all(b"GET /digits HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    // One worker: if the slow client held it, this stream would not start.
    let mut served = app.get("/digits").await;
    assert_eq!(read_events(&mut served, 1).await[0].data, "1");
    let started = Instant::now();
    let mut answer = Vec::new();
    tokio::time::timeout(TIMEOUT, slow.read_to_end(&mut answer))
        .await
        .expect("the slow client was never cut off")
        .ok();
    let waited = started.elapsed();
    // Seconds of slack over the 300 ms timeout for a loaded machine; a client never cut off
    // fails on TIMEOUT above.
    assert!(waited < Duration::from_secs(5), "cut off after {waited:?}");
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );
    drop(served);
    app.stop().await;
}

#[tokio::test]
async fn after_ten_thousand_connect_and_leave_cycles_no_stream_is_left_open() {
    const CYCLES: usize = 10_000;
    const CONCURRENCY: usize = 100;
    let app = spawn_app_with(|c| c.count = 1_000_000).await;
    let addr = app.addr;
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..CONCURRENCY {
        tasks.spawn(async move {
            for _ in (worker..CYCLES).step_by(CONCURRENCY) {
                let mut socket = TcpStream::connect(addr).await.unwrap();
                socket
                    .write_all(b"GET /digits HTTP/1.1\r\nHost: x\r\n\r\n")
                    .await
                    .unwrap();
                // Wait for the first bytes (the stream is open), then vanish.
                let mut first = [0u8; 64];
                let read = socket.read(&mut first).await.unwrap();
                assert!(read > 0);
            }
        });
    }
    tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(result) = tasks.join_next().await {
            result.unwrap();
        }
    })
    .await
    .expect("the cycles finished in time");
    assert_eq!(app.metric(names::STREAMS_STARTED).await, CYCLES as f64);
    // Each vanished client is noticed at its stream's next write (20 ms here).
    app.wait_for_metric(names::STREAMS_OPEN, |open| open == 0.0)
        .await;
    app.wait_for_metric(
        &names::with_labels(names::STREAMS_ENDED, r#"reason="client_gone""#),
        |n| n == CYCLES as f64,
    )
    .await;
    app.stop().await;
}

#[tokio::test]
async fn a_client_that_stops_reading_is_cut_off_after_the_write_stall_timeout() {
    let app = spawn_app_with(|c| {
        c.write_stall_ms = 500;
        // Events as fast as the connection takes them fill every buffer at once.
        c.limits.min_interval_ms = 0;
    })
    .await;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stalled = socket.connect(app.addr).await.unwrap();
    stalled
        .write_all(b"GET /digits?interval_ms=0&count=1000000000 HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    // Never read: the window closes, the server's buffers fill, writes stop.
    let started = Instant::now();
    app.wait_for_metric(
        &names::with_labels(names::STREAMS_ENDED, r#"reason="write_stalled""#),
        |n| n == 1.0,
    )
    .await;
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(500),
        "cut off after {waited:?}"
    );
    assert_eq!(app.metric(names::STREAMS_OPEN).await, 0.0);
    // A reading client on the same server is unaffected.
    let mut reader = app.get("/digits?interval_ms=20").await;
    assert_eq!(read_events(&mut reader, 3).await[2].data, "3");
    drop((stalled, reader));
    app.stop().await;
}
