//! One EventSource, behaving as a browser's does: GET with `Accept: text/event-stream` (or
//! the request a [`RequestSpec`] describes: POST, a body, headers), follow redirects (with
//! the same method and body), read the body chunk by chunk through the shared WHATWG parser,
//! reconnect after the `retry:` delay with `Last-Event-ID`, stop on 204 or after `bye`,
//! give up on a non-200 status, a wrong content type or a coding it did not ask for.
//! Where a server could make it misbehave, [`Limits`](crate::client::limits::Limits) bound
//! it: a stream whose pending line or event passes `max_event_bytes` is closed and reopened,
//! so a server that never ends one cannot grow memory without bound; every reconnection
//! delay is kept within the retry bounds; a `503` or `429` with `Retry-After` is retried
//! after that delay (within the same bounds) instead of given up on.
//! It reports what happens to a [`Recorder`]; the load test counts and times, the
//! command-line client prints.
//!
//! The hot path (one chunk, usually one event) takes no lock and allocates nothing here:
//! the stop check is an atomic load, and the deadline and idle timeout share one timer per
//! connection that is re-armed only when it fires.

use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Url;
use sse_digits::sse::{MessageEvent, Parser};

use crate::client::limits::{retry_after, Limits, RetryBounds};
use crate::client::request::RequestSpec;
use crate::client::stop::Stop;
use crate::client::transport::{Body, Connector, Failure, Opened, ReadError};

/// How an event source behaves where a browser leaves a choice.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Reconnection delay until the server sends a `retry:` hint (browsers use about 3 s).
    pub default_retry: Duration,
    /// The range every reconnection delay is kept in, whatever the server asks.
    pub retry_bounds: RetryBounds,
    /// Longest wait from sending the request to the response headers.
    pub open_timeout: Duration,
    /// A connection that delivers no byte at all (not even a keep-alive) for this long is
    /// taken for dead and reopened.
    pub idle_timeout: Duration,
    /// Close our own connection after this many events, then reconnect (exercises resume).
    pub drop_after: Option<u64>,
    /// Most bytes held for a line that has not ended or an event not yet dispatched: past
    /// it the connection is closed and reopened, so a stream that never ends a line or an
    /// event costs at most this much plus one read chunk.
    pub max_event_bytes: usize,
    /// Redirects followed to open one stream.
    pub max_redirects: u32,
    /// What each request carries (method, headers, body), shared by every event source.
    pub request: Arc<RequestSpec>,
}

impl ClientOptions {
    /// The options under `limits`; `drop_after` is the caller's.
    #[must_use]
    pub fn from_limits(limits: &Limits, drop_after: Option<u64>) -> Self {
        Self {
            default_retry: Duration::from_millis(limits.retry_ms),
            retry_bounds: limits.retry_bounds(),
            open_timeout: Duration::from_millis(limits.open_timeout_ms),
            idle_timeout: Duration::from_secs(limits.idle_timeout_secs),
            drop_after,
            max_event_bytes: limits.max_event_bytes,
            max_redirects: limits.max_redirects,
            request: Arc::default(),
        }
    }

    /// The delay before the next reconnection, and what asked for it: the `Retry-After` of
    /// the last answer first, then the stream's last `retry:` field, then the default; always
    /// within the retry bounds. The one place the delay is decided.
    #[must_use]
    pub fn plan_retry(
        &self,
        retry_after: Option<Duration>,
        retry_field_ms: Option<u64>,
    ) -> (Duration, Asked) {
        let asked = match (retry_after, retry_field_ms) {
            (Some(delay), _) => Asked::RetryAfter(delay),
            (None, Some(ms)) => Asked::RetryField(Duration::from_millis(ms)),
            (None, None) => Asked::Nothing,
        };
        let wanted = match asked {
            Asked::RetryAfter(delay) | Asked::RetryField(delay) => delay,
            Asked::Nothing => self.default_retry,
        };
        (self.retry_bounds.clamp(wanted).0, asked)
    }

    /// The same, sending `request`'s requests.
    #[must_use]
    pub fn with_request(self, request: Arc<RequestSpec>) -> Self {
        Self { request, ..self }
    }
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self::from_limits(&Limits::default(), None)
    }
}

/// How an open stream ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Closed {
    /// The server ended the body before `bye` (a planned close, a restart, `max_secs`).
    ServerEnded,
    /// We closed it after `drop_after` events.
    Dropped,
    /// The body broke, for this reason.
    ReadError(ReadError),
    /// No byte arrived within the idle timeout.
    IdleTimeout,
    /// We closed it: the line or event pending passed `max_event_bytes`.
    EventTooLarge,
    /// The `bye` event arrived: the stream is complete.
    Bye,
    /// The run's deadline came, or the run was cancelled.
    Stopped,
}

