//! The digits body: a [`Stream`] of byte chunks that waits for each due time, encodes, and
//! ends after `bye`, at the plan's `max_duration`, or on shutdown (with a retry hint first).
//!
//! One timer per stream serves every deadline (next event, keep-alive, planned close). Chunks
//! are encoded into one buffer per thread, not per stream: the connection copies each chunk
//! into its own write buffer and drops it at once, so a stream keeps no buffer of its own.
//! Per event: an atomic load, a timer reset and four atomic adds (two counters, the lateness
//! histogram's bucket and sum).
//!
//! Shutdown is one atomic flag, read at every poll. A stream asleep until its next deadline
//! does not register for the shutdown itself: actix-web's graceful stop wakes every
//! connection's task, and that wake-up polls the body, which then sees the flag. A waiter of its own would cost every stream 64 bytes
//! and a lock on a shared notifier when it closes.

use std::cell::RefCell;
use std::convert::Infallible;
use std::future::Future;
use std::num::NonZeroU64;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::Stream;
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};

use super::plan::{due_nanos_after_start, saturating_nanos, StreamPlan};
use crate::shutdown::Shutdown;
use crate::sse::encode;
use crate::telemetry::{EndReason, StreamTracker};

/// The name and data of the final event.
pub const BYE_EVENT: &str = "bye";
/// The data of the final event.
pub const BYE_DATA: &str = "bye-bye";
/// The keep-alive comment.
pub const KEEPALIVE_COMMENT: &str = "keep-alive";

/// The thread's encoding buffer: room for several catch-up chunks before it wraps around.
const ENCODE_BUFFER: usize = 8 * 1024;
/// The most one chunk holds: a catch-up batch, two retry blocks and a last event.
const MAX_CHUNK: usize = CATCH_UP_BATCH_BYTES + 256;

/// Events already overdue (a reader catching up, or interval 0) go out together in one chunk
/// of up to about this many bytes: fewer writes, and chunks of bounded size.
const CATCH_UP_BATCH_BYTES: usize = 1024;

thread_local! {
    /// Where this thread's streams encode their chunks. Chunks are split off it and frozen;
    /// once the connection has dropped them the space is reused, so there is no allocation
    /// per event.
    static ENCODER: RefCell<BytesMut> = RefCell::new(BytesMut::with_capacity(ENCODE_BUFFER));
}

/// `close_at` when no close is planned: 584 years after the start.
const NEVER: u64 = u64::MAX;

/// A deadline far enough away to mean "never", without overflowing `Instant`.
const FAR_FUTURE: Duration = Duration::from_secs(86_400 * 365 * 30);

pin_project! {
    /// The body of one `/digits` response.
    ///
    /// The timer lives inline (the body is boxed once by actix), so a stream costs one
    /// allocation.
    pub struct DigitsStream {
        // The one timer, re-armed for whichever deadline comes first.
        #[pin]
        timer: Sleep,
        state: State,
    }

    impl PinnedDrop for DigitsStream {
        // A stream dropped before it ended lost its client. When it had not been able to
        // write for the write-stall timeout, the connection was cut for not reading (the
        // kernel's `TCP_USER_TIMEOUT`, set in `startup`): count it as such.
        fn drop(this: Pin<&mut Self>) {
            this.project().state.count_write_stall();
        }
    }
}

/// Everything but the pinned parts. Moments are kept as nanoseconds after `started` (8
/// bytes where an `Instant` takes 16): every open stream holds this for its whole life.
struct State {
    schedule: Schedule,
    /// The next id to send.
    next_id: u64,
    /// When the stream started: every due time is measured from here (drift-free).
    started: Instant,
    /// When bytes last went out, for the keep-alive.
    last_write: u64,
    /// A planned end (max duration or shutdown), [`NEVER`] for none: a plain number, with
    /// its reason beside the flags below, keeps the state 8 bytes smaller than an `Option`
    /// of both, which is what keeps the boxed body in a 256-byte chunk.
    close_at: u64,
    shutdown: Shutdown,
    /// Why the stream closes at `close_at`.
    close_reason: EndReason,
    /// Whether the shutdown has been seen (and the close planned).
    shutdown_seen: bool,
    /// The retry block goes out with the first event.
    greeted: bool,
    done: bool,
    tracker: StreamTracker,
}

