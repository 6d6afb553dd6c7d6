//! Requests as real clients send them: https with a private CA, `--insecure`, HTTP/2, extra
//! headers that never show, and POST bodies (one, or JSON lines in turn), against in-test
//! servers on 127.0.0.1 that record what they received. Event sources run alone (no goose)
//! where only the request matters; the whole load test, in this process or as the real
//! binary, where its summary, report and output are checked.

#[path = "common/recording_server.rs"]
mod recording_server;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser as _;
use hyper::Version;
use loadtest::client::limits::Limits;
use loadtest::client::{
    ClientOptions, ClientPool, EventSource, Failure, PoolOptions, Recorder, RequestOptions,
    RequestSpec, Stop, Transport,
};
use loadtest::report::console;
use loadtest::{run, Options, Summary};
use recording_server::{RecordingServer, TestCa};
use reqwest::Url;
use sse_digits::sse::MessageEvent;

/// Goose keeps process-wide state (its killswitch, its log): one load test at a time.
static GOOSE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The secret every redaction check looks for.
const SECRET: &str = "s3cr3t-VALUE";

/// The longest any one client or process in these tests may take.
const BOUND: Duration = Duration::from_secs(60);

/// What one event source saw.
#[derive(Debug, Default)]
struct Tally {
    /// Streams opened.
    opened: u64,
    /// Events received.
    events: u64,
    /// Failed attempts, as the load test names them.
    failures: Vec<String>,
}

impl Recorder for Tally {
    fn opened(&mut self, _at: Instant, _time_to_open: Duration) {
        self.opened += 1;
    }
    fn open_failed(&mut self, _at: Instant, _elapsed: Duration, failure: &Failure) {
        self.failures.push(failure.to_string());
    }
    fn event(&mut self, _event: MessageEvent<'_>, _at: Instant) {
        self.events += 1;
    }
}

/// The request flags as the command line gives them, checked.
fn spec(args: &[&str]) -> RequestSpec {
    #[derive(clap::Parser)]
    struct Flags {
        #[command(flatten)]
        request: RequestOptions,
    }
    Flags::try_parse_from(std::iter::once("x").chain(args.iter().copied()))
        .expect("the flags parse")
        .request
        .resolve()
        .expect("the flags resolve")
}

/// One event source (no goose) on `url` through `transport` with request flags `args`,
/// reconnecting every 100 ms, for `secs`.
async fn one_source(url: &str, transport: Transport, args: &[&str], secs: f64) -> Tally {
    let spec = Arc::new(spec(args));
    let limits = Limits {
        retry_ms: 100,
        min_retry_ms: 100,
        connect_timeout_ms: 2_000,
        open_timeout_ms: 2_000,
        ..Limits::default()
    };
    let pool = ClientPool::for_requests(
        &PoolOptions {
            clients: 1,
            source_addrs: Vec::new(),
            connect_timeout: limits.connect_timeout(),
            transport,
        },
        &spec,
    )
    .expect("a client");
    let options = ClientOptions::from_limits(&limits, None).with_request(spec);
    let stop = Stop::at(Instant::now() + Duration::from_secs_f64(secs));
    let url: Url = url.parse().expect("a URL");
    let mut source = EventSource::new(pool.pick(0).clone(), url, options);
    let mut tally = Tally::default();
    tokio::time::timeout(BOUND, source.run(&mut tally, &stop))
        .await
        .expect("the event source ends at its deadline");
    tally
}

/// A file in this test run's own temporary folder.
fn temp_path(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("loadtest-requests-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary folder");
    dir.join(name)
}

fn write_temp(name: &str, text: &str) -> String {
    let path = temp_path(name);
    std::fs::write(&path, text).expect("a temporary file");
    path.to_string_lossy().into_owned()
}

/// A TLS recording server whose certificate (for 127.0.0.1) comes from a fresh CA, and the
/// path of that CA's PEM.
async fn tls_server(name: &str) -> (RecordingServer, String) {
    let ca = TestCa::new(&["127.0.0.1", "localhost"]);
    let pem = write_temp(&format!("{name}-ca.pem"), &ca.ca_pem);
    (
        RecordingServer::start(Some(ca.server_config()), None).await,
        pem,
    )
}

