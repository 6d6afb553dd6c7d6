//! A run part: everything one load-generator process measured that adds losslessly, so
//! several processes (on one machine or several) give one [`Summary`]. Histograms are
//! added, never their percentiles; counters field by field; the timeline, the storm bins and
//! lateness per slot by time slot (the processes started together, `--start-at`); each
//! process's own memory and CPU is kept as a list, never averaged.
//!
//! A one-process run builds its summary through the same [`Part::summary`], so the two
//! paths cannot drift apart. The file form is [`crate::report::part_file`].

use std::time::Duration;

use anyhow::ensure;

use crate::measure::counters::Counters;
use crate::measure::hiccup::Hiccups;
use crate::measure::metrics::Histograms;
use crate::measure::slots::LatenessSlots;
use crate::measure::storm::Bins;
use crate::measure::timeline::{Sample, Timeline};
use crate::probe::aftermath::ServerAfterRun;
use crate::probe::procstat::FileLimit;
use crate::probe::server_lateness::ServerLateness;
use crate::report::summary::{
    HiccupSummary, Latencies, LatenessAgainst, LlmSummary, Processes, RequestSummary, Summary,
};

/// What one process measured (or several, added together).
#[derive(Debug, Clone)]
pub struct Part {
    /// The stream's URL (distinct targets joined with `, ` once parts are added).
    pub target: String,
    /// How the requests were made.
    pub request: RequestSummary,
    /// When the run started, seconds since the Unix epoch (the earliest of added parts).
    pub started_unix_secs: f64,
    /// True when the server ran inside the process.
    pub embedded: bool,
    /// Users (summed).
    pub users: usize,
    /// The schedule's interval, ms; parts must agree.
    pub interval_ms: u64,
    /// What lateness was measured against; parts must agree.
    pub lateness_against: LatenessAgainst,
    /// Wall time of the run, s (the longest of added parts): rates are events over it.
    pub elapsed_secs: f64,
    /// Events/s with every user's stream open (summed: the processes ran side by side);
    /// `None` when any part has none.
    pub steady_events_per_sec: Option<f64>,
    /// Most streams open at once. Exact for one process; for processes side by side, the
    /// most open together at one timeline sample, or the busiest process's own peak if that
    /// is more: a lower bound, since the processes' peaks need not coincide.
    pub peak_open_streams: i64,
    /// The server's own lateness (the first part that read it: every process reads the
    /// same server).
    pub server_lateness: Option<ServerLateness>,
    /// The server after the run (the first part that read it).
    pub server_after: Option<ServerAfterRun>,
    /// The open-files limit (the lowest of added parts).
    pub file_limit: FileLimit,
    /// Every counter.
    pub counters: Counters,
    /// Every histogram, full precision.
    pub histograms: Histograms,
    /// The load generator's own hiccups (tickers summed, histograms added).
    pub hiccups: Option<Hiccups>,
    /// Each process's memory and CPU, one entry per process.
    pub processes: Vec<Processes>,
    /// Live figures over the run (added sample by sample).
    pub timeline: Timeline,
    /// Connection attempts and opens in fine time bins.
    pub storm: Bins,
    /// Lateness per time slot.
    pub lateness_slots: LatenessSlots,
    /// `--llm`'s settings, when the run was one (its figures are in the histograms and
    /// counters).
    pub llm: Option<LlmSettings>,
}

/// What an `--llm` run was told, shown beside its figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LlmSettings {
    /// The pause between a user's requests, ms.
    pub think_ms: u64,
    /// The longest a request may take, s.
    pub request_timeout_secs: u64,
}

