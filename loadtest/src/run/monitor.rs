//! Watches a run while it goes: turns goose's killswitch (Ctrl-C) into a stop, tracks the
//! peaks the summary reports (open streams, RSS, the steady window), samples the live
//! figures into the [`Timeline`] and prints the progress line.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::client::Stop;
use crate::measure::metrics::Metrics;
use crate::measure::slots::LatenessSlots;
use crate::measure::timeline::{Sample, Timeline};
use crate::probe::aftermath;
use crate::probe::procstat;
use crate::probe::server_lateness::{Buckets, ServerLateness};
use crate::report::console::Progress;

/// How often the monitor checks the killswitch and the open-stream count.
const MONITOR_TICK: Duration = Duration::from_millis(200);
/// How often the timeline (and the RSS peaks) are sampled.
const SAMPLE_PERIOD: Duration = Duration::from_millis(500);
/// How often the server's lateness histogram is scraped while every stream is open.
const SERVER_SCRAPE_PERIOD: Duration = Duration::from_secs(1);

/// What the monitor watches.
pub(crate) struct MonitorArgs {
    /// The run's live figures.
    pub(crate) metrics: Arc<Metrics>,
    /// Cancelled when goose's killswitch fires.
    pub(crate) stop: Arc<Stop>,
    /// When the run started (the progress line's clock).
    pub(crate) started: Instant,
    /// The run's planned length.
    pub(crate) total: Duration,
    /// Users planned: all of them connected starts the steady state.
    pub(crate) users: usize,
    /// Progress line period; zero for none.
    pub(crate) progress_every: Duration,
    /// Where to keep the progress line's figures instead of printing it (`--processes`).
    pub(crate) progress_file: Option<PathBuf>,
    /// An external server whose RSS peak to track.
    pub(crate) server_pid: Option<u32>,
    /// The server's base URL, to read its own lateness histogram from `/metrics`.
    pub(crate) server_url: String,
    /// The client for those scrapes.
    pub(crate) scraper: reqwest::Client,
}

/// The highest figures the monitor saw.
#[derive(Debug, Default)]
pub(crate) struct Peaks {
    /// Streams open at once.
    pub(crate) open_streams: i64,
    /// This process's RSS, bytes.
    pub(crate) rss_self: u64,
    /// The `--server-pid` process's RSS, bytes.
    pub(crate) rss_server: u64,
    /// Events per second while every user had a stream open.
    pub(crate) steady_events_per_sec: Option<f64>,
    /// This process's CPU while every user had a stream open, percent of one core.
    pub(crate) steady_cpu_percent_self: Option<f64>,
    /// The `--server-pid` process's CPU over the same window, percent of one core.
    pub(crate) steady_cpu_percent_server: Option<f64>,
    /// How late the server itself sent events while every stream was open, by its own
    /// `/metrics` (sse-digits only).
    pub(crate) server_lateness: Option<ServerLateness>,
    /// The live figures every [`SAMPLE_PERIOD`].
    pub(crate) timeline: Timeline,
    /// Lateness of each [`SAMPLE_PERIOD`], by time slot.
    pub(crate) lateness_slots: LatenessSlots,
}

