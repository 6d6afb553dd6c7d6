//! Every decision about a `/digits` request, as a pure function: where the stream starts,
//! its schedule, or why it is refused. No sockets, no clocks.

use std::time::Duration;

use crate::config::{Config, RequestLimits};

/// The query parameters `/digits` understands.
pub const QUERY_PARAMETERS: [&str; 4] = ["interval_ms", "count", "max_secs", "lastEventId"];

/// Server-wide settings a request starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamDefaults {
    /// Default time between events.
    pub interval: Duration,
    /// Default id of the `bye` event.
    pub count: u64,
    /// Reconnection delay sent in `retry:`.
    pub retry_ms: u64,
    /// Quiet time after which a keep-alive comment goes out.
    pub keepalive: Option<Duration>,
    /// Default server-driven end of a stream.
    pub max_duration: Option<Duration>,
    /// A connection that accepts no bytes for this long is dropped.
    pub write_stall: Option<Duration>,
    /// Allowed ranges for query overrides.
    pub limits: RequestLimits,
}

impl From<&Config> for StreamDefaults {
    fn from(config: &Config) -> Self {
        Self {
            interval: Duration::from_millis(config.interval_ms),
            count: config.count,
            retry_ms: config.retry_ms,
            keepalive: config.keepalive(),
            max_duration: config.max_stream_secs.map(Duration::from_secs),
            write_stall: config.write_stall(),
            limits: config.limits,
        }
    }
}

/// What one stream will send: ids `first_id ..= count`, the last one being `bye`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamPlan {
    /// The first id this response sends (1, or one past the client's `Last-Event-ID`).
    pub first_id: u64,
    /// The id of the `bye` event; the stream ends after it.
    pub count: u64,
    /// Time between two events.
    pub interval: Duration,
    /// Reconnection delay sent in `retry:`.
    pub retry_ms: u64,
    /// Quiet time after which a keep-alive comment goes out.
    pub keepalive: Option<Duration>,
    /// The server ends the stream after this long, with a retry hint.
    pub max_duration: Option<Duration>,
    /// The connection is dropped when it accepts no bytes for this long.
    pub write_stall: Option<Duration>,
}

/// When event `id` is due, in nanoseconds after the stream started: the first event
/// (`first_id`) at once, then one per interval. Drift-free, because every due time comes
/// from the start rather than from the previous write. Saturates instead of overflowing.
#[must_use]
pub fn due_nanos_after_start(first_id: u64, interval_nanos: u64, id: u64) -> u64 {
    id.saturating_sub(first_id).saturating_mul(interval_nanos)
}

/// `duration` in nanoseconds, `u64::MAX` (584 years) when longer.
#[must_use]
pub fn saturating_nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// The outcome of a well-formed request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Open a stream.
    Stream(StreamPlan),
    /// The client has already seen `bye`: answer 204 so its EventSource stops reconnecting.
    Finished,
}

/// Why a request is refused with 400; the message names the culprit and what is allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// `Last-Event-ID` (header or `lastEventId` parameter) is not a number this server sent.
    #[error("Last-Event-ID must be a whole number of ASCII digits below 2^64, got {0:?}")]
    BadLastEventId(String),
    /// A numeric parameter is not a number in its range.
    #[error("query parameter {name} must be a whole number in {min}..={max}, got {value:?}")]
    OutOfRange {
        /// The parameter.
        name: &'static str,
        /// What was sent.
        value: String,
        /// Smallest allowed.
        min: u64,
        /// Largest allowed.
        max: u64,
    },
    /// A parameter this endpoint does not know (often a typo that would be silently ignored).
    #[error("unknown query parameter {0:?}; allowed: interval_ms, count, max_secs, lastEventId")]
    UnknownParameter(String),
    /// The same parameter twice: which one wins would be a guess.
    #[error("query parameter {0} given more than once")]
    RepeatedParameter(&'static str),
}

impl Rejection {
    /// A short, fixed label for metrics.
    #[must_use]
    pub fn reason(&self) -> &'static str {
        match self {
            Self::BadLastEventId(_) => "bad_last_event_id",
            Self::OutOfRange { .. } => "bad_query_value",
            Self::UnknownParameter(_) => "unknown_query_parameter",
            Self::RepeatedParameter(_) => "repeated_query_parameter",
        }
    }
}

