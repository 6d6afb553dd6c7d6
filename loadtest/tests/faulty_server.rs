//! The load test's counters must catch a broken server: a tiny hand-written HTTP server on
//! 127.0.0.1 answers with SSE bodies that skip, repeat or reorder ids, end without a
//! `retry:` hint, resume at the wrong id, or answer with the wrong status or content type.
//! Every run is bounded by its own deadline.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser as _;
use loadtest::client::{ClientOptions, ClientPool, End, EventSource, PoolOptions, Stop, Transport};
use loadtest::measure::counters::Counters;
use loadtest::measure::metrics::Metrics;
use loadtest::measure::recorder::UserRecorder;
use loadtest::{run, Options};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[path = "common/request_head.rs"]
mod request_head;
use request_head::read_head;

/// Goose keeps process-wide state (its killswitch, its log): one load test at a time.
static GOOSE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The longest a faulty connection is held open.
const HOLD_AT_MOST: Duration = Duration::from_secs(10);

/// What the faulty server answers to a request that carried `Last-Event-ID` (or none).
struct Answer {
    /// The whole response: status line, headers, body.
    bytes: String,
    /// Keep the connection open after writing (until the client leaves), or close it.
    hold: bool,
}

fn sse(body: &str, hold: bool) -> Answer {
    Answer {
        bytes: format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n\
             connection: close\r\n\r\n{body}"
        ),
        hold,
    }
}

fn no_content() -> Answer {
    Answer {
        bytes: "HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n".into(),
        hold: false,
    }
}

/// `id: N\ndata: N\n\n` for each id.
fn events(ids: &[u64]) -> String {
    ids.iter()
        .map(|id| format!("id: {id}\ndata: {id}\n\n"))
        .collect()
}

/// A faulty server that answers every request with a 100 ms retry hint and `ids`, then
/// holds the connection.
async fn ids_server(ids: &'static [u64]) -> SocketAddr {
    faulty_server(move |_| sse(&format!("retry: 100\n\n{}", events(ids)), true)).await
}

type Respond = dyn Fn(Option<u64>) -> Answer + Send + Sync;

/// Starts the faulty server on 127.0.0.1 (a free port); it lives as long as the test's
/// runtime.
async fn faulty_server(
    respond: impl Fn(Option<u64>) -> Answer + Send + Sync + 'static,
) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let respond: Arc<Respond> = Arc::new(respond);
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(serve(socket, Arc::clone(&respond)));
        }
    });
    addr
}

async fn serve(mut socket: TcpStream, respond: Arc<Respond>) {
    let Some(head) = read_head(&mut socket).await else {
        return;
    };
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    let last_event_id = head
        .lines()
        .find_map(|line| line.strip_prefix("last-event-id:"))
        .and_then(|v| v.trim().parse().ok());
    let answer = respond(last_event_id);
    if socket.write_all(answer.bytes.as_bytes()).await.is_err() {
        return;
    }
    if answer.hold {
        // Until the client closes (read returns 0 or fails), bounded.
        let _ = tokio::time::timeout(HOLD_AT_MOST, socket.read(&mut [0u8; 1024])).await;
    }
    let _ = socket.shutdown().await;
}

/// Runs the whole load test (goose and all) against `addr` with a few users.
async fn load_test(addr: SocketAddr, extra: &[&str]) -> loadtest::Summary {
    let _one_at_a_time = GOOSE.lock().await;
    let host = format!("http://{addr}");
    let mut args = vec![
        "loadtest",
        "-H",
        &host,
        "-u",
        "5",
        "-r",
        "100",
        "-t",
        "2s",
        "-q",
        "--no-print-metrics",
        "--progress-secs",
        "0",
        "--interval-ms",
        "50",
    ];
    args.extend_from_slice(extra);
    run(Options::try_parse_from(args).unwrap()).await.unwrap()
}

/// When a test's event source stops.
#[derive(Debug, Clone, Copy)]
enum Until {
    /// After this many seconds: for what only the deadline ends (a stream held open).
    Secs(u64),
    /// Once this many attempts have failed or streams broken, however long that takes on a
    /// busy machine, within [`GENEROUS`].
    Errors(u64),
}

/// The deadline of a test that waits for a condition rather than a time.
const GENEROUS: Duration = Duration::from_secs(30);

