//! `--report-dir`: a small run against the embedded server writes one self-contained HTML
//! page whose figures match the JSON summary of the same run.

mod common;

use std::path::Path;

use clap::Parser as _;
use loadtest::report::{files, html};
use loadtest::{run, Options};
use scraper::{Html, Selector};
use serde_json::Value;

/// Goose keeps process-wide state (its killswitch, its log): one load test at a time.
static GOOSE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Runs the load test as `main` does with `--report-dir` and `--summary-json`, and returns
/// the page and the JSON.
async fn run_with_report(dir: &Path) -> (String, Value) {
    let _one_at_a_time = GOOSE.lock().await;
    let report_dir = dir.join("report");
    let json_path = dir.join("summary.json");
    let mut args = common::SMALL_RUN.to_vec();
    args.extend_from_slice(&[
        "--max-secs",
        "1",
        "--gate-max-lateness-p99-ms",
        "1000",
        "--report-dir",
        report_dir.to_str().unwrap(),
        "--summary-json",
        json_path.to_str().unwrap(),
    ]);
    let mut options = Options::try_parse_from(args).unwrap();
    let thresholds = options
        .gate
        .resolve()
        .unwrap()
        .expect("a gate flag was given");
    options.prepare_report_dir().unwrap();
    let summary = run(options.clone()).await.unwrap();
    files::write_json(&summary, &json_path).unwrap();
    let verdict = thresholds.check(&summary);
    html::write(
        &report_dir,
        &summary,
        Some((&verdict, "thresholds from flags")),
        &options.goose.report_file,
    )
    .unwrap();
    assert!(
        report_dir.join(html::GOOSE_REPORT).is_file(),
        "goose's report is written beside the page"
    );
    let page = std::fs::read_to_string(report_dir.join(html::INDEX)).unwrap();
    let json = serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    (page, json)
}

fn select<'a>(doc: &'a Html, css: &str) -> Vec<scraper::ElementRef<'a>> {
    doc.select(&Selector::parse(css).unwrap()).collect()
}

fn text(e: &scraper::ElementRef<'_>) -> String {
    e.text().collect::<String>().trim().to_owned()
}

/// The JSON value at a dotted key (`latencies.lateness.p99_ms`).
fn lookup<'a>(json: &'a Value, key: &str) -> &'a Value {
    key.split('.').fold(json, |v, part| &v[part])
}

/// Whether `printed` (as on the page: thousands separators, rounded to its decimals) is
/// `value` printed that way.
fn matches(printed: &str, value: f64) -> bool {
    let digits = printed.replace(',', "");
    let Ok(shown) = digits.parse::<f64>() else {
        return false;
    };
    let decimals = digits.split_once('.').map_or(0, |(_, d)| d.len());
    let half_unit = 0.5 * 10f64.powi(-i32::try_from(decimals).unwrap());
    (shown - value).abs() <= half_unit + 1e-9
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_is_self_contained_html_whose_figures_match_the_json_summary() {
    let dir = tempdir();
    let (page, json) = run_with_report(&dir).await;
    let doc = Html::parse_document(&page);
    assert!(doc.errors.is_empty(), "HTML parse errors: {:?}", doc.errors);
    assert!(page.starts_with("<!DOCTYPE html>"));

    // Nothing is fetched: no script, no stylesheet link, no remote image or font.
    assert!(select(&doc, "script").is_empty());
    assert!(select(&doc, "link").is_empty());
    assert!(!page.contains("http://fonts") && !page.contains("https://"));

    for id in ["summary", "gate", "plots", "goose"] {
        assert_eq!(select(&doc, &format!("section#{id}")).len(), 1, "{id}");
    }
    // Lateness percentiles, users and events/s, lateness p99 and reconnections over time,
    // reconnects and errors, RSS (embedded).
    assert_eq!(select(&doc, "svg").len(), 5);
    for id in [
        "plot-lateness",
        "plot-users",
        "plot-over-time",
        "plot-errors",
        "plot-rss",
    ] {
        assert_eq!(select(&doc, &format!("figure#{id} svg")).len(), 1, "{id}");
    }
    let goose: Vec<_> = select(&doc, "section#goose a")
        .iter()
        .filter_map(|a| a.value().attr("href"))
        .map(str::to_owned)
        .collect();
    assert_eq!(goose, [html::GOOSE_REPORT]);

    // Every figure of the summary tables is the JSON summary's, as printed.
    let cells = select(&doc, "td[data-key]");
    assert!(cells.len() > 60, "{}", cells.len());
    for cell in &cells {
        let key = cell.value().attr("data-key").unwrap();
        let value = lookup(&json, key)
            .as_f64()
            .unwrap_or_else(|| panic!("{key} is not a number in the JSON summary"));
        let printed = text(cell);
        assert!(
            matches(&printed, value),
            "{key}: page {printed}, JSON {value}"
        );
    }
    let shown = |key: &str| {
        cells
            .iter()
            .find(|c| c.value().attr("data-key") == Some(key))
            .map(text)
            .unwrap_or_else(|| panic!("no cell for {key}"))
    };
    // The figures the run is judged by, spelled out.
    let events = json["counters"]["events"].as_u64().unwrap();
    assert!(events > 500, "{json}");
    assert_eq!(
        shown("counters.events").replace(',', ""),
        events.to_string()
    );
    assert_eq!(shown("counters.lost"), "0");
    // The load generator's CPU with every stream open: the figure that tells whether its own
    // core was saturated.
    let steady_cpu = json["processes"]["this_process"]["cpu_percent_steady"]
        .as_f64()
        .unwrap_or_else(|| panic!("no steady CPU in {json}"));
    assert!(steady_cpu > 0.0, "{steady_cpu}");
    assert_eq!(
        shown("processes.this_process.cpu_percent_steady"),
        format!("{steady_cpu:.0}")
    );
    assert_eq!(
        shown("latencies.lateness.p99_ms"),
        format!(
            "{:.3}",
            json["latencies"]["lateness"]["p99_ms"].as_f64().unwrap()
        )
    );
    assert!(json["counters"]["reconnects"].as_u64().unwrap() >= 20);
    // The server's own lateness histogram, read from its /metrics.
    let server_events = json["server_lateness"]["events"].as_u64().unwrap();
    assert!(server_events > 0, "{json}");
    assert_eq!(
        shown("server_lateness.events").replace(',', ""),
        server_events.to_string()
    );

    // The gate's table: the checks that were made, each passed.
    let marks: Vec<String> = select(&doc, "table#checks td.mark")
        .iter()
        .map(text)
        .collect();
    // One threshold set by flag, the 6 correctness checks and the streams left open after
    // the run, which are on whenever the gate is.
    assert_eq!(marks.len(), 8, "{marks:?}");
    assert!(marks.iter().all(|m| m == "PASS"), "{marks:?}");

    // The timeline landed in the JSON, sampled every 500 ms over the run.
    let samples = json["timeline"]["samples"].as_array().unwrap();
    assert!(samples.len() >= 6, "{}", samples.len());
    assert_eq!(json["timeline"]["period_ms"], 500);
    let peak = samples
        .iter()
        .map(|s| s["open_streams"].as_i64().unwrap())
        .max()
        .unwrap();
    assert_eq!(peak, 20);
    assert!(samples.iter().all(|s| s["rss_mib"].as_f64().unwrap() > 0.0));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A fresh folder under the system's temp dir (removed by the test that made it).
fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "loadtest-report-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
