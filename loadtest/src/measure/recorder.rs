//! The load test's [`Recorder`]: turns what one event source reports into counts and
//! histogram samples, judging ids and timing with the pure logic of [`crate::measure::schedule`].
//! One per goose user; it keeps its own counts and hands them to its thread's shard at
//! connection ends and when the event source finishes.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sse_digits::sse::MessageEvent;

use crate::client::{Closed, End, Failure, Recorder};
use crate::measure::counters::Counters;
use crate::measure::metrics::{record, Metrics};
use crate::measure::schedule::{IdVerdict, Lateness, Schedule, Sequence, StallWatch};

/// Lateness samples buffered before they go to the shard: one lock per batch, not per event.
const SAMPLE_BATCH: usize = 32;
/// How stale the live event count may get before it is published for the progress line.
const LIVE_EVERY: Duration = Duration::from_millis(500);
/// Connection attempts remembered for goose's request table.
const MAX_OPENS: usize = 1000;

/// One connection attempt, as goose's request metrics show it.
#[derive(Debug, Clone)]
pub struct OpenAttempt {
    /// Request start to response headers, or to the failure.
    pub elapsed: Duration,
    /// The status answered, if any.
    pub status: Option<u16>,
    /// Why it failed; `None` for a stream that opened.
    pub error: Option<String>,
}

/// Records one event source's life into a run's [`Metrics`].
#[derive(Debug)]
pub struct UserRecorder {
    /// The run's measurements.
    metrics: Arc<Metrics>,
    /// Ids seen by this event source, across its connections.
    sequence: Sequence,
    /// The current connection's schedule.
    schedule: Schedule,
    /// Gaps between events of the current connection.
    stalls: StallWatch,
    /// Counts not yet handed to the shard.
    counters: Counters,
    /// Lateness samples not yet handed to the shard, each marked true when it arrived in
    /// the steady state.
    samples: Vec<(Duration, bool)>,
    /// Events not yet added to the live figure.
    live_events: u64,
    /// When the live figure was last updated by this recorder.
    live_published: Option<Instant>,
    /// When the current stream opened, until its first event.
    awaiting_first_event: Option<Instant>,
    /// When the previous stream ended, until the next stream's first event.
    reconnecting_since: Option<Instant>,
    /// The id a reconnection must resume at, until its first event.
    resume_at: Option<u64>,
    /// Connection attempts so far.
    attempts: u64,
    /// Attempts for goose's request table.
    opens: Vec<OpenAttempt>,
}

impl UserRecorder {
    /// A recorder for an event source whose first id should be `first_id`, with events
    /// `interval` apart and stalls beyond `stall_threshold`.
    #[must_use]
    pub fn new(
        metrics: Arc<Metrics>,
        first_id: u64,
        interval: Duration,
        stall_threshold: Duration,
    ) -> Self {
        Self {
            metrics,
            sequence: Sequence::new(first_id),
            schedule: Schedule::new(interval),
            stalls: StallWatch::new(stall_threshold),
            counters: Counters::default(),
            samples: Vec::with_capacity(SAMPLE_BATCH),
            live_events: 0,
            live_published: None,
            awaiting_first_event: None,
            reconnecting_since: None,
            resume_at: None,
            attempts: 0,
            opens: Vec::new(),
        }
    }

    /// The connection attempts so far, for goose's request table; empties the list.
    pub fn take_opens(&mut self) -> Vec<OpenAttempt> {
        std::mem::take(&mut self.opens)
    }

    /// Hands everything left to the shard: call once when the event source has finished.
    pub fn finish(mut self) {
        self.counters.event_sources += 1;
        self.counters.expected += self.sequence.expected();
        self.counters.lost += self.sequence.lost();
        self.metrics
            .live
            .lost
            .fetch_add(self.sequence.lost(), Ordering::Relaxed);
        self.flush();
    }

    /// Moves buffered samples and counts to this thread's shard.
    fn flush(&mut self) {
        let samples = &mut self.samples;
        let counters = &mut self.counters;
        self.metrics.with_shard(|shard| {
            for (sample, steady) in samples.drain(..) {
                record(&mut shard.histograms.lateness, sample);
                if steady {
                    record(&mut shard.histograms.lateness_steady, sample);
                }
            }
            shard.counters.add(counters);
        });
        *counters = Counters::default();
        self.flush_live();
    }

    fn flush_live(&mut self) {
        if self.live_events > 0 {
            self.metrics
                .live
                .events
                .fetch_add(self.live_events, Ordering::Relaxed);
            self.live_events = 0;
        }
    }