/// Why the event source stopped for good.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// The `bye` event arrived.
    Bye,
    /// The server answered 204 No Content: nothing more to send.
    NoContent,
    /// The server answered with a status that makes a browser give up.
    Status(u16),
    /// The server answered 200 with another content type.
    ContentType(String),
    /// The server answered 200 with a body in a coding the client did not ask for.
    Encoding(String),
    /// More redirects than allowed.
    TooManyRedirects,
    /// The run's deadline came, or the run was cancelled.
    Stopped,
}

/// What the server asked the next reconnection delay to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asked {
    /// Nothing: the default delay.
    Nothing,
    /// A `retry:` field.
    RetryField(Duration),
    /// A `Retry-After` header on a `503` or `429`.
    RetryAfter(Duration),
}

/// What an event source reports. Every method has an empty default, so a recorder
/// implements only what it cares about.
pub trait Recorder {
    /// A connection attempt starts; `last_event_id` is sent when not empty.
    fn connecting(&mut self, _at: Instant, _last_event_id: &str) {}
    /// The response headers of a stream arrived, `time_to_open` after the request started.
    fn opened(&mut self, _at: Instant, _time_to_open: Duration) {}
    /// A connection attempt failed after `elapsed`.
    fn open_failed(&mut self, _at: Instant, _elapsed: Duration, _failure: &Failure) {}
    /// An event was dispatched; `at` is the arrival time of the chunk that completed it.
    fn event(&mut self, _event: MessageEvent<'_>, _at: Instant) {}
    /// A stream ended; `keepalives` comments arrived on it; `retry_hint` is the `retry:`
    /// value this connection sent, if it sent one.
    fn closed(&mut self, _at: Instant, _how: &Closed, _keepalives: u64, _retry_hint: Option<u64>) {}
    /// A redirect with this status is followed to `to`.
    fn redirected(&mut self, _status: u16, _to: &Url) {}
    /// Field values of the stream held bytes that are not UTF-8 (`fields` more of them);
    /// they were decoded with U+FFFD in their place.
    fn invalid_utf8(&mut self, _fields: u64) {}
    /// The reconnection wait starts: `delay` is what the client waits (within its retry
    /// bounds), `asked` what the server asked for.
    fn retrying(&mut self, _delay: Duration, _asked: Asked) {}
    /// The reconnection wait is over: `planned` was the delay, `actual` what passed.
    fn waited(&mut self, _planned: Duration, _actual: Duration) {}
    /// The event source stopped for good.
    fn finished(&mut self, _end: &End) {}
}

/// What one connection attempt led to.
enum Next {
    /// Wait the retry delay, then connect again.
    Reconnect,
    /// Stop for good.
    End(End),
}

/// One event source.
#[derive(Debug)]
pub struct EventSource {
    /// How its connections are made.
    connector: Connector,
    /// The stream's URL.
    url: Url,
    /// Behaviour where a browser leaves a choice.
    options: ClientOptions,
    /// Parser state that outlives connections: the last event id and the retry hint.
    parser: Parser,
    /// The delay a `Retry-After` asked for, for the next reconnection only.
    retry_after: Option<Duration>,
}

impl EventSource {
    /// An event source for `url` that has not connected yet.
    #[must_use]
    pub fn new(connector: Connector, url: Url, options: ClientOptions) -> Self {
        Self {
            connector,
            url,
            options,
            parser: Parser::new(),
            retry_after: None,
        }
    }

    /// Resume from `id` on the first connection, as if it had been seen before.
    pub fn resume_from(&mut self, id: &str) {
        self.parser.set_last_event_id(id);
    }

    /// The last event id seen (sent as `Last-Event-ID` on the next connection).
    #[must_use]
    pub fn last_event_id(&self) -> &str {
        self.parser.last_event_id()
    }

    /// Runs the event source until it ends for good or `stop` says so.
    pub async fn run(&mut self, recorder: &mut impl Recorder, stop: &Stop) -> End {
        let end = loop {
            if stop.is_over() {
                break End::Stopped;
            }
            match self.connect_and_read(recorder, stop).await {
                Next::End(end) => break end,
                Next::Reconnect => {}
            }
            let (planned, asked) = self
                .options
                .plan_retry(self.retry_after.take(), self.parser.retry_ms());
            recorder.retrying(planned, asked);
            let started = Instant::now();
            if !stop.sleep(planned).await {
                break End::Stopped;
            }
            recorder.waited(planned, started.elapsed());
        };
        recorder.finished(&end);
        end
    }

    async fn connect_and_read(&mut self, recorder: &mut impl Recorder, stop: &Stop) -> Next {
        let started = Instant::now();
        recorder.connecting(started, self.parser.last_event_id());
        let response = match self.open_following_redirects(recorder, stop, started).await {
            Ok(response) => response,
            Err(next) => return next,
        };
        let opened = Instant::now();
        recorder.opened(opened, opened - started);
        self.read_body(response.body, recorder, stop).await
    }

