//! `cargo run -p loadtest --release`: parse the options, then run (or search for capacity),
//! print and write the results; see [`loadtest::run::command`]. `loadtest merge FILES…`
//! adds run parts instead; see [`loadtest::run::merge`].

use std::process::ExitCode;

use clap::Parser as _;
use loadtest::run::{command, merge};
use loadtest::Options;

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<_> = std::env::args_os().collect();
    // Goose owns most of the command line, so `merge` is a word before it, not a clap
    // subcommand of it.
    let result = if merge::is_merge(&args) {
        merge::execute(&merge::MergeOptions::parse_from(&args[1..]))
    } else {
        command::execute(Options::parse_from(args)).await
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loadtest: {e:#}");
            ExitCode::FAILURE
        }
    }
}
