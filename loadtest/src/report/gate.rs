//! The performance gate: thresholds from a TOML file and/or flags, checked against a run's
//! [`Summary`], printed as a PASS/FAIL table (like k6's thresholds summary) and turned into
//! the exit code.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context as _;
use serde::Deserialize;

use crate::report::summary::Summary;

/// The gate's command-line options: a thresholds file, and flags that override it.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct GateOptions {
    /// Check the run against the thresholds in this TOML file (e.g. loadtest/gates/ci.toml)
    /// and exit with status 1 naming what failed. `--gate-*` flags override its values.
    #[arg(long = "gate", value_name = "FILE")]
    pub file: Option<std::path::PathBuf>,
    /// Thresholds given as flags.
    #[command(flatten)]
    pub thresholds: Thresholds,
}

impl GateOptions {
    /// The thresholds in force (the file's, overridden by flags), or `None` when the gate is
    /// off. Called before the run, so a bad file fails at once.
    ///
    /// # Errors
    /// When the file cannot be read or parsed.
    pub fn resolve(&self) -> anyhow::Result<Option<Thresholds>> {
        let from_file = match &self.file {
            Some(path) => Thresholds::from_file(path)?,
            None => Thresholds::default(),
        };
        let merged = from_file.overridden_by(&self.thresholds);
        Ok((self.file.is_some() || merged.any()).then_some(merged))
    }
}

/// Pass/fail limits; an unset limit is not checked. Flags are named `--gate-<field>` with
/// dashes (`--gate-max-lateness-p99-ms 20`); file keys are the field names.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, clap::Args)]
#[serde(deny_unknown_fields)]
#[command(next_help_heading = "Gate (pass/fail thresholds; exit code 1 when one fails)")]
pub struct Thresholds {
    /// Fewest streams that must be open at once.
    #[arg(long = "gate-min-connections", value_name = "N")]
    pub min_connections: Option<u64>,
    /// Fewest events that must arrive.
    #[arg(long = "gate-min-events", value_name = "N")]
    pub min_events: Option<u64>,
    /// Highest share of failed attempts and broken streams, over attempts (0.01 = 1%).
    #[arg(long = "gate-max-error-rate", value_name = "RATIO")]
    pub max_error_rate: Option<f64>,
    /// Most events lost (0 when the gate is on and this is unset).
    #[arg(long = "gate-max-lost", value_name = "N")]
    pub max_lost: Option<u64>,
    /// Most events duplicated (0 when the gate is on and this is unset).
    #[arg(long = "gate-max-duplicated", value_name = "N")]
    pub max_duplicated: Option<u64>,
    /// Most events out of order (0 when the gate is on and this is unset).
    #[arg(long = "gate-max-out-of-order", value_name = "N")]
    pub max_out_of_order: Option<u64>,
    /// Most malformed events (0 when the gate is on and this is unset).
    #[arg(long = "gate-max-malformed", value_name = "N")]
    pub max_malformed: Option<u64>,
    /// Most stalls (gaps between events longer than the stall threshold).
    #[arg(long = "gate-max-stalls", value_name = "N")]
    pub max_stalls: Option<u64>,
    /// Highest per-event lateness p99, ms.
    #[arg(long = "gate-max-lateness-p99-ms", value_name = "MS")]
    pub max_lateness_p99_ms: Option<f64>,
    /// Highest per-event lateness, ms.
    #[arg(long = "gate-max-lateness-max-ms", value_name = "MS")]
    pub max_lateness_max_ms: Option<f64>,
    /// Highest p99 time from response headers to the first event, ms.
    #[arg(long = "gate-max-first-event-p99-ms", value_name = "MS")]
    pub max_first_event_p99_ms: Option<f64>,
    /// Highest p99 time from request to response headers, ms.
    #[arg(long = "gate-max-open-p99-ms", value_name = "MS")]
    pub max_open_p99_ms: Option<f64>,
    /// Highest p99 reconnect time (drop to first event of the next connection), ms.
    #[arg(long = "gate-max-reconnect-p99-ms", value_name = "MS")]
    pub max_reconnect_p99_ms: Option<f64>,
    /// Fewest reconnections (proves a reconnection phase happened).
    #[arg(long = "gate-min-reconnects", value_name = "N")]
    pub min_reconnects: Option<u64>,
    /// Most reconnections that did not resume one past the last id seen (0 when the gate is
    /// on and this is unset).
    #[arg(long = "gate-max-resumed-wrong", value_name = "N")]
    pub max_resumed_wrong: Option<u64>,
    /// Highest server RSS growth per connection, KiB: the server's own (`--server-pid`) or,
    /// embedded, the whole process's (server and load generator together).
    #[arg(long = "gate-max-rss-per-connection-kib", value_name = "KIB")]
    pub max_rss_per_connection_kib: Option<f64>,
    /// Most streams the server may still hold once the run is over (0 when the gate is on
    /// and this is unset; checked where the figure is known).
    #[arg(long = "gate-max-streams-after", value_name = "N")]
    pub max_streams_after: Option<u64>,
    /// Highest growth of the server's RSS over the run, percent of its level before (after
    /// streams closed and freed memory was returned).
    #[arg(long = "gate-max-rss-growth-pct", value_name = "PCT")]
    pub max_rss_growth_pct: Option<f64>,
}

