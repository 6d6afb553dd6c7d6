//! The command line: our SSE options beside goose's own, flattened into one clap parser.
//! Goose keeps its flags (`-H -u -r -s -t -h -V -l -v -q -G -g -R -T -S -E -D` and the
//! long ones); ours are long-only so they can never collide.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use goose::config::GooseConfiguration;

use reqwest::Url;

use crate::client::limits::Limits;
use crate::client::request::RequestOptions;
use crate::client::transport::Transport;
use crate::profile::{LatenessMode, StreamProfile};
use crate::report::files::OutputFiles;
use crate::report::html::GOOSE_REPORT;

/// Users when `-u` is not given.
pub const DEFAULT_USERS: usize = 1000;
/// Users started per second when neither `-r` nor `-s` is given.
pub const DEFAULT_RATE: &str = "500";
/// sse-digits' interval when `--interval-ms` is not given.
pub const DEFAULT_INTERVAL_MS: u64 = 100;
/// Run time when `-t` is not given.
pub const DEFAULT_RUN_TIME: &str = "30s";
/// The longest `--think-ms` and `--request-timeout-secs`: a day, far past any run, and
/// far from what the clock can add without overflowing.
pub const MAX_LLM_WAIT_SECS: u64 = 24 * 3600;

/// Why `--find-capacity --url` without `--interval-ms` is refused.
const CAPACITY_NEEDS_INTERVAL: &str = "--find-capacity with --url needs --interval-ms, the \
    interval of the server's stream, to know the events/s each user is offered";

/// Load test for SSE servers: each goose user is one browser-like EventSource.
///
/// Any SSE server: --url URL (sent exactly as given). sse-digits: without --host, the server
/// runs inside this process on 127.0.0.1 (a free port); with --host, it targets a running
/// one, at --path with the digits parameters added. See docs/loadtest/figures.md for what
/// each figure means.
#[derive(Debug, Clone, Parser)]
// A repeated option keeps its last value, as in goose's own parser.
#[command(
    name = "loadtest",
    about,
    long_about,
    max_term_width = 100,
    args_override_self = true
)]
pub struct Options {
    /// The SSE options.
    #[command(flatten)]
    pub sse: SseOptions,
    /// Goose's options (users, ramp, run time, reports...).
    #[command(flatten)]
    pub goose: GooseConfiguration,
    /// Pass/fail thresholds.
    #[command(flatten)]
    pub gate: crate::report::thresholds::GateOptions,
}

impl Options {
    /// When `--report-dir` is given: creates the folder and, unless goose's `--report-file` is
    /// set, has goose write its HTML report there as [`GOOSE_REPORT`]. Call before the run.
    ///
    /// # Errors
    /// When the folder cannot be created.
    pub fn prepare_report_dir(&mut self) -> anyhow::Result<()> {
        let Some(dir) = &self.sse.outputs.report_dir else {
            return Ok(());
        };
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        if self.goose.report_file.is_empty() {
            self.goose
                .report_file
                .push(dir.join(GOOSE_REPORT).to_string_lossy().into_owned());
        }
        Ok(())
    }
}

