//! The capacity search: runs of rising offered events/s (more users at one interval), each
//! judged on lateness p99 and cleanliness; the answer is the highest rate that passed. The
//! decisions are [`search`]'s; this runs the steps they ask for. Each step targets what a
//! single run would (the embedded server, `--host` or `--url`); only the users change.

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use crate::report::console::thousands;
use crate::report::summary::Summary;
use crate::run::options::Options;
use crate::run::runner::run;
use crate::run::search::{self, Next, Search, Stopped, Tried};

/// Pause between steps against an external server (`--host` or `--url`), so the previous
/// step's sockets close.
const BETWEEN_STEPS: Duration = Duration::from_secs(2);

/// One step of the search.
#[derive(Debug, Clone, Serialize)]
pub struct CapacityStep {
    /// Users in this step.
    pub users: usize,
    /// users x events per second per user.
    pub offered_events_per_sec: f64,
    /// Events received per second while all streams were open (else over the whole run).
    pub delivered_events_per_sec: f64,
    /// Lateness median once every user was connected (else over the run), ms.
    pub lateness_p50_ms: f64,
    /// Lateness 99th percentile, ms.
    pub lateness_p99_ms: f64,
    /// Largest lateness, ms.
    pub lateness_max_ms: f64,
    /// Failed attempts plus broken streams.
    pub errors: u64,
    /// Ids lost.
    pub lost: u64,
    /// CPU of this process, percent of one core.
    pub this_process_cpu_percent: f64,
    /// CPU of the `--server-pid` process, percent of one core.
    pub server_cpu_percent: Option<f64>,
    /// p99 under the bound and the run clean.
    pub passed: bool,
}

/// The search's result.
#[derive(Debug, Clone, Serialize)]
pub struct CapacityReport {
    /// The lateness p99 bound, ms.
    pub bound_p99_ms: f64,
    /// Each step run, in order.
    pub steps: Vec<CapacityStep>,
    /// The highest offered events/s that passed.
    pub capacity_events_per_sec: Option<f64>,
    /// Why the search stopped.
    pub stopped_because: String,
}

fn step_of(summary: &Summary, bound_p99_ms: f64) -> CapacityStep {
    let c = &summary.counters;
    // Judge the steady state (every user connected); the ramp-up is connection setup.
    let l = if summary.latencies.lateness_steady.count > 0 {
        &summary.latencies.lateness_steady
    } else {
        &summary.latencies.lateness
    };
    CapacityStep {
        users: summary.users,
        offered_events_per_sec: summary.offered_events_per_sec,
        delivered_events_per_sec: summary
            .steady_events_per_sec
            .unwrap_or(summary.events_per_sec),
        lateness_p50_ms: l.p50_ms,
        lateness_p99_ms: l.p99_ms,
        lateness_max_ms: l.max_ms,
        errors: c.failed() + c.read_errors + c.idle_timeouts + c.event_too_large,
        lost: c.lost,
        this_process_cpu_percent: summary.processes.this_process.cpu_percent,
        server_cpu_percent: summary.processes.server.map(|s| s.cpu_percent),
        passed: l.p99_ms <= bound_p99_ms && summary.is_clean(),
    }
}

