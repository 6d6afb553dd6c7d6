//! Starts the app on 127.0.0.1:0 and reads its responses, raw or as SSE events.

use std::net::SocketAddr;
use std::time::Duration;

use sse_digits::config::Config;
use sse_digits::sse::parse::{OwnedMessageEvent, Parser};
use sse_digits::startup::{AppHandle, Application};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Every wait in these tests is bounded by this.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// A running app and a client for it.
pub struct TestApp {
    pub addr: SocketAddr,
    pub handle: AppHandle,
    pub client: reqwest::Client,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// The app with test defaults: fast schedule, one worker, short drain.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// The app with test defaults changed by `adjust`.
pub async fn spawn_app_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
    let mut config = Config {
        bind: "127.0.0.1:0".parse().unwrap(),
        interval_ms: 20,
        count: 10,
        workers: 1,
        drain_ms: 100,
        ..Config::default()
    };
    adjust(&mut config);
    let app = Application::build(config).expect("the app builds");
    let addr = app.local_addr();
    let handle = app.handle();
    let server = tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::builder().timeout(TIMEOUT).build().unwrap();
    TestApp {
        addr,
        handle,
        client,
        server,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    pub async fn get_with_last_event_id(&self, path: &str, id: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .header("Last-Event-ID", id)
            .send()
            .await
            .unwrap()
    }

    /// Sends `request` as written (no URL normalisation) and returns the raw response.
    pub async fn raw(&self, request: &[u8]) -> RawResponse {
        let mut socket = TcpStream::connect(self.addr).await.unwrap();
        socket.write_all(request).await.unwrap();
        let mut bytes = Vec::new();
        tokio::time::timeout(TIMEOUT, socket.read_to_end(&mut bytes))
            .await
            .expect("the server answered in time")
            .ok();
        RawResponse::parse(&bytes)
    }

    /// A metric's value as `/metrics` shows it (`name` includes labels, if any).
    ///
    /// # Panics
    /// If `/metrics` has no such line: a renamed metric or a mistyped label must fail the
    /// test, not read as zero.
    pub async fn metric(&self, name: &str) -> f64 {
        let text = self.metrics_text().await;
        series_value(&text, name).unwrap_or_else(|| panic!("no {name} in /metrics:\n{text}"))
    }

    /// Waits until the metric is shown and `check` holds for it, or fails after
    /// [`TIMEOUT`] (saying whether it was absent or its last value).
    pub async fn wait_for_metric(&self, name: &str, check: impl Fn(f64) -> bool) -> f64 {
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        loop {
            let value = series_value(&self.metrics_text().await, name);
            if let Some(value) = value.filter(|value| check(*value)) {
                return value;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{name} stuck at {value:?} (None: not in /metrics)"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn metrics_text(&self) -> String {
        self.get("/metrics").await.text().await.unwrap()
    }

    /// Stops the app gracefully and waits for it to end.
    pub async fn stop(self) {
        self.handle.stop().await;
        tokio::time::timeout(TIMEOUT, self.server)
            .await
            .expect("the server stopped in time")
            .unwrap()
            .unwrap();
    }
}

/// The value on the line for `series` (a name, with its labels if any), if there is one.
fn series_value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// Reads an SSE response body to its end and returns the raw text and the parsed events.
pub async fn read_all_events(mut response: reqwest::Response) -> (String, Vec<OwnedMessageEvent>) {
    let mut parser = Parser::new();
    let mut text = Vec::new();
    let mut events = Vec::new();
    tokio::time::timeout(TIMEOUT, async {
        while let Some(chunk) = response.chunk().await.unwrap() {
            text.extend_from_slice(&chunk);
            events.extend(parser.feed_collect(&chunk));
        }
    })
    .await
    .expect("the stream ended in time");
    (String::from_utf8(text).unwrap(), events)
}

/// Reads events until `n` have arrived, leaving the response open.
pub async fn read_events(response: &mut reqwest::Response, n: usize) -> Vec<OwnedMessageEvent> {
    let mut parser = Parser::new();
    let mut events = Vec::new();
    tokio::time::timeout(TIMEOUT, async {
        while events.len() < n {
            let chunk = response
                .chunk()
                .await
                .unwrap()
                .expect("the stream ended early");
            events.extend(parser.feed_collect(&chunk));
        }
    })
    .await
    .expect("the events came in time");
    events
}

/// The event ids (`data` for numbered events) in order.
pub fn datas(events: &[OwnedMessageEvent]) -> Vec<&str> {
    events.iter().map(|e| e.data.as_str()).collect()
}

/// A response read off a raw socket.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl RawResponse {
    fn parse(bytes: &[u8]) -> Self {
        let text = String::from_utf8_lossy(bytes).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or(0);
        Self {
            status,
            head: head.to_owned(),
            body: body.to_owned(),
        }
    }
}
