//! A graceful stop ends every stream with a retry hint, promptly.
//!
//! Promptly is told apart from "at actix's shutdown timeout" by what a stream receives, not
//! by wall-clock bounds a loaded machine can break: a stream the drain ends gets the retry
//! hint last, a connection the shutdown timeout cuts gets nothing more. Where time is the
//! only witness, the bound is seconds away from the alternative.

use std::time::{Duration, Instant};

use crate::helpers::{read_all_events, read_events, spawn_app_with, TestApp, TIMEOUT};

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

/// Connects until the server refuses, which must happen within [`TIMEOUT`].
async fn refused_soon(addr: std::net::SocketAddr) {
    let started = Instant::now();
    loop {
        match tokio::net::TcpStream::connect(addr).await {
            Err(_) => return,
            Ok(accepted) => drop(accepted),
        }
        assert!(
            started.elapsed() < TIMEOUT,
            "still accepting while draining"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
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
    // A long drain, so the listener's close is seen while the streams are still open.
    let app = spawn_app_with(|c| {
        c.count = 100_000;
        c.interval_ms = 50;
        c.drain_ms = 2000;
    })
    .await;
    let streams = open_streams(&app, 5).await;
    let handle = app.handle.clone();
    let stopping = tokio::spawn(async move { handle.stop().await });
    // New clients are refused during the drain, not left waiting in an accept queue.
    refused_soon(app.addr).await;
    assert!(
        app.handle.streams_open() > 0,
        "the streams had closed before the listener did"
    );
    each_ends_with_a_retry_hint(streams).await;
    tokio::time::timeout(TIMEOUT, stopping)
        .await
        .expect("the stop ended")
        .unwrap();
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
    let stopping = tokio::spawn(async move { handle.stop().await });
    // Unwoken, they would be cut at the shutdown timeout without the hint.
    each_ends_with_a_retry_hint(streams).await;
    stopping.await.unwrap();
    app.stop().await;
}

#[tokio::test]
async fn stop_closes_idle_keep_alive_connections_at_once() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    // A scraper's connection, idle between requests: the stop must not wait for its
    // keep-alive timeout (5 s), nor for the worker's shutdown timeout (the drain + 2 s).
    let app = spawn_app_with(|c| c.drain_ms = 8000).await;
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
    assert!(close_took < Duration::from_secs(4), "{close_took:?}");
    stopping.await.unwrap();
    // With no stream open the stop does not wait out the drain window either.
    assert!(
        started.elapsed() < Duration::from_secs(7),
        "{:?}",
        started.elapsed()
    );
    app.stop().await;
}
