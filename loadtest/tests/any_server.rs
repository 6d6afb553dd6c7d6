//! `--url` against servers that are not sse-digits: small hand-written SSE servers on
//! 127.0.0.1 whose events carry ids, numeric data without ids (starting again at 1 on every
//! connection, as the seed's Node demo does), neither, a JSON timestamp, or other event names.
//! Each run is the whole load test (goose and all) with a few users for two seconds.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use clap::Parser as _;
use loadtest::report::console;
use loadtest::{run, Options, Summary};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

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
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stream = Arc::new(stream);
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let stream = Arc::clone(&stream);
            tokio::spawn(async move { serve(socket, stream()).await });
        }
    });
    addr
}

async fn serve(mut socket: TcpStream, stream: Stream) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
        match tokio::time::timeout(Duration::from_secs(5), socket.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => head.extend_from_slice(&buf[..n]),
            _ => return,
        }
    }
    if !head.starts_with(b"GET /digits HTTP/1.1\r\n") {
        let _ = socket
            .write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            .await;
        return;
    }
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
        let _ = tokio::time::timeout(HOLD_AT_MOST, socket.read(&mut buf)).await;
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
