//! The run part as a file (`--part-file FILE`, read by `loadtest merge` and `--processes`):
//! JSON, with each histogram in HdrHistogram's V2 deflate serialisation as base64 (the
//! interval log's encoding), so every count survives: no percentile is stored. Counters are
//! stored by field name, so a part written by another version of the load test, with other
//! counters, is refused rather than misread.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{anyhow, bail, ensure, Context as _};
use base64::Engine as _;
use hdrhistogram::serialization::{Deserializer, Serializer as _, V2DeflateSerializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::measure::counters::Counters;
use crate::measure::metrics::{new_histogram, Histograms};
use crate::measure::slots::{slot_histogram, LatenessSlots};
use crate::measure::storm::Bins;
use crate::measure::timeline::{Sample, Timeline};
use crate::probe::aftermath::ServerAfterRun;
use crate::probe::procstat::FileLimit;
use crate::probe::server_lateness::ServerLateness;
use crate::profile::LatenessMode;
use crate::report::counters::COUNTERS;
use crate::report::part::{hiccups, LlmSettings, Part};
use crate::report::summary::{LatenessAgainst, Processes, RequestSummary};

/// The format's name and version, the file's first field.
pub const FORMAT: &str = "loadtest-part/1";

/// The file's fields (see [`Part`] for what each means).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PartFile {
    format: String,
    target: String,
    request: RequestSummary,
    started_unix_secs: f64,
    embedded: bool,
    users: usize,
    interval_ms: u64,
    /// `schedule`, `timestamp` or `gaps`.
    lateness_mode: String,
    lateness_description: String,
    elapsed_secs: f64,
    steady_events_per_sec: Option<f64>,
    peak_open_streams: i64,
    server_lateness: Option<ServerLateness>,
    server_after: Option<ServerAfterRun>,
    file_limit_soft: u64,
    file_limit_hard: u64,
    /// Every `u64` counter by field name.
    counters: BTreeMap<String, u64>,
    status_codes: BTreeMap<u16, u64>,
    other_errors: BTreeMap<String, u64>,
    read_error_kinds: BTreeMap<String, u64>,
    event_names: BTreeMap<String, u64>,
    /// Every histogram by name, V2 deflate, base64 (µs).
    histograms: BTreeMap<String, String>,
    hiccups: Option<HiccupsFile>,
    processes: Vec<Processes>,
    timeline_period_ms: u64,
    timeline: Vec<Sample>,
    storm_bin_ms: u64,
    /// Bins of attempts and of opens, empty ones included.
    storm_bins: usize,
    /// Non-empty bins only: `[index, count]`.
    storm_attempts: Vec<(usize, u32)>,
    storm_opens: Vec<(usize, u32)>,
    lateness_slot_ms: u64,
    /// One histogram per slot, V2 deflate, base64; empty slots as `""`.
    lateness_slots: Vec<String>,
    /// `--llm`'s settings, when the run was one.
    llm: Option<LlmSettings>,
}

/// The load generator's hiccups in the file.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct HiccupsFile {
    tickers: usize,
    period_us: u64,
    histogram: String,
}

/// A histogram as base64 of its V2 deflate serialisation.
///
/// # Errors
/// When the serialiser fails (it does not for a histogram in memory).
pub fn encode_histogram(h: &Histogram<u64>) -> anyhow::Result<String> {
    let mut bytes = Vec::new();
    V2DeflateSerializer::new()
        .serialize(h, &mut bytes)
        .map_err(|e| anyhow!("serialising a histogram: {e:?}"))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// A histogram from [`encode_histogram`]'s text, added into `into` (which sets the bounds
/// and precision it is kept at).
///
/// # Errors
/// When the text is not base64 of a V2 histogram, or holds values past `into`'s range.
pub fn decode_histogram_into(text: &str, into: &mut Histogram<u64>) -> anyhow::Result<()> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|e| anyhow!("not base64: {e}"))?;
    let h: Histogram<u64> = Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| anyhow!("not a V2 histogram: {e:?}"))?;
    into.add(&h)
        .map_err(|e| anyhow!("values out of range: {e:?}"))
}

/// `(index, count)` of the non-empty bins.
fn sparse(bins: &[u32]) -> Vec<(usize, u32)> {
    bins.iter()
        .enumerate()
        .filter(|(_, &c)| c > 0)
        .map(|(i, &c)| (i, c))
        .collect()
}

