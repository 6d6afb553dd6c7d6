//! A graceful stop ends open streams at once instead of waiting out their completion.

use std::time::Duration;

use openai_mock::MockConfig;
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::helpers::{client, loopback_listener};

#[tokio::test]
async fn shutdown_ends_an_open_stream_without_waiting_for_it() {
    let (listener, address) = loopback_listener().await;
    let config = MockConfig {
        // The completion would take 60 s: the stop must not wait for it.
        ttft: Duration::from_secs(60),
        ..MockConfig::default()
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(openai_mock::serve_with_shutdown(
        listener,
        config,
        async move {
            let _ = stopped.await;
        },
    ));
    let mut response = client()
        .post(format!("http://{address}/v1/chat/completions"))
        .body(r#"{"stream":true}"#)
        .send()
        .await
        .expect("the mock answers");
    assert_eq!(response.status(), 200);
    let role = response
        .chunk()
        .await
        .expect("the role chunk")
        .expect("a chunk");
    assert!(role.starts_with(b"data: "), "{role:?}");

    let asked = Instant::now();
    stop.send(()).expect("the server waits for the signal");
    let result = tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("the server stops long before the completion would end");
    result
        .expect("the server task did not panic")
        .expect("serve returns Ok");
    assert!(asked.elapsed() < Duration::from_secs(10));
    // The body ends (cleanly or cut) with no further data.
    match response.chunk().await {
        Ok(None) | Err(_) => {}
        Ok(Some(more)) => panic!("data after shutdown: {more:?}"),
    }
}
