//! The shape of connection storms: every connection attempt and every stream opened is
//! counted in a fine time bin (10 ms for runs up to ~2.9 hours), so the report can say how
//! many arrived in the busiest 10 ms, 100 ms and second, and when. The timeline's 500 ms
//! samples are too coarse to tell a restart's thundering herd (every client back in the
//! same few milliseconds) from the same reconnections spread over a retry period.
//!
//! Recording is one relaxed atomic add per attempt (never per event).

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

/// The finest bin.
pub const BIN: Duration = Duration::from_millis(10);
/// The most bins kept; a longer run gets wider bins.
const MAX_BINS: usize = 1 << 20;

/// Counts per time bin since the run started.
#[derive(Debug)]
pub struct Arrivals {
    started: Instant,
    bin: Duration,
    attempts: Box<[AtomicU32]>,
    opens: Box<[AtomicU32]>,
}

impl Arrivals {
    /// Bins covering `span` from `started`; arrivals later than that fall in the last bin.
    #[must_use]
    pub fn new(started: Instant, span: Duration) -> Self {
        let mut bin = BIN;
        while span.as_nanos() / bin.as_nanos() >= MAX_BINS as u128 {
            bin *= 2;
        }
        let bins = usize::try_from(span.as_nanos() / bin.as_nanos()).unwrap_or(MAX_BINS) + 1;
        let zeros = || (0..bins).map(|_| AtomicU32::new(0)).collect();
        Self {
            started,
            bin,
            attempts: zeros(),
            opens: zeros(),
        }
    }

    /// A connection attempt started at `at`.
    pub fn attempt(&self, at: Instant) {
        self.attempts[self.index(at)].fetch_add(1, Ordering::Relaxed);
    }

    /// A stream opened (response headers arrived) at `at`.
    pub fn opened(&self, at: Instant) {
        self.opens[self.index(at)].fetch_add(1, Ordering::Relaxed);
    }

    fn index(&self, at: Instant) -> usize {
        let since = at.saturating_duration_since(self.started);
        let index = usize::try_from(since.as_nanos() / self.bin.as_nanos()).unwrap_or(usize::MAX);
        index.min(self.attempts.len() - 1)
    }

    /// The busiest windows of attempts and of opens.
    #[must_use]
    pub fn shape(&self) -> StormShape {
        self.bins().shape()
    }

    /// The counts so far, bin by bin.
    #[must_use]
    pub fn bins(&self) -> Bins {
        let load = |bins: &[AtomicU32]| -> Vec<u32> {
            bins.iter().map(|b| b.load(Ordering::Relaxed)).collect()
        };
        Bins {
            bin_ms: u64::try_from(self.bin.as_millis()).unwrap_or(u64::MAX),
            attempts: load(&self.attempts),
            opens: load(&self.opens),
        }
    }
}

/// The arrivals' bins as plain counts: what runs that started at the same moment
/// (`--start-at`) add bin by bin, before their busiest windows are found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bins {
    /// The bin width, ms.
    pub bin_ms: u64,
    /// Connection attempts per bin since the start.
    pub attempts: Vec<u32>,
    /// Streams opened per bin since the start.
    pub opens: Vec<u32>,
}

impl Bins {
    /// The busiest windows of attempts and of opens.
    #[must_use]
    pub fn shape(&self) -> StormShape {
        let bin_ms = self.bin_ms.max(1);
        StormShape {
            bin_ms,
            attempts: Peaks::of(&self.attempts, bin_ms),
            opens: Peaks::of(&self.opens, bin_ms),
        }
    }

    /// Adds `other` bin by bin (the finer of the two is widened first; widths are the
    /// base bin doubled some times).
    pub fn add(&mut self, other: &Self) {
        let mut other = other.clone();
        if self.attempts.is_empty() && self.opens.is_empty() {
            *self = other;
            return;
        }
        while self.bin_ms < other.bin_ms {
            self.widen();
        }
        while other.bin_ms < self.bin_ms {
            other.widen();
        }
        for (mine, theirs) in [
            (&mut self.attempts, &other.attempts),
            (&mut self.opens, &other.opens),
        ] {
            if mine.len() < theirs.len() {
                mine.resize(theirs.len(), 0);
            }
            for (m, t) in mine.iter_mut().zip(theirs) {
                *m = m.saturating_add(*t);
            }
        }
    }

    /// Adds neighbouring bins in pairs and doubles the width.
    fn widen(&mut self) {
        let pairs = |bins: &[u32]| -> Vec<u32> {
            bins.chunks(2)
                .map(|pair| pair.iter().fold(0u32, |sum, &c| sum.saturating_add(c)))
                .collect()
        };
        self.attempts = pairs(&self.attempts);
        self.opens = pairs(&self.opens);
        self.bin_ms = self.bin_ms.saturating_mul(2).max(1);
    }
}

/// The busiest windows of one kind of arrival.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct StormShape {
    /// The bin width, ms (10 unless the run was very long).
    pub bin_ms: u64,
    /// Connection attempts (including refused ones and reconnections).
    pub attempts: Peaks,
    /// Streams opened.
    pub opens: Peaks,
}