/// Runs the search described by the `--capacity-*` options, each step for `-t`: rates
/// rise by the factor until a step fails, then `--capacity-refine` steps bisect between the
/// last pass and the first failure (see [`search`] for each decision).
///
/// # Errors
/// Before any step, when the events/s each user is offered is unknown (`--url` without
/// `--interval-ms`); when the first step cannot run (see [`run`]). A later step that cannot
/// run ends the search with the reason.
pub async fn find_capacity(options: &Options) -> anyhow::Result<CapacityReport> {
    let sse = &options.sse;
    let per_user = sse.events_per_user_per_sec().map_err(anyhow::Error::msg)?;
    let plan = Search {
        start: sse.capacity_start as f64,
        factor: sse.capacity_factor,
        rising_steps: sse.capacity_steps,
        refine_steps: sse.capacity_refine,
        resolution: per_user,
    };
    let mut report = CapacityReport {
        bound_p99_ms: sse.capacity_p99_ms,
        steps: Vec::new(),
        capacity_events_per_sec: None,
        stopped_because: String::new(),
    };
    let mut tried = Vec::new();
    loop {
        let rate = match search::next(&plan, &tried) {
            Next::Run(rate) => rate,
            Next::Done(verdict) => {
                report.capacity_events_per_sec = verdict.capacity;
                report.stopped_because = match verdict.stopped {
                    Stopped::AllPassed { steps } => format!("all {steps} rising steps passed"),
                    // Named as the failed step offered it (whole users, so not quite the
                    // rate asked for).
                    Stopped::FailedAt { offered } => format!(
                        "{} offered events/s failed",
                        thousands(offered.round() as u64)
                    ),
                };
                return Ok(report);
            }
        };
        let result = match step(options, per_user, rate, report.steps.len()).await {
            Ok(result) => result,
            Err(e) if report.steps.is_empty() => return Err(e),
            Err(e) => {
                report.stopped_because =
                    format!("step {} could not run: {e:#}", report.steps.len() + 1);
                return Ok(report);
            }
        };
        tried.push(Tried {
            rate,
            offered: result.offered_events_per_sec,
            passed: result.passed,
        });
        report.steps.push(result);
        report.capacity_events_per_sec = search::capacity(&tried);
    }
}

/// Runs the step after `done` steps, at `rate`, with users offered `per_user` events/s
/// each.
///
/// # Errors
/// When the run cannot start or fails (see [`run`]).
async fn step(
    options: &Options,
    per_user: f64,
    rate: f64,
    done: usize,
) -> anyhow::Result<CapacityStep> {
    let users = (rate / per_user).ceil().max(1.0) as usize;
    let mut step_options = options.clone();
    step_options.goose.users = Some(users);
    step_options.goose.no_print_metrics = true;
    step_options.sse.outputs.summary_json = None;
    let external = options.goose.host.is_some() || options.sse.url.is_some();
    if done > 0 && external {
        tokio::time::sleep(BETWEEN_STEPS).await;
    }
    eprintln!(
        "--- capacity step {}: {users} users x {per_user:.1} events/s = {} offered events/s",
        done + 1,
        thousands((users as f64 * per_user).round() as u64)
    );
    let summary = run(step_options).await?;
    Ok(step_of(&summary, options.sse.capacity_p99_ms))
}

/// The search as a console table.
#[must_use]
pub fn render(report: &CapacityReport) -> String {
    let mut out = format!(
        "\n=== Capacity search (lateness p99 bound {} ms, no errors, no loss)\n  {:>7} {:>10} {:>10} {:>9} {:>9} {:>9} {:>7} {:>6} {:>7} {:>7}  result\n",
        report.bound_p99_ms, "users", "offered/s", "deliv./s", "p50 ms", "p99 ms", "max ms", "errors", "lost", "cpu %", "srv %"
    );
    for s in &report.steps {
        let _ = writeln!(
            out,
            "  {:>7} {:>10} {:>10} {:>9.2} {:>9.2} {:>9.2} {:>7} {:>6} {:>7.0} {:>7}  {}",
            s.users,
            thousands(s.offered_events_per_sec.round() as u64),
            thousands(s.delivered_events_per_sec.round() as u64),
            s.lateness_p50_ms,
            s.lateness_p99_ms,
            s.lateness_max_ms,
            s.errors,
            s.lost,
            s.this_process_cpu_percent,
            s.server_cpu_percent
                .map_or("-".to_owned(), |c| format!("{c:.0}")),
            if s.passed { "pass" } else { "FAIL" }
        );
    }
    let _ =
        writeln!(
            out,
            "  capacity: {} ({})",
            report.capacity_events_per_sec.map_or(
                "none of the steps passed".to_owned(),
                |r| format!("{} events/s", thousands(r.round() as u64))
            ),
            report.stopped_because
        );
    out
}
