//! A [`Recorder`] that prints what happens to one event source, one line each, as the
//! classic Node `eventsource` example does (the `sse-client` binary):
//!
//! ```text
//! Event: open
//! Event: message, data: 1
//! Event: error (stream ended by the server; reconnecting in 3000 ms)
//! Event: error (connection refused; reconnecting in 3000 ms)
//! Event: open
//! Event: bye, data: bye-bye
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use sse_digits::sse::MessageEvent;

use reqwest::Url;

use crate::client::event_source::{Asked, Closed, End, Recorder};
use crate::client::stop::Stop;
use crate::client::transport::Failure;

/// Prints each happening on one line, and stops the event source after `max_events`.
#[derive(Debug)]
pub struct Printer {
    /// Events printed.
    events: u64,
    /// Exit after this many.
    max_events: Option<u64>,
    /// Cancelled once `max_events` is reached.
    stop: Arc<Stop>,
    /// Why the last stream closed, printed with the delay before the next attempt.
    closed_because: Option<String>,
}

impl Printer {
    /// A printer that cancels `stop` after `max_events` events, if given.
    #[must_use]
    pub fn new(max_events: Option<u64>, stop: Arc<Stop>) -> Self {
        Self {
            events: 0,
            max_events,
            stop,
            closed_because: None,
        }
    }
}

impl Recorder for Printer {
    fn opened(&mut self, _at: Instant, _time_to_open: Duration) {
        println!("Event: open");
    }

    fn open_failed(&mut self, _at: Instant, _elapsed: Duration, failure: &Failure) {
        // Printed once the event source says whether it tries again, and when.
        self.closed_because = Some(failure.to_string());
    }

    fn event(&mut self, event: MessageEvent<'_>, _at: Instant) {
        println!("Event: {}, data: {}", event.event_type, event.data);
        self.events += 1;
        if self.max_events.is_some_and(|max| self.events >= max) {
            self.stop.cancel();
        }
    }

    fn redirected(&mut self, status: u16, to: &Url) {
        println!("Event: redirect ({status} to {to})");
    }

    fn invalid_utf8(&mut self, fields: u64) {
        println!("Event: warning ({fields} field(s) not UTF-8, decoded with U+FFFD)");
    }

    fn closed(&mut self, _at: Instant, how: &Closed, _keepalives: u64, _retry_hint: Option<u64>) {
        let why = match how {
            Closed::ServerEnded => "stream ended by the server".to_owned(),
            Closed::Dropped => "dropped by us (--drop-after)".to_owned(),
            Closed::ReadError(error) => format!("stream broken: {error}"),
            Closed::IdleTimeout => "no data within the idle timeout".to_owned(),
            Closed::EventTooLarge => "event too large (over --max-event-bytes)".to_owned(),
            Closed::Bye | Closed::Stopped => return,
        };
        self.closed_because = Some(why);
    }

    fn retrying(&mut self, delay: Duration, asked: Asked) {
        let asked = match asked {
            Asked::RetryField(wanted) if wanted != delay => {
                format!(", the server asked {} ms", wanted.as_millis())
            }
            Asked::RetryAfter(wanted) if wanted == delay => ", as Retry-After asked".to_owned(),
            Asked::RetryAfter(wanted) => {
                format!(", Retry-After asked {} s", wanted.as_secs())
            }
            Asked::RetryField(_) | Asked::Nothing => String::new(),
        };
        let delay = delay.as_millis();
        match self.closed_because.take() {
            Some(why) => println!("Event: error ({why}; reconnecting in {delay} ms{asked})"),
            None => println!("Event: reconnecting in {delay} ms{asked}"),
        }
    }

    fn finished(&mut self, end: &End) {
        if let Some(why) = self.closed_because.take() {
            println!("Event: error ({why}; closed)");
        } else if *end == End::NoContent {
            println!("Event: error (204 No Content; closed)");
        }
    }
}
