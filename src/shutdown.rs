//! Graceful shutdown: one signal that every stream watches, and a drain window over which the
//! streams close at random moments, so their clients do not all reconnect at one instant.
//!
//! Streams check a plain atomic flag on every poll (no lock on the per-event path). A stream
//! asleep until its next deadline is woken through its connection: actix-web's graceful stop
//! wakes every connection it holds, and the wake-up polls the stream, which then sees the
//! flag. So the flag must be set before the server's stop begins (see
//! [`crate::startup::AppHandle::stop`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The shutdown signal shared by the server and every open stream.
#[derive(Debug, Clone)]
pub struct Shutdown {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Set once, read on every stream poll.
    triggered: AtomicBool,
    /// Streams close at a random moment within this window after the trigger.
    drain_window: Duration,
}

impl Shutdown {
    /// A signal whose streams close within `drain_window` once triggered.
    #[must_use]
    pub fn new(drain_window: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                triggered: AtomicBool::new(false),
                drain_window,
            }),
        }
    }

    /// Tells every stream to wind down. Streams asleep until a distant deadline see it
    /// when the server's graceful stop wakes their connections.
    pub fn trigger(&self) {
        self.inner.triggered.store(true, Ordering::Release);
    }

    /// Whether shutdown has begun (one atomic load).
    #[must_use]
    pub fn is_triggered(&self) -> bool {
        self.inner.triggered.load(Ordering::Acquire)
    }

    /// The longest time a stream may take to close after the trigger.
    #[must_use]
    pub fn drain_window(&self) -> Duration {
        self.inner.drain_window
    }

    /// How long one stream waits before it closes: uniform over the drain window.
    #[must_use]
    pub fn close_delay(&self) -> Duration {
        let window_ms = u64::try_from(self.inner.drain_window.as_millis()).unwrap_or(u64::MAX);
        if window_ms == 0 {
            return Duration::ZERO;
        }
        Duration::from_millis(rand::random_range(0..window_ms))
    }
}

/// Waits for Ctrl-C or, on Unix, SIGTERM, and names the one that came.
///
/// # Errors
/// If the signal handlers cannot be installed.
pub async fn wait_for_signal() -> std::io::Result<&'static str> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut terminate = signal(SignalKind::terminate())?;
        tokio::select! {
            result = tokio::signal::ctrl_c() => result.map(|()| "SIGINT"),
            _ = terminate.recv() => Ok("SIGTERM"),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await.map(|()| "Ctrl-C")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_delays_fall_inside_the_window_and_spread() {
        let shutdown = Shutdown::new(Duration::from_millis(1000));
        let delays: Vec<Duration> = (0..200).map(|_| shutdown.close_delay()).collect();
        assert!(delays.iter().all(|d| *d < Duration::from_millis(1000)));
        let distinct: std::collections::HashSet<_> = delays.iter().collect();
        assert!(distinct.len() > 50, "delays do not spread: {distinct:?}");
    }

    #[test]
    fn a_zero_window_closes_at_once() {
        assert_eq!(Shutdown::new(Duration::ZERO).close_delay(), Duration::ZERO);
    }

    #[test]
    fn the_trigger_is_seen_by_every_clone() {
        let shutdown = Shutdown::new(Duration::ZERO);
        let held_by_a_stream = shutdown.clone();
        assert!(!held_by_a_stream.is_triggered());
        shutdown.trigger();
        assert!(held_by_a_stream.is_triggered());
    }
}
