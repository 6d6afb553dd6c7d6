//! The per-connection graceful-stop signal that actix-http's HTTP/1 dispatcher polls.
//!
//! When it resolves, the dispatcher stops keeping its connection alive: an idle connection
//! closes at once, a busy one after its response (a stream closes within the drain window).
//! A stream asleep until a distant deadline is woken this way too: the wake-up polls the
//! whole connection, body included, and the body then sees the shutdown flag.
//!
//! actix-web's `HttpServer` gives every connection a 176-byte future on a shared notifier
//! for this. Here a connection costs a 32-byte future and one slot in a shared list of
//! wakers, locked only when a connection first waits and when it closes, never per event.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use slab::Slab;

use super::Inner;

/// The wakers of connections waiting for a graceful stop.
#[derive(Debug, Default)]
pub(super) struct Waiters {
    wakers: Mutex<Slab<Waker>>,
}

impl Waiters {
    /// Wakes every waiting connection. Call after setting the flag: a connection that
    /// registers later sees the flag (it reads it under the same lock).
    pub(super) fn wake_all(&self) {
        for (_, waker) in self.lock().iter() {
            waker.wake_by_ref();
        }
    }

    /// Connections waiting now.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> MutexGuard<'_, Slab<Waker>> {
        // A panic while holding the lock cannot leave the slab half-updated in a way
        // that matters here: at worst a waker too many is woken.
        self.wakers.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Resolves once the server begins a graceful stop. Made by
/// [`Shutdown::connection_signal`](super::Shutdown::connection_signal).
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct ConnectionSignal {
    shutdown: Arc<Inner>,
    /// Where this connection's waker sits in the shared list, and a copy to tell whether
    /// the task polling now is still the one registered.
    registered: Option<(usize, Waker)>,
}

impl ConnectionSignal {
    pub(super) fn new(shutdown: Arc<Inner>) -> Self {
        Self {
            shutdown,
            registered: None,
        }
    }

    fn triggered(&self) -> bool {
        self.shutdown.triggered.load(Ordering::Acquire)
    }
}

impl Future for ConnectionSignal {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // The common case, on every wake-up of the connection: one load and a comparison.
        if self.triggered() {
            return Poll::Ready(());
        }
        if let Some((_, waker)) = &self.registered {
            if waker.will_wake(cx.waker()) {
                return Poll::Pending;
            }
        }
        let this = &mut *self;
        let mut wakers = this.shutdown.waiters.lock();
        let waker = cx.waker().clone();
        match &mut this.registered {
            Some((key, registered)) => {
                wakers[*key].clone_from(&waker);
                *registered = waker;
            }
            None => {
                let key = wakers.insert(waker.clone());
                this.registered = Some((key, waker));
            }
        }
        // Read under the lock that `wake_all` takes after the flag is set: either the
        // trigger's wake-up sees this waker, or this read sees the flag.
        let triggered = this.triggered();
        drop(wakers);
        if triggered {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

impl Drop for ConnectionSignal {
    fn drop(&mut self) {
        if let Some((key, _)) = self.registered.take() {
            self.shutdown.waiters.lock().try_remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::task::Wake;
    use std::time::Duration;

    use super::super::Shutdown;
    use super::*;

    #[derive(Default)]
    struct CountingWaker(AtomicUsize);

    impl Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn poll(signal: &mut ConnectionSignal, waker: &Waker) -> Poll<()> {
        Pin::new(signal).poll(&mut Context::from_waker(waker))
    }

    #[test]
    fn a_waiting_connection_is_woken_by_the_trigger_and_then_resolves() {
        let shutdown = Shutdown::new(Duration::ZERO);
        let counter = Arc::new(CountingWaker::default());
        let waker = Waker::from(Arc::clone(&counter));
        let mut signal = shutdown.connection_signal();
        assert!(poll(&mut signal, &waker).is_pending());
        assert!(poll(&mut signal, &waker).is_pending());
        assert_eq!(shutdown.waiting_connections(), 1, "registered once");
        shutdown.trigger();
        assert_eq!(counter.0.load(Ordering::SeqCst), 1);
        assert!(poll(&mut signal, &waker).is_ready());
    }

    #[test]
    fn a_new_task_polling_replaces_the_registered_waker() {
        let shutdown = Shutdown::new(Duration::ZERO);
        let first = Arc::new(CountingWaker::default());
        let second = Arc::new(CountingWaker::default());
        let mut signal = shutdown.connection_signal();
        assert!(poll(&mut signal, &Waker::from(Arc::clone(&first))).is_pending());
        assert!(poll(&mut signal, &Waker::from(Arc::clone(&second))).is_pending());
        assert_eq!(shutdown.waiting_connections(), 1);
        shutdown.trigger();
        assert_eq!(first.0.load(Ordering::SeqCst), 0);
        assert_eq!(second.0.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_closed_connection_leaves_the_list() {
        let shutdown = Shutdown::new(Duration::ZERO);
        let waker = Waker::from(Arc::new(CountingWaker::default()));
        let mut signals: Vec<_> = (0..3).map(|_| shutdown.connection_signal()).collect();
        for signal in &mut signals {
            assert!(poll(signal, &waker).is_pending());
        }
        assert_eq!(shutdown.waiting_connections(), 3);
        signals.truncate(1);
        assert_eq!(shutdown.waiting_connections(), 1);
        drop(signals);
        assert_eq!(shutdown.waiting_connections(), 0);
    }

    #[test]
    fn a_connection_opened_after_the_trigger_resolves_at_once_without_registering() {
        let shutdown = Shutdown::new(Duration::ZERO);
        shutdown.trigger();
        let waker = Waker::from(Arc::new(CountingWaker::default()));
        let mut signal = shutdown.connection_signal();
        assert!(poll(&mut signal, &waker).is_ready());
        assert_eq!(shutdown.waiting_connections(), 0);
    }

    #[test]
    fn a_connection_waiting_on_another_thread_is_never_missed_by_the_trigger() {
        // Threads poll at the same moment as the trigger: each must either see the flag at
        // once or be woken by the trigger, never wait on with nobody to wake it.
        for _ in 0..2000 {
            let shutdown = Shutdown::new(Duration::ZERO);
            let start = Arc::new(std::sync::Barrier::new(5));
            let pollers: Vec<_> = (0..4)
                .map(|_| {
                    let shutdown = shutdown.clone();
                    let start = Arc::clone(&start);
                    std::thread::spawn(move || {
                        let counter = Arc::new(CountingWaker::default());
                        let waker = Waker::from(Arc::clone(&counter));
                        let mut signal = shutdown.connection_signal();
                        start.wait();
                        let ready = poll(&mut signal, &waker).is_ready();
                        (ready, counter, signal)
                    })
                })
                .collect();
            start.wait();
            shutdown.trigger();
            for poller in pollers {
                let (ready, counter, _signal) = poller.join().unwrap();
                let woken = counter.0.load(Ordering::SeqCst);
                assert!(ready || woken == 1, "pending and never woken");
            }
        }
    }

    #[test]
    fn the_signal_stays_small() {
        // It is boxed once per connection: 32 bytes, where HttpServer's takes 176.
        assert!(size_of::<ConnectionSignal>() <= 32);
    }
}
