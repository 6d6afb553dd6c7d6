//! Several load-generator processes against one sse-digits server started in this test:
//! `--processes 2` against one process with the same users, two processes started apart
//! with one `--start-at` and added by `loadtest merge`, and the refusals. The load test runs
//! as its own binary, as an operator runs it, since `--processes` starts copies of it.

use std::time::{Duration, SystemTime};

use serde_json::Value;
use sse_digits::config::Config;
use sse_digits::startup::Application;

#[path = "common/binary.rs"]
mod binary;
use binary::{json, loadtest};

/// A hang guard only: each run here takes a few seconds.
const TIMEOUT: Duration = Duration::from_secs(300);

/// Users in every run (2 × 500 when split), and the events each is sent per second (a
/// 500 ms interval).
const USERS: u64 = 1000;
const EVENTS_PER_USER_PER_SEC: u64 = 2;
/// `-t` in seconds, and the ramp (`-u N -r N`: one second).
const RUN_SECS: u64 = 3;
const RAMP_SECS: u64 = 1;

fn counter(summary: &Value, key: &str) -> u64 {
    summary["counters"][key]
        .as_u64()
        .unwrap_or_else(|| panic!("counters.{key} in {summary}"))
}

/// A small run's arguments against `host`, with `users` users at one user per second per
/// user (so the ramp lasts a second whatever the share).
fn small_run(host: &str, users: u64) -> Vec<String> {
    [
        "--host",
        host,
        "-u",
        &users.to_string(),
        "-r",
        &users.to_string(),
        "-t",
        &format!("{RUN_SECS}s"),
        "-q",
        "--no-print-metrics",
        "--progress-secs",
        "0",
        "--interval-ms",
        &(1000 / EVENTS_PER_USER_PER_SEC).to_string(),
    ]
    .iter()
    .map(ToString::to_string)
    .collect()
}

