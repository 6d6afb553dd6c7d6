//! `sse-digits`: a Server-Sent Events service on actix-web that streams numbered events and
//! speaks the WHATWG SSE standard completely (ids and `Last-Event-ID` resume, `retry:`,
//! keep-alive comments, 204 for a finished client).
//!
//! Layout:
//! - [`config`]: the one typed configuration (flags and `SSE_*` environment variables).
//! - [`sse`]: the wire format, encoder and incremental parser, shared with the load test.
//! - [`digits`]: request planning (pure) and the event stream.
//! - [`routes`]: thin HTTP handlers: parse, plan, respond.
//! - [`telemetry`]: Prometheus metrics and log set-up.
//! - [`limits`]: stream admission, at most so many streams open at once.
//! - [`shutdown`]: the signal every stream watches, with a jittered drain window.
//! - [`memory`]: returns freed heap to the OS after streams close.
//! - [`listener`]: the listening socket (a deep accept queue, stalled readers cut off).
//! - [`open_files`]: the open-files limit, and the streams and connections it leaves room for.
//! - [`startup`]: builds the app on a listener; used by `main`, the tests and the load test.

pub mod config;
pub mod digits;
pub mod limits;
pub mod listener;
pub mod memory;
pub mod open_files;
pub mod routes;
pub mod shutdown;
pub mod sse;
pub mod startup;
pub mod telemetry;
