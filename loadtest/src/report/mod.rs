//! The results: the run's [`summary::Summary`] as data, and every way it is shown or
//! judged. Reads what `measure` and `probe` produced; runs nothing.
//!
//! - [`summary`]: the result of a run as one serde value (the JSON summary).
//! - [`console`]: the progress line, the console summary and the result files.
//! - [`gate`]: pass/fail thresholds from a TOML file and flags, checked against a summary.
//! - [`html`]: the `--report-dir` page, self-contained.
//! - [`plots`]: that page's SVG plots.

pub mod console;
pub mod gate;
pub mod html;
pub mod plots;
pub mod summary;
