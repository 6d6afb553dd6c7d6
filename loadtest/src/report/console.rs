//! How a run is shown on the console: the progress line while it runs, and the summary at
//! the end.

use std::fmt::Write as _;
use std::time::Duration;

use sse_digits::telemetry::names::EVENT_LATENESS;

use crate::measure::counters::Counters;
use crate::measure::storm::Peaks;
use crate::probe::server_lateness::{ServerLateness, ON_TIME_MS};
use crate::report::counters::{in_group, Aside, Group, NOT_CHECKABLE};
use crate::report::hiccups;
use crate::report::llm::{latency_rows, rates_line, NOT_MEASURED};
use crate::report::summary::{HiccupSummary, Percentiles, ProcessUsage, Summary};

/// What the progress line shows.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Progress {
    /// Time since the run started.
    pub elapsed: Duration,
    /// The run's planned length (ramp, run time and grace).
    pub total: Duration,
    /// Streams open now.
    pub open_streams: i64,
    /// Users planned.
    pub users: usize,
    /// Events per second since the previous line.
    pub events_per_sec: f64,
    /// Events so far.
    pub events: u64,
    /// Failed attempts and broken streams so far.
    pub errors: u64,
    /// Ids lost so far (known when their event sources finish).
    pub lost: u64,
}

impl Progress {
    /// The line of processes side by side (`--processes`), from the last line each one
    /// reported: counts and rates summed, the clock the furthest along. `users` is the whole
    /// run's, so a process yet to report shows as streams not open. `None` before any
    /// process has reported.
    #[must_use]
    pub fn of_processes(lines: &[Self], users: usize) -> Option<Self> {
        let first = lines.first()?;
        Some(
            lines[1..]
                .iter()
                .fold(Self { users, ..*first }, |sum, line| Self {
                    elapsed: sum.elapsed.max(line.elapsed),
                    total: sum.total.max(line.total),
                    open_streams: sum.open_streams + line.open_streams,
                    users,
                    events_per_sec: sum.events_per_sec + line.events_per_sec,
                    events: sum.events + line.events,
                    errors: sum.errors + line.errors,
                    lost: sum.lost + line.lost,
                }),
        )
    }
}

impl std::fmt::Display for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "[{:>6.1}s / {:.0}s] streams {:>6}/{} | {:>9} events/s | events {:>11} | errors {} | lost {}",
            self.elapsed.as_secs_f64(),
            self.total.as_secs_f64(),
            self.open_streams,
            self.users,
            thousands(self.events_per_sec.round() as u64),
            thousands(self.events),
            self.errors,
            self.lost,
        )
    }
}

/// `1234567` as `1,234,567`.
#[must_use]
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn histogram_row(out: &mut String, name: &str, p: &Percentiles) {
    let _ = writeln!(
        out,
        "  {name:<16}{:>10} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>10.3}",
        thousands(p.count),
        p.p50_ms,
        p.p90_ms,
        p.p99_ms,
        p.p999_ms,
        p.max_ms,
        p.mean_ms
    );
}

fn usage_line(out: &mut String, label: &str, u: &ProcessUsage) {
    let steady = u
        .cpu_percent_steady
        .map(|percent| format!(", {percent:.0}% with every stream open"))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "  {label:<15} RSS {:.1} -> peak {:.1} -> after {:.1} MiB ({:.1} KiB per connection); \
         CPU {:.2} s ({:.0}% of a core{steady}, {:.2} µs per event)",
        u.rss_before_mib,
        u.rss_peak_mib,
        u.rss_after_mib,
        u.rss_per_connection_kib,
        u.cpu_secs,
        u.cpu_percent,
        u.cpu_us_per_event
    );
}

/// The busiest windows of connection attempts or opens: a restart's herd shows as a large
/// count in the finest bin.
fn storm_line(out: &mut String, label: &str, p: &Peaks, bin_ms: u64) {
    let _ = writeln!(
        out,
        "  {label:<15} busiest {bin_ms} ms {} (at {:.2} s) | 100 ms {} (at {:.2} s) | 1 s {} (at {:.2} s) | total {}",
        thousands(p.bin.count),
        p.bin.at_secs,
        thousands(p.tenth.count),
        p.tenth.at_secs,
        thousands(p.second.count),
        p.second.at_secs,
        thousands(p.total),
    );
}

