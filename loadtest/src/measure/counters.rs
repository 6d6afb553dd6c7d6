//! Everything a run counts, per cause: one `u64` per figure, plus failures by status code
//! and by description. Adding is field-wise, so shards merge in any order.

use std::collections::BTreeMap;

/// Distinct error descriptions kept per map; the rest are counted under one key.
const MAX_ERROR_KINDS: usize = 32;
/// The key that counts the descriptions past [`MAX_ERROR_KINDS`].
const OTHER_KINDS: &str = "(other kinds)";

/// Declares the counter struct, documenting each field once, with a field-wise `add` and
/// the fields' names.
macro_rules! counters {
    ($( $(#[doc = $doc:literal])* $name:ident ),* $(,)?) => {
        /// Everything the run counts; see docs/loadtest/figures.md for what each figure
        /// means. How each is named and shown is [`crate::report::counters::COUNTERS`].
        #[derive(Debug, Clone, Default, PartialEq, Eq)]
        pub struct Counters {
            $( $(#[doc = $doc])* pub $name: u64, )*
            /// Non-200 answers (other than 204), by status code.
            pub status_codes: BTreeMap<u16, u64>,
            /// Transport errors other than refused and timeout, by description.
            pub other_errors: BTreeMap<String, u64>,
            /// Read errors of open streams, by description.
            pub read_error_kinds: BTreeMap<String, u64>,
            /// Events with another name than `message` and `bye`, by name.
            pub event_names: BTreeMap<String, u64>,
        }

        impl Counters {
            /// The names of the `u64` fields, in order.
            pub const NAMES: &'static [&'static str] = &[$(stringify!($name)),*];

            /// Counters whose `u64` fields hold 1, 2, 3… in order, to tell them apart.
            #[cfg(test)]
            pub(crate) fn numbered() -> Self {
                let mut n = 0;
                Self {
                    $( $name: { n += 1; n }, )*
                    ..Self::default()
                }
            }

            /// The `u64` field named `name` (one of [`Self::NAMES`]), to set it.
            pub fn get_mut(&mut self, name: &str) -> Option<&mut u64> {
                match name {
                    $( stringify!($name) => Some(&mut self.$name), )*
                    _ => None,
                }
            }

            /// Adds every count of `other` into this one.
            pub fn add(&mut self, other: &Self) {
                $( self.$name += other.$name; )*
                for (code, n) in &other.status_codes {
                    *self.status_codes.entry(*code).or_default() += n;
                }
                for (kind, n) in &other.other_errors {
                    count_kind(&mut self.other_errors, kind, *n);
                }
                for (kind, n) in &other.read_error_kinds {
                    count_kind(&mut self.read_error_kinds, kind, *n);
                }
                for (name, n) in &other.event_names {
                    count_kind(&mut self.event_names, name, *n);
                }
            }
        }
    };
}

counters! {
    /// Event sources run (one per goose user and transaction).
    event_sources,
    /// Connection attempts, first ones and reconnections.
    connect_attempts,
    /// Attempts that opened a stream (200 with `text/event-stream`).
    connections_opened,
    /// Attempts refused (nothing listening).
    failed_refused,
    /// Attempts refused while the embedded server was down on purpose (`--restart-at`):
    /// expected, so not failures; the retry that follows is what is measured.
    refused_during_restart,
    /// Attempts that timed out (connect or response headers).
    failed_timeout,
    /// Attempts answered with a status other than 200 and 204.
    failed_status,
    /// Attempts answered 200 with another content type.
    failed_content_type,
    /// Attempts answered 200 with a content or transfer coding the client did not ask for
    /// (`gzip`): the body cannot be read as an event stream.
    failed_encoding,
    /// Attempts that met more redirects than `--max-redirects`.
    failed_redirects,
    /// Attempts that failed with another transport error.
    failed_other,
    /// Open streams that broke with a read error.
    read_errors,
    /// Of those, bodies cut short: the connection ended inside a chunk, or short of the
    /// `Content-Length` or the last chunk.
    body_cut,
    /// Of those, bodies whose framing was malformed (a chunk size that is not hex).
    framing_errors,
    /// Open streams that delivered no byte within the idle timeout.
    idle_timeouts,
    /// Open streams we closed because a line or event passed `--max-event-bytes`.
    event_too_large,
    /// Events dispatched; of an id-sequence source, only those that carried a numeric id;
    /// with `--llm`, events with content.
    events,
    /// Events due so far: from the first id to the highest seen, over every event source.
    expected,
    /// Ids skipped and never seen, including across reconnections.
    lost,
    /// Ids seen more than once.
    duplicated,
    /// Skipped ids that arrived after later ones.
    out_of_order,
    /// Events that should carry a number and do not: a non-numeric id in an id sequence,
    /// non-numeric data in a numeric-data sequence, or (sse-digits) data other than the id.
    malformed,
    /// `event`, `data` and `id` values that held bytes which are not UTF-8, decoded with
    /// U+FFFD in their place as the standard says.
    invalid_utf8,
    /// Events that arrived before their scheduled time (their connection's first event was late).
    early,
    /// Connections after the first one of an event source.
    reconnects,
    /// Reconnections whose first event was one past the last id seen before.
    resumed_ok,
    /// Reconnections whose first event was any other id.
    resumed_wrong,
    /// Gaps between events of a connection (or before its first) longer than the stall threshold.
    stalls,
    /// Event sources that ended with `bye`.
    completed_bye,
    /// Event sources that ended with 204 No Content.
    ended_no_content,
    /// Connections we closed ourselves after `--drop-after` events.
    dropped_by_client,
    /// Connections the server ended before `bye`.
    closed_by_server,
    /// Of those, connections that sent no `retry:` hint before they ended.
    closed_without_retry_hint,
    /// Event sources still streaming when the run ended.
    stopped_at_deadline,
    /// Keep-alive comments received.
    keepalives,
    /// Reconnections of a numeric-data source whose numbers started again at the first: the
    /// server keeps no place, so what follows is neither duplicated nor lost.
    restarted,
    /// Events without a readable timestamp, when lateness is read from one.
    untimed,
    /// Events with another name than `message` and `bye`.
    other_names,
    /// Event sources identified by a numeric `id:`.
    identity_id_sequence,
    /// Event sources without ids whose `message` data is a number.
    identity_numeric_data,
    /// Event sources whose events carry neither (no sequence checks).
    identity_none,
    /// Redirects followed (301, 302, 303, 307, 308).
    redirects,
    /// Reconnection waits planned from the server's `retry:` field (the last one it sent,
    /// which holds until another comes).
    retry_from_field,
    /// Reconnection waits planned from `--retry-ms`: the server had sent no `retry:`.
    retry_default,
    /// `503` or `429` answers with a `Retry-After` that the event source waited out
    /// (within the retry bounds) before it tried again.
    retry_after,
    /// Reconnection delays the server asked for (`retry:` or `Retry-After`) outside
    /// `--min-retry-ms`..`--max-retry-ms`, moved to the nearer bound.
    retry_clamped,
    /// `--llm`: completion requests sent (each also counts as a connection attempt).
    llm_requests,
    /// `--llm`: requests whose stream completed: `[DONE]`, or the body's end after a chunk
    /// with a finish reason.
    llm_completed,
    /// `--llm`: requests the server failed in the stream, with an `event: error` or a chunk
    /// holding an `error` object.
    llm_error_events,
    /// `--llm`: streams cut: the body ended or broke before `[DONE]` or a finish reason.
    llm_cut,
    /// `--llm`: requests that timed out, waiting for the headers (`--open-timeout-ms`) or
    /// as a whole (`--request-timeout-secs`).
    llm_timeouts,
    /// `--llm`: requests whose stream carried data that is not a JSON object.
    llm_malformed,
    /// `--llm`: completion tokens of the completed requests, as their usage reported them.
    llm_output_tokens,
    /// `--llm`: completed requests whose stream reported no usage (no tokens to count).
    llm_without_usage,
    /// `--llm`: requests still in flight at the run's deadline: stopped, not failed, and
    /// not measured.
    llm_stopped_at_deadline,
}

impl Counters {
    /// Every failed connection attempt, whatever the cause.
    #[must_use]
    pub fn failed(&self) -> u64 {
        self.failed_refused
            + self.failed_timeout
            + self.failed_status
            + self.failed_content_type
            + self.failed_encoding
            + self.failed_redirects
            + self.failed_other
    }

    /// `--llm`: requests that got a stream and then failed in it (error event, cut, timeout,
    /// data that is not JSON). Refusals by status or content type are in [`Self::failed`].
    #[must_use]
    pub fn llm_failed(&self) -> u64 {
        self.llm_error_events + self.llm_cut + self.llm_timeouts + self.llm_malformed
    }

    /// Whether loss, duplicates and order could be checked: some event source had a sequence
    /// (ids or numeric data), or none had events without one.
    #[must_use]
    pub fn sequence_checkable(&self) -> bool {
        self.identity_id_sequence + self.identity_numeric_data > 0 || self.identity_none == 0
    }

    /// Whether resumes could be checked: some event source had ids to resume from, or every
    /// source's identity is unknown (no events).
    #[must_use]
    pub fn resume_checkable(&self) -> bool {
        self.identity_id_sequence > 0 || self.identity_numeric_data + self.identity_none == 0
    }

    /// Counts one event of another name than `message` and `bye`, keeping the map small.
    pub fn count_event_name(&mut self, name: &str) {
        self.other_names += 1;
        count_kind(&mut self.event_names, name, 1);
    }

    /// Counts one transport error by description, keeping the map small.
    pub fn count_error(&mut self, kind: &str) {
        count_kind(&mut self.other_errors, kind, 1);
    }

    /// Counts one read error by description, keeping the map small.
    pub fn count_read_error(&mut self, kind: &str) {
        count_kind(&mut self.read_error_kinds, kind, 1);
    }
}

/// Adds `n` to `kind` in `map`, or to [`OTHER_KINDS`] once the map holds
/// [`MAX_ERROR_KINDS`] others: a server that fails in new ways every time must not grow it
/// without bound.
fn count_kind(map: &mut BTreeMap<String, u64>, kind: &str, n: u64) {
    if let Some(count) = map.get_mut(kind) {
        *count += n;
    } else if map.len() < MAX_ERROR_KINDS {
        map.insert(kind.to_owned(), n);
    } else {
        *map.entry(OTHER_KINDS.to_owned()).or_default() += n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_add_field_by_field_and_maps_by_key() {
        let mut a = Counters {
            lost: 1,
            ..Counters::default()
        };
        a.status_codes.insert(503, 2);
        let mut b = Counters {
            lost: 2,
            events: 7,
            ..Counters::default()
        };
        b.status_codes.insert(503, 1);
        b.status_codes.insert(400, 1);
        a.add(&b);
        assert_eq!((a.lost, a.events), (3, 7));
        assert_eq!(a.status_codes, BTreeMap::from([(400, 1), (503, 3)]));
    }

    #[test]
    fn the_error_map_stays_small() {
        let mut c = Counters::default();
        for i in 0..100 {
            c.count_error(&format!("kind {i}"));
        }
        assert_eq!(c.other_errors.len(), MAX_ERROR_KINDS + 1);
        assert_eq!(c.other_errors.values().sum::<u64>(), 100);
    }
}
