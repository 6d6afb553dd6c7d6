//! Where measurements go: HdrHistograms (microseconds) and [`Counters`], kept in one shard
//! per worker thread and merged at the end, so recording never waits on another thread; plus
//! a few atomics that the progress line reads while the run goes on.

use std::cell::RefCell;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::measure::counters::Counters;

/// The largest value a histogram holds exactly: one hour in microseconds; larger values
/// are recorded as this.
pub const HIGHEST_US: u64 = 3_600_000_000;
/// Significant decimal digits kept by every histogram (0.1% resolution).
const SIGFIGS: u8 = 3;

/// A histogram of microseconds with the run's bounds.
#[must_use]
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIGHEST_US, SIGFIGS).expect("constant bounds are valid")
}

/// Records `value` in microseconds, clamped to the histogram's range.
pub fn record(histogram: &mut Histogram<u64>, value: Duration) {
    let us = u64::try_from(value.as_micros()).unwrap_or(u64::MAX);
    histogram.saturating_record(us.clamp(1, HIGHEST_US));
}

/// The run's histograms, all in microseconds.
#[derive(Debug, Clone)]
pub struct Histograms {
    /// Request sent to response headers.
    pub open: Histogram<u64>,
    /// Response headers to the first event of the connection.
    pub first_event: Histogram<u64>,
    /// Arrival minus scheduled time, per event (the anchor event of a connection excluded).
    pub lateness: Histogram<u64>,
    /// The same, for events that arrived once every user had a stream open (ramp-up
    /// excluded): what the capacity search judges.
    pub lateness_steady: Histogram<u64>,
    /// End of a connection to the first event of the next one (the retry wait included).
    pub reconnect: Histogram<u64>,
    /// The delay planned before each reconnection: what the server asked (`retry:` or
    /// `Retry-After`) or the default, within the retry bounds.
    pub retry_hint: Histogram<u64>,
    /// Reconnection wait actually waited minus the delay planned from the `retry:` hint.
    pub retry_overshoot: Histogram<u64>,
    /// `--llm`: the completions' figures, apart from the event sources'.
    pub llm: LlmHistograms,
}

/// `--llm`: one sample per completed request, or per gap between its content events. Only
/// completed requests are measured, as LLM benchmarks do: a failed or stopped request's
/// partial timings would mix two populations.
#[derive(Debug, Clone)]
pub struct LlmHistograms {
    /// Request sent to response headers (time to first byte), µs.
    pub ttfb: Histogram<u64>,
    /// Request sent to the first event with content (time to first token), µs.
    pub ttft: Histogram<u64>,
    /// Between consecutive content events of a request, µs: what a reader of the stream
    /// sees, several tokens at a time when the server batches them.
    pub inter_event: Histogram<u64>,
    /// Per request, the time per output token after the first content event, µs: (last
    /// content event − first) / the tokens after the first event (vLLM's TPOT when each
    /// event carries one token); only where the server reported usage.
    pub itl: Histogram<u64>,
    /// Request sent to the end of its stream, µs.
    pub e2e: Histogram<u64>,
    /// Per request, completion tokens / end-to-end time, in thousandths of a token per
    /// second (the histograms hold integers); only where the server reported usage.
    pub tokens_per_sec_milli: Histogram<u64>,
}

impl Default for LlmHistograms {
    fn default() -> Self {
        Self {
            ttfb: new_histogram(),
            ttft: new_histogram(),
            inter_event: new_histogram(),
            itl: new_histogram(),
            e2e: new_histogram(),
            tokens_per_sec_milli: new_histogram(),
        }
    }
}

impl LlmHistograms {
    /// The latency histograms (µs) with their names, in report order: all but tokens/s.
    pub fn latencies(&self) -> impl Iterator<Item = (&'static str, &Histogram<u64>)> {
        self.iter()
            .filter(|(_, h)| !std::ptr::eq(*h, &self.tokens_per_sec_milli))
    }

