//! The performance gate: the [`Thresholds`] checked against a run's [`Summary`], printed
//! as a PASS/FAIL table (like k6's thresholds summary) and turned into the exit code.

use std::fmt::Write as _;

use crate::report::counters::{Bound, COUNTERS, NOT_CHECKABLE};
use crate::report::summary::Summary;
use crate::report::thresholds::Thresholds;
use Bound::{AtLeast, AtMost};

impl Thresholds {
    /// Checks every set threshold against `summary`. The counters' thresholds are those of
    /// [`COUNTERS`]; its correctness limits (lost, duplicated, out of order, malformed, wrong
    /// resumes) and the server's streams after the run default to 0: a gate that is on never
    /// lets a lost event through unless told to.
    #[must_use]
    pub fn check(&self, summary: &Summary) -> Verdict {
        let c = &summary.counters;
        let l = &summary.latencies;
        let mut checks = Vec::new();
        let peak = u64::try_from(summary.peak_open_streams).unwrap_or(0);
        checks.extend(count_check(
            "connections held",
            AtLeast,
            self.min_connections,
            peak,
        ));
        // Floors first, then ceilings, each in the table's order.
        for bound in [AtLeast, AtMost] {
            for (spec, gate) in COUNTERS
                .iter()
                .filter_map(|spec| Some((spec, spec.gate.as_ref()?)))
                .filter(|(_, gate)| gate.bound == bound)
            {
                let given = (gate.limit)(self);
                match (spec.value(c), given.or(gate.default)) {
                    (Some(measured), limit) => {
                        checks.extend(count_check(gate.check, bound, limit, measured));
                    }
                    // Said, never passed silently: a limit the user set on what the run
                    // could not check fails; the gate's own default of 0 does not.
                    (None, Some(limit)) => checks.push(Check::new(
                        gate.check,
                        threshold_text(bound, limit),
                        NOT_CHECKABLE.to_owned(),
                        given.is_none(),
                    )),
                    (None, None) => {}
                }
            }
        }
        for (name, limit) in &self.max_counts {
            let spec = COUNTERS.iter().find(|spec| spec.json == name);
            checks.push(match spec.map(|spec| (spec, spec.value(c))) {
                Some((spec, Some(measured))) => {
                    count_check(spec.json, AtMost, Some(*limit), measured)
                        .expect("a limit was given")
                }
                Some((spec, None)) => Check::new(
                    spec.json,
                    threshold_text(AtMost, *limit),
                    NOT_CHECKABLE.to_owned(),
                    false,
                ),
                // Refused before the run by `unknown_counters`; said, never passed.
                None => Check::new(
                    name,
                    threshold_text(AtMost, *limit),
                    "no such counter".to_owned(),
                    false,
                ),
            });
        }
        let after = summary.server_after.as_ref();
        if let Some(open) = after.and_then(|a| a.streams_open) {
            checks.extend(count_check(
                "server streams open after the run",
                AtMost,
                self.max_streams_after.or(Some(0)),
                u64::try_from(open).unwrap_or(u64::MAX),
            ));
        }
        let mut ms_at_most = |name: &str, limit: Option<f64>, measured: Option<f64>| {
            if let Some(limit) = limit {
                checks.push(Check::new(
                    name,
                    format!("<= {limit} ms"),
                    measured.map_or_else(|| "not measured".to_owned(), |m| format!("{m:.3} ms")),
                    measured.is_some_and(|m| m <= limit),
                ));
            }
        };
        // Without a schedule or a timestamp there is no lateness: its limits fail, they
        // cannot pass on an empty histogram.
        let lateness = (!summary.lateness_against.not_measured()).then_some(&l.lateness);
        ms_at_most(
            "lateness p99",
            self.max_lateness_p99_ms,
            lateness.map(|p| p.p99_ms),
        );
        ms_at_most(
            "lateness max",
            self.max_lateness_max_ms,
            lateness.map(|p| p.max_ms),
        );
        ms_at_most(
            "first event p99",
            self.max_first_event_p99_ms,
            Some(l.first_event.p99_ms),
        );
        ms_at_most("open p99", self.max_open_p99_ms, Some(l.open.p99_ms));
        ms_at_most(
            "reconnect p99",
            self.max_reconnect_p99_ms,
            Some(l.reconnect.p99_ms),
        );
        // `--llm`: a limit on a run without it, or on a figure no request gave (ITL without
        // usage), fails as not measured.
        let llm = summary.llm.as_ref();
        let measured = |p: &crate::report::summary::Percentiles| (p.count > 0).then_some(p.p99_ms);
        ms_at_most(
            "time to first token p99",
            self.max_ttft_p99_ms,
            llm.and_then(|l| measured(&l.ttft)),
        );
        ms_at_most(
            "inter-token latency p99",
            self.max_itl_p99_ms,
            llm.and_then(|l| l.itl.as_ref()).and_then(measured),
        );
        ms_at_most(
            "inter-event latency p99",
            self.max_inter_event_p99_ms,
            llm.and_then(|l| measured(&l.inter_event)),
        );
        ms_at_most(
            "end-to-end p99",
            self.max_e2e_p99_ms,
            llm.and_then(|l| measured(&l.e2e)),
        );
        let mut rate_at_least = |name: &str, unit: &str, limit: Option<f64>, rate: Option<f64>| {
            if let Some(limit) = limit {
                checks.push(Check::new(
                    name,
                    format!(">= {limit} {unit}"),
                    rate.map_or_else(|| "not measured".to_owned(), |r| format!("{r:.2} {unit}")),
                    rate.is_some_and(|r| r >= limit),
                ));
            }
        };
        rate_at_least(
            "output tokens/s",
            "tokens/s",
            self.min_output_tokens_per_sec,
            llm.and_then(|l| l.output_tokens_per_sec),
        );
        rate_at_least(
            "completed requests/s",
            "requests/s",
            self.min_requests_per_sec,
            llm.map(|l| l.requests_per_sec),
        );
        if let Some(limit) = self.max_hiccup_p99_ms {
            let hiccup = summary.load_generator_hiccups.map(|h| h.percentiles.p99_ms);
            checks.push(Check::new(
                "load generator hiccup p99",
                format!("<= {limit} ms"),
                hiccup.map_or_else(|| "not measured".to_owned(), |ms| format!("{ms:.3} ms")),
                hiccup.is_some_and(|ms| ms <= limit),
            ));
        }
        if let Some(limit) = self.max_load_generator_cpu_pct {
            let p = &summary.processes;
            let percent = p
                .this_process
                .cpu_percent_steady
                .map(|steady| steady / p.cores.max(1) as f64);
            checks.push(Check::new(
                "load generator CPU with every stream open",
                format!("<= {limit}% of {} core(s)", p.cores),
                percent.map_or_else(|| "not measured".to_owned(), |pct| format!("{pct:.0}%")),
                percent.is_some_and(|pct| pct <= limit),
            ));
        }
        if let Some(limit) = self.max_error_rate {
            let rate = error_rate(summary);
            checks.push(Check::new(
                "error rate",
                format!("<= {:.2}%", limit * 100.0),
                format!("{:.3}%", rate * 100.0),
                rate <= limit,
            ));
        }
        if let Some(limit) = self.max_rss_per_connection_kib {
            let (name, usage) = match &summary.processes.server {
                Some(server) => ("server RSS per connection", server),
                None => (
                    "RSS per connection (server + load test)",
                    &summary.processes.this_process,
                ),
            };
            let measured = usage.rss_per_connection_kib;
            checks.push(Check::new(
                name,
                format!("<= {limit} KiB"),
                format!("{measured:.1} KiB"),
                measured <= limit,
            ));
        }
        if let Some(limit) = self.max_rss_growth_pct {
            let growth = after.and_then(|a| a.rss_growth_pct);
            checks.push(Check::new(
                "server RSS growth over the run",
                format!("<= {limit}%"),
                growth.map_or_else(|| "not measured".to_owned(), |g| format!("{g:+.1}%")),
                growth.is_some_and(|g| g <= limit),
            ));
        }
        Verdict { checks }
    }
}

