//! The load test run programmatically, at small scale, against the real server embedded in
//! the test process on 127.0.0.1: tens of users, a few seconds, a 50 ms schedule.

mod common;

use std::time::Duration;

use clap::Parser as _;
use loadtest::run::embedded::EmbeddedServer;
use loadtest::run::runner::embedded_config;
use loadtest::{run, Options, Summary};

/// Goose keeps process-wide state (its killswitch, its log): one load test at a time.
static GOOSE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Lateness this far above the schedule would mean a broken measurement or server, even on
/// a busy two-core machine.
const SANE_P99_MS: f64 = 500.0;

async fn load_test(extra: &[&str]) -> Summary {
    let _one_at_a_time = GOOSE.lock().await;
    let mut args = common::SMALL_RUN.to_vec();
    args.extend_from_slice(extra);
    run(Options::try_parse_from(args).unwrap()).await.unwrap()
}

async fn load_test_owned(extra: Vec<&'static str>) -> Summary {
    load_test(&extra).await
}

fn assert_nothing_lost(s: &Summary) {
    let c = &s.counters;
    assert!(c.events > 0, "{c:?}");
    assert_eq!(c.lost, 0, "{c:?}");
    assert_eq!(c.duplicated, 0, "{c:?}");
    assert_eq!(c.out_of_order, 0, "{c:?}");
    assert_eq!(c.malformed, 0, "{c:?}");
    assert_eq!(c.expected, c.events, "{c:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_run_is_clean_and_on_time() {
    let s = load_test(&[]).await;
    assert!(s.embedded);
    assert_nothing_lost(&s);
    let c = &s.counters;
    assert!(s.is_clean(), "{c:?}");
    assert_eq!(c.connections_opened, 20);
    assert_eq!(c.stopped_at_deadline, 20, "every user streams to the end");
    assert_eq!(s.peak_open_streams, 20);
    assert_eq!(
        s.server_after.as_ref().and_then(|a| a.streams_open),
        Some(0)
    );
    // Three seconds at 20 events/s per user, less ramp-up: well over a thousand.
    assert!(c.events > 1000, "{c:?}");
    let lateness = &s.latencies.lateness;
    assert!(lateness.count > 1000);
    assert!(lateness.p99_ms < SANE_P99_MS, "{lateness:?}");
    let steady = &s.latencies.lateness_steady;
    assert!(
        steady.count > 0 && steady.count <= lateness.count,
        "{steady:?}"
    );
    assert_eq!(s.latencies.first_event.count, 20);
    // The rate with every stream open, and the server's own count over that window, come
    // from wall-clock windows that a busy machine stretches or squeezes: their arithmetic
    // is unit-tested on fixed instants (the monitor's steady window, the server's bucket
    // differences). Here they must have been measured, and agree with the run's counts: a
    // window of at least a second holds no more events than the whole run.
    let steady = s
        .steady_events_per_sec
        .expect("all streams were open for over a second");
    assert!(steady > 0.0 && steady <= c.events as f64, "{steady}, {c:?}");
    let server = s
        .server_lateness
        .expect("the embedded server's /metrics has the histogram");
    assert!(server.events > 0, "{server:?}");
    assert!(
        server.p99_at_most_ms.is_some_and(|ms| ms <= SANE_P99_MS),
        "{server:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_the_server_ends_are_resumed_without_loss() {
    let s = load_test(&["--max-secs", "1"]).await;
    assert_nothing_lost(&s);
    let c = &s.counters;
    assert!(c.closed_by_server >= 20, "{c:?}");
    assert_eq!(c.closed_without_retry_hint, 0);
    assert!(c.reconnects >= 20, "{c:?}");
    assert_eq!(c.resumed_ok, c.reconnects, "{c:?}");
    assert_eq!(c.resumed_wrong, 0);
    assert!(s.latencies.reconnect.count >= 20);
    // The server's hint is 100 ms: a reconnect takes that plus a little.
    assert!(
        s.latencies.reconnect.p50_ms >= 100.0,
        "{:?}",
        s.latencies.reconnect
    );
}

/// The raw HTTP/1.1 transport: the same clean run, and resumption after server drops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_raw_transport_streams_and_resumes_without_loss() {
    let s = load_test(&["--transport", "raw", "--max-secs", "1"]).await;
    assert_nothing_lost(&s);
    let c = &s.counters;
    assert_eq!(c.failed(), 0, "{c:?}");
    assert_eq!(c.read_errors, 0, "{c:?}");
    assert!(c.closed_by_server >= 20, "{c:?}");
    assert_eq!(c.closed_without_retry_hint, 0, "{c:?}");
    assert!(c.resumed_ok >= 20, "{c:?}");
    assert_eq!(c.resumed_wrong, 0, "{c:?}");
    assert!(
        s.latencies.lateness.p99_ms < SANE_P99_MS,
        "{:?}",
        s.latencies.lateness
    );
}

/// Streams short enough to finish: every user gets ids 1 to 19 and `bye` (id 20), then holds
/// no connection until the run ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_stream_that_reaches_bye_is_complete() {
    let s = load_test(&["--count", "20"]).await;
    assert_nothing_lost(&s);
    let c = &s.counters;
    assert_eq!(c.completed_bye, 20, "{c:?}");
    assert_eq!(c.events, 20 * 20, "{c:?}");
    assert_eq!(c.reconnects, 0, "after bye nobody reconnects: {c:?}");
    assert_eq!(c.stopped_at_deadline, 0, "{c:?}");
    assert_eq!(
        s.server_after.as_ref().and_then(|a| a.streams_open),
        Some(0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_the_client_drops_are_resumed_without_loss() {
    let s = load_test(&["--drop-after", "10"]).await;
    assert_nothing_lost(&s);
    let c = &s.counters;
    assert!(c.dropped_by_client >= 20, "{c:?}");
    assert!(c.resumed_ok >= 20, "{c:?}");
    assert_eq!(c.resumed_wrong, 0, "{c:?}");
    // Every reconnection resumed at the next id, except at most one per user (20) that was
    // still waiting for its first event when the run's deadline came.
    assert!(c.reconnects - c.resumed_ok <= 20, "{c:?}");
    assert_eq!(c.failed(), 0, "{c:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_user_comes_back_after_a_restart() {
    let s = load_test(&[
        "--restart-at",
        "1.5",
        "--restart-down-ms",
        "300",
        "-t",
        "4s",
    ])
    .await;
    assert_nothing_lost(&s);
    let c = &s.counters;
    // Each user was told to go (a retry hint, then the end), came back and resumed.
    assert!(c.closed_by_server >= 20, "{c:?}");
    assert!(c.resumed_ok >= 20, "{c:?}");
    assert_eq!(c.resumed_wrong, 0, "{c:?}");
    // Each connection the restart closed sent its retry hint first.
    assert_eq!(c.closed_without_retry_hint, 0, "{c:?}");
    // Refusals while the server is down on purpose are expected, not failures.
    assert_eq!(c.failed_refused, 0, "{c:?}");
    assert_eq!(
        c.stopped_at_deadline, 20,
        "every user streams to the end: {c:?}"
    );
    // The storm record counts every attempt and every open, refused ones included.
    assert_eq!(s.storm.attempts.total, c.connect_attempts, "{:?}", s.storm);
    assert_eq!(s.storm.opens.total, c.connections_opened, "{:?}", s.storm);
    let after = s
        .server_after
        .as_ref()
        .expect("embedded runs check the server after");
    assert_eq!(after.streams_open, Some(0));
    assert!(after.rss_growth_pct.is_some(), "{after:?}");
}

/// Without a drain window every stream is closed at the same instant, so every client comes
/// back in the same few milliseconds; a drain window spreads the closes and with them the
/// reconnections. The storm record tells the two apart. How many land in one 10 ms bin
/// depends on how promptly a busy machine runs the clients' timers, so the two runs are
/// compared with each other; the bins themselves are unit-tested on fixed instants (`storm`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_window_spreads_the_reconnection_herd() {
    let restart = |drain: &'static str| {
        load_test_owned(vec![
            "--restart-at",
            "1.5",
            "--restart-down-ms",
            "300",
            "--server-drain-ms",
            drain,
            "-t",
            "4s",
        ])
    };
    let herd = restart("0").await;
    let spread = restart("1000").await;
    assert_nothing_lost(&herd);
    assert_nothing_lost(&spread);
    // 20 users: with no drain nearly all reconnect within one 10 ms bin; spread over a
    // second (ten retry periods of 100 ms), a bin holds a few.
    assert!(
        herd.storm.attempts.bin.count > spread.storm.attempts.bin.count,
        "herd {:?}, spread {:?}",
        herd.storm,
        spread.storm
    );
}

/// Connections spread over four loopback source addresses (one client each) still all open,
/// stream and resume: binding the local address must not get in the way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_spread_over_source_addresses_are_clean() {
    let s = load_test(&[
        "--source-addrs",
        "127.0.0.1-127.0.0.4",
        "--clients",
        "4",
        "--drop-after",
        "20",
    ])
    .await;
    assert_nothing_lost(&s);
    let c = &s.counters;
    assert_eq!(c.failed(), 0, "{c:?}");
    assert!(c.resumed_ok >= 20, "{c:?}");
    assert_eq!(c.stopped_at_deadline, 20, "{c:?}");
}

/// A bound no run can meet: the first step fails, one refining step at half the rate fails
/// too, and the search reports no capacity rather than a made-up one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_capacity_search_bisects_after_a_failure_and_reports_none_passed() {
    let _one_at_a_time = GOOSE.lock().await;
    let options = Options::try_parse_from([
        "loadtest",
        "-r",
        "100",
        "-t",
        "2s",
        "-q",
        "--progress-secs",
        "0",
        "--interval-ms",
        "50",
        "--find-capacity",
        "--capacity-start",
        "200",
        "--capacity-refine",
        "1",
        "--capacity-p99-ms",
        "0",
    ])
    .unwrap();
    let report = loadtest::run::capacity::find_capacity(&options)
        .await
        .unwrap();
    let users: Vec<usize> = report.steps.iter().map(|s| s.users).collect();
    assert_eq!(users, vec![10, 5], "{report:?}");
    assert!(report
        .steps
        .iter()
        .all(|s| !s.passed && s.lost == 0 && s.errors == 0));
    assert_eq!(report.capacity_events_per_sec, None);
    assert!(
        report
            .stopped_because
            .contains("200 offered events/s failed"),
        "{report:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_embedded_connections_are_refused_before_starting() {
    let err = run(Options::try_parse_from(["loadtest", "-u", "1000000"]).unwrap())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("connections fit"), "{err}");
    assert!(err.contains("--host"), "{err}");
}

/// The command-line client prints what a Node EventSource client prints.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_client_prints_each_event() {
    let sse: loadtest::run::options::SseOptions =
        Options::try_parse_from(["loadtest"]).unwrap().sse;
    let file_limit = loadtest::probe::procstat::raise_nofile_limit().unwrap();
    let server = EmbeddedServer::start(embedded_config(&sse, file_limit)).unwrap();
    let url = format!("{}/digits?interval_ms=10&count=4", server.url());
    let output = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::process::Command::new(env!("CARGO_BIN_EXE_sse-client"))
            .arg(&url)
            .output(),
    )
    .await
    .expect("sse-client ended within 10 s")
    .unwrap();
    server.stop().await.unwrap();
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(
        stdout,
        "Event: open\nEvent: message, data: 1\nEvent: message, data: 2\n\
         Event: message, data: 3\nEvent: bye, data: bye-bye\n"
    );
}
