//! The one table of counters: for each figure of [`Counters`], its key in the JSON summary,
//! its label on the console and the HTML page, where those show it, and the gate's threshold
//! on it. The console, the page, the JSON summary and the gate all read [`COUNTERS`], so a
//! counter cannot be named one way in one of them and another way in the next.

use serde::ser::SerializeMap as _;

use crate::measure::counters::Counters;
use crate::report::thresholds::Thresholds;
use Bound::{AtLeast, AtMost};
use Group::{Connections, Endings, Events, Failures, Identity, Llm, Reconnection};

/// A console line of counters, and the page's table of the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// Attempts, opens and reconnections.
    Connections,
    /// What each reconnection waited on: the server's hint, the default, and the bounds.
    Reconnection,
    /// Failed attempts and broken streams, by cause.
    Failures,
    /// Events and what their ids say.
    Events,
    /// How event sources and streams ended.
    Endings,
    /// Event sources by what identifies their events.
    Identity,
    /// `--llm`: completion requests, how they ended, and the tokens they reported.
    Llm,
}

impl Group {
    /// Every group, in the order shown.
    pub const ALL: [Self; 7] = [
        Self::Connections,
        Self::Reconnection,
        Self::Failures,
        Self::Events,
        Self::Endings,
        Self::Identity,
        Self::Llm,
    ];

    /// Whether a run shows this group: the event-source groups without `--llm`, the `llm`
    /// group with it (connections and failures in both). A group the run did not measure
    /// would only show zeros that look like results.
    #[must_use]
    pub fn shown(self, llm: bool) -> bool {
        match self {
            Self::Connections | Self::Failures => true,
            Self::Reconnection | Self::Events | Self::Endings | Self::Identity => !llm,
            Self::Llm => llm,
        }
    }

    /// The line's heading, and the table's.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Connections => "connections",
            Self::Reconnection => "reconnection",
            Self::Failures => "failures",
            Self::Events => "events",
            Self::Endings => "endings",
            Self::Identity => "identity",
            Self::Llm => "llm requests",
        }
    }
}

/// How a counter stands to the one shown before it in its group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aside {
    /// It is not an aside: a figure of its own.
    No,
    /// Part of the one before (`reconnects 5 (resumed ok 5, wrong 0)`).
    OfThose,
    /// Beside the one before, and not counted in it (`refused 0 (+3 during the planned
    /// restart)`).
    Besides,
}

/// Whether a gate threshold is a floor or a ceiling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// The run must count at least the limit.
    AtLeast,
    /// The run must count at most the limit.
    AtMost,
}

/// The gate's threshold on a counter.
#[derive(Debug, Clone, Copy)]
pub struct GateSpec {
    /// The threshold's key in a gate file; its flag is `--gate-` and the key with dashes.
    pub key: &'static str,
    /// The check's name in the gate's table and its exit message.
    pub check: &'static str,
    /// A floor or a ceiling.
    pub bound: Bound,
    /// The limit when the gate is on and none was given: 0 for the correctness limits, so
    /// a gate that is on never lets a lost event through unless told to.
    pub default: Option<u64>,
    /// The limit given, from the thresholds.
    pub limit: fn(&Thresholds) -> Option<u64>,
}

/// One counter: one row of [`COUNTERS`].
#[derive(Debug, Clone, Copy)]
pub struct CounterSpec {
    /// Its key in the JSON summary's `counters` (the field of [`Counters`]).
    pub json: &'static str,
    /// Its label on the console and the page.
    pub label: &'static str,
    /// The line and table that show it; `None`: the JSON summary only.
    pub group: Option<Group>,
    /// How it stands to the counter shown before it.
    pub aside: Aside,
    /// Printed on the console with thousands separators (the counts of events, which run
    /// into millions).
    pub separators: bool,
    /// Reads it.
    pub get: fn(&Counters) -> u64,
    /// The same failures by kind (`{503: 2}`), printed after it.
    pub by_kind: Option<fn(&Counters) -> String>,
    /// The gate's threshold on it, if the gate has one.
    pub gate: Option<GateSpec>,
    /// Whether the run could count it at all (loss cannot be checked in a stream whose
    /// events carry no number): when not, it is `null` in the JSON summary and
    /// `not checkable` on the console, the page and the gate.
    pub checkable: fn(&Counters) -> bool,
}