/// How each EventSource behaves and what the run measures and writes.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "SSE load test")]
pub struct SseOptions {
    /// Any SSE server: the stream's full URL, requested exactly as given (no parameters
    /// added). Not with --host, --path, --count, --max-secs or the embedded server's
    /// options; with --find-capacity, give the stream's --interval-ms.
    #[arg(
        long,
        value_name = "URL",
        value_parser = parse_url,
        conflicts_with_all = [
            "host", "path", "count", "max_secs", "restart_at", "restart_down_ms",
            "server_retry_ms", "server_drain_ms", "server_workers",
        ]
    )]
    pub url: Option<Url>,

    /// LLM token streams: each user sends completion requests in turn (POST --url with a
    /// --body asking for "stream": true, as OpenAI-compatible APIs take it) until the run
    /// ends, and each answer is read as a token stream ending at `data: [DONE]`: time to
    /// first token, inter-token and inter-event latency, tokens/s. Needs --url and
    /// --method POST (a GET is refused). Not with --find-capacity.
    #[arg(
        long,
        requires = "url",
        conflicts_with_all = ["drop_after", "interval_ms", "timestamp_field", "find_capacity"]
    )]
    pub llm: bool,

    /// --llm: the pause between the end of a user's request and its next one, in ms. A
    /// failed request is followed by at least --min-retry-ms (or the Retry-After a 429 or
    /// 503 asked for), so a server that fails at once is not hammered.
    #[arg(
        long,
        default_value_t = 0,
        value_name = "MS",
        requires = "llm",
        value_parser = clap::value_parser!(u64).range(..=MAX_LLM_WAIT_SECS * 1000)
    )]
    pub think_ms: u64,

    /// --llm: a request that has not ended this many seconds after it was sent is cut and
    /// counted as timed out.
    #[arg(
        long,
        default_value_t = 120,
        value_name = "SECS",
        requires = "llm",
        value_parser = clap::value_parser!(u64).range(1..=MAX_LLM_WAIT_SECS)
    )]
    pub request_timeout_secs: u64,

    /// sse-digits: path of the event stream on the host.
    #[arg(long, default_value = "/digits", value_name = "PATH")]
    pub path: String,

    /// The schedule lateness is measured against: events this many ms apart, anchored at each
    /// connection's first event. sse-digits: asked of the server with `interval_ms` (default
    /// 100). With --url: give it when the server's interval is known; without it (and without
    /// --timestamp-field) lateness is not measured, only gaps. --find-capacity with --url
    /// needs it: each user is offered one event per interval.
    #[arg(long, value_name = "MS")]
    pub interval_ms: Option<u64>,

    /// With --url: measure lateness as arrival − the time in this field of each event's JSON
    /// data (a number of ms since the Unix epoch, or an RFC 3339 string); the server's clock
    /// must agree with this machine's.
    #[arg(
        long,
        value_name = "NAME",
        requires = "url",
        conflicts_with = "interval_ms"
    )]
    pub timestamp_field: Option<String>,

    /// sse-digits: id of the stream's final `bye` event, asked with `count` (default: the
    /// server's).
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,

    /// sse-digits: ask the server to end each stream after this many seconds (`max_secs`),
    /// with a `retry:` hint: every user reconnects and must resume without loss.
    #[arg(long, value_name = "SECS")]
    pub max_secs: Option<u64>,

    /// Each user drops its own connection after N events, then reconnects with
    /// Last-Event-ID.
    #[arg(long, value_name = "N")]
    pub drop_after: Option<u64>,

    /// What a misbehaving server can cost: timeouts, reconnection delays, event size,
    /// redirects.
    #[command(flatten)]
    pub limits: Limits,

    /// What each request carries (method, headers, body) and how TLS and the HTTP version
    /// are set.
    #[command(flatten)]
    pub request: RequestOptions,

    /// A gap between two events of a stream longer than this many intervals (and at least
    /// one second) is a stall.
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub stall_intervals: u32,

    /// Embedded server only: stop it this many seconds into the run and start it again on
    /// the same port (a restart storm); every user must come back and resume.
    #[arg(long, value_name = "SECS")]
    pub restart_at: Option<f64>,

    /// How long the embedded server stays down during --restart-at.
    #[arg(long, default_value_t = 500, value_name = "MS")]
    pub restart_down_ms: u64,

    /// Embedded server only: the `retry:` hint it sends, in ms (so reconnection tests need
    /// not wait the default 3 s).
    #[arg(long, default_value_t = 3000, value_name = "MS")]
    pub server_retry_ms: u64,

    /// Embedded server only: on a stop (--restart-at), its streams close at random moments
    /// within this window, so the reconnections spread out (0: all at once).
    #[arg(long, default_value_t = 1000, value_name = "MS")]
    pub server_drain_ms: u64,

    /// Embedded server only: its worker threads (0: one per core).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub server_workers: usize,

    /// Local addresses to connect from, as a range (127.0.0.1-127.0.0.8) or a list
    /// (127.0.0.1,127.0.0.2): one address runs out of ephemeral ports near 28,000
    /// connections.
    #[arg(long, value_name = "ADDRS", value_parser = parse_source_addrs)]
    pub source_addrs: Option<SourceAddrs>,

    /// HTTP clients shared by all users (each costs about 100 KB; at least one per
    /// source address).
    #[arg(long, default_value_t = 8, value_name = "N")]
    pub clients: usize,

    /// The HTTP client: hyper (through reqwest), or the load test's own minimal HTTP/1.1
    /// client, which costs less CPU per event (for runs where the load generator is the
    /// limit); it speaks neither TLS nor HTTP/2.
    #[arg(long, value_enum, default_value_t = Transport::Hyper)]
    pub transport: Transport,

    /// External server only: its pid, to report its memory and CPU from /proc.
    #[arg(long, value_name = "PID")]
    pub server_pid: Option<u32>,

    /// Print a progress line every N seconds (0: never).
    #[arg(long, default_value_t = 2, value_name = "SECS")]
    pub progress_secs: u64,

    /// Instead of printing the progress line, keep its latest figures in FILE as JSON: how a
    /// process started by --processes shows its progress to the one that started it.
    #[arg(long, value_name = "FILE", hide = true)]
    pub progress_file: Option<PathBuf>,

    /// The files to write: JSON summary, percentile files, interval log, HTML report.
    #[command(flatten)]
    pub outputs: OutputFiles,

    /// Search for capacity: run steps of rising offered events/s (more users at the same
    /// interval) and report the highest rate whose lateness p99 stays under
    /// --capacity-p99-ms with no errors and no loss. Each step runs for -t. Against the
    /// embedded server, --host or --url (every step the same URL; give its --interval-ms).
    #[arg(long)]
    pub find_capacity: bool,

    /// The lateness p99 bound of --find-capacity.
    #[arg(long, default_value_t = 50.0, value_name = "MS")]
    pub capacity_p99_ms: f64,

    /// Offered events/s of the first --find-capacity step.
    #[arg(long, default_value_t = 10_000, value_name = "RATE")]
    pub capacity_start: u64,

    /// Each --find-capacity step multiplies the rate by this.
    #[arg(long, default_value_t = 1.5, value_name = "X")]
    pub capacity_factor: f64,

    /// The most --find-capacity steps.
    #[arg(long, default_value_t = 8, value_name = "N")]
    pub capacity_steps: u32,

    /// After the first failing step, this many more steps halve the gap between the last
    /// rate that passed and the first that failed.
    #[arg(long, default_value_t = 2, value_name = "N")]
    pub capacity_refine: u32,

    /// Run as N load-generator processes (copies of this program, each with its share of
    /// -u, -r and --source-addrs, all starting at one moment), then add what they measured
    /// into one summary, JSON, report and gate verdict. Needs --host or --url: one process
    /// holds at most about 19,900 streams under a hard open-files limit of 20,000.
    #[arg(
        long,
        default_value_t = 1,
        value_name = "N",
        conflicts_with = "find_capacity"
    )]
    pub processes: usize,

    /// Start the users at this moment (seconds since the Unix epoch), so runs on several
    /// machines begin together; a moment more than a few seconds past is refused.
    #[arg(long, value_name = "UNIX_SECS")]
    pub start_at: Option<f64>,

    /// Write everything the run measured that adds losslessly (histograms, counters,
    /// timeline) to FILE, for `loadtest merge` (see docs/loadtest/scale-out.md).
    #[arg(long, value_name = "FILE", hide = true)]
    pub part_file: Option<PathBuf>,
}

