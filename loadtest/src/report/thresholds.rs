//! The gate's thresholds: read from a TOML file (such as `loadtest/gates/ci.toml`) and from
//! `--gate-*` flags, which override the file. [`crate::report::gate`] checks them.

use std::path::Path;

use anyhow::Context as _;
use serde::Deserialize;

/// The gate's command-line options: a thresholds file, and flags that override it.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct GateOptions {
    /// Check the run against the thresholds in this TOML file (e.g. loadtest/gates/ci.toml)
    /// and exit with status 1 naming what failed. `--gate-*` flags override its values.
    #[arg(long = "gate", value_name = "FILE")]
    pub file: Option<std::path::PathBuf>,
    /// Thresholds given as flags.
    #[command(flatten)]
    pub thresholds: Thresholds,
}

impl GateOptions {
    /// The thresholds in force (the file's, overridden by flags), or `None` when the gate is
    /// off. Called before the run, so a bad file fails at once.
    ///
    /// # Errors
    /// When the file cannot be read or parsed.
    pub fn resolve(&self) -> anyhow::Result<Option<Thresholds>> {
        let from_file = match &self.file {
            Some(path) => Thresholds::from_file(path)?,
            None => Thresholds::default(),
        };
        let merged = from_file.overridden_by(&self.thresholds);
        Ok((self.file.is_some() || merged.any()).then_some(merged))
    }
}