impl Thresholds {
    /// The names given to `max_counts` that are not counters, so a typo fails before the
    /// run rather than after it.
    #[must_use]
    pub fn unknown_counters(&self) -> Vec<&str> {
        self.max_counts
            .iter()
            .map(|(name, _)| name.as_str())
            .filter(|name| !COUNTERS.iter().any(|spec| spec.json == *name))
            .collect()
    }
}

/// The check of a count against `limit`, when there is one.
fn count_check(name: &str, bound: Bound, limit: Option<u64>, measured: u64) -> Option<Check> {
    let limit = limit?;
    let passed = match bound {
        AtLeast => measured >= limit,
        AtMost => measured <= limit,
    };
    Some(Check::new(
        name,
        threshold_text(bound, limit),
        measured.to_string(),
        passed,
    ))
}

/// `>= 5` or `<= 0`.
fn threshold_text(bound: Bound, limit: u64) -> String {
    match bound {
        AtLeast => format!(">= {limit}"),
        AtMost => format!("<= {limit}"),
    }
}

/// Failed attempts and broken streams (with `--llm`, requests that failed in their stream)
/// over attempts (0 when nothing was attempted).
fn error_rate(summary: &Summary) -> f64 {
    let c = &summary.counters;
    let errors = c.failed() + c.read_errors + c.idle_timeouts + c.event_too_large + c.llm_failed();
    if c.connect_attempts == 0 {
        return 0.0;
    }
    errors as f64 / c.connect_attempts as f64
}