impl Part {
    /// Adds `other` (another process of the same run) into this part.
    ///
    /// # Errors
    /// When the two measured different things: another interval or lateness mode, whose
    /// histograms cannot mean the same.
    pub fn add(&mut self, other: &Self) -> anyhow::Result<()> {
        ensure!(
            self.interval_ms == other.interval_ms,
            "parts of one run must share the interval: {} ms and {} ms",
            self.interval_ms,
            other.interval_ms
        );
        ensure!(
            self.llm == other.llm,
            "parts of one run must share --llm and its settings"
        );
        ensure!(
            self.lateness_against == other.lateness_against,
            "parts of one run must measure lateness the same way: {} and {}",
            self.lateness_against.description,
            other.lateness_against.description
        );
        for target in other.target.split(", ") {
            if !self.target.split(", ").any(|t| t == target) {
                self.target = format!("{}, {target}", self.target);
            }
        }
        self.started_unix_secs = self.started_unix_secs.min(other.started_unix_secs);
        self.embedded |= other.embedded;
        self.users += other.users;
        self.elapsed_secs = self.elapsed_secs.max(other.elapsed_secs);
        self.steady_events_per_sec = self
            .steady_events_per_sec
            .zip(other.steady_events_per_sec)
            .map(|(a, b)| a + b);
        if self.server_lateness.is_none() {
            self.server_lateness.clone_from(&other.server_lateness);
        }
        if self.server_after.is_none() {
            self.server_after.clone_from(&other.server_after);
        }
        self.file_limit = FileLimit {
            soft: self.file_limit.soft.min(other.file_limit.soft),
            hard: self.file_limit.hard.min(other.file_limit.hard),
        };
        self.counters.add(&other.counters);
        self.histograms.add(&other.histograms);
        self.hiccups = match (self.hiccups.take(), &other.hiccups) {
            (Some(mut mine), Some(theirs)) => {
                mine.histogram
                    .add(&theirs.histogram)
                    .map_err(|e| anyhow::anyhow!("adding hiccup histograms: {e:?}"))?;
                mine.tickers += theirs.tickers;
                Some(mine)
            }
            (mine, theirs) => mine.or_else(|| theirs.clone()),
        };
        self.processes.extend_from_slice(&other.processes);
        self.timeline = add_timelines(&self.timeline, &other.timeline);
        // Not the sum of the peaks: one process may peak while another reconnects.
        self.peak_open_streams = self
            .timeline
            .samples
            .iter()
            .map(|sample| sample.open_streams)
            .fold(
                self.peak_open_streams.max(other.peak_open_streams),
                i64::max,
            );
        self.storm.add(&other.storm);
        self.lateness_slots.add(&other.lateness_slots);
        Ok(())
    }

    /// Every part added into the first.
    ///
    /// # Errors
    /// When there is no part, or two cannot be added (see [`Part::add`]).
    pub fn sum(parts: impl IntoIterator<Item = Self>) -> anyhow::Result<Self> {
        let mut parts = parts.into_iter();
        let mut sum = parts
            .next()
            .ok_or_else(|| anyhow::anyhow!("no part to add"))?;
        for part in parts {
            sum.add(&part)?;
        }
        Ok(sum)
    }

    /// The run's summary: percentiles from the histograms, rates from the counters over the
    /// elapsed time. The one place a [`Summary`] is made from measurements.
    #[must_use]
    pub fn summary(&self) -> Summary {
        let counters = self.counters.clone();
        // With several processes the summary's own figures are the busiest one's, the one
        // a saturation gate must judge; each is listed.
        let busiest = self
            .processes
            .iter()
            .copied()
            .max_by(|a, b| {
                let load = |p: &Processes| {
                    p.this_process
                        .cpu_percent_steady
                        .unwrap_or(p.this_process.cpu_percent)
                };
                load(a).total_cmp(&load(b))
            })
            .unwrap_or_default();
        Summary {
            target: self.target.clone(),
            request: self.request.clone(),
            started_unix_secs: self.started_unix_secs,
            embedded: self.embedded,
            users: self.users,
            interval_ms: self.interval_ms,
            lateness_against: self.lateness_against.clone(),
            offered_events_per_sec: match self.interval_ms {
                0 => 0.0,
                ms => self.users as f64 * 1000.0 / ms as f64,
            },
            elapsed_secs: self.elapsed_secs,
            events_per_sec: counters.events as f64 / self.elapsed_secs.max(1e-9),
            steady_events_per_sec: self.steady_events_per_sec,
            peak_open_streams: self.peak_open_streams,
            server_lateness: self.server_lateness.clone(),
            server_after: self.server_after.clone(),
            file_limit: self.file_limit,
            latencies: Latencies::of(&self.histograms),
            load_generator_hiccups: self.hiccups.as_ref().map(HiccupSummary::of),
            counters,
            processes: busiest,
            timeline: self.timeline.clone(),
            storm: self.storm.shape(),
            llm: self.llm.map(|settings| {
                LlmSummary::of(
                    &self.histograms.llm,
                    &self.counters,
                    self.elapsed_secs,
                    settings.think_ms,
                    settings.request_timeout_secs,
                )
            }),
            histograms: self.histograms.clone(),
            load_generators: if self.processes.len() > 1 {
                self.processes.clone()
            } else {
                Vec::new()
            },
            lateness_slots: self.lateness_slots.clone(),
        }
    }
}

