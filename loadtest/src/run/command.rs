//! The `loadtest` command: one run (or a capacity search) from parsed options, its console
//! summary, the files asked for, the HTML report and the gate's verdict.

use crate::report::thresholds::Thresholds;
use crate::report::{console, files, html};
use crate::run::capacity;
use crate::run::options::Options;
use crate::run::runner::run;

/// Does what the command line asks.
///
/// # Errors
/// When the run cannot start or fails, a file cannot be written, or the gate fails (the
/// message names each failed check).
pub async fn execute(mut options: Options) -> anyhow::Result<()> {
    if options.sse.find_capacity {
        let found = capacity::find_capacity(&options).await?;
        print!("{}", capacity::render(&found));
        if let Some(path) = &options.sse.summary_json {
            files::write_json(&found, path)?;
        }
        return Ok(());
    }
    let gate = options.gate.resolve()?;
    if let Some(unknown) = gate.as_ref().map(Thresholds::unknown_counters) {
        anyhow::ensure!(
            unknown.is_empty(),
            "--gate-max-count: no counter named {} (the keys of the JSON summary's counters)",
            unknown.join(", ")
        );
    }
    options.prepare_report_dir()?;
    let summary = run(options.clone()).await?;
    print!("{}", console::render(&summary));
    if let Some(path) = &options.sse.summary_json {
        files::write_json(&summary, path)?;
    }
    if let Some(dir) = &options.sse.histograms_dir {
        files::write_percentile_files(&summary, dir)?;
    }
    if let Some(path) = &options.sse.hdr_log {
        files::write_interval_log(&summary, path)?;
    }
    let source = options.gate.file.as_ref().map_or_else(
        || "thresholds from flags".to_owned(),
        |path| path.display().to_string(),
    );
    let verdict = gate.map(|thresholds| thresholds.check(&summary));
    if let Some(dir) = &options.sse.report_dir {
        let page = html::write(
            dir,
            &summary,
            verdict.as_ref().map(|v| (v, source.as_str())),
            &options.goose.report_file,
        )?;
        eprintln!("report: {}", page.display());
    }
    if let Some(verdict) = verdict {
        print!("{}", verdict.render(&source));
        anyhow::ensure!(
            verdict.passed(),
            "gate failed: {}",
            verdict.failures().join("; ")
        );
    }
    Ok(())
}