/// Pass/fail limits; an unset limit is not checked. Flags are named `--gate-<field>` with
/// dashes (`--gate-max-lateness-p99-ms 20`); file keys are the field names.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, clap::Args)]
#[serde(deny_unknown_fields)]
#[command(next_help_heading = "Gate (pass/fail thresholds; exit code 1 when one fails)")]
pub struct Thresholds {
    /// Fewest streams that must be open at once.
    #[arg(long = "gate-min-connections", value_name = "N")]
    pub min_connections: Option<u64>,
    /// Fewest events that must arrive.
    #[arg(long = "gate-min-events", value_name = "N")]
    pub min_events: Option<u64>,
    /// Highest share of failed attempts and broken streams, over attempts (0.01 = 1%).
    #[arg(long = "gate-max-error-rate", value_name = "RATIO")]
    pub max_error_rate: Option<f64>,
    /// Most events lost (0 when the gate is on and this is unset).
    #[arg(long = "gate-max-lost", value_name = "N")]
    pub max_lost: Option<u64>,
    /// Most events duplicated (0 when the gate is on and this is unset).
    #[arg(long = "gate-max-duplicated", value_name = "N")]
    pub max_duplicated: Option<u64>,
    /// Most events out of order (0 when the gate is on and this is unset).
    #[arg(long = "gate-max-out-of-order", value_name = "N")]
    pub max_out_of_order: Option<u64>,
    /// Most malformed events (0 when the gate is on and this is unset).
    #[arg(long = "gate-max-malformed", value_name = "N")]
    pub max_malformed: Option<u64>,
    /// Most streams closed because a line or event passed `--max-event-bytes` (0 when the
    /// gate is on and this is unset).
    #[arg(long = "gate-max-event-too-large", value_name = "N")]
    pub max_event_too_large: Option<u64>,
    /// Most stalls (gaps between events longer than the stall threshold).
    #[arg(long = "gate-max-stalls", value_name = "N")]
    pub max_stalls: Option<u64>,
    /// Highest per-event lateness p99, ms.
    #[arg(long = "gate-max-lateness-p99-ms", value_name = "MS")]
    pub max_lateness_p99_ms: Option<f64>,
    /// Highest per-event lateness, ms.
    #[arg(long = "gate-max-lateness-max-ms", value_name = "MS")]
    pub max_lateness_max_ms: Option<f64>,
    /// Highest p99 of the load generator's own hiccups (how late its tickers woke), ms: above
    /// it, lateness says more about the load generator than about the server.
    #[arg(long = "gate-max-hiccup-p99-ms", value_name = "MS")]
    pub max_hiccup_p99_ms: Option<f64>,
    /// Highest CPU of the load test's process while every stream was open, percent of the
    /// cores it may use (with the embedded server, both share it): near 100 the load
    /// generator, not the server, set the pace (a flood of tiny events does this).
    #[arg(long = "gate-max-load-generator-cpu-pct", value_name = "PCT")]
    pub max_load_generator_cpu_pct: Option<f64>,
    /// Highest p99 time from response headers to the first event, ms.
    #[arg(long = "gate-max-first-event-p99-ms", value_name = "MS")]
    pub max_first_event_p99_ms: Option<f64>,
    /// Highest p99 time from request to response headers, ms.
    #[arg(long = "gate-max-open-p99-ms", value_name = "MS")]
    pub max_open_p99_ms: Option<f64>,
    /// Highest p99 reconnect time (drop to first event of the next connection), ms.
    #[arg(long = "gate-max-reconnect-p99-ms", value_name = "MS")]
    pub max_reconnect_p99_ms: Option<f64>,
    /// Fewest reconnections (proves a reconnection phase happened).
    #[arg(long = "gate-min-reconnects", value_name = "N")]
    pub min_reconnects: Option<u64>,
    /// Most reconnections that did not resume one past the last id seen (0 when the gate is
    /// on and this is unset).
    #[arg(long = "gate-max-resumed-wrong", value_name = "N")]
    pub max_resumed_wrong: Option<u64>,
    /// Highest server RSS growth per connection, KiB: the server's own (`--server-pid`) or,
    /// embedded, the whole process's (server and load generator together).
    #[arg(long = "gate-max-rss-per-connection-kib", value_name = "KIB")]
    pub max_rss_per_connection_kib: Option<f64>,
    /// Most streams the server may still hold once the run is over (0 when the gate is on
    /// and this is unset; checked where the figure is known).
    #[arg(long = "gate-max-streams-after", value_name = "N")]
    pub max_streams_after: Option<u64>,
    /// Highest growth of the server's RSS over the run, percent of its level before (after
    /// streams closed and freed memory was returned).
    #[arg(long = "gate-max-rss-growth-pct", value_name = "PCT")]
    pub max_rss_growth_pct: Option<f64>,
    /// `--llm`: highest p99 time to first token, ms.
    #[arg(long = "gate-max-ttft-p99-ms", value_name = "MS")]
    pub max_ttft_p99_ms: Option<f64>,
    /// `--llm`: highest p99 inter-token latency (time per output token after the first, per
    /// request; needs usage in the stream), ms.
    #[arg(long = "gate-max-itl-p99-ms", value_name = "MS")]
    pub max_itl_p99_ms: Option<f64>,
    /// `--llm`: highest p99 gap between content events, ms.
    #[arg(long = "gate-max-inter-event-p99-ms", value_name = "MS")]
    pub max_inter_event_p99_ms: Option<f64>,
    /// `--llm`: highest p99 end-to-end request time, ms.
    #[arg(long = "gate-max-e2e-p99-ms", value_name = "MS")]
    pub max_e2e_p99_ms: Option<f64>,
    /// `--llm`: fewest output tokens per second over the run (needs usage in the stream).
    #[arg(long = "gate-min-output-tokens-per-sec", value_name = "RATE")]
    pub min_output_tokens_per_sec: Option<f64>,
    /// `--llm`: fewest completed requests per second over the run.
    #[arg(long = "gate-min-requests-per-sec", value_name = "RATE")]
    pub min_requests_per_sec: Option<f64>,
    /// Most of any counter, named by its key in the JSON summary's `counters`
    /// (`--gate-max-count idle_timeouts=0`, repeatable; in a file, a `[max_counts]` table):
    /// every misbehaviour the run counts can fail the gate.
    #[arg(long = "gate-max-count", value_name = "COUNTER=N", value_parser = parse_count_limit)]
    #[serde(default, deserialize_with = "count_limits_from_table")]
    pub max_counts: Vec<(String, u64)>,
}

/// `NAME=N`, as `--gate-max-count` takes it.
fn parse_count_limit(text: &str) -> Result<(String, u64), String> {
    let (name, limit) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?}: give COUNTER=N, such as idle_timeouts=0"))?;
    let limit = limit
        .trim()
        .parse()
        .map_err(|_| format!("{text:?}: the limit must be a whole number"))?;
    Ok((name.trim().to_owned(), limit))
}

