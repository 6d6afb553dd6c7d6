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
    let mut command = Command::new(env!("CARGO_BIN_EXE_sse-digits"));
    command
        .args(["--bind", "127.0.0.1:0", "--workers", "1"])
        .env("RUST_LOG", "info")
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
    std::thread::spawn(move || {
        let mut tunables = None;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            // Plain text without colour: `... allocator settings tunables=VALUE`.
            if let Some(value) = field(&line, "tunables=") {
                tunables = Some(value.to_owned());
            }
            if let Some(addr) = field(&line, "local_addr=") {
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
