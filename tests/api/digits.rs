//! The stream itself: headers, events in order, bye and the end, resume, 204.

use std::time::Duration;

use crate::helpers::{datas, read_all_events, read_events, spawn_app, spawn_app_with};
use sse_digits::telemetry::names;

#[tokio::test]
async fn answers_with_the_sse_headers() {
    let app = spawn_app().await;
    let response = app.get("/digits").await;
    assert_eq!(response.status(), 200);
    let headers = response.headers();
    assert_eq!(headers["content-type"], "text/event-stream; charset=utf-8");
    assert_eq!(headers["cache-control"], "no-cache");
    assert_eq!(headers["x-accel-buffering"], "no");
    assert_eq!(headers["content-encoding"], "identity");
    assert!(headers.get("content-length").is_none());
    drop(response);
    app.stop().await;
}

#[tokio::test]
async fn sends_retry_then_numbered_events_in_order_then_bye_and_ends() {
    let app = spawn_app().await;
    let response = app.get("/digits?count=5&interval_ms=10").await;
    let (text, events) = read_all_events(response).await;
    assert_eq!(
        text,
        "retry: 3000\n\nid: 1\ndata: 1\n\nid: 2\ndata: 2\n\nid: 3\ndata: 3\n\n\
         id: 4\ndata: 4\n\nid: 5\nevent: bye\ndata: bye-bye\n\n"
    );
    let last = events.last().unwrap();
    assert_eq!(
        (last.event_type.as_str(), last.last_event_id.as_str()),
        ("bye", "5")
    );
    app.stop().await;
}

#[tokio::test]
async fn the_first_events_come_one_interval_apart() {
    let app = spawn_app().await;
    let started = std::time::Instant::now();
    let mut response = app.get("/digits?interval_ms=100&count=100").await;
    let events = read_events(&mut response, 3).await;
    let elapsed = started.elapsed();
    assert_eq!(datas(&events), ["1", "2", "3"]);
    let ids: Vec<&str> = events.iter().map(|e| e.last_event_id.as_str()).collect();
    assert_eq!(ids, ["1", "2", "3"]);
    // Event 3 is due 200 ms after the first: not before, and not much later here.
    assert!(elapsed >= Duration::from_millis(200), "{elapsed:?}");
    drop(response);
    app.stop().await;
}

#[tokio::test]
async fn resumes_after_last_event_id_from_the_header_or_the_query() {
    let app = spawn_app().await;
    let (_, events) = read_all_events(app.get_with_last_event_id("/digits", "7").await).await;
    assert_eq!(datas(&events), ["8", "9", "bye-bye"]);
    let (_, events) = read_all_events(app.get("/digits?lastEventId=8").await).await;
    assert_eq!(datas(&events), ["9", "bye-bye"]);
    // A browser reconnects with its original URL: the header carries the real position.
    let (_, events) = read_all_events(
        app.get_with_last_event_id("/digits?lastEventId=1", "8")
            .await,
    )
    .await;
    assert_eq!(datas(&events), ["9", "bye-bye"]);
    app.stop().await;
}

#[tokio::test]
async fn a_client_past_the_end_gets_204_so_it_stops_reconnecting() {
    let app = spawn_app().await;
    for id in ["10", "11", "18446744073709551615"] {
        let response = app.get_with_last_event_id("/digits", id).await;
        assert_eq!(response.status(), 204, "Last-Event-ID {id}");
        assert!(response.bytes().await.unwrap().is_empty());
    }
    assert_eq!(app.metric(names::RESUMED_PAST_END).await, 3.0);
    app.stop().await;
}

#[tokio::test]
async fn max_secs_ends_the_stream_with_a_retry_hint_and_the_client_can_resume() {
    let app = spawn_app_with(|c| c.count = 1000).await;
    let (text, events) = read_all_events(app.get("/digits?interval_ms=300&max_secs=1").await).await;
    assert!(text.ends_with("\n\nretry: 3000\n\n"), "{text}");
    // Due at 0, 300, 600 and 900 ms; the close is at 1000 ms (a loaded machine may push
    // the fourth past it, so the check is on order, not count).
    let received: Vec<u64> = events.iter().map(|e| e.data.parse().unwrap()).collect();
    assert!(received.len() >= 3, "{received:?}");
    assert!(
        received.iter().copied().eq(1..=received.len() as u64),
        "{received:?}"
    );
    let last_id = events.last().unwrap().last_event_id.clone();
    let mut resumed = app.get_with_last_event_id("/digits", &last_id).await;
    let next = (received.len() + 1).to_string();
    assert_eq!(datas(&read_events(&mut resumed, 1).await), [next.as_str()]);
    drop(resumed);
    app.stop().await;
}

#[tokio::test]
async fn head_gives_the_stream_headers_without_opening_a_stream() {
    let app = spawn_app().await;
    let response = app.client.head(app.url("/digits")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/event-stream; charset=utf-8"
    );
    assert_eq!(app.metric(names::STREAMS_STARTED).await, 0.0);
    app.stop().await;
}

#[tokio::test]
async fn an_http_1_0_client_gets_the_stream_unchunked_until_the_close() {
    let app = spawn_app().await;
    let response = app
        .raw(b"GET /digits?count=3&interval_ms=10 HTTP/1.0\r\n\r\n")
        .await;
    assert_eq!(response.status, 200, "{}", response.head);
    let head = response.head.to_ascii_lowercase();
    assert!(head.starts_with("http/1.0 200"), "{head}");
    assert!(!head.contains("transfer-encoding"), "{head}");
    assert!(head.contains("text/event-stream"), "{head}");
    // The body is the events as written, ended by the server closing the connection.
    assert_eq!(
        response.body,
        "retry: 3000\n\nid: 1\ndata: 1\n\nid: 2\ndata: 2\n\nid: 3\nevent: bye\ndata: bye-bye\n\n"
    );
    app.stop().await;
}
