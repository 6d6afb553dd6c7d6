//! After the run: did the server give back what the run took? Its open-streams gauge must
//! return to 0 and its resident memory to near its level before the run.
//!
//! An embedded server shares this process, so its figures are the whole process's, taken
//! once every stream has closed and freed heap has been returned (the load generator's
//! leftovers count against it too). An external server is read from its `/metrics`
//! ([`STREAMS_OPEN`], [`RESIDENT_MEMORY`]), after waiting for its gauge to reach 0 and for
//! its own periodic heap trim to run.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sse_digits::telemetry::names::{RESIDENT_MEMORY, STREAMS_OPEN};

/// How long an external server gets to notice that every client has gone.
const GAUGE_SETTLE: Duration = Duration::from_secs(10);
/// The server trims its heap every 5 s once streams have closed: wait for one trim.
const TRIM_WAIT: Duration = Duration::from_millis(6_000);

/// The server's state after the run, and before it where memory is compared.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerAfterRun {
    /// Where the figures come from.
    pub measured_in: String,
    /// Streams the server still had open.
    pub streams_open: Option<i64>,
    /// Resident memory before the run, MiB.
    pub rss_before_mib: Option<f64>,
    /// Resident memory after the run, MiB.
    pub rss_after_mib: Option<f64>,
    /// Growth of resident memory over the run, percent of the level before.
    pub rss_growth_pct: Option<f64>,
}

impl ServerAfterRun {
    /// The figures, with the growth worked out from the two memory readings.
    #[must_use]
    pub fn new(
        measured_in: &str,
        streams_open: Option<i64>,
        rss_before_mib: Option<f64>,
        rss_after_mib: Option<f64>,
    ) -> Self {
        let rss_growth_pct = match (rss_before_mib, rss_after_mib) {
            (Some(before), Some(after)) if before > 0.0 => Some((after - before) / before * 100.0),
            _ => None,
        };
        Self {
            measured_in: measured_in.to_owned(),
            streams_open,
            rss_before_mib,
            rss_after_mib,
            rss_growth_pct,
        }
    }
}

/// What a scrape of `/metrics` told.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Scrape {
    /// [`STREAMS_OPEN`].
    pub streams_open: Option<i64>,
    /// [`RESIDENT_MEMORY`], bytes.
    pub rss_bytes: Option<u64>,
}

/// Reads the two figures from Prometheus/OpenMetrics text; absent ones stay `None`.
#[must_use]
pub fn parse_metrics(text: &str) -> Scrape {
    let value = |name: &str| {
        text.lines().find_map(|line| {
            let rest = line.strip_prefix(name)?.strip_prefix(' ')?;
            rest.split_whitespace().next()?.parse::<f64>().ok()
        })
    };
    Scrape {
        streams_open: value(STREAMS_OPEN).map(|v| v as i64),
        rss_bytes: value(RESIDENT_MEMORY).map(|v| v as u64),
    }
}

/// Longest wait for a scrape: a server without `/metrics` may answer with anything, even a
/// stream that never ends.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(2);

/// Scrapes `{base}/metrics`; `None` when the server has no such page.
pub async fn scrape(client: &reqwest::Client, base: &str) -> Option<Scrape> {
    Some(parse_metrics(&metrics_text(client, base).await?))
}

/// The text of `{base}/metrics`; `None` when the server has no such page.
pub async fn metrics_text(client: &reqwest::Client, base: &str) -> Option<String> {
    let url = format!("{}/metrics", base.trim_end_matches('/'));
    let response = client.get(url).timeout(SCRAPE_TIMEOUT).send().await.ok()?;
    let is_metrics_text = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.starts_with("text/plain") || v.starts_with("application/openmetrics-text")
        });
    if !response.status().is_success() || !is_metrics_text {
        return None;
    }
    // Read to a bound: a server that answers with an endless page must not fill memory.
    let mut response = response;
    let mut text = Vec::new();
    while let Some(chunk) = response.chunk().await.ok()? {
        if text.len() + chunk.len() > MAX_METRICS_BYTES {
            return None;
        }
        text.extend_from_slice(&chunk);
    }
    String::from_utf8(text).ok()
}

/// The largest `/metrics` page read: far above a real one (a few KiB).
const MAX_METRICS_BYTES: usize = 4 << 20;

/// An external server after the run: waits for its gauge to reach 0 and for one heap trim,
/// then compares its memory with `before`.
pub async fn external(client: &reqwest::Client, base: &str, before: Scrape) -> ServerAfterRun {
    let settle_until = Instant::now() + GAUGE_SETTLE;
    let mut after = scrape(client, base).await.unwrap_or_default();
    while after.streams_open.is_some_and(|open| open > 0) && Instant::now() < settle_until {
        tokio::time::sleep(Duration::from_millis(250)).await;
        after = scrape(client, base).await.unwrap_or_default();
    }
    if before.rss_bytes.is_some() {
        tokio::time::sleep(TRIM_WAIT).await;
        let later = scrape(client, base).await.unwrap_or_default();
        after.rss_bytes = later.rss_bytes;
        after.streams_open = later.streams_open.or(after.streams_open);
    }
    ServerAfterRun::new(
        "the server's /metrics",
        after.streams_open,
        before.rss_bytes.map(mib),
        after.rss_bytes.map(mib),
    )
}

/// Bytes as MiB.
#[must_use]
pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gauge_and_the_memory_are_read_from_metrics_text() {
        // A longer name that starts with the gauge's must not be taken for it.
        let text = format!(
            "# HELP {RESIDENT_MEMORY} Resident memory\n\
             # TYPE {RESIDENT_MEMORY} gauge\n\
             {RESIDENT_MEMORY} 5242880\n\
             {STREAMS_OPEN}_total 9\n\
             {STREAMS_OPEN} 3\n\
             # EOF\n"
        );
        assert_eq!(
            parse_metrics(&text),
            Scrape {
                streams_open: Some(3),
                rss_bytes: Some(5_242_880)
            }
        );
        assert_eq!(parse_metrics("other_metric 1\n"), Scrape::default());
    }

    #[test]
    fn growth_is_a_percentage_of_the_level_before() {
        let after = ServerAfterRun::new("test", Some(0), Some(10.0), Some(10.5));
        assert!((after.rss_growth_pct.unwrap() - 5.0).abs() < 1e-9);
        assert_eq!(
            ServerAfterRun::new("test", Some(0), None, Some(10.5)).rss_growth_pct,
            None
        );
    }
}
