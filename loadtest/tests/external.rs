//! The load test against a server it did not start (`--host`): after the run it reads the
//! server's `/metrics` to check that every stream closed and memory came back.

mod common;

use clap::Parser as _;
use loadtest::{run, Options};
use sse_digits::config::Config;
use sse_digits::startup::{AppHandle, Application};

/// The server on 127.0.0.1:0 with one worker: its URL, its handle and its task.
fn start_server() -> (
    String,
    AppHandle,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let app = Application::build(Config {
        bind: ([127, 0, 0, 1], 0).into(),
        workers: 1,
        ..Config::default()
    })
    .unwrap();
    let host = format!("http://{}", app.local_addr());
    let handle = app.handle();
    (host, handle, tokio::spawn(app.run_until_stopped()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_is_read_from_its_metrics_after_the_run() {
    let (host, handle, server) = start_server();

    let mut args = common::SMALL_RUN.to_vec();
    args.extend_from_slice(&["--host", &host]);
    let s = run(Options::try_parse_from(args).unwrap()).await.unwrap();
    handle.stop().await;
    server.await.unwrap().unwrap();

    assert!(!s.embedded);
    assert!(s.counters.events > 0, "{:?}", s.counters);
    let after = s.server_after.expect("the server has /metrics");
    assert!(after.measured_in.contains("/metrics"), "{after:?}");
    assert_eq!(after.streams_open, Some(0), "{after:?}");
    let before = after.rss_before_mib.expect("RSS before");
    let now = after.rss_after_mib.expect("RSS after");
    // Both are real readings of a live process (a few MiB), not placeholders.
    assert!(before > 1.0 && now > 1.0, "{after:?}");
}

/// A server process that is gone by the end of the run (killed for a restart test, say):
/// the run still ends with its summary, without that process's usage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_process_gone_by_the_end_still_gives_a_summary() {
    let (host, handle, server) = start_server();
    // Stands for the server's process: alive at the start, killed once the users are in,
    // which is after the run's first reading of it and well before its last. (A fixed
    // lifetime raced the start on a busy machine.)
    let mut short_lived = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .unwrap();
    let pid = short_lived.id().to_string();
    let users_in = handle.clone();
    let killer = tokio::spawn(async move {
        for _ in 0..1000 {
            if users_in.streams_open() > 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        short_lived.kill().unwrap();
        short_lived.wait().unwrap();
    });

    let mut args = common::SMALL_RUN.to_vec();
    args.extend_from_slice(&["--host", &host, "--server-pid", &pid]);
    let s = run(Options::try_parse_from(args).unwrap()).await.unwrap();
    killer.await.unwrap();
    handle.stop().await;
    server.await.unwrap().unwrap();

    assert!(s.counters.events > 0, "{:?}", s.counters);
    assert!(s.processes.server.is_none(), "{:?}", s.processes.server);
}
