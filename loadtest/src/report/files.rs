//! The files a run writes when asked: the JSON summary, each histogram's percentile
//! distribution (HdrHistogram's text), and the histograms as a V2 interval log.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};
use hdrhistogram::serialization::V2Serializer;
use hdrhistogram::Histogram;

use crate::report::summary::Summary;

/// The files a run (or `loadtest merge`) is asked to write, as the same flags in both.
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args)]
pub struct OutputFiles {
    /// Write the SSE summary as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub summary_json: Option<PathBuf>,

    /// Write each histogram's percentile distribution (HdrHistogram text, µs) into DIR.
    #[arg(long, value_name = "DIR")]
    pub histograms_dir: Option<PathBuf>,

    /// Write the histograms as an HdrHistogram V2 interval log (one tagged interval each).
    #[arg(long, value_name = "FILE")]
    pub hdr_log: Option<PathBuf>,

    /// Write an HTML report into DIR: DIR/index.html (summary, gate, plots; self-contained).
    /// A run also has goose write its report there as DIR/goose.html, unless --report-file
    /// is given.
    #[arg(long, value_name = "DIR")]
    pub report_dir: Option<PathBuf>,
}

/// Writes the summary as pretty JSON.
///
/// # Errors
/// When the file cannot be written.
pub fn write_json(summary: &impl serde::Serialize, path: &Path) -> anyhow::Result<()> {
    let json = serde_json::to_string_pretty(summary)?;
    std::fs::write(path, json + "\n").with_context(|| format!("writing {}", path.display()))
}

/// HdrHistogram's percentile distribution text (values in ms), which HdrHistogram's
/// plotter reads.
#[must_use]
pub fn percentile_distribution(h: &Histogram<u64>) -> String {
    let mut out = String::from("       Value     Percentile TotalCount 1/(1-Percentile)\n\n");
    let mut total = 0u64;
    for v in h.iter_quantiles(5) {
        total += v.count_since_last_iteration();
        let q = v.quantile_iterated_to();
        let value = v.value_iterated_to() as f64 / 1000.0;
        if q < 1.0 {
            let _ = writeln!(
                out,
                "{value:12.3} {q:14.12} {total:10} {:14.2}",
                1.0 / (1.0 - q)
            );
        } else {
            let _ = writeln!(out, "{value:12.3} {q:14.12} {total:10}");
        }
    }
    let _ = writeln!(
        out,
        "#[Mean    = {:12.3}, StdDeviation   = {:12.3}]",
        h.mean() / 1000.0,
        h.stdev() / 1000.0
    );
    let _ = writeln!(
        out,
        "#[Max     = {:12.3}, Total count    = {:12}]",
        h.max() as f64 / 1000.0,
        h.len()
    );
    out
}

/// The run's latency histograms with their names: the event source's, and with `--llm` the
/// completions' (`llm_ttft`, …).
fn latency_histograms(summary: &Summary) -> Vec<(&'static str, &hdrhistogram::Histogram<u64>)> {
    let mut all: Vec<_> = summary.histograms.iter().collect();
    if summary.llm.is_some() {
        all.extend(summary.histograms.llm.latencies());
    }
    all
}

/// Writes `<name>.hgrm` for each histogram into `dir`.
///
/// # Errors
/// When the folder or a file cannot be written.
pub fn write_percentile_files(summary: &Summary, dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for (name, h) in latency_histograms(summary) {
        let path = dir.join(format!("{name}.hgrm"));
        std::fs::write(&path, percentile_distribution(h))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// Writes every histogram as one tagged interval of an HdrHistogram V2 interval log
/// (values in µs), covering the run.
///
/// # Errors
/// When the file cannot be written.
pub fn write_interval_log(summary: &Summary, path: &Path) -> anyhow::Result<()> {
    let started = SystemTime::UNIX_EPOCH + Duration::from_secs_f64(summary.started_unix_secs);
    let mut file = std::io::BufWriter::new(
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
    );
    let mut serializer = V2Serializer::new();
    let mut log = IntervalLogWriterBuilder::new()
        .add_comment("sse-digits load test; values in microseconds")
        .with_start_time(started)
        .with_base_time(started)
        .begin_log_with(&mut file, &mut serializer)?;
    let length = Duration::from_secs_f64(summary.elapsed_secs);
    for (name, h) in latency_histograms(summary) {
        log.write_histogram(h, Duration::ZERO, length, Tag::new(name))
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
    }
    drop(log);
    file.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::metrics::{new_histogram, record};

    #[test]
    fn the_percentile_distribution_ends_at_the_max_and_counts_everything() {
        let mut h = new_histogram();
        for ms in 1..=1000u64 {
            record(&mut h, Duration::from_millis(ms));
        }
        let text = percentile_distribution(&h);
        assert!(text.starts_with("       Value     Percentile"));
        assert!(text.contains("Total count    =         1000"), "{text}");
        let last_row = text
            .lines()
            .rfind(|l| !l.starts_with('#') && !l.is_empty())
            .unwrap();
        assert!(last_row.contains("1.000000000000"), "{last_row}");
    }
}