/// The counters of `group` on one line, as [`COUNTERS`](crate::report::counters::COUNTERS)
/// names and places them: `label value`, an aside in parentheses after the counter it
/// stands by.
fn counter_line(out: &mut String, c: &Counters, group: Group) {
    let mut items: Vec<String> = Vec::new();
    let mut asides: Vec<String> = Vec::new();
    let close_asides = |items: &mut Vec<String>, asides: &mut Vec<String>| {
        if let (Some(item), false) = (items.last_mut(), asides.is_empty()) {
            let _ = write!(item, " ({})", asides.join(", "));
            asides.clear();
        }
    };
    for spec in in_group(group) {
        let value = match spec.value(c) {
            None => NOT_CHECKABLE.to_owned(),
            Some(value) if spec.separators => thousands(value),
            Some(value) => value.to_string(),
        };
        let label = spec.label;
        match spec.aside {
            Aside::No => {
                close_asides(&mut items, &mut asides);
                let mut item = format!("{label} {value}");
                if let Some(by_kind) = spec.by_kind {
                    let _ = write!(item, " {}", by_kind(c));
                }
                items.push(item);
            }
            Aside::OfThose => asides.push(format!("{label} {value}")),
            Aside::Besides => asides.push(format!("+{value} {label}")),
        }
    }
    close_asides(&mut items, &mut asides);
    let _ = writeln!(out, "  {:<16}{}", group.name(), items.join(" | "));
}