impl CounterSpec {
    /// Its value, or `None` when the run could not check it.
    #[must_use]
    pub fn value(&self, c: &Counters) -> Option<u64> {
        (self.checkable)(c).then(|| (self.get)(c))
    }
}

/// What a counter that cannot be checked shows in place of its value.
pub const NOT_CHECKABLE: &str = "not checkable";

fn always(_: &Counters) -> bool {
    true
}

/// A field of [`Counters`]: its name, which is its JSON key, and its accessor.
macro_rules! field {
    ($name:ident) => {
        (stringify!($name), |c: &Counters| c.$name)
    };
}

/// A field of [`Thresholds`]: its name, which is its key in a gate file, and its accessor.
macro_rules! limit {
    ($name:ident) => {
        (stringify!($name), |t: &Thresholds| t.$name)
    };
}

/// The counter `field` (from [`field!`]), shown in `group` as `label`.
const fn counter(
    (json, get): (&'static str, fn(&Counters) -> u64),
    label: &'static str,
    group: Group,
) -> CounterSpec {
    CounterSpec {
        json,
        label,
        group: Some(group),
        aside: Aside::No,
        separators: false,
        get,
        by_kind: None,
        gate: None,
        checkable: always,
    }
}

impl CounterSpec {
    const fn hidden(mut self) -> Self {
        self.group = None;
        self
    }

    const fn of_those(mut self) -> Self {
        self.aside = Aside::OfThose;
        self
    }

    const fn besides(mut self) -> Self {
        self.aside = Aside::Besides;
        self
    }

    const fn separators(mut self) -> Self {
        self.separators = true;
        self
    }

    const fn by_kind(mut self, by_kind: fn(&Counters) -> String) -> Self {
        self.by_kind = Some(by_kind);
        self
    }

    const fn gate(mut self, gate: GateSpec) -> Self {
        self.gate = Some(gate);
        self
    }

    /// Only for sources with a sequence (ids or numeric data).
    const fn of_sequences(mut self) -> Self {
        self.checkable = Counters::sequence_checkable;
        self
    }

    /// Only for sources with ids to resume from.
    const fn of_resumes(mut self) -> Self {
        self.checkable = Counters::resume_checkable;
        self
    }
}

/// The threshold `limit` (from [`limit!`]), a `bound` checked as `check`; unset unless
/// given.
const fn threshold(
    (key, limit): (&'static str, fn(&Thresholds) -> Option<u64>),
    check: &'static str,
    bound: Bound,
) -> GateSpec {
    GateSpec {
        key,
        check,
        bound,
        default: None,
        limit,
    }
}

impl GateSpec {
    /// Checked against 0 whenever the gate is on and no limit was given.
    const fn zero_by_default(mut self) -> Self {
        self.default = Some(0);
        self
    }
}

/// Every counter, in the order of [`Counters`]' fields: the JSON summary's order, and within
/// each group the console's and the page's.
pub const COUNTERS: &[CounterSpec] = &[
    counter(field!(event_sources), "event sources", Connections).hidden(),
    counter(field!(connect_attempts), "attempts", Connections),
    counter(field!(connections_opened), "opened", Connections),
    counter(field!(failed_refused), "refused", Failures),
    counter(
        field!(refused_during_restart),
        "during the planned restart",
        Failures,
    )
    .besides(),
    counter(field!(failed_timeout), "timeout", Failures),
    counter(field!(failed_status), "status", Failures).by_kind(|c| format!("{:?}", c.status_codes)),
    counter(field!(failed_content_type), "content type", Failures),
    counter(field!(failed_encoding), "unrequested encoding", Failures),
    counter(field!(failed_redirects), "too many redirects", Failures),
    counter(field!(failed_other), "other", Failures).by_kind(|c| format!("{:?}", c.other_errors)),
    counter(field!(read_errors), "read errors", Failures)
        .by_kind(|c| format!("{:?}", c.read_error_kinds)),
    counter(field!(body_cut), "body cut", Failures).of_those(),
    counter(field!(framing_errors), "framing", Failures).of_those(),
    counter(field!(idle_timeouts), "idle timeouts", Failures),
    counter(field!(event_too_large), "event too large", Failures)
        .gate(threshold(limit!(max_event_too_large), "events too large", AtMost).zero_by_default()),
    counter(field!(events), "received", Events)
        .separators()
        .gate(threshold(limit!(min_events), "events received", AtLeast)),
    counter(field!(expected), "expected", Events)
        .separators()
        .of_sequences(),
    counter(field!(lost), "lost", Events)
        .gate(threshold(limit!(max_lost), "lost events", AtMost).zero_by_default())
        .of_sequences(),
    counter(field!(duplicated), "duplicated", Events)
        .gate(threshold(limit!(max_duplicated), "duplicated events", AtMost).zero_by_default())
        .of_sequences(),
    counter(field!(out_of_order), "out of order", Events)
        .gate(threshold(limit!(max_out_of_order), "out-of-order events", AtMost).zero_by_default())
        .of_sequences(),
    counter(field!(malformed), "malformed", Events)
        .gate(threshold(limit!(max_malformed), "malformed events", AtMost).zero_by_default()),
    counter(field!(invalid_utf8), "invalid UTF-8", Events),
    counter(field!(early), "early", Events).separators(),
    counter(field!(reconnects), "reconnects", Connections).gate(threshold(
        limit!(min_reconnects),
        "reconnects",
        AtLeast,
    )),
    counter(field!(resumed_ok), "resumed ok", Connections)
        .of_those()
        .of_resumes(),
    counter(field!(resumed_wrong), "wrong", Connections)
        .of_those()
        .gate(threshold(limit!(max_resumed_wrong), "wrong resumes", AtMost).zero_by_default())
        .of_resumes(),
    counter(field!(stalls), "stalls", Events).gate(threshold(limit!(max_stalls), "stalls", AtMost)),
    counter(field!(completed_bye), "bye", Endings),
    counter(field!(ended_no_content), "204", Endings),
    counter(field!(dropped_by_client), "dropped by client", Endings),
    counter(field!(closed_by_server), "closed by server", Endings),
    counter(field!(closed_without_retry_hint), "no retry hint", Endings).of_those(),
    counter(field!(stopped_at_deadline), "streaming at the end", Endings),
    counter(field!(keepalives), "keep-alives", Endings),
    counter(
        field!(restarted),
        "restarted from the beginning",
        Connections,
    )
    .of_those(),
    counter(field!(untimed), "without timestamp", Events),
    counter(field!(other_names), "other names", Events).by_kind(|c| format!("{:?}", c.event_names)),
    counter(field!(identity_id_sequence), "id sequence", Identity),
    counter(field!(identity_numeric_data), "numeric data", Identity),
    counter(field!(identity_none), "none", Identity),
    counter(field!(redirects), "redirects", Connections),
    counter(field!(retry_from_field), "hint from server", Reconnection).separators(),
    counter(field!(retry_default), "default (none sent)", Reconnection).separators(),
    counter(field!(retry_after), "Retry-After waits", Reconnection),
    counter(field!(retry_clamped), "delays kept in bounds", Reconnection),
    counter(field!(llm_requests), "requests", Llm),
    counter(field!(llm_completed), "completed", Llm),
    counter(field!(llm_error_events), "error event", Llm),
    counter(field!(llm_cut), "cut stream", Llm),
    counter(field!(llm_timeouts), "timed out", Llm),
    counter(field!(llm_malformed), "not JSON", Llm),
    counter(field!(llm_output_tokens), "output tokens", Llm).separators(),
    counter(field!(llm_without_usage), "without usage", Llm),
    counter(
        field!(llm_stopped_at_deadline),
        "stopped at the deadline",
        Llm,
    ),
];

/// The counters of `group`, in the order shown.
pub fn in_group(group: Group) -> impl Iterator<Item = &'static CounterSpec> {
    COUNTERS
        .iter()
        .filter(move |spec| spec.group == Some(group))
}

/// The JSON summary's `counters`: every counter under its [`CounterSpec::json`] key (`null`
/// when it could not be checked), then the failures and event names by kind.
impl serde::Serialize for Counters {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(COUNTERS.len() + 4))?;
        for spec in COUNTERS {
            map.serialize_entry(spec.json, &spec.value(self))?;
        }
        map.serialize_entry("status_codes", &self.status_codes)?;
        map.serialize_entry("other_errors", &self.other_errors)?;
        map.serialize_entry("read_error_kinds", &self.read_error_kinds)?;
        map.serialize_entry("event_names", &self.event_names)?;
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use clap::Parser as _;

    use super::*;

    /// Every row is one field of [`Counters`], in the fields' order, read by its accessor.
    #[test]
    fn the_table_has_every_counter_once_in_field_order() {
        let numbered = Counters::numbered();
        let keys: Vec<&str> = COUNTERS.iter().map(|spec| spec.json).collect();
        assert_eq!(keys, Counters::NAMES);
        for (n, spec) in (1..).zip(COUNTERS) {
            assert_eq!(
                (spec.get)(&numbered),
                n,
                "{} reads another field",
                spec.json
            );
        }
    }

    #[test]
    fn no_key_or_label_is_used_twice() {
        let unique = |what: &str, items: Vec<&str>| {
            let set: BTreeSet<&str> = items.iter().copied().collect();
            assert_eq!(set.len(), items.len(), "a {what} used twice: {items:?}");
        };
        unique("JSON key", COUNTERS.iter().map(|s| s.json).collect());
        unique("label", COUNTERS.iter().map(|s| s.label).collect());
        let gates: Vec<&GateSpec> = COUNTERS.iter().filter_map(|s| s.gate.as_ref()).collect();
        unique("gate key", gates.iter().map(|g| g.key).collect());
        unique("check name", gates.iter().map(|g| g.check).collect());
    }

    #[test]
    fn every_gate_key_is_read_from_the_file_and_from_its_flag() {
        #[derive(clap::Parser)]
        struct Flags {
            #[command(flatten)]
            thresholds: Thresholds,
        }
        for gate in COUNTERS.iter().filter_map(|s| s.gate.as_ref()) {
            let from_file: Thresholds = toml::from_str(&format!("{} = 7", gate.key))
                .unwrap_or_else(|e| panic!("{}: {e}", gate.key));
            assert_eq!((gate.limit)(&from_file), Some(7), "{} in a file", gate.key);
            let flag = format!("--gate-{}", gate.key.replace('_', "-"));
            let from_flag = Flags::try_parse_from(["loadtest", &flag, "7"])
                .unwrap_or_else(|e| panic!("{flag}: {e}"))
                .thresholds;
            assert_eq!((gate.limit)(&from_flag), Some(7), "{flag}");
        }
    }

    #[test]
    fn asides_follow_a_counter_of_their_group() {
        for group in Group::ALL {
            let first = in_group(group).next().unwrap();
            assert_eq!(
                first.aside,
                Aside::No,
                "{} opens {}",
                first.json,
                group.name()
            );
        }
    }

    /// Sources without identity and none with one: the sequence counters are `null`, not 0.
    #[test]
    fn counters_that_cannot_be_checked_are_null() {
        let c = Counters {
            identity_none: 3,
            events: 10,
            ..Counters::default()
        };
        let json = serde_json::to_value(&c).unwrap();
        for key in [
            "expected",
            "lost",
            "duplicated",
            "out_of_order",
            "resumed_ok",
            "resumed_wrong",
        ] {
            assert!(json[key].is_null(), "{key}: {}", json[key]);
        }
        assert_eq!(json["events"], 10);
        assert_eq!(json["malformed"], 0);
        let numeric = Counters {
            identity_numeric_data: 1,
            ..c
        };
        let json = serde_json::to_value(&numeric).unwrap();
        assert_eq!(json["lost"], 0);
        assert!(json["resumed_wrong"].is_null());
    }

    #[test]
    fn the_json_keys_are_the_tables_then_the_kinds() {
        let json = serde_json::to_value(Counters::numbered()).unwrap();
        let object = json.as_object().unwrap();
        assert_eq!(object.len(), COUNTERS.len() + 4);
        for spec in COUNTERS {
            assert_eq!(object[spec.json], (spec.get)(&Counters::numbered()));
        }
        for kinds in [
            "status_codes",
            "other_errors",
            "read_error_kinds",
            "event_names",
        ] {
            assert!(object[kinds].is_object(), "{kinds}");
        }
    }
}
