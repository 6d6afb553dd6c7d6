//! The result of a run: counters, histogram percentiles and process figures, as one serde
//! value (the JSON summary, and what the gate checks). The counters' keys are those of
//! [`crate::report::counters::COUNTERS`].

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::measure::counters::Counters;
use crate::measure::metrics::{Histograms, LlmHistograms};
use crate::measure::slots::LatenessSlots;
use crate::measure::storm::StormShape;
use crate::measure::timeline::Timeline;
use crate::probe::aftermath::ServerAfterRun;
use crate::probe::procstat::{FileLimit, ProcSample};
use crate::probe::server_lateness::ServerLateness;
use crate::profile::LatenessMode;

/// Percentiles of one histogram, in milliseconds (µs resolution).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Percentiles {
    /// Samples recorded.
    pub count: u64,
    /// Smallest sample.
    pub min_ms: f64,
    /// Mean.
    pub mean_ms: f64,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Largest sample.
    pub max_ms: f64,
}

impl Percentiles {
    /// The percentiles of `h` (all zero when it is empty).
    #[must_use]
    pub fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Self {
            count: h.len(),
            min_ms: ms(h.min()),
            mean_ms: h.mean() / 1000.0,
            p50_ms: ms(h.value_at_quantile(0.50)),
            p90_ms: ms(h.value_at_quantile(0.90)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
        }
    }
}

/// Percentiles of a rate, in tokens per second. For a rate the low end is the bad one, so
/// `p1` and `p10` stand beside the median.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct RatePercentiles {
    /// Samples recorded.
    pub count: u64,
    /// Smallest sample.
    pub min: f64,
    /// 1st percentile.
    pub p1: f64,
    /// 10th percentile.
    pub p10: f64,
    /// Median.
    pub p50: f64,
    /// Mean.
    pub mean: f64,
    /// Largest sample.
    pub max: f64,
}

impl RatePercentiles {
    /// The percentiles of `h`, which holds thousandths (all zero when it is empty).
    #[must_use]
    pub fn of_milli(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        let unit = |v: u64| v as f64 / 1000.0;
        Self {
            count: h.len(),
            min: unit(h.min()),
            p1: unit(h.value_at_quantile(0.01)),
            p10: unit(h.value_at_quantile(0.10)),
            p50: unit(h.value_at_quantile(0.50)),
            mean: h.mean() / 1000.0,
            max: unit(h.max()),
        }
    }
}

/// `--llm`: the completions' figures (the JSON summary's `llm`). Latencies are over
/// completed requests; the token figures only over those whose stream reported usage, and
/// `None` when none did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct LlmSummary {
    /// The pause between a user's requests, ms.
    pub think_ms: u64,
    /// The limit on a whole request, s.
    pub request_timeout_secs: u64,
    /// Completed requests per second of the run's elapsed time.
    pub requests_per_sec: f64,
    /// The output tokens of completed requests (from their usage) per second of the run's
    /// elapsed time; `None` when no stream reported usage.
    pub output_tokens_per_sec: Option<f64>,
    /// Request sent to response headers (time to first byte).
    pub ttfb: Percentiles,
    /// Request sent to the first event with content (time to first token).
    pub ttft: Percentiles,
    /// Between consecutive content events of a request.
    pub inter_event: Percentiles,
    /// Per request, the time per output token after the first content event: (last content
    /// event − first) / the tokens after the first event (TPOT); `None` without usage.
    pub itl: Option<Percentiles>,
    /// Request sent to the end of its stream.
    pub e2e: Percentiles,
    /// Per request, completion tokens / end-to-end time; `None` without usage.
    pub request_output_tokens_per_sec: Option<RatePercentiles>,
}

impl LlmSummary {
    /// The figures of `h` and `c` over `elapsed` seconds, with the run's settings.
    #[must_use]
    pub fn of(
        h: &LlmHistograms,
        c: &Counters,
        elapsed_secs: f64,
        think_ms: u64,
        request_timeout_secs: u64,
    ) -> Self {
        let per_sec = |n: u64| n as f64 / elapsed_secs.max(1e-9);
        let with_usage = c.llm_completed > c.llm_without_usage;
        Self {
            think_ms,
            request_timeout_secs,
            requests_per_sec: per_sec(c.llm_completed),
            output_tokens_per_sec: with_usage.then(|| per_sec(c.llm_output_tokens)),
            ttfb: Percentiles::of(&h.ttfb),
            ttft: Percentiles::of(&h.ttft),
            inter_event: Percentiles::of(&h.inter_event),
            itl: (!h.itl.is_empty()).then(|| Percentiles::of(&h.itl)),
            e2e: Percentiles::of(&h.e2e),
            request_output_tokens_per_sec: (!h.tokens_per_sec_milli.is_empty())
                .then(|| RatePercentiles::of_milli(&h.tokens_per_sec_milli)),
        }
    }
}