/// Runs one event source (no goose) against `addr` until `until`, once through each
/// transport at the same time; both must see the same thing. Returns hyper's result.
async fn one_source(addr: SocketAddr, options: ClientOptions, until: Until) -> (End, Counters) {
    let (hyper, raw) = tokio::join!(
        one_source_with(Transport::Hyper, addr, options.clone(), until),
        one_source_with(Transport::Raw, addr, options, until)
    );
    assert_eq!(hyper.0, raw.0, "how the event source ended");
    let judged = |c: &Counters| {
        (
            c.events,
            c.lost,
            c.duplicated,
            c.out_of_order,
            c.malformed,
            c.resumed_wrong,
            c.failed_status,
            c.failed_content_type,
            c.status_codes.clone(),
            c.closed_without_retry_hint,
        )
    };
    assert_eq!(judged(&hyper.1), judged(&raw.1), "hyper, then raw");
    assert_eq!(
        hyper.1.failed_refused > 0,
        raw.1.failed_refused > 0,
        "refusals: {hyper:?} {raw:?}"
    );
    hyper
}

async fn one_source_with(
    transport: Transport,
    addr: SocketAddr,
    options: ClientOptions,
    until: Until,
) -> (End, Counters) {
    let metrics = Metrics::new();
    let deadline = match until {
        Until::Secs(secs) => Duration::from_secs(secs),
        Until::Errors(_) => GENEROUS,
    };
    let stop = Arc::new(Stop::at(Instant::now() + deadline));
    // Errors are counted live as they happen; a cancel ends the retry wait at once.
    let watcher = match until {
        Until::Secs(_) => None,
        Until::Errors(errors) => Some(tokio::spawn({
            let (metrics, stop) = (Arc::clone(&metrics), Arc::clone(&stop));
            async move {
                while metrics.live.errors.load(Ordering::Relaxed) < errors {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                stop.cancel();
            }
        })),
    };
    let pool = ClientPool::new(&PoolOptions {
        clients: 1,
        source_addrs: Vec::new(),
        connect_timeout: Duration::from_secs(2),
        transport,
    })
    .unwrap();
    let url = format!("http://{addr}/digits").parse().unwrap();
    let mut recorder = UserRecorder::new(
        Arc::clone(&metrics),
        1,
        Duration::from_millis(50),
        Duration::from_secs(1),
    );
    let mut source = EventSource::new(pool.pick(0).clone(), url, options);
    let end = source.run(&mut recorder, &stop).await;
    if let Some(watcher) = watcher {
        watcher.abort();
    }
    recorder.finish();
    (end, metrics.merged().1)
}

fn quick_retry() -> ClientOptions {
    ClientOptions {
        default_retry: Duration::from_millis(100),
        ..ClientOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_load_test_counts_a_skipped_and_a_repeated_id() {
    let addr = ids_server(&[1, 2, 4, 5, 5, 6]).await;
    let s = load_test(addr, &[]).await;
    // Its /metrics is one more event stream: no figures to read after the run, and the
    // attempt to read them did not eat into the run.
    assert!(s.server_after.is_none(), "{:?}", s.server_after);
    assert!(s.server_lateness.is_none(), "{:?}", s.server_lateness);
    let c = &s.counters;
    assert_eq!(c.connections_opened, 5);
    assert_eq!(c.events, 30);
    assert_eq!(c.expected, 30, "ids 1..=6 for each of 5 users");
    assert_eq!(c.lost, 5, "id 3, once per user");
    assert_eq!(c.duplicated, 5, "id 5 twice, once per user");
    assert_eq!(c.out_of_order, 0);
    assert_eq!(c.failed(), 0);
    assert!(!s.is_clean());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_load_test_counts_streams_that_end_without_a_retry_hint() {
    let addr = faulty_server(|last_event_id| match last_event_id {
        // The first connection gets three events and an unannounced close...
        None => sse(&events(&[1, 2, 3]), false),
        // ...and the reconnection is told there is nothing more.
        Some(_) => no_content(),
    })
    .await;
    let s = load_test(addr, &["--retry-ms", "100"]).await;
    let c = &s.counters;
    assert_eq!(c.events, 15);
    assert_eq!(c.lost, 0);
    assert_eq!(c.closed_by_server, 5);
    assert_eq!(c.closed_without_retry_hint, 5);
    assert_eq!(c.reconnects, 5);
    assert_eq!(c.ended_no_content, 5);
    assert_eq!(c.stopped_at_deadline, 0);
}

#[tokio::test]
async fn an_id_that_arrives_late_is_out_of_order_not_lost() {
    let addr = ids_server(&[1, 3, 2, 4]).await;
    let (end, c) = one_source(addr, quick_retry(), Until::Secs(1)).await;
    assert_eq!(end, End::Stopped);
    assert_eq!((c.events, c.expected), (4, 4));
    assert_eq!((c.out_of_order, c.lost, c.duplicated), (1, 0, 0));
}

#[tokio::test]
async fn a_reconnection_resumed_at_the_wrong_id_is_caught() {
    let addr = faulty_server(|last_event_id| match last_event_id {
        None => sse(&format!("retry: 50\n\n{}", events(&[1, 2, 3])), false),
        // Asked to resume after 3, it starts again at 2.
        Some(_) => sse(&events(&[2, 3, 4]), true),
    })
    .await;
    let (_, c) = one_source(addr, quick_retry(), Until::Secs(2)).await;
    assert_eq!(c.reconnects, 1);
    assert_eq!((c.resumed_ok, c.resumed_wrong), (0, 1));
    assert_eq!(c.duplicated, 2);
    assert_eq!(c.lost, 0);
}

/// A chunked stream that stops inside its second chunk broke: each transport reports a
/// read error named by its cause, and the event source reconnects.
#[tokio::test]
async fn a_stream_cut_short_is_a_read_error_named_by_its_cause() {
    let addr = faulty_server(|_| Answer {
        bytes: "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\
                transfer-encoding: chunked\r\n\r\n\
                f\r\nid: 1\ndata: 1\n\n\r\n10\r\nid: 2\nda"
            .into(),
        hold: false,
    })
    .await;
    for transport in [Transport::Hyper, Transport::Raw] {
        let (end, c) = one_source_with(transport, addr, quick_retry(), Until::Errors(2)).await;
        assert_eq!(end, End::Stopped, "{transport:?}");
        assert!(c.read_errors >= 2, "{transport:?}: {c:?}");
        assert!(c.reconnects >= 1, "{transport:?}: {c:?}");
        let causes: Vec<&str> = c.read_error_kinds.keys().map(String::as_str).collect();
        assert_eq!(causes, ["io: unexpected end of file"], "{transport:?}");
        assert_eq!(c.read_error_kinds.values().sum::<u64>(), c.read_errors);
    }
}

#[tokio::test]
async fn a_silent_stream_is_a_stall() {
    let addr = faulty_server(|_| {
        // The first event at once, then nothing: the stall shows at the deadline.
        sse(&format!("retry: 100\n\n{}", events(&[1])), true)
    })
    .await;
    let (_, c) = one_source(addr, quick_retry(), Until::Secs(2)).await;
    assert_eq!(c.events, 1);
    assert_eq!(c.stalls, 1);
}

#[tokio::test]
async fn a_wrong_content_type_ends_the_event_source() {
    let addr = faulty_server(|_| Answer {
        bytes: "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\nid: 1\ndata: 1\n\n"
            .into(),
        hold: false,
    })
    .await;
    let (end, c) = one_source(addr, quick_retry(), Until::Secs(2)).await;
    assert_eq!(end, End::ContentType("text/plain".into()));
    assert_eq!(
        (c.failed_content_type, c.connect_attempts, c.events),
        (1, 1, 0)
    );
}

#[tokio::test]
async fn an_error_status_ends_the_event_source_and_is_counted_by_code() {
    let addr = faulty_server(|_| Answer {
        bytes: "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            .into(),
        hold: false,
    })
    .await;
    let (end, c) = one_source(addr, quick_retry(), Until::Secs(2)).await;
    assert_eq!(end, End::Status(503));
    assert_eq!(c.status_codes.get(&503), Some(&1));
    assert_eq!(c.connect_attempts, 1);
}

#[tokio::test]
async fn a_refused_connection_is_retried_until_stopped() {
    // Bind and drop: nothing listens on this port any more.
    let addr = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let (end, c) = one_source(addr, quick_retry(), Until::Errors(3)).await;
    assert_eq!(end, End::Stopped);
    assert!(c.failed_refused >= 3, "{c:?}");
    assert_eq!(c.failed_refused, c.connect_attempts);
}

/// Runs the real binary against `addr` with a small gate set by flags.
async fn run_binary_with_gate(addr: SocketAddr) -> std::process::Output {
    let _one_at_a_time = GOOSE.lock().await;
    let host = format!("http://{addr}");
    tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new(env!("CARGO_BIN_EXE_loadtest"))
            .args([
                "-H",
                &host,
                "-u",
                "5",
                "-r",
                "100",
                "-t",
                "2s",
                "--no-print-metrics",
            ])
            .args(["--progress-secs", "0", "--interval-ms", "50"])
            .args([
                "--gate-min-connections",
                "5",
                "--gate-max-lateness-p99-ms",
                "1000",
            ])
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the load test ended in time")
    .unwrap()
}

/// The gate must be able to fail: the real binary, pointed at a server that skips and
/// repeats ids, prints FAIL rows and exits 1 naming what failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gate_fails_a_server_that_skips_and_repeats_ids_and_says_why() {
    let addr = ids_server(&[1, 2, 4, 5, 5, 6]).await;
    let output = run_binary_with_gate(addr).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains("FAIL  lost events"), "{stdout}");
    assert!(stdout.contains("PASS  connections held"), "{stdout}");
    assert!(
        stderr
            .contains("gate failed: lost events 5 (limit <= 0); duplicated events 5 (limit <= 0)"),
        "{stderr}"
    );
}

/// And the same gate passes, exit 0, when the server sends every id once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gate_passes_a_server_that_sends_every_id_once() {
    let addr = ids_server(&[1, 2, 3, 4, 5, 6]).await;
    let output = run_binary_with_gate(addr).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("gate passed"), "{stdout}");
}

