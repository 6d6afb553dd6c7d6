//! When every event source of a run stops: one deadline for all, and a cancel (Ctrl-C) that
//! the hot path sees as one atomic load per chunk and the waits see at once.

use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// When every event source of a run must stop: a deadline, or a cancellation.
#[derive(Debug)]
pub struct Stop {
    /// The run's end.
    deadline: tokio::time::Instant,
    /// Set when the run is cancelled early (Ctrl-C), checked once per chunk.
    cancelled: AtomicBool,
    /// Wakes the waits (retry delays, finished sources) when the run is cancelled.
    cancel_notify: tokio::sync::Notify,
}

impl Stop {
    /// Stop at `deadline`.
    #[must_use]
    pub fn at(deadline: Instant) -> Self {
        Self {
            deadline: tokio::time::Instant::from_std(deadline),
            cancelled: AtomicBool::new(false),
            cancel_notify: tokio::sync::Notify::new(),
        }
    }

    /// Never stop on time: only [`Stop::cancel`] ends the run (for the command-line client).
    #[must_use]
    pub fn never() -> Self {
        // Far enough to outlive any run, near enough not to overflow an Instant.
        Self::at(Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600))
    }

    /// Stop now.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Relaxed);
        self.cancel_notify.notify_waiters();
    }

    /// The deadline, for tokio's timers.
    pub(crate) fn tokio_deadline(&self) -> tokio::time::Instant {
        self.deadline
    }

    /// The deadline.
    #[must_use]
    pub fn deadline(&self) -> Instant {
        self.deadline.into_std()
    }

    /// True once the deadline has passed or the run was cancelled.
    #[must_use]
    pub fn is_over(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed) || tokio::time::Instant::now() >= self.deadline
    }

    /// Sleeps for `delay`, or until the deadline or a cancellation if that comes first;
    /// true when the run is still on afterwards.
    pub async fn sleep(&self, delay: Duration) -> bool {
        let wake = (tokio::time::Instant::now() + delay).min(self.deadline);
        self.sleep_until(wake).await;
        !self.is_over()
    }

    /// Waits until the run is over: the deadline, or a cancellation.
    pub async fn wait(&self) {
        self.sleep_until(self.deadline).await;
    }

    async fn sleep_until(&self, wake: tokio::time::Instant) {
        let cancelled = self.cancel_notify.notified();
        let mut cancelled = pin!(cancelled);
        // Registered before the flag is read, so a cancel in between is not missed.
        cancelled.as_mut().enable();
        if self.cancelled.load(Ordering::Relaxed) {
            return;
        }
        tokio::select! {
            () = tokio::time::sleep_until(wake) => {}
            () = cancelled => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On a paused clock, which moves only when every task waits: a wait that ignored the
    /// cancel would let it run on to the one-second timeouts, however busy the machine.
    #[tokio::test(start_paused = true)]
    async fn a_cancel_ends_every_wait_at_once() {
        let stop = std::sync::Arc::new(Stop::at(Instant::now() + Duration::from_secs(3600)));
        let waiting = tokio::spawn({
            let stop = std::sync::Arc::clone(&stop);
            async move { stop.wait().await }
        });
        let sleeping = tokio::spawn({
            let stop = std::sync::Arc::clone(&stop);
            async move { stop.sleep(Duration::from_secs(60)).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        let cancelled_at = tokio::time::Instant::now();
        stop.cancel();
        let within = Duration::from_secs(1);
        tokio::time::timeout(within, waiting)
            .await
            .unwrap()
            .unwrap();
        let still_on = tokio::time::timeout(within, sleeping)
            .await
            .unwrap()
            .unwrap();
        assert!(!still_on, "the run is over after a cancel");
        assert_eq!(tokio::time::Instant::now(), cancelled_at, "no time passed");
    }
}
