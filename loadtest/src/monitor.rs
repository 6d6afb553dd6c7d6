//! Watches a run while it goes: turns goose's killswitch (Ctrl-C) into a stop, tracks the
//! peaks the summary reports (open streams, RSS, the steady window) and prints the progress
//! line.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::client::Stop;
use crate::metrics::Metrics;
use crate::procstat;
use crate::report::Progress;

/// How often the monitor checks the killswitch and the open-stream count.
const MONITOR_TICK: Duration = Duration::from_millis(200);

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
}

/// Until `done`: turns goose's killswitch (Ctrl-C) into a stop, tracks peaks (streams
/// every tick, RSS every second) and prints the progress line.
pub(crate) async fn monitor(args: MonitorArgs, mut done: oneshot::Receiver<()>) -> Peaks {
    let mut peaks = Peaks::default();
    let mut tick = tokio::time::interval(MONITOR_TICK);
    let mut ticks = 0u64;
    let mut last_print = (Instant::now(), 0u64);
    let live = &args.metrics.live;
    // (when, events) at the first and the last tick with every user's stream open.
    let mut steady: Option<((Instant, u64), (Instant, u64))> = None;
    let sample_rss = |peaks: &mut Peaks| {
        if let Ok(s) = procstat::sample(None) {
            peaks.rss_self = peaks.rss_self.max(s.rss_bytes);
        }
        if let Some(Ok(s)) = args.server_pid.map(|pid| procstat::sample(Some(pid))) {
            peaks.rss_server = peaks.rss_server.max(s.rss_bytes);
        }
    };
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = &mut done => break,
        }
        ticks += 1;
        if goose::is_killswitch_triggered() {
            args.stop.cancel();
        }
        let open = live.open_streams.load(std::sync::atomic::Ordering::Relaxed);
        peaks.open_streams = peaks.open_streams.max(open);
        if usize::try_from(open).is_ok_and(|open| open >= args.users) {
            let now = (
                Instant::now(),
                live.events.load(std::sync::atomic::Ordering::Relaxed),
            );
            let _ = live.steady_since.set(now.0);
            steady = Some(steady.map_or((now, now), |(first, _)| (first, now)));
        }
        if ticks % 5 == 0 {
            sample_rss(&mut peaks);
        }
        if !args.progress_every.is_zero() && last_print.0.elapsed() >= args.progress_every {
            let events = live.events.load(std::sync::atomic::Ordering::Relaxed);
            let dt = last_print.0.elapsed().as_secs_f64();
            let line = Progress {
                elapsed: args.started.elapsed(),
                total: args.total,
                open_streams: open,
                users: args.users,
                events_per_sec: (events - last_print.1) as f64 / dt,
                events,
                errors: live.errors.load(std::sync::atomic::Ordering::Relaxed),
                lost: live.lost.load(std::sync::atomic::Ordering::Relaxed),
            };
            eprintln!("{line}");
            last_print = (Instant::now(), events);
        }
    }
    sample_rss(&mut peaks);
    peaks.steady_events_per_sec = steady.and_then(|((t0, e0), (t1, e1))| {
        let secs = (t1 - t0).as_secs_f64();
        (secs >= 1.0).then(|| (e1 - e0) as f64 / secs)
    });
    peaks
}
