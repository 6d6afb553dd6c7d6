//! `--llm` against `peers/openai-mock`, served in this process with exact token timing, and
//! against a small hostile server that cuts streams, sends errors or no usage. Each run is
//! a few users for a few seconds; the figures are checked against what the server was told
//! to do.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser as _;
use loadtest::report::console;
use loadtest::report::summary::Percentiles;
use loadtest::run::command::execute;
use loadtest::{run, Options, Summary};
use openai_mock::MockConfig;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Goose keeps process-wide state: one run at a time.
static GOOSE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The users of each run.
const USERS: u64 = 3;

/// A request body asking for a stream with usage.
const BODY_WITH_USAGE: &str = r#"{"model":"mock","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"Hi"}]}"#;

/// The mock on 127.0.0.1 and a free port.
async fn mock(config: MockConfig) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(openai_mock::serve(listener, config));
    addr
}

/// The command line of an `--llm` run against `addr` for `secs`, then `extra`.
fn args(addr: SocketAddr, secs: u64, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "loadtest",
        "--url",
        &format!("http://{addr}/v1/chat/completions"),
        "--llm",
        "--method",
        "POST",
        "--body",
        BODY_WITH_USAGE,
        "-u",
        &USERS.to_string(),
        "-r",
        "100",
        "-t",
        &format!("{secs}s"),
        "-q",
        "--no-print-metrics",
        "--progress-secs",
        "0",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    args
}

/// One run's summary; prints the console summary.
async fn load_test(addr: SocketAddr, secs: u64, extra: &[&str]) -> Summary {
    let _one_at_a_time = GOOSE.lock().await;
    let options = Options::try_parse_from(args(addr, secs, extra)).unwrap();
    let summary = run(options).await.unwrap();
    println!("{}", console::render(&summary));
    summary
}

fn llm(summary: &Summary) -> &loadtest::report::summary::LlmSummary {
    summary
        .llm
        .as_ref()
        .expect("an --llm run has an llm summary")
}

/// The mock's schedule is exact and never early, so each lower bound is the schedule itself;
/// each upper bound leaves room for a busy machine's delays (often 100 ms and more at the
/// median) while still telling the figure from its neighbours (TTFT from end to end, time per
/// token from time per event).
fn assert_within(what: &str, p: &Percentiles, low_ms: f64, high_ms: f64) {
    assert!(p.count > 0, "{what}: no sample");
    assert!(
        (low_ms..=high_ms).contains(&p.p50_ms),
        "{what} p50 {} ms not within [{low_ms}, {high_ms}]: {p:?}",
        p.p50_ms
    );
}

fn mock_config(tokens_per_event: u32) -> MockConfig {
    MockConfig {
        ttft: Duration::from_millis(200),
        tokens_per_sec: 50.0,
        tokens_per_event,
        output_tokens: 16,
        api_key: None,
    }
}