    fn error(&mut self) {
        self.metrics.live.errors.fetch_add(1, Ordering::Relaxed);
    }

    fn remember_open(&mut self, attempt: OpenAttempt) {
        if self.opens.len() < MAX_OPENS {
            self.opens.push(attempt);
        }
    }

    /// Timing checks for the first event of a connection.
    fn first_event_of_connection(&mut self, id: u64, at: Instant) {
        if let Some(opened) = self.awaiting_first_event.take() {
            self.metrics.with_shard(|shard| {
                record(&mut shard.histograms.first_event, at - opened);
            });
        }
        if let Some(since) = self.reconnecting_since.take() {
            self.metrics.with_shard(|shard| {
                record(&mut shard.histograms.reconnect, at - since);
            });
        }
        if let Some(resume_at) = self.resume_at.take() {
            if id == resume_at {
                self.counters.resumed_ok += 1;
            } else {
                self.counters.resumed_wrong += 1;
            }
        }
    }
}

impl Recorder for UserRecorder {
    fn connecting(&mut self, at: Instant, last_event_id: &str) {
        if let Some(arrivals) = self.metrics.live.arrivals.get() {
            arrivals.attempt(at);
        }
        self.attempts += 1;
        self.counters.connect_attempts += 1;
        if self.attempts > 1 {
            self.counters.reconnects += 1;
            self.metrics.live.reconnects.fetch_add(1, Ordering::Relaxed);
        }
        self.resume_at = last_event_id.parse::<u64>().ok().map(|id| id + 1);
    }

    fn opened(&mut self, at: Instant, time_to_open: Duration) {
        if let Some(arrivals) = self.metrics.live.arrivals.get() {
            arrivals.opened(at);
        }
        self.counters.connections_opened += 1;
        self.metrics
            .live
            .open_streams
            .fetch_add(1, Ordering::Relaxed);
        self.metrics
            .with_shard(|shard| record(&mut shard.histograms.open, time_to_open));
        self.stalls.start(at);
        self.schedule.restart();
        self.awaiting_first_event = Some(at);
        self.remember_open(OpenAttempt {
            elapsed: time_to_open,
            status: Some(200),
            error: None,
        });
    }

    fn open_failed(&mut self, at: Instant, elapsed: Duration, failure: &Failure) {
        match failure {
            Failure::Refused if self.metrics.live.outages.covers(at - elapsed, at) => {
                self.counters.refused_during_restart += 1;
                return;
            }
            Failure::Refused => self.counters.failed_refused += 1,
            Failure::Timeout => self.counters.failed_timeout += 1,
            Failure::Status(code) => {
                self.counters.failed_status += 1;
                *self.counters.status_codes.entry(*code).or_default() += 1;
            }
            Failure::ContentType(_) => self.counters.failed_content_type += 1,
            Failure::Other(kind) => {
                self.counters.failed_other += 1;
                self.counters.count_error(kind);
            }
        }
        self.error();
        let status = match failure {
            Failure::Status(code) => Some(*code),
            Failure::ContentType(_) => Some(200),
            _ => None,
        };
        self.remember_open(OpenAttempt {
            elapsed,
            status,
            error: Some(failure.to_string()),
        });
    }

    fn event(&mut self, event: MessageEvent<'_>, at: Instant) {
        let Ok(id) = event.last_event_id.parse::<u64>() else {
            self.counters.malformed += 1;
            return;
        };
        if event.event_type == "message" && event.data != event.last_event_id {
            self.counters.malformed += 1;
        }
        self.counters.events += 1;
        self.live_events += 1;
        match self.sequence.observe(id) {
            IdVerdict::InOrder | IdVerdict::Gap { .. } => {}
            IdVerdict::Duplicate => self.counters.duplicated += 1,
            IdVerdict::OutOfOrder => self.counters.out_of_order += 1,
        }
        self.first_event_of_connection(id, at);
        let steady = self
            .metrics
            .live
            .steady_since
            .get()
            .is_some_and(|since| at >= *since);
        match self.schedule.lateness(id, at) {
            Lateness::Anchor => {}
            Lateness::Late(late) => self.samples.push((late, steady)),
            Lateness::Early(_) => {
                self.counters.early += 1;
                self.samples.push((Duration::ZERO, steady));
            }
        }
        if self.stalls.event(at) {
            self.counters.stalls += 1;
        }
        if self.samples.len() >= SAMPLE_BATCH {
            self.flush();
        }
        if self
            .live_published
            .is_none_or(|published| at.saturating_duration_since(published) >= LIVE_EVERY)
        {
            self.live_published = Some(at);
            self.flush_live();
        }
    }

