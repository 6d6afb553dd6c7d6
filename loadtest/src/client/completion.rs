//! One streamed completion, as an LLM API client makes it: send the request the
//! [`RequestSpec`] describes (a POST with a JSON body), check the answer (200 and
//! `text/event-stream`), read the body through the shared WHATWG parser and hand each event
//! to a [`CompletionReader`], which says when the stream is complete (`[DONE]`, or an
//! error). Unlike an EventSource it never reconnects, sends no `Last-Event-ID` and follows
//! no redirect: a completion that breaks is a failed request, not a stream to resume.
//!
//! What a server can cost is bounded: the open timeout up to the response headers, a
//! timeout on the whole request, `max_event_bytes` on a pending line or event, and the
//! run's deadline, after which no chunk is measured (as in the event source).

use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Url;
use sse_digits::sse::{MessageEvent, Parser};

use crate::client::event_source::is_event_stream;
use crate::client::limits::{retry_after, Limits};
use crate::client::request::RequestSpec;
use crate::client::stop::Stop;
use crate::client::transport::{Connector, Failure, ReadError};

/// How each completion request is bounded and what it carries.
#[derive(Debug, Clone)]
pub struct CompletionOptions {
    /// Longest wait from sending the request to the response headers.
    pub open_timeout: Duration,
    /// Longest a whole request may take, headers and body: past it the request is cut and
    /// counts as timed out, so a server that stalls mid-stream cannot hold a user forever.
    pub request_timeout: Duration,
    /// Most bytes held for a line or event not yet complete: past it the request is cut.
    pub max_event_bytes: usize,
    /// What each request carries (method, headers, the bodies in turn).
    pub request: Arc<RequestSpec>,
}

impl CompletionOptions {
    /// The options under `limits`, cutting each request after `request_timeout`.
    #[must_use]
    pub fn from_limits(
        limits: &Limits,
        request_timeout: Duration,
        request: Arc<RequestSpec>,
    ) -> Self {
        Self {
            open_timeout: Duration::from_millis(limits.open_timeout_ms),
            request_timeout,
            max_event_bytes: limits.max_event_bytes,
            request,
        }
    }
}

/// What the reader tells the request after an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Keep reading.
    More,
    /// The stream is complete (or over, after an error): stop reading.
    Complete,
}

/// What a completion request reports while it runs.
pub trait CompletionReader {
    /// The request is being sent, at `at`.
    fn sent(&mut self, _at: Instant) {}
    /// The response headers of a stream (200, `text/event-stream`) arrived at `at`.
    fn opened(&mut self, _at: Instant) {}
    /// An event arrived in the chunk read at `at`: say whether the stream is complete.
    fn event(&mut self, event: MessageEvent<'_>, at: Instant) -> Flow;
}

/// How a completion request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The reader said the stream was complete.
    Complete,
    /// The body ended before the reader said so.
    BodyEnded,
    /// The body broke (the connection failed, or its framing).
    BodyBroke(ReadError),
    /// No stream: the cause ([`Failure::Timeout`] for the open timeout), and the delay a
    /// `Retry-After` on a `429` or `503` asked for.
    Failed(Failure, Option<Duration>),
    /// The stream was open when the request timeout came.
    TimedOut,
    /// A line or event passed `max_event_bytes`.
    EventTooLarge,
    /// The run's deadline came, or the run was cancelled: not a failure of the server.
    Stopped,
}