impl Thresholds {
    /// Reads a TOML file of thresholds.
    ///
    /// # Errors
    /// When the file cannot be read, or holds an unknown key or a wrong type.
    pub fn from_file(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read gate file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("bad gate file {}", path.display()))
    }

    /// Whether any threshold is set.
    #[must_use]
    pub fn any(&self) -> bool {
        *self != Self::default()
    }

    /// `self` with every threshold that `overrides` sets replaced by its value.
    #[must_use]
    pub fn overridden_by(self, overrides: &Self) -> Self {
        macro_rules! pick {
            ($($field:ident),*) => {
                Self { $($field: overrides.$field.or(self.$field)),* }
            };
        }
        pick!(
            min_connections,
            min_events,
            max_error_rate,
            max_lost,
            max_duplicated,
            max_out_of_order,
            max_malformed,
            max_stalls,
            max_lateness_p99_ms,
            max_lateness_max_ms,
            max_first_event_p99_ms,
            max_open_p99_ms,
            max_reconnect_p99_ms,
            min_reconnects,
            max_resumed_wrong,
            max_rss_per_connection_kib,
            max_streams_after,
            max_rss_growth_pct
        )
    }

    /// Checks every set threshold against `summary`. Correctness limits (lost, duplicated,
    /// out of order, malformed, wrong resumes) default to 0: a gate that is on never lets
    /// a lost event through unless told to.
    #[must_use]
    pub fn check(&self, summary: &Summary) -> Verdict {
        let c = &summary.counters;
        let l = &summary.latencies;
        let mut checks = Vec::new();
        let mut at_least = |name: &str, limit: Option<u64>, measured: u64| {
            if let Some(limit) = limit {
                checks.push(Check::new(
                    name,
                    format!(">= {limit}"),
                    measured.to_string(),
                    measured >= limit,
                ));
            }
        };
        at_least(
            "connections held",
            self.min_connections,
            u64::try_from(summary.peak_open_streams).unwrap_or(0),
        );
        at_least("events received", self.min_events, c.events);
        at_least("reconnects", self.min_reconnects, c.reconnects);
        let mut at_most = |name: &str, limit: Option<u64>, measured: u64| {
            if let Some(limit) = limit {
                checks.push(Check::new(
                    name,
                    format!("<= {limit}"),
                    measured.to_string(),
                    measured <= limit,
                ));
            }
        };
        at_most("lost events", self.max_lost.or(Some(0)), c.lost);
        at_most(
            "duplicated events",
            self.max_duplicated.or(Some(0)),
            c.duplicated,
        );
        at_most(
            "out-of-order events",
            self.max_out_of_order.or(Some(0)),
            c.out_of_order,
        );
        at_most(
            "malformed events",
            self.max_malformed.or(Some(0)),
            c.malformed,
        );
        at_most(
            "wrong resumes",
            self.max_resumed_wrong.or(Some(0)),
            c.resumed_wrong,
        );
        at_most("stalls", self.max_stalls, c.stalls);
        let after = summary.server_after.as_ref();
        if let Some(open) = after.and_then(|a| a.streams_open) {
            at_most(
                "server streams open after the run",
                self.max_streams_after.or(Some(0)),
                u64::try_from(open).unwrap_or(u64::MAX),
            );
        }
        let mut ms_at_most = |name: &str, limit: Option<f64>, measured: f64| {
            if let Some(limit) = limit {
                checks.push(Check::new(
                    name,
                    format!("<= {limit} ms"),
                    format!("{measured:.3} ms"),
                    measured <= limit,
                ));
            }
        };
        ms_at_most("lateness p99", self.max_lateness_p99_ms, l.lateness.p99_ms);
        ms_at_most("lateness max", self.max_lateness_max_ms, l.lateness.max_ms);
        ms_at_most(
            "first event p99",
            self.max_first_event_p99_ms,
            l.first_event.p99_ms,
        );
        ms_at_most("open p99", self.max_open_p99_ms, l.open.p99_ms);
        ms_at_most(
            "reconnect p99",
            self.max_reconnect_p99_ms,
            l.reconnect.p99_ms,
        );
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

/// Failed attempts and broken streams over attempts (0 when nothing was attempted).
fn error_rate(summary: &Summary) -> f64 {
    let c = &summary.counters;
    let errors = c.failed() + c.read_errors + c.idle_timeouts;
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
            started_unix_secs: 0.0,
            embedded: true,
            users: 2000,
            interval_ms: 100,
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
            counters: crate::measure::metrics::Counters::default(),
            latencies: crate::report::summary::Latencies::default(),
            processes: crate::report::summary::Processes::default(),
            timeline: crate::measure::timeline::Timeline::default(),
            storm: crate::measure::storm::StormShape::default(),
            histograms: crate::measure::metrics::Histograms::default(),
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
        // 6 set in the file, plus the 5 correctness checks and the open streams after the
        // run, which default to 0.
        assert_eq!(verdict.checks.len(), 12);
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

    #[test]
    fn unknown_keys_in_the_file_are_an_error() {
        let err = toml::from_str::<Thresholds>("max_lateness_p99 = 5").unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
    }

    #[test]
    fn the_shipped_ci_gate_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("gates/ci.toml");
        let gate = Thresholds::from_file(&path).unwrap();
        assert!(gate.any());
        assert!(gate.min_connections >= Some(2000));
    }
}
