//! A graceful stop ends every stream with a retry hint, promptly.

use std::time::{Duration, Instant};

use crate::helpers::{read_all_events, read_events, spawn_app_with, TestApp};

/// `n` streams, each past its first event.
async fn open_streams(app: &TestApp, n: usize) -> Vec<reqwest::Response> {
    let mut streams = Vec::new();
    for _ in 0..n {
        let mut response = app.get("/digits").await;
        read_events(&mut response, 1).await;
        streams.push(response);
    }
    streams
}

/// Reads every stream to its end; each must end with the retry hint.
async fn each_ends_with_a_retry_hint(streams: Vec<reqwest::Response>) {
    for response in streams {
        let (text, _) = read_all_events(response).await;
        assert!(text.ends_with("retry: 3000\n\n"), "{text}");
    }
}

#[tokio::test]
async fn stop_sends_each_stream_a_retry_hint_and_ends_it_within_the_drain_window() {
    let app = spawn_app_with(|c| {
        c.count = 100_000;
        c.interval_ms = 50;
        c.drain_ms = 300;
    })
    .await;
    let streams = open_streams(&app, 5).await;
    let handle = app.handle.clone();
    let started = Instant::now();
    let stopping = tokio::spawn(async move { handle.stop().await });
    // New clients are refused during the drain, not left waiting in an accept queue.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let refused = tokio::net::TcpStream::connect(app.addr).await;
    assert!(
        refused.is_err(),
        "a new connection was accepted while draining"
    );
    each_ends_with_a_retry_hint(streams).await;
    let all_closed = started.elapsed();
    stopping.await.unwrap();
    let stopped = started.elapsed();
    assert!(all_closed < Duration::from_millis(1500), "{all_closed:?}");
    assert!(stopped < Duration::from_secs(5), "stop took {stopped:?}");
    app.stop().await;
}

#[tokio::test]
async fn stop_wakes_streams_asleep_until_a_distant_event() {
    // An hour between events and a long keep-alive: nothing but the stop can wake them.
    let app = spawn_app_with(|c| {
        c.interval_ms = 3_600_000;
        c.keepalive_secs = 600;
        c.drain_ms = 300;
    })
    .await;
    let streams = open_streams(&app, 3).await;
    let handle = app.handle.clone();
    let started = Instant::now();
    let stopping = tokio::spawn(async move { handle.stop().await });
    each_ends_with_a_retry_hint(streams).await;
    let all_closed = started.elapsed();
    assert!(all_closed < Duration::from_millis(1500), "{all_closed:?}");
    stopping.await.unwrap();
    app.stop().await;
}

#[tokio::test]
async fn stop_closes_idle_keep_alive_connections_at_once() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    // A scraper's connection, idle between requests: the stop must not wait for its
    // keep-alive timeout, nor for the worker's shutdown timeout.
    let app = spawn_app_with(|c| c.drain_ms = 300).await;
    let mut idle = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let mut answer = vec![0; 1024];
    let n = idle.read(&mut answer).await.unwrap();
    assert!(answer[..n].starts_with(b"HTTP/1.1 200"), "{answer:?}");
    let handle = app.handle.clone();
    let started = Instant::now();
    let stopping = tokio::spawn(async move { handle.stop().await });
    let closed = tokio::time::timeout(Duration::from_secs(5), idle.read(&mut answer))
        .await
        .expect("the idle connection stayed open");
    assert_eq!(
        closed.unwrap(),
        0,
        "expected the server to close, not to send"
    );
    let close_took = started.elapsed();
    assert!(close_took < Duration::from_millis(500), "{close_took:?}");
    stopping.await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    app.stop().await;
}
