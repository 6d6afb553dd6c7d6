//! Metrics (Prometheus text at `/metrics`) and log set-up.
//!
//! Per event the stream touches two atomic counters and one lateness bucket (two more
//! atomic adds) and nothing else: no lock, no label lookup. Labelled families are only
//! touched once per stream or per rejected request.

mod lateness;
pub mod names;

use std::sync::Arc;

use lateness::Lateness;

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
    max_streams: i64,
}

impl Metrics {
    /// A fresh set of metrics; at most `max_streams` streams may be open at once.
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
            max_streams,
        })
    }

    /// Claims a slot for a new stream, or `None` when `max_streams` are already open.
    #[must_use]
    pub fn open_stream(self: &Arc<Self>) -> Option<StreamTracker> {
        // Claim first, then check: two racing requests can never both take the last slot.
        if self.streams_open.inc() >= self.max_streams {
            self.streams_open.dec();
            self.count_rejection("too_many_streams");
            return None;
        }
        self.streams_started.inc();
        Some(StreamTracker {
            metrics: Arc::clone(self),
            end_reason: EndReason::ClientGone,
        })
    }

    /// Streams open now.
    #[must_use]
    pub fn streams_open(&self) -> i64 {
        self.streams_open.get()
    }

    /// Streams ended since the start, whatever the reason: started minus open. Read
    /// without a lock, so it may lag a stream that is opening right now.
    #[must_use]
    pub fn streams_ended_total(&self) -> u64 {
        let open = u64::try_from(self.streams_open()).unwrap_or(0);
        self.streams_started.get().saturating_sub(open)
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

/// Logs to stderr, filtered by `RUST_LOG` (default: [`DEFAULT_LOG_FILTER`]). Safe to call
/// more than once.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG_FILTER));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_open_gauge_follows_trackers_and_ends_are_counted_by_reason() {
        let metrics = Metrics::new(10);
        let mut finished = metrics.open_stream().unwrap();
        let vanished = metrics.open_stream().unwrap();
        assert_eq!(metrics.streams_open(), 2);
        assert_eq!(metrics.streams_ended_total(), 0);
        finished.ended(EndReason::Completed);
        drop(finished);
        drop(vanished);
        assert_eq!(metrics.streams_open(), 0);
        assert_eq!(metrics.streams_ended_total(), 2);
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
    fn no_slot_past_the_limit_and_the_refusal_is_counted() {
        let metrics = Metrics::new(1);
        let held = metrics.open_stream().unwrap();
        assert!(metrics.open_stream().is_none());
        assert_eq!(metrics.streams_open(), 1);
        drop(held);
        assert!(metrics.open_stream().is_some());
        let text = metrics.encode();
        assert!(
            text.contains("sse_requests_rejected_total{reason=\"too_many_streams\"} 1"),
            "{text}"
        );
    }

    #[test]
    fn every_shared_name_is_exposed() {
        let metrics = Metrics::new(1);
        let mut tracker = metrics.open_stream().unwrap();
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
        let tracker = metrics.open_stream().unwrap();
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
