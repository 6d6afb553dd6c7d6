//! Builds the server on a listener it binds itself (port 0 works, for tests), and stops it
//! gracefully. `main`, the integration tests and the load test's embedded server all start
//! the app through [`Application::build`].

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use actix_http::HttpService;
use actix_service::{map_config, IntoServiceFactory as _, ServiceFactoryExt as _};
use actix_web::dev::{AppConfig, Server, ServerHandle};
use actix_web::{web, App};
use anyhow::Context as _;

use crate::config::Config;
use crate::digits::StreamDefaults;
use crate::listener;
use crate::open_files;
use crate::routes::{self, AppState};
use crate::shutdown::Shutdown;
use crate::telemetry::Metrics;

/// Connections a worker accepts beyond the stream limit: room for `/metrics`, the page and
/// the 503 answers to clients over the limit.
const CONNECTION_HEADROOM: usize = 1024;

/// Extra time, past the drain window, that a graceful stop waits for streams to close.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// How long a closing connection may take to flush its last bytes (`HttpServer`'s default).
const CLIENT_DISCONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// A built, not yet running, server.
pub struct Application {
    server: Server,
    local_addr: SocketAddr,
    handle: AppHandle,
}

/// Stops a running [`Application`] from anywhere; cheap to clone.
#[derive(Clone)]
pub struct AppHandle {
    server: ServerHandle,
    shutdown: Shutdown,
    metrics: Arc<Metrics>,
}

impl Application {
    /// Binds `config.bind` and prepares the workers.
    ///
    /// # Errors
    /// If the address cannot be bound or the server cannot be set up.
    pub fn build(config: Config) -> anyhow::Result<Self> {
        let listener = listener::bind(config.bind, config.write_stall())
            .with_context(|| format!("cannot listen on {}", config.bind))?;
        let local_addr = listener.local_addr()?;
        let static_dir = config.resolved_static_dir();
        if !static_dir.join("index.html").is_file() {
            tracing::warn!(dir = %static_dir.display(), "no index.html in the static folder");
        }
        let workers = match config.workers {
            // actix-server refuses more than `MAX_WORKERS`, even on a larger machine.
            0 => std::thread::available_parallelism()
                .map_or(1, usize::from)
                .min(usize::try_from(crate::config::MAX_WORKERS).unwrap_or(usize::MAX)),
            n => n,
        };
        let capacity = capacity_within_file_limit(&config, workers);
        let metrics = Metrics::new(capacity.streams);
        let shutdown = Shutdown::new(Duration::from_millis(config.drain_ms));
        let state = web::Data::new(AppState {
            defaults: StreamDefaults::from(&config),
            metrics: Arc::clone(&metrics),
            shutdown: shutdown.clone(),
        });
        let request_timeout = Duration::from_millis(config.request_timeout_ms);
        let connection_shutdown = shutdown.clone();
        let server = actix_server::Server::build()
            .workers(workers)
            .max_concurrent_connections(capacity.connections_per_worker)
            .shutdown_timeout((shutdown.drain_window() + STOP_GRACE).as_secs().max(1))
            // Signals are ours: a stop first drains the streams, see `AppHandle::stop`.
            .disable_signals()
            .listen("sse-digits", listener, move || {
                let state = state.clone();
                let static_dir = static_dir.clone();
                let app = App::new().configure(move |cfg| configure(cfg, state, &static_dir));
                let shutdown = connection_shutdown.clone();
                HttpService::build()
                    .client_request_timeout(request_timeout)
                    .client_disconnect_timeout(CLIENT_DISCONNECT_TIMEOUT)
                    .local_addr(local_addr)
                    // The hook `HttpServer` uses for its own signal (hidden from the docs,
                    // but actix-web 4 calls it, so actix-http 3 keeps it).
                    .graceful_shutdown_signal(move || shutdown.connection_signal())
                    .h1(map_config(
                        app.into_factory()
                            .map_err(|error: actix_web::Error| error.error_response()),
                        // What `HttpServer` gives the app: plain HTTP, this address as host.
                        // The constructor is hidden too; actix-test calls it.
                        move |()| {
                            AppConfig::__priv_test_new(false, local_addr.to_string(), local_addr)
                        },
                    ))
                    .tcp()
            })?
            .run();
        let handle = AppHandle {
            server: server.handle(),
            shutdown,
            metrics,
        };
        tracing::info!(%local_addr, workers, "listening");
        Ok(Self {
            server,
            local_addr,
            handle,
        })
    }

