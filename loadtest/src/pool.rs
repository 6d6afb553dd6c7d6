//! The small pool of HTTP clients every event source connects through.

use std::net::IpAddr;
use std::time::Duration;

use reqwest::Client;

/// Settings for the shared pool of HTTP clients.
#[derive(Debug, Clone)]
pub struct PoolOptions {
    /// How many clients to build (each costs about 100 KB; connections do not need one each).
    pub clients: usize,
    /// Local addresses to connect from, spread over the clients; empty: the system's choice.
    pub source_addrs: Vec<IpAddr>,
    /// Longest wait for a TCP connection.
    pub connect_timeout: Duration,
}

/// A small pool of HTTP clients shared by every event source. Clients have connect timeouts
/// but no total timeout (a stream is meant to last), and keep no idle connections (a stream
/// is never reused).
#[derive(Debug, Clone)]
pub struct ClientPool {
    /// The clients; the event source of user `i` uses client `i % len`.
    clients: Vec<Client>,
}

impl ClientPool {
    /// Builds the clients.
    ///
    /// # Errors
    /// When reqwest cannot build a client (for example, no TLS or DNS backend).
    pub fn new(options: &PoolOptions) -> Result<Self, reqwest::Error> {
        let count = options.clients.max(options.source_addrs.len()).max(1);
        let clients = (0..count)
            .map(|i| {
                let mut builder = Client::builder()
                    .connect_timeout(options.connect_timeout)
                    .pool_max_idle_per_host(0)
                    .tcp_nodelay(true)
                    .http1_only()
                    // Streams are never compressed; no Accept-Encoding, no decoder layer.
                    .no_gzip()
                    .no_proxy();
                if !options.source_addrs.is_empty() {
                    builder =
                        builder.local_address(options.source_addrs[i % options.source_addrs.len()]);
                }
                builder.build()
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { clients })
    }

    /// The client for user `index`.
    #[must_use]
    pub fn pick(&self, index: usize) -> &Client {
        &self.clients[index % self.clients.len()]
    }
}