    fn closed(&mut self, at: Instant, how: &Closed, keepalives: u64, retry_hint: Option<u64>) {
        self.metrics
            .live
            .open_streams
            .fetch_sub(1, Ordering::Relaxed);
        self.counters.keepalives += keepalives;
        if self.stalls.end(at) {
            self.counters.stalls += 1;
        }
        match how {
            Closed::ServerEnded => {
                self.counters.closed_by_server += 1;
                if retry_hint.is_none() {
                    self.counters.closed_without_retry_hint += 1;
                }
            }
            Closed::Dropped => self.counters.dropped_by_client += 1,
            Closed::ReadError(error) => {
                self.counters.read_errors += 1;
                self.counters.count_read_error(&error.0);
                self.error();
            }
            Closed::IdleTimeout => {
                self.counters.idle_timeouts += 1;
                self.error();
            }
            Closed::Bye | Closed::Stopped => {}
        }
        // A stream that never delivered an event has no time to first event.
        self.awaiting_first_event = None;
        if self.reconnecting_since.is_none() {
            self.reconnecting_since = Some(at);
        }
        self.flush();
    }

    fn waited(&mut self, planned: Duration, actual: Duration) {
        self.metrics.with_shard(|shard| {
            record(
                &mut shard.histograms.retry_overshoot,
                actual.saturating_sub(planned),
            );
        });
    }

