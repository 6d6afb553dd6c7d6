//! A graceful stop ends every stream with a retry hint, promptly.

use std::time::{Duration, Instant};

use crate::helpers::{read_all_events, read_events, spawn_app_with};

#[tokio::test]
async fn stop_sends_each_stream_a_retry_hint_and_ends_it_within_the_drain_window() {
    let app = spawn_app_with(|c| {
        c.count = 100_000;
        c.interval_ms = 50;
        c.drain_ms = 300;
    })
    .await;
    let mut streams = Vec::new();
    for _ in 0..5 {
        let mut response = app.get("/digits").await;
        read_events(&mut response, 1).await;
        streams.push(response);
    }
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
    for response in streams {
        let (text, _) = read_all_events(response).await;
        assert!(text.ends_with("retry: 3000\n\n"), "{text}");
    }
    let all_closed = started.elapsed();
    stopping.await.unwrap();
    let stopped = started.elapsed();
    assert!(all_closed < Duration::from_millis(1500), "{all_closed:?}");
    assert!(stopped < Duration::from_secs(5), "stop took {stopped:?}");
    app.stop().await;
}