/// Two timelines of processes that started together, added sample by sample: counts and
/// open streams summed, the load generators' RSS summed, the server's (the same server
/// read by each) the larger. The finer timeline is thinned to the coarser period first, as
/// the timeline itself thins; a shorter one holds its last figures to the end.
#[must_use]
pub fn add_timelines(a: &Timeline, b: &Timeline) -> Timeline {
    if a.samples.is_empty() {
        return b.clone();
    }
    if b.samples.is_empty() {
        return a.clone();
    }
    let period = a.period_ms.max(b.period_ms);
    let thin = |t: &Timeline| -> Vec<Sample> {
        let stride = usize::try_from(period / t.period_ms.max(1))
            .unwrap_or(1)
            .max(1);
        t.samples.iter().step_by(stride).copied().collect()
    };
    let (a, b) = (thin(a), thin(b));
    let mut sum = Timeline::new(period);
    for i in 0..a.len().max(b.len()) {
        let x = a[i.min(a.len() - 1)];
        let y = b[i.min(b.len() - 1)];
        let add = |p: Option<f64>, q: Option<f64>| match (p, q) {
            (Some(p), Some(q)) => Some(p + q),
            (p, q) => p.or(q),
        };
        sum.push(Sample {
            elapsed_secs: a
                .get(i)
                .or(b.get(i))
                .map_or(x.elapsed_secs, |s| s.elapsed_secs),
            open_streams: x.open_streams + y.open_streams,
            events: x.events + y.events,
            errors: x.errors + y.errors,
            reconnects: x.reconnects + y.reconnects,
            rss_mib: add(x.rss_mib, y.rss_mib),
            server_rss_mib: match (x.server_rss_mib, y.server_rss_mib) {
                (Some(p), Some(q)) => Some(p.max(q)),
                (p, q) => p.or(q),
            },
        });
    }
    sum
}

