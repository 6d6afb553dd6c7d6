//! The names of the server's metrics as they appear at `/metrics`: one place for the server
//! that registers them, its tests and the load test that reads them, so a rename breaks the
//! build instead of silently turning a reading into "absent".

/// Gauge: streams open now.
pub const STREAMS_OPEN: &str = "sse_streams_open";
/// Gauge: streams that may be open at once (past it, 503).
pub const STREAMS_MAX: &str = "sse_streams_max";
/// Counter: streams started.
pub const STREAMS_STARTED: &str = "sse_streams_started_total";
/// Counter, labelled `reason` ([`crate::telemetry::EndReason`]): streams ended.
pub const STREAMS_ENDED: &str = "sse_streams_ended_total";
/// Counter: events sent, `bye` included.
pub const EVENTS_SENT: &str = "sse_events_sent_total";
/// Histogram (`_bucket{le=…}`, `_sum`, `_count`): how long after its due time each event
/// was sent.
pub const EVENT_LATENESS: &str = "sse_event_lateness_seconds";
/// Counter: body bytes handed to the connections.
pub const BYTES_SENT: &str = "sse_bytes_sent_total";
/// Counter, labelled `reason`: requests refused with 4xx/5xx.
pub const REQUESTS_REJECTED: &str = "sse_requests_rejected_total";
/// Counter: requests answered 204 because the client had already seen `bye`.
pub const RESUMED_PAST_END: &str = "sse_resumed_past_end_total";
/// Gauge: the process's resident memory, bytes (the standard `process_` name).
pub const RESIDENT_MEMORY: &str = "process_resident_memory_bytes";

/// Every name above, for tests that check each one is exposed.
pub const ALL: [&str; 10] = [
    STREAMS_OPEN,
    STREAMS_MAX,
    STREAMS_STARTED,
    STREAMS_ENDED,
    EVENTS_SENT,
    EVENT_LATENESS,
    BYTES_SENT,
    REQUESTS_REJECTED,
    RESUMED_PAST_END,
    RESIDENT_MEMORY,
];

/// The name a counter is registered under: prometheus-client appends `_total` itself.
pub(super) fn counter_base(name: &'static str) -> &'static str {
    name.strip_suffix("_total").unwrap_or(name)
}

/// A metric's line at `/metrics` with `labels` (`reason="completed"`), without its value:
/// `sse_streams_ended_total{reason="completed"}`.
#[must_use]
pub fn with_labels(name: &str, labels: &str) -> String {
    format!("{name}{{{labels}}}")
}
