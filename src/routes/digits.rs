//! `GET /digits`: the event stream.

use actix_web::http::header::{self, ContentEncoding, HeaderValue};
use actix_web::http::{ConnectionType, Method, StatusCode, Version};
use actix_web::{web, HttpRequest, HttpResponse};

use super::AppState;
use crate::digits::{decide, Decision, DigitsStream};

/// The SSE media type this endpoint always answers with.
pub const CONTENT_TYPE: &str = "text/event-stream; charset=utf-8";

/// Plans the request and answers with a stream, 204 (already finished), 400 (bad input) or
/// 503 (too many streams). `HEAD` gets the stream's headers without opening one.
pub async fn digits(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let last_event_id = req
        .headers()
        .get("last-event-id")
        .map(HeaderValue::as_bytes);
    let plan = match decide(req.query_string(), last_event_id, &state.defaults) {
        Ok(Decision::Stream(plan)) => plan,
        Ok(Decision::Finished) => {
            state.metrics.count_resumed_past_end();
            return HttpResponse::NoContent().finish();
        }
        Err(rejection) => {
            state.metrics.count_rejection(rejection.reason());
            tracing::debug!(reason = rejection.reason(), %rejection, "rejected /digits request");
            return plain_error(StatusCode::BAD_REQUEST, &rejection.to_string());
        }
    };
    if state.shutdown.is_triggered() {
        state.metrics.count_rejection("shutting_down");
        return unavailable(plan.retry_ms, "the server is shutting down");
    }
    if req.method() == Method::HEAD {
        return stream_headers(&mut HttpResponse::Ok()).finish();
    }
    let Some(permit) = state.limit.try_acquire() else {
        state.metrics.count_rejection("too_many_streams");
        return unavailable(plan.retry_ms, "too many open streams");
    };
    let tracker = state.metrics.stream_started(permit);
    let stream = DigitsStream::new(plan, state.shutdown.clone(), tracker);
    let mut response = stream_headers(&mut HttpResponse::Ok()).streaming(stream);
    if req.version() < Version::HTTP_11 {
        // HTTP/1.0 has no chunked encoding (actix would use it anyway): the body runs to
        // the close of the connection instead.
        let head = response.head_mut();
        head.no_chunking(true);
        head.set_connection_type(ConnectionType::Close);
    }
    response
}

fn stream_headers(
    builder: &mut actix_web::HttpResponseBuilder,
) -> &mut actix_web::HttpResponseBuilder {
    builder
        .insert_header((header::CONTENT_TYPE, CONTENT_TYPE))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        // nginx and similar proxies buffer responses unless told not to.
        .insert_header(("x-accel-buffering", "no"))
        // Keeps any compression middleware from buffering the stream.
        .insert_header(ContentEncoding::Identity)
}

/// 503 with `Retry-After` (whole seconds, rounded up from the retry hint), closing the
/// connection: a refused client that kept it open would hold a file of the very limit it
/// was refused for.
fn unavailable(retry_ms: u64, reason: &str) -> HttpResponse {
    let mut response = plain_error(StatusCode::SERVICE_UNAVAILABLE, reason);
    let retry_after_secs = retry_ms.div_ceil(1000).max(1);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
    response
        .head_mut()
        .set_connection_type(ConnectionType::Close);
    response
}

/// A plain-text error body with a trailing newline, readable with curl.
pub fn plain_error(status: StatusCode, message: &str) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/plain; charset=utf-8")
        .body(format!("{message}\n"))
}

/// 405 for methods other than GET and HEAD, naming the allowed ones.
pub async fn method_not_allowed(state: web::Data<AppState>) -> HttpResponse {
    state.metrics.count_rejection("method_not_allowed");
    let mut response = plain_error(
        StatusCode::METHOD_NOT_ALLOWED,
        "only GET and HEAD are allowed here",
    );
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
    response
}
