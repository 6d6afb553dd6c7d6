//! What an event's lateness is measured against, chosen by flags:
//!
//! 1. a known schedule (`--interval-ms`): event N of a connection is due at the connection's
//!    first event + (N − first N) × interval;
//! 2. a timestamp in the event (`--timestamp-field NAME` in JSON data, milliseconds since the
//!    Unix epoch or an RFC 3339 string): lateness is arrival − that time, which is how a
//!    pub/sub server's delivery latency is usually measured (the clocks must agree);
//! 3. neither: no lateness, only the inter-arrival gaps (stalls) and the rate.

use std::fmt;
use std::time::Duration;

/// How lateness is measured in a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LatenessMode {
    /// Against a drift-free schedule of this interval, anchored at each connection's first
    /// event.
    Schedule(Duration),
    /// Against the time in this field of the event's JSON data.
    Timestamp(String),
    /// Not measured: inter-arrival gaps only.
    Gaps,
}

impl LatenessMode {
    /// The key the JSON summary gives it.
    #[must_use]
    pub fn key(&self) -> &'static str {
        match self {
            Self::Schedule(_) => "schedule",
            Self::Timestamp(_) => "timestamp",
            Self::Gaps => "gaps",
        }
    }

    /// True when events get a lateness at all.
    #[must_use]
    pub fn measures_lateness(&self) -> bool {
        !matches!(self, Self::Gaps)
    }
}

impl fmt::Display for LatenessMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Schedule(interval) => write!(
                f,
                "schedule of {} ms, anchored at each connection's first event",
                interval.as_millis()
            ),
            Self::Timestamp(field) => write!(f, "timestamp field {field:?} of the JSON data"),
            Self::Gaps => f.write_str("not measured (no schedule or timestamp): gaps only"),
        }
    }
}

/// The time in `field` of `data` (a JSON object), as nanoseconds since the Unix epoch: a
/// number is milliseconds (fractions kept), a string is RFC 3339 (any offset) or a number of
/// milliseconds. `None` when the data is not JSON, the field is missing or unreadable.
#[must_use]
pub fn timestamp_nanos(data: &str, field: &str) -> Option<i128> {
    let value: serde_json::Value = serde_json::from_str(data).ok()?;
    match value.get(field)? {
        serde_json::Value::Number(n) => millis_to_nanos(n.as_f64()?),
        serde_json::Value::String(s) => {
            if let Ok(ms) = s.trim().parse::<f64>() {
                return millis_to_nanos(ms);
            }
            let time = chrono::DateTime::parse_from_rfc3339(s.trim()).ok()?;
            time.timestamp_nanos_opt().map(i128::from)
        }
        _ => None,
    }
}

/// Whole milliseconds exactly, and the fraction to the nanosecond (an f64 holds a whole
/// epoch time in ms exactly, but not once multiplied into nanoseconds).
fn millis_to_nanos(ms: f64) -> Option<i128> {
    ms.is_finite()
        .then(|| ms.trunc() as i128 * 1_000_000 + (ms.fract() * 1e6).round() as i128)
}

/// `arrived − sent` (both in nanoseconds since the epoch): late by that much, or early when
/// the sender's clock runs ahead of ours.
#[must_use]
pub fn against_timestamp(arrived_nanos: i128, sent_nanos: i128) -> Signed {
    let late = arrived_nanos - sent_nanos;
    let magnitude = Duration::from_nanos(u64::try_from(late.unsigned_abs()).unwrap_or(u64::MAX));
    if late >= 0 {
        Signed::Late(magnitude)
    } else {
        Signed::Early(magnitude)
    }
}

/// A lateness that can be negative.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signed {
    /// Arrived this long after its time.
    Late(Duration),
    /// Arrived this long before its time.
    Early(Duration),
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i128 = 1_700_000_000_000 * 1_000_000;

    #[test]
    fn a_number_is_milliseconds_since_the_epoch() {
        assert_eq!(timestamp_nanos(r#"{"ts": 1700000000000}"#, "ts"), Some(T));
        assert_eq!(
            timestamp_nanos(r#"{"ts": 1700000000000.5}"#, "ts"),
            Some(T + 500_000)
        );
        assert_eq!(timestamp_nanos(r#"{"ts": "1700000000000"}"#, "ts"), Some(T));
    }

    #[test]
    fn a_string_is_rfc_3339_with_any_offset() {
        assert_eq!(
            timestamp_nanos(r#"{"sent_at": "2023-11-14T22:13:20Z"}"#, "sent_at"),
            Some(T)
        );
        assert_eq!(
            timestamp_nanos(r#"{"sent_at": "2023-11-14T23:13:20.25+01:00"}"#, "sent_at"),
            Some(T + 250_000_000)
        );
    }

    #[test]
    fn anything_else_has_no_timestamp() {
        for data in [
            "1",
            "not json",
            r#"{"other": 1}"#,
            r#"{"ts": "yesterday"}"#,
            r#"{"ts": null}"#,
            r#"[1, 2]"#,
        ] {
            assert_eq!(timestamp_nanos(data, "ts"), None, "{data}");
        }
    }

    #[test]
    fn lateness_is_arrival_minus_the_timestamp() {
        assert_eq!(
            against_timestamp(T + 3_000_000, T),
            Signed::Late(Duration::from_millis(3))
        );
        assert_eq!(
            against_timestamp(T, T + 2_000_000),
            Signed::Early(Duration::from_millis(2))
        );
    }

    #[test]
    fn the_mode_says_what_it_measures_against() {
        let schedule = LatenessMode::Schedule(Duration::from_millis(100));
        assert_eq!(
            schedule.to_string(),
            "schedule of 100 ms, anchored at each connection's first event"
        );
        assert_eq!(
            LatenessMode::Timestamp("ts".into()).to_string(),
            "timestamp field \"ts\" of the JSON data"
        );
        assert!(!LatenessMode::Gaps.measures_lateness());
    }
}
