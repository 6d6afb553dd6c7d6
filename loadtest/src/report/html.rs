//! `--report-dir DIR`: the run as one self-contained HTML page, `DIR/index.html` (inline CSS
//! and SVG, nothing fetched): the SSE summary, the gate's checks, the plots, and a link to
//! goose's own report beside it.
//!
//! Every figure of the summary tables sits in a cell whose `data-key` names its place in the
//! JSON summary (`counters.events`, `latencies.lateness.p99_ms`), printed as the console
//! prints it, so a test (or a script) can check the page against `--summary-json`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::probe::server_lateness::ServerLateness;
use crate::report::console::thousands;
use crate::report::counters::{in_group, Aside, Group, COUNTERS, NOT_CHECKABLE};
use crate::report::gate::Verdict;
use crate::report::llm::{latency_rows, rates_line, NOT_MEASURED};
use crate::report::plots;
use crate::report::summary::{Percentiles, ProcessUsage, Summary};

/// The page's name inside the report folder.
pub const INDEX: &str = "index.html";
/// Goose's report's name inside the report folder, when `--report-file` is not given.
pub const GOOSE_REPORT: &str = "goose.html";

/// The page's style: readable tables, plots scaled to the window, PASS/FAIL in colour.
const STYLE: &str = "
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 960px; padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.8em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.8em 0; font-variant-numeric: tabular-nums; }
th, td { padding: 0.2em 0.7em; border-bottom: 1px solid #e4e4e4; text-align: left; }
td.n, th.n { text-align: right; }
th.aside { padding-left: 1.6em; font-weight: normal; }
tr.pass td.mark { color: #0a7a2f; font-weight: bold; } tr.fail td.mark { color: #b00020; font-weight: bold; }
.clean { color: #0a7a2f; } .dirty { color: #b00020; font-weight: bold; }
figure { margin: 1.2em 0; } figcaption { color: #555; font-size: 0.9em; margin-top: 0.3em; }
svg { max-width: 100%; height: auto; }
.side { display: flex; flex-wrap: wrap; gap: 0 1.5em; align-items: flex-start; }
code { background: #f3f3f3; padding: 0 0.2em; }
";

/// Writes `dir/index.html`; `goose_reports` are goose's report files, linked from the page.
///
/// # Errors
/// When a plot cannot be drawn or the file cannot be written.
pub fn write(
    dir: &Path,
    summary: &Summary,
    gate: Option<(&Verdict, &str)>,
    goose_reports: &[String],
) -> anyhow::Result<PathBuf> {
    let links: Vec<String> = goose_reports
        .iter()
        .map(|file| relative_link(dir, Path::new(file)))
        .collect();
    let page = render(summary, gate, &links)?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(INDEX);
    std::fs::write(&path, page).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// A link to `file` from a page in `dir`: its name when it is in `dir`, else its path.
fn relative_link(dir: &Path, file: &Path) -> String {
    match (file.parent(), file.file_name()) {
        (Some(parent), Some(name)) if parent == dir => name.to_string_lossy().into_owned(),
        _ => file.to_string_lossy().into_owned(),
    }
}

/// Text made safe inside HTML elements and quoted attributes.
#[must_use]
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The page.
///
/// # Errors
/// When a plot cannot be drawn.
pub fn render(
    s: &Summary,
    gate: Option<(&Verdict, &str)>,
    goose_links: &[String],
) -> anyhow::Result<String> {
    let mut out = String::new();
    let title = format!("sse-digits load test: {}", s.target);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{}</h1>\n",
        escape(&title),
        escape(&title)
    );
    let _ = writeln!(
        out,
        "<p>{} server · {} users · {:.1} s. <a href=\"#summary\">Summary</a> · {}<a href=\"#plots\">Plots</a>{}</p>",
        if s.embedded { "Embedded" } else { "External" },
        s.users,
        s.elapsed_secs,
        if gate.is_some() {
            "<a href=\"#gate\">Gate</a> · "
        } else {
            ""
        },
        if goose_links.is_empty() {
            ""
        } else {
            " · <a href=\"#goose\">goose's report</a>"
        }
    );
    summary_section(&mut out, s);
    if let Some((verdict, source)) = gate {
        gate_section(&mut out, verdict, source);
    }
    plots_section(&mut out, s)?;
    if !goose_links.is_empty() {
        out.push_str("<section id=\"goose\">\n<h2>Goose's report</h2>\n<p>Goose's own report of the same run (requests, response times and status codes of the stream opens):</p>\n<ul>\n");
        for link in goose_links {
            let link = escape(link);
            let _ = writeln!(out, "<li><a href=\"{link}\">{link}</a></li>");
        }
        out.push_str("</ul>\n</section>\n");
    }
    out.push_str("</body>\n</html>\n");
    Ok(out)
}

/// A cell holding the figure found at `key` in the JSON summary, printed as `text`.
fn cell(key: &str, text: impl std::fmt::Display) -> String {
    format!("<td class=\"n\" data-key=\"{}\">{text}</td>", escape(key))
}

fn row(out: &mut String, label: &str, cells: &[String]) {
    let _ = writeln!(out, "<tr><th>{}</th>{}</tr>", escape(label), cells.concat());
}

fn summary_section(out: &mut String, s: &Summary) {
    out.push_str("<section id=\"summary\">\n<h2>Summary</h2>\n");
    let _ = writeln!(
        out,
        "<p>Target <code>{}</code>. Result: {}</p>",
        escape(&s.target),
        if s.is_clean() {
            "<span class=\"clean\">clean: no loss, duplicate, reorder, malformed event or connection error</span>"
        } else {
            "<span class=\"dirty\">NOT CLEAN: see the counters below</span>"
        }
    );
    let _ = writeln!(
        out,
        "<p>Requests: <code id=\"request\">{}</code></p>",
        escape(&s.request.describe())
    );
    if s.request.insecure_tls {
        out.push_str(
            "<p class=\"dirty\" id=\"insecure\">TLS: certificates NOT verified (--insecure)</p>\n",
        );
    }
    out.push_str("<table id=\"overview\">\n");
    row(out, "users", &[cell("users", s.users)]);
    row(out, "interval, ms", &[cell("interval_ms", s.interval_ms)]);
    row(
        out,
        "offered events/s",
        &[cell(
            "offered_events_per_sec",
            thousands(s.offered_events_per_sec.round() as u64),
        )],
    );
    let steady = s.steady_events_per_sec.map_or_else(
        || "<td class=\"n\">-</td>".to_owned(),
        |r| cell("steady_events_per_sec", thousands(r.round() as u64)),
    );
    row(out, "delivered events/s with all streams open", &[steady]);
    if let Some(server) = &s.server_lateness {
        server_lateness_rows(out, server);
    }
    row(
        out,
        "delivered events/s over the whole run",
        &[cell(
            "events_per_sec",
            thousands(s.events_per_sec.round() as u64),
        )],
    );
    row(
        out,
        "elapsed, s",
        &[cell("elapsed_secs", format!("{:.1}", s.elapsed_secs))],
    );
    row(
        out,
        "peak open streams",
        &[cell("peak_open_streams", s.peak_open_streams)],
    );
    out.push_str("</table>\n");
    if s.llm.is_some() {
        llm_tables(out, s);
    } else {
        latency_table(out, s);
    }
    if let Some(h) = s
        .load_generator_hiccups
        .as_ref()
        .filter(|h| crate::report::hiccups::large_against(h, &s.latencies.lateness))
    {
        let _ = writeln!(
            out,
            "<p class=\"dirty\">Warning: load generator hiccups (p99 {:.1} ms, p99.9 {:.1} ms) reach \
             half the lateness tail, so that much of it may be the load generator's own, not the \
             server's.</p>",
            h.percentiles.p99_ms, h.percentiles.p999_ms
        );
    }
    storm_table(out, s);
    counter_table(out, s);
    process_table(out, s);
    out.push_str("</section>\n");
}

/// The busiest windows of connection attempts and opens (see [`crate::measure::storm`]).
fn storm_table(out: &mut String, s: &Summary) {
    let _ = writeln!(
        out,
        "<table id=\"storm\">\n<tr><th>busiest</th><th>{} ms</th><th>at, s</th>\
         <th>100 ms</th><th>at, s</th><th>1 s</th><th>at, s</th><th>total</th></tr>",
        s.storm.bin_ms
    );
    for (label, key, peaks) in [
        ("connection attempts", "attempts", &s.storm.attempts),
        ("streams opened", "opens", &s.storm.opens),
    ] {
        let k = |field: &str| format!("storm.{key}.{field}");
        row(
            out,
            label,
            &[
                cell(&k("bin.count"), peaks.bin.count),
                cell(&k("bin.at_secs"), format!("{:.2}", peaks.bin.at_secs)),
                cell(&k("tenth.count"), peaks.tenth.count),
                cell(&k("tenth.at_secs"), format!("{:.2}", peaks.tenth.at_secs)),
                cell(&k("second.count"), peaks.second.count),
                cell(&k("second.at_secs"), format!("{:.2}", peaks.second.at_secs)),
                cell(&k("total"), peaks.total),
            ],
        );
    }
    out.push_str("</table>\n");
}

/// The server's own lateness histogram: bucket bounds, so "at most".
fn server_lateness_rows(out: &mut String, server: &ServerLateness) {
    // Only numbers carry their JSON key (past the last bucket is `null` there).
    let bound = |key: &str, ms: Option<f64>| match ms {
        Some(ms) if ms.is_finite() => cell(key, format!("{ms:.0}")),
        Some(_) => "<td class=\"n\">past the last bucket</td>".to_owned(),
        None => "<td class=\"n\">-</td>".to_owned(),
    };
    row(
        out,
        "server's own lateness with all streams open, events",
        &[cell("server_lateness.events", thousands(server.events))],
    );
    row(
        out,
        "server's own lateness, p50 at most, ms",
        &[bound(
            "server_lateness.p50_at_most_ms",
            server.p50_at_most_ms,
        )],
    );
    row(
        out,
        "server's own lateness, p99 at most, ms",
        &[bound(
            "server_lateness.p99_at_most_ms",
            server.p99_at_most_ms,
        )],
    );
    let within = server.within_20ms_percent.map_or_else(
        || "<td class=\"n\">-</td>".to_owned(),
        |p| cell("server_lateness.within_20ms_percent", format!("{p:.1}")),
    );
    row(out, "server's own lateness, within 20 ms, %", &[within]);
}

/// Opens a table of percentiles, `id`, with its header row.
fn percentile_table_head(out: &mut String, id: &str) {
    let _ = write!(out, "<table id=\"{id}\">\n<tr><th>ms</th>");
    for h in ["count", "p50", "p90", "p99", "p99.9", "max", "mean"] {
        let _ = write!(out, "<th class=\"n\">{h}</th>");
    }
    out.push_str("</tr>\n");
}

/// One row of percentiles, each cell keyed `key.field` as the JSON summary names it.
fn percentile_row(out: &mut String, label: &str, key: &str, p: &Percentiles) {
    let ms = |field: &str, v: f64| cell(&format!("{key}.{field}"), format!("{v:.3}"));
    row(
        out,
        label,
        &[
            cell(&format!("{key}.count"), thousands(p.count)),
            ms("p50_ms", p.p50_ms),
            ms("p90_ms", p.p90_ms),
            ms("p99_ms", p.p99_ms),
            ms("p999_ms", p.p999_ms),
            ms("max_ms", p.max_ms),
            ms("mean_ms", p.mean_ms),
        ],
    );
}

fn latency_table(out: &mut String, s: &Summary) {
    percentile_table_head(out, "latencies");
    let l = &s.latencies;
    let mut rows: Vec<(&str, String, &Percentiles)> = [
        ("open", "open", &l.open),
        ("first event", "first_event", &l.first_event),
        ("lateness", "lateness", &l.lateness),
        (
            "lateness when steady",
            "lateness_steady",
            &l.lateness_steady,
        ),
        ("reconnect", "reconnect", &l.reconnect),
        ("retry hint", "retry_hint", &l.retry_hint),
        ("retry overshoot", "retry_overshoot", &l.retry_overshoot),
    ]
    .into_iter()
    .map(|(label, key, p)| (label, format!("latencies.{key}"), p))
    .collect();
    // Beside lateness: the load generator's own delays, which lateness includes.
    if let Some(h) = &s.load_generator_hiccups {
        rows.push((
            "load generator hiccups",
            "load_generator_hiccups".to_owned(),
            &h.percentiles,
        ));
    }
    for (label, key, p) in rows {
        percentile_row(out, label, &key, p);
    }
    out.push_str("</table>\n");
}

/// `--llm`: the completions' latencies (`id="llm"`), then the rates (`id="llm-rates"`);
/// the event-source latencies are said not measured rather than shown as zeros.
fn llm_tables(out: &mut String, s: &Summary) {
    let Some(l) = &s.llm else {
        return;
    };
    let _ = writeln!(
        out,
        "<p id=\"latencies-not-measured\">Event-source latencies (first event, lateness, \
         reconnect): {NOT_MEASURED} with --llm.</p>"
    );
    percentile_table_head(out, "llm");
    for r in latency_rows(l) {
        let key = format!("llm.{}", r.key);
        let Some(p) = r.percentiles else {
            let _ = writeln!(
                out,
                "<tr><th>{}</th><td colspan=\"7\">{NOT_MEASURED} (no stream reported usage)</td></tr>",
                escape(r.label)
            );
            continue;
        };
        percentile_row(out, r.label, &key, p);
    }
    out.push_str("</table>\n<table id=\"llm-rates\">\n");
    row(
        out,
        "completed requests/s",
        &[cell(
            "llm.requests_per_sec",
            format!("{:.2}", l.requests_per_sec),
        )],
    );
    let output = l.output_tokens_per_sec.map_or_else(
        || format!("<td class=\"n\">{NOT_MEASURED}</td>"),
        |r| cell("llm.output_tokens_per_sec", format!("{r:.1}")),
    );
    row(out, "output tokens/s over the run", &[output]);
    let _ = writeln!(
        out,
        "</table>\n<p>{}</p>",
        escape(&rates_line(l, &s.counters))
    );
}

/// The counters in one table per group of [`COUNTERS`], an aside indented under the counter
/// it stands by; then the failures by kind.
fn counter_table(out: &mut String, s: &Summary) {
    let c = &s.counters;
    out.push_str("<div class=\"side\">\n");
    for group in Group::ALL.into_iter().filter(|g| g.shown(s.llm.is_some())) {
        let _ = writeln!(
            out,
            "<table class=\"counters\"><tr><th colspan=\"2\">{}</th></tr>",
            group.name()
        );
        for spec in in_group(group) {
            let label = match spec.aside {
                Aside::No => format!("<th>{}</th>", escape(spec.label)),
                Aside::OfThose => format!("<th class=\"aside\">{}</th>", escape(spec.label)),
                Aside::Besides => format!("<th class=\"aside\">+ {}</th>", escape(spec.label)),
            };
            let value = spec
                .value(c)
                .map_or_else(|| NOT_CHECKABLE.to_owned(), thousands);
            let value = cell(&format!("counters.{}", spec.json), value);
            let _ = writeln!(out, "<tr>{label}{value}</tr>");
        }
        out.push_str("</table>\n");
    }
    out.push_str(
        "</div>\n<table id=\"errors-by-kind\">\n<tr><th colspan=\"2\">by kind</th></tr>\n",
    );
    // A kind is counted in its counter, so a counter of 0 has none.
    for spec in COUNTERS.iter().filter(|spec| (spec.get)(c) > 0) {
        if let Some(by_kind) = spec.by_kind {
            let kinds = format!("<td class=\"n\">{}</td>", escape(&by_kind(c)));
            row(out, spec.label, &[kinds]);
        }
    }
    out.push_str("</table>\n");
}

fn usage_rows(out: &mut String, label: &str, key: &str, u: &ProcessUsage) {
    let f = |field: &str, decimals: usize, v: f64| {
        cell(
            &format!("processes.{key}.{field}"),
            format!("{v:.decimals$}"),
        )
    };
    let _ = writeln!(out, "<tr><th colspan=\"2\">{}</th></tr>", escape(label));
    row(
        out,
        "RSS before, MiB",
        &[f("rss_before_mib", 1, u.rss_before_mib)],
    );
    row(
        out,
        "RSS peak, MiB",
        &[f("rss_peak_mib", 1, u.rss_peak_mib)],
    );
    row(
        out,
        "RSS after, MiB",
        &[f("rss_after_mib", 1, u.rss_after_mib)],
    );
    row(
        out,
        "RSS per connection, KiB",
        &[f("rss_per_connection_kib", 1, u.rss_per_connection_kib)],
    );
    row(out, "CPU, s", &[f("cpu_secs", 2, u.cpu_secs)]);
    row(
        out,
        "CPU, % of a core",
        &[f("cpu_percent", 0, u.cpu_percent)],
    );
    if let Some(steady) = u.cpu_percent_steady {
        row(
            out,
            "CPU with every stream open, % of a core",
            &[f("cpu_percent_steady", 0, steady)],
        );
    }
    row(
        out,
        "CPU per event, µs",
        &[f("cpu_us_per_event", 2, u.cpu_us_per_event)],
    );
}

fn process_table(out: &mut String, s: &Summary) {
    let p = &s.processes;
    out.push_str("<table id=\"processes\">\n");
    let label = if s.embedded {
        "this process (server and load generator)"
    } else {
        "load test"
    };
    let label = if s.load_generators.is_empty() {
        label
    } else {
        "busiest load-generator process"
    };
    usage_rows(out, label, "this_process", &p.this_process);
    // Each process of a run of several, as measured: never averaged.
    for (i, each) in s.load_generators.iter().enumerate() {
        usage_rows(
            out,
            &format!("load-generator process {}", i + 1),
            &format!("load_generators.{i}.this_process"),
            &each.this_process,
        );
    }
    if let Some(server_cpu) = p.embedded_server_cpu_secs {
        row(
            out,
            "of that CPU, server threads, s",
            &[cell(
                "processes.embedded_server_cpu_secs",
                format!("{server_cpu:.2}"),
            )],
        );
    }
    if let Some(server) = &p.server {
        usage_rows(out, "server (--server-pid)", "server", server);
    }
    if let Some(after) = &s.server_after {
        if let Some(open) = after.streams_open {
            row(
                out,
                "server streams still open after the run",
                &[cell("server_after.streams_open", open)],
            );
        }
        if let Some(growth) = after.rss_growth_pct {
            row(
                out,
                &format!("RSS growth over the run, % ({})", after.measured_in),
                &[cell("server_after.rss_growth_pct", format!("{growth:.1}"))],
            );
        }
    }
    row(
        out,
        "open files limit",
        &[cell("file_limit.soft", s.file_limit.soft)],
    );
    out.push_str("</table>\n");
}

fn gate_section(out: &mut String, verdict: &Verdict, source: &str) {
    let _ = writeln!(
        out,
        "<section id=\"gate\">\n<h2>Gate: {}</h2>\n<p>Thresholds: {}</p>\n<table id=\"checks\">\n\
         <tr><th></th><th>check</th><th class=\"n\">measured</th><th>threshold</th></tr>",
        if verdict.passed() { "passed" } else { "FAILED" },
        escape(source)
    );
    for check in &verdict.checks {
        let (class, mark) = if check.passed {
            ("pass", "PASS")
        } else {
            ("fail", "FAIL")
        };
        let _ = writeln!(
            out,
            "<tr class=\"{class}\"><td class=\"mark\">{mark}</td><td>{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
            escape(&check.name),
            escape(&check.measured),
            escape(&check.threshold)
        );
    }
    out.push_str("</table>\n</section>\n");
}

/// A figure around a plot, or a line saying there was nothing to plot.
fn figure(out: &mut String, id: &str, svg: Option<String>, caption: &str) {
    let _ = writeln!(out, "<figure id=\"{id}\">");
    match svg {
        Some(svg) => out.push_str(&svg),
        None => out.push_str("<p>(nothing recorded)</p>"),
    }
    let _ = writeln!(out, "\n<figcaption>{caption}</figcaption>\n</figure>");
}

fn plots_section(out: &mut String, s: &Summary) -> anyhow::Result<()> {
    out.push_str("<section id=\"plots\">\n<h2>Plots</h2>\n");
    if s.llm.is_some() {
        llm_plots(out, s)?;
    } else {
        figure(
            out,
            "plot-lateness",
            plots::percentile_plot("Lateness percentile distribution", &s.histograms.lateness)?,
            "Per-event lateness (arrival − scheduled time) from the merged HdrHistogram, ms, \
             against the percentile; the x axis is a log scale of 1/(1−p), so 90%, 99%, \
             99.9% … are equally spaced and the tail is visible. The line ends at the max.",
        );
    }
    let show_rss = s.embedded || s.processes.server.is_some();
    let [users, errors, rss] = plots::timeline_plots(&s.timeline, s.embedded, show_rss)?;
    let period = s.timeline.period_ms;
    figure(
        out,
        "plot-users",
        users,
        &format!(
            "Open streams (connected users, left axis) and events received per second \
             (right axis), sampled every {period} ms."
        ),
    );
    figure(
        out,
        "plot-over-time",
        crate::report::over_time::plot(&s.lateness_slots, &s.timeline)?,
        &format!(
            "Lateness p99 of each {} ms of the run (left axis; from small per-slot \
             histograms, about 6% resolution) and reconnection attempts per second (right \
             axis): a restart shows where it happens and how long it lasts.",
            s.lateness_slots.slot_ms
        ),
    );
    figure(
        out,
        "plot-errors",
        errors,
        "Reconnection attempts and errors (failed attempts, read errors, idle timeouts), \
         totals so far.",
    );
    if show_rss {
        figure(
            out,
            "plot-rss",
            rss,
            if s.embedded {
                "Resident memory of this process, which holds both the embedded server and \
                 the load generator, MiB."
            } else {
                "Resident memory of the load test and of the --server-pid server, MiB."
            },
        );
    }
    out.push_str("</section>\n");
    Ok(())
}

/// `--llm`: the first-byte and first-token distributions on one plot, and the gaps between
/// content events beside the time per token.
fn llm_plots(out: &mut String, s: &Summary) -> anyhow::Result<()> {
    let h = &s.histograms.llm;
    figure(
        out,
        "plot-llm-ttft",
        plots::percentile_lines_plot(
            "Time to first token and to first byte",
            "ms",
            &[
                ("time to first token", &h.ttft),
                ("time to first byte", &h.ttfb),
            ],
        )?,
        "Per completed request: request sent → first event with content (TTFT), and → \
         response headers (TTFB), ms, against the percentile on a log scale of 1/(1−p).",
    );
    figure(
        out,
        "plot-llm-itl",
        plots::percentile_lines_plot(
            "Inter-token and inter-event latency",
            "ms",
            &[
                ("inter-token latency (TPOT, per request)", &h.itl),
                ("inter-event latency (per gap)", &h.inter_event),
            ],
        )?,
        "Time per output token after the first, one value per request with usage \
         ((last content event − first) / the tokens after the first event), beside every gap between \
         consecutive content events: a server that sends several tokens per event shows \
         gaps longer than its time per token.",
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_text_is_escaped() {
        assert_eq!(
            escape(r#"<a href="x">&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(escape("plain µs"), "plain µs");
    }

    #[test]
    fn a_report_in_the_folder_is_linked_by_name() {
        let dir = Path::new("/tmp/report");
        assert_eq!(
            relative_link(dir, Path::new("/tmp/report/goose.html")),
            "goose.html"
        );
        assert_eq!(
            relative_link(dir, Path::new("/elsewhere/g.html")),
            "/elsewhere/g.html"
        );
    }

    #[test]
    fn cells_name_their_json_key() {
        assert_eq!(
            cell("counters.lost", 0),
            "<td class=\"n\" data-key=\"counters.lost\">0</td>"
        );
    }
}