/// A `[max_counts]` table (`idle_timeouts = 0`), as a list in the table's order.
fn count_limits_from_table<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<(String, u64)>, D::Error> {
    let table = std::collections::BTreeMap::<String, u64>::deserialize(deserializer)?;
    Ok(table.into_iter().collect())
}

impl Thresholds {
    /// Reads a TOML file of thresholds.
    ///
    /// # Errors
    /// When the file cannot be read, or holds an unknown key or a wrong type.
    pub fn from_file(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read gate file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("bad gate file {}", path.display()))
    }

    /// Whether any threshold is set.
    #[must_use]
    pub fn any(&self) -> bool {
        *self != Self::default()
    }

    /// `self` with every threshold that `overrides` sets replaced by its value.
    #[must_use]
    pub fn overridden_by(self, overrides: &Self) -> Self {
        // A counter limited in both keeps the flag's limit.
        let mut max_counts: Vec<(String, u64)> = self
            .max_counts
            .iter()
            .filter(|(name, _)| !overrides.max_counts.iter().any(|(n, _)| n == name))
            .cloned()
            .collect();
        max_counts.extend(overrides.max_counts.iter().cloned());
        macro_rules! pick {
            ($($field:ident),*) => {
                Self { $($field: overrides.$field.or(self.$field),)* max_counts }
            };
        }
        pick!(
            min_connections,
            min_events,
            max_error_rate,
            max_lost,
            max_duplicated,
            max_out_of_order,
            max_malformed,
            max_event_too_large,
            max_stalls,
            max_lateness_p99_ms,
            max_lateness_max_ms,
            max_hiccup_p99_ms,
            max_load_generator_cpu_pct,
            max_first_event_p99_ms,
            max_open_p99_ms,
            max_reconnect_p99_ms,
            min_reconnects,
            max_resumed_wrong,
            max_rss_per_connection_kib,
            max_streams_after,
            max_rss_growth_pct,
            max_ttft_p99_ms,
            max_itl_p99_ms,
            max_inter_event_p99_ms,
            max_e2e_p99_ms,
            min_output_tokens_per_sec,
            min_requests_per_sec
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_in_the_file_are_an_error() {
        let err = toml::from_str::<Thresholds>("max_lateness_p99 = 5").unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
    }

    #[test]
    fn the_hiccup_limit_comes_from_the_file_and_its_flag() {
        #[derive(clap::Parser)]
        struct Flags {
            #[command(flatten)]
            thresholds: Thresholds,
        }
        let file: Thresholds = toml::from_str("max_hiccup_p99_ms = 5").unwrap();
        assert_eq!(file.max_hiccup_p99_ms, Some(5.0));
        let flags = <Flags as clap::Parser>::try_parse_from([
            "loadtest",
            "--gate-max-hiccup-p99-ms",
            "2.5",
        ])
        .unwrap()
        .thresholds;
        assert_eq!(file.overridden_by(&flags).max_hiccup_p99_ms, Some(2.5));
    }

    #[test]
    fn counter_limits_come_from_a_table_and_flags_and_flags_win() {
        #[derive(clap::Parser)]
        struct Flags {
            #[command(flatten)]
            thresholds: Thresholds,
        }
        let file: Thresholds =
            toml::from_str("[max_counts]\nidle_timeouts = 3\nbody_cut = 1").unwrap();
        let flags = <Flags as clap::Parser>::try_parse_from([
            "loadtest",
            "--gate-max-count",
            "idle_timeouts=0",
            "--gate-max-count",
            "redirects = 5",
        ])
        .unwrap()
        .thresholds;
        let merged = file.overridden_by(&flags);
        assert_eq!(
            merged.max_counts,
            [
                ("body_cut".to_owned(), 1),
                ("idle_timeouts".to_owned(), 0),
                ("redirects".to_owned(), 5)
            ]
        );
        assert!(parse_count_limit("idle_timeouts").is_err());
        assert!(parse_count_limit("idle_timeouts=-1").is_err());
    }

    #[test]
    fn the_shipped_ci_gate_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("gates/ci.toml");
        let gate = Thresholds::from_file(&path).unwrap();
        assert!(gate.any());
        assert!(gate.min_connections >= Some(2000));
    }
}
