//! The results: the run's [`summary::Summary`] as data, and every way it is shown or
//! judged. Reads what `measure` and `probe` produced; runs nothing.
//!
//! - [`summary`]: the result of a run as one serde value (the JSON summary).
//! - [`counters`]: the one table of counters: label, JSON key, gate key.
//! - [`console`]: the progress line and the console summary.
//! - [`llm`]: `--llm`'s latency rows and rates, for the console and the page.
//! - [`hiccups`]: the load generator's own stalls, and when they warn.
//! - [`files`]: the JSON summary, percentile distributions and the HdrHistogram log.
//! - [`thresholds`]: the gate's limits, from a TOML file and `--gate-*` flags.
//! - [`gate`]: those limits checked against a summary: PASS/FAIL and the exit code.
//! - [`html`]: the `--report-dir` page, self-contained.
//! - [`plots`]: that page's SVG plots.
//! - [`part`]: what one process measured, added across processes; the one way to a
//!   summary. [`part_file`]: a part as a file (`--part-file`, `loadtest merge`).
//! - [`over_time`]: the page's plots of lateness p99 and reconnections per second over time.

pub mod console;
pub mod counters;
pub mod files;
pub mod gate;
pub mod hiccups;
pub mod html;
pub mod llm;
pub mod over_time;
pub mod part;
pub mod part_file;
pub mod plots;
pub mod summary;
pub mod thresholds;
