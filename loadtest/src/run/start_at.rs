//! `--start-at UNIX_SECS`: every process of a run (on this machine or others) waits for one
//! moment, so their users ramp up together and their timelines line up slot by slot.

use std::time::{Duration, SystemTime};

/// How far past a start moment may be when it is reached: setting up (raising limits,
/// building clients) takes a moment, and clocks of several machines differ a little.
pub const LATE_BY_AT_MOST: Duration = Duration::from_secs(5);
/// How far ahead a start moment may be: further is more likely milliseconds given for
/// seconds than a plan.
pub const AHEAD_BY_AT_MOST: Duration = Duration::from_secs(24 * 3600);

/// How long to wait from `now` for the moment `at` (seconds since the Unix epoch).
///
/// # Errors
/// When `at` is not a number, more than [`LATE_BY_AT_MOST`] past, or more than
/// [`AHEAD_BY_AT_MOST`] ahead; the message says which.
pub fn delay(at: f64, now: SystemTime) -> Result<Duration, String> {
    if !at.is_finite() || at < 0.0 {
        return Err(format!(
            "--start-at {at}: not a moment (seconds since the Unix epoch)"
        ));
    }
    let now = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64();
    let ahead = at - now;
    if ahead < -LATE_BY_AT_MOST.as_secs_f64() {
        return Err(format!(
            "--start-at {at} is {:.1} s in the past (at most {} s late is accepted): give a \
             moment a little ahead, such as $(( $(date +%s) + 10 ))",
            -ahead,
            LATE_BY_AT_MOST.as_secs()
        ));
    }
    if ahead > AHEAD_BY_AT_MOST.as_secs_f64() {
        return Err(format!(
            "--start-at {at} is {ahead:.0} s ahead, more than a day: seconds since the Unix \
             epoch are expected, not milliseconds"
        ));
    }
    Ok(Duration::from_secs_f64(ahead.max(0.0)))
}

/// Sleeps until the moment `at`.
///
/// # Errors
/// As [`delay`].
pub async fn wait_until(at: f64) -> anyhow::Result<()> {
    let wait = delay(at, SystemTime::now()).map_err(anyhow::Error::msg)?;
    tokio::time::sleep(wait).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn a_moment_ahead_is_waited_for() {
        assert_eq!(delay(1_000.5, at(1_000)), Ok(Duration::from_millis(500)));
    }

    #[test]
    fn a_moment_just_past_starts_at_once() {
        assert_eq!(delay(997.0, at(1_000)), Ok(Duration::ZERO));
    }

    #[test]
    fn a_moment_long_past_or_far_ahead_is_refused() {
        let err = delay(900.0, at(1_000)).unwrap_err();
        assert!(err.contains("100.0 s in the past"), "{err}");
        let err = delay(1_000.0 * 1_000.0, at(1_000)).unwrap_err();
        assert!(err.contains("milliseconds"), "{err}");
        assert!(delay(f64::NAN, at(1_000)).is_err());
    }
}
