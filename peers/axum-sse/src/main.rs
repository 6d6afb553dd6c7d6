//! The digits stream written the idiomatic way with axum's `Sse`: a tokio interval per
//! stream, an owned `Event` per tick, axum's own `KeepAlive` timer. It exists only to be
//! measured side by side with sse-digits (and lab-sse) under the same load test.
//!
//! Usage: `axum-sse [BIND] [WORKERS]` (default `127.0.0.1:8082`, 1 worker thread);
//! `GET /digits` takes `interval_ms`, `count` and `Last-Event-ID` like sse-digits.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::Query;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use axum::serve::ListenerExt as _;
use axum::Router;
use futures_util::stream::{self, Stream, StreamExt as _};
use tokio::net::TcpSocket;
use tokio_stream::wrappers::IntervalStream;

async fn digits(
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let number = |key: &str, default: u64| {
        query
            .get(key)
            .and_then(|value| value.parse().ok())
            .unwrap_or(default)
    };
    let interval = Duration::from_millis(number("interval_ms", 1000).max(1));
    let count = number("count", 4000);
    let first = headers
        .get("last-event-id")
        .and_then(|value| value.to_str().ok()?.parse::<u64>().ok())
        .map_or(1, |seen| seen + 1);
    let ticks = IntervalStream::new(tokio::time::interval(interval));
    let events = ticks.zip(stream::iter(first..=count)).map(move |(_, n)| {
        let event = if n == count {
            Event::default().event("bye").data("bye-bye")
        } else {
            Event::default().data(n.to_string())
        };
        Ok(event.id(n.to_string()))
    });
    let retry = stream::once(async { Ok(Event::default().retry(Duration::from_secs(3))) });
    Sse::new(retry.chain(events)).keep_alive(KeepAlive::default())
}

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let bind: SocketAddr = args
        .next()
        .as_deref()
        .unwrap_or("127.0.0.1:8082")
        .parse()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let workers = args.next().and_then(|w| w.parse().ok()).unwrap_or(1);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()?
        .block_on(async move {
            let socket = if bind.is_ipv4() {
                TcpSocket::new_v4()?
            } else {
                TcpSocket::new_v6()?
            };
            socket.set_reuseaddr(true)?;
            socket.bind(bind)?;
            let listener = socket
                .listen(4096)?
                .tap_io(|tcp| tcp.set_nodelay(true).unwrap_or_default());
            let app = Router::new().route("/digits", get(digits));
            axum::serve(listener, app).await
        })
}