    /// Sends the request, follows redirects, and checks the answer as a browser does: a
    /// stream to read, or what to do instead.
    async fn open_following_redirects(
        &mut self,
        recorder: &mut impl Recorder,
        stop: &Stop,
        started: Instant,
    ) -> Result<Opened, Next> {
        // The original URL is kept for reconnections, as a browser's EventSource does.
        let mut redirected: Option<Url> = None;
        let mut followed = 0;
        // One number per attempt, kept across its redirects: the same body each time.
        let index = self.options.request.next_index();
        loop {
            let url = redirected.as_ref().unwrap_or(&self.url);
            let open = self.connector.open(
                url,
                self.parser.last_event_id(),
                &self.options.request,
                index,
            );
            let send = tokio::time::timeout(self.options.open_timeout, open);
            let sent = tokio::select! {
                sent = send => sent,
                () = tokio::time::sleep_until(stop.tokio_deadline()) => {
                    return Err(Next::End(End::Stopped));
                }
            };
            let response = match sent {
                Ok(Ok(response)) => response,
                Ok(Err(failure)) => return failed(recorder, started, failure, Next::Reconnect),
                Err(_elapsed) => {
                    return failed(recorder, started, Failure::Timeout, Next::Reconnect)
                }
            };
            let status = response.status;
            match status {
                200 => {}
                204 => return Err(Next::End(End::NoContent)),
                301 | 302 | 303 | 307 | 308 => {
                    let Some(to) = response.location.as_deref().and_then(|l| url.join(l).ok())
                    else {
                        return failed(
                            recorder,
                            started,
                            Failure::Status(status),
                            Next::End(End::Status(status)),
                        );
                    };
                    if followed >= self.options.max_redirects {
                        let failure = Failure::TooManyRedirects(followed);
                        return failed(
                            recorder,
                            started,
                            failure,
                            Next::End(End::TooManyRedirects),
                        );
                    }
                    followed += 1;
                    recorder.redirected(status, &to);
                    redirected = Some(to);
                    continue;
                }
                // Overloaded or rate-limited, and saying when to come back.
                429 | 503 => {
                    let now = std::time::SystemTime::now();
                    let delay = response
                        .retry_after
                        .as_deref()
                        .and_then(|value| retry_after(value, now));
                    let next = match delay {
                        Some(delay) => {
                            self.retry_after = Some(delay);
                            Next::Reconnect
                        }
                        None => Next::End(End::Status(status)),
                    };
                    return failed(recorder, started, Failure::Status(status), next);
                }
                _ => {
                    return failed(
                        recorder,
                        started,
                        Failure::Status(status),
                        Next::End(End::Status(status)),
                    )
                }
            }
            if !is_event_stream(response.content_type.as_deref()) {
                let found = response.content_type.unwrap_or_default();
                let failure = Failure::ContentType(found.clone());
                return failed(
                    recorder,
                    started,
                    failure,
                    Next::End(End::ContentType(found)),
                );
            }
            if let Some(coding) = response.unreadable_coding.clone() {
                let failure = Failure::Encoding(coding.clone());
                return failed(recorder, started, failure, Next::End(End::Encoding(coding)));
            }
            return Ok(response);
        }
    }

