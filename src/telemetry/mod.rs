//! Metrics (Prometheus text at `/metrics`) and log set-up.
//!
//! Per event the stream touches two atomic counters and one lateness bucket (two more
//! atomic adds) and nothing else: no lock, no label lookup. Labelled families are only
//! touched once per stream or per rejected request.

mod lateness;
pub mod names;

use std::sync::Arc;

use lateness::Lateness;

use crate::limits::StreamPermit;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Why a stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// The `bye` event went out.
    Completed,
    /// The server's `max_secs` ran out (a retry hint went out).
    MaxDuration,
    /// The server is shutting down (a retry hint went out).
    Shutdown,
    /// The client went away, or the connection broke, before the stream ended.
    ClientGone,
    /// The client stopped reading: its connection accepted no bytes for the write-stall
    /// timeout and was dropped.
    WriteStalled,
}

impl EndReason {
    fn label(self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::MaxDuration => "max_duration",
            Self::Shutdown => "shutdown",
            Self::ClientGone => "client_gone",
            Self::WriteStalled => "write_stalled",
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

/// The server's counters, shared by all workers.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    streams_open: Gauge,
    streams_started: Counter,
    streams_ended: Family<ReasonLabel, Counter>,
    events_sent: Counter,
    event_lateness: Lateness,
    bytes_sent: Counter,
    rejected: Family<ReasonLabel, Counter>,
    resumed_past_end: Counter,
    /// Read from `/proc` at each scrape (the standard `process_` name, without our prefix).
    resident_memory: Gauge,
}

impl Metrics {
    /// A fresh set of metrics, reporting `max_streams` as the limit on open streams.
    #[must_use]
    pub fn new(max_streams: usize) -> Arc<Self> {
        let mut registry = Registry::default();
        let resident_memory = Gauge::default();
        registry.register(
            names::RESIDENT_MEMORY,
            "Resident memory of the server process",
            resident_memory.clone(),
        );
        let streams_open = Gauge::default();
        let streams_started = Counter::default();
        let streams_ended = Family::<ReasonLabel, Counter>::default();
        let events_sent = Counter::default();
        let event_lateness = Lateness::default();
        let bytes_sent = Counter::default();
        let rejected = Family::<ReasonLabel, Counter>::default();
        let resumed_past_end = Counter::default();
        registry.register(
            names::STREAMS_OPEN,
            "Streams open now",
            streams_open.clone(),
        );
        let max_streams = i64::try_from(max_streams).unwrap_or(i64::MAX);
        // Fixed, but the open-files limit may have lowered it below --max-connections.
        let streams_max = Gauge::<i64>::default();
        streams_max.set(max_streams);
        registry.register(
            names::STREAMS_MAX,
            "Streams that may be open at once (past it, 503)",
            streams_max,
        );
        registry.register(
            names::counter_base(names::STREAMS_STARTED),
            "Streams started",
            streams_started.clone(),
        );
        registry.register(
            names::counter_base(names::STREAMS_ENDED),
            "Streams ended, by reason",
            streams_ended.clone(),
        );
        registry.register(
            names::counter_base(names::EVENTS_SENT),
            "Events sent (ids, bye included)",
            events_sent.clone(),
        );
        registry.register(
            names::EVENT_LATENESS,
            "How long after its due time (start + k x interval) each event was sent",
            event_lateness.clone(),
        );
        registry.register(
            names::counter_base(names::BYTES_SENT),
            "Body bytes handed to the connections",
            bytes_sent.clone(),
        );
        registry.register(
            names::counter_base(names::REQUESTS_REJECTED),
            "Requests refused with 4xx/5xx, by reason",
            rejected.clone(),
        );
        registry.register(
            names::counter_base(names::RESUMED_PAST_END),
            "Requests answered 204 because the client had already seen bye",
            resumed_past_end.clone(),
        );
        Arc::new(Self {
            registry,
            streams_open,
            streams_started,
            streams_ended,
            events_sent,
            event_lateness,
            bytes_sent,
            rejected,
            resumed_past_end,
            resident_memory,
        })
    }

    /// Opens the books of a stream admitted with `permit`; the returned tracker holds the
    /// permit, so the place is freed when the stream's books close.
    #[must_use]
    pub fn stream_started(self: &Arc<Self>, permit: StreamPermit) -> StreamTracker {
        self.streams_open.inc();
        self.streams_started.inc();
        StreamTracker {
            metrics: Arc::clone(self),
            _permit: permit,
            end_reason: EndReason::ClientGone,
        }
    }

    /// Streams open now, as the gauge reads.
    #[must_use]
    pub fn streams_open(&self) -> i64 {
        self.streams_open.get()
    }

    /// Counts a refused request under a fixed reason label.
    pub fn count_rejection(&self, reason: &'static str) {
        self.rejected.get_or_create(&ReasonLabel { reason }).inc();
    }

    /// Counts a 204 answer to a client that had already seen `bye`.
    pub fn count_resumed_past_end(&self) {
        self.resumed_past_end.inc();
    }

