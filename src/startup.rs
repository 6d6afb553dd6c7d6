//! Builds the server on a listener it binds itself (port 0 works, for tests), and stops it
//! gracefully. `main`, the integration tests and the load test's embedded server all start
//! the app through [`Application::build`].

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::{web, App, HttpServer};
use anyhow::Context as _;

use crate::config::Config;
use crate::digits::StreamDefaults;
use crate::limits::StreamLimit;
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
    limit: Arc<StreamLimit>,
}

impl Application {
    /// Binds `config.bind` and prepares the workers.
    ///
    /// # Errors
    /// If the address cannot be bound or the server cannot be set up.
    pub fn build(config: Config) -> anyhow::Result<Self> {
        // Here rather than in `main`, so the tests and the load test's embedded server
        // measure the allocator production runs with.
        match crate::memory::configure_allocator(crate::memory::ALLOCATOR_SETTINGS) {
            Ok(()) => tracing::debug!(settings = ?crate::memory::ALLOCATOR_SETTINGS, "allocator"),
            Err(error) => tracing::warn!(%error, "allocator settings not applied"),
        }
        let listener = listener::bind(config.bind, config.listen_options())
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
        let limit = StreamLimit::new(capacity.streams);
        let shutdown = Shutdown::new(Duration::from_millis(config.drain_ms));
        let state = web::Data::new(AppState {
            defaults: StreamDefaults::from(&config),
            metrics,
            limit: Arc::clone(&limit),
            shutdown: shutdown.clone(),
        });
        let server = HttpServer::new(move || {
            App::new().configure(|cfg| configure(cfg, state.clone(), &static_dir))
        })
        .workers(workers)
        // Per worker: excess clients wait in the accept queue instead of failing `accept`
        // for want of files.
        .max_connections(capacity.connections_per_worker)
        .client_request_timeout(Duration::from_millis(config.request_timeout_ms))
        .shutdown_timeout((shutdown.drain_window() + STOP_GRACE).as_secs().max(1))
        // Signals are ours: a stop first drains the streams, see `AppHandle::stop`.
        .disable_signals()
        // Bound by `listener::bind`: its accept queue and stalled-reader timeout are kept.
        .listen(listener)?
        .run();
        let handle = AppHandle {
            server: server.handle(),
            shutdown,
            limit,
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
            Arc::clone(&self.handle.limit),
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
        // First the flag, which streams read when polled; then the server's graceful stop,
        // which closes the listener, wakes every connection (idle ones close, streams see
        // the flag and plan their close) and waits for the workers, bounded by the shutdown
        // timeout.
        self.shutdown.trigger();
        self.server.stop(true).await;
    }

    /// Streams open now.
    #[must_use]
    pub fn streams_open(&self) -> usize {
        self.limit.open()
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
