//! A streamed completion: the chunks in order, and their timing.

use std::time::Duration;

use openai_mock::MockConfig;
use serde_json::json;
use tokio::time::Instant;

use crate::helpers::{read_events, spawn_mock};

/// How late an event may be on a loaded machine before the test calls it wrong.
const SLACK: Duration = Duration::from_secs(2);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[tokio::test]
async fn a_streamed_completion_has_role_tokens_finish_usage_done_on_time() {
    let mock = spawn_mock(MockConfig {
        ttft: ms(100),
        tokens_per_sec: 20.0,
        tokens_per_event: 1,
        output_tokens: 10,
        api_key: None,
    })
    .await;
    let body = json!({
        "model": "test-model",
        "stream": true,
        "stream_options": {"include_usage": true},
        "messages": [{"role": "user", "content": "count to ten please"}],
    });
    let sent = Instant::now();
    let response = mock.post(&body.to_string(), None).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    assert_eq!(response.headers()["cache-control"], "no-cache");
    let events = read_events(response, sent).await;
    assert_eq!(events.len(), 1 + 10 + 1 + 1 + 1, "{events:#?}");

    let chunks: Vec<_> = events[..13].iter().map(|e| e.json()).collect();
    let id = chunks[0]["id"].as_str().expect("an id");
    assert!(id.starts_with("chatcmpl-"), "{id}");
    for chunk in &chunks {
        assert_eq!(chunk["id"], id);
        assert_eq!(chunk["object"], "chat.completion.chunk");
        assert_eq!(chunk["model"], "test-model");
        assert!(chunk["created"].as_u64().is_some_and(|t| t > 1_600_000_000));
    }

    assert_eq!(
        chunks[0]["choices"],
        json!([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": null}])
    );
    for (k, chunk) in chunks[1..=10].iter().enumerate() {
        assert_eq!(
            chunk["choices"],
            json!([{"index": 0, "delta": {"content": format!("tok{} ", k + 1)}, "finish_reason": null}]),
            "token {k}"
        );
    }
    assert_eq!(
        chunks[11]["choices"],
        json!([{"index": 0, "delta": {}, "finish_reason": "stop"}])
    );
    assert_eq!(chunks[12]["choices"], json!([]));
    assert_eq!(
        chunks[12]["usage"],
        json!({"prompt_tokens": 4, "completion_tokens": 10, "total_tokens": 14})
    );
    assert_eq!(events[13].data, "[DONE]");

    // Lower bounds hold whatever the load: the mock never sends early. The upper bounds
    // only catch a mock that ignores its schedule.
    let first = events[1].at;
    let last = events[10].at;
    assert!(first >= ms(100), "first token after {first:?}");
    assert!(first < ms(100) + SLACK, "first token after {first:?}");
    assert!(last >= ms(100 + 9 * 50), "last token after {last:?}");
    assert!(last < ms(100 + 9 * 50) + SLACK, "last token after {last:?}");
    for pair in events[1..=10].windows(2) {
        assert!(pair[0].at <= pair[1].at, "{events:#?}");
    }
}

#[tokio::test]
async fn batched_tokens_capped_by_max_tokens_end_with_length() {
    let mock = spawn_mock(MockConfig {
        ttft: ms(0),
        tokens_per_sec: 1000.0,
        tokens_per_event: 3,
        output_tokens: 10,
        api_key: None,
    })
    .await;
    let sent = Instant::now();
    let response = mock.post(r#"{"stream":true,"max_tokens":7}"#, None).await;
    assert_eq!(response.status(), 200);
    let events = read_events(response, sent).await;
    let data: Vec<_> = events.iter().map(|e| e.data.as_str()).collect();
    assert_eq!(data.len(), 1 + 3 + 1 + 1, "{data:#?}");
    let contents: Vec<_> = events[1..4]
        .iter()
        .map(|e| e.json()["choices"][0]["delta"]["content"].clone())
        .collect();
    assert_eq!(contents, ["tok1 tok2 tok3 ", "tok4 tok5 tok6 ", "tok7 "]);
    let finish = events[4].json();
    assert_eq!(finish["choices"][0]["finish_reason"], "length");
    assert_eq!(finish["model"], "mock", "the default model is echoed");
    assert!(finish.get("usage").is_none(), "usage only when asked for");
    assert_eq!(data[5], "[DONE]");
}

#[tokio::test]
async fn concurrent_streams_get_distinct_ids() {
    let mock = spawn_mock(MockConfig {
        ttft: ms(0),
        output_tokens: 1,
        ..MockConfig::default()
    })
    .await;
    let body = r#"{"stream":true}"#;
    let (a, b) = tokio::join!(mock.post(body, None), mock.post(body, None));
    let sent = Instant::now();
    let (a, b) = tokio::join!(read_events(a, sent), read_events(b, sent));
    assert_ne!(a[0].json()["id"], b[0].json()["id"]);
}