impl SseOptions {
    /// The events/s each user is offered, which the capacity search multiplies by its
    /// users: one event per interval (sse-digits' 100 ms when no --interval-ms is given).
    ///
    /// # Errors
    /// With --url and no --interval-ms: the server's rate is unknown, so no step could say
    /// what it offered.
    pub fn events_per_user_per_sec(&self) -> Result<f64, String> {
        if self.url.is_some() && self.interval_ms.is_none() {
            return Err(CAPACITY_NEEDS_INTERVAL.to_owned());
        }
        Ok(1000.0 / self.interval_ms().max(1) as f64)
    }

    /// The schedule's interval in ms: as given, else sse-digits' 100, and 0 (no schedule)
    /// for a --url stream.
    #[must_use]
    pub fn interval_ms(&self) -> u64 {
        match (self.interval_ms, &self.url) {
            (Some(ms), _) => ms,
            (None, None) => DEFAULT_INTERVAL_MS,
            (None, Some(_)) => 0,
        }
    }

    /// The interval between events (zero when there is no schedule).
    #[must_use]
    pub fn interval(&self) -> Duration {
        Duration::from_millis(self.interval_ms())
    }

    /// What the run checks in each event: sse-digits' ids and schedule, or, with --url, the
    /// lateness mode the flags chose.
    #[must_use]
    pub fn profile(&self) -> StreamProfile {
        if self.url.is_none() {
            return StreamProfile::digits(self.interval());
        }
        StreamProfile::any(match (&self.timestamp_field, self.interval_ms) {
            (Some(field), _) => LatenessMode::Timestamp(field.clone()),
            (None, Some(ms)) => LatenessMode::Schedule(Duration::from_millis(ms)),
            (None, None) => LatenessMode::Gaps,
        })
    }

