//! `--llm`: the load test's [`CompletionReader`]. It reads each event of one completion with
//! [`crate::profile::llm`], times the request (first byte, first token, gaps between content
//! events, end), and when the request ends judges it (completed, or failed by cause) and
//! hands its samples and counts to the thread's shard. One per goose user, reused for each
//! of its requests; only completed requests are measured.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sse_digits::sse::MessageEvent;

use crate::client::{CompletionReader, Failure, Flow, Outcome};
use crate::measure::counters::Counters;
use crate::measure::metrics::{record, Metrics};
use crate::profile::llm::{read, Chunk};

/// One request as goose's request table shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestEnd {
    /// Request sent to the end of its stream, or to its failure.
    pub elapsed: Duration,
    /// The status answered, if any.
    pub status: Option<u16>,
    /// Why it failed; `None` for a completed request.
    pub error: Option<String>,
}

/// What one request has shown so far.
#[derive(Debug, Default)]
struct Request {
    /// When it was sent.
    sent: Option<Instant>,
    /// When its response headers arrived (a stream opened).
    opened: Option<Instant>,
    /// The arrival of the first event with content.
    first_content: Option<Instant>,
    /// The arrival of the latest event with content.
    last_content: Option<Instant>,
    /// Events with content.
    content_events: u64,
    /// The arrival of the latest event of any kind (`[DONE]` ends the request there).
    last_event: Option<Instant>,
    /// `[DONE]` arrived.
    done: bool,
    /// A chunk had a finish reason.
    finished: bool,
    /// The completion tokens its usage reported.
    completion_tokens: Option<u64>,
    /// The server sent an error in the stream, with its message if any.
    error: Option<Option<String>>,
    /// Some data was not a JSON object.
    malformed: bool,
}

/// Records one goose user's completion requests into a run's [`Metrics`].
#[derive(Debug)]
pub struct LlmRecorder {
    /// The run's measurements.
    metrics: Arc<Metrics>,
    /// The request in flight.
    request: Request,
    /// Gaps between the content events of the request in flight, kept until it completes
    /// (allocated once per user, reused).
    gaps: Vec<Duration>,
}

impl LlmRecorder {
    /// A recorder into `metrics`.
    #[must_use]
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self {
            metrics,
            request: Request::default(),
            gaps: Vec::new(),
        }
    }

    /// Judges the request that ended with `outcome` and records it; ready for the next.
    /// `None` for a request the run's deadline stopped, or that was never sent: neither a
    /// success nor a failure.
    pub fn finish(&mut self, outcome: &Outcome) -> Option<RequestEnd> {
        let request = std::mem::take(&mut self.request);
        let sent = request.sent?;
        let now = Instant::now();
        if request.opened.is_some() {
            self.metrics
                .live
                .open_streams
                .fetch_sub(1, Ordering::Relaxed);
        }
        // Content events count as the run's events (its events/s, CPU per event),
        // measured or not.
        let mut counters = Counters {
            events: request.content_events,
            ..Counters::default()
        };
        let judged = judge(&request, outcome, &mut counters);
        let end = match judged {
            Judged::Stopped => {
                self.metrics
                    .with_shard(|shard| shard.counters.add(&counters));
                self.gaps.clear();
                return None;
            }
            Judged::Failed(why) => {
                self.metrics.live.errors.fetch_add(1, Ordering::Relaxed);
                RequestEnd {
                    elapsed: now - sent,
                    status: match outcome {
                        Outcome::Failed(Failure::Status(code), _) => Some(*code),
                        Outcome::Failed(Failure::ContentType(_) | Failure::Encoding(_), _) => {
                            Some(200)
                        }
                        Outcome::Failed(..) => None,
                        _ => Some(200),
                    },
                    error: Some(why),
                }
            }
            Judged::Completed => {
                let ended = if request.done {
                    request.last_event.unwrap_or(now)
                } else {
                    now
                };
                RequestEnd {
                    elapsed: ended - sent,
                    status: Some(200),
                    error: None,
                }
            }
        };
        let gaps = &mut self.gaps;
        self.metrics.with_shard(|shard| {
            shard.counters.add(&counters);
            if end.error.is_some() {
                return;
            }
            let h = &mut shard.histograms.llm;
            if let Some(opened) = request.opened {
                record(&mut h.ttfb, opened - sent);
            }
            if let Some(first) = request.first_content {
                record(&mut h.ttft, first - sent);
            }
            for gap in gaps.iter() {
                record(&mut h.inter_event, *gap);
            }
            record(&mut h.e2e, end.elapsed);
            if let Some(tokens) = request.completion_tokens.filter(|n| *n > 0) {
                if let Some(per_token) = time_per_token(&request, tokens) {
                    record(&mut h.itl, per_token);
                }
                let secs = end.elapsed.as_secs_f64();
                if secs > 0.0 {
                    let milli = (tokens as f64 / secs * 1000.0).round() as u64;
                    h.tokens_per_sec_milli
                        .saturating_record(milli.clamp(1, crate::measure::metrics::HIGHEST_US));
                }
            }
        });
        self.gaps.clear();
        Some(end)
    }
}

