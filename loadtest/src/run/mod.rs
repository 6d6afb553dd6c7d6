//! Running the load test: the command line, goose and the scenario around the client, the
//! embedded server, the monitor, and the capacity search made of runs.
//!
//! - [`command`]: what the `loadtest` binary does with its options.
//! - [`options`]: our flags beside goose's flattened `GooseConfiguration`.
//! - [`runner`]: one run from options to [`crate::report::summary::Summary`].
//! - [`scenario`]: the goose scenario: one event source per user.
//! - [`llm`]: `--llm`'s scenario: completion requests in turn per user.
//! - `monitor`: the killswitch, the peaks, the timeline and the progress line while the
//!   run goes.
//! - [`embedded`]: the server started inside this process (and restarted mid-run).
//! - [`capacity`]: the capacity search, runs of rising load; [`search`]: its decisions,
//!   pure.
//! - [`start_at`]: waiting for a common start moment (`--start-at`).
//! - [`targets`]: `--host a,b,…`, several servers with users spread over them.
//! - [`processes`]: one run as several load-generator processes (`--processes`);
//!   [`merge`]: `loadtest merge`, the parts of several machines added.

pub mod capacity;
pub mod command;
pub mod embedded;
pub mod llm;
pub mod merge;
mod monitor;
pub mod options;
pub mod processes;
pub mod runner;
pub mod scenario;
pub mod search;
pub mod start_at;
pub mod targets;

pub use options::Options;
pub use runner::{run, run_part};
