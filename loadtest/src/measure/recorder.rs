//! The load test's [`Recorder`]: turns what one event source reports into counts and
//! histogram samples, judging ids and timing with the pure logic of [`crate::measure::schedule`]
//! under the source's identity and the run's lateness mode ([`crate::profile`]).
//! One per goose user; it keeps its own counts and hands them to its thread's shard at
//! connection ends and when the event source finishes.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use sse_digits::sse::MessageEvent;

use reqwest::Url;

use crate::client::{Asked, Closed, End, Failure, ReadKind, Recorder};
use crate::measure::counters::Counters;
use crate::measure::metrics::{record, Metrics};
use crate::measure::schedule::{IdVerdict, Lateness, Schedule, Sequence, StallWatch};
use crate::profile::identity::{Identity, Reading};
use crate::profile::lateness::{against_timestamp, timestamp_nanos, LatenessMode, Signed};
use crate::profile::StreamProfile;

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
    /// What the run checks in each event.
    profile: StreamProfile,
    /// What identifies this source's events, once an event has said.
    identity: Option<Identity>,
    /// Sequence numbers seen by this event source, across its connections (since its last
    /// restart from the beginning).
    sequence: Sequence,
    /// Expected and lost of the sequences before restarts from the beginning.
    retired: (u64, u64),
    /// Events of the current connection so far (the schedule's numbers when events carry
    /// none).
    connection_events: u64,
    /// Whether any event arrived (named events alone decide no identity).
    saw_event: bool,
    /// Whether the current connection has delivered a sequence number yet.
    numbered_this_connection: bool,
    /// A reading of both clocks, to put an arrival `Instant` on the wall clock that event
    /// timestamps use.
    wall_base: (Instant, SystemTime),
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
        let profile = StreamProfile {
            first: first_id,
            ..StreamProfile::digits(interval)
        };
        Self::with_profile(metrics, profile, stall_threshold)
    }

    /// A recorder for an event source of any server, checked as `profile` says, with stalls
    /// beyond `stall_threshold`.
    #[must_use]
    pub fn with_profile(
        metrics: Arc<Metrics>,
        profile: StreamProfile,
        stall_threshold: Duration,
    ) -> Self {
        let interval = match profile.lateness {
            LatenessMode::Schedule(interval) => interval,
            LatenessMode::Timestamp(_) | LatenessMode::Gaps => Duration::ZERO,
        };
        Self {
            metrics,
            identity: profile.identity,
            sequence: Sequence::new(profile.first),
            retired: (0, 0),
            connection_events: 0,
            saw_event: false,
            numbered_this_connection: false,
            wall_base: (Instant::now(), SystemTime::now()),
            profile,
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
        match self.identity {
            Some(Identity::IdSequence) => self.counters.identity_id_sequence += 1,
            Some(Identity::NumericData) => self.counters.identity_numeric_data += 1,
            Some(Identity::None) => self.counters.identity_none += 1,
            None if self.saw_event => self.counters.identity_none += 1,
            // No event at all: nothing said what identifies them.
            None => {}
        }
        let lost = self.retired.1 + self.sequence.lost();
        self.counters.expected += self.retired.0 + self.sequence.expected();
        self.counters.lost += lost;
        self.metrics.live.lost.fetch_add(lost, Ordering::Relaxed);
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

    /// Timing checks for the first event of a connection, and its resume check when it
    /// carries an `id`.
    fn first_event_of_connection(&mut self, id: Option<u64>, at: Instant) {
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
        let Some(id) = id.filter(|_| self.identity == Some(Identity::IdSequence)) else {
            return;
        };
        if let Some(resume_at) = self.resume_at.take() {
            if id == resume_at {
                self.counters.resumed_ok += 1;
            } else {
                self.counters.resumed_wrong += 1;
            }
        }
    }
    /// Sequence number `n` arrived: lost, duplicated or out of order, or (numeric data) a
    /// new connection that started again at the first number.
    fn observe(&mut self, n: u64) {
        let first_of_connection = !std::mem::replace(&mut self.numbered_this_connection, true);
        if first_of_connection
            && self.identity == Some(Identity::NumericData)
            && n == self.profile.first
            && self.sequence.next_expected() > self.profile.first
        {
            self.counters.restarted += 1;
            self.retired.0 += self.sequence.expected();
            self.retired.1 += self.sequence.lost();
            self.sequence = Sequence::new(self.profile.first);
        }
        match self.sequence.observe(n) {
            IdVerdict::InOrder | IdVerdict::Gap { .. } => {}
            IdVerdict::Duplicate => self.counters.duplicated += 1,
            IdVerdict::OutOfOrder => self.counters.out_of_order += 1,
        }
    }

    /// The event's lateness, by the run's mode, into the samples.
    fn lateness(&mut self, event_type: &str, data: &str, number: Option<u64>, at: Instant) {
        let late = match &self.profile.lateness {
            LatenessMode::Gaps => return,
            LatenessMode::Schedule(_) => {
                // Events without a number are placed by their order when the stream has no
                // identity at all; beside numbered ones (a `bye` after numeric data) they
                // have no place in the schedule.
                let key = match (number, self.identity) {
                    (Some(n), _) => n,
                    (None, None | Some(Identity::None)) => self.connection_events,
                    (None, Some(_)) => return,
                };
                match self.schedule.lateness(key, at) {
                    Lateness::Anchor => return,
                    Lateness::Late(late) => Signed::Late(late),
                    Lateness::Early(early) => Signed::Early(early),
                }
            }
            LatenessMode::Timestamp(field) => {
                let Some(sent) = timestamp_nanos(data, field) else {
                    // A closing `bye` need not carry one.
                    if event_type != "bye" {
                        self.counters.untimed += 1;
                    }
                    return;
                };
                let (base_at, base_wall) = self.wall_base;
                let arrived = base_wall + at.saturating_duration_since(base_at);
                let arrived = arrived
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos() as i128);
                against_timestamp(arrived, sent)
            }
        };
        let steady = self
            .metrics
            .live
            .steady_since
            .get()
            .is_some_and(|since| at >= *since);
        match late {
            Signed::Late(late) => self.samples.push((late, steady)),
            Signed::Early(_) => {
                self.counters.early += 1;
                self.samples.push((Duration::ZERO, steady));
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
        self.connection_events = 0;
        self.numbered_this_connection = false;
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
            Failure::Encoding(_) => self.counters.failed_encoding += 1,
            Failure::TooManyRedirects(_) => self.counters.failed_redirects += 1,
            Failure::Other(kind) => {
                self.counters.failed_other += 1;
                self.counters.count_error(kind);
            }
        }
        self.error();
        let status = match failure {
            Failure::Status(code) => Some(*code),
            Failure::ContentType(_) | Failure::Encoding(_) => Some(200),
            _ => None,
        };
        self.remember_open(OpenAttempt {
            elapsed,
            status,
            error: Some(failure.to_string()),
        });
    }

    fn event(&mut self, event: MessageEvent<'_>, at: Instant) {
        let MessageEvent {
            event_type,
            data,
            last_event_id,
        } = event;
        self.saw_event = true;
        if self.identity.is_none() {
            self.identity = Identity::decide(event_type, data, last_event_id);
        }
        let number = match self.identity.map_or(Reading::NotInSequence, |i| {
            i.read(event_type, data, last_event_id)
        }) {
            Reading::Number(n) => Some(n),
            Reading::NotInSequence => None,
            Reading::Malformed => {
                self.counters.malformed += 1;
                return;
            }
        };
        if self.profile.data_matches_id && event_type == "message" && data != last_event_id {
            self.counters.malformed += 1;
        }
        if event_type != "message" && event_type != "bye" {
            self.counters.count_event_name(event_type);
        }
        self.counters.events += 1;
        self.live_events += 1;
        if let Some(n) = number {
            self.observe(n);
        }
        self.first_event_of_connection(number, at);
        self.lateness(event_type, data, number, at);
        self.connection_events += 1;
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
                match error.kind {
                    ReadKind::Cut => self.counters.body_cut += 1,
                    ReadKind::Framing => self.counters.framing_errors += 1,
                    ReadKind::Io => {}
                }
                self.counters.count_read_error(&error.detail);
                self.error();
            }
            Closed::IdleTimeout => {
                self.counters.idle_timeouts += 1;
                self.error();
            }
            Closed::EventTooLarge => {
                self.counters.event_too_large += 1;
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

    fn redirected(&mut self, _status: u16, _to: &Url) {
        self.counters.redirects += 1;
    }

    fn invalid_utf8(&mut self, fields: u64) {
        self.counters.invalid_utf8 += fields;
    }

    fn retrying(&mut self, delay: Duration, asked: Asked) {
        match asked {
            Asked::RetryAfter(wanted) => {
                self.counters.retry_after += 1;
                self.counters.retry_clamped += u64::from(wanted != delay);
            }
            Asked::RetryField(wanted) => {
                self.counters.retry_from_field += 1;
                self.counters.retry_clamped += u64::from(wanted != delay);
            }
            Asked::Nothing => self.counters.retry_default += 1,
        }
        self.metrics
            .with_shard(|shard| record(&mut shard.histograms.retry_hint, delay));
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
            End::Status(_) | End::ContentType(_) | End::Encoding(_) | End::TooManyRedirects => {}
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

    /// A digits user's recorder (100 ms schedule, 500 ms stall threshold) and its metrics.
    fn digits_recorder() -> (Arc<Metrics>, UserRecorder) {
        let metrics = Metrics::new();
        let rec = UserRecorder::new(Arc::clone(&metrics), 1, ms(100), ms(500));
        (metrics, rec)
    }

    /// Two connections: the first drops after id 3, the second resumes at 4 and sees a
    /// gap (6 missing), a duplicate (7 twice) and `bye`.
    #[test]
    fn a_life_with_a_reconnection_is_counted_exactly() {
        let (metrics, mut rec) = digits_recorder();
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
        let (metrics, mut rec) = digits_recorder();
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
    fn each_reconnection_wait_records_its_delay_and_what_asked_for_it() {
        let (metrics, mut rec) = digits_recorder();
        rec.retrying(ms(3000), Asked::Nothing);
        rec.retrying(ms(200), Asked::RetryField(ms(200)));
        rec.retrying(ms(100), Asked::RetryField(ms(0)));
        rec.retrying(ms(2000), Asked::RetryAfter(ms(2000)));
        rec.finish();
        let (h, c) = metrics.merged();
        assert_eq!(
            (
                c.retry_from_field,
                c.retry_default,
                c.retry_after,
                c.retry_clamped
            ),
            (2, 1, 1, 1)
        );
        let hint = &h.retry_hint;
        assert_eq!(hint.len(), 4);
        assert!(hint.equivalent(hint.min(), 100_000), "{}", hint.min());
        assert!(hint.equivalent(hint.value_at_quantile(0.5), 200_000));
        assert!(hint.equivalent(hint.max(), 3_000_000), "{}", hint.max());
    }

    #[test]
    fn failures_are_counted_by_cause() {
        let (metrics, mut rec) = digits_recorder();
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
        let (metrics, mut rec) = digits_recorder();
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
        let (metrics, mut rec) = digits_recorder();
        let t0 = Instant::now();
        rec.connecting(t0, "");
        rec.opened(t0, ms(1));
        rec.event(ev("message", "1", "1"), t0);
        let broken = Closed::ReadError(ReadError::new(ReadKind::Io, "io: connection reset"));
        rec.closed(t0 + ms(50), &broken, 0, None);
        rec.finish();
        let c = metrics.merged().1;
        assert_eq!(c.read_errors, 1);
        assert_eq!(c.read_error_kinds.get("io: connection reset"), Some(&1));
        assert_eq!(metrics.live.errors.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn an_event_too_large_is_an_error_of_its_own() {
        let (metrics, mut rec) = digits_recorder();
        let t0 = Instant::now();
        rec.connecting(t0, "");
        rec.opened(t0, ms(1));
        rec.closed(t0 + ms(50), &Closed::EventTooLarge, 0, None);
        rec.finish();
        let c = metrics.merged().1;
        assert_eq!(
            (c.event_too_large, c.read_errors, c.idle_timeouts),
            (1, 0, 0)
        );
        assert_eq!(metrics.live.errors.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn a_silent_connection_is_a_stall() {
        let (metrics, mut rec) = digits_recorder();
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

    fn any(lateness: LatenessMode) -> (Arc<Metrics>, UserRecorder) {
        let metrics = Metrics::new();
        let rec =
            UserRecorder::with_profile(Arc::clone(&metrics), StreamProfile::any(lateness), ms(500));
        (metrics, rec)
    }

    /// The seed's server: `data: N`, no ids; a reconnection starts again at 1.
    #[test]
    fn numeric_data_is_a_sequence_and_a_restart_from_one_is_no_loss() {
        let (metrics, mut rec) = any(LatenessMode::Schedule(ms(100)));
        let t0 = Instant::now();
        rec.connecting(t0, "");
        rec.opened(t0, ms(1));
        for (i, n) in [1u64, 2, 4, 4].into_iter().enumerate() {
            rec.event(
                ev("message", &n.to_string(), ""),
                t0 + ms(100 * n + i as u64),
            );
        }
        rec.closed(t0 + ms(450), &Closed::ServerEnded, 0, None);
        rec.connecting(t0 + ms(3450), "");
        rec.opened(t0 + ms(3450), ms(1));
        let t1 = t0 + ms(3460);
        rec.event(ev("message", "1", ""), t1);
        rec.event(ev("message", "2", ""), t1 + ms(130));
        rec.event(ev("bye", "bye-bye", ""), t1 + ms(200));
        rec.closed(t1 + ms(200), &Closed::Bye, 0, None);
        rec.finish();
        let (h, c) = metrics.merged();
        assert_eq!(c.identity_numeric_data, 1);
        assert_eq!(c.restarted, 1);
        assert_eq!((c.expected, c.lost, c.duplicated), (6, 1, 1));
        assert_eq!((c.resumed_ok, c.resumed_wrong, c.malformed), (0, 0, 0));
        assert_eq!(c.events, 7);
        assert!(c.sequence_checkable() && !c.resume_checkable());
        // 3 after the first anchor and 1 after the second (the bye has no number).
        assert_eq!(h.lateness.len(), 4);
        assert!(h.lateness.equivalent(h.lateness.max(), 30_000));
    }

    #[test]
    fn events_without_id_or_number_are_not_checked_and_not_malformed() {
        let (metrics, mut rec) = any(LatenessMode::Gaps);
        let t0 = Instant::now();
        rec.opened(t0, ms(1));
        rec.event(ev("message", "hello", ""), t0);
        rec.event(ev("message", "hello", ""), t0 + ms(10));
        rec.event(ev("update", "{}", ""), t0 + ms(20));
        rec.finish();
        let (h, c) = metrics.merged();
        assert_eq!((c.identity_none, c.events, c.malformed), (1, 3, 0));
        assert_eq!(c.event_names.get("update"), Some(&1));
        assert!(!c.sequence_checkable());
        assert_eq!(h.lateness.len(), 0);
    }

    #[test]
    fn ids_of_any_server_are_checked_without_the_data_rule() {
        let (metrics, mut rec) = any(LatenessMode::Gaps);
        let t0 = Instant::now();
        rec.opened(t0, ms(1));
        rec.event(ev("message", "{\"a\":1}", "1"), t0);
        rec.event(ev("message", "{\"a\":1}", "3"), t0);
        rec.event(ev("message", "x", "oops"), t0);
        rec.finish();
        let c = metrics.merged().1;
        assert_eq!(c.identity_id_sequence, 1);
        assert_eq!((c.lost, c.malformed, c.events), (1, 1, 2));
    }

    #[test]
    fn a_json_timestamp_gives_each_events_lateness() {
        let (metrics, mut rec) = any(LatenessMode::Timestamp("ts".into()));
        let (base_at, base_wall) = rec.wall_base;
        let epoch_ms = |d: Duration| {
            (base_wall + d)
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_millis()
        };
        rec.opened(base_at, ms(1));
        // Sent at +100 ms, arrived at +125 ms: 25 ms late; one without a timestamp.
        let data = format!("{{\"ts\": {}}}", epoch_ms(ms(100)));
        rec.event(ev("message", &data, ""), base_at + ms(125));
        rec.event(ev("message", "{}", ""), base_at + ms(130));
        let ahead = format!("{{\"ts\": {}}}", epoch_ms(ms(500)));
        rec.event(ev("message", &ahead, ""), base_at + ms(140));
        rec.finish();
        let (h, c) = metrics.merged();
        assert_eq!((c.untimed, c.early, h.lateness.len()), (1, 1, 2));
        // The timestamp drops the wall clock's sub-millisecond part.
        assert!(
            (25_000..=26_100).contains(&h.lateness.max()),
            "{}",
            h.lateness.max()
        );
    }
}
