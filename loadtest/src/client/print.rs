//! A [`Recorder`] that prints what happens to one event source, one line each, as the
//! classic Node `eventsource` example does (the `sse-client` binary):
//!
//! ```text
//! Event: open
//! Event: message, data: 1
//! Event: error (stream ended by the server; reconnecting in 3000 ms)
//! Event: open
//! Event: bye, data: bye-bye
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use sse_digits::sse::MessageEvent;

use crate::client::event_source::{Closed, End, Recorder};
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
    /// The delay used until the server sends a hint.
    default_retry: Duration,
}

impl Printer {
    /// A printer that cancels `stop` after `max_events` events, if given, and names
    /// `default_retry` as the delay until the server sends a `retry:` hint.
    #[must_use]
    pub fn new(max_events: Option<u64>, stop: Arc<Stop>, default_retry: Duration) -> Self {
        Self {
            events: 0,
            max_events,
            stop,
            default_retry,
        }
    }
}

impl Recorder for Printer {
    fn opened(&mut self, _at: Instant, _time_to_open: Duration) {
        println!("Event: open");
    }

    fn open_failed(&mut self, _at: Instant, _elapsed: Duration, failure: &Failure) {
        if failure.reconnects() {
            println!("Event: error ({failure}; reconnecting)");
        } else {
            println!("Event: error ({failure}; closed)");
        }
    }

    fn event(&mut self, event: MessageEvent<'_>, _at: Instant) {
        println!("Event: {}, data: {}", event.event_type, event.data);
        self.events += 1;
        if self.max_events.is_some_and(|max| self.events >= max) {
            self.stop.cancel();
        }
    }

    fn closed(&mut self, _at: Instant, how: &Closed, _keepalives: u64, retry_hint: Option<u64>) {
        let why = match how {
            Closed::ServerEnded => "stream ended by the server".to_owned(),
            Closed::Dropped => "dropped by us (--drop-after)".to_owned(),
            Closed::ReadError(error) => format!("stream broken: {error}"),
            Closed::IdleTimeout => "no data within the idle timeout".to_owned(),
            Closed::EventTooLarge => "event too large (over --max-event-bytes)".to_owned(),
            Closed::Bye | Closed::Stopped => return,
        };
        let delay = retry_hint.map_or(self.default_retry, Duration::from_millis);
        println!(
            "Event: error ({why}; reconnecting in {} ms)",
            delay.as_millis()
        );
    }

    fn finished(&mut self, end: &End) {
        if *end == End::NoContent {
            println!("Event: error (204 No Content; closed)");
        }
    }
}