/// Decides what to do with `GET /digits?query` carrying an optional `Last-Event-ID` header.
///
/// The header wins over the `lastEventId` parameter: a browser keeps the original URL when it
/// reconnects and sends the id it really saw in the header. An empty id means "none", as a
/// browser with an empty last event ID sends no header at all.
///
/// # Errors
/// A [`Rejection`] for anything malformed or out of range.
pub fn decide(
    query: &str,
    last_event_id_header: Option<&[u8]>,
    defaults: &StreamDefaults,
) -> Result<Decision, Rejection> {
    let params = QueryParams::parse(query)?;
    let limits = &defaults.limits;
    let interval_ms = parse_number(
        "interval_ms",
        params.interval_ms.as_deref(),
        limits.min_interval_ms,
        limits.max_interval_ms,
    )?;
    let count = parse_number("count", params.count.as_deref(), 1, limits.max_count)?;
    let max_secs = parse_number(
        "max_secs",
        params.max_secs.as_deref(),
        1,
        limits.max_max_secs,
    )?;

    let last_seen = match last_event_id_header {
        Some(raw) => parse_last_event_id(raw)?,
        None => match params.last_event_id {
            Some(raw) => parse_last_event_id(raw.as_bytes())?,
            None => None,
        },
    };

    let count = count.unwrap_or(defaults.count);
    let first_id = match last_seen {
        Some(seen) if seen >= count => return Ok(Decision::Finished),
        Some(seen) => seen + 1,
        None => 1,
    };
    Ok(Decision::Stream(StreamPlan {
        first_id,
        count,
        interval: interval_ms.map_or(defaults.interval, Duration::from_millis),
        retry_ms: defaults.retry_ms,
        keepalive: defaults.keepalive,
        max_duration: max_secs.map(Duration::from_secs).or(defaults.max_duration),
        write_stall: defaults.write_stall,
    }))
}

/// `Some(n)` for ASCII digits, `None` for an empty value.
fn parse_last_event_id(raw: &[u8]) -> Result<Option<u64>, Rejection> {
    if raw.is_empty() {
        return Ok(None);
    }
    let bad = || Rejection::BadLastEventId(truncated_lossy(raw));
    if !raw.iter().all(u8::is_ascii_digit) {
        return Err(bad());
    }
    // All ASCII digits, so the str conversion holds; the parse fails only on overflow.
    let digits = std::str::from_utf8(raw).map_err(|_| bad())?;
    digits.parse::<u64>().map(Some).map_err(|_| bad())
}

/// Echoing a client's value back is useful up to a point: cap it so a huge header does not
/// make a huge error body.
fn truncated_lossy(raw: &[u8]) -> String {
    const ECHO_LIMIT: usize = 64;
    let mut text = String::from_utf8_lossy(&raw[..raw.len().min(ECHO_LIMIT)]).into_owned();
    if raw.len() > ECHO_LIMIT {
        text.push('…');
    }
    text
}

/// The recognised parameters, each at most once.
#[derive(Debug, Default)]
struct QueryParams {
    interval_ms: Option<String>,
    count: Option<String>,
    max_secs: Option<String>,
    last_event_id: Option<String>,
}

impl QueryParams {
    /// Percent-decodes `key=value&...` pairs; bytes that are not UTF-8 become U+FFFD, so they
    /// fail later as an unknown name or a bad number rather than here.
    fn parse(query: &str) -> Result<Self, Rejection> {
        let mut params = Self::default();
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            let (slot, name) = match key.as_ref() {
                "interval_ms" => (&mut params.interval_ms, "interval_ms"),
                "count" => (&mut params.count, "count"),
                "max_secs" => (&mut params.max_secs, "max_secs"),
                "lastEventId" => (&mut params.last_event_id, "lastEventId"),
                _ => return Err(Rejection::UnknownParameter(truncated_lossy(key.as_bytes()))),
            };
            if slot.replace(value.into_owned()).is_some() {
                return Err(Rejection::RepeatedParameter(name));
            }
        }
        Ok(params)
    }
}