/// Every request completed, with its 16 tokens, and none failed.
fn assert_all_complete(summary: &Summary) {
    let c = &summary.counters;
    assert!(
        c.llm_completed >= USERS,
        "at least one request per user: {c:?}"
    );
    assert_eq!(c.llm_output_tokens, 16 * c.llm_completed, "{c:?}");
    assert_eq!(c.llm_failed() + c.failed(), 0, "{c:?}");
    assert_eq!(c.llm_without_usage, 0);
    // Those not completed were in flight at the deadline.
    assert_eq!(
        c.llm_requests,
        c.llm_completed + c.llm_stopped_at_deadline,
        "{c:?}"
    );
    assert!(summary.is_clean());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_timed_as_the_mock_sends_them() {
    let addr = mock(mock_config(1)).await;
    let summary = load_test(addr, 3, &[]).await;
    assert_all_complete(&summary);
    let l = llm(&summary);
    assert_within("TTFT", &l.ttft, 200.0, 450.0);
    assert!(l.ttfb.p50_ms < l.ttft.p50_ms, "headers come first: {l:?}");
    let itl = l.itl.expect("usage was asked for");
    assert_within("ITL", &itl, 12.0, 35.0);
    assert_within("inter-event", &l.inter_event, 10.0, 40.0);
    // 16 tokens: 200 ms + 15 × 20 ms.
    assert_within("end to end", &l.e2e, 500.0, 800.0);
    let per_request = l.request_output_tokens_per_sec.unwrap();
    assert!((19.0..=33.0).contains(&per_request.p50), "{per_request:?}");
    let rate = l.output_tokens_per_sec.unwrap();
    let expected = summary.counters.llm_output_tokens as f64 / summary.elapsed_secs;
    assert!((rate - expected).abs() < 1e-6, "{rate} vs {expected}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batched_tokens_lengthen_the_gaps_but_not_the_time_per_token() {
    let addr = mock(mock_config(4)).await;
    let summary = load_test(addr, 3, &[]).await;
    assert_all_complete(&summary);
    let l = llm(&summary);
    assert_within("inter-event", &l.inter_event, 60.0, 140.0);
    assert_within("ITL", &l.itl.unwrap(), 12.0, 35.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn think_time_spaces_each_users_requests() {
    // About 90 ms per request (50 ms, then 4 more tokens 10 ms apart), then 400 ms of thought.
    let addr = mock(MockConfig {
        ttft: Duration::from_millis(50),
        tokens_per_sec: 100.0,
        tokens_per_event: 1,
        output_tokens: 5,
        api_key: None,
    })
    .await;
    let summary = load_test(addr, 2, &["--think-ms", "400"]).await;
    let c = &summary.counters;
    let per_user = c.llm_requests as f64 / USERS as f64;
    let at_most = summary.elapsed_secs / (0.090 + 0.400) + 1.0;
    assert!(
        per_user <= at_most,
        "{per_user} requests per user in {:.1} s: more than {at_most:.1}",
        summary.elapsed_secs
    );
    assert!(per_user >= 2.0, "{per_user} requests per user");
    assert_eq!(llm(&summary).think_ms, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_key_is_refused_by_status_and_the_key_lets_requests_in() {
    let addr = mock(MockConfig {
        api_key: Some("sk-test-key".into()),
        ..mock_config(1)
    })
    .await;
    let refused = load_test(addr, 2, &[]).await;
    let c = &refused.counters;
    assert!(c.llm_requests >= USERS, "{c:?}");
    assert_eq!(c.llm_completed, 0);
    assert_eq!(c.failed_status, c.llm_requests);
    assert_eq!(
        c.status_codes,
        std::collections::BTreeMap::from([(401, c.llm_requests)])
    );
    // A failed request waits at least --min-retry-ms (100) before the next.
    assert!(
        c.llm_requests as f64 <= USERS as f64 * (refused.elapsed_secs / 0.1 + 1.0),
        "{c:?}"
    );
    assert!(!refused.is_clean());

    let let_in = load_test(addr, 2, &["--header", "Authorization: Bearer sk-test-key"]).await;
    assert_all_complete(&let_in);
}

/// What the hostile server answers to a completion request.
#[derive(Debug, Clone, Copy)]
enum Hostile {
    /// Two tokens, then the connection closes: no final chunk, no `[DONE]`.
    Cut,
    /// One token, then OpenAI's in-stream error.
    ErrorEvent,
    /// Tokens, a final chunk and `[DONE]`, but no usage.
    NoUsage,
    /// One token, then nothing until the client leaves.
    Stall,
    /// Tokens, a final chunk and `[DONE]`, then the connection held open: the request must
    /// end at `[DONE]`, not at the body's end.
    DoneThenHold,
}

const HEAD: &str = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\
                    cache-control: no-cache\r\nconnection: close\r\n\r\n";
const ROLE: &str = "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\"},\"finish_reason\":null}]}\n\n";
const TOKEN: &str = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"tok \"},\"finish_reason\":null}]}\n\n";
const STOP: &str =
    "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n";

/// A server on 127.0.0.1 that answers every completion request as `hostile` says (and
/// `/metrics` with 404).
async fn hostile(hostile: Hostile) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(answer(socket, hostile));
        }
    });
    addr
}

/// Reads a whole request (head and `Content-Length` body), so that closing the socket
/// sends no reset; the request's first line.
async fn read_request(socket: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).into_owned();
        let Some(end) = text.find("\r\n\r\n") else {
            continue;
        };
        let length = text[..end]
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse::<usize>().ok())?
            })
            .unwrap_or(0);
        if buf.len() >= end + 4 + length {
            return text.lines().next().map(str::to_owned);
        }
    }
}

