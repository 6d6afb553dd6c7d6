//! Lateness over time: one small histogram per time slot of the run, so the report can show
//! the lateness p99 as the run goes (a rolling restart shows where it happens) rather than
//! only over the whole run.
//!
//! Bounded, as the timeline is: at most [`MAX_SLOTS`] slots. When a value falls past the
//! last one, neighbouring slots are added in pairs and the slot width doubles, so a long run
//! keeps an even, coarser picture of the whole run. Each slot's histogram has one
//! significant digit (about 6% resolution, about 4 KB), enough to plot, small enough to keep
//! a thousand. The run's own percentiles come from the full-precision histograms, never from
//! these.
//!
//! Slots are indexed by time since the run started, so two runs that started at the same
//! moment (`--start-at`) add slot by slot ([`LatenessSlots::add`]).

use hdrhistogram::Histogram;

use crate::measure::metrics::HIGHEST_US;

/// The most slots kept (at 500 ms slots, ten minutes before the first doubling).
pub const MAX_SLOTS: usize = 1200;
/// Significant digits of each slot's histogram.
const SLOT_SIGFIGS: u8 = 1;

/// A histogram of microseconds at the slots' precision.
#[must_use]
pub fn slot_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIGHEST_US, SLOT_SIGFIGS).expect("constant bounds are valid")
}

/// Lateness per time slot, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct LatenessSlots {
    /// Each slot's width, ms (the base width, doubled at each coarsening).
    pub slot_ms: u64,
    /// Slot `i` covers `[i × slot_ms, (i + 1) × slot_ms)` from the run's start.
    pub slots: Vec<Histogram<u64>>,
}

impl Default for LatenessSlots {
    fn default() -> Self {
        Self::new(500)
    }
}

impl LatenessSlots {
    /// No slots yet, each `slot_ms` wide (at least 1 ms).
    #[must_use]
    pub fn new(slot_ms: u64) -> Self {
        Self {
            slot_ms: slot_ms.max(1),
            slots: Vec::new(),
        }
    }

    /// Adds `interval` (what was recorded over a short interval of the run) into the slot
    /// holding `at_secs` since the run's start.
    ///
    /// # Errors
    /// When `interval` holds values past the histograms' range (it cannot, if it was made
    /// by [`crate::measure::metrics::new_histogram`]).
    pub fn record(
        &mut self,
        at_secs: f64,
        interval: &Histogram<u64>,
    ) -> Result<(), hdrhistogram::AdditionError> {
        let ms = (at_secs.max(0.0) * 1000.0) as u64;
        let index = self.slot_for(ms);
        self.slots[index].add(interval)
    }

    /// The index of the slot holding `ms`, coarsening and growing as needed.
    fn slot_for(&mut self, ms: u64) -> usize {
        let mut index = usize::try_from(ms / self.slot_ms).unwrap_or(usize::MAX);
        while index >= MAX_SLOTS {
            self.coarsen();
            index = usize::try_from(ms / self.slot_ms).unwrap_or(usize::MAX);
        }
        while self.slots.len() <= index {
            self.slots.push(slot_histogram());
        }
        index
    }

    /// Adds neighbouring slots in pairs and doubles the width.
    fn coarsen(&mut self) {
        let old = std::mem::take(&mut self.slots);
        for pair in old.chunks(2) {
            let mut merged = pair[0].clone();
            if let Some(second) = pair.get(1) {
                merged
                    .add(second)
                    .expect("slots share bounds, so adding cannot fail");
            }
            self.slots.push(merged);
        }
        self.slot_ms = self.slot_ms.saturating_mul(2);
    }

    /// Adds another run's slots, slot by slot in time (both counted from the same start);
    /// the finer of the two is coarsened to the wider width first when one width is the
    /// other doubled some times, else each slot of `other` goes where its start falls.
    pub fn add(&mut self, other: &Self) {
        while self.slot_ms < other.slot_ms && other.slot_ms % self.slot_ms == 0 {
            self.coarsen();
        }
        for (i, slot) in other.slots.iter().enumerate() {
            if slot.is_empty() {
                continue;
            }
            let start_ms = (i as u64).saturating_mul(other.slot_ms);
            let index = self.slot_for(start_ms);
            self.slots[index]
                .add(slot)
                .expect("slots share bounds, so adding cannot fail");
        }
    }

    /// The lateness p99 of each slot that holds any value, ms, at the slot's middle, in
    /// seconds since the run's start.
    #[must_use]
    pub fn p99_ms(&self) -> Vec<(f64, f64)> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, h)| !h.is_empty())
            .map(|(i, h)| {
                let middle = (i as f64 + 0.5) * self.slot_ms as f64 / 1000.0;
                (
                    middle,
                    h.highest_equivalent(h.value_at_quantile(0.99)) as f64 / 1000.0,
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::metrics::new_histogram;

    fn of(values: impl IntoIterator<Item = u64>) -> Histogram<u64> {
        let mut h = new_histogram();
        for v in values {
            h.record(v).unwrap();
        }
        h
    }

    #[test]
    fn a_late_moment_shows_in_its_own_slot() {
        let mut slots = LatenessSlots::new(500);
        slots.record(0.2, &of([1_000; 100])).unwrap();
        slots.record(0.7, &of([200_000; 100])).unwrap();
        slots.record(1.2, &of([1_000; 100])).unwrap();
        let p99 = slots.p99_ms();
        assert_eq!(p99.len(), 3);
        assert!((p99[0].0 - 0.25).abs() < 1e-9);
        assert!(p99[0].1 < 1.1, "{p99:?}");
        assert!((190.0..215.0).contains(&p99[1].1), "{p99:?}");
        assert!(p99[2].1 < 1.1, "{p99:?}");
    }

    #[test]
    fn a_long_run_is_coarsened_and_stays_bounded() {
        let mut slots = LatenessSlots::new(500);
        let n = MAX_SLOTS * 5;
        for i in 0..n {
            slots.record(i as f64 * 0.5, &of([1_000])).unwrap();
        }
        assert!(slots.slots.len() <= MAX_SLOTS, "{}", slots.slots.len());
        assert_eq!(slots.slot_ms, 500 * 8);
        let total: u64 = slots.slots.iter().map(Histogram::len).sum();
        assert_eq!(total, n as u64, "coarsening loses nothing");
    }

    #[test]
    fn two_runs_add_slot_by_slot_even_at_different_widths() {
        let mut a = LatenessSlots::new(500);
        a.record(0.1, &of([1_000])).unwrap();
        a.record(0.6, &of([2_000])).unwrap();
        let mut b = LatenessSlots::new(1000);
        b.record(0.3, &of([3_000, 3_000])).unwrap();
        a.add(&b);
        assert_eq!(a.slot_ms, 1000);
        assert_eq!(a.slots.len(), 1);
        assert_eq!(a.slots[0].len(), 4);
    }
}
