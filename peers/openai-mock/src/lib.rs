//! A small mock of OpenAI's streaming chat completions (`POST /v1/chat/completions` with
//! `"stream": true`) whose timing is exact and configurable, so that a load test's LLM
//! measurements (time to first token, inter-token latency, tokens per second) can be checked
//! against what the mock was told to do.
//!
//! The components:
//! - [`MockConfig`]: the pacing (time to first token, tokens per second, tokens per chunk,
//!   tokens per completion) and an optional API key.
//! - `schedule`: when each token is due, and how tokens group into chunks.
//! - `chunk`: the `chat.completion.chunk` JSON, framed as SSE `data:` events.
//! - `request`: the few request fields that change what is sent.
//! - `completion`: one request's whole stream as frames with due times.
//! - `stream`: the frames written on a drift-free schedule, ending at shutdown.
//! - `server`: the axum routes; [`router`], [`serve`] and [`serve_with_shutdown`] expose them.

mod chunk;
mod completion;
mod config;
mod error;
mod request;
mod schedule;
mod server;
mod stream;

use std::future::Future;

use axum::serve::ListenerExt as _;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use config::MockConfig;

/// The mock's routes, for tests that serve them on their own listener or call them in-process.
/// Streams from this router never see a shutdown signal: they end with their completion.
/// Over TCP, prefer [`serve`], which also sets `TCP_NODELAY` so no token waits for an ACK.
pub fn router(config: MockConfig) -> axum::Router {
    server::app(config, stream::Shutdown::never())
}

/// Serves the mock on `listener` forever.
///
/// # Errors
/// Returns an error only when the server itself fails; failures of single connections are not
/// errors of the server.
pub async fn serve(listener: TcpListener, config: MockConfig) -> std::io::Result<()> {
    serve_with_shutdown(listener, config, std::future::pending()).await
}

/// Serves the mock on `listener` until `signal` resolves, then stops accepting, ends every
/// open stream at once (without `[DONE]`) and returns when the connections have closed.
///
/// # Errors
/// As [`serve`].
pub async fn serve_with_shutdown(
    listener: TcpListener,
    config: MockConfig,
    signal: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop, receiver) = watch::channel(false);
    let app = server::app(config, stream::Shutdown::from_receiver(receiver));
    // Small chunks must leave when written: Nagle's algorithm would hold a token back until
    // the previous one is acknowledged and blur the timing under test. A socket that refuses
    // the option still serves correctly, only with that blur, so the error is not fatal.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            signal.await;
            // The receivers live in the router, which outlives this future: sending succeeds.
            let _ = stop.send(true);
        })
        .await
}