/// `Some(n)` for a whole number in `min..=max`, `None` when the parameter is absent.
fn parse_number(
    name: &'static str,
    value: Option<&str>,
    min: u64,
    max: u64,
) -> Result<Option<u64>, Rejection> {
    let Some(value) = value else {
        return Ok(None);
    };
    let out_of_range = || Rejection::OutOfRange {
        name,
        value: truncated_lossy(value.as_bytes()),
        min,
        max,
    };
    // Digits only: `u64::from_str` would also take a leading `+`.
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(out_of_range());
    }
    match value.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
        _ => Err(out_of_range()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> StreamDefaults {
        StreamDefaults::from(&Config::default())
    }

    fn plan(query: &str, header: Option<&str>) -> Result<Decision, Rejection> {
        decide(query, header.map(str::as_bytes), &defaults())
    }

    fn stream(query: &str, header: Option<&str>) -> StreamPlan {
        match plan(query, header) {
            Ok(Decision::Stream(plan)) => plan,
            other => panic!("expected a stream, got {other:?}"),
        }
    }

    #[test]
    fn a_plain_request_starts_at_one_with_the_defaults() {
        let plan = stream("", None);
        assert_eq!(plan.first_id, 1);
        assert_eq!(plan.count, 4000);
        assert_eq!(plan.interval, Duration::from_secs(1));
        assert_eq!(plan.retry_ms, 3000);
        assert_eq!(plan.keepalive, Some(Duration::from_secs(15)));
        assert_eq!(plan.max_duration, None);
    }

    #[test]
    fn query_values_override_the_defaults() {
        let plan = stream("interval_ms=50&count=10&max_secs=3", None);
        assert_eq!(plan.interval, Duration::from_millis(50));
        assert_eq!(plan.count, 10);
        assert_eq!(plan.max_duration, Some(Duration::from_secs(3)));
    }

    #[test]
    fn last_event_id_resumes_at_the_next_number() {
        assert_eq!(stream("", Some("41")).first_id, 42);
        assert_eq!(stream("lastEventId=41", None).first_id, 42);
        assert_eq!(stream("", Some("0")).first_id, 1);
    }

    #[test]
    fn the_header_wins_over_the_stale_query_value() {
        assert_eq!(stream("lastEventId=5", Some("12")).first_id, 13);
    }

    #[test]
    fn an_empty_last_event_id_means_none() {
        assert_eq!(stream("", Some("")).first_id, 1);
        assert_eq!(stream("lastEventId=", None).first_id, 1);
    }

    #[test]
    fn resuming_just_before_bye_sends_only_bye() {
        let plan = stream("count=10", Some("9"));
        assert_eq!(plan.first_id, 10);
        // The first id sent is the `bye` event's.
        assert_eq!(plan.first_id, plan.count);
    }

    #[test]
    fn at_or_past_the_end_is_finished() {
        assert_eq!(plan("count=10", Some("10")), Ok(Decision::Finished));
        assert_eq!(plan("", Some("4000")), Ok(Decision::Finished));
        assert_eq!(
            plan("", Some(&u64::MAX.to_string())),
            Ok(Decision::Finished)
        );
    }

    #[test]
    fn malformed_last_event_ids_are_rejected() {
        for bad in [
            "-1",
            "+1",
            "1.5",
            "abc",
            " 1",
            "1 ",
            "0x10",
            "18446744073709551616",
        ] {
            let rejection = plan("", Some(bad)).unwrap_err();
            assert!(
                matches!(rejection, Rejection::BadLastEventId(_)),
                "{bad:?} gave {rejection:?}"
            );
            assert_eq!(rejection.reason(), "bad_last_event_id");
        }
        assert!(matches!(
            plan("lastEventId=x", None),
            Err(Rejection::BadLastEventId(_))
        ));
    }

    #[test]
    fn a_huge_last_event_id_is_echoed_truncated() {
        let huge = "9".repeat(10_000);
        let message = plan("", Some(&huge)).unwrap_err().to_string();
        assert!(message.len() < 200, "{} bytes", message.len());
        assert!(message.contains('…'));
    }

    #[test]
    fn bad_numbers_name_the_parameter_and_the_range() {
        let cases = [
            ("interval_ms=0", "interval_ms", "1..=3600000"),
            ("interval_ms=-5", "interval_ms", "1..=3600000"),
            ("interval_ms=abc", "interval_ms", "1..=3600000"),
            ("interval_ms=", "interval_ms", "1..=3600000"),
            ("interval_ms=%2B5", "interval_ms", "1..=3600000"),
            ("count=0", "count", "1..=1000000000"),
            ("count=1000000001", "count", "1..=1000000000"),
            ("count=99999999999999999999999", "count", "1..=1000000000"),
            ("max_secs=0", "max_secs", "1..=86400"),
            ("max_secs=1e3", "max_secs", "1..=86400"),
        ];
        for (query, name, range) in cases {
            let rejection = plan(query, None).unwrap_err();
            let message = rejection.to_string();
            assert!(
                message.contains(name) && message.contains(range),
                "{query}: {message}"
            );
            assert_eq!(rejection.reason(), "bad_query_value", "{query}");
        }
    }

    #[test]
    fn unknown_repeated_and_undecodable_parameters_are_rejected() {
        assert_eq!(
            plan("interval=5", None),
            Err(Rejection::UnknownParameter("interval".into()))
        );
        assert_eq!(
            plan("count=5&count=6", None),
            Err(Rejection::RepeatedParameter("count"))
        );
        assert!(matches!(
            plan("count=%FF", None),
            Err(Rejection::OutOfRange { name: "count", .. })
        ));
        assert!(matches!(
            plan("%FF=1", None),
            Err(Rejection::UnknownParameter(_))
        ));
    }

    #[test]
    fn limits_come_from_the_configuration() {
        let mut defaults = defaults();
        defaults.limits.max_count = 10;
        assert!(decide("count=11", None, &defaults).is_err());
        assert!(decide("count=10", None, &defaults).is_ok());
    }

    fn due_after_start(plan: &StreamPlan, id: u64) -> Duration {
        Duration::from_nanos(due_nanos_after_start(
            plan.first_id,
            saturating_nanos(plan.interval),
            id,
        ))
    }

    #[test]
    fn due_times_come_from_the_start_not_the_previous_event() {
        let plan = stream("interval_ms=100", Some("9"));
        assert_eq!(due_after_start(&plan, 10), Duration::ZERO);
        assert_eq!(due_after_start(&plan, 11), Duration::from_millis(100));
        assert_eq!(due_after_start(&plan, 1010), Duration::from_secs(100));
    }

    #[test]
    fn due_times_saturate_instead_of_overflowing() {
        let plan = StreamPlan {
            interval: Duration::from_secs(3600),
            ..stream("", None)
        };
        assert_eq!(
            due_after_start(&plan, u64::MAX),
            Duration::from_nanos(u64::MAX)
        );
    }
}