/// What the stream needs of its [`StreamPlan`], in nanoseconds: 48 bytes instead of 88.
struct Schedule {
    first_id: u64,
    /// The id of `bye`.
    count: u64,
    interval: u64,
    retry_ms: u64,
    keepalive: Option<NonZeroU64>,
    write_stall: Option<NonZeroU64>,
}

impl Schedule {
    fn new(plan: &StreamPlan) -> Self {
        let positive = |duration: Duration| NonZeroU64::new(saturating_nanos(duration));
        Self {
            first_id: plan.first_id,
            count: plan.count,
            interval: saturating_nanos(plan.interval),
            retry_ms: plan.retry_ms,
            keepalive: plan.keepalive.and_then(positive),
            write_stall: plan.write_stall.and_then(positive),
        }
    }
}

impl DigitsStream {
    /// A stream that starts now and follows `plan`.
    #[must_use]
    pub fn new(plan: StreamPlan, shutdown: Shutdown, tracker: StreamTracker) -> Self {
        let started = Instant::now();
        let close_at = plan.max_duration.map_or(NEVER, saturating_nanos);
        Self {
            timer: tokio::time::sleep_until(started),
            state: State {
                schedule: Schedule::new(&plan),
                next_id: plan.first_id,
                started,
                last_write: 0,
                close_at,
                shutdown,
                close_reason: EndReason::MaxDuration,
                shutdown_seen: false,
                greeted: false,
                done: false,
                tracker,
            },
        }
    }
}

impl State {
    /// Nanoseconds from the start to `moment`.
    fn since_start(&self, moment: Instant) -> u64 {
        saturating_nanos(moment.saturating_duration_since(self.started))
    }

    /// The moment `nanos` after the start.
    fn at(&self, nanos: u64) -> Instant {
        saturating_at(self.started, Duration::from_nanos(nanos))
    }

    /// Notes a shutdown: the stream closes after its share of the drain window.
    fn watch_shutdown(&mut self, now: u64) {
        if !self.shutdown_seen && self.shutdown.is_triggered() {
            self.shutdown_seen = true;
            let close = now.saturating_add(saturating_nanos(self.shutdown.close_delay()));
            if close < self.close_at {
                self.close_at = close;
                self.close_reason = EndReason::Shutdown;
            }
        }
    }

    /// Encodes whatever is due at `now`, if anything.
    fn due_chunk(&mut self, now: u64) -> Option<Bytes> {
        ENCODER.with_borrow_mut(|buf| {
            // Reclaims the space of chunks the connections have dropped, or allocates anew
            // while some are still held.
            buf.reserve(MAX_CHUNK);
            self.encode_due(buf, now)
        })
    }

    fn encode_due(&mut self, buf: &mut BytesMut, now: u64) -> Option<Bytes> {
        let mut events = 0;
        if !self.greeted {
            self.greeted = true;
            encode::write_retry(buf, self.schedule.retry_ms);
        }
        if now >= self.close_at {
            // The hint again right before the close: clients reconnect and resume.
            encode::write_retry(buf, self.schedule.retry_ms);
            self.finish(self.close_reason);
            return Some(self.flush(buf, events));
        }
        while !self.done && buf.len() < CATCH_UP_BATCH_BYTES {
            let id = self.next_id;
            let due = self.due(id);
            if now < due {
                break;
            }
            self.tracker.sent_late(now - due);
            if id >= self.schedule.count {
                encode::write_named_event(buf, id, BYE_EVENT, BYE_DATA);
                self.finish(EndReason::Completed);
            } else {
                encode::write_number_event(buf, id);
                self.next_id += 1;
            }
            events += 1;
        }
        if events == 0 && self.keepalive_due().is_some_and(|at| now >= at) {
            encode::write_comment(buf, KEEPALIVE_COMMENT);
        }
        if buf.is_empty() {
            return None;
        }
        self.last_write = now;
        Some(self.flush(buf, events))
    }

