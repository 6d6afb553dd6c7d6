//! The load generator's own stalls, measured the way jHiccup measures a JVM's: a ticker
//! that asks to wake every [`DEFAULT_PERIOD`] and records, in an HdrHistogram (µs), how
//! much later than asked it actually ran. Whatever delays a ticker (a task that blocks its
//! worker thread, a long poll, the OS running another thread on the core) delays the users'
//! reads the same way, so a large hiccup means lateness was measured late, not sent late.
//!
//! The tickers are ordinary tasks on the runtime the users run on, one per worker thread
//! ([`tickers_for_current_runtime`]). Tokio cannot pin a task to a worker of its
//! multi-thread runtime, so "one per worker" is a count, not a placement: work stealing
//! moves tickers as it moves users, and a ticker measures what any task waiting to run
//! meets. When every worker is stalled (with one worker, as under `taskset -c 1`, any
//! stall), every ticker sees it. When one of several is, the others steal the tickers and
//! users queued behind it, and a ticker sees the stall only if it was stuck there (in the
//! blocked worker's next-task slot), as only the users stuck there do: one worker of two
//! blocked for 200 ms shows as about 1 ms.
//!
//! Each ticker owns its histogram (nothing shared, nothing locked); they are merged when
//! the meter stops. Users' code is not touched. A stall of `d` is recorded as jHiccup
//! records it (`record_correct`): `d`, plus the wake-ups the stall swallowed (`d − period`,
//! `d − 2·period`, …), so the histogram weighs a stall by the time it lasted, as the events
//! due during it are weighed, and its percentiles compare with lateness's.
//!
//! Tokio's timer has a resolution of 1 ms, so even an idle runtime shows hiccups up to
//! about 1 ms.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::measure::metrics::{new_histogram, HIGHEST_US};

/// How often each ticker asks to wake.
pub const DEFAULT_PERIOD: Duration = Duration::from_millis(1);

/// Running tickers; [`HiccupMeter::stop`] ends them and merges what they recorded.
#[derive(Debug)]
pub struct HiccupMeter {
    /// Set to end the tickers (each notices at its next wake-up).
    stopping: Arc<AtomicBool>,
    /// The tickers, each returning its histogram.
    tickers: Vec<JoinHandle<Histogram<u64>>>,
    /// Their period.
    period: Duration,
}

/// What the tickers recorded.
#[derive(Debug, Clone)]
pub struct Hiccups {
    /// Tickers that ran.
    pub tickers: usize,
    /// Their period.
    pub period: Duration,
    /// Every ticker's overshoot, µs, stalls weighed by their length (see the module doc).
    pub histogram: Histogram<u64>,
}

/// The current runtime's worker threads: one ticker each.
///
/// # Panics
/// Outside a tokio runtime.
#[must_use]
pub fn tickers_for_current_runtime() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_workers()
        .max(1)
}

impl HiccupMeter {
    /// Starts `tickers` tickers on the current runtime, each waking every `period` until
    /// `until` (the run's end: what comes after it measures nothing the users record).
    ///
    /// # Panics
    /// Outside a tokio runtime, or with a zero `period`.
    #[must_use]
    pub fn start(tickers: usize, period: Duration, until: std::time::Instant) -> Self {
        let until = Instant::from_std(until);
        assert!(!period.is_zero(), "a ticker needs a period");
        let stopping = Arc::new(AtomicBool::new(false));
        let tickers = (0..tickers)
            .map(|_| tokio::spawn(ticker(period, until, Arc::clone(&stopping))))
            .collect();
        Self {
            stopping,
            tickers,
            period,
        }
    }

    /// Ends the tickers (within a period) and merges their histograms.
    pub async fn stop(self) -> Hiccups {
        self.stopping.store(true, Ordering::Relaxed);
        let mut histogram = new_histogram();
        let mut tickers = 0;
        for ticker in self.tickers {
            // A ticker cannot panic (it only sleeps and records bounded values); if the
            // runtime dropped it, its samples are lost and it is not counted.
            if let Ok(recorded) = ticker.await {
                histogram
                    .add(&recorded)
                    .expect("histograms share bounds, so adding cannot fail");
                tickers += 1;
            }
        }
        Hiccups {
            tickers,
            period: self.period,
            histogram,
        }
    }
}

/// Sleeps `period` at a time until `until` or `stopping`, recording each overshoot. The next wake-up
/// is asked for a period after the actual one, not caught up on a fixed grid: a stall is
/// recorded once, with the wake-ups it swallowed filled in by `record_correct`.
async fn ticker(period: Duration, until: Instant, stopping: Arc<AtomicBool>) -> Histogram<u64> {
    let mut histogram = new_histogram();
    let period_us = u64::try_from(period.as_micros()).unwrap_or(u64::MAX);
    let mut due = Instant::now() + period;
    while due <= until && !stopping.load(Ordering::Relaxed) {
        tokio::time::sleep_until(due).await;
        let woke = Instant::now();
        if woke > until {
            // Woken past the end: the sources' burst of endings at the deadline, which
            // lateness does not see either (nothing read after the end is measured).
            break;
        }
        record_overshoot(
            &mut histogram,
            woke.saturating_duration_since(due),
            period_us,
        );
        due = woke + period;
    }
    histogram
}