    async fn read_body(
        &mut self,
        mut body: Body,
        recorder: &mut impl Recorder,
        stop: &Stop,
    ) -> Next {
        self.parser.start_new_stream();
        let comments_before = self.parser.comments_seen();
        let mut invalid_utf8 = self.parser.invalid_utf8_seen();
        let retry_fields_before = self.parser.retry_fields_seen();
        let mut events = 0u64;
        let mut last_bytes = tokio::time::Instant::now();
        let idle = self.options.idle_timeout;
        // One timer for both the deadline and the idle timeout, re-armed only when it fires.
        let mut timer = pin!(tokio::time::sleep_until(
            (last_bytes + idle).min(stop.tokio_deadline())
        ));
        let how = loop {
            tokio::select! {
                biased;
                chunk = body.chunk() => match chunk {
                    Ok(Some(bytes)) => {
                        // Read after the run's end: not measured. At the deadline every
                        // source ends at once, and a chunk read in that burst would be
                        // timed by the load generator's own queue, not the server.
                        if stop.is_over() {
                            break Closed::Stopped;
                        }
                        let at = Instant::now();
                        last_bytes = tokio::time::Instant::from_std(at);
                        let mut bye = false;
                        self.parser.feed(&bytes, |event| {
                            events += 1;
                            bye |= event.event_type == "bye";
                            recorder.event(event, at);
                        });
                        if self.parser.invalid_utf8_seen() != invalid_utf8 {
                            recorder.invalid_utf8(self.parser.invalid_utf8_seen() - invalid_utf8);
                            invalid_utf8 = self.parser.invalid_utf8_seen();
                        }
                        if bye {
                            break Closed::Bye;
                        }
                        if self.options.drop_after.is_some_and(|n| events >= n) {
                            break Closed::Dropped;
                        }
                        if self.parser.pending_bytes() > self.options.max_event_bytes {
                            break Closed::EventTooLarge;
                        }
                    }
                    Ok(None) => break Closed::ServerEnded,
                    Err(error) => break Closed::ReadError(error),
                },
                () = &mut timer => {
                    if stop.is_over() {
                        break Closed::Stopped;
                    }
                    let idle_until = last_bytes + idle;
                    if tokio::time::Instant::now() >= idle_until {
                        break Closed::IdleTimeout;
                    }
                    timer.as_mut().reset(idle_until.min(stop.tokio_deadline()));
                }
            }
        };
        let keepalives = self.parser.comments_seen() - comments_before;
        // The hint counts only if this connection sent one.
        let retry_hint = (self.parser.retry_fields_seen() > retry_fields_before)
            .then(|| self.parser.retry_ms())
            .flatten();
        recorder.closed(Instant::now(), &how, keepalives, retry_hint);
        match how {
            Closed::Bye => Next::End(End::Bye),
            Closed::Stopped => Next::End(End::Stopped),
            Closed::ServerEnded
            | Closed::Dropped
            | Closed::ReadError(_)
            | Closed::IdleTimeout
            | Closed::EventTooLarge => Next::Reconnect,
        }
    }
}

/// Reports a failed attempt that started at `started`, and says what comes next.
fn failed(
    recorder: &mut impl Recorder,
    started: Instant,
    failure: Failure,
    next: Next,
) -> Result<Opened, Next> {
    recorder.open_failed(Instant::now(), started.elapsed(), &failure);
    Err(next)
}

/// True for `text/event-stream`, with or without parameters, in any letter case.
pub(crate) fn is_event_stream(value: Option<&str>) -> bool {
    value
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("text/event-stream"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_content_type_check_ignores_parameters_and_case() {
        let ok = |s: &'static str| is_event_stream(Some(s));
        assert!(ok("text/event-stream"));
        assert!(ok("Text/Event-Stream; charset=utf-8"));
        assert!(!ok("text/plain"));
        assert!(!ok("text/event-streams"));
        assert!(!is_event_stream(None));
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// `--retry-ms 300`, and the default bounds (100 ms to 60 s).
    fn options() -> ClientOptions {
        ClientOptions::from_limits(
            &Limits {
                retry_ms: 300,
                ..Limits::default()
            },
            None,
        )
    }

    #[test]
    fn the_retry_field_sets_the_delay() {
        assert_eq!(
            options().plan_retry(None, Some(200)),
            (ms(200), Asked::RetryField(ms(200)))
        );
    }

    #[test]
    fn without_a_hint_the_delay_is_the_default() {
        assert_eq!(options().plan_retry(None, None), (ms(300), Asked::Nothing));
        let browser = ClientOptions::default().plan_retry(None, None);
        assert_eq!(browser, (ms(3000), Asked::Nothing));
    }

    #[test]
    fn retry_after_comes_before_the_retry_field() {
        let secs = Duration::from_secs(2);
        assert_eq!(
            options().plan_retry(Some(secs), Some(200)),
            (secs, Asked::RetryAfter(secs))
        );
        assert_eq!(
            options().plan_retry(Some(secs), None),
            (secs, Asked::RetryAfter(secs))
        );
    }

    /// What was asked is kept beside the delay within bounds, so a clamp can be counted.
    #[test]
    fn a_delay_out_of_bounds_is_clamped_and_what_was_asked_kept() {
        assert_eq!(
            options().plan_retry(None, Some(0)),
            (ms(100), Asked::RetryField(ms(0)))
        );
        let days = Duration::from_secs(1_000_000);
        assert_eq!(
            options().plan_retry(Some(days), None),
            (Duration::from_secs(60), Asked::RetryAfter(days))
        );
        let below = ClientOptions::from_limits(
            &Limits {
                retry_ms: 10,
                ..Limits::default()
            },
            None,
        );
        assert_eq!(below.plan_retry(None, None), (ms(100), Asked::Nothing));
    }

    #[test]
    fn resume_from_sets_the_last_event_id() {
        let mut source = EventSource::new(
            Connector::Hyper(reqwest::Client::new()),
            Url::parse("http://127.0.0.1:1/").unwrap(),
            ClientOptions::default(),
        );
        source.resume_from("41");
        assert_eq!(source.last_event_id(), "41");
    }
}