/// The console summary.
#[must_use]
pub fn render(s: &Summary) -> String {
    let c = &s.counters;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n=== SSE summary: {} ({})",
        s.target,
        if s.embedded {
            "embedded server"
        } else {
            "external server"
        }
    );
    // Without a schedule neither the interval nor the offered rate is known.
    let (interval, offered) = match s.interval_ms {
        0 => ("-".to_owned(), "-".to_owned()),
        ms => (
            format!("{ms} ms"),
            thousands(s.offered_events_per_sec.round() as u64),
        ),
    };
    let _ = writeln!(
        out,
        "  users {} | interval {interval} | offered {offered} events/s | delivered {} events/s with all streams open ({} over all {:.1} s) | peak open streams {}",
        s.users,
        s.steady_events_per_sec
            .map_or("-".to_owned(), |r| thousands(r.round() as u64)),
        thousands(s.events_per_sec.round() as u64),
        s.elapsed_secs,
        s.peak_open_streams
    );
    let lateness_mode = if s.llm.is_some() {
        format!("{NOT_MEASURED} (--llm: request and response streams)")
    } else {
        s.lateness_against.description.clone()
    };
    let _ = writeln!(out, "  {:<16}{lateness_mode}", "lateness mode");
    let _ = writeln!(out, "  {:<16}{}", "request", s.request.describe());
    if s.request.insecure_tls {
        let _ = writeln!(out, "  TLS: certificates NOT verified (--insecure)");
    }
    let _ = writeln!(
        out,
        "\n  {:<16}{:>10} {:>9} {:>9} {:>9} {:>9} {:>9} {:>10}",
        "ms", "count", "p50", "p90", "p99", "p99.9", "max", "mean"
    );
    let l = &s.latencies;
    // The load generator's own delays are in the figure that times each arrival.
    let timed_by_arrival = if let Some(llm) = &s.llm {
        for row in latency_rows(llm) {
            match row.percentiles {
                Some(p) => histogram_row(&mut out, row.label, p),
                None => {
                    let _ = writeln!(
                        out,
                        "  {:<16}{NOT_MEASURED} (no stream reported usage)",
                        row.label
                    );
                }
            }
        }
        let _ = writeln!(out, "  {:<16}{}", "rates", rates_line(llm, c));
        &llm.inter_event
    } else {
        histogram_row(&mut out, "open", &l.open);
        histogram_row(&mut out, "first event", &l.first_event);
        histogram_row(&mut out, "lateness", &l.lateness);
        histogram_row(&mut out, "  when steady", &l.lateness_steady);
        histogram_row(&mut out, "reconnect", &l.reconnect);
        histogram_row(&mut out, "retry hint", &l.retry_hint);
        histogram_row(&mut out, "retry overshoot", &l.retry_overshoot);
        &l.lateness
    };
    if let Some(hiccups) = &s.load_generator_hiccups {
        hiccup_lines(&mut out, hiccups, timed_by_arrival);
    }
    if let Some(server) = &s.server_lateness {
        server_lateness_line(&mut out, server);
    }
    out.push('\n');
    let llm = s.llm.is_some();
    counter_line(&mut out, c, Group::Connections);
    if Group::Reconnection.shown(llm) {
        counter_line(&mut out, c, Group::Reconnection);
    }
    storm_line(&mut out, "attempts", &s.storm.attempts, s.storm.bin_ms);
    storm_line(&mut out, "opens", &s.storm.opens, s.storm.bin_ms);
    for group in [
        Group::Failures,
        Group::Events,
        Group::Endings,
        Group::Identity,
        Group::Llm,
    ] {
        if group.shown(llm) {
            counter_line(&mut out, c, group);
        }
    }
    if llm {
        let _ = writeln!(
            out,
            "  {:<16}{NOT_MEASURED} with --llm (events, endings, identity, lateness)",
            "event sources"
        );
    }
    let p = &s.processes;
    let label = if s.embedded {
        "this process"
    } else {
        "load test"
    };
    let label = if s.load_generators.is_empty() {
        label
    } else {
        "busiest process"
    };
    usage_line(&mut out, label, &p.this_process);
    // Each process of a run of several, as measured: never averaged.
    for (i, each) in s.load_generators.iter().enumerate() {
        usage_line(&mut out, &format!("process {}", i + 1), &each.this_process);
    }
    if let Some(server_cpu) = p.embedded_server_cpu_secs {
        let _ = writeln!(
            out,
            "  {:<15} of that CPU, server threads {:.2} s, load generator {:.2} s",
            "",
            server_cpu,
            (p.this_process.cpu_secs - server_cpu).max(0.0)
        );
    }
    if let Some(server) = &p.server {
        usage_line(&mut out, "server", server);
    }
    if let Some(percent) = p.saturated_percent_steady() {
        let _ = writeln!(
            out,
            "  {:<15} {label} used {percent:.0}% of a core with every stream open, on {} core(s): \
             it was saturated, so lateness includes its own delays (give it more cores, or fewer users)",
            "note",
            p.cores
        );
    }
    if let Some(after) = &s.server_after {
        let open = after
            .streams_open
            .map_or_else(|| "unknown".to_owned(), |n| n.to_string());
        let memory = match (
            after.rss_before_mib,
            after.rss_after_mib,
            after.rss_growth_pct,
        ) {
            (Some(before), Some(now), Some(growth)) => {
                format!("RSS {before:.1} MiB before, {now:.1} MiB after ({growth:+.1}%)")
            }
            _ => "RSS not available".to_owned(),
        };
        let _ = writeln!(
            out,
            "  after the run   server streams open {open} | {memory}, measured in {}",
            after.measured_in
        );
    }
    let _ = writeln!(
        out,
        "  open files      limit {} (hard {})",
        s.file_limit.soft, s.file_limit.hard
    );
    let _ = writeln!(
        out,
        "  result          {}",
        if s.is_clean() {
            "clean: no loss, duplicate, reorder, malformed event or connection error"
        } else {
            "NOT CLEAN: see the counters above"
        }
    );
    out
}

/// The console's hiccup line, and a warning line after it when they are large against
/// `lateness`.
fn hiccup_lines(out: &mut String, h: &HiccupSummary, lateness: &Percentiles) {
    let p = &h.percentiles;
    let _ = writeln!(
        out,
        "  load generator hiccups p99 {:.3} | p99.9 {:.3} | max {:.3} ms ({} ticker(s) every {} ms, {} wake-ups)",
        p.p99_ms,
        p.p999_ms,
        p.max_ms,
        h.tickers,
        h.period_ms,
        thousands(p.count),
    );
    if hiccups::large_against(h, lateness) {
        let _ = writeln!(
            out,
            "  warning         load generator hiccups p99 {:.1} / p99.9 {:.1} ms reach half the lateness \
             p99 {:.1} / p99.9 {:.1} ms: that much of the lateness tail may be the load generator's own, \
             not the server's (give it a core of its own, fewer users, or look for blocking work)",
            p.p99_ms, p.p999_ms, lateness.p99_ms, lateness.p999_ms,
        );
    }
}