    fn finished(&mut self, end: &End) {
        match end {
            End::Bye => self.counters.completed_bye += 1,
            End::NoContent => self.counters.ended_no_content += 1,
            End::Stopped => self.counters.stopped_at_deadline += 1,
            End::Status(_) | End::ContentType(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::transport::ReadError;

    fn ev<'a>(event_type: &'a str, data: &'a str, id: &'a str) -> MessageEvent<'a> {
        MessageEvent {
            event_type,
            data,
            last_event_id: id,
        }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Two connections: the first drops after id 3, the second resumes at 4 and sees a
    /// gap (6 missing), a duplicate (7 twice) and `bye`.
    #[test]
    fn a_life_with_a_reconnection_is_counted_exactly() {
        let metrics = Metrics::new();
        let mut rec = UserRecorder::new(Arc::clone(&metrics), 1, ms(100), ms(500));
        let t0 = Instant::now();
        rec.connecting(t0, "");
        rec.opened(t0 + ms(2), ms(2));
        for id in 1..=3u64 {
            let s = id.to_string();
            rec.event(ev("message", &s, &s), t0 + ms(5 + (id - 1) * 100));
        }
        rec.closed(t0 + ms(250), &Closed::Dropped, 0, Some(3000));
        rec.waited(ms(3000), ms(3004));
        rec.connecting(t0 + ms(3254), "3");
        rec.opened(t0 + ms(3256), ms(2));
        let t1 = t0 + ms(3260);
        rec.event(ev("message", "4", "4"), t1);
        rec.event(ev("message", "5", "5"), t1 + ms(110));
        rec.event(ev("message", "7", "7"), t1 + ms(300));
        rec.event(ev("message", "7", "7"), t1 + ms(300));
        rec.event(ev("bye", "bye-bye", "8"), t1 + ms(400));
        rec.closed(t1 + ms(400), &Closed::Bye, 1, Some(3000));
        rec.finished(&End::Bye);
        assert_eq!(rec.take_opens().len(), 2);
        rec.finish();

        let (h, c) = metrics.merged();
        assert_eq!(c.connect_attempts, 2);
        assert_eq!(c.reconnects, 1);
        assert_eq!(metrics.live.reconnects.load(Ordering::Relaxed), 1);
        assert_eq!(c.resumed_ok, 1);
        assert_eq!(c.events, 8);
        assert_eq!(c.expected, 8);
        assert_eq!(c.lost, 1);
        assert_eq!(c.duplicated, 1);
        assert_eq!(c.dropped_by_client, 1);
        assert_eq!(c.completed_bye, 1);
        assert_eq!(c.keepalives, 1);
        assert_eq!(c.stalls, 0);
        assert_eq!(h.open.len(), 2);
        assert_eq!(h.first_event.len(), 2);
        assert_eq!(h.reconnect.len(), 1);
        // Reconnect: from the drop (250 ms) to the first event of connection 2 (3260 ms).
        assert!(h.reconnect.equivalent(h.reconnect.max(), 3_010_000));
        // Lateness: 2 + 5 events after the two anchors; the worst is 10 ms (id 5).
        assert_eq!(h.lateness.len(), 6);
        assert!(h.lateness.equivalent(h.lateness.max(), 10_000));
        assert_eq!(h.retry_overshoot.len(), 1);
    }

    #[test]
    fn a_resume_at_the_wrong_id_is_counted() {
        let metrics = Metrics::new();
        let mut rec = UserRecorder::new(Arc::clone(&metrics), 1, ms(100), ms(500));
        let t0 = Instant::now();
        rec.connecting(t0, "");
        rec.opened(t0, ms(1));
        rec.event(ev("message", "1", "1"), t0);
        rec.closed(t0 + ms(50), &Closed::ServerEnded, 0, None);
        rec.connecting(t0 + ms(100), "1");
        rec.opened(t0 + ms(100), ms(1));
        rec.event(ev("message", "1", "1"), t0 + ms(101));
        rec.closed(t0 + ms(150), &Closed::Stopped, 0, None);
        rec.finished(&End::Stopped);
        rec.finish();
        let c = metrics.merged().1;
        assert_eq!(c.resumed_wrong, 1);
        assert_eq!(c.duplicated, 1);
        assert_eq!(c.closed_by_server, 1);
        assert_eq!(c.closed_without_retry_hint, 1);
        assert_eq!(c.stopped_at_deadline, 1);
    }

    #[test]
    fn failures_are_counted_by_cause() {
        let metrics = Metrics::new();
        let mut rec = UserRecorder::new(Arc::clone(&metrics), 1, ms(100), ms(500));
        let t0 = Instant::now();
        for failure in [
            Failure::Refused,
            Failure::Timeout,
            Failure::Status(503),
            Failure::ContentType("text/html".into()),
            Failure::Other("io: broken pipe".into()),
        ] {
            rec.connecting(t0, "");
            rec.open_failed(t0, ms(1), &failure);
        }
        rec.finish();
        let c = metrics.merged().1;
        assert_eq!(c.failed(), 5);
        assert_eq!(c.status_codes.get(&503), Some(&1));
        assert_eq!(c.other_errors.get("io: broken pipe"), Some(&1));
        assert_eq!(metrics.live.errors.load(Ordering::Relaxed), 5);
    }

    #[test]
    fn events_that_do_not_fit_the_digits_stream_are_malformed() {
        let metrics = Metrics::new();
        let mut rec = UserRecorder::new(Arc::clone(&metrics), 1, ms(100), ms(500));
        let t0 = Instant::now();
        rec.opened(t0, ms(1));
        rec.event(ev("message", "x", ""), t0);
        rec.event(ev("message", "2", "1"), t0);
        rec.finish();
        let c = metrics.merged().1;
        assert_eq!((c.malformed, c.events), (2, 1));
    }

    #[test]
    fn a_broken_stream_is_counted_by_its_cause() {
        let metrics = Metrics::new();
        let mut rec = UserRecorder::new(Arc::clone(&metrics), 1, ms(100), ms(500));
        let t0 = Instant::now();
        rec.connecting(t0, "");
        rec.opened(t0, ms(1));
        rec.event(ev("message", "1", "1"), t0);
        let broken = Closed::ReadError(ReadError("io: connection reset".into()));
        rec.closed(t0 + ms(50), &broken, 0, None);
        rec.finish();
        let c = metrics.merged().1;
        assert_eq!(c.read_errors, 1);
        assert_eq!(c.read_error_kinds.get("io: connection reset"), Some(&1));
        assert_eq!(metrics.live.errors.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn a_silent_connection_is_a_stall() {
        let metrics = Metrics::new();
        let mut rec = UserRecorder::new(Arc::clone(&metrics), 1, ms(100), ms(500));
        let t0 = Instant::now();
        rec.opened(t0, ms(1));
        rec.event(ev("message", "1", "1"), t0 + ms(10));
        rec.event(ev("message", "2", "2"), t0 + ms(900));
        rec.closed(t0 + ms(2000), &Closed::IdleTimeout, 3, Some(3000));
        rec.finish();
        let c = metrics.merged().1;
        assert_eq!(c.stalls, 2);
        assert_eq!(c.idle_timeouts, 1);
    }
}