/// `len` bins back from [`sparse`]; more than a generous bound is refused rather than
/// allocated.
fn dense(pairs: &[(usize, u32)], len: usize, what: &str) -> anyhow::Result<Vec<u32>> {
    const MOST_BINS: usize = 1 << 22;
    let needed = pairs.iter().map(|(i, _)| i + 1).max().unwrap_or(0);
    ensure!(
        len <= MOST_BINS,
        "{what}: {len} bins, more than {MOST_BINS}"
    );
    ensure!(needed <= len, "{what}: bin {needed} is past the {len} bins");
    let mut bins = vec![0; len];
    for &(i, c) in pairs {
        bins[i] = c;
    }
    Ok(bins)
}

/// The part as the file's JSON text.
///
/// # Errors
/// When a histogram cannot be serialised.
pub fn to_json(part: &Part) -> anyhow::Result<String> {
    let c = &part.counters;
    let file = PartFile {
        format: FORMAT.to_owned(),
        target: part.target.clone(),
        request: part.request.clone(),
        started_unix_secs: part.started_unix_secs,
        embedded: part.embedded,
        users: part.users,
        interval_ms: part.interval_ms,
        lateness_mode: part.lateness_against.mode.to_owned(),
        lateness_description: part.lateness_against.description.clone(),
        elapsed_secs: part.elapsed_secs,
        steady_events_per_sec: part.steady_events_per_sec,
        peak_open_streams: part.peak_open_streams,
        server_lateness: part.server_lateness.clone(),
        server_after: part.server_after.clone(),
        file_limit_soft: part.file_limit.soft,
        file_limit_hard: part.file_limit.hard,
        counters: COUNTERS
            .iter()
            .map(|spec| (spec.json.to_owned(), (spec.get)(c)))
            .collect(),
        status_codes: c.status_codes.clone(),
        other_errors: c.other_errors.clone(),
        read_error_kinds: c.read_error_kinds.clone(),
        event_names: c.event_names.clone(),
        histograms: part
            .histograms
            .all()
            .map(|(name, h)| Ok((name.to_owned(), encode_histogram(h)?)))
            .collect::<anyhow::Result<_>>()?,
        hiccups: part
            .hiccups
            .as_ref()
            .map(|h| {
                anyhow::Ok(HiccupsFile {
                    tickers: h.tickers,
                    period_us: u64::try_from(h.period.as_micros()).unwrap_or(u64::MAX),
                    histogram: encode_histogram(&h.histogram)?,
                })
            })
            .transpose()?,
        processes: part.processes.clone(),
        timeline_period_ms: part.timeline.period_ms,
        timeline: part.timeline.samples.clone(),
        storm_bin_ms: part.storm.bin_ms,
        storm_bins: part.storm.attempts.len().max(part.storm.opens.len()),
        storm_attempts: sparse(&part.storm.attempts),
        storm_opens: sparse(&part.storm.opens),
        llm: part.llm,
        lateness_slot_ms: part.lateness_slots.slot_ms,
        lateness_slots: part
            .lateness_slots
            .slots
            .iter()
            .map(|h| {
                if h.is_empty() {
                    Ok(String::new())
                } else {
                    encode_histogram(h)
                }
            })
            .collect::<anyhow::Result<_>>()?,
    };
    Ok(serde_json::to_string(&file)? + "\n")
}

