//! How late the server sends events against their drift-free schedule: a Prometheus
//! histogram observed once per event without a lock (prometheus-client's own histogram
//! takes a mutex per observation).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;

/// Upper bounds of the buckets, in nanoseconds: 1 ms to 5 s, then `+Inf`.
const BOUNDS_NANOS: [u64; 12] = [
    1_000_000,
    2_000_000,
    5_000_000,
    10_000_000,
    20_000_000,
    50_000_000,
    100_000_000,
    200_000_000,
    500_000_000,
    1_000_000_000,
    2_000_000_000,
    5_000_000_000,
];

/// A fixed-bucket histogram of lateness; cheap to clone (shared counts).
#[derive(Debug, Clone, Default)]
pub struct Lateness {
    inner: Arc<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    /// Per bucket, not cumulative; the last one is `+Inf`.
    buckets: [AtomicU64; BOUNDS_NANOS.len() + 1],
    sum_nanos: AtomicU64,
}

impl Lateness {
    /// Records one event sent `nanos` after it was due: two relaxed atomic adds.
    pub fn observe(&self, nanos: u64) {
        let bucket = BOUNDS_NANOS
            .iter()
            .position(|&bound| nanos <= bound)
            .unwrap_or(BOUNDS_NANOS.len());
        self.inner.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.inner.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// The count of each bucket by upper bound in seconds (`+Inf` last; not cumulative,
    /// the encoder adds them up), the total and the sum in seconds. Not an atomic
    /// snapshot: a scrape during sending may see an event in its bucket but not yet in
    /// the sum.
    fn snapshot(&self) -> (Vec<(f64, u64)>, u64, f64) {
        let buckets: Vec<(f64, u64)> = self
            .inner
            .buckets
            .iter()
            .enumerate()
            .map(|(index, count)| {
                let bound = BOUNDS_NANOS
                    .get(index)
                    .map_or(f64::INFINITY, |&nanos| nanos as f64 / 1e9);
                (bound, count.load(Ordering::Relaxed))
            })
            .collect();
        let total = buckets.iter().map(|(_, count)| count).sum();
        let sum = self.inner.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        (buckets, total, sum)
    }
}

impl EncodeMetric for Lateness {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let (buckets, count, sum) = self.snapshot();
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_the_first_bucket_that_holds_them() {
        let lateness = Lateness::default();
        lateness.observe(0);
        lateness.observe(1_000_000);
        lateness.observe(1_000_001);
        lateness.observe(30_000_000);
        lateness.observe(u64::MAX / 2);
        let (buckets, count, sum) = lateness.snapshot();
        assert_eq!(count, 5);
        assert_eq!(buckets[0], (0.001, 2));
        assert_eq!(buckets[1], (0.002, 1));
        assert_eq!(buckets[5], (0.05, 1));
        assert_eq!(buckets[12], (f64::INFINITY, 1));
        assert_eq!(buckets.iter().map(|(_, n)| n).sum::<u64>(), 5);
        let expected = (1_000_000.0 + 1_000_001.0 + 30_000_000.0 + (u64::MAX / 2) as f64) / 1e9;
        assert!(
            (sum - expected).abs() < 1e-6 * expected,
            "{sum} vs {expected}"
        );
    }
}
