//! Pure bookkeeping for one event source: which ids arrived (lost, duplicated, out of order,
//! across reconnections), how late each event was against the stream's schedule, and when a
//! stream stalled. No I/O and no clock: callers pass the arrival instants in.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// Skipped ids remembered one by one, so a late arrival can be told from a duplicate; past
/// this many, further skipped ids are only counted (a server that loses that much is broken
/// anyway, and the set must not grow without bound).
const MAX_REMEMBERED_MISSING: usize = 4096;

/// What one arriving id says about the sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdVerdict {
    /// The id expected next.
    InOrder,
    /// Later than expected: `skipped` ids in between have not arrived (yet).
    Gap {
        /// How many ids were jumped over.
        skipped: u64,
    },
    /// An id that had been skipped arrives after later ones: out of order, not lost.
    OutOfOrder,
    /// An id that had already arrived.
    Duplicate,
}

/// The ids of one event source, across all its connections.
#[derive(Debug, Clone)]
pub struct Sequence {
    /// The first id the source should ever see.
    first: u64,
    /// The id expected next (one past the highest seen).
    next: u64,
    /// Ids jumped over by a gap and not seen since.
    missing: BTreeSet<u64>,
    /// Ids jumped over that did not fit in `missing` (counted as lost, never forgiven).
    missing_uncounted: u64,
}

impl Sequence {
    /// A sequence that should start at `first` (the digits stream starts at 1).
    #[must_use]
    pub fn new(first: u64) -> Self {
        Self {
            first,
            next: first,
            missing: BTreeSet::new(),
            missing_uncounted: 0,
        }
    }

    /// Records the arrival of `id` and says how it fits.
    pub fn observe(&mut self, id: u64) -> IdVerdict {
        if id == self.next {
            self.next += 1;
            IdVerdict::InOrder
        } else if id > self.next {
            let skipped = id - self.next;
            let room = MAX_REMEMBERED_MISSING.saturating_sub(self.missing.len()) as u64;
            let remembered = skipped.min(room);
            self.missing.extend(self.next..self.next + remembered);
            self.missing_uncounted += skipped - remembered;
            self.next = id + 1;
            IdVerdict::Gap { skipped }
        } else if self.missing.remove(&id) {
            IdVerdict::OutOfOrder
        } else {
            IdVerdict::Duplicate
        }
    }

    /// Ids that should have arrived by now: from the first up to the highest seen.
    #[must_use]
    pub fn expected(&self) -> u64 {
        self.next - self.first
    }

    /// Ids skipped and still missing.
    #[must_use]
    pub fn lost(&self) -> u64 {
        self.missing.len() as u64 + self.missing_uncounted
    }

    /// The id expected next.
    #[must_use]
    pub fn next_expected(&self) -> u64 {
        self.next
    }
}

/// How an event's arrival compares with its scheduled time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lateness {
    /// The first event of a connection: it defines the schedule, so it has no lateness.
    Anchor,
    /// Arrived this long after it was due (zero when exactly on time).
    Late(Duration),
    /// Arrived this long before it was due: the anchor event itself was late.
    Early(Duration),
}

/// The schedule of one connection: event N is due at the first event's arrival plus
/// (N - first N) x interval, as the server's schedule is drift-free.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// Time between two events, as requested from the server.
    interval: Duration,
    /// Arrival time and id of the connection's first event.
    anchor: Option<(Instant, u64)>,
}

