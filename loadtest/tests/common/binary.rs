//! The load test run as its own binary, as an operator runs it (for tests of what only the
//! binary does: `--processes`, exit codes, the search's steps), and its JSON read back.
//! Included with `#[path]` by the tests that need it.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

/// The loadtest binary run with `args`, killed if it outlives `timeout` (a hang guard, far
/// above the run's own length); its output printed for a failing test to show.
pub async fn loadtest(args: &[&str], timeout: Duration) -> std::process::Output {
    let output = tokio::time::timeout(
        timeout,
        tokio::process::Command::new(env!("CARGO_BIN_EXE_loadtest"))
            .args(args)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the load test ended")
    .expect("the loadtest binary starts");
    println!(
        "loadtest {args:?}: {}\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// A JSON file the run wrote.
pub fn json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{} not written: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}
