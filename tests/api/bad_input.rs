//! Bad input gets a clear 4xx with a reason, never a panic or a 5xx, and the server keeps
//! serving afterwards.

use crate::helpers::{read_events, spawn_app};

#[tokio::test]
async fn malformed_last_event_ids_get_400_with_the_reason() {
    let app = spawn_app().await;
    let huge = "9".repeat(4000);
    for id in [
        "abc",
        "-1",
        "1.0",
        "0x1",
        "18446744073709551616",
        huge.as_str(),
    ] {
        let response = app.get_with_last_event_id("/digits", id).await;
        assert_eq!(response.status(), 400, "Last-Event-ID {id:.20}");
        let body = response.text().await.unwrap();
        assert!(body.starts_with("Last-Event-ID must be"), "{body}");
        assert!(
            body.len() < 200,
            "the error echoes too much: {} bytes",
            body.len()
        );
    }
    let response = app.get("/digits?lastEventId=x").await;
    assert_eq!(response.status(), 400);
    assert_eq!(
        app.metric("sse_requests_rejected_total{reason=\"bad_last_event_id\"}")
            .await,
        7.0
    );
    app.stop().await;
}

#[tokio::test]
async fn bad_query_values_get_400_naming_the_parameter_and_range() {
    let app = spawn_app().await;
    let cases = [
        (
            "interval_ms=0",
            "interval_ms must be a whole number in 1..=3600000",
        ),
        (
            "interval_ms=-1",
            "interval_ms must be a whole number in 1..=3600000",
        ),
        (
            "interval_ms=abc",
            "interval_ms must be a whole number in 1..=3600000",
        ),
        ("interval_ms=99999999999999999999999", "interval_ms must be"),
        ("count=0", "count must be a whole number in 1..=1000000000"),
        (
            "count=1e3",
            "count must be a whole number in 1..=1000000000",
        ),
        ("max_secs=0", "max_secs must be a whole number in 1..=86400"),
        (
            "max_secs=86401",
            "max_secs must be a whole number in 1..=86400",
        ),
        (
            "count=1&count=2",
            "query parameter count given more than once",
        ),
        ("intervall_ms=5", "unknown query parameter \"intervall_ms\""),
    ];
    for (query, expected) in cases {
        let response = app.get(&format!("/digits?{query}")).await;
        assert_eq!(response.status(), 400, "{query}");
        assert_eq!(
            response.headers()["content-type"],
            "text/plain; charset=utf-8"
        );
        let body = response.text().await.unwrap();
        assert!(body.contains(expected), "{query}: {body}");
    }
    // Still serving.
    let mut response = app.get("/digits").await;
    assert_eq!(read_events(&mut response, 1).await[0].data, "1");
    drop(response);
    app.stop().await;
}

#[tokio::test]
async fn a_non_utf8_last_event_id_header_gets_400() {
    let app = spawn_app().await;
    let response = app
        .raw(b"GET /digits HTTP/1.1\r\nHost: x\r\nLast-Event-ID: \xff\xfe\r\nConnection: close\r\n\r\n")
        .await;
    assert_eq!(response.status, 400, "{response:?}");
    assert!(
        response.body.contains("Last-Event-ID must be"),
        "{response:?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn other_methods_get_405_with_allow() {
    let app = spawn_app().await;
    for method in [
        reqwest::Method::POST,
        reqwest::Method::PUT,
        reqwest::Method::DELETE,
    ] {
        let response = app
            .client
            .request(method.clone(), app.url("/digits"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 405, "{method}");
        assert_eq!(response.headers()["allow"], "GET, HEAD");
    }
    app.stop().await;
}

#[tokio::test]
async fn garbage_and_oversized_requests_are_answered_not_crashed_on() {
    let app = spawn_app().await;
    let response = app.raw(b"NOT HTTP AT ALL\r\n\r\n").await;
    assert_eq!(response.status, 400, "{response:?}");
    let long_url = format!(
        "GET /digits?{} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    let response = app.raw(long_url.as_bytes()).await;
    assert!(
        (400..500).contains(&response.status) || response.status == 0,
        "{:?}",
        response.head
    );
    let mut stream = app.get("/digits").await;
    assert_eq!(read_events(&mut stream, 1).await[0].data, "1");
    drop(stream);
    app.stop().await;
}