/// The hiccups of one process, as the part keeps them.
#[must_use]
pub fn hiccups(
    tickers: usize,
    period: Duration,
    histogram: hdrhistogram::Histogram<u64>,
) -> Hiccups {
    Hiccups {
        tickers,
        period,
        histogram,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::measure::metrics::new_histogram;
    use crate::measure::slots::slot_histogram;
    use crate::profile::LatenessMode;
    use crate::report::summary::ProcessUsage;

    /// A part whose lateness holds `values` (µs), its counters `n` times 1, 2, 3… and a few
    /// by-kind entries, its other figures small and distinct.
    pub(crate) fn synthetic(values: std::ops::RangeInclusive<u64>, n: u64) -> Part {
        let mut histograms = Histograms::default();
        let mut counters = Counters::numbered();
        for name in Counters::NAMES {
            *counters.get_mut(name).unwrap() *= n;
        }
        counters.status_codes.insert(503, n);
        counters.count_error("connection reset");
        counters.count_read_error("io: unexpected end of file");
        counters.count_event_name("update");
        let mut slot = slot_histogram();
        for v in values {
            histograms.lateness.record(v).unwrap();
            histograms.open.record(v * 2).unwrap();
            slot.record(v).unwrap();
        }
        let mut hiccup = new_histogram();
        hiccup.record(1_000 * n).unwrap();
        let mut timeline = Timeline::new(500);
        for i in 0..4u32 {
            timeline.push(Sample {
                elapsed_secs: f64::from(i) * 0.5,
                open_streams: i64::from(i) * 10,
                events: u64::from(i) * 100 * n,
                errors: 0,
                reconnects: u64::from(i),
                rss_mib: Some(10.0),
                server_rss_mib: None,
            });
        }
        let mut storm = Bins {
            bin_ms: 10,
            attempts: vec![0; 300],
            opens: vec![0; 300],
        };
        storm.attempts[100] = 5;
        storm.opens[101] = 5;
        let mut lateness_slots = LatenessSlots::new(500);
        lateness_slots.record(0.7, &slot).unwrap();
        Part {
            target: "http://127.0.0.1:1/digits".into(),
            request: RequestSummary::default(),
            started_unix_secs: 1_700_000_000.0 + n as f64,
            embedded: false,
            users: 20,
            interval_ms: 100,
            lateness_against: LatenessAgainst::of(&LatenessMode::Schedule(Duration::from_millis(
                100,
            ))),
            elapsed_secs: 3.0 + n as f64 / 10.0,
            steady_events_per_sec: Some(200.0),
            peak_open_streams: 30,
            server_lateness: None,
            server_after: None,
            file_limit: FileLimit {
                soft: 20_000,
                hard: 20_000,
            },
            counters,
            histograms,
            hiccups: Some(hiccups(2, Duration::from_millis(1), hiccup)),
            processes: vec![Processes {
                this_process: ProcessUsage {
                    cpu_percent: 10.0 * n as f64,
                    ..ProcessUsage::default()
                },
                cores: 2,
                ..Processes::default()
            }],
            timeline,
            storm,
            lateness_slots,
            llm: None,
        }
    }

    #[test]
    fn the_peak_of_processes_side_by_side_is_what_was_open_together() {
        let with_opens = |opens: [i64; 4]| {
            let mut part = synthetic(1..=10, 1);
            part.timeline = Timeline::new(500);
            for (i, open) in opens.into_iter().enumerate() {
                part.timeline.push(Sample {
                    elapsed_secs: i as f64 * 0.5,
                    open_streams: open,
                    ..Sample::default()
                });
            }
            part.peak_open_streams = opens.into_iter().max().unwrap();
            part
        };
        // Each process peaks at 20, at different moments: never 40 at once.
        let merged = Part::sum([with_opens([0, 10, 20, 5]), with_opens([0, 20, 5, 5])]).unwrap();
        assert_eq!(merged.peak_open_streams, 30);
        let merged = Part::sum([with_opens([0, 2, 1, 0]), with_opens([0, 0, 1, 0])]).unwrap();
        assert_eq!(merged.peak_open_streams, 2);
        // A peak between samples: the busiest process's own figure still counts.
        let mut busy = with_opens([0, 2, 1, 0]);
        busy.peak_open_streams = 7;
        let merged = Part::sum([busy, with_opens([0, 0, 1, 0])]).unwrap();
        assert_eq!(merged.peak_open_streams, 7);
    }

    #[test]
    fn added_parts_count_the_sums_and_read_percentiles_of_all_values() {
        let a = synthetic(1..=1000, 1);
        let b = synthetic(1001..=2000, 2);
        let merged = Part::sum([a.clone(), b.clone()]).unwrap().summary();

        let mut expected = a.counters.clone();
        expected.add(&b.counters);
        assert_eq!(merged.counters, expected);
        for name in Counters::NAMES {
            let (x, y) = (
                a.counters.clone().get_mut(name).copied(),
                b.counters.clone().get_mut(name).copied(),
            );
            assert_eq!(
                merged.counters.clone().get_mut(name).copied(),
                Some(x.unwrap() + y.unwrap()),
                "{name}"
            );
        }
        assert_eq!(merged.counters.status_codes.get(&503), Some(&3));
        assert_eq!(
            merged.counters.other_errors.get("connection reset"),
            Some(&2)
        );

        // One histogram holding every value: the merged percentiles are its, exactly.
        let mut all = new_histogram();
        for v in 1..=2000 {
            all.record(v).unwrap();
        }
        let p = merged.latencies.lateness;
        assert_eq!(p.count, 2000);
        assert_eq!(p, crate::report::summary::Percentiles::of(&all));
        assert_eq!(p.p50_ms, all.value_at_quantile(0.5) as f64 / 1000.0);
        assert!((p.p50_ms - 1.0).abs() < 0.002, "{p:?}");
        assert!((p.p99_ms - 1.98).abs() < 0.002, "{p:?}");
        // Averaging the parts' p99s (about 0.99 and 1.99 ms) would give about 1.49.
        assert!(p.p99_ms > 1.9);

        assert_eq!(merged.users, 40);
        // The timelines' last samples: 30 open in each process at once.
        assert_eq!(merged.peak_open_streams, 60);
        assert!((merged.elapsed_secs - 3.2).abs() < 1e-9);
        assert!((merged.offered_events_per_sec - 400.0).abs() < 1e-9);
        let events = (a.counters.events + b.counters.events) as f64;
        assert!((merged.events_per_sec - events / 3.2).abs() < 1e-9);
        assert_eq!(merged.steady_events_per_sec, Some(400.0));
        assert_eq!(merged.load_generators.len(), 2);
        // The busiest process stands for the processes.
        assert!((merged.processes.this_process.cpu_percent - 20.0).abs() < 1e-9);
        let hiccups = merged.load_generator_hiccups.unwrap();
        assert_eq!((hiccups.tickers, hiccups.percentiles.count), (4, 2));
        assert_eq!(merged.timeline.samples.len(), 4);
        assert_eq!(merged.timeline.samples[3].events, 300 + 600);
        assert_eq!(merged.timeline.samples[3].open_streams, 60);
        assert_eq!(merged.storm.attempts.total, 10);
        assert_eq!(merged.storm.attempts.bin.count, 10);
        assert_eq!(merged.lateness_slots.slots[1].len(), 2000);
    }

    #[test]
    fn parts_of_different_schedules_are_not_added() {
        let a = synthetic(1..=10, 1);
        let mut b = synthetic(1..=10, 1);
        b.interval_ms = 50;
        let err = Part::sum([a, b]).unwrap_err().to_string();
        assert!(err.contains("interval"), "{err}");
    }

    #[test]
    fn a_shorter_timeline_holds_its_last_figures() {
        let mut a = Timeline::new(500);
        let mut b = Timeline::new(1000);
        for i in 0..6u32 {
            a.push(Sample {
                elapsed_secs: f64::from(i) * 0.5,
                events: u64::from(i),
                ..Sample::default()
            });
        }
        b.push(Sample {
            events: 100,
            ..Sample::default()
        });
        let sum = add_timelines(&a, &b);
        assert_eq!(sum.period_ms, 1000);
        let events: Vec<u64> = sum.samples.iter().map(|s| s.events).collect();
        assert_eq!(events, vec![100, 102, 104]);
    }
}
