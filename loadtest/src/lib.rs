//! Load test for `sse-digits`: thousands of browser-like EventSource connections held by
//! goose users, with lateness, reconnection and loss measured exactly. Each folder depends
//! only on those above it in this list.
//!
//! - [`client`]: one EventSource, knowing no goose (all that `sse-client` needs).
//!   - [`client::event_source`]: connect, parse, reconnect, report to a [`client::Recorder`].
//!   - [`client::completion`]: `--llm`'s one streamed completion request, no reconnection.
//!   - [`client::transport`]: hyper or the raw client; why an attempt failed.
//!   - [`client::raw_http`]: the minimal HTTP/1.1 GET.
//!   - [`client::pool`]: the shared HTTP clients; [`client::stop`]: deadline and cancel.
//!   - [`client::print`]: a recorder that prints each happening (for `sse-client`).
//! - [`profile`]: what the stream is, read from its events (pure, standalone).
//!   - [`profile::identity`]: numeric `id:`, numeric `data:` or neither, per event source.
//!   - [`profile::lateness`]: schedule, JSON timestamp or gaps only; reading timestamps.
//!   - [`profile::llm`]: one event of an OpenAI-style completion stream.
//! - [`probe`]: readings from outside the load test (standalone).
//!   - [`probe::procstat`]: RSS and CPU from `/proc`, the open-files limit and budget.
//!   - [`probe::aftermath`]: the server's streams and memory after the run, from `/metrics`.
//!   - [`probe::server_lateness`]: the server's own lateness histogram from `/metrics`.
//! - [`measure`]: from client reports to figures (uses `client`'s types and `profile`).
//!   - [`measure::schedule`]: pure id and lateness bookkeeping, stalls.
//!   - [`measure::recorder`]: the load test's recorder, into counters and samples.
//!   - [`measure::llm`]: `--llm`'s recorder: one completion's timings and verdict.
//!   - [`measure::counters`]: everything a run counts, by cause.
//!   - [`measure::metrics`]: per-thread histograms and counters, merged; live figures.
//!   - [`measure::timeline`], [`measure::storm`], [`measure::outage`]: the run over time,
//!     connection storms, the planned outages.
//!   - [`measure::hiccup`]: the load generator's own stalls, from tickers on its runtime.
//!   - [`measure::slots`]: lateness per time slot, bounded and addable.
//! - [`report`]: the results as data and text (uses `measure` and `probe`).
//!   - [`report::counters`]: the one table of counters (label, JSON key, gate key).
//!   - [`report::summary`]: the serde summary; [`report::console`]: progress line and
//!     console summary; [`report::files`]: JSON, percentile files, HdrHistogram log.
//!   - [`report::thresholds`]: the gate's limits; [`report::gate`]: PASS/FAIL.
//!   - [`report::hiccups`]: when the load generator's hiccups warn.
//!   - [`report::llm`]: `--llm`'s latency rows and rates, for the console and the page.
//!   - [`report::html`] with [`report::plots`] and [`report::over_time`]: the
//!     `--report-dir` page.
//!   - [`report::part`]: what one process measured, added across processes; the one way
//!     to a summary. [`report::part_file`]: a part as a file.
//! - [`run`](mod@run): options, goose and the run itself (uses everything).
//!   - [`run::command`]: what the `loadtest` binary does with its options.
//!   - [`run::options`], [`run::runner`], [`run::scenario`], [`run::embedded`]: the
//!     command line, one run, the goose scenario, the server in this process.
//!   - [`run::llm`]: `--llm`'s goose scenario, completion requests in turn.
//!   - `run::monitor` (private): the killswitch, peaks, timeline and progress line.
//!   - [`run::capacity`]: the capacity search; [`run::search`]: its decisions, pure.
//!   - [`run::processes`]: one run as several processes; [`run::merge`]: `loadtest
//!     merge`; [`run::start_at`]: a common start moment; [`run::targets`]: several hosts.

pub mod client;
pub mod measure;
pub mod probe;
pub mod profile;
pub mod report;
pub mod run;

pub use report::summary::Summary;
pub use run::{run, Options};