    /// Each histogram with its name, in report order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &Histogram<u64>)> {
        [
            ("llm_ttfb", &self.ttfb),
            ("llm_ttft", &self.ttft),
            ("llm_inter_event", &self.inter_event),
            ("llm_itl", &self.itl),
            ("llm_e2e", &self.e2e),
            ("llm_tokens_per_sec_milli", &self.tokens_per_sec_milli),
        ]
        .into_iter()
    }

    /// Adds every histogram of `other` into this one.
    pub fn add(&mut self, other: &Self) {
        let mine = [
            &mut self.ttfb,
            &mut self.ttft,
            &mut self.inter_event,
            &mut self.itl,
            &mut self.e2e,
            &mut self.tokens_per_sec_milli,
        ];
        for (mine, (_, theirs)) in mine.into_iter().zip(other.iter()) {
            mine.add(theirs)
                .expect("histograms share bounds, so adding cannot fail");
        }
    }
}

impl Default for Histograms {
    fn default() -> Self {
        Self {
            open: new_histogram(),
            first_event: new_histogram(),
            lateness: new_histogram(),
            lateness_steady: new_histogram(),
            reconnect: new_histogram(),
            retry_hint: new_histogram(),
            retry_overshoot: new_histogram(),
            llm: LlmHistograms::default(),
        }
    }
}

impl Histograms {
    /// Adds every histogram of `other` into this one.
    pub fn add(&mut self, other: &Self) {
        for (mine, theirs) in self.iter_mut().zip(other.iter()) {
            mine.1
                .add(theirs.1)
                .expect("histograms share bounds, so adding cannot fail");
        }
        self.llm.add(&other.llm);
    }

    /// Each event-source histogram with its name, in report order (the `--llm` ones are
    /// [`LlmHistograms::iter`]).
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &Histogram<u64>)> {
        [
            ("open", &self.open),
            ("first_event", &self.first_event),
            ("lateness", &self.lateness),
            ("lateness_steady", &self.lateness_steady),
            ("reconnect", &self.reconnect),
            ("retry_hint", &self.retry_hint),
            ("retry_overshoot", &self.retry_overshoot),
        ]
        .into_iter()
    }

    /// Every histogram with its name, the `--llm` ones too: what a run part keeps.
    pub fn all(&self) -> impl Iterator<Item = (&'static str, &Histogram<u64>)> {
        self.iter().chain(self.llm.iter())
    }

    /// The histogram named `name` (one of [`Self::all`]'s names), to set it.
    pub fn get_mut(&mut self, name: &str) -> Option<&mut Histogram<u64>> {
        self.iter_mut().find(|(n, _)| *n == name).map(|(_, h)| h)
    }

    fn iter_mut(&mut self) -> impl Iterator<Item = (&'static str, &mut Histogram<u64>)> {
        let llm = &mut self.llm;
        [
            ("open", &mut self.open),
            ("first_event", &mut self.first_event),
            ("lateness", &mut self.lateness),
            ("lateness_steady", &mut self.lateness_steady),
            ("reconnect", &mut self.reconnect),
            ("retry_hint", &mut self.retry_hint),
            ("retry_overshoot", &mut self.retry_overshoot),
            ("llm_ttfb", &mut llm.ttfb),
            ("llm_ttft", &mut llm.ttft),
            ("llm_inter_event", &mut llm.inter_event),
            ("llm_itl", &mut llm.itl),
            ("llm_e2e", &mut llm.e2e),
            ("llm_tokens_per_sec_milli", &mut llm.tokens_per_sec_milli),
        ]
        .into_iter()
    }
}

/// One worker thread's share of the measurements.
#[derive(Debug, Default)]
pub struct Shard {
    /// This thread's histograms.
    pub histograms: Histograms,
    /// This thread's counters.
    pub counters: Counters,
}

/// Figures the progress line reads while the run goes on (relaxed atomics, updated once
/// per chunk or per connection, never per histogram sample).
#[derive(Debug, Default)]
pub struct Live {
    /// Streams open now.
    pub open_streams: AtomicI64,
    /// Events received so far.
    pub events: AtomicU64,
    /// Failed attempts, read errors and idle timeouts so far.
    pub errors: AtomicU64,
    /// Ids lost so far (as known when their connection ended).
    pub lost: AtomicU64,
    /// Reconnection attempts so far (the timeline's reconnects).
    pub reconnects: AtomicU64,
    /// When every user first had a stream open: the steady state starts.
    pub steady_since: OnceLock<Instant>,
    /// When the embedded server was down on purpose (`--restart-at`).
    pub outages: crate::measure::outage::Outages,
    /// Connection attempts and opens in fine time bins, once the run has started.
    pub arrivals: OnceLock<crate::measure::storm::Arrivals>,
}

