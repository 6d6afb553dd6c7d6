//! The HTTP side: routes, the key check, and the streamed response. Everything the response
//! carries comes from the pure modules; this file only wires them to axum.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tokio::time::Instant;

use crate::chunk::ChunkHeader;
use crate::completion::Completion;
use crate::error::ApiError;
use crate::stream::{timed_frames, Shutdown};
use crate::{request, MockConfig};

/// Request bodies larger than this are refused; chat requests are far smaller.
const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

/// What every handler shares.
struct AppState {
    /// The pacing and the key.
    config: MockConfig,
    /// Numbers the completion ids, so that each stream's chunks are told apart.
    next_id: AtomicU64,
    /// Ends open streams when the server stops.
    shutdown: Shutdown,
}

/// The mock's routes: `POST /v1/chat/completions`, `GET /healthz`, and a JSON 404 for the rest.
pub fn app(config: MockConfig, shutdown: Shutdown) -> Router {
    let state = Arc::new(AppState {
        config,
        next_id: AtomicU64::new(1),
        shutdown,
    });
    Router::new()
        .route("/v1/chat/completions", post(chat_completions))
        .route("/healthz", get(|| async { "ok" }))
        .fallback(|| async { ApiError::NotFound })
        .with_state(state)
}

/// Streams one completion. The schedule's clock starts before the body is read, so that
/// reading a large prompt counts toward the time to first token, as it would for a real server.
async fn chat_completions(
    State(state): State<Arc<AppState>>,
    request: Request,
) -> Result<Response, ApiError> {
    let start = Instant::now();
    authorize(&state.config, request.headers())?;
    let body = axum::body::to_bytes(request.into_body(), MAX_BODY_BYTES)
        .await
        .map_err(|e| {
            ApiError::MalformedBody(format!("unreadable or over {MAX_BODY_BYTES} bytes: {e}"))
        })?;
    let request = request::parse(&body)?;
    let header = ChunkHeader {
        id: format!(
            "chatcmpl-mock{}",
            state.next_id.fetch_add(1, Ordering::Relaxed)
        ),
        created: unix_seconds(),
        model: request.model.clone(),
    };
    let completion = Completion::new(&state.config, &request, header);
    let body = Body::from_stream(timed_frames(completion, start, state.shutdown.clone()));
    let headers = [
        (CONTENT_TYPE, "text/event-stream"),
        (CACHE_CONTROL, "no-cache"),
    ];
    Ok((headers, body).into_response())
}

/// Checks `Authorization: Bearer <key>` when a key is configured.
fn authorize(config: &MockConfig, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(key) = &config.api_key else {
        return Ok(());
    };
    let given = headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    if given == Some(key.as_str()) {
        Ok(())
    } else {
        Err(ApiError::Unauthorized)
    }
}

/// Unix seconds now, for `created`; a clock before 1970 gives 0 rather than a failure.
fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn with_key(key: &str) -> MockConfig {
        MockConfig {
            api_key: Some(key.into()),
            ..MockConfig::default()
        }
    }

    fn bearer(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn without_a_key_everything_is_authorized() {
        assert_eq!(authorize(&MockConfig::default(), &HeaderMap::new()), Ok(()));
    }

    #[test]
    fn only_the_exact_bearer_key_is_authorized() {
        let config = with_key("sk-1");
        assert_eq!(authorize(&config, &bearer("Bearer sk-1")), Ok(()));
        for wrong in [
            "Bearer sk-2",
            "Bearer sk-1 ",
            "sk-1",
            "Basic sk-1",
            "Bearer ",
        ] {
            assert_eq!(
                authorize(&config, &bearer(wrong)),
                Err(ApiError::Unauthorized),
                "{wrong:?}"
            );
        }
        assert_eq!(
            authorize(&config, &HeaderMap::new()),
            Err(ApiError::Unauthorized)
        );
    }
}
