//! Headless Chromium driven through chromedriver, both from Debian's packages (`chromium`,
//! `chromium-driver`): nothing here downloads a browser. chromedriver runs as a child in a
//! process group of its own, with the Chromium it starts, so that ending the group ends them
//! all, even when a test panics.

use std::io::Write as _;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::wd::Capabilities;
use fantoccini::{Client, ClientBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;
use tempfile::TempDir;

use crate::{artifacts_dir, bounded, WAIT};

/// Debian's Chromium (a launcher script that execs the real binary). `.ci/run` checks for
/// the same two paths before it installs the packages.
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// Debian's chromedriver, of the same version as the Chromium package.
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Headless, no sandbox (CI runs as root), no GPU, and nothing that reaches past loopback
/// by itself: no first-run pages, background updates, sync or QUIC; no proxy from the
/// environment for the loopback server.
const CHROMIUM_ARGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-proxy-server",
    "--window-size=1000,800",
];

/// How long chromedriver may take to listen.
const DRIVER_START: Duration = Duration::from_secs(10);

/// How long Chromium may take to start a session (a cold start on a busy CI machine is slow).
const SESSION_START: Duration = Duration::from_secs(30);

/// Attempts at starting chromedriver: the free port it is given may be taken in between.
const DRIVER_ATTEMPTS: usize = 3;

/// Whether this is a CI run: `CI` set to anything but empty, `0` or `false` (GitHub
/// Actions and most CI services set `CI=true`; so does this project's CI).
pub fn running_under_ci() -> bool {
    std::env::var("CI").is_ok_and(|value| !matches!(value.as_str(), "" | "0" | "false"))
}

/// Why the browser cases cannot run on this machine, if they cannot.
#[must_use]
pub fn missing() -> Option<String> {
    [CHROMEDRIVER, CHROMIUM]
        .into_iter()
        .find(|path| !Path::new(path).is_file())
        .map(|path| format!("{path} not found; apt-get install chromium chromium-driver"))
}

/// A Chromium session with a fresh profile; the browser and its driver end when this is
/// closed or dropped.
pub struct Browser {
    /// The WebDriver session.
    pub client: Client,
    /// Dropped after the client: kills chromedriver and the Chromium it started.
    driver: Driver,
    /// The fresh `--user-data-dir`, removed once the browser is gone.
    profile: TempDir,
}

impl Browser {
    /// Starts the browser for the case `name`, or, when Chromium or chromedriver is missing
    /// on a developer's machine, says why the case is skipped and returns `None`.
    ///
    /// # Panics
    /// If they are missing under CI (`CI` set, as CI services do), where a skip would pass
    /// unseen; if they are installed but do not start.
    pub async fn launch_or_skip(name: &str) -> Option<Self> {
        Self::launch_or_skip_with(name, &[]).await
    }

    /// [`launch_or_skip`](Self::launch_or_skip) with more Chromium flags.
    pub async fn launch_or_skip_with(name: &str, extra_args: &[&str]) -> Option<Self> {
        if let Some(why) = missing() {
            assert!(
                !running_under_ci(),
                "{name}: {why} (CI must run the browser cases)"
            );
            // Straight to stderr: libtest would swallow `eprintln!` from a passing test.
            let _ = writeln!(std::io::stderr(), "{name}: skipped: {why}");
            return None;
        }
        Some(Self::launch(name, extra_args).await)
    }

    /// Starts chromedriver, then Chromium through it; chromedriver logs to
    /// `target/browser-artifacts/chromedriver-<name>.log`.
    ///
    /// # Panics
    /// If either does not start in time.
    pub async fn launch(name: &str, extra_args: &[&str]) -> Self {
        let log = artifacts_dir().join(format!("chromedriver-{name}.log"));
        let driver = Driver::start(&log).await;
        let profile = tempfile::Builder::new()
            .prefix("sse-digits-chromium-")
            .tempdir()
            .expect("a temporary profile folder");
        let mut args: Vec<String> = CHROMIUM_ARGS
            .iter()
            .chain(extra_args)
            .map(|&a| a.to_owned())
            .collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        let mut capabilities = Capabilities::new();
        capabilities.insert(
            "goog:chromeOptions".to_owned(),
            json!({ "binary": CHROMIUM, "args": args }),
        );
        let client = bounded("Chromium starts", SESSION_START, async {
            ClientBuilder::new(HttpConnector::new())
                .capabilities(capabilities)
                .connect(&driver.url)
                .await
        })
        .await
        .unwrap_or_else(|e| panic!("Chromium did not start ({e}); see {}", log.display()));
        Self {
            client,
            driver,
            profile,
        }
    }

    /// Ends the session (Chromium quits), then chromedriver, then removes the profile.
    pub async fn close(self) {
        let Self {
            client,
            driver,
            profile,
        } = self;
        // A failure here is no test failure: dropping the driver kills what is left.
        let _ = tokio::time::timeout(WAIT, client.close()).await;
        drop(driver);
        drop(profile);
    }
}

/// A running chromedriver, killed with everything it started when dropped.
struct Driver {
    child: Child,
    /// Where it answers WebDriver: `http://127.0.0.1:<port>`.
    url: String,
}

impl Driver {
    /// Starts chromedriver on a free loopback port and waits until it listens.
    async fn start(log: &Path) -> Self {
        let mut last_failure = String::new();
        for _ in 0..DRIVER_ATTEMPTS {
            let port = free_port();
            let child = Command::new(CHROMEDRIVER)
                .arg(format!("--port={port}"))
                .arg(format!("--log-path={}", log.display()))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                // Its own group, which the Chromium it starts joins: see `Drop`.
                .process_group(0)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run {CHROMEDRIVER}: {e}"));
            let mut driver = Self {
                child,
                url: format!("http://127.0.0.1:{port}"),
            };
            match driver
                .wait_listening(SocketAddr::from(([127, 0, 0, 1], port)))
                .await
            {
                Ok(()) => return driver,
                Err(failure) => last_failure = failure,
            }
        }
        panic!(
            "chromedriver did not start: {last_failure}; see {}",
            log.display()
        );
    }

    /// Polls the port until it accepts, the process exits, or [`DRIVER_START`] passes.
    async fn wait_listening(&mut self, addr: SocketAddr) -> Result<(), String> {
        let deadline = Instant::now() + DRIVER_START;
        loop {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("it exited ({status})"));
            }
            if Instant::now() >= deadline {
                return Err(format!("{addr} not listening after {DRIVER_START:?}"));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // chromedriver leads its process group, and the Chromium processes it starts stay
        // in it: one signal ends them all (killing chromedriver alone would orphan them).
        match libc::pid_t::try_from(self.child.id()) {
            // SAFETY: kill(2) only sends a signal; the group is the one this child leads,
            // and the child is not yet reaped, so its id cannot have been reused.
            Ok(pid) => unsafe {
                libc::kill(-pid, libc::SIGKILL);
            },
            Err(_) => {
                let _ = self.child.kill();
            }
        }
        let _ = self.child.wait();
    }
}

/// A loopback port free right now (chromedriver takes a port number, not a socket).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free loopback port")
}
