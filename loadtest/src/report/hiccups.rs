//! The load generator's hiccups ([`crate::measure::hiccup`]) as the summary shows them, and
//! the rule that warns when they could explain the lateness tail.
//!
//! The rule: a ticker wakes at moments that have nothing to do with the server, as events
//! arrive, and its histogram weighs each stall by its length, so its percentiles read like
//! lateness's: a hiccup p99 of 30 ms means that 1% of the time a task waiting to run on the
//! load generator waited 30 ms or more, and 1% of events were then measured at least that
//! late whatever the server did. The summary warns when the hiccup p99 reaches
//! [`WARN_SHARE`] of the lateness p99, or the hiccup p99.9 that share of the lateness p99.9:
//! then the load generator's own delays make up a large part of that percentile, which would
//! otherwise be blamed on the server. Hiccups of [`WARN_FLOOR_MS`] or less never warn: a
//! busy core's ordinary scheduling gives that much to any client (the minimal `sse-baseline`
//! saw a hiccup p99.9 of 10-15 ms at 5,000 streams on one core), and a warning on every
//! healthy run would teach its readers to skip it.

use crate::report::summary::{HiccupSummary, Percentiles};

/// The share of a lateness percentile that the same hiccup percentile must reach to warn.
pub const WARN_SHARE: f64 = 0.5;
/// Hiccups at or under this never warn (see the module doc).
pub const WARN_FLOOR_MS: f64 = 10.0;

/// Whether the hiccups `h` are large against `lateness` (see the module doc).
#[must_use]
pub fn large_against(h: &HiccupSummary, lateness: &Percentiles) -> bool {
    let large = |hiccup: f64, late: f64| hiccup > WARN_FLOOR_MS && hiccup >= WARN_SHARE * late;
    large(h.percentiles.p99_ms, lateness.p99_ms) || large(h.percentiles.p999_ms, lateness.p999_ms)
}

/// Summaries made up for tests, shared by this module's and the console's.
#[cfg(test)]
pub(crate) mod fixtures {
    use crate::report::summary::{HiccupSummary, Percentiles};

    /// Hiccups of one 1 ms ticker with these percentiles (max twice the p99.9).
    pub(crate) fn hiccups(p99_ms: f64, p999_ms: f64) -> HiccupSummary {
        HiccupSummary {
            tickers: 1,
            period_ms: 1.0,
            percentiles: Percentiles {
                count: 60_000,
                p99_ms,
                p999_ms,
                max_ms: p999_ms * 2.0,
                ..Percentiles::default()
            },
        }
    }

    /// Lateness with these percentiles.
    pub(crate) fn lateness(p99_ms: f64, p999_ms: f64) -> Percentiles {
        Percentiles {
            p99_ms,
            p999_ms,
            ..Percentiles::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::{hiccups, lateness};
    use super::*;

    #[test]
    fn hiccups_warn_when_they_make_up_half_a_lateness_percentile() {
        // A hyper-transport run whose own stalls were 60-230 ms: lateness p99 7, p99.9 128 ms.
        assert!(large_against(&hiccups(1.2, 90.0), &lateness(7.0, 128.0)));
        assert!(large_against(&hiccups(12.0, 20.0), &lateness(20.0, 300.0)));
        // A quiet generator against a slow server.
        assert!(!large_against(&hiccups(1.1, 1.8), &lateness(7.0, 128.0)));
        assert!(!large_against(&hiccups(3.0, 10.0), &lateness(50.0, 300.0)));
    }

    #[test]
    fn small_hiccups_never_warn() {
        // A CI-scale run with a fast server: the tail is ordinary scheduling.
        assert!(!large_against(&hiccups(2.3, 8.9), &lateness(2.3, 7.6)));
    }

    #[test]
    fn the_json_keys_sit_beside_the_percentiles() {
        let json = serde_json::to_value(hiccups(1.0, 2.0)).unwrap();
        for key in [
            "tickers",
            "period_ms",
            "count",
            "p99_ms",
            "p999_ms",
            "max_ms",
        ] {
            assert!(json.get(key).is_some(), "{key} in {json}");
        }
    }
}