/// The load generator's hiccups in the JSON summary (`load_generator_hiccups`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct HiccupSummary {
    /// Tickers that ran (one per worker thread of the load test's runtime).
    pub tickers: usize,
    /// Each ticker's period, ms.
    pub period_ms: f64,
    /// How late the tickers woke, ms; `count` includes the wake-ups stalls swallowed.
    #[serde(flatten)]
    pub percentiles: Percentiles,
}

impl HiccupSummary {
    /// The summary of what the tickers recorded.
    #[must_use]
    pub fn of(hiccups: &crate::measure::hiccup::Hiccups) -> Self {
        Self {
            tickers: hiccups.tickers,
            period_ms: hiccups.period.as_secs_f64() * 1000.0,
            percentiles: Percentiles::of(&hiccups.histogram),
        }
    }
}

/// Percentiles of every histogram of the run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Latencies {
    /// Request to response headers.
    pub open: Percentiles,
    /// Response headers to the connection's first event.
    pub first_event: Percentiles,
    /// Arrival minus scheduled time, per event.
    pub lateness: Percentiles,
    /// The same, once every user had a stream open.
    pub lateness_steady: Percentiles,
    /// End of a connection to the first event of the next.
    pub reconnect: Percentiles,
    /// The delay planned before each reconnection: the server's hint or the default.
    pub retry_hint: Percentiles,
    /// Reconnection wait waited minus the delay planned from the hint.
    pub retry_overshoot: Percentiles,
}

impl Latencies {
    /// Percentiles of each of `h`.
    #[must_use]
    pub fn of(h: &Histograms) -> Self {
        Self {
            open: Percentiles::of(&h.open),
            first_event: Percentiles::of(&h.first_event),
            lateness: Percentiles::of(&h.lateness),
            lateness_steady: Percentiles::of(&h.lateness_steady),
            reconnect: Percentiles::of(&h.reconnect),
            retry_hint: Percentiles::of(&h.retry_hint),
            retry_overshoot: Percentiles::of(&h.retry_overshoot),
        }
    }
}

/// Memory and CPU of one process over the run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcessUsage {
    /// RSS before the users started, MiB.
    pub rss_before_mib: f64,
    /// Highest RSS seen (sampled every 500 ms), MiB.
    pub rss_peak_mib: f64,
    /// RSS after the run, once streams had closed, MiB.
    pub rss_after_mib: f64,
    /// (peak - before) / peak open streams, KiB.
    pub rss_per_connection_kib: f64,
    /// CPU seconds (user + system) used during the run.
    pub cpu_secs: f64,
    /// `cpu_secs` over the run's wall time, percent of one core.
    pub cpu_percent: f64,
    /// `cpu_secs` per event received, microseconds.
    pub cpu_us_per_event: f64,
    /// CPU while every user had a stream open (from the first to the last 200 ms check that
    /// found them all open), percent of one core: near the cores the process may use, it was
    /// saturated and its figures include its own queueing. `None` when that window was
    /// shorter than a second.
    pub cpu_percent_steady: Option<f64>,
}

impl ProcessUsage {
    /// Usage from three samples, the connections held at the peak, the events received and
    /// the wall time.
    #[must_use]
    pub fn from_samples(
        before: ProcSample,
        peak_rss: u64,
        after: ProcSample,
        cpu: Duration,
        connections: u64,
        events: u64,
        wall: Duration,
    ) -> Self {
        const MIB: f64 = 1024.0 * 1024.0;
        let grown = peak_rss.saturating_sub(before.rss_bytes) as f64;
        let cpu_secs = cpu.as_secs_f64();
        Self {
            rss_before_mib: before.rss_bytes as f64 / MIB,
            rss_peak_mib: peak_rss as f64 / MIB,
            rss_after_mib: after.rss_bytes as f64 / MIB,
            rss_per_connection_kib: if connections == 0 {
                0.0
            } else {
                grown / 1024.0 / connections as f64
            },
            cpu_secs,
            cpu_percent: if wall.is_zero() {
                0.0
            } else {
                100.0 * cpu_secs / wall.as_secs_f64()
            },
            cpu_us_per_event: if events == 0 {
                0.0
            } else {
                cpu_secs * 1e6 / events as f64
            },
            cpu_percent_steady: None,
        }
    }
}

/// Processes measured during the run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Processes {
    /// This process: the load test, and the server too when it is embedded.
    pub this_process: ProcessUsage,
    /// The external server given by `--server-pid`.
    pub server: Option<ProcessUsage>,
    /// Embedded only: CPU seconds of the server's threads (named `actix*`) during the run;
    /// the rest of `this_process.cpu_secs` is the load generator's.
    pub embedded_server_cpu_secs: Option<f64>,
    /// CPU cores this process may run on (its affinity mask).
    pub cores: usize,
}