impl Schedule {
    /// A schedule with no anchor yet.
    #[must_use]
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            anchor: None,
        }
    }

    /// A new connection starts: its first event will set a new anchor.
    pub fn restart(&mut self) {
        self.anchor = None;
    }

    /// The lateness of event `id`, arrived at `at`.
    pub fn lateness(&mut self, id: u64, at: Instant) -> Lateness {
        let Some((anchor_at, anchor_id)) = self.anchor else {
            self.anchor = Some((at, id));
            return Lateness::Anchor;
        };
        // Signed nanoseconds: an id older than the anchor (a duplicate) is due before it.
        let since_anchor = at.saturating_duration_since(anchor_at).as_nanos() as i128;
        let due = (i128::from(id) - i128::from(anchor_id)) * self.interval.as_nanos() as i128;
        let late = since_anchor - due;
        let magnitude =
            Duration::from_nanos(u64::try_from(late.unsigned_abs()).unwrap_or(u64::MAX));
        if late >= 0 {
            Lateness::Late(magnitude)
        } else {
            Lateness::Early(magnitude)
        }
    }
}

/// Watches the gaps between events of one connection; a gap longer than the threshold is
/// a stall (keep-alive comments do not count as events, so they do not hide one).
#[derive(Debug, Clone)]
pub struct StallWatch {
    /// The longest gap that is not a stall.
    threshold: Duration,
    /// When the last event (or the connection's open) happened.
    last: Option<Instant>,
}

impl StallWatch {
    /// A watch that calls a gap longer than `threshold` a stall.
    #[must_use]
    pub fn new(threshold: Duration) -> Self {
        Self {
            threshold,
            last: None,
        }
    }

    /// A connection opened at `at`: the gap to its first event counts too.
    pub fn start(&mut self, at: Instant) {
        self.last = Some(at);
    }

    /// An event arrived at `at`; true when the gap before it was a stall.
    pub fn event(&mut self, at: Instant) -> bool {
        let stalled = self.gap_exceeded(at);
        self.last = Some(at);
        stalled
    }

    /// The connection ended at `at`; true when it had been silent for longer than the
    /// threshold. The watch is then idle until the next `start`.
    pub fn end(&mut self, at: Instant) -> bool {
        let stalled = self.gap_exceeded(at);
        self.last = None;
        stalled
    }

