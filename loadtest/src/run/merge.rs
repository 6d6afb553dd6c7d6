//! `loadtest merge FILES…`: the parts written by runs on several machines (`--part-file`,
//! all started with one `--start-at`) added into one summary, JSON, HTML report and gate
//! verdict, exactly as a run of several processes on one machine ends.

use std::path::PathBuf;

use clap::Parser;

use crate::report::files::OutputFiles;
use crate::report::part::Part;
use crate::report::part_file;
use crate::report::thresholds::GateOptions;
use crate::run::command::{finish, gate_source, resolve_gate, Outputs};

/// Adds run parts (`--part-file`) from several load-generator processes or machines into
/// one result.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "loadtest merge",
    max_term_width = 100,
    args_override_self = true
)]
pub struct MergeOptions {
    /// The part files, one per process.
    #[arg(required = true, value_name = "FILES")]
    pub parts: Vec<PathBuf>,
    /// The files to write, as a run takes them.
    #[command(flatten)]
    pub outputs: OutputFiles,
    /// Pass/fail thresholds.
    #[command(flatten)]
    pub gate: GateOptions,
}

/// True when the command line (program name first) asks for `merge`.
#[must_use]
pub fn is_merge(args: &[std::ffi::OsString]) -> bool {
    args.get(1).is_some_and(|a| a == "merge")
}

/// Reads and adds the parts, then prints and writes the result.
///
/// # Errors
/// When a part cannot be read (the message names the file) or added, a file cannot be
/// written, or the gate fails.
pub fn execute(options: &MergeOptions) -> anyhow::Result<()> {
    let gate = resolve_gate(&options.gate)?;
    let part = read_all(&options.parts)?;
    let outputs = Outputs {
        files: options.outputs.clone(),
        gate_source: gate_source(&options.gate),
        goose_reports: Vec::new(),
    };
    finish(&part.summary(), gate, &outputs)
}

/// The parts in `paths`, added.
///
/// # Errors
/// When one cannot be read or they cannot be added.
pub fn read_all(paths: &[PathBuf]) -> anyhow::Result<Part> {
    let parts = paths
        .iter()
        .map(|path| part_file::read(path))
        .collect::<anyhow::Result<Vec<_>>>()?;
    Part::sum(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_is_a_word_before_any_flag() {
        let args = |a: &[&str]| a.iter().map(std::ffi::OsString::from).collect::<Vec<_>>();
        assert!(is_merge(&args(&["loadtest", "merge", "a.json"])));
        assert!(!is_merge(&args(&["loadtest", "-u", "merge"])));
        assert!(!is_merge(&args(&["loadtest"])));
        let o = MergeOptions::try_parse_from(["merge", "a.json", "b.json", "--gate-max-lost", "0"])
            .unwrap();
        assert_eq!(o.parts.len(), 2);
        assert_eq!(o.gate.thresholds.max_lost, Some(0));
        assert!(MergeOptions::try_parse_from(["merge"]).is_err());
    }
}