/// An event that arrived before the run's end but was read after it (the load generator
/// was held up) is not measured: its lateness would be the load generator's, not the
/// server's. The server is an OS thread, so it goes on while the client's only runtime
/// thread is blocked; the run is over before that thread can read the event.
#[test]
fn an_event_read_after_the_end_is_not_measured() {
    for transport in [Transport::Hyper, Transport::Raw] {
        let (events, lateness_samples) = read_across_the_end(transport);
        assert_eq!(events, 1, "{transport:?}: event 2 was read after the end");
        assert_eq!(lateness_samples, 0, "{transport:?}");
    }
}

/// Events counted and lateness samples recorded when event 2 arrives while the client's
/// runtime is blocked and the run ends before it can read it.
fn read_across_the_end(transport: Transport) -> (u64, u64) {
    use std::io::{Read as _, Write as _};

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (second_tx, second_rx) = std::sync::mpsc::channel::<()>();
    let server = std::thread::spawn(move || {
        let (mut socket, _) = listener.accept().unwrap();
        let mut buf = [0u8; 4096];
        let _ = socket.read(&mut buf);
        let head =
            "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n";
        socket.write_all(head.as_bytes()).unwrap();
        socket.write_all(events(&[1]).as_bytes()).unwrap();
        let _ = second_rx.recv_timeout(GENEROUS);
        socket.write_all(events(&[2]).as_bytes()).unwrap();
        // Held until the client leaves.
        let _ = socket.read(&mut buf);
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (histograms, counters) = runtime.block_on(async {
        let metrics = Metrics::new();
        let stop = Arc::new(Stop::at(Instant::now() + GENEROUS));
        let pool = ClientPool::new(&PoolOptions {
            clients: 1,
            source_addrs: Vec::new(),
            connect_timeout: Duration::from_secs(2),
            transport,
        })
        .unwrap();
        let url = format!("http://{addr}/digits").parse().unwrap();
        let source = tokio::spawn({
            let (metrics, stop) = (Arc::clone(&metrics), Arc::clone(&stop));
            async move {
                let mut recorder =
                    UserRecorder::new(metrics, 1, Duration::from_millis(50), GENEROUS);
                let mut source = EventSource::new(pool.pick(0).clone(), url, quick_retry());
                source.run(&mut recorder, &stop).await;
                recorder.finish();
            }
        });
        while metrics.live.events.load(Ordering::Relaxed) < 1 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        second_tx.send(()).unwrap();
        // Deliberately blocks the only runtime thread while event 2 arrives.
        std::thread::sleep(Duration::from_millis(100));
        stop.cancel();
        source.await.unwrap();
        metrics.merged()
    });
    server.join().unwrap();
    (counters.events, histograms.lateness.len())
}