/// The whole load test in this process against `url`: 2 users for 1 s, plus `extra`.
async fn load_test(url: &str, extra: &[&str]) -> anyhow::Result<Summary> {
    let _one_at_a_time = GOOSE.lock().await;
    let mut args = vec![
        "loadtest",
        "--url",
        url,
        "-u",
        "2",
        "-r",
        "100",
        "-t",
        "1s",
        "-q",
        "--no-print-metrics",
        "--progress-secs",
        "0",
        "--retry-ms",
        "100",
    ];
    args.extend_from_slice(extra);
    tokio::time::timeout(BOUND, run(Options::try_parse_from(args)?))
        .await
        .expect("the run ends")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_ca_given_by_ca_file_is_trusted() {
    let (server, ca) = tls_server("trusted").await;
    let url = format!("https://127.0.0.1:{}/s", server.addr.port());
    let tally = one_source(&url, Transport::Hyper, &["--ca-file", &ca], 0.5).await;
    assert!(tally.failures.is_empty(), "{tally:?}");
    assert!(tally.opened >= 1 && tally.events >= 3, "{tally:?}");
    assert_eq!(server.seen()[0].version, Version::HTTP_11, "ALPN http/1.1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_certificate_is_a_named_tls_failure() {
    let (server, _ca) = tls_server("untrusted").await;
    let url = format!("https://127.0.0.1:{}/s", server.addr.port());
    let other_ca = write_temp("other-ca.pem", &TestCa::new(&["127.0.0.1"]).ca_pem);
    // A server whose certificate, from a CA we give, names another host.
    let elsewhere = TestCa::new(&["elsewhere.example"]);
    let elsewhere_ca = write_temp("elsewhere-ca.pem", &elsewhere.ca_pem);
    let misnamed = RecordingServer::start(Some(elsewhere.server_config()), None).await;
    let misnamed_url = format!("https://127.0.0.1:{}/s", misnamed.addr.port());
    for (url, args, cause) in [
        (&url, &[][..], "UnknownIssuer"),
        (&url, &["--ca-file", other_ca.as_str()][..], "UnknownIssuer"),
        (
            &misnamed_url,
            &["--ca-file", elsewhere_ca.as_str()][..],
            "not valid for name",
        ),
    ] {
        let tally = one_source(url, Transport::Hyper, args, 0.4).await;
        assert_eq!((tally.opened, tally.events), (0, 0), "{args:?}: {tally:?}");
        assert!(!tally.failures.is_empty(), "{args:?}: counted");
        for failure in &tally.failures {
            assert!(
                failure.starts_with("connect: tls: ") && failure.contains(cause),
                "{args:?}: {failure}"
            );
        }
        println!("{args:?}: {}", tally.failures[0]);
    }
    assert!(server.seen().is_empty() && misnamed.seen().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insecure_accepts_any_certificate_and_the_summary_says_so() {
    let (server, _ca) = tls_server("insecure").await;
    let url = format!("https://127.0.0.1:{}/s", server.addr.port());
    let s = load_test(&url, &["--insecure"]).await.expect("the run");
    assert!(s.counters.events >= 6, "{:?}", s.counters);
    assert_eq!(s.counters.failed(), 0, "{:?}", s.counters);
    assert!(s.request.insecure_tls);
    let text = console::render(&s);
    assert!(
        text.contains("TLS: certificates NOT verified (--insecure)"),
        "{text}"
    );
    let page = loadtest::report::html::render(&s, None, &[]).expect("the page");
    assert!(
        page.contains("TLS: certificates NOT verified (--insecure)"),
        "the HTML report says it too"
    );
    let json = serde_json::to_value(&s).expect("JSON");
    assert_eq!(json["insecure_tls"], true);
    assert_eq!(json["http_version"], "HTTP/1.1");
    let plain = load_test(&url.replace("https", "http"), &[]).await;
    // Plain HTTP to a TLS port: not a stream, and not insecure either.
    let plain = plain.expect("the run");
    assert!(!plain.request.insecure_tls && plain.counters.events == 0);
    assert!(!console::render(&plain).contains("NOT verified"));
    let page = loadtest::report::html::render(&plain, None, &[]).expect("the page");
    assert!(!page.contains("NOT verified"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_is_spoken_over_tls_and_as_h2c_and_http1_by_default() {
    let (tls, ca) = tls_server("h2").await;
    let plain = RecordingServer::start(None, None).await;
    let tls_url = format!("https://127.0.0.1:{}/s", tls.addr.port());
    let plain_url = format!("http://127.0.0.1:{}/s", plain.addr.port());
    for (url, server, args) in [
        (&tls_url, &tls, vec!["--ca-file", &ca, "--http2"]),
        (&plain_url, &plain, vec!["--http2"]),
    ] {
        let tally = one_source(url, Transport::Hyper, &args, 0.4).await;
        assert!(tally.failures.is_empty() && tally.events >= 3, "{tally:?}");
        let seen = server.seen();
        assert!(!seen.is_empty());
        assert!(
            seen.iter().all(|s| s.version == Version::HTTP_2),
            "{url}: {seen:?}"
        );
    }
    let before = plain.seen().len();
    let tally = one_source(&plain_url, Transport::Hyper, &["--http1.1"], 0.3).await;
    assert!(tally.events >= 3, "{tally:?}");
    assert!(plain.seen()[before..]
        .iter()
        .all(|s| s.version == Version::HTTP_11));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_raw_transport_refuses_https_and_http2_at_start() {
    let err = load_test("https://127.0.0.1:9/s", &["--transport", "raw"])
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("--transport raw speaks only plain http"),
        "{err}"
    );
    let err = load_test("http://127.0.0.1:9/s", &["--transport", "raw", "--http2"])
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("not --http2"), "{err}");
    // Nor does the embedded server speak HTTP/2.
    let options = loadtest::Options::try_parse_from(["loadtest", "--http2", "-t", "1s"]).unwrap();
    let err = loadtest::run(options).await.unwrap_err().to_string();
    assert!(
        err.contains("the embedded server speaks HTTP/1.1 only"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_body_arrives_as_json_on_both_transports() {
    let server = RecordingServer::start(None, None).await;
    let url = format!("http://127.0.0.1:{}/s", server.addr.port());
    for transport in [Transport::Hyper, Transport::Raw] {
        let before = server.seen().len();
        let args = ["--method", "POST", "--body", r#"{"a":1}"#];
        let tally = one_source(&url, transport, &args, 0.3).await;
        assert!(tally.events >= 3, "{transport:?}: {tally:?}");
        let seen = &server.seen()[before..];
        assert!(!seen.is_empty());
        for s in seen {
            assert_eq!(s.method, "POST", "{transport:?}");
            assert_eq!(
                s.header("content-type"),
                Some("application/json"),
                "{transport:?}"
            );
            assert_eq!(s.header("accept"), Some("text/event-stream"));
            assert_eq!(&s.body[..], br#"{"a":1}"#, "{transport:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_lines_are_sent_in_turn_and_a_bad_one_is_refused_by_number() {
    let server = RecordingServer::start(None, None).await;
    let url = format!("http://127.0.0.1:{}/s", server.addr.port());
    let lines = ["{\"n\":1}", "{\"n\":2}", "{\"n\":3}"];
    let file = write_temp("bodies.jsonl", &(lines.join("\n") + "\n"));
    for transport in [Transport::Hyper, Transport::Raw] {
        let before = server.seen().len();
        let args = ["--method", "POST", "--body-file", file.as_str()];
        let tally = one_source(&url, transport, &args, 0.8).await;
        let seen = &server.seen()[before..];
        assert!(seen.len() >= 4, "{transport:?}: {tally:?}");
        for (i, s) in seen.iter().enumerate() {
            assert_eq!(
                s.body,
                lines[i % 3].as_bytes(),
                "{transport:?}: request {i}"
            );
        }
    }
    let bad = write_temp("bad.txt", "{\"n\":1}\n{\"n\":2\n{\"n\":3}\n");
    let err = load_test(
        &url,
        &["--method", "POST", "--body-file", &bad, "--body-lines"],
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("line 2: not JSON"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_header_is_a_failure_by_status() {
    let server = RecordingServer::start(None, Some(("authorization", "Bearer right"))).await;
    let url = format!("http://127.0.0.1:{}/s", server.addr.port());
    let s = load_test(&url, &[]).await.expect("the run");
    let c = &s.counters;
    assert_eq!(c.failed_status, 2, "{c:?}");
    assert_eq!(c.status_codes.get(&401), Some(&2), "{c:?}");
    assert_eq!(c.events, 0);
}

/// Every file under `dir`, with its text.
fn files_under(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("the folder") {
        let path = entry.expect("an entry").path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            let bytes = std::fs::read(&path).expect("the file");
            let text = String::from_utf8_lossy(&bytes).into_owned();
            files.push((path, text));
        }
    }
    files
}

/// Runs `program` with `args`, bounded; its exit status, stdout and stderr.
async fn run_binary(program: &str, args: &[&str]) -> (std::process::ExitStatus, String, String) {
    let output = tokio::time::timeout(
        BOUND,
        tokio::process::Command::new(program)
            .args(args)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the process ends")
    .expect("the process runs");
    (
        output.status,
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_values_are_sent_and_shown_nowhere() {
    let bearer = format!("Bearer {SECRET}");
    let server = RecordingServer::start(None, Some(("authorization", &bearer))).await;
    let url = format!("http://127.0.0.1:{}/s", server.addr.port());
    let report = temp_path("report");
    let summary = temp_path("summary.json");
    let header_file = write_temp("headers.txt", &format!("# keys\nX-Api-Key: {SECRET}\n"));
    let (status, stdout, stderr) = run_binary(
        env!("CARGO_BIN_EXE_loadtest"),
        &[
            "--url",
            &url,
            "-u",
            "2",
            "-r",
            "100",
            "-t",
            "1s",
            "--progress-secs",
            "1",
            "--retry-ms",
            "100",
            "--header",
            &format!("Authorization: {bearer}"),
            "--header-file",
            &header_file,
            "--summary-json",
            summary.to_str().expect("UTF-8"),
            "--report-dir",
            report.to_str().expect("UTF-8"),
            "--request-log",
            report.join("requests.log").to_str().expect("UTF-8"),
            "--error-log",
            report.join("errors.log").to_str().expect("UTF-8"),
            "--goose-log",
            report.join("goose.log").to_str().expect("UTF-8"),
            "-gg",
        ],
    )
    .await;
    assert!(status.success(), "{stdout}\n{stderr}");
    let all = server.seen();
    // The look at the server's /metrics carries the same credentials as the streams.
    let scrapes: Vec<_> = all.iter().filter(|s| s.path == "/metrics").collect();
    assert!(!scrapes.is_empty(), "no scrape of /metrics");
    for s in &scrapes {
        assert_eq!(s.header("authorization"), Some(bearer.as_str()));
    }
    let seen: Vec<_> = all.into_iter().filter(|s| s.path == "/s").collect();
    assert!(!seen.is_empty());
    for s in &seen {
        assert_eq!(s.header("authorization"), Some(bearer.as_str()));
        assert_eq!(s.header("x-api-key"), Some(SECRET));
    }
    let json = std::fs::read_to_string(&summary).expect("the JSON summary");
    assert!(
        json.contains("Authorization: <redacted>") && json.contains("X-Api-Key: <redacted>"),
        "{json}"
    );
    assert!(stdout.contains("Authorization: <redacted>"), "{stdout}");
    let mut places = vec![
        ("stdout".into(), stdout),
        ("stderr".into(), stderr),
        (summary.clone(), json),
    ];
    let reports = files_under(&report);
    for written in ["index.html", "goose.html", "requests.log", "goose.log"] {
        assert!(
            reports
                .iter()
                .any(|(path, text)| path.ends_with(written) && !text.is_empty()),
            "{written} written: {:?}",
            reports.iter().map(|r| &r.0).collect::<Vec<_>>()
        );
    }
    places.extend(reports);
    for (place, text) in places {
        assert!(
            !text.contains(SECRET),
            "{} shows the value",
            place.display()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_client_sends_headers_without_printing_them() {
    let bearer = format!("Bearer {SECRET}");
    let server = RecordingServer::start(None, Some(("authorization", &bearer))).await;
    let url = format!("http://127.0.0.1:{}/s", server.addr.port());
    let header = format!("Authorization: {bearer}");
    let (status, stdout, stderr) = run_binary(
        env!("CARGO_BIN_EXE_sse-client"),
        &[&url, "--header", &header, "--max-events", "2"],
    )
    .await;
    assert!(status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("Event: message, data: 2"), "{stdout}");
    assert_eq!(
        server.seen()[0].header("authorization"),
        Some(bearer.as_str())
    );
    assert!(!stdout.contains(SECRET) && !stderr.contains(SECRET));
    // A malformed header is refused at start, without its value.
    let (status, stdout, stderr) = run_binary(
        env!("CARGO_BIN_EXE_sse-client"),
        &[&url, "--header", &format!("Bearer {SECRET}")],
    )
    .await;
    assert!(!status.success());
    assert!(stderr.contains("--header #1: no ':'"), "{stderr}");
    assert!(
        !stdout.contains(SECRET) && !stderr.contains(SECRET),
        "{stderr}"
    );
    // --insecure against a certificate nobody trusts: it opens, and says so first.
    let (tls, _ca) = tls_server("sse-client").await;
    let tls_url = format!("https://127.0.0.1:{}/s", tls.addr.port());
    let (status, stdout, stderr) = run_binary(
        env!("CARGO_BIN_EXE_sse-client"),
        &[&tls_url, "--insecure", "--max-events", "1"],
    )
    .await;
    assert!(status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("Event: message, data: 1"), "{stdout}");
    assert!(stderr.contains("certificates are NOT verified"), "{stderr}");
}