/// One threshold and how the run measured up.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    /// What is measured.
    pub name: String,
    /// The limit, with its comparison (`<= 0`).
    pub threshold: String,
    /// The run's value.
    pub measured: String,
    /// Whether the run is within the limit.
    pub passed: bool,
}

impl Check {
    fn new(name: &str, threshold: String, measured: String, passed: bool) -> Self {
        Self {
            name: name.to_owned(),
            threshold,
            measured,
            passed,
        }
    }
}

/// Every check of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// In the order they were checked.
    pub checks: Vec<Check>,
}

impl Verdict {
    /// Whether every check passed.
    #[must_use]
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.passed)
    }

    /// The failed checks, as `name measured (limit threshold)`, for the exit message.
    #[must_use]
    pub fn failures(&self) -> Vec<String> {
        self.checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| format!("{} {} (limit {})", c.name, c.measured, c.threshold))
            .collect()
    }

    /// The table, one line per check.
    #[must_use]
    pub fn render(&self, source: &str) -> String {
        let mut out = format!("\n=== Gate ({source})\n");
        let width = self.checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
        for check in &self.checks {
            let mark = if check.passed { "PASS" } else { "FAIL" };
            let _ = writeln!(
                out,
                "  {mark}  {:<width$}  {:>16}  {}",
                check.name, check.measured, check.threshold
            );
        }
        let failed = self.checks.iter().filter(|c| !c.passed).count();
        let _ = if failed == 0 {
            writeln!(
                out,
                "  gate passed: {} of {} checks",
                self.checks.len(),
                self.checks.len()
            )
        } else {
            writeln!(
                out,
                "  gate FAILED: {failed} of {} checks",
                self.checks.len()
            )
        };
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::aftermath::ServerAfterRun;

    fn clean_summary() -> Summary {
        let mut summary = Summary {
            target: "http://127.0.0.1:1/digits".into(),
            request: crate::report::summary::RequestSummary::default(),
            started_unix_secs: 0.0,
            embedded: true,
            users: 2000,
            interval_ms: 100,
            lateness_against: crate::report::summary::LatenessAgainst::of(
                &crate::profile::LatenessMode::Schedule(std::time::Duration::from_millis(100)),
            ),
            offered_events_per_sec: 20_000.0,
            elapsed_secs: 30.0,
            events_per_sec: 16_000.0,
            steady_events_per_sec: None,
            peak_open_streams: 0,
            server_lateness: None,
            server_after: Some(ServerAfterRun::new("test", Some(0), Some(10.0), Some(10.5))),
            file_limit: crate::probe::procstat::FileLimit {
                soft: 20_000,
                hard: 20_000,
            },
            counters: crate::measure::counters::Counters::default(),
            latencies: crate::report::summary::Latencies::default(),
            load_generator_hiccups: None,
            processes: crate::report::summary::Processes::default(),
            timeline: crate::measure::timeline::Timeline::default(),
            storm: crate::measure::storm::StormShape::default(),
            llm: None,
            histograms: crate::measure::metrics::Histograms::default(),
            load_generators: Vec::new(),
            lateness_slots: crate::measure::slots::LatenessSlots::default(),
        };
        summary.peak_open_streams = 2000;
        summary.counters.events = 500_000;
        summary.counters.connect_attempts = 4000;
        summary.counters.reconnects = 2000;
        summary.latencies.lateness.p99_ms = 4.0;
        summary.latencies.lateness.max_ms = 40.0;
        summary
    }

    fn gate() -> Thresholds {
        toml::from_str(
            r#"
            min_connections = 2000
            min_events = 100000
            max_error_rate = 0.01
            max_lateness_p99_ms = 20
            max_lateness_max_ms = 500
            min_reconnects = 1000
            "#,
        )
        .unwrap()
    }

    #[test]
    fn a_clean_run_passes_every_check() {
        let verdict = gate().check(&clean_summary());
        assert!(verdict.passed(), "{}", verdict.render("test"));
        // 6 set in the file, plus the 6 correctness checks and the open streams after the
        // run, which default to 0.
        assert_eq!(verdict.checks.len(), 13);
    }

    #[test]
    fn llm_limits_check_their_figures_and_fail_when_not_measured() {
        let limits = Thresholds {
            max_ttft_p99_ms: Some(150.0),
            max_itl_p99_ms: Some(25.0),
            min_output_tokens_per_sec: Some(100.0),
            min_requests_per_sec: Some(1.0),
            ..Thresholds::default()
        };
        let mut summary = clean_summary();
        assert_eq!(
            limits.check(&summary).failures(),
            [
                "time to first token p99 not measured (limit <= 150 ms)",
                "inter-token latency p99 not measured (limit <= 25 ms)",
                "output tokens/s not measured (limit >= 100 tokens/s)",
                "completed requests/s not measured (limit >= 1 requests/s)",
            ]
        );
        let mut llm = crate::report::summary::LlmSummary {
            requests_per_sec: 2.0,
            output_tokens_per_sec: Some(320.0),
            ..Default::default()
        };
        llm.ttft.count = 40;
        llm.ttft.p99_ms = 210.0;
        summary.llm = Some(llm);
        assert_eq!(
            limits.check(&summary).failures(),
            [
                "time to first token p99 210.000 ms (limit <= 150 ms)",
                "inter-token latency p99 not measured (limit <= 25 ms)",
            ],
            "no usage, no inter-token latency"
        );
        llm.itl = Some(crate::report::summary::Percentiles {
            count: 40,
            p99_ms: 20.5,
            ..Default::default()
        });
        summary.llm = Some(llm);
        let relaxed = Thresholds {
            max_ttft_p99_ms: Some(300.0),
            ..limits
        };
        assert!(relaxed.check(&summary).passed());
    }

    #[test]
    fn the_server_must_give_back_its_streams_and_memory() {
        let limits = Thresholds {
            max_rss_growth_pct: Some(10.0),
            ..Thresholds::default()
        };
        assert!(limits.check(&clean_summary()).passed(), "+5% is within 10%");
        let mut summary = clean_summary();
        summary.server_after = Some(ServerAfterRun::new("test", Some(3), Some(10.0), Some(11.5)));
        assert_eq!(
            limits.check(&summary).failures(),
            [
                "server streams open after the run 3 (limit <= 0)",
                "server RSS growth over the run +15.0% (limit <= 10%)",
            ]
        );
        summary.server_after = None;
        assert_eq!(
            limits.check(&summary).failures(),
            ["server RSS growth over the run not measured (limit <= 10%)"],
            "a limit that cannot be checked fails rather than passing unseen"
        );
    }

    /// A stream whose events carry no number: the loss checks say `not checkable`; the
    /// gate's own 0 passes, a limit the user wrote fails.
    #[test]
    fn a_counter_that_cannot_be_checked_is_said_and_fails_only_when_asked_for() {
        let mut summary = clean_summary();
        summary.counters.identity_none = 2000;
        let verdict = gate().check(&summary);
        assert!(verdict.passed(), "{}", verdict.render("test"));
        let lost = verdict
            .checks
            .iter()
            .find(|c| c.name == "lost events")
            .unwrap();
        assert_eq!(lost.measured, NOT_CHECKABLE);
        let limits = Thresholds {
            max_lost: Some(0),
            ..gate()
        };
        assert_eq!(
            limits.check(&summary).failures(),
            ["lost events not checkable (limit <= 0)"]
        );
    }

    #[test]
    fn a_lateness_limit_fails_when_lateness_was_not_measured() {
        let mut summary = clean_summary();
        summary.lateness_against =
            crate::report::summary::LatenessAgainst::of(&crate::profile::LatenessMode::Gaps);
        assert_eq!(
            gate().check(&summary).failures(),
            [
                "lateness p99 not measured (limit <= 20 ms)",
                "lateness max not measured (limit <= 500 ms)",
            ]
        );
    }

    #[test]
    fn one_lost_event_fails_even_when_no_loss_limit_was_written() {
        let mut summary = clean_summary();
        summary.counters.lost = 1;
        let verdict = gate().check(&summary);
        assert!(!verdict.passed());
        assert_eq!(verdict.failures(), ["lost events 1 (limit <= 0)"]);
        assert!(verdict.render("ci.toml").contains("FAIL  lost events"));
    }

    #[test]
    fn each_kind_of_limit_can_fail() {
        let mut summary = clean_summary();
        summary.peak_open_streams = 1999;
        summary.latencies.lateness.p99_ms = 20.5;
        summary.counters.failed_refused = 80;
        summary.counters.duplicated = 2;
        let failures = gate().check(&summary).failures();
        assert_eq!(
            failures,
            [
                "connections held 1999 (limit >= 2000)",
                "duplicated events 2 (limit <= 0)",
                "lateness p99 20.500 ms (limit <= 20 ms)",
                "error rate 2.000% (limit <= 1.00%)",
            ]
        );
    }

    #[test]
    fn any_counter_can_be_limited_by_name() {
        let mut summary = clean_summary();
        summary.counters.body_cut = 2;
        summary.counters.redirects = 1;
        let thresholds = Thresholds {
            max_counts: vec![
                ("body_cut".into(), 1),
                ("redirects".into(), 1),
                ("no_such".into(), 0),
            ],
            ..Thresholds::default()
        };
        assert_eq!(thresholds.unknown_counters(), ["no_such"]);
        assert_eq!(
            thresholds.check(&summary).failures(),
            [
                "body_cut 2 (limit <= 1)",
                "no_such no such counter (limit <= 0)"
            ]
        );
    }

    #[test]
    fn a_saturated_load_generator_fails_its_cpu_limit_and_an_unmeasured_one_too() {
        let mut summary = clean_summary();
        summary.processes.cores = 2;
        summary.processes.this_process.cpu_percent_steady = Some(190.0);
        let thresholds = Thresholds {
            max_load_generator_cpu_pct: Some(90.0),
            ..Thresholds::default()
        };
        assert_eq!(
            thresholds.check(&summary).failures(),
            ["load generator CPU with every stream open 95% (limit <= 90% of 2 core(s))"]
        );
        summary.processes.this_process.cpu_percent_steady = Some(100.0);
        assert!(thresholds.check(&summary).passed());
        summary.processes.this_process.cpu_percent_steady = None;
        assert!(!thresholds.check(&summary).passed());
    }

    /// A deliberately blocked runtime: its tickers' hiccups fail the gate.
    #[test]
    fn a_stalled_load_generator_fails_the_hiccup_limit() {
        use crate::measure::hiccup::{HiccupMeter, DEFAULT_PERIOD};
        use crate::report::summary::HiccupSummary;
        use std::time::Duration;

        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_time()
            .build()
            .unwrap();
        let hiccups = runtime.block_on(async {
            let meter = HiccupMeter::start(
                1,
                DEFAULT_PERIOD,
                std::time::Instant::now() + Duration::from_secs(3600),
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
            tokio::spawn(async { std::thread::sleep(Duration::from_millis(200)) })
                .await
                .unwrap();
            meter.stop().await
        });
        let limits = Thresholds {
            max_hiccup_p99_ms: Some(5.0),
            ..Thresholds::default()
        };
        let mut summary = clean_summary();
        summary.load_generator_hiccups = Some(HiccupSummary::of(&hiccups));
        let verdict = limits.check(&summary);
        let failures = verdict.failures();
        assert_eq!(failures.len(), 1, "{failures:?}");
        assert!(
            failures[0].starts_with("load generator hiccup p99 ")
                && failures[0].ends_with(" ms (limit <= 5 ms)"),
            "{failures:?}"
        );
        summary.load_generator_hiccups = None;
        assert_eq!(
            limits.check(&summary).failures(),
            ["load generator hiccup p99 not measured (limit <= 5 ms)"]
        );
    }

    #[test]
    fn flags_override_the_file() {
        let flags = Thresholds {
            max_lateness_p99_ms: Some(1.0),
            ..Thresholds::default()
        };
        let merged = gate().overridden_by(&flags);
        assert_eq!(merged.max_lateness_p99_ms, Some(1.0));
        assert_eq!(merged.min_connections, Some(2000));
        assert!(!merged.check(&clean_summary()).passed());
    }
}