    /// The gap between events beyond which a stream counts as stalled: --stall-intervals
    /// intervals (seconds when there is no schedule), at least one second.
    #[must_use]
    pub fn stall_threshold(&self) -> Duration {
        let unit = match self.interval_ms() {
            0 => Duration::from_secs(1),
            ms => Duration::from_millis(ms),
        };
        (unit * self.stall_intervals).max(Duration::from_secs(1))
    }

    /// What each user requests: the --url as given, or the path with the query that sets
    /// sse-digits' schedule for this run (joined to the host).
    #[must_use]
    pub fn path_and_query(&self) -> String {
        if let Some(url) = &self.url {
            return url.to_string();
        }
        let mut query = format!("interval_ms={}", self.interval_ms());
        if let Some(count) = self.count {
            query.push_str(&format!("&count={count}"));
        }
        if let Some(secs) = self.max_secs {
            query.push_str(&format!("&max_secs={secs}"));
        }
        let sep = if self.path.contains('?') { '&' } else { '?' };
        format!("{}{sep}{query}", self.path)
    }
}

/// Parses an absolute `http` or `https` URL.
///
/// # Errors
/// A message naming what is wrong.
pub fn parse_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|e| format!("{text:?}: {e}"))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(format!("{text:?}: only http:// and https:// URLs"));
    }
    if url.host().is_none() {
        return Err(format!("{text:?}: no host"));
    }
    Ok(url)
}

/// Local addresses to spread connections over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceAddrs(pub Vec<IpAddr>);

/// The most addresses a range may name.
const MAX_SOURCE_ADDRS: u32 = 256;

