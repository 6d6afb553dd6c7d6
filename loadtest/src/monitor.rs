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
    let sample = |peaks: &mut Peaks| {
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
    peaks
}

/// Bytes as MiB.
fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}