impl Processes {
    /// Share of its cores above which a process counts as saturated.
    pub const SATURATED_PERCENT_OF_CORES: f64 = 90.0;

    /// This process's CPU while every stream was open, when it was saturated: its lateness
    /// figures then include its own queueing, not only the server's.
    #[must_use]
    pub fn saturated_percent_steady(&self) -> Option<f64> {
        self.this_process
            .cpu_percent_steady
            .filter(|&percent| percent >= Self::SATURATED_PERCENT_OF_CORES * self.cores as f64)
    }
}

/// What lateness was measured against (see [`LatenessMode`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LatenessAgainst {
    /// `schedule`, `timestamp` or `gaps` (no lateness: inter-arrival gaps only).
    pub mode: &'static str,
    /// The same in words, as the console prints it.
    pub description: String,
}

impl LatenessAgainst {
    /// The report of `mode`.
    #[must_use]
    pub fn of(mode: &LatenessMode) -> Self {
        Self {
            mode: mode.key(),
            description: mode.to_string(),
        }
    }

    /// True when no event got a lateness (gaps only).
    #[must_use]
    pub fn not_measured(&self) -> bool {
        self.mode == LatenessMode::Gaps.key()
    }
}

/// How the requests were made, as the summaries show it: header names only, never a value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestSummary {
    /// `GET` or `POST`.
    pub method: String,
    /// The user's headers, each as `Name: <redacted>`.
    pub request_headers: Vec<String>,
    /// The body in a few words (`none`, `7 bytes`, `3 JSON lines in turn`), never its
    /// content.
    pub request_body: String,
    /// `HTTP/1.1` or `HTTP/2`.
    pub http_version: String,
    /// True when TLS certificates were not verified (`--insecure`): a run against a server
    /// that may not be the one meant.
    pub insecure_tls: bool,
}

impl RequestSummary {
    /// `POST HTTP/2 | body 3 JSON lines in turn | headers Authorization: <redacted>`: how
    /// the requests were made, header names only.
    #[must_use]
    pub fn describe(&self) -> String {
        let mut line = format!("{} {}", self.method, self.http_version);
        if self.request_body != "none" {
            line.push_str(&format!(" | body {}", self.request_body));
        }
        if !self.request_headers.is_empty() {
            line.push_str(&format!(" | headers {}", self.request_headers.join(", ")));
        }
        line
    }
}

impl Default for RequestSummary {
    fn default() -> Self {
        Self {
            method: "GET".into(),
            request_headers: Vec::new(),
            request_body: "none".into(),
            http_version: "HTTP/1.1".into(),
            insecure_tls: false,
        }
    }
}

/// Everything a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// The stream's URL.
    pub target: String,
    /// How the requests were made (flattened into the JSON summary's top level).
    #[serde(flatten)]
    pub request: RequestSummary,
    /// When the run started, seconds since the Unix epoch.
    pub started_unix_secs: f64,
    /// True when the server ran inside this process.
    pub embedded: bool,
    /// Goose users (one event source each).
    pub users: usize,
    /// The schedule's interval, ms (0 when lateness is not measured against a schedule).
    pub interval_ms: u64,
    /// What lateness was measured against.
    pub lateness_against: LatenessAgainst,
    /// users x events per second per user.
    pub offered_events_per_sec: f64,
    /// Wall time from the first user's start to the end of the run, s.
    pub elapsed_secs: f64,
    /// Events received per second of `elapsed_secs`.
    pub events_per_sec: f64,
    /// Events received per second while every user had a stream open (at least a second of
    /// it), from the live counts; `None` when that never lasted a second.
    pub steady_events_per_sec: Option<f64>,
    /// Most streams open at once, read every 200 ms (processes side by side: what was open
    /// together at one timeline sample, see [`crate::report::part::Part`]).
    pub peak_open_streams: i64,
    /// How late the server itself sent events while every stream was open, from its
    /// [`EVENT_LATENESS`](sse_digits::telemetry::names::EVENT_LATENESS) histogram; `None`
    /// for a server without it.
    pub server_lateness: Option<ServerLateness>,
    /// The server after the run: open streams and memory against its level before
    /// (embedded, or an external server with `/metrics`).
    pub server_after: Option<ServerAfterRun>,
    /// The open-files limit in force.
    pub file_limit: FileLimit,
    /// Every counter.
    pub counters: Counters,
    /// Every histogram's percentiles.
    pub latencies: Latencies,
    /// How late the load generator's own tickers woke (see [`crate::measure::hiccup`]);
    /// `None` when they did not run.
    pub load_generator_hiccups: Option<HiccupSummary>,
    /// Memory and CPU.
    pub processes: Processes,
    /// Open streams, events, errors, reconnects and RSS over the run (see [`Timeline`]).
    pub timeline: Timeline,
    /// The busiest 10 ms, 100 ms and second of connection attempts and opens.
    pub storm: StormShape,
    /// `--llm`: the completions' figures; absent without `--llm`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub llm: Option<LlmSummary>,
    /// The merged histograms, for the percentile and interval-log files.
    #[serde(skip)]
    pub histograms: Histograms,
    /// Each load-generator process's own memory and CPU when the run was made of several
    /// (`--processes`, `loadtest merge`), never averaged; `processes` is then the busiest
    /// one's. Empty for a run of one process.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub load_generators: Vec<Processes>,
    /// Lateness per time slot of the run, for its p99 over time.
    #[serde(skip)]
    pub lateness_slots: LatenessSlots,
}