    /// The bound port (useful with port 0).
    #[must_use]
    pub fn port(&self) -> u16 {
        self.local_addr.port()
    }

    /// The bound address.
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// A handle that stops the server.
    #[must_use]
    pub fn handle(&self) -> AppHandle {
        self.handle.clone()
    }

    /// Serves until stopped through an [`AppHandle`].
    ///
    /// # Errors
    /// If the server fails while running.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let trimmer = tokio::spawn(crate::memory::trim_after_streams_close(
            Arc::clone(&self.handle.metrics),
            crate::memory::TRIM_PERIOD,
        ));
        let result = self.server.await;
        trimmer.abort();
        result
    }
}

impl AppHandle {
    /// Graceful stop: the listener closes at once (new clients are refused, so they retry
    /// elsewhere or after the restart instead of waiting in an accept queue nobody reads);
    /// every open stream sends a `retry:` hint and closes at a random moment within the
    /// drain window; the workers stop once their connections are gone.
    pub async fn stop(&self) {
        // Sets the flag and wakes every connection: idle ones close, streams plan their close.
        self.shutdown.trigger();
        // Closes the listener now; waits for the workers (bounded by the shutdown timeout).
        self.server.stop(true).await;
    }

    /// Streams open now.
    #[must_use]
    pub fn streams_open(&self) -> i64 {
        self.metrics.streams_open()
    }
}

/// The streams and connections this process's open-files limit leaves room for, logged;
/// a warning when the limit, not `--max-connections`, is what bounds the streams.
fn capacity_within_file_limit(config: &Config, workers: usize) -> open_files::Capacity {
    let limit = open_files::current().unwrap_or_else(|error| {
        tracing::warn!(%error, "cannot read the open-files limit; assuming none");
        open_files::FileLimit {
            soft: u64::MAX,
            hard: u64::MAX,
        }
    });
    let capacity = open_files::Capacity::within(
        config.max_connections,
        CONNECTION_HEADROOM,
        workers,
        limit.soft,
    );
    if capacity.streams < config.max_connections {
        tracing::warn!(
            open_files_limit = limit.soft,
            hard_limit = limit.hard,
            max_connections = config.max_connections,
            max_streams = capacity.streams,
            "the open-files limit leaves room for fewer streams than --max-connections; \
             past max_streams, stream requests get 503 (raise the limit to admit more)"
        );
    } else {
        tracing::info!(
            open_files_limit = limit.soft,
            max_streams = capacity.streams,
            "open files"
        );
    }
    capacity
}

/// The routes: `/digits`, `/healthz`, `/metrics`, and the static folder at `/`.
pub fn configure(cfg: &mut web::ServiceConfig, state: web::Data<AppState>, static_dir: &Path) {
    cfg.app_data(state)
        .service(
            web::resource("/digits")
                .route(web::get().to(routes::digits::digits))
                .route(web::head().to(routes::digits::digits))
                .default_service(web::to(routes::digits::method_not_allowed)),
        )
        .service(
            web::resource("/healthz")
                .route(web::get().to(routes::health::healthz))
                .route(web::head().to(routes::health::healthz))
                .default_service(web::to(routes::digits::method_not_allowed)),
        )
        .service(
            web::resource("/metrics")
                .route(web::get().to(routes::metrics::metrics))
                .default_service(web::to(routes::digits::method_not_allowed)),
        )
        .service(
            actix_files::Files::new("/", static_dir)
                .index_file("index.html")
                .default_handler(web::to(not_found)),
        );
}

async fn not_found() -> actix_web::HttpResponse {
    routes::digits::plain_error(actix_web::http::StatusCode::NOT_FOUND, "not found")
}
