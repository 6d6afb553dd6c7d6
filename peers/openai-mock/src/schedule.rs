//! When each content chunk of one completion is due, as an offset from the request's start.
//! Pure arithmetic: the server sleeps until `start + offset`, so the schedule never drifts
//! with the time spent writing earlier chunks.

use std::time::Duration;

const NANOS_PER_SEC: f64 = 1e9;

/// The timing of one completion's content tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    /// Offset of token 0.
    ttft: Duration,
    /// Tokens per second; see [`crate::MockConfig::tokens_per_sec`] for the odd values.
    tokens_per_sec: f64,
    /// Tokens per chunk, at least 1.
    tokens_per_event: u32,
    /// Content tokens in the completion.
    tokens: u32,
}

/// One content chunk: which tokens it carries and when it goes out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenEvent {
    /// Index of the chunk's first token.
    pub first_token: u32,
    /// Tokens in the chunk; only the last chunk may have fewer than `tokens_per_event`.
    pub len: u32,
    /// When the chunk's last token is due.
    pub due: Duration,
}

impl Schedule {
    /// A schedule for `tokens` tokens; a `tokens_per_event` of 0 counts as 1.
    pub fn new(ttft: Duration, tokens_per_sec: f64, tokens_per_event: u32, tokens: u32) -> Self {
        Self {
            ttft,
            tokens_per_sec,
            tokens_per_event: tokens_per_event.max(1),
            tokens,
        }
    }

    /// When token `k` is due: `ttft + k / tokens_per_sec`, rounded to the nanosecond so that
    /// whole-millisecond rates give whole-millisecond offsets (tokio's timer resolution).
    pub fn token_due(&self, k: u32) -> Duration {
        let nanos = f64::from(k) * NANOS_PER_SEC / self.tokens_per_sec;
        // Not a positive finite number (a rate of 0, below 0, NaN or infinity): unpaced.
        let after_first = if nanos.is_finite() && nanos > 0.0 {
            // `as` saturates, so an absurdly slow rate cannot wrap around.
            Duration::from_nanos(nanos.round() as u64)
        } else {
            Duration::ZERO
        };
        self.ttft.saturating_add(after_first)
    }

    /// Number of content chunks.
    pub fn event_count(&self) -> u32 {
        self.tokens.div_ceil(self.tokens_per_event)
    }

    /// Content chunk `i`, or `None` past the last one.
    pub fn event(&self, i: u32) -> Option<TokenEvent> {
        let first_token = i.checked_mul(self.tokens_per_event)?;
        if first_token >= self.tokens {
            return None;
        }
        let len = self.tokens_per_event.min(self.tokens - first_token);
        Some(TokenEvent {
            first_token,
            len,
            due: self.token_due(first_token + len - 1),
        })
    }

    /// When the last content chunk is due, or `ttft` when there is none: the completion is
    /// over then, and the closing chunks follow at once.
    pub fn end(&self) -> Duration {
        match self.tokens.checked_sub(1) {
            Some(last) => self.token_due(last),
            None => self.ttft,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn token_k_is_due_at_ttft_plus_k_over_rate() {
        let schedule = Schedule::new(ms(100), 20.0, 1, 10);
        assert_eq!(schedule.token_due(0), ms(100));
        assert_eq!(schedule.token_due(1), ms(150));
        assert_eq!(schedule.token_due(9), ms(550));
        assert_eq!(schedule.end(), ms(550));
    }

    #[test]
    fn a_rate_that_is_not_whole_milliseconds_rounds_to_the_nanosecond() {
        let schedule = Schedule::new(ms(0), 3.0, 1, 3);
        assert_eq!(schedule.token_due(1), Duration::from_nanos(333_333_333));
        assert_eq!(schedule.token_due(2), Duration::from_nanos(666_666_667));
    }

    #[test]
    fn one_token_per_event_gives_one_event_per_token() {
        let schedule = Schedule::new(ms(200), 50.0, 1, 3);
        let events: Vec<_> = (0..schedule.event_count())
            .map(|i| schedule.event(i).unwrap())
            .collect();
        assert_eq!(
            events,
            [
                TokenEvent {
                    first_token: 0,
                    len: 1,
                    due: ms(200)
                },
                TokenEvent {
                    first_token: 1,
                    len: 1,
                    due: ms(220)
                },
                TokenEvent {
                    first_token: 2,
                    len: 1,
                    due: ms(240)
                },
            ]
        );
        assert_eq!(schedule.event(3), None);
    }

    #[test]
    fn a_batch_goes_out_when_its_last_token_is_due() {
        // 10 tokens, 4 per event: 0-3, 4-7, 8-9.
        let schedule = Schedule::new(ms(100), 10.0, 4, 10);
        assert_eq!(schedule.event_count(), 3);
        assert_eq!(
            schedule.event(0),
            Some(TokenEvent {
                first_token: 0,
                len: 4,
                due: ms(400)
            })
        );
        assert_eq!(
            schedule.event(1),
            Some(TokenEvent {
                first_token: 4,
                len: 4,
                due: ms(800)
            })
        );
        assert_eq!(
            schedule.event(2),
            Some(TokenEvent {
                first_token: 8,
                len: 2,
                due: ms(1000)
            })
        );
        assert_eq!(schedule.event(3), None);
        assert_eq!(schedule.end(), ms(1000));
    }

    #[test]
    fn zero_tokens_per_event_counts_as_one() {
        let schedule = Schedule::new(ms(0), 1.0, 0, 2);
        assert_eq!(schedule.event_count(), 2);
        assert_eq!(schedule.event(1).map(|e| e.len), Some(1));
    }

    #[test]
    fn no_tokens_means_no_events_and_the_end_at_ttft() {
        let schedule = Schedule::new(ms(70), 50.0, 1, 0);
        assert_eq!(schedule.event_count(), 0);
        assert_eq!(schedule.event(0), None);
        assert_eq!(schedule.end(), ms(70));
    }

    #[test]
    fn rates_that_are_not_positive_numbers_send_every_token_at_ttft() {
        for rate in [0.0, -5.0, f64::NAN, f64::INFINITY] {
            let schedule = Schedule::new(ms(30), rate, 1, 5);
            assert_eq!(schedule.token_due(4), ms(30), "rate {rate}");
        }
    }

    #[test]
    fn extreme_values_saturate_instead_of_panicking() {
        let schedule = Schedule::new(Duration::MAX, 1e-300, 1, u32::MAX);
        assert_eq!(schedule.token_due(u32::MAX - 1), Duration::MAX);
        assert_eq!(schedule.event_count(), u32::MAX);
        let batched = Schedule::new(ms(0), 1.0, u32::MAX, u32::MAX);
        assert_eq!(batched.event_count(), 1);
        assert_eq!(batched.event(1), None);
    }
}