impl Summary {
    /// True when nothing was lost, duplicated, out of order or malformed, no connection
    /// failed or broke, and (`--llm`) no request failed in its stream.
    #[must_use]
    pub fn is_clean(&self) -> bool {
        let c = &self.counters;
        c.llm_failed() == 0
            && c.lost == 0
            && c.duplicated == 0
            && c.out_of_order == 0
            && c.malformed == 0
            && c.failed() == 0
            && c.read_errors == 0
            && c.idle_timeouts == 0
            && c.event_too_large == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::metrics::{new_histogram, record};

    #[test]
    fn a_process_counts_as_saturated_near_all_its_cores() {
        let with_steady = |percent: Option<f64>, cores: usize| Processes {
            this_process: ProcessUsage {
                cpu_percent_steady: percent,
                ..ProcessUsage::default()
            },
            server: None,
            embedded_server_cpu_secs: None,
            cores,
        };
        assert_eq!(
            with_steady(Some(97.0), 1).saturated_percent_steady(),
            Some(97.0)
        );
        assert_eq!(with_steady(Some(89.0), 1).saturated_percent_steady(), None);
        // Two cores: 150% leaves half a core free.
        assert_eq!(with_steady(Some(150.0), 2).saturated_percent_steady(), None);
        assert_eq!(
            with_steady(Some(185.0), 2).saturated_percent_steady(),
            Some(185.0)
        );
        assert_eq!(with_steady(None, 1).saturated_percent_steady(), None);
    }

    #[test]
    fn percentiles_are_in_milliseconds() {
        let mut h = new_histogram();
        for ms in 1..=100u64 {
            record(&mut h, Duration::from_millis(ms));
        }
        let p = Percentiles::of(&h);
        assert_eq!(p.count, 100);
        assert!((p.p50_ms - 50.0).abs() < 0.1, "{p:?}");
        assert!((p.p99_ms - 99.0).abs() < 0.1, "{p:?}");
        assert!((p.max_ms - 100.0).abs() < 0.1, "{p:?}");
    }

    #[test]
    fn token_figures_need_usage_and_rates_are_per_second() {
        let mut h = LlmHistograms::default();
        let c = Counters {
            llm_completed: 10,
            llm_without_usage: 10,
            ..Counters::default()
        };
        let s = LlmSummary::of(&h, &c, 2.0, 0, 120);
        assert!((s.requests_per_sec - 5.0).abs() < 1e-9);
        assert_eq!(s.output_tokens_per_sec, None);
        assert_eq!((s.itl, s.request_output_tokens_per_sec), (None, None));
        h.tokens_per_sec_milli.record(50_000).unwrap();
        record(&mut h.itl, Duration::from_millis(20));
        let c = Counters {
            llm_without_usage: 0,
            llm_output_tokens: 160,
            ..c
        };
        let s = LlmSummary::of(&h, &c, 2.0, 0, 120);
        assert_eq!(s.output_tokens_per_sec, Some(80.0));
        assert!((s.itl.unwrap().p50_ms - 20.0).abs() < 0.1);
        assert!((s.request_output_tokens_per_sec.unwrap().p50 - 50.0).abs() < 0.1);
    }

    #[test]
    fn an_empty_histogram_reads_as_zeros() {
        assert_eq!(Percentiles::of(&new_histogram()), Percentiles::default());
    }

    #[test]
    fn usage_per_connection_and_per_event() {
        let mib = 1024 * 1024;
        let before = ProcSample {
            rss_bytes: 10 * mib,
            ..ProcSample::default()
        };
        let after = ProcSample {
            rss_bytes: 12 * mib,
            ..ProcSample::default()
        };
        let u = ProcessUsage::from_samples(
            before,
            30 * mib,
            after,
            Duration::from_secs(2),
            1000,
            1_000_000,
            Duration::from_secs(10),
        );
        assert!((u.rss_per_connection_kib - 20.48).abs() < 1e-9, "{u:?}");
        assert!((u.cpu_percent - 20.0).abs() < 1e-9);
        assert!((u.cpu_us_per_event - 2.0).abs() < 1e-9);
    }
}
