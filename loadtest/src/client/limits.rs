//! What a server may make the client wait for, hold or follow, bounded. The load test and
//! `sse-client` flatten the same [`Limits`] into their command lines, so both take the
//! same flags with the same defaults, and a misbehaving server costs either the same.

use std::time::Duration;

/// The default of `--max-event-bytes`: 1 MiB, far above any event a browser-facing stream
/// sends.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 1 << 20;

/// Bounds on what a server can make the client do.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
#[command(
    next_help_heading = "Client limits (what a misbehaving server can cost; the same in sse-client)"
)]
pub struct Limits {
    /// Reconnection delay before the server sends a `retry:` hint (browsers use 3000).
    #[arg(long, default_value_t = 3000, value_name = "MS")]
    pub retry_ms: u64,

    /// Shortest reconnection delay, whatever the server asks: a `retry: 0` or a
    /// `Retry-After: 0` cannot make every user reconnect at once, over and over.
    #[arg(long, default_value_t = 100, value_name = "MS")]
    pub min_retry_ms: u64,

    /// Longest reconnection delay, whatever the server asks: a `retry:` of 10⁹ ms or a
    /// distant `Retry-After` does not park a user for the rest of the run.
    #[arg(long, default_value_t = 60_000, value_name = "MS")]
    pub max_retry_ms: u64,

    /// Longest wait for the TCP connection.
    #[arg(long, default_value_t = 10_000, value_name = "MS")]
    pub connect_timeout_ms: u64,

    /// Longest wait from request to response headers (a server that accepts and never
    /// answers).
    #[arg(long, default_value_t = 10_000, value_name = "MS")]
    pub open_timeout_ms: u64,

    /// A stream with no byte at all (keep-alives count) for this long is reopened.
    #[arg(long, default_value_t = 60, value_name = "SECS")]
    pub idle_timeout_secs: u64,

    /// Most bytes a stream may hold in a line not yet ended or an event not yet dispatched
    /// (1 MiB); past it the connection is closed, counted as `event too large`, and
    /// reopened after the retry delay, so a server that never ends a line or an event
    /// cannot grow memory without bound.
    #[arg(long, default_value_t = DEFAULT_MAX_EVENT_BYTES, value_name = "BYTES")]
    pub max_event_bytes: usize,

    /// Redirects (301, 302, 303, 307, 308) followed to open one stream, as a browser's
    /// fetch does (20); past it the event source gives up (`too many redirects`).
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub max_redirects: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            retry_ms: 3000,
            min_retry_ms: 100,
            max_retry_ms: 60_000,
            connect_timeout_ms: 10_000,
            open_timeout_ms: 10_000,
            idle_timeout_secs: 60,
            max_event_bytes: DEFAULT_MAX_EVENT_BYTES,
            max_redirects: 20,
        }
    }
}

impl Limits {
    /// Checks what clap cannot: the retry bounds must make a range.
    ///
    /// # Errors
    /// When `--min-retry-ms` is above `--max-retry-ms`.
    pub fn validate(&self) -> Result<(), String> {
        if self.min_retry_ms > self.max_retry_ms {
            return Err(format!(
                "--min-retry-ms {} is above --max-retry-ms {}",
                self.min_retry_ms, self.max_retry_ms
            ));
        }
        Ok(())
    }

    /// The reconnection delays allowed.
    #[must_use]
    pub fn retry_bounds(&self) -> RetryBounds {
        RetryBounds {
            min: Duration::from_millis(self.min_retry_ms),
            max: Duration::from_millis(self.max_retry_ms.max(self.min_retry_ms)),
        }
    }

    /// The TCP connect timeout.
    #[must_use]
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }
}

/// The range every reconnection delay is kept in, whoever asked for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryBounds {
    /// The shortest delay.
    pub min: Duration,
    /// The longest delay.
    pub max: Duration,
}

impl Default for RetryBounds {
    fn default() -> Self {
        Limits::default().retry_bounds()
    }
}

impl RetryBounds {
    /// `asked` kept within the bounds, and whether it had to be moved.
    #[must_use]
    pub fn clamp(self, asked: Duration) -> (Duration, bool) {
        let kept = asked.clamp(self.min, self.max);
        (kept, kept != asked)
    }
}

/// The delay a `Retry-After` value asks for: delay-seconds, or an HTTP date (the time from
/// `now` to it, zero if past). `None` when it is neither.
#[must_use]
pub fn retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{SystemTime, UNIX_EPOCH};

    #[test]
    fn the_clap_defaults_are_the_default() {
        #[derive(clap::Parser)]
        struct Flags {
            #[command(flatten)]
            limits: Limits,
        }
        let parsed = <Flags as clap::Parser>::try_parse_from(["x"])
            .unwrap()
            .limits;
        assert_eq!(parsed, Limits::default());
        assert_eq!(parsed.retry_bounds(), RetryBounds::default());
    }

    #[test]
    fn delays_outside_the_bounds_are_moved_in_and_said_so() {
        let bounds = RetryBounds {
            min: Duration::from_millis(100),
            max: Duration::from_secs(60),
        };
        assert_eq!(
            bounds.clamp(Duration::ZERO),
            (Duration::from_millis(100), true)
        );
        assert_eq!(
            bounds.clamp(Duration::from_millis(1_000_000_000)),
            (Duration::from_secs(60), true)
        );
        assert_eq!(
            bounds.clamp(Duration::from_millis(3000)),
            (Duration::from_millis(3000), false)
        );
    }

    #[test]
    fn min_above_max_is_refused() {
        let limits = Limits {
            min_retry_ms: 5000,
            max_retry_ms: 1000,
            ..Limits::default()
        };
        assert!(limits
            .validate()
            .unwrap_err()
            .contains("--min-retry-ms 5000"));
        assert!(Limits::default().validate().is_ok());
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(retry_after(" 2 ", now), Some(Duration::from_secs(2)));
        assert_eq!(
            retry_after("99999999999999999999999", now),
            Some(Duration::from_secs(u64::MAX))
        );
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(retry_after(&later, now), Some(Duration::from_secs(30)));
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(30));
        assert_eq!(retry_after(&earlier, now), Some(Duration::ZERO));
        assert_eq!(retry_after("soon", now), None);
        assert_eq!(retry_after("-1", now), None);
        assert_eq!(retry_after("", SystemTime::now()), None);
    }
}