async fn answer(mut socket: TcpStream, hostile: Hostile) {
    let Some(first_line) = read_request(&mut socket).await else {
        return;
    };
    if first_line.starts_with("GET /metrics") {
        let _ = socket
            .write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            .await;
        return;
    }
    let body = match hostile {
        Hostile::Cut => format!("{HEAD}{ROLE}{TOKEN}{TOKEN}"),
        Hostile::ErrorEvent => format!(
            "{HEAD}{ROLE}{TOKEN}data: {{\"error\":{{\"message\":\"overloaded\",\"type\":\"server_error\"}}}}\n\n"
        ),
        Hostile::NoUsage => format!("{HEAD}{ROLE}{TOKEN}{TOKEN}{TOKEN}{STOP}data: [DONE]\n\n"),
        Hostile::Stall => format!("{HEAD}{ROLE}{TOKEN}"),
        Hostile::DoneThenHold => format!("{HEAD}{ROLE}{TOKEN}{TOKEN}{STOP}data: [DONE]\n\n"),
    };
    if socket.write_all(body.as_bytes()).await.is_err() {
        return;
    }
    if matches!(hostile, Hostile::Stall | Hostile::DoneThenHold) {
        let mut rest = [0u8; 64];
        let _ = tokio::time::timeout(Duration::from_secs(10), socket.read(&mut rest)).await;
    }
    let _ = socket.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_cut_before_done_is_a_cut_stream() {
    let summary = load_test(hostile(Hostile::Cut).await, 2, &["--think-ms", "50"]).await;
    let c = &summary.counters;
    assert!(c.llm_cut >= USERS, "{c:?}");
    assert_eq!(c.llm_completed + c.llm_error_events + c.llm_malformed, 0);
    assert!(!summary.is_clean());
    // Failed requests are not measured.
    assert_eq!(llm(&summary).ttft.count, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_in_the_stream_is_an_error_event() {
    let summary = load_test(hostile(Hostile::ErrorEvent).await, 2, &["--think-ms", "50"]).await;
    let c = &summary.counters;
    assert!(c.llm_error_events >= USERS, "{c:?}");
    assert_eq!(c.llm_completed + c.llm_cut, 0, "{c:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_usage_requests_complete_and_token_figures_are_not_measured() {
    let summary = load_test(hostile(Hostile::NoUsage).await, 2, &["--think-ms", "50"]).await;
    let c = &summary.counters;
    assert!(c.llm_completed >= USERS, "{c:?}");
    assert_eq!(c.llm_without_usage, c.llm_completed);
    assert_eq!(c.llm_failed(), 0, "{c:?}");
    let l = llm(&summary);
    assert_eq!(l.itl, None);
    assert_eq!(l.output_tokens_per_sec, None);
    assert_eq!(l.request_output_tokens_per_sec, None);
    assert!(l.inter_event.count > 0, "gaps are measured all the same");
    let text = console::render(&summary);
    assert!(
        text.contains("ITL (TPOT)      not measured"),
        "the console says so:\n{text}"
    );
}

/// `[DONE]` ends the request even while the server keeps the connection open, and the next
/// request is a new one: nothing is reconnected or resumed, as an EventSource would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn done_ends_a_request_without_reconnecting() {
    let summary = load_test(
        hostile(Hostile::DoneThenHold).await,
        2,
        &["--think-ms", "50"],
    )
    .await;
    let c = &summary.counters;
    assert!(
        c.llm_completed >= USERS * 3,
        "several requests in turn: {c:?}"
    );
    assert_eq!(c.llm_failed(), 0, "{c:?}");
    assert_eq!(c.reconnects, 0, "{c:?}");
    let e2e = &llm(&summary).e2e;
    assert!(e2e.max_ms < 1000.0, "a request waited past [DONE]: {e2e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_stream_is_cut_at_the_request_timeout() {
    let summary = load_test(
        hostile(Hostile::Stall).await,
        3,
        &["--request-timeout-secs", "1"],
    )
    .await;
    let c = &summary.counters;
    assert!(c.llm_timeouts >= USERS, "{c:?}");
    assert_eq!(c.llm_completed, 0, "{c:?}");
}

/// A folder of its own under the system's temporary folder.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("loadtest-llm-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gate_the_json_summary_and_the_report_know_the_llm_figures() {
    let addr = mock(mock_config(1)).await;
    let dir = scratch("gate");
    let json = dir.join("summary.json");
    let report = dir.join("report");
    let _one_at_a_time = GOOSE.lock().await;
    let failing = Options::try_parse_from(args(
        addr,
        2,
        &[
            "--summary-json",
            json.to_str().unwrap(),
            "--report-dir",
            report.to_str().unwrap(),
            "--gate-max-ttft-p99-ms",
            "100",
        ],
    ))
    .unwrap();
    let error = execute(failing).await.unwrap_err().to_string();
    assert!(
        error.contains("gate failed: time to first token p99") && error.contains("<= 100 ms"),
        "{error}"
    );

    let summary: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let section = &summary["llm"];
    for key in ["ttfb", "ttft", "inter_event", "itl", "e2e"] {
        assert!(section[key]["p99_ms"].as_f64().unwrap() > 0.0, "{key}");
    }
    assert!(section["requests_per_sec"].as_f64().unwrap() > 0.0);
    assert!(section["output_tokens_per_sec"].as_f64().unwrap() > 0.0);
    assert!(summary["counters"]["llm_completed"].as_u64().unwrap() >= USERS);

    let page = std::fs::read_to_string(report.join("index.html")).unwrap();
    let html = scraper::Html::parse_document(&page);
    let select = |css: &str| scraper::Selector::parse(css).unwrap();
    let ttft_cell = html
        .select(&select("#llm td[data-key='llm.ttft.p99_ms']"))
        .next()
        .expect("the LLM table holds TTFT p99");
    let shown: f64 = ttft_cell.text().collect::<String>().parse().unwrap();
    let in_json = section["ttft"]["p99_ms"].as_f64().unwrap();
    assert!((shown - in_json).abs() < 0.001, "{shown} vs {in_json}");
    for plot in ["#plot-llm-ttft svg", "#plot-llm-itl svg"] {
        assert!(html.select(&select(plot)).next().is_some(), "{plot}");
    }
    assert!(html
        .select(&select("#latencies-not-measured"))
        .next()
        .is_some());

    let passing =
        Options::try_parse_from(args(addr, 2, &["--gate-max-ttft-p99-ms", "2000"])).unwrap();
    execute(passing).await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_get_is_refused_with_a_reason() {
    let mut args = args("127.0.0.1:9".parse().unwrap(), 1, &[]);
    let at = args.iter().position(|a| a == "POST").unwrap();
    args[at] = "GET".into();
    let body = args.iter().position(|a| a == "--body").unwrap();
    args.drain(body..body + 2);
    let error = run(Options::try_parse_from(args).unwrap())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("--llm") && error.contains("--method POST"),
        "{error}"
    );
}
