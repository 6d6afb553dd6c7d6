//! What the stream is, read from its events: how an event's place in the sequence is known
//! (its identity) and what its lateness is measured against. Pure: no I/O, no clock.
//!
//! - [`identity`]: per event source, a numeric `id:`, numeric `data:` or neither, and the
//!   sequence number each event carries under it.
//! - [`lateness`]: a known schedule, a timestamp in the event's JSON data, or inter-arrival
//!   gaps only; reading the timestamp (milliseconds or RFC 3339).
//! - [`llm`]: an event of an OpenAI-style streamed completion: `[DONE]`, an error, or a
//!   chunk with content, a finish reason, token usage.

pub mod identity;
pub mod lateness;
pub mod llm;

pub use identity::{Identity, Reading};
pub use lateness::LatenessMode;

/// What a run checks in each event beyond its identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamProfile {
    /// What lateness is measured against.
    pub lateness: LatenessMode,
    /// The first number a sequence should start at (the digits stream starts at 1).
    pub first: u64,
    /// sse-digits only: a `message` event's data must equal its id.
    pub data_matches_id: bool,
    /// The identity every source has, when the server is known (sse-digits: ids); `None`:
    /// decided per event source from its events.
    pub identity: Option<Identity>,
}

impl StreamProfile {
    /// The sse-digits stream: ids from 1, data equal to the id, events `interval` apart.
    #[must_use]
    pub fn digits(interval: std::time::Duration) -> Self {
        Self {
            lateness: LatenessMode::Schedule(interval),
            first: 1,
            data_matches_id: true,
            identity: Some(Identity::IdSequence),
        }
    }

    /// Any SSE server: sequences from 1, data free, lateness as chosen.
    #[must_use]
    pub fn any(lateness: LatenessMode) -> Self {
        Self {
            lateness,
            first: 1,
            data_matches_id: false,
            identity: None,
        }
    }
}
