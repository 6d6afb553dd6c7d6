//! Server configuration: one typed struct, from flags and `SSE_*` environment variables.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

/// The most worker threads actix-server starts (it panics past this).
pub const MAX_WORKERS: u64 = 512;

/// Everything the server can be told, with defaults that run on a fresh machine.
#[derive(Debug, Clone, Parser)]
#[command(name = "sse-digits", version, about, long_about = None)]
pub struct Config {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "SSE_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,

    /// Share the address with other processes started with this flag (`SO_REUSEPORT`):
    /// the kernel spreads new connections over them. Start a new process on the same
    /// address, then stop the old one: its streams close with a retry hint and resume on
    /// the new one.
    #[arg(long, env = "SSE_REUSE_PORT")]
    pub reuse_port: bool,

    /// Folder served at `/` (default: `./static`, else the one beside the crate's sources).
    #[arg(long, env = "SSE_STATIC_DIR")]
    pub static_dir: Option<PathBuf>,

    /// Milliseconds between two events of a stream (a request may override with `interval_ms`).
    #[arg(long, env = "SSE_INTERVAL_MS", default_value_t = 1000)]
    pub interval_ms: u64,

    /// Id of the final `bye` event: numbers 1 .. count-1 come before it (override: `count`).
    #[arg(long, env = "SSE_COUNT", default_value_t = 4000)]
    pub count: u64,

    /// Reconnection delay sent to clients in the `retry:` field, in milliseconds.
    #[arg(long, env = "SSE_RETRY_MS", default_value_t = 3000)]
    pub retry_ms: u64,

    /// Send a `: keep-alive` comment after this many seconds without an event (0: never).
    #[arg(long, env = "SSE_KEEPALIVE_SECS", default_value_t = 15)]
    pub keepalive_secs: u64,

    /// End every stream after this many seconds, with a `retry:` hint, so clients reconnect
    /// and resume (a request may set `max_secs`). Unset: streams run to `bye`.
    #[arg(long, env = "SSE_MAX_STREAM_SECS")]
    pub max_stream_secs: Option<u64>,

    /// Most streams open at once; past it, requests get 503 with `Retry-After`.
    #[arg(long, env = "SSE_MAX_CONNECTIONS", default_value_t = 100_000)]
    pub max_connections: usize,

    /// Worker threads (0: one per CPU core; at most 512, actix-server's limit).
    #[arg(
        long,
        env = "SSE_WORKERS",
        default_value_t = 0,
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(0..=MAX_WORKERS)
    )]
    pub workers: usize,

    /// On shutdown, open streams are closed at random moments within this window (ms), so
    /// their clients do not all reconnect at one instant.
    #[arg(long, env = "SSE_DRAIN_MS", default_value_t = 1000)]
    pub drain_ms: u64,

    /// Drop a client whose connection has accepted no bytes for this long (ms; 0: never):
    /// a reader that stopped reading must not hold a stream forever.
    #[arg(long, env = "SSE_WRITE_STALL_MS", default_value_t = 30_000)]
    pub write_stall_ms: u64,

    /// A client must send its request headers within this time (ms), or it is dropped.
    #[arg(long, env = "SSE_REQUEST_TIMEOUT_MS", default_value_t = 5000)]
    pub request_timeout_ms: u64,

    /// Bounds that per-request query values must respect.
    #[command(flatten)]
    pub limits: RequestLimits,
}

/// The ranges that query overrides (`interval_ms`, `count`, `max_secs`) must fall in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::Args)]
pub struct RequestLimits {
    /// Smallest `interval_ms` a request may ask for.
    #[arg(long, env = "SSE_MIN_INTERVAL_MS", default_value_t = 1)]
    pub min_interval_ms: u64,
    /// Largest `interval_ms` a request may ask for.
    #[arg(long, env = "SSE_MAX_INTERVAL_MS", default_value_t = 3_600_000)]
    pub max_interval_ms: u64,
    /// Largest `count` a request may ask for.
    #[arg(long, env = "SSE_MAX_COUNT", default_value_t = 1_000_000_000)]
    pub max_count: u64,
    /// Largest `max_secs` a request may ask for.
    #[arg(long, env = "SSE_MAX_MAX_SECS", default_value_t = 86_400)]
    pub max_max_secs: u64,
}