/// The time per output token after the first event: (last content event − first) over
/// the tokens that came after the first event. Servers that batch put several tokens in
/// the first event too, so those tokens are taken as `tokens / content events` (the mean
/// per event), not 1: with one token per event this is (last − first) / (tokens − 1), vLLM's
/// TPOT, and with `k` per event it stays the time per token rather than shrinking by
/// `(k − 1)` tokens. `None` with fewer than two content events.
fn time_per_token(request: &Request, tokens: u64) -> Option<Duration> {
    let (first, last) = (request.first_content?, request.last_content?);
    let events = request.content_events;
    if events < 2 {
        return None;
    }
    let after_first = tokens as f64 * (events - 1) as f64 / events as f64;
    (after_first > 0.0).then(|| Duration::from_secs_f64((last - first).as_secs_f64() / after_first))
}

/// What a request came to.
enum Judged {
    /// Its stream completed: measured.
    Completed,
    /// It failed, for this reason.
    Failed(String),
    /// The run's deadline stopped it.
    Stopped,
}

/// Counts `request`, which ended with `outcome`, into `counters` by its cause.
fn judge(request: &Request, outcome: &Outcome, counters: &mut Counters) -> Judged {
    let failed = |why: &str| Judged::Failed(why.to_owned());
    match outcome {
        Outcome::Stopped => {
            counters.llm_stopped_at_deadline += 1;
            return Judged::Stopped;
        }
        Outcome::Failed(failure, _) => {
            match failure {
                Failure::Refused => counters.failed_refused += 1,
                Failure::Timeout => counters.llm_timeouts += 1,
                Failure::Status(code) => {
                    counters.failed_status += 1;
                    *counters.status_codes.entry(*code).or_default() += 1;
                }
                Failure::ContentType(_) => counters.failed_content_type += 1,
                Failure::Encoding(_) => counters.failed_encoding += 1,
                Failure::TooManyRedirects(_) => counters.failed_redirects += 1,
                Failure::Other(kind) => {
                    counters.failed_other += 1;
                    counters.count_error(kind);
                }
            }
            return Judged::Failed(failure.to_string());
        }
        Outcome::Complete | Outcome::BodyEnded | Outcome::BodyBroke(_) => {}
        Outcome::TimedOut => {
            counters.llm_timeouts += 1;
            return failed("request timeout");
        }
        Outcome::EventTooLarge => {
            counters.event_too_large += 1;
            return failed("event too large");
        }
    }
    if let Some(message) = &request.error {
        counters.llm_error_events += 1;
        return Judged::Failed(match message {
            Some(message) => format!("error event: {message}"),
            None => "error event".to_owned(),
        });
    }
    if request.malformed {
        counters.llm_malformed += 1;
        return failed("data not JSON");
    }
    let complete = match outcome {
        Outcome::Complete => request.done,
        Outcome::BodyEnded => request.done || request.finished,
        _ => false,
    };
    if !complete {
        counters.llm_cut += 1;
        return match outcome {
            Outcome::BodyBroke(error) => {
                counters.count_read_error(&error.detail);
                Judged::Failed(format!("cut: {error}"))
            }
            _ => failed("cut before [DONE]"),
        };
    }
    counters.llm_completed += 1;
    match request.completion_tokens {
        Some(tokens) => counters.llm_output_tokens += tokens,
        None => counters.llm_without_usage += 1,
    }
    Judged::Completed
}

