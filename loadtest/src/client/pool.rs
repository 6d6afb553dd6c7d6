//! The small pool of HTTP clients every event source connects through.

use std::net::IpAddr;
use std::time::Duration;

use reqwest::Client;

use crate::client::raw_http::RawConnector;
use crate::client::request::{HttpVersion, RequestSpec};
use crate::client::transport::{Connector, Transport};

/// Settings for the shared pool of HTTP clients.
#[derive(Debug, Clone)]
pub struct PoolOptions {
    /// How many clients to build (each costs about 100 KB; connections do not need one each).
    pub clients: usize,
    /// Local addresses to connect from, spread over the clients; empty: the system's choice.
    pub source_addrs: Vec<IpAddr>,
    /// Longest wait for a TCP connection.
    pub connect_timeout: Duration,
    /// Which HTTP client to use.
    pub transport: Transport,
}

/// A small pool of HTTP clients shared by every event source. Clients have connect timeouts
/// but no total timeout (a stream is meant to last), and keep no idle connections (a stream
/// is never reused).
#[derive(Debug, Clone)]
pub struct ClientPool {
    /// The clients; the event source of user `i` uses client `i % len`.
    clients: Vec<Connector>,
}

impl ClientPool {
    /// Builds the clients for plain requests (HTTP/1.1, the platform's roots).
    ///
    /// # Errors
    /// When reqwest cannot build a client (for example, no TLS or DNS backend).
    pub fn new(options: &PoolOptions) -> Result<Self, reqwest::Error> {
        Self::for_requests(options, &RequestSpec::default())
    }

    /// Builds the clients for `spec`'s requests: its HTTP version (which over TLS is also
    /// the one ALPN offers) and its certificate checks.
    ///
    /// # Errors
    /// When reqwest cannot build a client (for example, no TLS or DNS backend).
    pub fn for_requests(options: &PoolOptions, spec: &RequestSpec) -> Result<Self, reqwest::Error> {
        let count = options.clients.max(options.source_addrs.len()).max(1);
        let clients = (0..count)
            .map(|i| {
                let local_addr = (!options.source_addrs.is_empty())
                    .then(|| options.source_addrs[i % options.source_addrs.len()]);
                if options.transport == Transport::Raw {
                    return Ok(Connector::Raw(RawConnector {
                        local_addr,
                        connect_timeout: options.connect_timeout,
                    }));
                }
                let mut builder = Client::builder()
                    .connect_timeout(options.connect_timeout)
                    .pool_max_idle_per_host(0)
                    .tcp_nodelay(true)
                    // The event source follows redirects itself, the same for both
                    // transports, counting them and keeping to --max-redirects.
                    .redirect(reqwest::redirect::Policy::none())
                    // Streams are never compressed; no Accept-Encoding, no decoder layer.
                    .no_gzip()
                    .no_proxy();
                builder = match spec.http_version {
                    HttpVersion::Http1 => builder.http1_only(),
                    HttpVersion::Http2 => builder.http2_prior_knowledge(),
                };
                builder = spec.apply_tls(builder);
                if let Some(local_addr) = local_addr {
                    builder = builder.local_address(local_addr);
                }
                builder.build().map(Connector::Hyper)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { clients })
    }

    /// The client for user `index`.
    #[must_use]
    pub fn pick(&self, index: usize) -> &Connector {
        &self.clients[index % self.clients.len()]
    }
}
