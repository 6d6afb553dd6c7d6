//! The `sse-digits` binary started as a process of its own, for the tests that need a real
//! process (its environment, its log, its open-files limit, signals, a shared port).

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running binary, killed when dropped (a failed assertion must not leave it behind).
pub struct Running {
    pub child: Child,
    /// The address it logged it listens on.
    pub addr: String,
    /// Its log lines up to the "listening" line.
    pub startup_lines: Vec<String>,
    /// Its log lines after the "listening" line, until it exits.
    pub later_lines: std::sync::mpsc::Receiver<String>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How to start it.
pub struct Launch<'a> {
    /// `RUST_LOG`, or unset for the binary's default.
    pub rust_log: Option<&'a str>,
    /// Its open-files limit (soft and hard), or the test's.
    pub open_files: Option<u64>,
    /// The address it binds.
    pub bind: &'a str,
    /// More flags.
    pub args: &'a [&'a str],
}

impl Default for Launch<'_> {
    fn default() -> Self {
        Self {
            rust_log: Some("info"),
            open_files: None,
            bind: "127.0.0.1:0",
            args: &[],
        }
    }
}

/// The text after `key=` up to the next space, if the line has it.
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let at = line.find(key)? + key.len();
    line[at..].split_whitespace().next()
}

/// Starts the binary with one worker and waits (at most 10 s) for its "listening" log line.
pub fn launch(how: &Launch<'_>) -> Running {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sse-digits"));
    #[cfg(unix)]
    if let Some(limit) = how.open_files {
        use std::os::unix::process::CommandExt as _;
        // SAFETY: between fork and exec the closure only calls setrlimit, which is
        // async-signal-safe, and allocates nothing.
        unsafe {
            command.pre_exec(move || rlimit::Resource::NOFILE.set(limit, limit));
        }
    }
    command.env_remove("RUST_LOG");
    if let Some(filter) = how.rust_log {
        command.env("RUST_LOG", filter);
    }
    command
        .args(["--bind", how.bind, "--workers", "1"])
        .args(how.args)
        .env_remove("NO_COLOR")
        .env_remove("GLIBC_TUNABLES")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("the binary starts");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let (later_tx, later_lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut startup_lines = Vec::new();
        let mut listening = false;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if listening {
                let _ = later_tx.send(line);
                continue;
            }
            if let Some(addr) = field(&line, "local_addr=") {
                listening = true;
                let _ = tx.send((addr.to_owned(), std::mem::take(&mut startup_lines)));
            }
            startup_lines.push(line);
        }
    });
    let (addr, startup_lines) = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the binary logs its address");
    Running {
        child,
        addr,
        startup_lines,
        later_lines,
    }
}

/// Sends SIGTERM, as systemd or an operator's `kill` does.
#[cfg(unix)]
pub fn terminate(running: &Running) {
    let pid = running.child.id().to_string();
    let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(status.success());
}