impl CompletionReader for LlmRecorder {
    fn sent(&mut self, at: Instant) {
        self.request = Request {
            sent: Some(at),
            ..Request::default()
        };
        self.gaps.clear();
        if let Some(arrivals) = self.metrics.live.arrivals.get() {
            arrivals.attempt(at);
        }
        self.metrics.with_shard(|shard| {
            shard.counters.llm_requests += 1;
            shard.counters.connect_attempts += 1;
        });
    }

    fn opened(&mut self, at: Instant) {
        self.request.opened = Some(at);
        if let Some(arrivals) = self.metrics.live.arrivals.get() {
            arrivals.opened(at);
        }
        self.metrics
            .live
            .open_streams
            .fetch_add(1, Ordering::Relaxed);
        self.metrics
            .with_shard(|shard| shard.counters.connections_opened += 1);
    }

    fn event(&mut self, event: MessageEvent<'_>, at: Instant) -> Flow {
        let request = &mut self.request;
        request.last_event = Some(at);
        match read(event.event_type, event.data) {
            Chunk::Done => {
                request.done = true;
                Flow::Complete
            }
            Chunk::Error(message) => {
                request.error = Some(message);
                Flow::Complete
            }
            Chunk::Malformed => {
                request.malformed = true;
                Flow::More
            }
            Chunk::Completion(chunk) => {
                if chunk.content {
                    if let Some(last) = request.last_content {
                        self.gaps.push(at - last);
                    }
                    request.first_content.get_or_insert(at);
                    request.last_content = Some(at);
                    request.content_events += 1;
                    self.metrics.live.events.fetch_add(1, Ordering::Relaxed);
                }
                request.finished |= chunk.finished;
                if chunk.completion_tokens.is_some() {
                    request.completion_tokens = chunk.completion_tokens;
                }
                Flow::More
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::{ReadError, ReadKind};

    fn message(data: &str) -> MessageEvent<'_> {
        MessageEvent {
            event_type: "message",
            data,
            last_event_id: "",
        }
    }

    const ROLE: &str =
        r#"{"choices":[{"index":0,"delta":{"role":"assistant"},"finish_reason":null}]}"#;
    const TOKEN: &str =
        r#"{"choices":[{"index":0,"delta":{"content":"tok "},"finish_reason":null}]}"#;
    const STOP: &str = r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#;
    const USAGE: &str = r#"{"choices":[],"usage":{"completion_tokens":5}}"#;

    /// One request: sent at t0, headers at +10 ms, the role at +10 ms, a token every 20 ms
    /// from +100 ms (5 tokens), a final chunk, usage, and `end` data last; then `outcome`.
    fn run(recorder: &mut LlmRecorder, end: &[&str], outcome: &Outcome) -> Option<RequestEnd> {
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        recorder.sent(t0);
        recorder.opened(ms(10));
        assert_eq!(recorder.event(message(ROLE), ms(10)), Flow::More);
        for k in 0..5 {
            assert_eq!(recorder.event(message(TOKEN), ms(100 + 20 * k)), Flow::More);
        }
        let mut flow = Flow::More;
        for data in end {
            flow = recorder.event(message(data), ms(190));
        }
        if *outcome == Outcome::Complete {
            assert_eq!(flow, Flow::Complete);
        }
        recorder.finish(outcome)
    }

    #[test]
    fn a_completed_request_is_timed_token_by_token() {
        let metrics = Metrics::new();
        let mut recorder = LlmRecorder::new(Arc::clone(&metrics));
        let end = run(&mut recorder, &[STOP, USAGE, "[DONE]"], &Outcome::Complete).unwrap();
        assert_eq!(end.error, None);
        assert_eq!(end.elapsed, Duration::from_millis(190));
        let (h, c) = metrics.merged();
        let ms = |h: &hdrhistogram::Histogram<u64>, q: f64| h.value_at_quantile(q) / 1000;
        assert_eq!(ms(&h.llm.ttfb, 0.5), 10);
        assert_eq!(ms(&h.llm.ttft, 0.5), 100);
        assert_eq!(h.llm.inter_event.len(), 4);
        assert_eq!(ms(&h.llm.inter_event, 0.5), 20);
        // (180 − 100) ms over 5 − 1 tokens.
        assert_eq!(ms(&h.llm.itl, 0.5), 20);
        assert_eq!(ms(&h.llm.e2e, 0.5), 190);
        // 5 tokens in 190 ms: 26.3 tokens/s.
        let rate = h.llm.tokens_per_sec_milli.value_at_quantile(0.5) as f64 / 1000.0;
        assert!((rate - 26.3).abs() < 0.1, "{rate}");
        assert_eq!(
            (c.llm_requests, c.llm_completed, c.llm_output_tokens),
            (1, 1, 5)
        );
        assert_eq!((c.connect_attempts, c.connections_opened), (1, 1));
        assert_eq!(c.events, 5, "content events");
        assert_eq!(metrics.live.open_streams.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn batched_tokens_are_timed_per_token_not_per_event() {
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let request = Request {
            first_content: Some(ms(260)),
            last_content: Some(ms(500)),
            content_events: 4,
            ..Request::default()
        };
        // 16 tokens, 4 per event: 12 tokens in the 240 ms after the first event.
        assert_eq!(
            time_per_token(&request, 16),
            Some(Duration::from_millis(20))
        );
        let one = Request {
            content_events: 1,
            ..request
        };
        assert_eq!(time_per_token(&one, 16), None);
    }

    #[test]
    fn without_usage_a_request_completes_but_has_no_token_rates() {
        let metrics = Metrics::new();
        let mut recorder = LlmRecorder::new(Arc::clone(&metrics));
        // The body ends after the final chunk, without [DONE]: complete all the same.
        assert!(run(&mut recorder, &[STOP], &Outcome::BodyEnded)
            .unwrap()
            .error
            .is_none());
        let (h, c) = metrics.merged();
        assert_eq!((c.llm_completed, c.llm_without_usage), (1, 1));
        assert!(h.llm.itl.is_empty() && h.llm.tokens_per_sec_milli.is_empty());
        assert_eq!(h.llm.inter_event.len(), 4);
    }

    #[test]
    fn failures_are_counted_by_cause_and_not_measured() {
        let metrics = Metrics::new();
        let mut recorder = LlmRecorder::new(Arc::clone(&metrics));
        let broke = Outcome::BodyBroke(ReadError::new(ReadKind::Cut, "io: unexpected end of file"));
        let error = r#"{"error":{"message":"overloaded"}}"#;
        let cases: [(&[&str], Outcome, &str); 5] = [
            (&[], Outcome::BodyEnded, "cut before [DONE]"),
            (&[], broke, "cut: io: unexpected end of file"),
            (&[error], Outcome::Complete, "error event: overloaded"),
            (
                &["oops", STOP, "[DONE]"],
                Outcome::Complete,
                "data not JSON",
            ),
            (&[], Outcome::TimedOut, "request timeout"),
        ];
        for (end, outcome, why) in cases {
            let end = run(&mut recorder, end, &outcome).unwrap();
            assert_eq!(end.error.as_deref(), Some(why));
            assert_eq!(end.status, Some(200));
        }
        let (h, c) = metrics.merged();
        assert_eq!(
            (
                c.llm_cut,
                c.llm_error_events,
                c.llm_malformed,
                c.llm_timeouts
            ),
            (2, 1, 1, 1)
        );
        assert_eq!(c.llm_completed, 0);
        assert_eq!(c.llm_failed(), 5);
        assert!(h.llm.ttft.is_empty() && h.llm.inter_event.is_empty());
    }

    #[test]
    fn a_refusal_counts_its_status_and_a_stop_is_no_failure() {
        let metrics = Metrics::new();
        let mut recorder = LlmRecorder::new(Arc::clone(&metrics));
        recorder.sent(Instant::now());
        let end = recorder
            .finish(&Outcome::Failed(Failure::Status(401), None))
            .unwrap();
        assert_eq!(end.status, Some(401));
        assert!(run(&mut recorder, &[], &Outcome::Stopped).is_none());
        // Never sent: nothing to judge.
        assert!(recorder.finish(&Outcome::Stopped).is_none());
        let (_, c) = metrics.merged();
        assert_eq!(c.status_codes.get(&401), Some(&1));
        assert_eq!((c.failed_status, c.llm_stopped_at_deadline), (1, 1));
        assert_eq!(c.llm_requests, 2);
    }
}