/// Records `overshoot` and the wake-ups of period `period_us` it swallowed.
fn record_overshoot(histogram: &mut Histogram<u64>, overshoot: Duration, period_us: u64) {
    let us = u64::try_from(overshoot.as_micros())
        .unwrap_or(u64::MAX)
        .clamp(1, HIGHEST_US);
    histogram
        .record_correct(us, period_us)
        .expect("a value clamped to the histogram's bounds is recordable");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime(workers: usize) -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_time()
            .build()
            .expect("a small runtime")
    }

    fn far() -> std::time::Instant {
        std::time::Instant::now() + Duration::from_secs(3600)
    }

    fn ms(us: u64) -> f64 {
        us as f64 / 1000.0
    }

    /// A stall that runs past the deadline is not recorded: what is read after the end is
    /// not measured either. Only an upper bound that a recorded stall (about 100 ms) would
    /// break is asserted.
    #[test]
    fn a_stall_past_the_deadline_is_not_recorded() {
        let rt = runtime(1);
        let hiccups = rt.block_on(async {
            let until = std::time::Instant::now() + Duration::from_millis(30);
            let meter = HiccupMeter::start(1, DEFAULT_PERIOD, until);
            tokio::time::sleep(Duration::from_millis(10)).await;
            tokio::spawn(async { std::thread::sleep(Duration::from_millis(100)) })
                .await
                .expect("the blocker does not panic");
            meter.stop().await
        });
        let max = ms(hiccups.histogram.max());
        assert!(max < 80.0, "max hiccup {max} ms");
    }

    #[test]
    fn a_stall_is_weighed_by_its_length() {
        let mut h = new_histogram();
        record_overshoot(&mut h, Duration::from_millis(10), 1000);
        // 10 ms, then the nine wake-ups it swallowed: 9, 8, ... 1 ms.
        assert_eq!(h.len(), 10);
        assert!(h.equivalent(h.max(), 10_000));
        assert!(h.equivalent(h.min(), 1_000));
    }

    /// Every worker of a small runtime blocked for 200 ms: every ticker is late by about
    /// that much. Only a lower bound is asserted; a loaded machine can only add to it.
    #[test]
    fn blocked_workers_show_as_hiccups() {
        let rt = runtime(2);
        let hiccups = rt.block_on(async {
            let meter = HiccupMeter::start(tickers_for_current_runtime(), DEFAULT_PERIOD, far());
            tokio::time::sleep(Duration::from_millis(50)).await;
            let blockers: Vec<_> = (0..2)
                .map(|_| {
                    tokio::spawn(async {
                        // Deliberately blocks its worker thread, as a synchronous read
                        // or a long computation on the runtime would.
                        std::thread::sleep(Duration::from_millis(200));
                    })
                })
                .collect();
            for blocker in blockers {
                blocker.await.expect("the blocker does not panic");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            meter.stop().await
        });
        assert_eq!(hiccups.tickers, 2);
        let max = ms(hiccups.histogram.max());
        assert!(max >= 150.0, "max hiccup {max} ms");
    }

    /// One worker (as under `taskset -c 1`): a task blocking it stalls every ticker.
    #[test]
    fn one_blocked_worker_of_one_shows_as_a_hiccup() {
        let rt = runtime(1);
        let hiccups = rt.block_on(async {
            let meter = HiccupMeter::start(tickers_for_current_runtime(), DEFAULT_PERIOD, far());
            tokio::time::sleep(Duration::from_millis(20)).await;
            tokio::spawn(async { std::thread::sleep(Duration::from_millis(200)) })
                .await
                .expect("the blocker does not panic");
            meter.stop().await
        });
        assert_eq!(hiccups.tickers, 1);
        let max = ms(hiccups.histogram.max());
        assert!(max >= 150.0, "max hiccup {max} ms");
        // The stall is weighed by its length: about 200 wake-ups above 1 ms.
        let above_1ms = hiccups.histogram.count_between(1_100, HIGHEST_US);
        assert!(above_1ms >= 100, "{above_1ms} wake-ups above 1 ms");
    }

    /// An idle runtime: hiccups stay far below the blocked case. The bound is generous, for
    /// a busy shared machine; it only tells an idle runtime from a blocked one.
    #[test]
    fn an_idle_runtime_shows_small_hiccups() {
        let rt = runtime(2);
        let hiccups = rt.block_on(async {
            let meter = HiccupMeter::start(tickers_for_current_runtime(), DEFAULT_PERIOD, far());
            tokio::time::sleep(Duration::from_millis(300)).await;
            meter.stop().await
        });
        assert_eq!(hiccups.tickers, 2);
        assert!(hiccups.histogram.len() >= 50, "{}", hiccups.histogram.len());
        let p50 = ms(hiccups.histogram.value_at_quantile(0.5));
        assert!(p50 < 50.0, "median hiccup {p50} ms on an idle runtime");
    }
}
