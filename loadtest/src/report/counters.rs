//! The one table of counters: for each figure of [`Counters`], its key in the JSON summary,
//! its label on the console and the HTML page, where those show it, and the gate's threshold
//! on it. The console, the page, the JSON summary and the gate all read [`COUNTERS`], so a
//! counter cannot be named one way in one of them and another way in the next.

use serde::ser::SerializeMap as _;

use crate::measure::counters::Counters;
use crate::report::thresholds::Thresholds;
use Bound::{AtLeast, AtMost};
use Group::{Connections, Endings, Events, Failures};

/// A console line of counters, and the page's table of the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// Attempts, opens and reconnections.
    Connections,
    /// Failed attempts and broken streams, by cause.
    Failures,
    /// Events and what their ids say.
    Events,
    /// How event sources and streams ended.
    Endings,
}

impl Group {
    /// Every group, in the order shown.
    pub const ALL: [Self; 4] = [
        Self::Connections,
        Self::Failures,
        Self::Events,
        Self::Endings,
    ];

    /// The line's heading, and the table's.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Connections => "connections",
            Self::Failures => "failures",
            Self::Events => "events",
            Self::Endings => "endings",
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
    counter(field!(failed_other), "other", Failures).by_kind(|c| format!("{:?}", c.other_errors)),
    counter(field!(read_errors), "read errors", Failures)
        .by_kind(|c| format!("{:?}", c.read_error_kinds)),
    counter(field!(idle_timeouts), "idle timeouts", Failures),
    counter(field!(events), "received", Events)
        .separators()
        .gate(threshold(limit!(min_events), "events received", AtLeast)),
    counter(field!(expected), "expected", Events).separators(),
    counter(field!(lost), "lost", Events)
        .gate(threshold(limit!(max_lost), "lost events", AtMost).zero_by_default()),
    counter(field!(duplicated), "duplicated", Events)
        .gate(threshold(limit!(max_duplicated), "duplicated events", AtMost).zero_by_default()),
    counter(field!(out_of_order), "out of order", Events)
        .gate(threshold(limit!(max_out_of_order), "out-of-order events", AtMost).zero_by_default()),
    counter(field!(malformed), "malformed", Events)
        .gate(threshold(limit!(max_malformed), "malformed events", AtMost).zero_by_default()),
    counter(field!(early), "early", Events).separators(),
    counter(field!(reconnects), "reconnects", Connections).gate(threshold(
        limit!(min_reconnects),
        "reconnects",
        AtLeast,
    )),
    counter(field!(resumed_ok), "resumed ok", Connections).of_those(),
    counter(field!(resumed_wrong), "wrong", Connections)
        .of_those()
        .gate(threshold(limit!(max_resumed_wrong), "wrong resumes", AtMost).zero_by_default()),
    counter(field!(stalls), "stalls", Events).gate(threshold(limit!(max_stalls), "stalls", AtMost)),
    counter(field!(completed_bye), "bye", Endings),
    counter(field!(ended_no_content), "204", Endings),
    counter(field!(dropped_by_client), "dropped by client", Endings),
    counter(field!(closed_by_server), "closed by server", Endings),
    counter(field!(closed_without_retry_hint), "no retry hint", Endings).of_those(),
    counter(field!(stopped_at_deadline), "streaming at the end", Endings),
    counter(field!(keepalives), "keep-alives", Endings),
];

/// The counters of `group`, in the order shown.
pub fn in_group(group: Group) -> impl Iterator<Item = &'static CounterSpec> {
    COUNTERS
        .iter()
        .filter(move |spec| spec.group == Some(group))
}

/// The JSON summary's `counters`: every counter under its [`CounterSpec::json`] key, then
/// the failures by kind.
impl serde::Serialize for Counters {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(COUNTERS.len() + 3))?;
        for spec in COUNTERS {
            map.serialize_entry(spec.json, &(spec.get)(self))?;
        }
        map.serialize_entry("status_codes", &self.status_codes)?;
        map.serialize_entry("other_errors", &self.other_errors)?;
        map.serialize_entry("read_error_kinds", &self.read_error_kinds)?;
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

    #[test]
    fn the_json_keys_are_the_tables_then_the_kinds() {
        let json = serde_json::to_value(Counters::numbered()).unwrap();
        let object = json.as_object().unwrap();
        assert_eq!(object.len(), COUNTERS.len() + 3);
        for spec in COUNTERS {
            assert_eq!(object[spec.json], (spec.get)(&Counters::numbered()));
        }
        for kinds in ["status_codes", "other_errors", "read_error_kinds"] {
            assert!(object[kinds].is_object(), "{kinds}");
        }
    }
}
