//! `--llm`: how the completions' figures are shown, shared by the console and the HTML
//! page: the latency rows (label, JSON key, percentiles or "not measured") and the rates in
//! words. Pure: a [`LlmSummary`] in, rows and text out.

use crate::measure::counters::Counters;
use crate::report::summary::{LlmSummary, Percentiles};

/// What a figure the run could not measure shows in place of its value.
pub const NOT_MEASURED: &str = "not measured";

/// One latency of the completions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LatencyRow<'a> {
    /// Its label on the console and the page (16 characters at most, the console's column).
    pub label: &'static str,
    /// Its key under the JSON summary's `llm`.
    pub key: &'static str,
    /// Its percentiles; `None` when not measured (inter-token latency without usage).
    pub percentiles: Option<&'a Percentiles>,
}

/// The latencies in report order: first byte, first token, inter-event, inter-token, end.
#[must_use]
pub fn latency_rows(l: &LlmSummary) -> [LatencyRow<'_>; 5] {
    let row = |label, key, percentiles| LatencyRow {
        label,
        key,
        percentiles,
    };
    [
        row("TTFB", "ttfb", Some(&l.ttfb)),
        row("TTFT", "ttft", Some(&l.ttft)),
        row("inter-event", "inter_event", Some(&l.inter_event)),
        row("ITL (TPOT)", "itl", l.itl.as_ref()),
        row("end to end", "e2e", Some(&l.e2e)),
    ]
}

/// The run's rates in words: completed requests/s, output tokens/s over the run, per
/// request tokens/s, and the settings that shaped them.
#[must_use]
pub fn rates_line(l: &LlmSummary, c: &Counters) -> String {
    let output = match l.output_tokens_per_sec {
        Some(rate) => {
            let per_request = c.llm_output_tokens as f64
                / c.llm_completed.saturating_sub(c.llm_without_usage).max(1) as f64;
            format!("{rate:.1} output tokens/s ({per_request:.1} tokens per request with usage)")
        }
        None => format!("output tokens/s {NOT_MEASURED} (no stream reported usage)"),
    };
    let per_request = l.request_output_tokens_per_sec.map_or_else(
        || format!("per request tokens/s {NOT_MEASURED}"),
        |r| {
            format!(
                "per request tokens/s p1 {:.1} | p10 {:.1} | p50 {:.1} | max {:.1}",
                r.p1, r.p10, r.p50, r.max
            )
        },
    );
    format!(
        "{:.2} completed requests/s | {output} | {per_request} | think {} ms, request timeout {} s",
        l.requests_per_sec, l.think_ms, l.request_timeout_secs
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::summary::RatePercentiles;

    #[test]
    fn figures_without_usage_say_not_measured() {
        let l = LlmSummary {
            requests_per_sec: 2.5,
            ..LlmSummary::default()
        };
        let c = Counters {
            llm_completed: 5,
            llm_without_usage: 5,
            ..Counters::default()
        };
        let line = rates_line(&l, &c);
        assert!(line.starts_with("2.50 completed requests/s"), "{line}");
        assert!(line.contains("output tokens/s not measured"), "{line}");
        assert!(line.contains("per request tokens/s not measured"), "{line}");
        let rows = latency_rows(&l);
        assert_eq!(rows[3].key, "itl");
        assert!(rows[3].percentiles.is_none());
        assert!(rows.iter().all(|r| r.label.len() <= 16));
    }

    #[test]
    fn token_rates_are_per_request_with_usage() {
        let l = LlmSummary {
            output_tokens_per_sec: Some(160.0),
            request_output_tokens_per_sec: Some(RatePercentiles {
                p50: 32.0,
                ..RatePercentiles::default()
            }),
            ..LlmSummary::default()
        };
        let c = Counters {
            llm_completed: 10,
            llm_without_usage: 2,
            llm_output_tokens: 128,
            ..Counters::default()
        };
        let line = rates_line(&l, &c);
        assert!(
            line.contains("160.0 output tokens/s (16.0 tokens per request with usage)"),
            "{line}"
        );
        assert!(line.contains("p50 32.0"), "{line}");
    }
}
