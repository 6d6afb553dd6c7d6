//! The SSE wire format (WHATWG HTML, "Server-sent events"), written once and shared by the
//! server, its tests, the benchmarks and the load test.
//!
//! - [`encode`]: events, retry hints and comments to bytes; refuses values that would break
//!   the framing (CR, LF or NUL in an `id` or an event name).
//! - [`parse`]: an incremental parser that follows the standard's rules byte for byte, across
//!   any chunking of the stream, without allocating per event.

pub mod encode;
pub mod parse;
#[cfg(test)]
mod proptests;

pub use encode::{EncodeError, Event};
pub use parse::{MessageEvent, Parser};