/// A part from the file's JSON text.
///
/// # Errors
/// When the text is not a part of this format: not JSON, truncated, another format or
/// version, an unknown or missing counter or histogram, a histogram that does not decode.
pub fn from_json(text: &str) -> anyhow::Result<Part> {
    let file: PartFile = serde_json::from_str(text).context("not a run part (JSON)")?;
    ensure!(
        file.format == FORMAT,
        "format {:?}, expected {FORMAT:?} (written by another version of the load test)",
        file.format
    );
    let mut counters = Counters {
        status_codes: file.status_codes,
        other_errors: file.other_errors,
        read_error_kinds: file.read_error_kinds,
        event_names: file.event_names,
        ..Counters::default()
    };
    for (name, n) in &file.counters {
        *counters
            .get_mut(name)
            .ok_or_else(|| anyhow!("unknown counter {name:?}"))? = *n;
    }
    // A part of an older load test lacks what it did not measure: refused, since taking
    // the figure as 0 would merge into a sum that is not the run's.
    let missing: Vec<String> = Counters::NAMES
        .iter()
        .filter(|name| !file.counters.contains_key(**name))
        .map(|name| format!("counter {name:?}"))
        .chain(
            Histograms::default()
                .all()
                .filter(|(name, _)| !file.histograms.contains_key(*name))
                .map(|(name, _)| format!("histogram {name:?}")),
        )
        .collect();
    if !missing.is_empty() {
        bail!(
            "{} missing: written by another version of the load test, which did not measure \
             them",
            missing.join(", ")
        );
    }
    let mut histograms = Histograms::default();
    for (name, text) in &file.histograms {
        let h = histograms
            .get_mut(name)
            .ok_or_else(|| anyhow!("unknown histogram {name:?}"))?;
        decode_histogram_into(text, h).with_context(|| format!("histogram {name}"))?;
    }
    let hiccups = file
        .hiccups
        .map(|f| {
            let mut h = new_histogram();
            decode_histogram_into(&f.histogram, &mut h).context("hiccup histogram")?;
            anyhow::Ok(hiccups(f.tickers, Duration::from_micros(f.period_us), h))
        })
        .transpose()?;
    let mut timeline = Timeline::new(file.timeline_period_ms);
    for sample in file.timeline {
        timeline.push(sample);
    }
    let mut slots = LatenessSlots::new(file.lateness_slot_ms);
    ensure!(
        file.lateness_slots.len() <= crate::measure::slots::MAX_SLOTS,
        "{} lateness slots, more than {}",
        file.lateness_slots.len(),
        crate::measure::slots::MAX_SLOTS
    );
    for (i, text) in file.lateness_slots.iter().enumerate() {
        let mut h = slot_histogram();
        if !text.is_empty() {
            decode_histogram_into(text, &mut h).with_context(|| format!("lateness slot {i}"))?;
        }
        slots.slots.push(h);
    }
    Ok(Part {
        target: file.target,
        request: file.request,
        started_unix_secs: file.started_unix_secs,
        embedded: file.embedded,
        users: file.users,
        interval_ms: file.interval_ms,
        lateness_against: LatenessAgainst {
            mode: mode_key(&file.lateness_mode)?,
            description: file.lateness_description,
        },
        elapsed_secs: file.elapsed_secs,
        steady_events_per_sec: file.steady_events_per_sec,
        peak_open_streams: file.peak_open_streams,
        server_lateness: file.server_lateness,
        server_after: file.server_after,
        file_limit: FileLimit {
            soft: file.file_limit_soft,
            hard: file.file_limit_hard,
        },
        counters,
        histograms,
        hiccups,
        processes: file.processes,
        timeline,
        storm: Bins {
            bin_ms: file.storm_bin_ms,
            attempts: dense(&file.storm_attempts, file.storm_bins, "storm_attempts")?,
            opens: dense(&file.storm_opens, file.storm_bins, "storm_opens")?,
        },
        lateness_slots: slots,
        llm: file.llm,
    })
}

/// The lateness mode's key as the summary holds it.
fn mode_key(key: &str) -> anyhow::Result<&'static str> {
    [
        LatenessMode::Schedule(Duration::ZERO),
        LatenessMode::Timestamp(String::new()),
        LatenessMode::Gaps,
    ]
    .iter()
    .map(LatenessMode::key)
    .find(|k| *k == key)
    .ok_or_else(|| anyhow!("unknown lateness mode {key:?}"))
}

/// Writes `part` to `path`.
///
/// # Errors
/// When it cannot be serialised or written.
pub fn write(part: &Part, path: &Path) -> anyhow::Result<()> {
    std::fs::write(path, to_json(part)?).with_context(|| format!("writing {}", path.display()))
}

