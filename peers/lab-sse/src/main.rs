//! The digits stream written the idiomatic way with actix-web-lab's `Sse`: a tokio interval
//! per stream, an owned event per tick, the responder's own keep-alive timer. It exists only
//! to be measured side by side with sse-digits under the same load test.
//!
//! Usage: `lab-sse [BIND] [WORKERS]` (default `127.0.0.1:8081`, 1 worker); `GET /digits`
//! takes `interval_ms`, `count` and `Last-Event-ID` like sse-digits.

use std::collections::HashMap;
use std::time::Duration;

use actix_web::{web, App, HttpRequest, HttpServer, Responder};
use actix_web_lab::sse::{self, Sse};
use futures_util::StreamExt as _;
use tokio_stream::wrappers::IntervalStream;

async fn digits(req: HttpRequest, query: web::Query<HashMap<String, String>>) -> impl Responder {
    let number = |key: &str, default: u64| {
        query
            .get(key)
            .and_then(|value| value.parse().ok())
            .unwrap_or(default)
    };
    let interval = Duration::from_millis(number("interval_ms", 1000).max(1));
    let count = number("count", 4000);
    let first = req
        .headers()
        .get("last-event-id")
        .and_then(|value| value.to_str().ok()?.parse::<u64>().ok())
        .map_or(1, |seen| seen + 1);
    let ticks = IntervalStream::new(tokio::time::interval(interval));
    let events = ticks.zip(futures_util::stream::iter(first..=count)).map(move |(_, n)| {
        let data = if n == count {
            sse::Data::new("bye-bye").event("bye")
        } else {
            sse::Data::new(n.to_string())
        };
        sse::Event::Data(data.id(n.to_string()))
    });
    Sse::from_infallible_stream(events)
        .with_retry_duration(Duration::from_secs(3))
        .with_keep_alive(Duration::from_secs(15))
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let bind = args.next().unwrap_or_else(|| "127.0.0.1:8081".to_owned());
    let workers = args.next().and_then(|w| w.parse().ok()).unwrap_or(1);
    HttpServer::new(|| App::new().route("/digits", web::get().to(digits)))
        .workers(workers)
        .max_connections(100_000)
        .backlog(4096)
        .bind(bind)?
        .run()
        .await
}
