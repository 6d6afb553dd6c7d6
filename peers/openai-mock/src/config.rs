//! What the mock is told to do: one typed struct with the defaults, shared by the binary's
//! flags and by tests that build the mock in-process.

use std::fmt;
use std::time::Duration;

/// How every streamed completion is paced and how long it is.
///
/// The load test's measurements are checked against these numbers, so they describe the
/// wire exactly: token `k` is due at `ttft + k / tokens_per_sec` after the request starts.
#[derive(Clone)]
pub struct MockConfig {
    /// Delay from the request's start to the first content chunk: the time to first token a
    /// load test should measure. The role-only chunk goes out at once, before this delay.
    pub ttft: Duration,
    /// Content tokens per second after the first one: token `k` is due at
    /// `ttft + k / tokens_per_sec`. A value that is not a positive number (zero, negative,
    /// NaN) or infinity sends every token at `ttft`, unpaced.
    pub tokens_per_sec: f64,
    /// Tokens joined into one chunk, as real servers batch them; 0 counts as 1. A chunk goes
    /// out when its last token is due.
    pub tokens_per_event: u32,
    /// Tokens per completion, unless the request's `max_completion_tokens` or `max_tokens`
    /// asks for fewer (then `finish_reason` is `"length"`).
    pub output_tokens: u32,
    /// When set, requests must carry `Authorization: Bearer <key>`, so a load test can check
    /// that it sends its key. Never printed: `Debug` shows it redacted.
    pub api_key: Option<String>,
}

impl MockConfig {
    /// The default pacing: 200 ms to the first token, then 50 tokens/s, one token per chunk,
    /// 64 tokens, no key. Public so the binary's flags can show the same defaults.
    pub const DEFAULT_TTFT: Duration = Duration::from_millis(200);
    /// See [`MockConfig::DEFAULT_TTFT`].
    pub const DEFAULT_TOKENS_PER_SEC: f64 = 50.0;
    /// See [`MockConfig::DEFAULT_TTFT`].
    pub const DEFAULT_TOKENS_PER_EVENT: u32 = 1;
    /// See [`MockConfig::DEFAULT_TTFT`].
    pub const DEFAULT_OUTPUT_TOKENS: u32 = 64;
}

impl Default for MockConfig {
    fn default() -> Self {
        Self {
            ttft: Self::DEFAULT_TTFT,
            tokens_per_sec: Self::DEFAULT_TOKENS_PER_SEC,
            tokens_per_event: Self::DEFAULT_TOKENS_PER_EVENT,
            output_tokens: Self::DEFAULT_OUTPUT_TOKENS,
            api_key: None,
        }
    }
}

/// Written by hand so that the key never reaches a log through `{:?}`.
impl fmt::Debug for MockConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockConfig")
            .field("ttft", &self.ttft)
            .field("tokens_per_sec", &self.tokens_per_sec)
            .field("tokens_per_event", &self.tokens_per_event)
            .field("output_tokens", &self.output_tokens)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_key() {
        let config = MockConfig {
            api_key: Some("sk-secret-42".into()),
            ..MockConfig::default()
        };
        let shown = format!("{config:?}");
        assert!(!shown.contains("sk-secret-42"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }

    #[test]
    fn debug_shows_no_key_as_none() {
        let shown = format!("{:?}", MockConfig::default());
        assert!(shown.contains("api_key: None"), "{shown}");
    }
}
