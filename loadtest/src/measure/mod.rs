//! What a run measures, from the event source's reports to merged histograms and counters.
//! No I/O: the client's reports and the clock's readings come in, figures go out.
//!
//! - [`schedule`]: pure bookkeeping of one event source's ids (lost, duplicated, out of
//!   order), lateness against the drift-free schedule, and stalls.
//! - [`recorder`]: the load test's [`crate::client::Recorder`], from reports to counts and
//!   samples.
//! - [`llm`]: `--llm`'s recorder, from one completion's events to its timings and its
//!   verdict.
//! - [`counters`]: everything a run counts, by cause, added field by field.
//! - [`metrics`]: HdrHistograms and counters in per-thread shards, merged at the end, and
//!   the live figures the progress line reads.
//! - [`timeline`]: the live figures sampled over the run, bounded.
//! - [`storm`]: connection attempts and opens in 10 ms bins, for the busiest windows.
//! - [`outage`]: when the embedded server was down on purpose, so its refusals are expected.
//! - [`hiccup`]: the load generator's own stalls, from tickers on its runtime (as jHiccup).
//! - [`slots`]: lateness per time slot of the run, bounded, for lateness over time.

pub mod counters;
pub mod hiccup;
pub mod llm;
pub mod metrics;
pub mod outage;
pub mod recorder;
pub mod schedule;
pub mod slots;
pub mod storm;
pub mod timeline;
