//! Where measurements go: HdrHistograms (microseconds) and counters, kept in one shard per
//! worker thread and merged at the end, so recording never waits on another thread; plus a
//! few atomics that the progress line reads while the run goes on.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;

/// The largest value a histogram holds exactly: one hour in microseconds; larger values
/// are recorded as this.
const HIGHEST_US: u64 = 3_600_000_000;
/// Significant decimal digits kept by every histogram (0.1% resolution).
const SIGFIGS: u8 = 3;
/// Distinct "other" error descriptions kept; the rest are counted under one key.
const MAX_ERROR_KINDS: usize = 32;

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
    /// Reconnection wait actually waited minus the delay planned from the `retry:` hint.
    pub retry_overshoot: Histogram<u64>,
}

impl Default for Histograms {
    fn default() -> Self {
        Self {
            open: new_histogram(),
            first_event: new_histogram(),
            lateness: new_histogram(),
            lateness_steady: new_histogram(),
            reconnect: new_histogram(),
            retry_overshoot: new_histogram(),
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
    }

    /// Each histogram with its name, in report order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &Histogram<u64>)> {
        [
            ("open", &self.open),
            ("first_event", &self.first_event),
            ("lateness", &self.lateness),
            ("lateness_steady", &self.lateness_steady),
            ("reconnect", &self.reconnect),
            ("retry_overshoot", &self.retry_overshoot),
        ]
        .into_iter()
    }

    fn iter_mut(&mut self) -> impl Iterator<Item = (&'static str, &mut Histogram<u64>)> {
        [
            ("open", &mut self.open),
            ("first_event", &mut self.first_event),
            ("lateness", &mut self.lateness),
            ("lateness_steady", &mut self.lateness_steady),
            ("reconnect", &mut self.reconnect),
            ("retry_overshoot", &mut self.retry_overshoot),
        ]
        .into_iter()
    }
}

/// Declares the counter struct, documenting each field once, with a field-wise `add`.
macro_rules! counters {
    ($( $(#[doc = $doc:literal])* $name:ident ),* $(,)?) => {
        /// Everything the run counts; see the README for what each figure means.
        #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
        pub struct Counters {
            $( $(#[doc = $doc])* pub $name: u64, )*
            /// Non-200 answers (other than 204), by status code.
            pub status_codes: BTreeMap<u16, u64>,
            /// Transport errors other than refused and timeout, by description.
            pub other_errors: BTreeMap<String, u64>,
        }

        impl Counters {
            /// Adds every count of `other` into this one.
            pub fn add(&mut self, other: &Self) {
                $( self.$name += other.$name; )*
                for (code, n) in &other.status_codes {
                    *self.status_codes.entry(*code).or_default() += n;
                }
                for (kind, n) in &other.other_errors {
                    self.count_error_n(kind, *n);
                }
            }
        }
    };
}

counters! {
    /// Event sources run (one per goose user and transaction).
    event_sources,
    /// Connection attempts, first ones and reconnections.
    connect_attempts,
    /// Attempts that opened a stream (200 with `text/event-stream`).
    connections_opened,
    /// Attempts refused (nothing listening).
    failed_refused,
    /// Attempts refused while the embedded server was down on purpose (`--restart-at`):
    /// expected, so not failures; the retry that follows is what is measured.
    refused_during_restart,
    /// Attempts that timed out (connect or response headers).
    failed_timeout,
    /// Attempts answered with a status other than 200 and 204.
    failed_status,
    /// Attempts answered 200 with another content type.
    failed_content_type,
    /// Attempts that failed with another transport error.
    failed_other,
    /// Open streams that broke with a read error.
    read_errors,
    /// Open streams that delivered no byte within the idle timeout.
    idle_timeouts,
    /// Events dispatched (messages and `bye`) that carried a numeric id.
    events,
    /// Events due so far: from the first id to the highest seen, over every event source.
    expected,
    /// Ids skipped and never seen, including across reconnections.
    lost,
    /// Ids seen more than once.
    duplicated,
    /// Skipped ids that arrived after later ones.
    out_of_order,
    /// Events that arrived before their scheduled time (their connection's first event was late).
    early,
    /// Events whose id is not a number or whose data does not match the id.
    malformed,
    /// Connections after the first one of an event source.
    reconnects,
    /// Reconnections whose first event was one past the last id seen before.
    resumed_ok,
    /// Reconnections whose first event was any other id.
    resumed_wrong,
    /// Gaps between events of a connection (or before its first) longer than the stall threshold.
    stalls,
    /// Event sources that ended with `bye`.
    completed_bye,
    /// Event sources that ended with 204 No Content.
    ended_no_content,
    /// Connections we closed ourselves after `--drop-after` events.
    dropped_by_client,
    /// Connections the server ended before `bye`.
    closed_by_server,
    /// Of those, connections that sent no `retry:` hint before they ended.
    closed_without_retry_hint,
    /// Keep-alive comments received.
    keepalives,
    /// Event sources still streaming when the run ended.
    stopped_at_deadline,
}

impl Counters {
    /// Every failed connection attempt, whatever the cause.
    #[must_use]
    pub fn failed(&self) -> u64 {
        self.failed_refused
            + self.failed_timeout
            + self.failed_status
            + self.failed_content_type
            + self.failed_other
    }

    /// Counts one transport error by description, keeping the map small.
    pub fn count_error(&mut self, kind: &str) {
        self.count_error_n(kind, 1);
    }

    fn count_error_n(&mut self, kind: &str, n: u64) {
        if let Some(count) = self.other_errors.get_mut(kind) {
            *count += n;
        } else if self.other_errors.len() < MAX_ERROR_KINDS {
            self.other_errors.insert(kind.to_owned(), n);
        } else {
            *self
                .other_errors
                .entry("(other kinds)".to_owned())
                .or_default() += n;
        }
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
    fn counters_add_field_by_field_and_maps_by_key() {
        let mut a = Counters {
            lost: 1,
            ..Counters::default()
        };
        a.status_codes.insert(503, 2);
        let mut b = Counters {
            lost: 2,
            events: 7,
            ..Counters::default()
        };
        b.status_codes.insert(503, 1);
        b.status_codes.insert(400, 1);
        a.add(&b);
        assert_eq!((a.lost, a.events), (3, 7));
        assert_eq!(a.status_codes, BTreeMap::from([(400, 1), (503, 3)]));
    }

    #[test]
    fn the_error_map_stays_small() {
        let mut c = Counters::default();
        for i in 0..100 {
            c.count_error(&format!("kind {i}"));
        }
        assert_eq!(c.other_errors.len(), MAX_ERROR_KINDS + 1);
        assert_eq!(c.other_errors.values().sum::<u64>(), 100);
    }

    #[test]
    fn out_of_range_values_are_clamped_not_lost() {
        let mut h = new_histogram();
        record(&mut h, Duration::ZERO);
        record(&mut h, Duration::from_secs(10_000));
        assert_eq!(h.len(), 2);
    }
}
