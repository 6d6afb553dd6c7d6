//! The `sse-digits` binary itself, started as a process on 127.0.0.1 (an ephemeral port it
//! reports in its log): it restarts itself once with its allocator settings, unless
//! `GLIBC_TUNABLES` was already set, and serves either way.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running binary, killed when dropped (a failed assertion must not leave it behind).
struct Running {
    child: Child,
    addr: String,
    /// The `GLIBC_TUNABLES` the process logged it runs with, if it logged any.
    tunables: Option<String>,
    /// Its log lines after the "listening" line, until it exits.
    later_lines: std::sync::mpsc::Receiver<String>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The text after `key=` up to the next space, if the line has it.
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let at = line.find(key)? + key.len();
    line[at..].split_whitespace().next()
}

/// Starts the binary and waits (at most 10 s) for its "listening" log line.
fn start(glibc_tunables: Option<&str>) -> Running {
    start_with_log_filter(glibc_tunables, Some("info"))
}

/// [`start`] with `RUST_LOG` set to `rust_log`, or unset for the binary's default.
fn start_with_log_filter(glibc_tunables: Option<&str>, rust_log: Option<&str>) -> Running {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sse-digits"));
    command.env_remove("RUST_LOG");
    if let Some(filter) = rust_log {
        command.env("RUST_LOG", filter);
    }
    command
        .args(["--bind", "127.0.0.1:0", "--workers", "1"])
        .env("NO_COLOR", "1")
        .env_remove("GLIBC_TUNABLES")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(value) = glibc_tunables {
        command.env("GLIBC_TUNABLES", value);
    }
    let mut child = command.spawn().expect("the binary starts");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let (later_tx, later_lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut tunables = None;
        let mut listening = false;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if listening {
                let _ = later_tx.send(line);
                continue;
            }
            // Plain text without colour: `... allocator settings tunables=VALUE`.
            if let Some(value) = field(&line, "tunables=") {
                tunables = Some(value.to_owned());
            }
            if let Some(addr) = field(&line, "local_addr=") {
                listening = true;
                let _ = tx.send((addr.to_owned(), tunables.take()));
            }
        }
    });
    let (addr, tunables) = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the binary logs its address");
    Running {
        child,
        addr,
        tunables,
        later_lines,
    }
}

async fn serves(running: &Running) {
    let response = reqwest::get(format!("http://{}/healthz", running.addr))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[tokio::test]
async fn the_binary_runs_with_its_allocator_settings() {
    let running = start(None);
    assert_eq!(
        running.tunables.as_deref(),
        Some(sse_digits::memory::GLIBC_TUNABLES)
    );
    serves(&running).await;
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[tokio::test]
async fn the_operators_tunables_are_kept() {
    let running = start(Some("glibc.malloc.arena_max=2"));
    assert_eq!(
        running.tunables.as_deref(),
        Some("glibc.malloc.arena_max=2")
    );
    serves(&running).await;
}

/// Malformed requests (each answered 400 or 431 by actix-http), then a clean stop: the log
/// lines they left, with `RUST_LOG` as given.
async fn log_after_malformed_requests(rust_log: Option<&str>) -> Vec<String> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut running = start_with_log_filter(None, rust_log);
    let oversized_header = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(100_000));
    let requests: [&[u8]; 3] = [
        b"GARBAGE\r\n\r\n",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        oversized_header.as_bytes(),
    ];
    for request in requests {
        let mut socket = tokio::net::TcpStream::connect(&running.addr).await.unwrap();
        socket.write_all(request).await.unwrap();
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), socket.read_to_end(&mut answer)).await;
    }
    serves(&running).await;
    // SIGTERM: the binary drains and exits, which ends its log.
    let pid = running.child.id().to_string();
    let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(status.success());
    let mut lines = Vec::new();
    while let Ok(line) = running.later_lines.recv_timeout(Duration::from_secs(10)) {
        lines.push(line);
    }
    let _ = running.child.wait();
    lines
}

#[cfg(unix)]
#[tokio::test]
async fn malformed_requests_do_not_fill_the_log_by_default() {
    let lines = log_after_malformed_requests(None).await;
    assert!(
        lines.iter().any(|line| line.contains("draining")),
        "the log was read to the end: {lines:?}"
    );
    let errors: Vec<_> = lines.iter().filter(|line| line.contains("ERROR")).collect();
    assert!(errors.is_empty(), "{errors:?}");
}

#[cfg(unix)]
#[tokio::test]
async fn asked_for_they_are_logged() {
    // The same requests with RUST_LOG=info: actix-http's lines are there, so the test above
    // would see them if the default let them through.
    let lines = log_after_malformed_requests(Some("info")).await;
    let parse_errors = lines
        .iter()
        .filter(|line| line.contains("request parse error"))
        .count();
    assert_eq!(parse_errors, 3, "{lines:?}");
}