    fn finish(&mut self, reason: EndReason) {
        self.done = true;
        self.tracker.ended(reason);
    }

    fn flush(&mut self, buf: &mut BytesMut, events: u64) -> Bytes {
        self.tracker.sent(events, buf.len());
        buf.split().freeze()
    }

    fn due(&self, id: u64) -> u64 {
        due_nanos_after_start(self.schedule.first_id, self.schedule.interval, id)
    }

    fn keepalive_due(&self) -> Option<u64> {
        self.schedule
            .keepalive
            .map(|period| self.last_write.saturating_add(period.get()))
    }

    /// The earliest moment something will be due.
    fn next_deadline(&self) -> Instant {
        let mut deadline = self.due(self.next_id);
        if let Some(keepalive) = self.keepalive_due() {
            deadline = deadline.min(keepalive);
        }
        self.at(deadline.min(self.close_at))
    }

    fn count_write_stall(&mut self) {
        if self.done {
            return;
        }
        if let Some(stall) = self.schedule.write_stall {
            let quiet = self
                .since_start(Instant::now())
                .saturating_sub(self.last_write);
            if quiet >= stall.get() {
                self.tracker.ended(EndReason::WriteStalled);
            }
        }
    }
}

impl Stream for DigitsStream {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut this = self.project();
        if this.state.done {
            return Poll::Ready(None);
        }
        loop {
            let now = this.state.since_start(Instant::now());
            this.state.watch_shutdown(now);
            if let Some(chunk) = this.state.due_chunk(now) {
                return Poll::Ready(Some(Ok(chunk)));
            }
            let deadline = this.state.next_deadline();
            if this.timer.deadline() != deadline {
                this.timer.as_mut().reset(deadline);
            }
            if this.timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
        }
    }
}

