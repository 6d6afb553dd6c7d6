//! `cargo run -p loadtest --release`: parse the options, run (or search for capacity),
//! print and write the results.

use std::process::ExitCode;

use clap::Parser as _;
use loadtest::report::{console as report, html as html_report};
use loadtest::run::capacity;
use loadtest::{run, Options};

#[tokio::main]
async fn main() -> ExitCode {
    let options = Options::parse();
    match main_with(options).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loadtest: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn main_with(mut options: Options) -> anyhow::Result<()> {
    if options.sse.find_capacity {
        let found = capacity::find_capacity(&options).await?;
        print!("{}", capacity::render(&found));
        if let Some(path) = &options.sse.summary_json {
            report::write_json(&found, path)?;
        }
        return Ok(());
    }
    let gate = options.gate.resolve()?;
    options.prepare_report_dir()?;
    let summary = run(options.clone()).await?;
    print!("{}", report::render(&summary));
    if let Some(path) = &options.sse.summary_json {
        report::write_json(&summary, path)?;
    }
    if let Some(dir) = &options.sse.histograms_dir {
        report::write_percentile_files(&summary, dir)?;
    }
    if let Some(path) = &options.sse.hdr_log {
        report::write_interval_log(&summary, path)?;
    }
    let source = options.gate.file.as_ref().map_or_else(
        || "thresholds from flags".to_owned(),
        |path| path.display().to_string(),
    );
    let verdict = gate.map(|thresholds| thresholds.check(&summary));
    if let Some(dir) = &options.sse.report_dir {
        let page = html_report::write(
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
