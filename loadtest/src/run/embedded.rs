//! The server, run inside this process from the root package's library: started on
//! 127.0.0.1 (a free port), stopped gracefully, and restarted on the same port for the
//! restart storm.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use sse_digits::config::Config;
use sse_digits::startup::{AppHandle, Application};
use tokio::task::JoinHandle;

/// A running in-process server.
pub struct EmbeddedServer {
    /// The configuration it was started with (a restart reuses it on the same port).
    config: Config,
    /// Where it listens.
    addr: SocketAddr,
    /// Stops it.
    handle: AppHandle,
    /// The task that serves until stopped.
    task: JoinHandle<std::io::Result<()>>,
}

impl EmbeddedServer {
    /// Binds `config.bind` and starts serving on the current tokio runtime.
    ///
    /// # Errors
    /// When the address cannot be bound.
    pub fn start(config: Config) -> anyhow::Result<Self> {
        let app = Application::build(config.clone())
            .with_context(|| format!("starting the embedded server on {}", config.bind))?;
        let addr = app.local_addr();
        let handle = app.handle();
        let task = tokio::spawn(app.run_until_stopped());
        Ok(Self {
            config,
            addr,
            handle,
            task,
        })
    }

    /// The base URL, such as `http://127.0.0.1:41234`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Streams the server has open now.
    #[must_use]
    pub fn streams_open(&self) -> i64 {
        i64::try_from(self.handle.streams_open()).unwrap_or(i64::MAX)
    }

    /// Stops gracefully: every stream gets a `retry:` hint and ends, then the server stops.
    ///
    /// # Errors
    /// When the server had failed while running.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.handle.stop().await;
        self.task
            .await
            .context("the embedded server's task panicked")?
            .context("the embedded server failed")
    }

    /// Stops, stays down for `down`, and starts again on the same port.
    ///
    /// # Errors
    /// When stopping fails or the port cannot be bound again.
    pub async fn restart(self, down: Duration) -> anyhow::Result<Self> {
        let config = Config {
            bind: self.addr,
            ..self.config.clone()
        };
        self.stop().await?;
        tokio::time::sleep(down).await;
        Self::start(config)
    }
}
