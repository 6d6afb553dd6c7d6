//! The planned outages of a run (`--restart-at`): when the embedded server went down on
//! purpose and when it was back. A refused connection counts as part of the outage when it
//! failed after the outage began and its attempt started before the server was back, so an
//! attempt refused just before the new listener was bound, but reported a moment after, is
//! not taken for an error.

use std::sync::Mutex;
use std::time::Instant;

/// Outage windows, written twice per restart and read only when a connection is refused.
#[derive(Debug, Default)]
pub struct Outages {
    windows: Mutex<Vec<(Instant, Option<Instant>)>>,
}

impl Outages {
    /// The server goes down on purpose now.
    pub fn begin(&self, at: Instant) {
        self.lock().push((at, None));
    }

    /// The server is back (its listener is bound again).
    pub fn end(&self, at: Instant) {
        if let Some((_, up)) = self.lock().last_mut() {
            up.get_or_insert(at);
        }
    }

    /// True when an attempt that started at `attempt_started` and was refused at
    /// `refused_at` belongs to a planned outage.
    #[must_use]
    pub fn covers(&self, attempt_started: Instant, refused_at: Instant) -> bool {
        self.lock()
            .iter()
            .any(|&(down, up)| refused_at >= down && up.is_none_or(|up| attempt_started <= up))
    }

    /// The windows, even if a thread panicked while holding them: they stay meaningful.
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(Instant, Option<Instant>)>> {
        self.windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn refusals_inside_and_at_the_edges_of_an_outage_are_planned() {
        let t0 = Instant::now();
        let s = |ms| t0 + Duration::from_millis(ms);
        let outages = Outages::default();
        assert!(!outages.covers(s(0), s(1)), "no outage yet");
        outages.begin(s(100));
        assert!(outages.covers(s(150), s(151)), "while down");
        assert!(
            outages.covers(s(99), s(101)),
            "started just before, refused after"
        );
        assert!(!outages.covers(s(50), s(60)), "before the outage");
        outages.end(s(300));
        assert!(
            outages.covers(s(299), s(305)),
            "started while down, reported after"
        );
        assert!(!outages.covers(s(301), s(302)), "after the server was back");
        outages.begin(s(1000));
        outages.end(s(1200));
        assert!(outages.covers(s(1100), s(1100)));
        assert!(!outages.covers(s(600), s(600)), "between the outages");
    }
}
