//! `sse-client URL`: one EventSource (the load test's client) that prints what happens, as
//! the classic Node `eventsource` example does:
//!
//! ```text
//! Event: open
//! Event: message, data: 1
//! Event: error (stream ended by the server; reconnecting in 3000 ms)
//! Event: open
//! Event: bye, data: bye-bye
//! ```

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use loadtest::client::{
    ClientOptions, ClientPool, Closed, End, EventSource, Failure, PoolOptions, Recorder, Stop,
};
use reqwest::Url;
use sse_digits::sse::MessageEvent;

/// Connect to an SSE stream like a browser's EventSource and print its events.
#[derive(Debug, Parser)]
#[command(name = "sse-client", about, long_about = None)]
struct Args {
    /// The stream's URL, such as http://127.0.0.1:8080/digits
    url: Url,
    /// Resume after this id on the first connection (sent as Last-Event-ID).
    #[arg(long, value_name = "ID")]
    last_event_id: Option<String>,
    /// Reconnection delay until the server sends a `retry:` hint.
    #[arg(long, default_value_t = 3000, value_name = "MS")]
    retry_ms: u64,
    /// Close the connection after N events, then reconnect (to watch a resume).
    #[arg(long, value_name = "N")]
    drop_after: Option<u64>,
    /// Exit after N events.
    #[arg(long, value_name = "N")]
    max_events: Option<u64>,
    /// The HTTP client: hyper (through reqwest) or the load test's minimal HTTP/1.1 GET.
    #[arg(long, value_enum, default_value_t = loadtest::client::Transport::Hyper)]
    transport: loadtest::client::Transport,
}

/// Prints each happening on one line.
struct Printer {
    /// Events printed.
    events: u64,
    /// Exit after this many.
    max_events: Option<u64>,
    /// Cancelled once `max_events` is reached.
    stop: Arc<Stop>,
    /// The delay used until the server sends a hint.
    default_retry: Duration,
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

    fn closed(&mut self, _at: Instant, how: Closed, _keepalives: u64, retry_hint: Option<u64>) {
        let why = match how {
            Closed::ServerEnded => "stream ended by the server",
            Closed::Dropped => "dropped by us (--drop-after)",
            Closed::ReadError => "stream broken",
            Closed::IdleTimeout => "no data within the idle timeout",
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

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let pool = match ClientPool::new(&PoolOptions {
        clients: 1,
        source_addrs: Vec::new(),
        connect_timeout: Duration::from_secs(10),
        transport: args.transport,
    }) {
        Ok(pool) => pool,
        Err(e) => {
            eprintln!("sse-client: {e}");
            return ExitCode::FAILURE;
        }
    };
    let options = ClientOptions {
        default_retry: Duration::from_millis(args.retry_ms),
        drop_after: args.drop_after,
        ..ClientOptions::default()
    };
    let stop = Arc::new(Stop::never());
    let mut printer = Printer {
        events: 0,
        max_events: args.max_events,
        stop: Arc::clone(&stop),
        default_retry: options.default_retry,
    };
    let mut source = EventSource::new(pool.pick(0).clone(), args.url, options);
    if let Some(id) = &args.last_event_id {
        source.resume_from(id);
    }
    tokio::select! {
        end = source.run(&mut printer, &stop) => match end {
            End::Status(_) | End::ContentType(_) => ExitCode::FAILURE,
            End::Bye | End::NoContent | End::Stopped => ExitCode::SUCCESS,
        },
        _ = tokio::signal::ctrl_c() => ExitCode::from(130),
    }
}
