//! Watches a run while it goes: turns goose's killswitch (Ctrl-C) into a stop, tracks the
//! peaks the summary reports (open streams, RSS, the steady window), samples the live
//! figures into the [`Timeline`] and prints the progress line.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::client::Stop;
use crate::metrics::Metrics;
use crate::procstat;
use crate::report::Progress;
use crate::timeline::{Sample, Timeline};

/// How often the monitor checks the killswitch and the open-stream count.
const MONITOR_TICK: Duration = Duration::from_millis(200);
/// How often the timeline (and the RSS peaks) are sampled.
const SAMPLE_PERIOD: Duration = Duration::from_millis(500);

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
    /// An external server whose RSS peak to track.
    pub(crate) server_pid: Option<u32>,
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
    /// The live figures every [`SAMPLE_PERIOD`].
    pub(crate) timeline: Timeline,
}

/// Until `done`: turns goose's killswitch (Ctrl-C) into a stop, tracks peaks (streams
/// every tick, RSS every sample), samples the timeline and prints the progress line.
pub(crate) async fn monitor(args: MonitorArgs, mut done: oneshot::Receiver<()>) -> Peaks {
    let mut peaks = Peaks {
        timeline: Timeline::new(u64::try_from(SAMPLE_PERIOD.as_millis()).unwrap_or(u64::MAX)),
        ..Peaks::default()
    };
    let mut tick = tokio::time::interval(MONITOR_TICK);
    let mut sample_tick = tokio::time::interval(SAMPLE_PERIOD);
    // A slow tick is taken late, not caught up in a burst of samples at one moment.
    sample_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_print = (Instant::now(), 0u64);
    let live = &args.metrics.live;
    // (when, events) at the first and the last tick with every user's stream open.
    let mut steady: Option<((Instant, u64), (Instant, u64))> = None;
    // CPU at the first and the last sample with every user's stream open.
    let mut steady_cpu: Option<(CpuPoint, CpuPoint)> = None;
    let mut sample = |peaks: &mut Peaks| {
        let this = procstat::sample(None).ok();
        let server = args
            .server_pid
            .and_then(|pid| procstat::sample(Some(pid)).ok());
        let rss_self = this.map(|s| s.rss_bytes);
        let rss_server = server.map(|s| s.rss_bytes);
        peaks.rss_self = peaks.rss_self.max(rss_self.unwrap_or(0));
        peaks.rss_server = peaks.rss_server.max(rss_server.unwrap_or(0));
        let open = live.open_streams.load(Ordering::Relaxed);
        peaks.open_streams = peaks.open_streams.max(open);
        if let Some(this) = this.filter(|_| usize::try_from(open).is_ok_and(|o| o >= args.users)) {
            let point = CpuPoint {
                at: Instant::now(),
                this_process: this.cpu,
                server: server.map(|s| s.cpu),
            };
            steady_cpu = Some(steady_cpu.map_or((point, point), |(first, _)| (first, point)));
        }
        peaks.timeline.push(Sample {
            elapsed_secs: args.started.elapsed().as_secs_f64(),
            open_streams: open,
            events: live.events.load(Ordering::Relaxed),
            errors: live.errors.load(Ordering::Relaxed),
            reconnects: live.reconnects.load(Ordering::Relaxed),
            rss_mib: rss_self.map(mib),
            server_rss_mib: rss_server.map(mib),
        });
    };
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = sample_tick.tick() => {
                sample(&mut peaks);
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
            let now = (Instant::now(), live.events.load(Ordering::Relaxed));
            let _ = live.steady_since.set(now.0);
            steady = Some(steady.map_or((now, now), |(first, _)| (first, now)));
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
            eprintln!("{line}");
            last_print = (Instant::now(), events);
        }
    }
    sample(&mut peaks);
    peaks.steady_events_per_sec = steady.and_then(|((t0, e0), (t1, e1))| {
        let secs = (t1 - t0).as_secs_f64();
        (secs >= 1.0).then(|| (e1 - e0) as f64 / secs)
    });
    if let Some((first, last)) = steady_cpu {
        peaks.steady_cpu_percent_self = first.percent_of_a_core(&last, |p| Some(p.this_process));
        peaks.steady_cpu_percent_server = first.percent_of_a_core(&last, |p| p.server);
    }
    peaks
}

/// CPU time used so far, by this process and by the `--server-pid` process.
#[derive(Debug, Clone, Copy)]
struct CpuPoint {
    at: Instant,
    this_process: Duration,
    server: Option<Duration>,
}

impl CpuPoint {
    /// CPU between this point and a `later` one, percent of one core; `None` over less
    /// than a second (too short to mean anything) or without the figure.
    fn percent_of_a_core(
        &self,
        later: &CpuPoint,
        cpu: impl Fn(&CpuPoint) -> Option<Duration>,
    ) -> Option<f64> {
        let wall = later.at.duration_since(self.at).as_secs_f64();
        let used = cpu(later)?.saturating_sub(cpu(self)?).as_secs_f64();
        (wall >= 1.0).then(|| 100.0 * used / wall)
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
    fn steady_cpu_is_the_share_of_a_core_between_two_points() {
        let start = Instant::now();
        let first = CpuPoint {
            at: start,
            this_process: Duration::from_millis(500),
            server: None,
        };
        let later = CpuPoint {
            at: start + Duration::from_secs(4),
            this_process: Duration::from_millis(3_500),
            server: None,
        };
        let percent = first.percent_of_a_core(&later, |p| Some(p.this_process));
        assert!((percent.unwrap() - 75.0).abs() < 1e-9, "{percent:?}");
        assert_eq!(first.percent_of_a_core(&later, |p| p.server), None);
        let too_soon = CpuPoint {
            at: start + Duration::from_millis(500),
            ..later
        };
        assert_eq!(
            first.percent_of_a_core(&too_soon, |p| Some(p.this_process)),
            None
        );
    }
}
