//! The server's own view of lateness: its [`EVENT_LATENESS`] histogram, scraped
//! from `/metrics` when every stream is open and again at the end of that window. The
//! difference is how late the server itself sent the window's events, apart from any delay
//! of the load generator (which matters when the generator fills its own cores).

use serde::{Deserialize, Serialize};
use sse_digits::telemetry::names::EVENT_LATENESS;

/// What follows the histogram's name on a bucket's line, up to the bucket's bound: the
/// Prometheus convention for a histogram (`<name>_bucket{le="0.02"} 98`).
const BUCKET_LABEL: &str = "_bucket{le=\"";

/// Cumulative bucket counts by upper bound, in seconds (`+Inf` last), as scraped.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Buckets(Vec<(f64, u64)>);

impl Buckets {
    /// Reads the histogram from Prometheus/OpenMetrics text; `None` when it is not there
    /// (a server other than sse-digits).
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        let buckets: Vec<(f64, u64)> = text
            .lines()
            .filter_map(|line| {
                let rest = line
                    .strip_prefix(EVENT_LATENESS)?
                    .strip_prefix(BUCKET_LABEL)?;
                let (bound, rest) = rest.split_once("\"}")?;
                let bound = if bound == "+Inf" {
                    f64::INFINITY
                } else {
                    bound.parse().ok()?
                };
                let count = rest.split_whitespace().next()?.parse().ok()?;
                Some((bound, count))
            })
            .collect();
        (!buckets.is_empty()).then_some(Self(buckets))
    }

    /// The events counted since `earlier`, bucket by bucket; `None` if the buckets differ
    /// (another server answered) or a count went down (the server restarted).
    #[must_use]
    pub fn since(&self, earlier: &Self) -> Option<Self> {
        if self.0.len() != earlier.0.len() {
            return None;
        }
        self.0
            .iter()
            .zip(&earlier.0)
            .map(|(&(bound, now), &(then_bound, then))| {
                (bound == then_bound && now >= then).then(|| (bound, now - then))
            })
            .collect::<Option<Vec<_>>>()
            .map(Self)
    }

    fn total(&self) -> u64 {
        self.0.last().map_or(0, |&(_, count)| count)
    }

    /// The smallest bucket bound that holds at least `quantile` of the events, in ms
    /// (infinite when only `+Inf` does); `None` without events.
    fn quantile_at_most_ms(&self, quantile: f64) -> Option<f64> {
        let total = self.total();
        if total == 0 {
            return None;
        }
        let needed = (quantile * total as f64).ceil() as u64;
        self.0
            .iter()
            .find(|&&(_, count)| count >= needed)
            .map(|&(bound, _)| bound * 1000.0)
    }

    /// The share of events within `bound_ms` (a bucket bound), percent.
    fn percent_within(&self, bound_ms: f64) -> Option<f64> {
        let total = self.total();
        let within = self
            .0
            .iter()
            .find(|&&(bound, _)| (bound * 1000.0 - bound_ms).abs() < 1e-9)?
            .1;
        (total > 0).then(|| within as f64 / total as f64 * 100.0)
    }
}

/// The bound the summary reports the share of on-time events against: the lateness the
/// server is meant to stay within.
pub const ON_TIME_MS: f64 = 20.0;

/// How late the server sent the events of the steady window, by its own clock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerLateness {
    /// Events the server sent in the window.
    pub events: u64,
    /// The median is at most this many ms (a bucket bound).
    pub p50_at_most_ms: Option<f64>,
    /// The 99th percentile is at most this many ms (a bucket bound).
    pub p99_at_most_ms: Option<f64>,
    /// Percent of the events sent within [`ON_TIME_MS`] of their due time.
    pub within_20ms_percent: Option<f64>,
}

impl ServerLateness {
    /// The figures of a window's buckets; `None` when it saw no event.
    #[must_use]
    pub fn from_window(window: &Buckets) -> Option<Self> {
        let events = window.total();
        (events > 0).then(|| Self {
            events,
            p50_at_most_ms: window.quantile_at_most_ms(0.50),
            p99_at_most_ms: window.quantile_at_most_ms(0.99),
            within_20ms_percent: window.percent_within(ON_TIME_MS),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use sse_digits::telemetry::names::{with_labels, EVENTS_SENT, STREAMS_OPEN};

    /// The histogram as the server exposes it, with cumulative `counts` for the bounds
    /// 1 ms, 20 ms, 100 ms and `+Inf`, between lines of other metrics.
    fn scrape(counts: [u64; 4]) -> String {
        let name = EVENT_LATENESS;
        let mut text = format!(
            "# TYPE {name} histogram\n{name}_sum 1.5\n{name}_count {}\n",
            counts[3]
        );
        for (le, count) in ["0.001", "0.02", "0.1", "+Inf"].into_iter().zip(counts) {
            let bucket = with_labels(&format!("{name}_bucket"), &format!("le=\"{le}\""));
            text.push_str(&format!("{bucket} {count}\n"));
        }
        text.push_str(&format!("{EVENTS_SENT} 5\n"));
        text
    }

    #[test]
    fn the_window_is_the_difference_of_two_scrapes() {
        let first = Buckets::parse(&scrape([10, 10, 10, 10])).unwrap();
        let last = Buckets::parse(&scrape([60, 108, 110, 110])).unwrap();
        let window = last.since(&first).unwrap();
        assert_eq!(
            window,
            Buckets(vec![
                (0.001, 50),
                (0.02, 98),
                (0.1, 100),
                (f64::INFINITY, 100)
            ])
        );
        let lateness = ServerLateness::from_window(&window).unwrap();
        assert_eq!(lateness.events, 100);
        assert_eq!(lateness.p50_at_most_ms, Some(1.0));
        assert_eq!(lateness.p99_at_most_ms, Some(100.0));
        assert_eq!(lateness.within_20ms_percent, Some(98.0));
    }

    #[test]
    fn a_restarted_or_different_server_gives_no_window() {
        let first = Buckets::parse(&scrape([10, 10, 10, 10])).unwrap();
        let restarted = Buckets::parse(&scrape([1, 2, 3, 4])).unwrap();
        assert_eq!(restarted.since(&first), None);
        let other = Buckets(vec![(0.5, 1), (f64::INFINITY, 1)]);
        assert_eq!(other.since(&first), None);
        assert_eq!(Buckets::parse(&format!("{STREAMS_OPEN} 3\n")), None);
    }

    #[test]
    fn a_window_without_events_reports_nothing() {
        let scrape = Buckets::parse(&scrape([10, 10, 10, 10])).unwrap();
        assert_eq!(
            ServerLateness::from_window(&scrape.since(&scrape).unwrap()),
            None
        );
    }

    #[test]
    fn a_tail_past_the_last_bound_is_infinite() {
        let window = Buckets(vec![(0.001, 1), (f64::INFINITY, 100)]);
        let lateness = ServerLateness::from_window(&window).unwrap();
        assert_eq!(lateness.p50_at_most_ms, Some(f64::INFINITY));
        assert_eq!(lateness.within_20ms_percent, None);
    }
}
