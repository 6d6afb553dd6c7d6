//! Stream admission: at most `max` streams open at once, like a semaphore whose permits are
//! taken without waiting (a request over the limit gets 503 at once, never a queue).
//!
//! Kept apart from the metrics: the `/metrics` gauge reports what the limit admits, it does
//! not decide it.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// The open-streams limit, shared by every worker.
#[derive(Debug)]
pub struct StreamLimit {
    /// Permits out now.
    open: AtomicUsize,
    /// Permits given back since the start: the memory task trims after streams end.
    released: AtomicU64,
    /// The most permits out at once.
    max: usize,
}

/// One admitted stream's place; dropping it frees the place.
#[derive(Debug)]
#[must_use = "the place is freed as soon as the permit is dropped"]
pub struct StreamPermit {
    limit: Arc<StreamLimit>,
}

impl StreamLimit {
    /// A limit of `max` streams open at once.
    #[must_use]
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            open: AtomicUsize::new(0),
            released: AtomicU64::new(0),
            max,
        })
    }

    /// A place for one more stream, or `None` when `max` are open.
    pub fn try_acquire(self: &Arc<Self>) -> Option<StreamPermit> {
        // A compare-and-swap loop rather than add-then-undo: two racing requests never both
        // take the last place, and a refused one never shows as open, even for an instant.
        self.open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
                (open < self.max).then_some(open + 1)
            })
            .ok()?;
        Some(StreamPermit {
            limit: Arc::clone(self),
        })
    }

    /// The most streams open at once.
    #[must_use]
    pub fn max(&self) -> usize {
        self.max
    }

    /// Streams open now.
    #[must_use]
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    /// Streams that have ended since the start.
    #[must_use]
    pub fn released_total(&self) -> u64 {
        self.released.load(Ordering::Acquire)
    }
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        self.limit.released.fetch_add(1, Ordering::AcqRel);
        self.limit.open.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_place_past_the_limit_until_one_is_freed() {
        let limit = StreamLimit::new(2);
        let first = limit.try_acquire().unwrap();
        let _second = limit.try_acquire().unwrap();
        assert!(limit.try_acquire().is_none());
        assert_eq!(limit.open(), 2);
        drop(first);
        assert_eq!((limit.open(), limit.released_total()), (1, 1));
        assert!(limit.try_acquire().is_some());
    }

    #[test]
    fn a_zero_limit_admits_nothing() {
        assert!(StreamLimit::new(0).try_acquire().is_none());
    }

    #[test]
    fn racing_threads_never_exceed_the_limit() {
        let limit = StreamLimit::new(8);
        let peak = AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    for _ in 0..10_000 {
                        if let Some(permit) = limit.try_acquire() {
                            peak.fetch_max(limit.open(), Ordering::AcqRel);
                            drop(permit);
                        }
                    }
                });
            }
        });
        assert!(peak.load(Ordering::Acquire) <= 8);
        assert_eq!(limit.open(), 0);
    }
}
