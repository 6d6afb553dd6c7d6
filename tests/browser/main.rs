//! The demo page (`static/index.html`) in a real browser: headless Chromium from Debian's
//! packages, driven over WebDriver by chromedriver, against the app on 127.0.0.1.
//!
//! - `driver`: finds, starts and always ends chromedriver and Chromium.
//! - `page`: the page's buttons, and snapshots of its status and log.
//! - `server`: the app on a port of its own, restartable on the same port, and its metrics.
//! - `finishing`, `restart`, `multiplex`: the cases (`multiplex` also needs nginx).
//!
//! Without `/usr/bin/chromium` or `/usr/bin/chromedriver` each case says why it is skipped
//! and passes on a developer's machine, and fails under CI (`CI=true`); with them it runs
//! for real.

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

mod driver;
mod finishing;
mod multiplex;
mod page;
mod restart;
mod server;

/// Every wait for the page or the server is bounded by this.
pub const WAIT: Duration = Duration::from_secs(10);

/// A whole case, browser start excluded, must finish within this.
pub const CASE_LIMIT: Duration = Duration::from_secs(60);

/// Awaits `fut`, or panics naming `what` once `limit` has passed.
pub async fn bounded<T>(what: &str, limit: Duration, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(limit, fut).await {
        Ok(value) => value,
        Err(_) => panic!("{what}: not done within {limit:?}"),
    }
}

/// Where screenshots and driver logs go: `target/browser-artifacts/` (created on first use).
///
/// # Panics
/// If the folder cannot be created.
pub fn artifacts_dir() -> PathBuf {
    // Cargo gives integration tests `<target dir>/tmp`; its parent is the target dir, wherever
    // CARGO_TARGET_DIR puts it.
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target dir holds tmp/")
        .join("browser-artifacts");
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    dir
}
