//! Requests the mock refuses, each with OpenAI's error shape; and the small routes.

use openai_mock::MockConfig;
use serde_json::Value;

use crate::helpers::spawn_mock;

const STREAM: &str = r#"{"stream":true,"max_tokens":1}"#;

/// Checks the status and that the body is `{"error":{"message":…,"type":…}}`.
async fn assert_error(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status(), status);
    assert_eq!(response.headers()["content-type"], "application/json");
    let text = response.text().await.expect("an error body");
    let body: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(body["error"]["type"], "invalid_request_error", "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");
    body
}

fn with_key(key: &str) -> MockConfig {
    MockConfig {
        ttft: std::time::Duration::ZERO,
        api_key: Some(key.into()),
        ..MockConfig::default()
    }
}

#[tokio::test]
async fn a_wrong_or_missing_key_gets_401_and_never_sees_the_key() {
    let mock = spawn_mock(with_key("sk-right")).await;
    for key in [Some("sk-wrong"), None] {
        let body = assert_error(mock.post(STREAM, key).await, 401).await;
        assert_eq!(body["error"]["code"], "invalid_api_key");
        assert!(!body.to_string().contains("sk-right"), "{body}");
    }
    let right = mock.post(STREAM, Some("sk-right")).await;
    assert_eq!(right.status(), 200);
}

#[tokio::test]
async fn a_key_is_checked_before_the_body() {
    let mock = spawn_mock(with_key("sk-right")).await;
    assert_error(mock.post("{", Some("sk-wrong")).await, 401).await;
}

#[tokio::test]
async fn requests_that_do_not_stream_get_400() {
    let mock = spawn_mock(MockConfig::default()).await;
    for body in [r#"{"stream":false}"#, r#"{"model":"m","messages":[]}"#] {
        assert_error(mock.post(body, None).await, 400).await;
    }
}

#[tokio::test]
async fn malformed_json_gets_400() {
    let mock = spawn_mock(MockConfig::default()).await;
    for body in ["{", "", "[1,2]", r#"{"stream":"yes"}"#, "\u{0}\u{ff}"] {
        assert_error(mock.post(body, None).await, 400).await;
    }
}

#[tokio::test]
async fn healthz_is_ok_and_unknown_paths_are_404() {
    let mock = spawn_mock(with_key("sk-right")).await;
    let health = mock.client.get(mock.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200, "no key needed");
    assert_eq!(health.text().await.unwrap(), "ok");
    let missing = mock
        .client
        .get(mock.url("/v1/models"))
        .send()
        .await
        .unwrap();
    assert_error(missing, 404).await;
}
