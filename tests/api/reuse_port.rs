//! Two `sse-digits` processes on one port with `--reuse-port`: the kernel spreads streams over
//! both; when one is stopped (SIGTERM, as a rolling upgrade does), its streams close with a
//! retry hint, reconnect with `Last-Event-ID`, land on the other, and resume at last + 1:
//! nothing lost, nothing repeated.

#![cfg(target_os = "linux")]

use std::time::Duration;

use sse_digits::sse::Parser;
use tokio::time::Instant;

use crate::process::{launch, terminate, Launch, Running};

/// Streams held: enough that the kernel's hash gives both processes some.
const CLIENTS: usize = 32;

/// Each process's flags: a fast stream, a short drain and retry, so the handover fits in
/// a few seconds.
const FLAGS: &[&str] = &[
    "--reuse-port",
    "--interval-ms",
    "50",
    "--retry-ms",
    "100",
    "--drain-ms",
    "200",
];

/// What one client saw.
#[derive(Debug, Default)]
struct Seen {
    /// Every event id, in arrival order, over all its connections.
    ids: Vec<u64>,
    /// Connections that opened a stream.
    connections: u32,
}

/// An EventSource in a few lines: reads `/digits`, and on any end reconnects after the
/// retry hint with `Last-Event-ID`, until `until`.
async fn client(addr: String, until: Instant) -> Seen {
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut parser = Parser::new();
    let mut seen = Seen::default();
    while Instant::now() < until {
        let mut request = http.get(format!("http://{addr}/digits"));
        if !parser.last_event_id().is_empty() {
            request = request.header("Last-Event-ID", parser.last_event_id());
        }
        if let Ok(Ok(mut response)) =
            tokio::time::timeout(Duration::from_secs(2), request.send()).await
        {
            if response.status() == 200 {
                seen.connections += 1;
                parser.start_new_stream();
                while let Ok(Ok(Some(chunk))) =
                    tokio::time::timeout_at(until, response.chunk()).await
                {
                    for event in parser.feed_collect(&chunk) {
                        seen.ids.push(event.last_event_id.parse().unwrap());
                    }
                }
            }
        }
        let retry = Duration::from_millis(parser.retry_ms().unwrap_or(100));
        tokio::time::sleep(retry).await;
    }
    seen
}

/// Sockets the process holds (its listener, and one per client connection).
fn sockets(running: &Running) -> usize {
    std::fs::read_dir(format!("/proc/{}/fd", running.child.id()))
        .unwrap()
        .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
        .filter(|target| target.to_string_lossy().starts_with("socket:"))
        .count()
}

/// A port that was free a moment ago.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_share_a_port_and_one_stopping_hands_its_streams_to_the_other() {
    let bind = format!("127.0.0.1:{}", free_port());
    let how = Launch {
        bind: &bind,
        args: FLAGS,
        ..Launch::default()
    };
    let old = launch(&how);
    let new = launch(&how);
    assert_eq!(old.addr, new.addr);
    let idle = (sockets(&old), sockets(&new));

    let until = Instant::now() + Duration::from_secs(6);
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| tokio::spawn(client(bind.clone(), until)))
        .collect();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let held = (sockets(&old) - idle.0, sockets(&new) - idle.1);
    assert!(
        held.0 > 0 && held.1 > 0,
        "the kernel gave one process every stream: {held:?}"
    );
    assert!(held.0 + held.1 >= CLIENTS, "{held:?} of {CLIENTS}");

    terminate(&old);
    let mut old = old;
    let exited = tokio::task::spawn_blocking(move || {
        let status = old.child.wait();
        (old, status)
    });
    let (_old, status) = tokio::time::timeout(Duration::from_secs(10), exited)
        .await
        .expect("the old process drains and exits")
        .unwrap();
    assert!(status.unwrap().success());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let on_new = sockets(&new) - idle.1;
    assert!(
        on_new >= CLIENTS,
        "the new process holds {on_new} of {CLIENTS}"
    );

    let mut moved = 0;
    for client in clients {
        let seen = client.await.unwrap();
        let first = seen.ids[0];
        assert_eq!(first, 1, "{seen:?}");
        // Every id once, in order, across the handover.
        let expected: Vec<u64> = (1..=seen.ids.len() as u64).collect();
        assert_eq!(seen.ids, expected, "lost or repeated across the handover");
        if seen.connections > 1 {
            moved += 1;
        }
    }
    // Every client of the old process reconnected and went on where it was.
    assert!(moved >= held.0, "{moved} moved, {held:?}");
}
