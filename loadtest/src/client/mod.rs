//! One browser-like EventSource and what it stands on. It knows nothing of goose or of the
//! run's measurements: the `sse-client` binary needs nothing outside this folder.
//!
//! - [`event_source`]: connect, parse, reconnect with `Last-Event-ID`, the 204 / status /
//!   content-type rules and the deadline, reported to a [`Recorder`].
//! - [`completion`]: one streamed completion request of an LLM API (no reconnection),
//!   reported to a [`CompletionReader`].
//! - [`transport`]: how a request reaches the server (hyper or [`raw_http`]), and why an
//!   attempt failed.
//! - [`raw_http`]: the minimal HTTP/1.1 client that costs the load generator less per event.
//! - [`request`]: what each request carries (method, headers, body) and how TLS and the
//!   HTTP version are set; header values are never shown.
//! - [`limits`]: what a misbehaving server can cost (timeouts, retry bounds, event size,
//!   redirects), the same flags in the load test and `sse-client`.
//! - [`pool`]: the few HTTP clients every event source shares.
//! - [`stop`]: the run's deadline and cancel, seen by every event source.
//! - [`print`](mod@print): a recorder that prints each happening (the `sse-client` binary).

pub mod completion;
pub mod event_source;
pub mod limits;
pub mod pool;
pub mod print;
pub mod raw_http;
pub mod request;
pub mod stop;
pub mod transport;

pub use completion::{CompletionOptions, CompletionReader, Flow, Outcome};
pub use event_source::{Asked, ClientOptions, Closed, End, EventSource, Recorder};
pub use limits::Limits;
pub use pool::{ClientPool, PoolOptions};
pub use request::{HttpVersion, Method, RequestOptions, RequestSpec};
pub use stop::Stop;
pub use transport::{Connector, Failure, ReadError, ReadKind, Transport};
