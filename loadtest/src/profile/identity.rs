//! An event source's identity mode: what tells one event from the next. It is decided once per
//! event source from its first event that can say, then every event is read under it:
//!
//! 1. a numeric `id:` → the id sequence (lost, duplicated, out of order, resume checks);
//! 2. no id, numeric `data:` on `message` events → the data sequence (the same checks except
//!    resume, since there is no `Last-Event-ID` to resume from);
//! 3. neither → no sequence checks.

use serde::Serialize;

/// What identifies the events of one event source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Identity {
    /// Each event's `id:` is a number, one past the previous.
    IdSequence,
    /// No `id:`; each `message` event's data is a number, one past the previous.
    NumericData,
    /// Neither: events cannot be told apart, so loss and duplicates cannot be checked.
    None,
}

impl Identity {
    /// Every mode, in the order reported.
    pub const ALL: [Self; 3] = [Self::IdSequence, Self::NumericData, Self::None];

    /// The identity an event shows, or `None` when this event cannot decide it: a named
    /// event (not `message`) without a numeric id says nothing about the rest of the stream.
    #[must_use]
    pub fn decide(event_type: &str, data: &str, last_event_id: &str) -> Option<Self> {
        if number(last_event_id).is_some() {
            Some(Self::IdSequence)
        } else if event_type != "message" {
            None
        } else if number(data).is_some() {
            Some(Self::NumericData)
        } else {
            Some(Self::None)
        }
    }

    /// How the summary names it.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::IdSequence => "id sequence",
            Self::NumericData => "numeric data",
            Self::None => "none",
        }
    }

    /// Where event number `n` of a source of this identity comes from.
    #[must_use]
    pub fn read(self, event_type: &str, data: &str, last_event_id: &str) -> Reading {
        match self {
            Self::IdSequence => number(last_event_id).map_or(Reading::Malformed, Reading::Number),
            Self::NumericData if event_type == "message" => {
                number(data).map_or(Reading::Malformed, Reading::Number)
            }
            Self::NumericData | Self::None => Reading::NotInSequence,
        }
    }
}

/// What one event says under its source's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reading {
    /// Its place in the sequence.
    Number(u64),
    /// It takes no part in the sequence (a named event of a numeric-data stream, or any
    /// event of a stream without identity).
    NotInSequence,
    /// It should carry a number and does not.
    Malformed,
}

/// A decimal number with nothing else around it but spaces, as `id:` and `data:` carry one.
#[must_use]
pub fn number(text: &str) -> Option<u64> {
    let text = text.trim();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_numeric_id_decides_an_id_sequence_whatever_the_data() {
        assert_eq!(
            Identity::decide("message", "{\"x\":1}", "41"),
            Some(Identity::IdSequence)
        );
        assert_eq!(
            Identity::decide("bye", "bye-bye", "7"),
            Some(Identity::IdSequence)
        );
    }

    #[test]
    fn numeric_data_without_id_decides_a_data_sequence() {
        assert_eq!(
            Identity::decide("message", "1", ""),
            Some(Identity::NumericData)
        );
        assert_eq!(
            Identity::decide("message", " 12 ", "abc"),
            Some(Identity::NumericData)
        );
    }

    #[test]
    fn a_message_with_neither_decides_none_and_a_named_event_decides_nothing() {
        assert_eq!(
            Identity::decide("message", "hello", ""),
            Some(Identity::None)
        );
        assert_eq!(Identity::decide("message", "-3", ""), Some(Identity::None));
        assert_eq!(Identity::decide("update", "5", ""), None);
    }

    #[test]
    fn events_are_read_under_their_sources_identity() {
        use Reading::{Malformed, NotInSequence, Number};
        assert_eq!(Identity::IdSequence.read("message", "x", "9"), Number(9));
        assert_eq!(Identity::IdSequence.read("message", "9", ""), Malformed);
        assert_eq!(Identity::NumericData.read("message", "3", ""), Number(3));
        assert_eq!(
            Identity::NumericData.read("message", "three", ""),
            Malformed
        );
        assert_eq!(
            Identity::NumericData.read("bye", "bye-bye", ""),
            NotInSequence
        );
        assert_eq!(Identity::None.read("message", "3", "4"), NotInSequence);
    }

    #[test]
    fn only_plain_decimal_numbers_count() {
        assert_eq!(number("42"), Some(42));
        assert_eq!(number(" 42\t"), Some(42));
        for not in [
            "",
            " ",
            "+1",
            "-1",
            "1.5",
            "1e3",
            "0x10",
            "99999999999999999999999",
        ] {
            assert_eq!(number(not), None, "{not:?}");
        }
    }
}
