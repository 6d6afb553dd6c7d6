//! `/healthz`, `/metrics` following a stream's life, and the stream limit.

use crate::helpers::{read_events, spawn_app, spawn_app_with};
use sse_digits::telemetry::names;

#[tokio::test]
async fn healthz_answers_ok() {
    let app = spawn_app().await;
    let response = app.get("/healthz").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "ok\n");
    app.stop().await;
}

#[tokio::test]
async fn metrics_show_an_open_stream_then_zero_after_the_client_leaves() {
    let app = spawn_app().await;
    assert_eq!(app.metric(names::STREAMS_OPEN).await, 0.0);
    let mut response = app.get("/digits?count=1000").await;
    read_events(&mut response, 2).await;
    assert_eq!(app.metric(names::STREAMS_OPEN).await, 1.0);
    assert!(app.metric(names::EVENTS_SENT).await >= 2.0);
    assert!(app.metric(names::BYTES_SENT).await > 0.0);
    // Every event sent is counted in the lateness histogram too (read first: the count of
    // events sent only grows meanwhile).
    let timed = app
        .metric(&format!("{}_count", names::EVENT_LATENESS))
        .await;
    let events = app.metric(names::EVENTS_SENT).await;
    assert!(
        timed >= 2.0 && timed <= events,
        "{timed} timed, {events} sent"
    );
    drop(response);
    // The server notices the departure at its next write (20 ms here).
    app.wait_for_metric(names::STREAMS_OPEN, |open| open == 0.0)
        .await;
    assert_eq!(
        app.metric(&names::with_labels(
            names::STREAMS_ENDED,
            r#"reason="client_gone""#
        ))
        .await,
        1.0
    );
    app.stop().await;
}

#[tokio::test]
async fn past_max_connections_the_answer_is_503_with_retry_after() {
    let app = spawn_app_with(|c| c.max_connections = 2).await;
    assert_eq!(app.metric(names::STREAMS_MAX).await, 2.0);
    let mut first = app.get("/digits?count=1000").await;
    let mut second = app.get("/digits?count=1000").await;
    read_events(&mut first, 1).await;
    read_events(&mut second, 1).await;
    let refused = app.get("/digits").await;
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "3");
    assert_eq!(refused.headers()["connection"], "close");
    assert_eq!(refused.text().await.unwrap(), "too many open streams\n");
    drop(first);
    app.wait_for_metric(names::STREAMS_OPEN, |open| open < 2.0)
        .await;
    let mut admitted = app.get("/digits").await;
    assert_eq!(read_events(&mut admitted, 1).await[0].data, "1");
    drop((second, admitted));
    app.stop().await;
}
