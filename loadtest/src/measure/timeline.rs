//! The run over time: a small sample of the live figures taken at a fixed period by the
//! monitor, for the HTML report's plots and the JSON summary (`timeline`).
//!
//! Bounded: at most [`MAX_SAMPLES`] are kept. When the buffer is full, every other sample
//! is dropped and the period doubles, so a long run keeps an even, coarser picture of the
//! whole run rather than only its start or its end.

use serde::{Deserialize, Serialize};

/// The most samples kept (at the 500 ms base period, 10 minutes before the first halving).
pub const MAX_SAMPLES: usize = 1200;

/// The live figures at one moment of the run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Seconds since the run started.
    pub elapsed_secs: f64,
    /// Streams open at that moment (connected users).
    pub open_streams: i64,
    /// Events received so far.
    pub events: u64,
    /// Failed attempts, read errors and idle timeouts so far.
    pub errors: u64,
    /// Reconnection attempts so far.
    pub reconnects: u64,
    /// This process's RSS, MiB (the server's too when it is embedded); `None` if unread.
    pub rss_mib: Option<f64>,
    /// The `--server-pid` process's RSS, MiB.
    pub server_rss_mib: Option<f64>,
}

/// Samples at an even period, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Timeline {
    /// The period between kept samples, ms (the base period, doubled at each halving).
    pub period_ms: u64,
    /// The samples, oldest first.
    pub samples: Vec<Sample>,
    /// Samples offered since the last halving: only every `stride`-th is kept.
    #[serde(skip)]
    offered: u64,
    /// Keep one offered sample in this many.
    #[serde(skip)]
    stride: u64,
}

impl Default for Timeline {
    fn default() -> Self {
        Self::new(0)
    }
}

impl Timeline {
    /// An empty timeline to be fed every `period_ms`.
    #[must_use]
    pub fn new(period_ms: u64) -> Self {
        Self {
            period_ms,
            samples: Vec::new(),
            offered: 0,
            stride: 1,
        }
    }

    /// Offers the sample of this period; keeps it unless the timeline has been thinned.
    pub fn push(&mut self, sample: Sample) {
        let keep = self.offered % self.stride == 0;
        self.offered += 1;
        if !keep {
            return;
        }
        if self.samples.len() >= MAX_SAMPLES {
            self.halve();
        }
        self.samples.push(sample);
    }

    /// Drops every other sample (keeping the first) and doubles the period.
    fn halve(&mut self) {
        let mut i = 0;
        self.samples.retain(|_| {
            i += 1;
            i % 2 == 1
        });
        self.stride *= 2;
        self.period_ms *= 2;
        // The sample being pushed now is the first of the new, wider period.
        self.offered = 1;
    }

    /// Events per second between consecutive samples, at the later one's time:
    /// `(elapsed_secs, rate)`. The last window is left out: the last sample is taken when
    /// the run ends, as every user flushes its batched live counts at once, so that window
    /// shows a spike that never happened. A window shorter than half the period is left out
    /// too: a rate over a sliver of time is noise.
    #[must_use]
    pub fn event_rates(&self) -> Vec<(f64, f64)> {
        let shortest = self.period_ms as f64 / 2000.0;
        let before_the_end = &self.samples[..self.samples.len().saturating_sub(1)];
        before_the_end
            .windows(2)
            .filter_map(|w| {
                let dt = w[1].elapsed_secs - w[0].elapsed_secs;
                (dt > 0.0 && dt >= shortest).then(|| {
                    (
                        w[1].elapsed_secs,
                        w[1].events.saturating_sub(w[0].events) as f64 / dt,
                    )
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: f64, events: u64) -> Sample {
        Sample {
            elapsed_secs: secs,
            events,
            ..Sample::default()
        }
    }

    #[test]
    fn rates_are_per_second_between_samples() {
        let mut t = Timeline::new(500);
        t.push(at(0.5, 0));
        t.push(at(1.0, 100));
        t.push(at(1.5, 400));
        t.push(at(1.7, 450));
        // The run ends: every user flushes its batched counts into this last sample.
        t.push(at(2.2, 900));
        // 1.7 is a window under half a period; the last one is the end-of-run flush.
        assert_eq!(t.event_rates(), vec![(1.0, 200.0), (1.5, 600.0)]);
    }

    #[test]
    fn a_long_run_is_thinned_evenly_and_stays_bounded() {
        let mut t = Timeline::new(500);
        let n = MAX_SAMPLES * 5;
        for i in 0..n {
            t.push(at(i as f64 * 0.5, i as u64));
        }
        assert!(t.samples.len() <= MAX_SAMPLES, "{}", t.samples.len());
        assert!(t.samples.len() > MAX_SAMPLES / 2, "{}", t.samples.len());
        // Even spacing at the new period, from the first sample on.
        let step = t.period_ms as f64 / 1000.0;
        assert_eq!(t.period_ms, 500 * 8);
        assert_eq!(t.samples[0].elapsed_secs, 0.0);
        for w in t.samples.windows(2) {
            assert!((w[1].elapsed_secs - w[0].elapsed_secs - step).abs() < 1e-9);
        }
        // The end of the run is still there.
        let last = t.samples.last().unwrap().elapsed_secs;
        assert!(last >= (n as f64 * 0.5) - step, "{last}");
    }

    #[test]
    fn a_short_run_keeps_every_sample() {
        let mut t = Timeline::new(500);
        for i in 0..10 {
            t.push(at(f64::from(i) * 0.5, 0));
        }
        assert_eq!(t.samples.len(), 10);
        assert_eq!(t.period_ms, 500);
    }
}
