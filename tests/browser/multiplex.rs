//! Ten EventSources on one page (`/?streams=10`), as a dashboard opens them: through nginx
//! with TLS and HTTP/2 (`deploy/run-local`), all ten run at once; straight to an instance over
//! HTTP/1.1, the browser holds at most 6 connections per origin and the rest wait. That is
//! why the deployment puts HTTP/2 in front.
//!
//! Needs nginx and openssl (Debian's packages) besides Chromium: without them the case says
//! why it is skipped on a developer's machine, and fails under CI.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use fantoccini::Client;

use crate::driver::{running_under_ci, Browser};
use crate::page::DemoPage;
use crate::{bounded, CASE_LIMIT, WAIT};

/// EventSources the page opens.
const STREAMS: usize = 10;
/// Messages every stream must show over HTTP/2 (one each 100 ms).
const MESSAGES: u64 = 5;
/// Chromium's connections per origin over HTTP/1.1.
const HTTP1_PER_ORIGIN: usize = 6;

/// The stack `deploy/run-local` started, stopped when dropped.
struct Deployment {
    state: PathBuf,
    /// nginx's TLS port.
    listen: u16,
    /// The instance's own port.
    first_port: u16,
}

impl Deployment {
    fn start(state: &Path) -> Self {
        let ports: Vec<u16> = (0..2).map(|_| free_port()).collect();
        let deployment = Self {
            state: state.to_owned(),
            listen: ports[0],
            first_port: ports[1],
        };
        // One instance is enough to show the browser's side of it.
        let status = run_local(&[
            "start",
            "--instances",
            "1",
            "--listen",
            &deployment.listen.to_string(),
            "--first-port",
            &deployment.first_port.to_string(),
            "--state",
            &state.display().to_string(),
            "--",
            "--interval-ms",
            "100",
            "--workers",
            "1",
        ]);
        assert!(status.success(), "deploy/run-local start failed");
        deployment
    }
}

impl Drop for Deployment {
    fn drop(&mut self) {
        let _ = run_local(&["stop", "--state", &self.state.display().to_string()]);
    }
}

fn run_local(args: &[&str]) -> std::process::ExitStatus {
    Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/run-local"))
        .args(args)
        .env("SSE_DIGITS_BIN", env!("CARGO_BIN_EXE_sse-digits"))
        .status()
        .expect("deploy/run-local runs")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Why the case cannot run here, if it cannot.
fn missing_tools() -> Option<&'static str> {
    let has = |tool: &str| {
        Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|out| out.status.success())
    };
    ["nginx", "openssl", "curl"]
        .into_iter()
        .find(|tool| !has(tool))
}

/// Each stream's message count, as the page shows it.
async fn messages_per_stream(client: &Client) -> Vec<u64> {
    let value = client
        .execute(
            "return Array.from(document.querySelectorAll('#streams tbody tr'), \
             (row) => Number(row.dataset.messages));",
            vec![],
        )
        .await
        .expect("the page answers");
    serde_json::from_value(value).expect("a list of counts")
}

/// Waits until `done` holds for the counts, or panics with them after [`WAIT`].
async fn wait_for(client: &Client, what: &str, done: impl Fn(&[u64]) -> bool) -> Vec<u64> {
    let mut counts = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while tokio::time::Instant::now() < deadline {
        counts = messages_per_stream(client).await;
        if done(&counts) {
            return counts;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what}: not within {WAIT:?}; messages per stream {counts:?}");
}

#[tokio::test]
async fn ten_event_sources_run_at_once_over_http2_and_not_over_http1() {
    let name = "multiplex";
    if let Some(tool) = missing_tools() {
        assert!(
            !running_under_ci(),
            "{name}: {tool} not found; apt-get install nginx openssl curl"
        );
        eprintln!("{name}: skipped: {tool} not found");
        return;
    }
    // The deployment's CA is made for this run: Chromium is told not to check it.
    let Some(browser) = Browser::launch_or_skip_with(name, &["--ignore-certificate-errors"]).await
    else {
        return;
    };
    let state = tempfile::tempdir().expect("a state folder");
    bounded(name, CASE_LIMIT, async {
        let deployment = Deployment::start(state.path());
        let client = &browser.client;
        let query = format!("?streams={STREAMS}&interval_ms=100&count=100000");

        let proxied = format!("https://127.0.0.1:{}/{query}", deployment.listen);
        DemoPage::open(client, &proxied).await;
        let counts = wait_for(client, "every stream running over HTTP/2", |counts| {
            counts.len() == STREAMS && counts.iter().all(|&n| n >= MESSAGES)
        })
        .await;
        eprintln!("{name}: HTTP/2 through nginx: messages per stream {counts:?}");

        // The same page straight from the instance, over HTTP/1.1: the first six streams
        // run, and the other four wait for a connection that never frees up.
        let direct = format!("http://127.0.0.1:{}/{query}", deployment.first_port);
        DemoPage::open(client, &direct).await;
        let counts = wait_for(client, "six streams running over HTTP/1.1", |counts| {
            counts.iter().filter(|&&n| n >= MESSAGES).count() >= HTTP1_PER_ORIGIN
        })
        .await;
        // Twice as long again: the waiting ones still have nothing.
        tokio::time::sleep(Duration::from_millis(100 * MESSAGES * 2)).await;
        let counts_later = messages_per_stream(client).await;
        eprintln!("{name}: HTTP/1.1 direct: messages per stream {counts_later:?}");
        let running = counts_later.iter().filter(|&&n| n > 0).count();
        assert_eq!(
            running, HTTP1_PER_ORIGIN,
            "over HTTP/1.1 only {HTTP1_PER_ORIGIN} streams per origin run: {counts:?} then \
             {counts_later:?}"
        );
        drop(deployment);
    })
    .await;
    browser.close().await;
}
