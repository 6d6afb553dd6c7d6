//! `--url` against servers that are not sse-digits: small hand-written SSE servers on
//! 127.0.0.1 whose events carry ids, numeric data without ids (starting again at 1 on every
//! connection, as the seed's Node demo does), neither, a JSON timestamp, or other event names;
//! and servers that end each stream, with or without a `retry:` hint, resuming after
//! `Last-Event-ID` or not. Each run is the whole load test (goose and all) with a few users
//! for two seconds.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use clap::Parser as _;
use loadtest::report::console;
use loadtest::{run, Options, Summary};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[path = "common/request_head.rs"]
mod request_head;
use request_head::read_head;

/// Goose keeps process-wide state (its killswitch, its log): one load test at a time.
static GOOSE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The longest a stream is held open after its last event.
const HOLD_AT_MOST: Duration = Duration::from_secs(10);
/// Users in each run.
const USERS: u64 = 3;

/// What the server sends on its one stream path.
struct Stream {
    /// Written first (a `retry:` field, say).
    prologue: &'static str,
    /// The events, one written every `gap`; `{NOW-300}` is replaced by the time of writing
    /// minus 300 ms, in ms since the Unix epoch.
    events: Vec<String>,
    /// Between two events.
    gap: Duration,
    /// After the last event: keep the connection open (until the client leaves), or close.
    hold: bool,
}

/// Starts a server on 127.0.0.1 (a free port) that streams `stream()` on exactly
/// `GET /digits` (no query, like the seed's server) and answers 404 to anything else.
async fn server(stream: impl Fn() -> Stream + Send + Sync + 'static) -> SocketAddr {
    resuming_server(move |_| stream()).await
}

/// The same, streaming `stream(last)` where `last` is the request's `Last-Event-ID` as a
/// number, if it has one.
async fn resuming_server(
    stream: impl Fn(Option<u64>) -> Stream + Send + Sync + 'static,
) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stream = Arc::new(stream);
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let stream = Arc::clone(&stream);
            tokio::spawn(async move { serve(socket, &*stream).await });
        }
    });
    addr
}

/// The `Last-Event-ID` header of a request head, as a number.
fn last_event_id(head: &[u8]) -> Option<u64> {
    String::from_utf8_lossy(head).lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("last-event-id")
            .then(|| value.trim().parse().ok())
            .flatten()
    })
}

async fn serve(mut socket: TcpStream, stream: &(dyn Fn(Option<u64>) -> Stream + Send + Sync)) {
    let Some(head) = read_head(&mut socket).await else {
        return;
    };
    if !head.starts_with(b"GET /digits HTTP/1.1\r\n") {
        let _ = socket
            .write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            .await;
        return;
    }
    let stream = stream(last_event_id(&head));
    let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n\
                connection: close\r\n\r\n";
    if socket
        .write_all(format!("{head}{}", stream.prologue).as_bytes())
        .await
        .is_err()
    {
        return;
    }
    for event in &stream.events {
        tokio::time::sleep(stream.gap).await;
        let sent = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_millis()
            - 300;
        let event = event.replace("{NOW-300}", &sent.to_string());
        if socket.write_all(event.as_bytes()).await.is_err() {
            return;
        }
    }
    if stream.hold {
        let _ = tokio::time::timeout(HOLD_AT_MOST, socket.read(&mut [0u8; 1024])).await;
    }
    let _ = socket.shutdown().await;
}

/// The whole load test against `http://addr/digits` with `extra` options; prints the summary.
async fn load_test(addr: SocketAddr, extra: &[&str]) -> Summary {
    let _one_at_a_time = GOOSE.lock().await;
    let url = format!("http://{addr}/digits");
    let users = USERS.to_string();
    let mut args = vec![
        "loadtest",
        "--url",
        &url,
        "-u",
        &users,
        "-r",
        "100",
        "-t",
        "2s",
        "-q",
        "--no-print-metrics",
        "--progress-secs",
        "0",
        "--retry-ms",
        "100",
    ];
    args.extend_from_slice(extra);
    let summary = run(Options::try_parse_from(args).unwrap()).await.unwrap();
    println!("{}", console::render(&summary));
    summary
}