    fn gap_exceeded(&self, at: Instant) -> bool {
        self.last
            .is_some_and(|last| at.saturating_duration_since(last) > self.threshold)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_clean_run_counts_everything_expected_and_nothing_lost() {
        let mut seq = Sequence::new(1);
        for id in 1..=10 {
            assert_eq!(seq.observe(id), IdVerdict::InOrder);
        }
        assert_eq!((seq.expected(), seq.lost()), (10, 0));
        assert_eq!(seq.next_expected(), 11);
    }

    #[test]
    fn a_skipped_id_is_lost() {
        let mut seq = Sequence::new(1);
        seq.observe(1);
        assert_eq!(seq.observe(3), IdVerdict::Gap { skipped: 1 });
        seq.observe(4);
        assert_eq!((seq.expected(), seq.lost()), (4, 1));
    }

    #[test]
    fn a_missing_first_event_is_lost() {
        let mut seq = Sequence::new(1);
        assert_eq!(seq.observe(2), IdVerdict::Gap { skipped: 1 });
        assert_eq!(seq.lost(), 1);
    }

    #[test]
    fn a_repeated_id_is_a_duplicate_not_a_loss() {
        let mut seq = Sequence::new(1);
        seq.observe(1);
        seq.observe(2);
        assert_eq!(seq.observe(2), IdVerdict::Duplicate);
        assert_eq!(seq.observe(3), IdVerdict::InOrder);
        assert_eq!((seq.expected(), seq.lost()), (3, 0));
    }

    #[test]
    fn a_late_skipped_id_is_out_of_order_and_no_longer_lost() {
        let mut seq = Sequence::new(1);
        seq.observe(1);
        seq.observe(3);
        assert_eq!(seq.lost(), 1);
        assert_eq!(seq.observe(2), IdVerdict::OutOfOrder);
        assert_eq!(seq.lost(), 0);
        // Seen twice now: the second time it is a duplicate.
        assert_eq!(seq.observe(2), IdVerdict::Duplicate);
    }

    /// A reconnection that resumes one past the last id is seamless; one that resumes
    /// further on has lost the ids in between, and one that replays has duplicates.
    #[test]
    fn reconnections_are_judged_against_the_ids_before_them() {
        let mut seq = Sequence::new(1);
        (1..=5).for_each(|id| {
            seq.observe(id);
        });
        // Connection 2 resumes correctly at 6.
        assert_eq!(seq.observe(6), IdVerdict::InOrder);
        // Connection 3 resumes at 9: 7 and 8 are lost.
        assert_eq!(seq.observe(9), IdVerdict::Gap { skipped: 2 });
        // Connection 4 replays from 8: 8 was missing (out of order), 9 is a duplicate.
        assert_eq!(seq.observe(8), IdVerdict::OutOfOrder);
        assert_eq!(seq.observe(9), IdVerdict::Duplicate);
        assert_eq!((seq.expected(), seq.lost()), (9, 1));
    }

    #[test]
    fn a_huge_gap_is_counted_in_full_without_remembering_every_id() {
        let mut seq = Sequence::new(1);
        seq.observe(1_000_002);
        assert_eq!(seq.lost(), 1_000_001);
        assert!(seq.missing.len() <= MAX_REMEMBERED_MISSING);
    }

    #[test]
    fn the_first_event_anchors_the_schedule() {
        let t0 = Instant::now();
        let mut schedule = Schedule::new(ms(100));
        assert_eq!(schedule.lateness(7, t0), Lateness::Anchor);
        assert_eq!(schedule.lateness(8, t0 + ms(100)), Lateness::Late(ms(0)));
        assert_eq!(schedule.lateness(9, t0 + ms(230)), Lateness::Late(ms(30)));
        // Lateness does not accumulate: event 10 is due at t0 + 300 ms.
        assert_eq!(schedule.lateness(10, t0 + ms(301)), Lateness::Late(ms(1)));
    }

    #[test]
    fn an_event_before_its_time_is_early() {
        let t0 = Instant::now();
        let mut schedule = Schedule::new(ms(100));
        schedule.lateness(1, t0);
        assert_eq!(schedule.lateness(3, t0 + ms(150)), Lateness::Early(ms(50)));
    }

    #[test]
    fn an_id_older_than_the_anchor_is_due_before_it() {
        let t0 = Instant::now();
        let mut schedule = Schedule::new(ms(100));
        schedule.lateness(5, t0);
        assert_eq!(schedule.lateness(4, t0 + ms(10)), Lateness::Late(ms(110)));
    }

    #[test]
    fn a_restart_takes_a_new_anchor() {
        let t0 = Instant::now();
        let mut schedule = Schedule::new(ms(100));
        schedule.lateness(1, t0);
        schedule.restart();
        // Ten seconds later the new connection's first event is not "late".
        assert_eq!(schedule.lateness(2, t0 + ms(10_000)), Lateness::Anchor);
        assert_eq!(schedule.lateness(3, t0 + ms(10_100)), Lateness::Late(ms(0)));
    }

    #[test]
    fn a_gap_longer_than_the_threshold_is_one_stall() {
        let t0 = Instant::now();
        let mut watch = StallWatch::new(ms(500));
        watch.start(t0);
        assert!(!watch.event(t0 + ms(100)));
        assert!(
            !watch.event(t0 + ms(600)),
            "exactly the threshold is not a stall"
        );
        assert!(watch.event(t0 + ms(1200)));
        assert!(!watch.event(t0 + ms(1300)));
    }

    #[test]
    fn silence_up_to_the_end_of_a_connection_is_a_stall() {
        let t0 = Instant::now();
        let mut watch = StallWatch::new(ms(500));
        watch.start(t0);
        assert!(watch.end(t0 + ms(501)));
        // Between connections the watch is idle: the reconnect wait is not a stall.
        assert!(!watch.end(t0 + ms(5000)));
        watch.start(t0 + ms(5000));
        assert!(!watch.event(t0 + ms(5100)));
    }
}