/// Until `done`: turns goose's killswitch (Ctrl-C) into a stop, tracks peaks (streams
/// every tick, RSS every sample), samples the timeline and prints the progress line.
pub(crate) async fn monitor(args: MonitorArgs, mut done: oneshot::Receiver<()>) -> Peaks {
    let mut peaks = Peaks {
        timeline: Timeline::new(u64::try_from(SAMPLE_PERIOD.as_millis()).unwrap_or(u64::MAX)),
        lateness_slots: LatenessSlots::new(
            u64::try_from(SAMPLE_PERIOD.as_millis()).unwrap_or(u64::MAX),
        ),
        ..Peaks::default()
    };
    // The lateness recorded up to the last sample, and when: the next sample's interval is
    // what was recorded since.
    let mut lateness_before = (0.0, args.metrics.merged_lateness());
    let mut tick = tokio::time::interval(MONITOR_TICK);
    let mut sample_tick = tokio::time::interval(SAMPLE_PERIOD);
    // A slow tick is taken late, not caught up in a burst of samples at one moment.
    sample_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_print = (Instant::now(), 0u64);
    let live = &args.metrics.live;
    // The first and the last tick with every user's stream open.
    let mut steady: Option<(SteadyPoint, SteadyPoint)> = None;
    // The server's lateness histogram at the first and the latest scrape in that window.
    let mut server_window: Option<(Buckets, Buckets)> = None;
    let mut last_server_scrape: Option<Instant> = None;
    let sample = |peaks: &mut Peaks, before: &mut (f64, hdrhistogram::Histogram<u64>)| {
        let rss_self = procstat::sample(None).ok().map(|s| s.rss_bytes);
        let rss_server = args
            .server_pid
            .and_then(|pid| procstat::sample(Some(pid)).ok())
            .map(|s| s.rss_bytes);
        peaks.rss_self = peaks.rss_self.max(rss_self.unwrap_or(0));
        peaks.rss_server = peaks.rss_server.max(rss_server.unwrap_or(0));
        let open = live.open_streams.load(Ordering::Relaxed);
        peaks.open_streams = peaks.open_streams.max(open);
        peaks.timeline.push(Sample {
            elapsed_secs: args.started.elapsed().as_secs_f64(),
            open_streams: open,
            events: live.events.load(Ordering::Relaxed),
            errors: live.errors.load(Ordering::Relaxed),
            reconnects: live.reconnects.load(Ordering::Relaxed),
            rss_mib: rss_self.map(mib),
            server_rss_mib: rss_server.map(mib),
        });
        let now = args.started.elapsed().as_secs_f64();
        let lateness = args.metrics.merged_lateness();
        let mut interval = lateness.clone();
        // Counts only grow, so the subtraction cannot fail; if it did, the slot is left out.
        if interval.subtract(&before.1).is_ok() {
            let _ = peaks
                .lateness_slots
                .record(f64::midpoint(before.0, now), &interval);
        }
        *before = (now, lateness);
    };
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = sample_tick.tick() => {
                sample(&mut peaks, &mut lateness_before);
                continue;
            }
            _ = &mut done => break,
        }
        if goose::is_killswitch_triggered() {
            args.stop.cancel();
        }
        let open = live.open_streams.load(Ordering::Relaxed);
        peaks.open_streams = peaks.open_streams.max(open);
        if usize::try_from(open).is_ok_and(|open| open >= args.users) {
            let now = SteadyPoint {
                at: Instant::now(),
                events: live.events.load(Ordering::Relaxed),
                cpu_self: procstat::sample(None).ok().map(|s| s.cpu),
                cpu_server: args
                    .server_pid
                    .and_then(|pid| procstat::sample(Some(pid)).ok())
                    .map(|s| s.cpu),
            };
            let _ = live.steady_since.set(now.at);
            steady = Some(steady.map_or((now, now), |(first, _)| (first, now)));
            if last_server_scrape.is_none_or(|at| at.elapsed() >= SERVER_SCRAPE_PERIOD) {
                last_server_scrape = Some(Instant::now());
                if let Some(buckets) = aftermath::metrics_text(&args.scraper, &args.server_url)
                    .await
                    .as_deref()
                    .and_then(Buckets::parse)
                {
                    server_window = Some(match server_window {
                        Some((first, _)) => (first, buckets),
                        None => (buckets.clone(), buckets),
                    });
                }
            }
        }
        if !args.progress_every.is_zero() && last_print.0.elapsed() >= args.progress_every {
            let events = live.events.load(Ordering::Relaxed);
            let dt = last_print.0.elapsed().as_secs_f64();
            let line = Progress {
                elapsed: args.started.elapsed(),
                total: args.total,
                open_streams: open,
                users: args.users,
                events_per_sec: (events - last_print.1) as f64 / dt,
                events,
                errors: live.errors.load(Ordering::Relaxed),
                lost: live.lost.load(Ordering::Relaxed),
            };
            match &args.progress_file {
                Some(path) => keep_progress(path, &line),
                None => eprintln!("{line}"),
            }
            last_print = (Instant::now(), events);
        }
    }
    sample(&mut peaks, &mut lateness_before);
    if let Some((first, last)) = steady {
        peaks.steady_events_per_sec = first.rate_until(&last, |p| Some(p.events as f64));
        let cpu_percent = |cpu: fn(&SteadyPoint) -> Option<Duration>| {
            first.rate_until(&last, |p| cpu(p).map(|d| 100.0 * d.as_secs_f64()))
        };
        peaks.steady_cpu_percent_self = cpu_percent(|p| p.cpu_self);
        peaks.steady_cpu_percent_server = cpu_percent(|p| p.cpu_server);
    }
    peaks.server_lateness = server_window
        .and_then(|(first, last)| last.since(&first))
        .as_ref()
        .and_then(ServerLateness::from_window);
    peaks
}