/// Sends one completion request to `url` and reads its stream to the end, reporting to
/// `reader`.
pub async fn complete(
    connector: &Connector,
    url: &Url,
    options: &CompletionOptions,
    reader: &mut impl CompletionReader,
    stop: &Stop,
) -> Outcome {
    if stop.is_over() {
        return Outcome::Stopped;
    }
    let sent = Instant::now();
    reader.sent(sent);
    let index = options.request.next_index();
    let open = connector.open(url, "", &options.request, index);
    let open_within = options.open_timeout.min(options.request_timeout);
    let response = tokio::select! {
        opened = tokio::time::timeout(open_within, open) => match opened {
            Ok(Ok(response)) => response,
            Ok(Err(failure)) => return Outcome::Failed(failure, None),
            Err(_elapsed) => return Outcome::Failed(Failure::Timeout, None),
        },
        () = tokio::time::sleep_until(stop.tokio_deadline()) => return Outcome::Stopped,
    };
    if response.status != 200 {
        let delay = matches!(response.status, 429 | 503)
            .then(|| response.retry_after.as_deref())
            .flatten()
            .and_then(|value| retry_after(value, std::time::SystemTime::now()));
        return Outcome::Failed(Failure::Status(response.status), delay);
    }
    if !is_event_stream(response.content_type.as_deref()) {
        let found = response.content_type.unwrap_or_default();
        return Outcome::Failed(Failure::ContentType(found), None);
    }
    if let Some(coding) = response.unreadable_coding {
        return Outcome::Failed(Failure::Encoding(coding), None);
    }
    if stop.is_over() {
        return Outcome::Stopped;
    }
    reader.opened(Instant::now());
    // A timeout past what the clock can hold is no timeout: the deadline still ends it.
    let cut_at = sent
        .checked_add(options.request_timeout)
        .map_or(stop.tokio_deadline(), tokio::time::Instant::from_std);
    let mut timer = pin!(tokio::time::sleep_until(cut_at.min(stop.tokio_deadline())));
    let mut body = response.body;
    let mut parser = Parser::new();
    loop {
        tokio::select! {
            biased;
            chunk = body.chunk() => match chunk {
                Ok(Some(bytes)) => {
                    // Read after the run's end: not measured, as in the event source.
                    if stop.is_over() {
                        return Outcome::Stopped;
                    }
                    let at = Instant::now();
                    if tokio::time::Instant::from_std(at) >= cut_at {
                        return Outcome::TimedOut;
                    }
                    let mut complete = false;
                    parser.feed(&bytes, |event| {
                        // Events after the end are not the completion's.
                        if !complete {
                            complete = reader.event(event, at) == Flow::Complete;
                        }
                    });
                    if complete {
                        return Outcome::Complete;
                    }
                    if parser.pending_bytes() > options.max_event_bytes {
                        return Outcome::EventTooLarge;
                    }
                }
                Ok(None) => return Outcome::BodyEnded,
                Err(error) => return Outcome::BodyBroke(error),
            },
            () = &mut timer => {
                return if stop.is_over() { Outcome::Stopped } else { Outcome::TimedOut };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    /// Counts events, and says complete at `[DONE]`.
    #[derive(Default)]
    struct Count {
        events: Vec<String>,
        opened: bool,
    }

    impl CompletionReader for Count {
        fn opened(&mut self, _at: Instant) {
            self.opened = true;
        }
        fn event(&mut self, event: MessageEvent<'_>, _at: Instant) -> Flow {
            self.events.push(event.data.to_owned());
            if event.data == "[DONE]" {
                Flow::Complete
            } else {
                Flow::More
            }
        }
    }

    /// Serves one connection with `answer`, then holds it open for `hold`.
    async fn serve_once(answer: &'static str, hold: Duration) -> Url {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = Url::parse(&format!("http://{}/v1", listener.local_addr().unwrap())).unwrap();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = [0u8; 2048];
            let _ = socket.read(&mut request).await.unwrap();
            socket.write_all(answer.as_bytes()).await.unwrap();
            tokio::time::sleep(hold).await;
        });
        url
    }

    fn options(request_timeout: Duration) -> CompletionOptions {
        CompletionOptions::from_limits(
            &Limits::default(),
            request_timeout,
            Arc::new(RequestSpec::default()),
        )
    }

    fn connector() -> Connector {
        Connector::Hyper(reqwest::Client::builder().http1_only().build().unwrap())
    }

    const HEAD: &str = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\
                        connection: close\r\n\r\n";

    #[tokio::test]
    async fn the_reader_ends_the_stream_and_later_events_are_not_read() {
        let answer = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\
                      connection: close\r\n\r\ndata: a\n\ndata: [DONE]\n\ndata: late\n\n";
        let url = serve_once(answer, Duration::from_secs(5)).await;
        let stop = Stop::at(Instant::now() + Duration::from_secs(10));
        let mut reader = Count::default();
        let outcome = complete(
            &connector(),
            &url,
            &options(Duration::from_secs(5)),
            &mut reader,
            &stop,
        )
        .await;
        assert_eq!(outcome, Outcome::Complete);
        assert!(reader.opened);
        assert_eq!(reader.events, ["a", "[DONE]"]);
    }

    #[tokio::test]
    async fn a_stream_that_stalls_is_cut_at_the_request_timeout() {
        let url = serve_once(HEAD, Duration::from_secs(5)).await;
        let stop = Stop::at(Instant::now() + Duration::from_secs(10));
        let started = Instant::now();
        let outcome = complete(
            &connector(),
            &url,
            &options(Duration::from_millis(300)),
            &mut Count::default(),
            &stop,
        )
        .await;
        assert_eq!(outcome, Outcome::TimedOut);
        assert!(started.elapsed() < Duration::from_secs(3));
    }

    #[tokio::test]
    async fn the_deadline_stops_a_request_without_calling_it_a_timeout() {
        let url = serve_once(HEAD, Duration::from_secs(5)).await;
        let stop = Stop::at(Instant::now() + Duration::from_millis(300));
        let outcome = complete(
            &connector(),
            &url,
            &options(Duration::from_secs(60)),
            &mut Count::default(),
            &stop,
        )
        .await;
        assert_eq!(outcome, Outcome::Stopped);
    }

    #[tokio::test]
    async fn a_refusal_carries_its_status_and_retry_after() {
        let answer = "HTTP/1.1 429 Too Many Requests\r\nretry-after: 2\r\n\
                      content-length: 0\r\nconnection: close\r\n\r\n";
        let url = serve_once(answer, Duration::ZERO).await;
        let stop = Stop::at(Instant::now() + Duration::from_secs(10));
        let outcome = complete(
            &connector(),
            &url,
            &options(Duration::from_secs(5)),
            &mut Count::default(),
            &stop,
        )
        .await;
        assert_eq!(
            outcome,
            Outcome::Failed(Failure::Status(429), Some(Duration::from_secs(2)))
        );
    }
}