impl Default for RequestLimits {
    fn default() -> Self {
        Self {
            min_interval_ms: 1,
            max_interval_ms: 3_600_000,
            max_count: 1_000_000_000,
            max_max_secs: 86_400,
        }
    }
}

impl Default for Config {
    /// The same values as the flags' defaults, without reading the environment.
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            reuse_port: false,
            static_dir: None,
            interval_ms: 1000,
            count: 4000,
            retry_ms: 3000,
            keepalive_secs: 15,
            max_stream_secs: None,
            max_connections: 100_000,
            workers: 0,
            drain_ms: 1000,
            write_stall_ms: 30_000,
            request_timeout_ms: 5000,
            limits: RequestLimits::default(),
        }
    }
}

impl Config {
    /// The keep-alive period, `None` when disabled.
    #[must_use]
    pub fn keepalive(&self) -> Option<Duration> {
        (self.keepalive_secs > 0).then(|| Duration::from_secs(self.keepalive_secs))
    }

    /// How the listening socket is set up.
    #[must_use]
    pub fn listen_options(&self) -> crate::listener::ListenOptions {
        crate::listener::ListenOptions {
            write_stall: self.write_stall(),
            reuse_port: self.reuse_port,
        }
    }

    /// The write-stall timeout, `None` when disabled.
    #[must_use]
    pub fn write_stall(&self) -> Option<Duration> {
        (self.write_stall_ms > 0).then(|| Duration::from_millis(self.write_stall_ms))
    }

    /// The static folder to serve: the configured one, else `./static` when it exists, else
    /// the `static/` folder beside this crate's sources (so `cargo run` works from anywhere
    /// in the checkout).
    #[must_use]
    pub fn resolved_static_dir(&self) -> PathBuf {
        if let Some(dir) = &self.static_dir {
            return dir.clone();
        }
        let local = PathBuf::from("static");
        if local.join("index.html").is_file() {
            return local;
        }
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/static"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `Default` must not drift from the flags' defaults.
    #[test]
    fn default_matches_the_flag_defaults() {
        let parsed = Config::try_parse_from(["sse-digits"]).unwrap();
        let default = Config::default();
        assert_eq!(format!("{parsed:?}"), format!("{default:?}"));
    }

    #[test]
    fn flags_override_defaults() {
        let parsed = Config::try_parse_from([
            "sse-digits",
            "--bind",
            "127.0.0.1:0",
            "--interval-ms",
            "5",
            "--max-stream-secs",
            "9",
            "--max-count",
            "10",
        ])
        .unwrap();
        assert_eq!(parsed.bind.port(), 0);
        assert_eq!(parsed.interval_ms, 5);
        assert_eq!(parsed.max_stream_secs, Some(9));
        assert_eq!(parsed.limits.max_count, 10);
    }

    #[test]
    fn a_bad_flag_value_is_an_error_not_a_panic() {
        let err = Config::try_parse_from(["sse-digits", "--count", "many"]).unwrap_err();
        assert!(err.to_string().contains("--count"), "{err}");
    }

    #[test]
    fn too_many_workers_is_an_error_not_a_panic() {
        let err = Config::try_parse_from(["sse-digits", "--workers", "600"]).unwrap_err();
        assert!(err.to_string().contains("--workers"), "{err}");
        assert!(err.to_string().contains("512"), "{err}");
        let most = Config::try_parse_from(["sse-digits", "--workers", "512"]).unwrap();
        assert_eq!(most.workers, 512);
    }

    #[test]
    fn keepalive_zero_disables_it() {
        let config = Config {
            keepalive_secs: 0,
            ..Config::default()
        };
        assert_eq!(config.keepalive(), None);
    }
}
