//! `cargo run -p loadtest --release`: parse the options, then run (or search for capacity),
//! print and write the results; see [`loadtest::run::command`].

use std::process::ExitCode;

use clap::Parser as _;
use loadtest::run::command;
use loadtest::Options;

#[tokio::main]
async fn main() -> ExitCode {
    match command::execute(Options::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loadtest: {e:#}");
            ExitCode::FAILURE
        }
    }
}
