//! Graceful shutdown: one signal that every stream watches, and a drain window over which the
//! streams close at random moments, so their clients do not all reconnect at one instant.
//!
//! Streams check a plain atomic flag on every poll (no lock on the per-event path) and hold
//! one registered [`OwnedNotified`] so that a sleeping stream is woken when shutdown begins.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::futures::OwnedNotified;
use tokio::sync::Notify;

/// The shutdown signal shared by the server and every open stream.
#[derive(Debug, Clone)]
pub struct Shutdown {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Set once, read on every stream poll.
    triggered: AtomicBool,
    /// Wakes the streams that are waiting for their next tick.
    notify: Arc<Notify>,
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
                notify: Arc::new(Notify::new()),
                drain_window,
            }),
        }
    }

    /// Tells every stream to wind down.
    pub fn trigger(&self) {
        self.inner.triggered.store(true, Ordering::Release);
        self.inner.notify.notify_waiters();
    }

    /// Whether shutdown has begun (one atomic load).
    #[must_use]
    pub fn is_triggered(&self) -> bool {
        self.inner.triggered.load(Ordering::Acquire)
    }

    /// A future that completes when shutdown is triggered after this call. It is registered
    /// from creation on, so a trigger between creation and first poll is not lost; callers
    /// also check [`Shutdown::is_triggered`] for triggers before the call.
    pub fn wake_on_trigger(&self) -> OwnedNotified {
        Arc::clone(&self.inner.notify).notified_owned()
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

    #[tokio::test]
    async fn a_waiter_created_before_the_trigger_wakes_even_if_not_yet_polled() {
        let shutdown = Shutdown::new(Duration::ZERO);
        let waiter = shutdown.wake_on_trigger();
        assert!(!shutdown.is_triggered());
        shutdown.trigger();
        assert!(shutdown.is_triggered());
        tokio::time::timeout(Duration::from_secs(1), waiter)
            .await
            .expect("the waiter did not wake");
    }
}
