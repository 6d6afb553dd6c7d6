//! The `loadtest` command: one run (or a capacity search) from parsed options, its console
//! summary, the files asked for, the HTML report and the gate's verdict. A run of several
//! processes (`--processes`) and `loadtest merge` end the same way, through [`finish`].

use crate::report::files::OutputFiles;
use crate::report::summary::Summary;
use crate::report::thresholds::{GateOptions, Thresholds};
use crate::report::{console, files, html, part_file};
use crate::run::capacity;
use crate::run::options::Options;
use crate::run::processes;
use crate::run::runner::run_part;

/// Does what the command line asks.
///
/// # Errors
/// When the run cannot start or fails, a file cannot be written, or the gate fails (the
/// message names each failed check).
pub async fn execute(mut options: Options) -> anyhow::Result<()> {
    if options.sse.find_capacity {
        let found = capacity::find_capacity(&options).await?;
        print!("{}", capacity::render(&found));
        if let Some(path) = &options.sse.outputs.summary_json {
            files::write_json(&found, path)?;
        }
        return Ok(());
    }
    let gate = resolve_gate(&options.gate)?;
    let mut outputs = Outputs::of(&options);
    let part = if options.sse.processes > 1 {
        // Goose's own reports stay with each process; the one report is ours.
        outputs.goose_reports.clear();
        processes::run(&options, std::env::args_os().collect()).await?
    } else {
        options.prepare_report_dir()?;
        outputs.goose_reports.clone_from(&options.goose.report_file);
        run_part(options.clone()).await?
    };
    if let Some(path) = &options.sse.part_file {
        part_file::write(&part, path)?;
    }
    finish(&part.summary(), gate, &outputs)
}

/// The gate's thresholds, checked before anything runs.
///
/// # Errors
/// When the thresholds file cannot be read, or a `--gate-max-count` names no counter.
pub fn resolve_gate(gate: &GateOptions) -> anyhow::Result<Option<Thresholds>> {
    let gate = gate.resolve()?;
    if let Some(unknown) = gate.as_ref().map(Thresholds::unknown_counters) {
        anyhow::ensure!(
            unknown.is_empty(),
            "--gate-max-count: no counter named {} (the keys of the JSON summary's counters)",
            unknown.join(", ")
        );
    }
    Ok(gate)
}

/// What a finished run writes, and where.
#[derive(Debug, Clone, Default)]
pub struct Outputs {
    /// The files asked for.
    pub files: OutputFiles,
    /// Where the gate's thresholds came from, as the verdict names it.
    pub gate_source: String,
    /// Goose's report files, linked from the HTML report.
    pub goose_reports: Vec<String>,
}

impl Outputs {
    /// The outputs `options` ask for.
    #[must_use]
    pub fn of(options: &Options) -> Self {
        Self {
            files: options.sse.outputs.clone(),
            gate_source: gate_source(&options.gate),
            goose_reports: Vec::new(),
        }
    }
}

/// How the verdict names where its thresholds came from.
#[must_use]
pub fn gate_source(gate: &GateOptions) -> String {
    gate.file.as_ref().map_or_else(
        || "thresholds from flags".to_owned(),
        |path| path.display().to_string(),
    )
}

/// Prints the summary, writes the files asked for and the HTML report, and applies the
/// gate.
///
/// # Errors
/// When a file cannot be written, or the gate fails (naming each failed check).
pub fn finish(
    summary: &Summary,
    gate: Option<Thresholds>,
    outputs: &Outputs,
) -> anyhow::Result<()> {
    print!("{}", console::render(summary));
    if let Some(path) = &outputs.files.summary_json {
        files::write_json(summary, path)?;
    }
    if let Some(dir) = &outputs.files.histograms_dir {
        files::write_percentile_files(summary, dir)?;
    }
    if let Some(path) = &outputs.files.hdr_log {
        files::write_interval_log(summary, path)?;
    }
    let source = outputs.gate_source.as_str();
    let verdict = gate.map(|thresholds| thresholds.check(summary));
    if let Some(dir) = &outputs.files.report_dir {
        let page = html::write(
            dir,
            summary,
            verdict.as_ref().map(|v| (v, source)),
            &outputs.goose_reports,
        )?;
        eprintln!("report: {}", page.display());
    }
    if let Some(verdict) = verdict {
        print!("{}", verdict.render(source));
        anyhow::ensure!(
            verdict.passed(),
            "gate failed: {}",
            verdict.failures().join("; ")
        );
    }
    Ok(())
}
