//! Bad input gets a clear 4xx with a reason, never a panic or a 5xx, and the server keeps
//! serving afterwards.

use crate::helpers::{read_events, spawn_app};
use sse_digits::telemetry::names;

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
        app.metric(&names::with_labels(
            names::REQUESTS_REJECTED,
            r#"reason="bad_last_event_id""#
        ))
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

/// Every kind of bad input in one table, sent raw (no client-side normalisation), each with
/// the status and a piece of the body it must get. Nothing may answer 5xx, and the server
/// must still stream afterwards.
#[tokio::test]
async fn a_table_of_bad_requests_gets_clear_4xx_answers_and_the_server_keeps_serving() {
    let app = spawn_app().await;
    let huge_id = "1".repeat(5000);
    let long_query = format!("count=1&{}", "x".repeat(20_000));
    // (request line, extra headers, expected status, a piece of the expected body)
    type Case<'a> = (String, Vec<(&'a str, &'a str)>, u16, &'a str);
    let cases: Vec<Case> = vec![
        (
            "GET /digits".into(),
            vec![("Last-Event-ID", "abc")],
            400,
            "Last-Event-ID must be",
        ),
        (
            "GET /digits".into(),
            vec![("Last-Event-ID", "-5")],
            400,
            "Last-Event-ID must be",
        ),
        (
            "GET /digits".into(),
            vec![("Last-Event-ID", &huge_id)],
            400,
            "Last-Event-ID must be",
        ),
        (
            "GET /digits?lastEventId=1e9".into(),
            vec![],
            400,
            "Last-Event-ID must be",
        ),
        (
            "GET /digits?interval_ms=-1".into(),
            vec![],
            400,
            "interval_ms must be",
        ),
        (
            "GET /digits?interval_ms=0".into(),
            vec![],
            400,
            "interval_ms must be",
        ),
        (
            "GET /digits?interval_ms=NaN".into(),
            vec![],
            400,
            "interval_ms must be",
        ),
        ("GET /digits?count=0".into(), vec![], 400, "count must be"),
        (
            "GET /digits?count=18446744073709551616".into(),
            vec![],
            400,
            "count must be",
        ),
        (
            "GET /digits?max_secs=%00".into(),
            vec![],
            400,
            "max_secs must be",
        ),
        (
            "GET /digits?verbose=1".into(),
            vec![],
            400,
            "unknown query parameter",
        ),
        (
            "GET /digits?count=1&count=1".into(),
            vec![],
            400,
            "more than once",
        ),
        (
            format!("GET /digits?{long_query}"),
            vec![],
            400,
            "unknown query parameter",
        ),
        (
            "POST /digits".into(),
            vec![("Content-Length", "0")],
            405,
            "only GET and HEAD",
        ),
        (
            "PUT /healthz".into(),
            vec![("Content-Length", "0")],
            405,
            "only GET and HEAD",
        ),
        ("DELETE /metrics".into(), vec![], 405, "only GET and HEAD"),
        ("GET /../Cargo.toml".into(), vec![], 404, "not found"),
        (
            "GET /%2e%2e/%2e%2e/etc/passwd".into(),
            vec![],
            404,
            "not found",
        ),
        ("GET /..%2f..%2fetc%2fpasswd".into(), vec![], 400, ""),
        (
            "GET /nope/../../etc/passwd".into(),
            vec![],
            404,
            "not found",
        ),
    ];
    for (line, headers, status, body) in &cases {
        let mut request = format!("{line} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n");
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        let response = app.raw(request.as_bytes()).await;
        let shown: String = line.chars().take(60).collect();
        assert_eq!(response.status, *status, "{shown}: {}", response.head);
        assert!(response.body.contains(body), "{shown}: {}", response.body);
        assert!(!response.body.contains("root:") && !response.body.contains("[package]"));
    }
    // Request heads past actix-web's limit are answered 4xx or dropped, never 5xx.
    let oversized = format!(
        "GET /digits HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
        "y".repeat(200_000)
    );
    let response = app.raw(oversized.as_bytes()).await;
    assert!(
        response.status == 0 || (400..500).contains(&response.status),
        "{}",
        response.head
    );
    let mut stream = app.get("/digits").await;
    assert_eq!(read_events(&mut stream, 2).await[1].data, "2");
    drop(stream);
    app.stop().await;
}