/// The most arrivals in any window of each width, and when that window started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Peaks {
    /// Arrivals over the whole run.
    pub total: u64,
    /// The busiest single bin (10 ms).
    pub bin: Peak,
    /// The busiest 100 ms (sliding, in whole bins).
    pub tenth: Peak,
    /// The busiest second (sliding, in whole bins).
    pub second: Peak,
}

/// One busiest window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Peak {
    /// Arrivals in it.
    pub count: u64,
    /// The start of its first non-empty bin, seconds since the run started.
    pub at_secs: f64,
}

impl Peaks {
    fn of(bins: &[u32], bin_ms: u64) -> Self {
        let window = |ms: u64| {
            busiest(
                bins,
                usize::try_from((ms / bin_ms).max(1)).unwrap_or(1),
                bin_ms,
            )
        };
        Self {
            total: bins.iter().map(|&c| u64::from(c)).sum(),
            bin: window(bin_ms),
            tenth: window(100),
            second: window(1000),
        }
    }
}

/// The sliding window of `width` bins with the most arrivals (the earliest on a tie).
fn busiest(bins: &[u32], width: usize, bin_ms: u64) -> Peak {
    let mut best = Peak::default();
    let mut sum = 0u64;
    for (i, &count) in bins.iter().enumerate() {
        sum += u64::from(count);
        if i >= width {
            sum -= u64::from(bins[i - width]);
        }
        if sum > best.count {
            let window_start = (i + 1).saturating_sub(width);
            let start = (window_start..=i)
                .find(|&j| bins[j] > 0)
                .unwrap_or(window_start);
            best = Peak {
                count: sum,
                at_secs: (start as u64 * bin_ms) as f64 / 1000.0,
            };
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_herd_shows_in_the_finest_bin_and_a_spread_does_not() {
        let started = Instant::now();
        let herd = Arrivals::new(started, Duration::from_secs(10));
        let spread = Arrivals::new(started, Duration::from_secs(10));
        // 1,000 attempts: all within 5 ms at 2.0 s, or one every 0.5 ms from 2.0 s on.
        for i in 0..1000u64 {
            herd.attempt(started + Duration::from_millis(2000) + Duration::from_micros(i * 5));
            spread.attempt(started + Duration::from_millis(2000) + Duration::from_micros(i * 500));
        }
        let herd = herd.shape().attempts;
        let spread = spread.shape().attempts;
        assert_eq!(herd.total, 1000);
        assert_eq!(
            herd.bin,
            Peak {
                count: 1000,
                at_secs: 2.0
            }
        );
        assert_eq!(herd.second.count, 1000);
        assert_eq!(spread.total, 1000);
        assert_eq!(spread.bin.count, 20);
        assert_eq!(spread.tenth.count, 200);
        assert_eq!(spread.second.count, 1000);
        assert!((spread.second.at_secs - 2.0).abs() < 1e-9);
    }

    #[test]
    fn runs_that_started_together_add_bin_by_bin() {
        let started = Instant::now();
        let a = Arrivals::new(started, Duration::from_secs(2));
        let b = Arrivals::new(started, Duration::from_secs(2));
        for i in 0..10u64 {
            a.attempt(started + Duration::from_millis(1000 + i));
            b.attempt(started + Duration::from_millis(1005 + i / 2));
        }
        let mut bins = a.bins();
        bins.add(&b.bins());
        let shape = bins.shape();
        assert_eq!(shape.attempts.total, 20);
        assert_eq!(shape.attempts.bin.count, 20);
        let mut wide = b.bins();
        wide.widen();
        let mut sum = a.bins();
        sum.add(&wide);
        assert_eq!(sum.bin_ms, 20);
        assert_eq!(sum.shape().attempts.bin.count, 20);
    }

    #[test]
    fn opens_are_counted_apart_from_attempts() {
        let started = Instant::now();
        let arrivals = Arrivals::new(started, Duration::from_secs(1));
        arrivals.attempt(started);
        arrivals.attempt(started);
        arrivals.opened(started + Duration::from_millis(15));
        let shape = arrivals.shape();
        assert_eq!(shape.attempts.total, 2);
        assert_eq!(shape.opens.total, 1);
        assert_eq!(
            shape.opens.bin,
            Peak {
                count: 1,
                at_secs: 0.01
            }
        );
    }

    #[test]
    fn late_arrivals_land_in_the_last_bin_and_long_runs_get_wider_bins() {
        let started = Instant::now();
        let arrivals = Arrivals::new(started, Duration::from_secs(1));
        arrivals.attempt(started + Duration::from_secs(3600));
        assert_eq!(arrivals.shape().attempts.total, 1);
        let long = Arrivals::new(started, Duration::from_secs(24 * 3600));
        assert!(long.bin > BIN);
        assert!(long.attempts.len() <= MAX_BINS + 1);
    }
}
