//! Load test for `sse-digits`: thousands of browser-like EventSource connections held by
//! goose users, with lateness, reconnection and loss measured exactly.
//!
//! - [`options`]: our flags beside goose's flattened `GooseConfiguration`.
//! - [`client`]: one EventSource (connect, parse, reconnect with `Last-Event-ID`, the
//!   204 / status / content-type rules, the deadline), reporting to a [`client::Recorder`];
//!   used by every goose user and by the `sse-client` binary.
//! - [`stop`]: the run's deadline and cancel; [`pool`]: the shared HTTP clients.
//! - [`schedule`]: pure bookkeeping of ids (lost, duplicated, out of order) and lateness
//!   against the drift-free schedule, and stalls.
//! - [`recorder`]: the load test's recorder, from client reports to counters and samples.
//! - [`metrics`]: HdrHistograms and counters in per-thread shards, merged at the end.
//! - [`scenario`]: the goose scenario around the client.
//! - [`embedded`]: the server started inside this process (and restarted mid-run).
//! - [`procstat`]: RSS and CPU from `/proc`, the open-files limit and budget.
//! - [`server_lateness`]: the server's own lateness histogram from its `/metrics`, over the
//!   window with every stream open.
//! - [`runner`]: one run from options to [`Summary`]; [`capacity`]: the capacity search.
//! - [`summary`] and [`report`]: the results as data, console text and files;
//!   [`timeline`]: the live figures sampled over the run; [`html_report`] with [`plots`]:
//!   the `--report-dir` page with its SVG plots.

pub mod aftermath;
pub mod capacity;
pub mod client;
pub mod embedded;
pub mod gate;
pub mod html_report;
pub mod metrics;
mod monitor;
pub mod options;
pub mod outage;
pub mod plots;
pub mod pool;
pub mod procstat;
pub mod raw;
pub mod recorder;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod schedule;
pub mod server_lateness;
pub mod stop;
pub mod storm;
pub mod summary;
pub mod timeline;
pub mod transport;

pub use options::Options;
pub use runner::run;
pub use summary::Summary;