fn saturating_at(from: Instant, after: Duration) -> Instant {
    from.checked_add(after).unwrap_or_else(|| from + FAR_FUTURE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::digits::plan::{decide, Decision, StreamDefaults};
    use crate::limits::StreamLimit;
    use crate::sse::parse::{OwnedMessageEvent, Parser};
    use crate::telemetry::Metrics;
    use futures_util::StreamExt;
    use std::sync::Arc;

    struct Harness {
        stream: DigitsStream,
        metrics: Arc<Metrics>,
        shutdown: Shutdown,
    }

    fn harness(config: Config, query: &str, last_event_id: Option<&str>) -> Harness {
        let Ok(Decision::Stream(plan)) = decide(
            query,
            last_event_id.map(str::as_bytes),
            &StreamDefaults::from(&config),
        ) else {
            panic!("not a stream");
        };
        let metrics = Metrics::new(10);
        let shutdown = Shutdown::new(Duration::from_millis(config.drain_ms));
        let tracker = metrics.stream_started(StreamLimit::new(1).try_acquire().unwrap());
        Harness {
            stream: DigitsStream::new(plan, shutdown.clone(), tracker),
            metrics,
            shutdown,
        }
    }

    /// Collects the body with arrival times relative to the start.
    async fn collect(stream: DigitsStream) -> Vec<(Duration, String)> {
        let start = Instant::now();
        stream
            .map(|chunk| {
                let text = String::from_utf8(chunk.unwrap().to_vec()).unwrap();
                (start.elapsed(), text)
            })
            .collect()
            .await
    }

    fn body(chunks: &[(Duration, String)]) -> String {
        chunks.iter().map(|(_, text)| text.as_str()).collect()
    }

    fn events(body: &str) -> Vec<OwnedMessageEvent> {
        Parser::new().feed_collect(body.as_bytes())
    }

    #[tokio::test(start_paused = true)]
    async fn sends_retry_then_numbers_then_bye_on_a_drift_free_schedule() {
        let h = harness(Config::default(), "count=4&interval_ms=100", None);
        let chunks = collect(h.stream).await;
        assert_eq!(
            body(&chunks),
            "retry: 3000\n\nid: 1\ndata: 1\n\nid: 2\ndata: 2\n\nid: 3\ndata: 3\n\n\
             id: 4\nevent: bye\ndata: bye-bye\n\n"
        );
        let times: Vec<u128> = chunks.iter().map(|(t, _)| t.as_millis()).collect();
        assert_eq!(times, vec![0, 100, 200, 300]);
        let text = h.metrics.encode();
        assert!(text.contains("sse_events_sent_total 4\n"), "{text}");
        assert!(text.contains("reason=\"completed\"} 1"), "{text}");
        assert_eq!(h.metrics.streams_open(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_reader_gets_every_number_late_and_the_schedule_catches_up() {
        let h = harness(Config::default(), "count=6&interval_ms=100", None);
        let mut stream = Box::pin(h.stream);
        let start = Instant::now();
        let mut seen = Vec::new();
        while let Some(chunk) = stream.next().await {
            seen.push((start.elapsed().as_millis(), chunk.unwrap()));
            if seen.len() == 2 {
                // The reader stalls for 350 ms: events 3..5 fall due meanwhile.
                tokio::time::sleep(Duration::from_millis(350)).await;
            }
        }
        let text: String = seen
            .iter()
            .map(|(_, c)| String::from_utf8(c.to_vec()).unwrap())
            .collect();
        let ids: Vec<String> = events(&text).into_iter().map(|e| e.last_event_id).collect();
        assert_eq!(ids, ["1", "2", "3", "4", "5", "6"]);
        let times: Vec<u128> = seen.iter().map(|(t, _)| *t).collect();
        // 3, 4 and 5 are overdue at 450 ms and go out in one chunk; 6 is back on the
        // original grid at 500 ms.
        assert_eq!(times, vec![0, 100, 450, 500]);
        // Each is counted as late as it was: 250, 150 and 50 ms; the rest on time.
        let text = h.metrics.encode();
        for (le, count) in [
            ("0.001", 3),
            ("0.02", 3),
            ("0.05", 4),
            ("0.2", 5),
            ("0.5", 6),
        ] {
            let line = format!("sse_event_lateness_seconds_bucket{{le=\"{le}\"}} {count}\n");
            assert!(text.contains(&line), "no {line:?} in\n{text}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn resumes_after_the_last_event_id() {
        let h = harness(Config::default(), "count=5&interval_ms=10", Some("2"));
        let ids: Vec<String> = events(&body(&collect(h.stream).await))
            .into_iter()
            .map(|e| e.data)
            .collect();
        assert_eq!(ids, ["3", "4", "bye-bye"]);
    }

    #[tokio::test(start_paused = true)]
    async fn keepalive_comments_fill_quiet_time_and_reset_with_each_event() {
        let config = Config {
            keepalive_secs: 1,
            ..Config::default()
        };
        let h = harness(config, "count=2&interval_ms=2500", None);
        let chunks = collect(h.stream).await;
        let schedule: Vec<(u128, &str)> = chunks
            .iter()
            .map(|(t, text)| (t.as_millis(), text.as_str()))
            .collect();
        assert_eq!(
            schedule,
            vec![
                (0, "retry: 3000\n\nid: 1\ndata: 1\n\n"),
                (1000, ": keep-alive\n\n"),
                (2000, ": keep-alive\n\n"),
                (2500, "id: 2\nevent: bye\ndata: bye-bye\n\n"),
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn max_duration_ends_with_a_retry_hint() {
        let h = harness(Config::default(), "interval_ms=400&max_secs=1", None);
        let chunks = collect(h.stream).await;
        let last = chunks.last().unwrap();
        assert_eq!(last.0, Duration::from_secs(1));
        assert_eq!(last.1, "retry: 3000\n\n");
        let ids: Vec<String> = events(&body(&chunks)).into_iter().map(|e| e.data).collect();
        assert_eq!(ids, ["1", "2", "3"]);
        assert!(h.metrics.encode().contains("reason=\"max_duration\"} 1"));
    }

    #[tokio::test(start_paused = true)]
    async fn after_the_trigger_a_woken_stream_closes_within_the_drain_window() {
        let config = Config {
            drain_ms: 500,
            ..Config::default()
        };
        let h = harness(config, "interval_ms=3600000", None);
        let mut stream = Box::pin(h.stream);
        let start = Instant::now();
        let trigger_at = start + Duration::from_secs(10);
        let mut chunks = Vec::new();
        let mut triggered = false;
        loop {
            tokio::select! {
                chunk = stream.next() => match chunk {
                    Some(chunk) => chunks.push((start.elapsed(), chunk.unwrap())),
                    None => break,
                },
                // actix's graceful stop wakes the connection's task, which polls the stream
                // again: here the select's next turn does.
                () = tokio::time::sleep_until(trigger_at), if !triggered => {
                    triggered = true;
                    h.shutdown.trigger();
                }
            }
        }
        // The first event, then nothing (keep-alive is 15 s) until the closing hint.
        assert_eq!(chunks.len(), 2, "{chunks:?}");
        let (closed_at, hint) = chunks.last().unwrap();
        assert_eq!(hint.as_ref(), b"retry: 3000\n\n");
        assert!(
            *closed_at >= Duration::from_secs(10) && *closed_at < Duration::from_millis(10_500),
            "closed at {closed_at:?}"
        );
        drop(stream);
        assert!(h.metrics.encode().contains("reason=\"shutdown\"} 1"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_stream_started_after_the_trigger_closes_within_the_drain_window() {
        let config = Config {
            drain_ms: 500,
            ..Config::default()
        };
        let h = harness(config, "interval_ms=3600000", None);
        h.shutdown.trigger();
        let chunks = collect(h.stream).await;
        // The first event is due at once; a drawn delay of 0 closes before it, in one chunk.
        let text = body(&chunks);
        assert!(
            text == "retry: 3000\n\nid: 1\ndata: 1\n\nretry: 3000\n\n"
                || text == "retry: 3000\n\nretry: 3000\n\n",
            "{chunks:?}"
        );
        let closed_at = chunks.last().unwrap().0;
        assert!(closed_at < Duration::from_millis(500), "{chunks:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_stream_counts_as_client_gone() {
        let h = harness(Config::default(), "", None);
        let mut stream = Box::pin(h.stream);
        stream.next().await.unwrap().unwrap();
        assert_eq!(h.metrics.streams_open(), 1);
        drop(stream);
        assert_eq!(h.metrics.streams_open(), 0);
        assert!(h.metrics.encode().contains("reason=\"client_gone\"} 1"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_count_of_one_sends_only_bye() {
        let h = harness(Config::default(), "count=1", None);
        assert_eq!(
            body(&collect(h.stream).await),
            "retry: 3000\n\nid: 1\nevent: bye\ndata: bye-bye\n\n"
        );
    }

    #[test]
    fn a_stream_fits_a_256_byte_allocation() {
        // actix boxes the body once per response, in a wrapper 8 bytes larger: up to 248
        // bytes and glibc's 8-byte header fit a 256-byte chunk. More than 240 here costs
        // every stream a 272- to 320-byte chunk instead.
        let size = size_of::<DigitsStream>();
        assert!(size <= 240, "DigitsStream is {size} bytes");
    }
}