/// The measurements of one run: a shard per thread that recorded, and the live figures.
#[derive(Debug)]
pub struct Metrics {
    /// Tells this run's shards from another run's in the threads' local lists.
    id: u64,
    /// Every shard handed out, for the merge.
    shards: Mutex<Vec<Arc<Mutex<Shard>>>>,
    /// Figures for the progress line.
    pub live: Live,
}

thread_local! {
    /// This thread's shard of each live run (usually one).
    static LOCAL_SHARDS: RefCell<Vec<(u64, Weak<Mutex<Shard>>)>> = const { RefCell::new(Vec::new()) };
}

impl Metrics {
    /// Empty measurements for a new run.
    #[must_use]
    pub fn new() -> Arc<Self> {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        Arc::new(Self {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            shards: Mutex::new(Vec::new()),
            live: Live::default(),
        })
    }

    /// Runs `f` on this thread's shard. The shard's lock is only ever contended by a
    /// merge, never by another recording thread.
    pub fn with_shard<R>(&self, f: impl FnOnce(&mut Shard) -> R) -> R {
        let shard = LOCAL_SHARDS.with(|local| {
            let mut local = local.borrow_mut();
            if let Some(shard) = local
                .iter()
                .find(|(id, _)| *id == self.id)
                .and_then(|(_, weak)| weak.upgrade())
            {
                return shard;
            }
            // Runs that ended leave dead entries behind: drop them while here.
            local.retain(|(id, weak)| *id != self.id && weak.strong_count() > 0);
            let shard = Arc::new(Mutex::new(Shard::default()));
            lock(&self.shards).push(Arc::clone(&shard));
            local.push((self.id, Arc::downgrade(&shard)));
            shard
        });
        let mut guard = lock(&shard);
        f(&mut guard)
    }

    /// All shards merged.
    #[must_use]
    pub fn merged(&self) -> (Histograms, Counters) {
        let mut histograms = Histograms::default();
        let mut counters = Counters::default();
        for shard in lock(&self.shards).iter() {
            let shard = lock(shard);
            histograms.add(&shard.histograms);
            counters.add(&shard.counters);
        }
        (histograms, counters)
    }

    /// The lateness histogram of all shards so far: what the monitor reads each sample to
    /// find the lateness of the last interval (each shard is locked only while it is added).
    #[must_use]
    pub fn merged_lateness(&self) -> Histogram<u64> {
        let mut lateness = new_histogram();
        for shard in lock(&self.shards).iter() {
            lateness
                .add(&lock(shard).histograms.lateness)
                .expect("histograms share bounds, so adding cannot fail");
        }
        lateness
    }
}

/// Locks a mutex, going on with the data if another thread panicked while holding it
/// (counters stay meaningful; a panic is reported elsewhere).
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_from_several_threads_merge_into_one() {
        let metrics = Metrics::new();
        std::thread::scope(|scope| {
            for t in 0..3u64 {
                let metrics = &metrics;
                scope.spawn(move || {
                    for _ in 0..10 {
                        metrics.with_shard(|s| {
                            s.counters.events += 1;
                            record(
                                &mut s.histograms.lateness,
                                Duration::from_micros(100 * (t + 1)),
                            );
                        });
                    }
                });
            }
        });
        let (histograms, counters) = metrics.merged();
        assert_eq!(counters.events, 30);
        assert_eq!(histograms.lateness.len(), 30);
        assert_eq!(
            histograms.lateness.max(),
            histograms.lateness.highest_equivalent(300)
        );
    }

    #[test]
    fn two_runs_on_one_thread_keep_separate_shards() {
        let a = Metrics::new();
        let b = Metrics::new();
        a.with_shard(|s| s.counters.events += 1);
        b.with_shard(|s| s.counters.events += 5);
        a.with_shard(|s| s.counters.events += 1);
        assert_eq!(a.merged().1.events, 2);
        assert_eq!(b.merged().1.events, 5);
    }

    #[test]
    fn out_of_range_values_are_clamped_not_lost() {
        let mut h = new_histogram();
        record(&mut h, Duration::ZERO);
        record(&mut h, Duration::from_secs(10_000));
        assert_eq!(h.len(), 2);
    }
}