/// Every user connected, nothing lost or duplicated, and the events near what the server
/// was asked to send: at least users × rate × `-t`, at most users × rate × (ramp + `-t` +
/// the second's grace), with 10% either side.
fn assert_whole_run(summary: &Value) {
    assert_eq!(summary["users"].as_u64(), Some(USERS), "{summary}");
    assert_eq!(
        summary["peak_open_streams"].as_u64(),
        Some(USERS),
        "every user connected"
    );
    assert_eq!(counter(summary, "lost"), 0);
    assert_eq!(counter(summary, "duplicated"), 0);
    assert_eq!(counter(summary, "out_of_order"), 0);
    let events = counter(summary, "events") as f64;
    let per_sec = (USERS * EVENTS_PER_USER_PER_SEC) as f64;
    let (low, high) = (
        per_sec * RUN_SECS as f64 * 0.9,
        per_sec * (RAMP_SECS + RUN_SECS + 1) as f64 * 1.1,
    );
    assert!(
        (low..=high).contains(&events),
        "{events} events, expected {low}..{high}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_give_one_result_like_one_process() {
    let app = Application::build(Config {
        bind: ([127, 0, 0, 1], 0).into(),
        workers: 2,
        ..Config::default()
    })
    .unwrap();
    let host = format!("http://{}", app.local_addr());
    let handle = app.handle();
    let server = tokio::spawn(app.run_until_stopped());
    let dir = tempfile::tempdir().unwrap();
    let at = |name: &str| dir.path().join(name).display().to_string();

    // Two processes, one result.
    let mut args = small_run(&host, USERS);
    args.extend(
        [
            "--processes",
            "2",
            "--summary-json",
            &at("two.json"),
            "--report-dir",
            &at("report"),
            "--part-file",
            &at("two.part.json"),
            "--gate-max-lost",
            "0",
            "--progress-secs",
            "1",
        ]
        .map(String::from),
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = loadtest(&args, TIMEOUT).await;
    assert!(out.status.success());
    // One progress line for both processes, over the whole run's users.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with('[') && l.contains(&format!("/{USERS} |"))),
        "{stderr}"
    );
    let two = json(&dir.path().join("two.json"));
    assert_whole_run(&two);
    assert_eq!(two["load_generators"].as_array().map(Vec::len), Some(2));
    let page = std::fs::read_to_string(dir.path().join("report/index.html")).unwrap();
    assert!(page.contains("id=\"plot-over-time\""));
    assert!(page.contains("load-generator process 2"));
    assert!(String::from_utf8_lossy(&out.stdout).contains("gate"));

    // The same users in one process.
    let mut args = small_run(&host, USERS);
    args.extend(["--summary-json".into(), at("one.json")]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert!(loadtest(&args, TIMEOUT).await.status.success());
    let one = json(&dir.path().join("one.json"));
    assert_whole_run(&one);
    assert!(one.get("load_generators").is_none(), "{one}");
    let (e1, e2) = (
        counter(&one, "events") as f64,
        counter(&two, "events") as f64,
    );
    assert!(
        (e1 - e2).abs() <= 0.1 * e1,
        "one process {e1}, two {e2} events"
    );

    // The parent's own part, merged alone, gives the parent's counters.
    let out = loadtest(
        &[
            "merge",
            &at("two.part.json"),
            "--summary-json",
            &at("again.json"),
        ],
        TIMEOUT,
    )
    .await;
    assert!(out.status.success());
    assert_eq!(
        json(&dir.path().join("again.json"))["counters"],
        two["counters"]
    );

    // Two "machines": half the users each, one start moment, then merge.
    let start = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        + 2.0;
    let machine = |n: u32| {
        let mut args = small_run(&host, USERS / 2);
        args.extend(
            [
                "--start-at".into(),
                format!("{start:.3}"),
                "--part-file".into(),
                at(&format!("m{n}.part.json")),
                "--summary-json".into(),
                at(&format!("m{n}.json")),
            ]
            .into_iter(),
        );
        args
    };
    let (a, b) = (machine(1), machine(2));
    let (a, b): (Vec<&str>, Vec<&str>) = (
        a.iter().map(String::as_str).collect(),
        b.iter().map(String::as_str).collect(),
    );
    let (out_a, out_b) = tokio::join!(loadtest(&a, TIMEOUT), loadtest(&b, TIMEOUT));
    assert!(out_a.status.success() && out_b.status.success());
    let out = loadtest(
        &[
            "merge",
            &at("m1.part.json"),
            &at("m2.part.json"),
            "--summary-json",
            &at("merged.json"),
            "--report-dir",
            &at("merged-report"),
        ],
        TIMEOUT,
    )
    .await;
    assert!(out.status.success());
    let merged = json(&dir.path().join("merged.json"));
    assert_whole_run(&merged);
    let (m1, m2) = (
        json(&dir.path().join("m1.json")),
        json(&dir.path().join("m2.json")),
    );
    for key in [
        "events",
        "connect_attempts",
        "connections_opened",
        "expected",
    ] {
        assert_eq!(
            counter(&merged, key),
            counter(&m1, key) + counter(&m2, key),
            "{key}"
        );
    }
    assert!(dir.path().join("merged-report/index.html").exists());

    handle.stop().await;
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn processes_with_the_embedded_server_are_refused() {
    use clap::Parser as _;
    let options = loadtest::Options::try_parse_from(["loadtest", "--processes", "2"]).unwrap();
    let err = loadtest::run::command::execute(options)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("embedded server"), "{err}");
}

#[tokio::test]
async fn a_damaged_part_is_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.part.json");
    std::fs::write(&path, "{\"format\": \"loadtest-part/1\", \"target\": ").unwrap();
    let out = loadtest(&["merge", &path.display().to_string()], TIMEOUT).await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("broken.part.json"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// A counter's value in a Prometheus text page.
fn metric(page: &str, name: &str) -> Option<f64> {
    page.lines()
        .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_are_spread_round_robin_over_several_hosts() {
    use clap::Parser as _;
    let start = || {
        let app = Application::build(Config {
            bind: ([127, 0, 0, 1], 0).into(),
            workers: 1,
            ..Config::default()
        })
        .unwrap();
        let host = format!("http://{}", app.local_addr());
        let handle = app.handle();
        (host, handle, tokio::spawn(app.run_until_stopped()))
    };
    let (a, a_handle, a_task) = start();
    let (b, b_handle, b_task) = start();
    let hosts = format!("{a},{b}");
    let mut args = small_run(&hosts, 6);
    args.insert(0, "loadtest".into());
    let summary = loadtest::run(loadtest::Options::try_parse_from(&args).unwrap())
        .await
        .unwrap();
    assert_eq!(summary.peak_open_streams, 6);
    assert_eq!(summary.counters.lost, 0);
    assert!(
        summary.target.contains(&a) && summary.target.contains(&b),
        "{}",
        summary.target
    );
    for host in [&a, &b] {
        let page = reqwest::get(format!("{host}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let started = metric(&page, sse_digits::telemetry::names::STREAMS_STARTED);
        assert_eq!(started, Some(3.0), "{host}: half the users");
    }
    for (handle, task) in [(a_handle, a_task), (b_handle, b_task)] {
        handle.stop().await;
        task.await.unwrap().unwrap();
    }
}