/// Replaces `path`'s figures with `line`'s, whole or not at all (written aside, then
/// renamed), so the process reading it never sees half a line. A failed write loses one
/// progress line, not the run, and says so.
pub(crate) fn keep_progress(path: &Path, line: &Progress) {
    let aside = path.with_extension("tmp");
    let written = serde_json::to_vec(line)
        .map_err(std::io::Error::other)
        .and_then(|json| std::fs::write(&aside, json))
        .and_then(|()| std::fs::rename(&aside, path));
    if let Err(e) = written {
        eprintln!("progress not written to {}: {e}", path.display());
    }
}

/// The run's counters at one tick with every user's stream open.
#[derive(Debug, Clone, Copy)]
struct SteadyPoint {
    at: Instant,
    /// Events received so far.
    events: u64,
    /// CPU time used so far by this process.
    cpu_self: Option<Duration>,
    /// CPU time used so far by the `--server-pid` process.
    cpu_server: Option<Duration>,
}

impl SteadyPoint {
    /// How fast `counter` grew from this point to a `later` one, per second; `None` over
    /// less than a second (too short to mean anything) or without the figure.
    fn rate_until(
        &self,
        later: &SteadyPoint,
        counter: impl Fn(&SteadyPoint) -> Option<f64>,
    ) -> Option<f64> {
        let secs = later.at.duration_since(self.at).as_secs_f64();
        let grown = counter(later)? - counter(self)?;
        (secs >= 1.0).then(|| grown / secs)
    }
}

/// Bytes as MiB.
fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steady_rates_are_growth_per_second_over_at_least_a_second() {
        let start = Instant::now();
        let first = SteadyPoint {
            at: start,
            events: 1_000,
            cpu_self: Some(Duration::from_millis(500)),
            cpu_server: None,
        };
        let later = SteadyPoint {
            at: start + Duration::from_secs(4),
            events: 9_000,
            cpu_self: Some(Duration::from_millis(3_500)),
            cpu_server: None,
        };
        let events = first.rate_until(&later, |p| Some(p.events as f64));
        assert!((events.unwrap() - 2_000.0).abs() < 1e-9, "{events:?}");
        let cpu = first.rate_until(&later, |p| p.cpu_self.map(|d| 100.0 * d.as_secs_f64()));
        assert!((cpu.unwrap() - 75.0).abs() < 1e-9, "{cpu:?}");
        let server = first.rate_until(&later, |p| p.cpu_server.map(|d| d.as_secs_f64()));
        assert_eq!(server, None);
        let too_soon = SteadyPoint {
            at: start + Duration::from_millis(500),
            ..later
        };
        assert_eq!(first.rate_until(&too_soon, |p| Some(p.events as f64)), None);
    }
}