    /// The metrics in the OpenMetrics text format.
    #[must_use]
    pub fn encode(&self) -> String {
        if let Some(bytes) = crate::memory::resident_bytes() {
            self.resident_memory
                .set(i64::try_from(bytes).unwrap_or(i64::MAX));
        }
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// One open stream's share of the metrics; dropping it closes the stream's books, so a
/// client that vanishes mid-stream is counted too.
#[derive(Debug)]
pub struct StreamTracker {
    metrics: Arc<Metrics>,
    /// The stream's place under the limit, freed with the tracker.
    _permit: StreamPermit,
    end_reason: EndReason,
}

impl StreamTracker {
    /// Counts `events` events in `bytes` bytes handed to the connection.
    pub fn sent(&self, events: u64, bytes: usize) {
        if events > 0 {
            self.metrics.events_sent.inc_by(events);
        }
        self.metrics.bytes_sent.inc_by(bytes as u64);
    }

    /// Records that an event went out `nanos` after it was due.
    pub fn sent_late(&self, nanos: u64) {
        self.metrics.event_lateness.observe(nanos);
    }

    /// Records why the stream ended on the server's own terms.
    pub fn ended(&mut self, reason: EndReason) {
        self.end_reason = reason;
    }
}

impl Drop for StreamTracker {
    fn drop(&mut self) {
        self.metrics.streams_open.dec();
        self.metrics
            .streams_ended
            .get_or_create(&ReasonLabel {
                reason: self.end_reason.label(),
            })
            .inc();
    }
}

/// The log filter when `RUST_LOG` is unset: `info`, without actix-http's HTTP/1 dispatcher,
/// which logs every malformed request at ERROR (after answering it 400 or 431), so that any
/// client could fill the log at will. `RUST_LOG=debug` shows them again.
pub const DEFAULT_LOG_FILTER: &str = "info,actix_http::h1::dispatcher=off";

/// Logs to stderr, filtered by `RUST_LOG` (default: [`DEFAULT_LOG_FILTER`]), in colour only
/// on a terminal and when `NO_COLOR` is unset or empty. Safe to call more than once.
pub fn init_tracing() {
    use std::io::IsTerminal as _;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG_FILTER));
    let colour = use_colour(
        std::io::stderr().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    );
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .try_init();
}

/// Colour codes only where a person reads them: a file or a pipe gets plain text, and a
/// non-empty `NO_COLOR` (<https://no-color.org>) turns colour off everywhere.
fn use_colour(stderr_is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    stderr_is_terminal && no_color.is_none_or(std::ffi::OsStr::is_empty)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::StreamLimit;

    fn open(metrics: &Arc<Metrics>, limit: &Arc<StreamLimit>) -> StreamTracker {
        metrics.stream_started(limit.try_acquire().unwrap())
    }

    #[test]
    fn the_open_gauge_follows_trackers_and_ends_are_counted_by_reason() {
        let (metrics, limit) = (Metrics::new(10), StreamLimit::new(10));
        let mut finished = open(&metrics, &limit);
        let vanished = open(&metrics, &limit);
        assert_eq!(metrics.streams_open(), 2);
        finished.ended(EndReason::Completed);
        drop(finished);
        drop(vanished);
        assert_eq!(metrics.streams_open(), 0);
        assert_eq!((limit.open(), limit.released_total()), (0, 2));
        let text = metrics.encode();
        assert!(
            text.contains("sse_streams_ended_total{reason=\"completed\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("sse_streams_ended_total{reason=\"client_gone\"} 1"),
            "{text}"
        );
        assert!(text.contains("sse_streams_started_total 2"), "{text}");
    }

    #[test]
    fn the_limit_is_reported_and_refusals_are_counted() {
        let metrics = Metrics::new(1);
        metrics.count_rejection("too_many_streams");
        let text = metrics.encode();
        assert!(text.contains("sse_streams_max 1\n"), "{text}");
        assert!(
            text.contains("sse_requests_rejected_total{reason=\"too_many_streams\"} 1"),
            "{text}"
        );
    }

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        use std::ffi::OsStr;
        assert!(use_colour(true, None));
        assert!(use_colour(true, Some(OsStr::new(""))));
        assert!(!use_colour(true, Some(OsStr::new("1"))));
        assert!(!use_colour(false, None));
    }

    #[test]
    fn every_shared_name_is_exposed() {
        let metrics = Metrics::new(1);
        let mut tracker = open(&metrics, &StreamLimit::new(1));
        tracker.ended(EndReason::Completed);
        drop(tracker);
        metrics.count_rejection("too_many_streams");
        let text = metrics.encode();
        for name in names::ALL {
            assert!(
                text.lines().any(|line| line.starts_with(name)),
                "{name} is not at /metrics:\n{text}"
            );
        }
    }

    #[test]
    fn events_and_bytes_add_up() {
        let metrics = Metrics::new(1);
        let tracker = open(&metrics, &StreamLimit::new(1));
        tracker.sent(1, 15);
        tracker.sent(0, 14);
        let text = metrics.encode();
        assert!(text.contains("sse_events_sent_total 1\n"), "{text}");
        assert!(text.contains("sse_bytes_sent_total 29\n"), "{text}");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn resident_memory_is_read_at_each_scrape() {
        let text = Metrics::new(1).encode();
        let bytes: u64 = text
            .lines()
            .find_map(|l| l.strip_prefix("process_resident_memory_bytes "))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no resident memory in {text}"));
        assert!(bytes > 1024 * 1024, "{bytes}");
    }
}