/// The server's own lateness: from bucket bounds, so "at most".
fn server_lateness_line(out: &mut String, server: &ServerLateness) {
    let at_most = |ms: Option<f64>| match ms {
        Some(ms) if ms.is_finite() => format!("<= {ms:.0} ms"),
        Some(_) => "past the last bucket".to_owned(),
        None => "-".to_owned(),
    };
    let within = server
        .within_20ms_percent
        .map_or_else(|| "-".to_owned(), |p| format!("{p:.1}%"));
    let _ = writeln!(
        out,
        "  {:<15} p50 {} | p99 {} | within {:.0} ms {within} | of {} events with every stream open (its {EVENT_LATENESS})",
        "server's own",
        at_most(server.p50_at_most_ms),
        at_most(server.p99_at_most_ms),
        ON_TIME_MS,
        thousands(server.events),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::hiccups::fixtures::{hiccups, lateness};

    #[test]
    fn the_console_shows_the_hiccups_and_the_warning() {
        let mut out = String::new();
        hiccup_lines(&mut out, &hiccups(1.2, 90.0), &lateness(7.0, 128.0));
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[0],
            "  load generator hiccups p99 1.200 | p99.9 90.000 | max 180.000 ms (1 ticker(s) every 1 ms, 60,000 wake-ups)"
        );
        assert!(
            lines[1].starts_with(
                "  warning         load generator hiccups p99 1.2 / p99.9 90.0 ms reach half"
            ),
            "{out}"
        );
        let mut quiet = String::new();
        hiccup_lines(&mut quiet, &hiccups(1.1, 1.8), &lateness(7.0, 128.0));
        assert_eq!(quiet.lines().count(), 1, "{quiet}");
    }

    /// The hint's row sits under `reconnect`, and where it came from on the line after
    /// `connections`; an `--llm` run, which never reconnects, shows neither.
    #[test]
    fn the_retry_hint_is_shown_beside_reconnect() {
        let mut part = crate::report::part::tests::synthetic(1..=10, 1);
        part.counters = Counters {
            retry_from_field: 1234,
            retry_default: 56,
            ..Counters::default()
        };
        for _ in 0..3 {
            part.histograms.retry_hint.record(200_000).unwrap();
        }
        let shown = part.histograms.retry_hint.highest_equivalent(200_000) as f64 / 1000.0;
        let text = render(&part.summary());
        let lines: Vec<&str> = text.lines().collect();
        let at = |prefix: &str| {
            lines
                .iter()
                .position(|l| l.starts_with(prefix))
                .unwrap_or_else(|| panic!("no {prefix:?} in\n{text}"))
        };
        let row = at("  retry hint ");
        assert_eq!(row, at("  reconnect ") + 1, "{text}");
        let cells: Vec<&str> = lines[row].split_whitespace().collect();
        assert_eq!(cells[2..4], ["3", &format!("{shown:.3}")], "{text}");
        assert_eq!(
            lines[at("  connections ") + 1],
            "  reconnection    hint from server 1,234 | default (none sent) 56 | Retry-After waits 0 | delays kept in bounds 0"
        );

        part.llm = Some(crate::report::part::LlmSettings {
            think_ms: 0,
            request_timeout_secs: 10,
        });
        let text = render(&part.summary());
        assert!(
            !text.contains("retry hint") && !text.contains("hint from server"),
            "{text}"
        );
    }

    #[test]
    fn thousands_are_separated() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn the_progress_line_shows_what_a_person_follows() {
        let line = Progress {
            elapsed: Duration::from_millis(12_340),
            total: Duration::from_secs(33),
            open_streams: 998,
            users: 1000,
            events_per_sec: 9_980.4,
            events: 119_760,
            errors: 2,
            lost: 0,
        }
        .to_string();
        assert_eq!(
            line,
            "[  12.3s / 33s] streams    998/1000 |     9,980 events/s | events     119,760 | errors 2 | lost 0"
        );
    }

    #[test]
    fn processes_side_by_side_show_one_line_of_sums() {
        let line = |secs: u64, open: i64, events: u64, errors: u64| Progress {
            elapsed: Duration::from_secs(secs),
            total: Duration::from_secs(33),
            open_streams: open,
            users: 500,
            events_per_sec: 1_000.0,
            events,
            errors,
            lost: 1,
        };
        assert_eq!(Progress::of_processes(&[], 1000), None);
        let both = Progress::of_processes(&[line(12, 500, 100, 0), line(11, 498, 90, 2)], 1000);
        assert_eq!(
            both,
            Some(Progress {
                elapsed: Duration::from_secs(12),
                total: Duration::from_secs(33),
                open_streams: 998,
                users: 1000,
                events_per_sec: 2_000.0,
                events: 190,
                errors: 2,
                lost: 2,
            })
        );
        // One process yet to report: the whole run's users, half of them not open.
        let one = Progress::of_processes(&[line(1, 500, 10, 0)], 1000).unwrap();
        assert_eq!((one.open_streams, one.users), (500, 1000));
    }

    #[test]
    fn the_servers_own_lateness_is_reported_as_bucket_bounds() {
        let mut out = String::new();
        server_lateness_line(
            &mut out,
            &ServerLateness {
                events: 1_234_567,
                p50_at_most_ms: Some(1.0),
                p99_at_most_ms: Some(f64::INFINITY),
                within_20ms_percent: Some(97.25),
            },
        );
        assert_eq!(
            out,
            format!("  server's own    p50 <= 1 ms | p99 past the last bucket | within 20 ms 97.2% | of 1,234,567 events with every stream open (its {EVENT_LATENESS})\n")
        );
    }

    #[test]
    fn counters_that_cannot_be_checked_say_so() {
        let c = Counters {
            identity_none: 4,
            events: 40,
            reconnects: 2,
            ..Counters::default()
        };
        let mut out = String::new();
        counter_line(&mut out, &c, Group::Connections);
        counter_line(&mut out, &c, Group::Events);
        assert_eq!(
            out.lines().collect::<Vec<_>>(),
            [
                "  connections     attempts 0 | opened 0 | reconnects 2 (resumed ok not checkable, wrong not checkable, restarted from the beginning 0) | redirects 0",
                "  events          received 40 | expected not checkable | lost not checkable | duplicated not checkable | out of order not checkable | malformed 0 | invalid UTF-8 0 | early 0 | stalls 0 | without timestamp 0 | other names 0 {}",
            ]
        );
    }

    #[test]
    fn each_counter_line_names_its_counters_from_the_table() {
        let mut c = Counters::numbered();
        c.events = 1_234_567;
        c.status_codes.insert(503, 2);
        c.count_error("io: broken pipe");
        c.count_read_error("io: unexpected end of file");
        let mut out = String::new();
        for group in Group::ALL {
            counter_line(&mut out, &c, group);
        }
        assert_eq!(
            out.lines().collect::<Vec<_>>(),
            [
                "  connections     attempts 2 | opened 3 | reconnects 25 (resumed ok 26, wrong 27, restarted from the beginning 36) | redirects 42",
                "  reconnection    hint from server 43 | default (none sent) 44 | Retry-After waits 45 | delays kept in bounds 46",
                "  failures        refused 4 (+5 during the planned restart) | timeout 6 | status 7 {503: 2} | content type 8 | unrequested encoding 9 | too many redirects 10 | other 11 {\"io: broken pipe\": 1} | read errors 12 {\"io: unexpected end of file\": 1} (body cut 13, framing 14) | idle timeouts 15 | event too large 16",
                "  events          received 1,234,567 | expected 18 | lost 19 | duplicated 20 | out of order 21 | malformed 22 | invalid UTF-8 23 | early 24 | stalls 28 | without timestamp 37 | other names 38 {}",
                "  endings         bye 29 | 204 30 | dropped by client 31 | closed by server 32 (no retry hint 33) | streaming at the end 34 | keep-alives 35",
                "  identity        id sequence 39 | numeric data 40 | none 41",
                "  llm requests    requests 47 | completed 48 | error event 49 | cut stream 50 | timed out 51 | not JSON 52 | output tokens 53 | without usage 54 | stopped at the deadline 55",
            ]
        );
    }
}