/// Parses `A-B` (IPv4, inclusive) or `A,B,...`.
///
/// # Errors
/// A message naming what is wrong.
pub fn parse_source_addrs(text: &str) -> Result<SourceAddrs, String> {
    if let Some((from, to)) = text.split_once('-') {
        let from: Ipv4Addr = from.trim().parse().map_err(|e| format!("{from:?}: {e}"))?;
        let to: Ipv4Addr = to.trim().parse().map_err(|e| format!("{to:?}: {e}"))?;
        let (a, b) = (u32::from(from), u32::from(to));
        if b < a {
            return Err(format!("the range {from}-{to} runs backwards"));
        }
        if b - a >= MAX_SOURCE_ADDRS {
            return Err(format!(
                "the range {from}-{to} holds more than {MAX_SOURCE_ADDRS} addresses"
            ));
        }
        return Ok(SourceAddrs(
            (a..=b).map(|n| IpAddr::V4(Ipv4Addr::from(n))).collect(),
        ));
    }
    text.split(',')
        .map(|part| {
            part.trim()
                .parse::<IpAddr>()
                .map_err(|e| format!("{part:?}: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(SourceAddrs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Options::command().debug_assert();
    }

    #[test]
    fn goose_and_sse_flags_parse_side_by_side() {
        let o = Options::try_parse_from([
            "loadtest",
            "-H",
            "http://127.0.0.1:8080",
            "-u",
            "20",
            "-t",
            "5s",
            "--interval-ms",
            "50",
            "--drop-after",
            "7",
        ])
        .unwrap();
        assert_eq!(o.goose.host.as_deref(), Some("http://127.0.0.1:8080"));
        assert_eq!(o.goose.users, Some(20));
        assert_eq!(o.goose.run_time.as_deref(), Some("5s"));
        assert_eq!(o.sse.interval_ms(), 50);
        assert_eq!(o.sse.drop_after, Some(7));
    }

    #[test]
    fn the_query_sets_the_schedule() {
        let mut o = Options::try_parse_from(["loadtest"]).unwrap();
        assert_eq!(o.sse.path_and_query(), "/digits?interval_ms=100");
        o.sse.count = Some(50);
        o.sse.max_secs = Some(3);
        assert_eq!(
            o.sse.path_and_query(),
            "/digits?interval_ms=100&count=50&max_secs=3"
        );
    }

    #[test]
    fn a_url_is_requested_exactly_as_given() {
        let o =
            Options::try_parse_from(["loadtest", "--url", "http://127.0.0.1:8083/digits"]).unwrap();
        assert_eq!(o.sse.path_and_query(), "http://127.0.0.1:8083/digits");
        assert_eq!(o.sse.profile(), StreamProfile::any(LatenessMode::Gaps));
        assert_eq!(o.sse.interval_ms(), 0);
        assert_eq!(o.sse.stall_threshold(), Duration::from_secs(10));
        let o = Options::try_parse_from([
            "loadtest",
            "--url",
            "http://h/s?a=1",
            "--interval-ms",
            "1000",
        ])
        .unwrap();
        assert_eq!(o.sse.path_and_query(), "http://h/s?a=1");
        assert_eq!(
            o.sse.profile().lateness,
            LatenessMode::Schedule(Duration::from_secs(1))
        );
        let o =
            Options::try_parse_from(["loadtest", "--url", "http://h/s", "--timestamp-field", "ts"])
                .unwrap();
        assert_eq!(
            o.sse.profile().lateness,
            LatenessMode::Timestamp("ts".into())
        );
        assert!(!o.sse.profile().data_matches_id);
    }

    #[test]
    fn flags_that_make_no_sense_with_a_url_are_refused() {
        for extra in [
            &["-H", "http://127.0.0.1:1"][..],
            &["--path", "/x"],
            &["--count", "3"],
            &["--max-secs", "3"],
            &["--restart-at", "1"],
            &["--server-retry-ms", "100"],
            &["--interval-ms", "100", "--timestamp-field", "ts"],
        ] {
            let mut args = vec!["loadtest", "--url", "http://127.0.0.1:1/s"];
            args.extend_from_slice(extra);
            assert!(Options::try_parse_from(&args).is_err(), "{extra:?}");
        }
        assert!(Options::try_parse_from(["loadtest", "--timestamp-field", "ts"]).is_err());
        assert!(Options::try_parse_from(["loadtest", "--url", "https://h/s"]).is_ok());
        assert!(Options::try_parse_from(["loadtest", "--url", "ftp://h/s"]).is_err());
        assert!(Options::try_parse_from(["loadtest", "--url", "/digits"]).is_err());
    }

    #[test]
    fn a_capacity_search_against_a_url_needs_its_interval() {
        let url = [
            "loadtest",
            "--url",
            "http://127.0.0.1:1/s",
            "--find-capacity",
        ];
        let o = Options::try_parse_from(url.iter().chain(&["--interval-ms", "250"])).unwrap();
        assert!(o.sse.find_capacity);
        assert_eq!(o.sse.events_per_user_per_sec(), Ok(4.0));
        assert_eq!(o.sse.path_and_query(), "http://127.0.0.1:1/s");

        let o = Options::try_parse_from(url).unwrap();
        assert_eq!(
            o.sse.events_per_user_per_sec(),
            Err(
                "--find-capacity with --url needs --interval-ms, the interval of the \
                 server's stream, to know the events/s each user is offered"
                    .to_owned()
            )
        );
        // Against sse-digits the interval is the load test's to choose.
        let o = Options::try_parse_from(["loadtest", "--find-capacity"]).unwrap();
        assert_eq!(o.sse.events_per_user_per_sec(), Ok(10.0));
        // Flags that cannot go with a search stay refused.
        for extra in [&["--llm"][..], &["--processes", "2"], &["-H", "http://h:1"]] {
            let args = url.iter().chain(&["--interval-ms", "100"]).chain(extra);
            assert!(Options::try_parse_from(args).is_err(), "{extra:?}");
        }
    }

    #[test]
    fn llm_needs_a_url_and_its_flags_need_llm() {
        let url = [
            "loadtest",
            "--url",
            "http://127.0.0.1:1/v1/chat/completions",
        ];
        let parse = |extra: &[&str]| {
            Options::try_parse_from(url.iter().chain(extra).copied().collect::<Vec<_>>())
        };
        let o = parse(&["--llm", "--think-ms", "50"]).unwrap();
        assert!(o.sse.llm);
        assert_eq!((o.sse.think_ms, o.sse.request_timeout_secs), (50, 120));
        assert!(Options::try_parse_from(["loadtest", "--llm"]).is_err());
        assert!(parse(&["--think-ms", "50"]).is_err());
        assert!(parse(&["--request-timeout-secs", "5"]).is_err());
        assert!(parse(&["--llm", "--drop-after", "3"]).is_err());
        assert!(parse(&["--llm", "--interval-ms", "100"]).is_err());
        assert!(parse(&["--llm", "--request-timeout-secs", "0"]).is_err());
        assert!(parse(&["--llm", "--think-ms", "18446744073709551615"]).is_err());
    }

    #[test]
    fn the_stall_threshold_is_at_least_a_second() {
        let o = Options::try_parse_from(["loadtest", "--interval-ms", "10"]).unwrap();
        assert_eq!(o.sse.stall_threshold(), Duration::from_secs(1));
        let o = Options::try_parse_from(["loadtest", "--interval-ms", "500"]).unwrap();
        assert_eq!(o.sse.stall_threshold(), Duration::from_secs(5));
    }

    #[test]
    fn source_addresses_parse_as_a_range_or_a_list() {
        let range = parse_source_addrs("127.0.0.1-127.0.0.8").unwrap();
        assert_eq!(range.0.len(), 8);
        assert_eq!(range.0[7], IpAddr::from([127, 0, 0, 8]));
        let list = parse_source_addrs("127.0.0.1, 127.0.0.3").unwrap();
        assert_eq!(
            list.0,
            vec![IpAddr::from([127, 0, 0, 1]), IpAddr::from([127, 0, 0, 3])]
        );
        assert!(parse_source_addrs("127.0.0.8-127.0.0.1").is_err());
        assert!(parse_source_addrs("127.0.0.1-127.0.9.1").is_err());
        assert!(parse_source_addrs("nonsense").is_err());
    }
}
