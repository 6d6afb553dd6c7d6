//! `--find-capacity --url`: the capacity search against a server that is not sse-digits, run
//! as an operator runs it (the real binary). The server here streams numeric data without
//! ids (as the Node demo does) on one exact path and query, on its own schedule, and records
//! every request line, so a search that ignored `--url` (and ran the embedded server) or
//! changed the URL would be seen.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

#[path = "common/binary.rs"]
mod binary;
use binary::{json, loadtest};

#[path = "common/request_head.rs"]
mod request_head;
use request_head::read_head;

/// The stream's path and query: nothing the load test's sse-digits mode would ask for.
const STREAM: &str = "/feed?topic=digits";
/// The server's interval, which the search is told with `--interval-ms`.
const INTERVAL_MS: u64 = 100;
/// The most events one stream is sent (a minute's worth), so the server stops by itself.
const MAX_EVENTS: u64 = 600;
/// A hang guard only: the search below takes about 15 s.
const TIMEOUT: Duration = Duration::from_secs(300);

/// The request lines the server received, in order.
type Seen = Arc<Mutex<Vec<String>>>;

/// Starts the server on 127.0.0.1 (a free port): `GET STREAM` gets `data: 1`, `data: 2`, …
/// one every `INTERVAL_MS`, anything else a 404. Returns its URL and what it saw.
async fn numeric_data_server() -> (String, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}{STREAM}", listener.local_addr().unwrap());
    let seen = Seen::default();
    let record = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(serve(socket, Arc::clone(&record)));
        }
    });
    (url, seen)
}

async fn serve(mut socket: TcpStream, seen: Seen) {
    let Some(head) = read_head(&mut socket).await else {
        return;
    };
    let line = String::from_utf8_lossy(&head)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned();
    let wanted = line == format!("GET {STREAM} HTTP/1.1");
    seen.lock().unwrap().push(line);
    if !wanted {
        let _ = socket
            .write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            .await;
        return;
    }
    let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n\
                connection: close\r\n\r\n";
    if socket.write_all(head.as_bytes()).await.is_err() {
        return;
    }
    // A fixed schedule, as the search's lateness is measured against one.
    let mut ticks = tokio::time::interval(Duration::from_millis(INTERVAL_MS));
    ticks.tick().await;
    for n in 1..=MAX_EVENTS {
        ticks.tick().await;
        if socket
            .write_all(format!("data: {n}\n\n").as_bytes())
            .await
            .is_err()
        {
            return;
        }
    }
}

/// Two rising steps (2 then 4 users at 10 events/s each) against the URL: each step's
/// users and offered rate, and the capacity in the JSON. The p99 bound is a minute, which
/// no two-second step can reach, so both steps pass on any machine unless a run is unclean.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_search_runs_its_steps_against_the_url() {
    let (url, seen) = numeric_data_server().await;
    let dir = tempfile::tempdir().unwrap();
    let json_path = dir.path().join("capacity.json");
    let interval = INTERVAL_MS.to_string();
    let output = loadtest(
        &[
            "--url",
            &url,
            "--interval-ms",
            &interval,
            "--find-capacity",
            "--capacity-start",
            "20",
            "--capacity-factor",
            "2",
            "--capacity-steps",
            "2",
            "--capacity-refine",
            "0",
            "--capacity-p99-ms",
            "60000",
            "-r",
            "100",
            "-t",
            "2s",
            "-q",
            "--progress-secs",
            "0",
            "--summary-json",
            json_path.to_str().unwrap(),
        ],
        TIMEOUT,
    )
    .await;
    assert!(output.status.success());

    let report = json(&json_path);
    let steps = report["steps"].as_array().expect("steps");
    let users: Vec<u64> = steps.iter().map(|s| s["users"].as_u64().unwrap()).collect();
    assert_eq!(users, [2, 4], "{report}");
    let per_user = 1000.0 / INTERVAL_MS as f64;
    for step in steps {
        let offered = step["offered_events_per_sec"].as_f64().unwrap();
        let expected = step["users"].as_f64().unwrap() * per_user;
        assert!((offered - expected).abs() < 1e-9, "{step}");
        assert!(
            step["delivered_events_per_sec"].as_f64().unwrap() > 0.0,
            "{step}"
        );
        assert_eq!(step["passed"], true, "{step}");
    }
    assert_eq!(report["capacity_events_per_sec"].as_f64(), Some(40.0));
    assert_eq!(report["stopped_because"], "all 2 rising steps passed");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("capacity: 40 events/s"), "{stdout}");

    // Every user of every step asked for the URL as given; nothing else was asked but the
    // server's /metrics, which the load test reads from an external server.
    let seen = seen.lock().unwrap();
    let stream = format!("GET {STREAM} HTTP/1.1");
    let streams = seen.iter().filter(|line| **line == stream).count();
    assert!(streams >= 2 + 4, "{seen:?}");
    assert!(
        seen.iter()
            .all(|line| *line == stream || line.starts_with("GET /metrics ")),
        "{seen:?}"
    );
}

/// Without `--interval-ms` the search cannot know what a user is offered: the command says
/// so and exits before any step, without a request to the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_interval_the_search_is_refused_before_it_runs() {
    let (url, seen) = numeric_data_server().await;
    let output = loadtest(&["--url", &url, "--find-capacity", "-t", "2s"], TIMEOUT).await;
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(
            "loadtest: --find-capacity with --url needs --interval-ms, the interval of the \
             server's stream, to know the events/s each user is offered"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("capacity step"), "{stderr}");
    let seen = seen.lock().unwrap();
    assert!(seen.is_empty(), "{seen:?}");
}
