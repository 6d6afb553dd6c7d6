//! What the embedded-server test runs share: the arguments of a small, fast run.

/// A small run against the embedded server: 20 users, 3 s, a 50 ms schedule, a 100 ms
/// retry hint, goose quiet. Tests append their own options.
pub const SMALL_RUN: [&str; 15] = [
    "loadtest",
    "-u",
    "20",
    "-r",
    "100",
    "-t",
    "3s",
    "-q",
    "--no-print-metrics",
    "--progress-secs",
    "0",
    "--interval-ms",
    "50",
    "--server-retry-ms",
    "100",
];
