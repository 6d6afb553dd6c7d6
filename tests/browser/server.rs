//! The app on 127.0.0.1, built through [`Application::build`] like everywhere else, stopped
//! gracefully through its [`AppHandle`], restartable on the same port, and read through
//! `/metrics`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use sse_digits::config::Config;
use sse_digits::startup::{AppHandle, Application};

use crate::{bounded, WAIT};

/// How often a wait reads `/metrics` again.
const POLL: Duration = Duration::from_millis(50);

/// A server on 127.0.0.1:0 sending `count - 1` numbers then `bye`, one every `interval_ms`;
/// the browser is told to reconnect after 300 ms, and a stop drains within 200 ms.
#[must_use]
pub fn config(interval_ms: u64, count: u64) -> Config {
    Config {
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        static_dir: Some(PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/static"
        ))),
        interval_ms,
        count,
        retry_ms: 300,
        drain_ms: 200,
        workers: 1,
        ..Config::default()
    }
}

/// A running server.
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    handle: AppHandle,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    /// For `/metrics`; never through a proxy.
    http: reqwest::Client,
}

impl TestServer {
    /// Builds and runs the app. `config.bind` may name the port of a server just stopped:
    /// the bind is retried until [`WAIT`] passes.
    ///
    /// # Panics
    /// If the address cannot be bound in time.
    pub async fn start(config: Config) -> Self {
        let deadline = Instant::now() + WAIT;
        let app = loop {
            match Application::build(config.clone()) {
                Ok(app) => break app,
                Err(e) if Instant::now() < deadline => {
                    tracing::debug!(error = %e, "bind failed; retrying");
                    tokio::time::sleep(POLL).await;
                }
                Err(e) => panic!("the app did not start on {}: {e:#}", config.bind),
            }
        };
        let addr = app.local_addr();
        let handle = app.handle();
        let server = tokio::spawn(app.run_until_stopped());
        let http = reqwest::Client::builder()
            .timeout(WAIT)
            .no_proxy()
            .build()
            .expect("an HTTP client");
        Self {
            addr,
            handle,
            server,
            http,
        }
    }

    /// `http://<addr><path>`.
    #[must_use]
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A metric's value on `/metrics`.
    ///
    /// # Panics
    /// If `/metrics` does not answer or does not list `name`.
    pub async fn metric(&self, name: &str) -> f64 {
        let text = bounded("reading /metrics", WAIT, async {
            self.http
                .get(self.url("/metrics"))
                .send()
                .await
                .expect("/metrics answers")
                .text()
                .await
                .expect("/metrics has a body")
        })
        .await;
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("{name} is not on /metrics:\n{text}"))
    }

    /// Reads a metric until `check` holds for it, and returns that value.
    ///
    /// # Panics
    /// After [`WAIT`], naming the metric and its last value.
    pub async fn wait_for_metric(&self, name: &str, check: impl Fn(f64) -> bool) -> f64 {
        let deadline = Instant::now() + WAIT;
        loop {
            let value = self.metric(name).await;
            if check(value) {
                return value;
            }
            assert!(
                Instant::now() < deadline,
                "{name} stuck at {value} for {WAIT:?}"
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// Stops gracefully (each open stream gets a retry hint, then closes) and waits until
    /// the server has ended and its port is free.
    ///
    /// # Panics
    /// If the server does not end in time or ends with an error.
    pub async fn stop(self) {
        bounded("the server stops", WAIT, async {
            self.handle.stop().await;
            self.server
                .await
                .expect("the server task ends")
                .expect("the server ends cleanly");
        })
        .await;
    }
}