/// Reads the part in `path`.
///
/// # Errors
/// When it cannot be read or is not a part; the message names the file.
pub fn read(path: &Path) -> anyhow::Result<Part> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the part file {}", path.display()))?;
    from_json(&text).with_context(|| format!("the part file {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::part::tests::synthetic;

    #[test]
    fn a_part_round_trips_through_its_file_losslessly() {
        let part = synthetic(1..=1000, 3);
        let back = from_json(&to_json(&part).unwrap()).unwrap();
        assert_eq!(back.counters, part.counters);
        for ((name, a), (_, b)) in part.histograms.all().zip(back.histograms.all()) {
            assert_eq!(a, b, "{name}");
        }
        let (a, b) = (
            part.hiccups.as_ref().unwrap(),
            back.hiccups.as_ref().unwrap(),
        );
        assert_eq!(
            (a.tickers, a.period, &a.histogram),
            (b.tickers, b.period, &b.histogram)
        );
        assert_eq!(back.timeline, part.timeline);
        assert_eq!(back.storm, part.storm);
        assert_eq!(back.lateness_slots, part.lateness_slots);
        assert_eq!(back.processes, part.processes);
        assert_eq!(back.lateness_against, part.lateness_against);
        assert_eq!(back.request, part.request);
        assert_eq!(back.file_limit, part.file_limit);
        assert_eq!(
            (back.users, back.interval_ms, back.peak_open_streams),
            (part.users, part.interval_ms, part.peak_open_streams)
        );
        assert_eq!(
            back.started_unix_secs.to_bits(),
            part.started_unix_secs.to_bits()
        );
        assert_eq!(back.elapsed_secs.to_bits(), part.elapsed_secs.to_bits());
        // And a second trip gives the same text.
        assert_eq!(to_json(&back).unwrap(), to_json(&part).unwrap());
    }

    /// The reconnection delays planned (the retry hint) survive the file and add across
    /// parts, sample for sample.
    #[test]
    fn the_retry_hint_round_trips_and_adds() {
        let mut part = synthetic(1..=10, 1);
        for ms in [200, 200, 3000] {
            part.histograms.retry_hint.record(ms * 1000).unwrap();
        }
        let back = from_json(&to_json(&part).unwrap()).unwrap();
        assert_eq!(back.histograms.retry_hint, part.histograms.retry_hint);
        assert_eq!(
            back.counters.retry_from_field,
            part.counters.retry_from_field
        );
        let sum = Part::sum([part, back]).unwrap().histograms.retry_hint;
        assert_eq!(sum.len(), 6);
        assert!(sum.equivalent(sum.value_at_quantile(0.5), 200_000));
        assert!(sum.equivalent(sum.max(), 3_000_000));
    }

    /// A part written before the retry hint was measured has neither its histogram nor its
    /// counters: refused, naming what is missing, not merged as if there had been none.
    #[test]
    fn a_part_without_the_retry_hint_is_refused_naming_what_is_missing() {
        let text = to_json(&synthetic(1..=10, 1)).unwrap();
        let mut old: serde_json::Value = serde_json::from_str(&text).unwrap();
        old["histograms"]
            .as_object_mut()
            .unwrap()
            .remove("retry_hint")
            .unwrap();
        let counters = old["counters"].as_object_mut().unwrap();
        for name in ["retry_from_field", "retry_default"] {
            counters.remove(name).unwrap();
        }
        let err = format!("{:#}", from_json(&old.to_string()).unwrap_err());
        assert_eq!(
            err,
            "counter \"retry_from_field\", counter \"retry_default\", histogram \"retry_hint\" \
             missing: written by another version of the load test, which did not measure them"
        );
    }

    /// An `--llm` run's part keeps its histograms and settings, and two such parts add into
    /// one `llm` section.
    #[test]
    fn an_llm_part_round_trips_and_adds() {
        let mut part = synthetic(1..=10, 1);
        part.llm = Some(crate::report::part::LlmSettings {
            think_ms: 50,
            request_timeout_secs: 30,
        });
        for ms in [200, 210, 220] {
            part.histograms.llm.ttft.record(ms * 1000).unwrap();
        }
        let back = from_json(&to_json(&part).unwrap()).unwrap();
        assert_eq!(back.llm, part.llm);
        assert_eq!(back.histograms.llm.ttft, part.histograms.llm.ttft);
        let sum = Part::sum([part, back]).unwrap();
        let llm = sum.summary().llm.expect("an llm section");
        assert_eq!(llm.ttft.count, 6);
        assert_eq!(llm.think_ms, 50);
        let mut plain = synthetic(1..=10, 1);
        assert!(
            plain.add(&sum).is_err(),
            "an --llm part and another cannot add"
        );
    }

    #[test]
    fn a_truncated_or_corrupted_part_is_refused_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let text = to_json(&synthetic(1..=100, 1)).unwrap();
        let path = dir.path().join("cut.json");
        std::fs::write(&path, &text[..text.len() / 2]).unwrap();
        let err = format!("{:#}", read(&path).unwrap_err());
        assert!(err.contains("cut.json") && err.contains("EOF"), "{err}");

        // A histogram's bytes damaged inside valid JSON.
        let lateness = encode_histogram(&synthetic(1..=100, 1).histograms.lateness).unwrap();
        let damaged = text.replacen(&lateness, &format!("AAAA{}", &lateness[8..]), 1);
        assert_ne!(damaged, text);
        let path = dir.path().join("damaged.json");
        std::fs::write(&path, damaged).unwrap();
        let err = format!("{:#}", read(&path).unwrap_err());
        assert!(
            err.contains("damaged.json") && err.contains("histogram lateness"),
            "{err}"
        );

        let path = dir.path().join("other.json");
        std::fs::write(&path, text.replace(FORMAT, "loadtest-part/0")).unwrap();
        let err = format!("{:#}", read(&path).unwrap_err());
        assert!(
            err.contains("other.json") && err.contains("format"),
            "{err}"
        );

        let path = dir.path().join("counter.json");
        std::fs::write(&path, text.replace("\"lost\"", "\"mislaid\"")).unwrap();
        let err = format!("{:#}", read(&path).unwrap_err());
        assert!(err.contains("mislaid"), "{err}");

        let err = format!("{:#}", read(&dir.path().join("absent.json")).unwrap_err());
        assert!(err.contains("absent.json"), "{err}");
    }
}