fn numbered(from: u64, to: u64, event: impl Fn(u64) -> String) -> Vec<String> {
    (from..=to).map(event).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numeric_ids_are_an_id_sequence_without_the_digits_data_rule() {
    let addr = server(|| Stream {
        prologue: "retry: 100\n\n",
        events: numbered(1, 5, |n| format!("id: {n}\ndata: {{\"n\": {n}}}\n\n")),
        gap: Duration::ZERO,
        hold: true,
    })
    .await;
    let s = load_test(addr, &[]).await;
    let c = &s.counters;
    assert_eq!(
        (
            c.identity_id_sequence,
            c.identity_numeric_data,
            c.identity_none
        ),
        (USERS, 0, 0)
    );
    assert_eq!((c.events, c.expected), (5 * USERS, 5 * USERS));
    assert_eq!(
        (c.lost, c.duplicated, c.malformed, c.failed()),
        (0, 0, 0, 0)
    );
    assert_eq!(s.lateness_against.mode, "gaps");
    assert!(s.is_clean());
}

/// The seed's server: `data: N` without ids, then (here) the stream ends; every
/// reconnection starts again at 1: restarted from the beginning, not duplicates or loss.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numeric_data_without_ids_is_a_data_sequence_that_restarts() {
    let addr = server(|| Stream {
        prologue: "",
        events: numbered(1, 3, |n| format!("data: {n}\n\n")),
        gap: Duration::from_millis(20),
        hold: false,
    })
    .await;
    let s = load_test(addr, &["--interval-ms", "20"]).await;
    let c = &s.counters;
    assert_eq!(
        (
            c.identity_id_sequence,
            c.identity_numeric_data,
            c.identity_none
        ),
        (0, USERS, 0)
    );
    assert_eq!(c.failed(), 0, "the URL must be sent exactly as given");
    assert!(c.reconnects >= USERS, "{c:?}");
    // Every reconnection starts at 1; each user's last one may be cut by the deadline before
    // its first event, which is then never read.
    assert!(
        c.restarted <= c.reconnects && c.restarted + USERS >= c.reconnects,
        "restarted {} of {} reconnections",
        c.restarted,
        c.reconnects
    );
    assert_eq!(
        (c.lost, c.duplicated, c.out_of_order, c.malformed),
        (0, 0, 0, 0)
    );
    assert_eq!(c.expected, c.events);
    let json = serde_json::to_value(&s).unwrap();
    assert!(
        json["counters"]["resumed_wrong"].is_null(),
        "no ids: no resume check"
    );
    assert_eq!(json["counters"]["lost"], 0);
    assert_eq!(s.lateness_against.mode, "schedule");
    assert!(s.latencies.lateness.count > 0);
    let text = console::render(&s);
    assert!(text.contains("resumed ok not checkable"), "{text}");
    assert!(text.contains(&format!("numeric data {USERS}")), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_with_neither_are_counted_but_not_checkable() {
    let addr = server(|| Stream {
        prologue: "retry: 100\n\n",
        events: vec!["data: hello\n\n".into(); 4],
        gap: Duration::ZERO,
        hold: true,
    })
    .await;
    let s = load_test(addr, &[]).await;
    let c = &s.counters;
    assert_eq!(
        (
            c.identity_id_sequence,
            c.identity_numeric_data,
            c.identity_none
        ),
        (0, 0, USERS)
    );
    assert_eq!((c.events, c.malformed), (4 * USERS, 0));
    let json = serde_json::to_value(&s).unwrap();
    for key in ["expected", "lost", "duplicated", "out_of_order"] {
        assert!(json["counters"][key].is_null(), "{key}");
    }
    let text = console::render(&s);
    assert!(text.contains("lost not checkable"), "{text}");
    let gate: loadtest::report::thresholds::Thresholds = toml::from_str("max_lost = 0").unwrap();
    assert_eq!(
        gate.check(&s).failures(),
        ["lost events not checkable (limit <= 0)"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_timestamp_measures_lateness() {
    let addr = server(|| Stream {
        prologue: "retry: 100\n\n",
        events: numbered(1, 6, |n| {
            format!("id: {n}\ndata: {{\"n\": {n}, \"sent\": {{NOW-300}}}}\n\n")
        }),
        gap: Duration::from_millis(20),
        hold: true,
    })
    .await;
    let s = load_test(addr, &["--timestamp-field", "sent"]).await;
    let c = &s.counters;
    assert_eq!(s.lateness_against.mode, "timestamp");
    assert_eq!((c.untimed, c.lost), (0, 0));
    let l = &s.latencies.lateness;
    assert_eq!(l.count, 6 * USERS, "every event has a lateness");
    // Each event is stamped 300 ms before it is written.
    assert!(l.p50_ms >= 300.0 && l.max_ms < 2_000.0, "{l:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_event_names_are_counted_by_name() {
    let addr = server(|| Stream {
        prologue: "retry: 100\n\n",
        events: vec![
            "id: 1\ndata: 1\n\n".into(),
            "event: update\nid: 2\ndata: {}\n\n".into(),
            "event: update\nid: 3\ndata: {}\n\n".into(),
            "event: ping\nid: 4\ndata: -\n\n".into(),
        ],
        gap: Duration::ZERO,
        hold: true,
    })
    .await;
    let s = load_test(addr, &[]).await;
    let c = &s.counters;
    assert_eq!(c.other_names, 3 * USERS);
    assert_eq!(c.event_names.get("update"), Some(&(2 * USERS)));
    assert_eq!(c.event_names.get("ping"), Some(&USERS));
    assert_eq!((c.lost, c.malformed), (0, 0));
    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(json["counters"]["event_names"]["update"], 2 * USERS);
}

/// Events `id: N` / `data: N` for the `count` ids after `last` (from 1 without it).
fn ids_after(last: Option<u64>, count: u64) -> Vec<String> {
    let first = last.map_or(1, |last| last + 1);
    numbered(first, first + count - 1, |n| {
        format!("id: {n}\ndata: {n}\n\n")
    })
}

/// Whether `ms`, read from a histogram, is `want` within its precision (3 significant
/// digits: 0.1%).
fn within_precision(ms: f64, want: f64) -> bool {
    (ms - want).abs() <= want / 1000.0
}

/// What the summary says about the delays reconnections waited on: every one planned at
/// `hint_ms`, each counted under `source` (a JSON key) and no other, one wait per
/// reconnection (and at most one per user cut by the deadline), and each reconnection took
/// at least its wait.
fn assert_every_wait_was(s: &Summary, hint_ms: f64, source: &str) {
    let json = serde_json::to_value(s).unwrap();
    let hint = &json["latencies"]["retry_hint"];
    let count = hint["count"].as_u64().unwrap();
    let reconnects = json["counters"]["reconnects"].as_u64().unwrap();
    assert!(reconnects >= USERS, "each user reconnected: {json}");
    assert!(
        reconnects <= count && count <= reconnects + USERS,
        "{count} waits for {reconnects} reconnections"
    );
    for key in ["min_ms", "p50_ms", "max_ms"] {
        let ms = hint[key].as_f64().unwrap();
        assert!(within_precision(ms, hint_ms), "retry hint {key} {ms}");
    }
    for key in [
        "retry_from_field",
        "retry_default",
        "retry_after",
        "retry_clamped",
    ] {
        let want = if key == source { count } else { 0 };
        assert_eq!(json["counters"][key], want, "{key}");
    }
    let reconnect = &json["latencies"]["reconnect"];
    assert!(
        reconnect["p50_ms"].as_f64().unwrap() >= hint_ms,
        "a reconnection waits its hint: {reconnect}"
    );
    let text = console::render(s);
    assert!(text.contains("  retry hint "), "{text}");
    assert!(
        text.contains("\n  reconnection    hint from server "),
        "{text}"
    );
}

/// A server that asks `retry: 200`, ends each stream after three events and resumes after
/// `Last-Event-ID`: every reconnection waited the server's 200 ms (not `--retry-ms`) and
/// resumed where it left off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnections_wait_the_servers_retry_hint_and_resume() {
    let addr = resuming_server(|last| Stream {
        prologue: "retry: 200\n\n",
        events: ids_after(last, 3),
        gap: Duration::ZERO,
        hold: false,
    })
    .await;
    let s = load_test(addr, &[]).await;
    assert_every_wait_was(&s, 200.0, "retry_from_field");
    let c = &s.counters;
    assert!(c.resumed_ok > 0, "{c:?}");
    assert_eq!((c.resumed_wrong, c.lost, c.duplicated), (0, 0, 0), "{c:?}");
    assert_eq!(c.closed_without_retry_hint, 0, "{c:?}");
}

/// The same server without `retry:`: every wait is `--retry-ms`, counted as the default.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_retry_hint_reconnections_wait_the_default() {
    let addr = resuming_server(|last| Stream {
        prologue: "",
        events: ids_after(last, 3),
        gap: Duration::ZERO,
        hold: false,
    })
    .await;
    let s = load_test(addr, &["--retry-ms", "300"]).await;
    assert_every_wait_was(&s, 300.0, "retry_default");
    let c = &s.counters;
    assert!(c.resumed_ok > 0, "{c:?}");
    assert_eq!(c.resumed_wrong, 0, "{c:?}");
    assert!(c.closed_without_retry_hint >= USERS, "{c:?}");
}

/// A server that ignores `Last-Event-ID` and starts every stream again at id 1: each
/// reconnection whose first event arrived resumed at the wrong id, and the ids it sends
/// again are duplicates (an id sequence is not numeric data, so no restart).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_ignores_last_event_id_resumes_wrong() {
    let addr = resuming_server(|_| Stream {
        prologue: "retry: 200\n\n",
        events: ids_after(None, 3),
        gap: Duration::ZERO,
        hold: false,
    })
    .await;
    let s = load_test(addr, &[]).await;
    assert_every_wait_was(&s, 200.0, "retry_from_field");
    let c = &s.counters;
    assert_eq!(c.identity_id_sequence, USERS, "{c:?}");
    assert_eq!((c.resumed_ok, c.restarted), (0, 0), "{c:?}");
    // Each user's last reconnection may be cut by the deadline before its first event.
    assert!(
        c.resumed_wrong <= c.reconnects && c.resumed_wrong + USERS >= c.reconnects,
        "{} wrong of {} reconnections",
        c.resumed_wrong,
        c.reconnects
    );
    // Three ids again per wrong resume, less what the deadline cut from the last ones.
    assert!(
        c.duplicated <= 3 * c.resumed_wrong && c.duplicated + 2 * USERS >= 3 * c.resumed_wrong,
        "{c:?}"
    );
    assert!(!s.is_clean());
}
