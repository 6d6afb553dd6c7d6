//! The capacity search's decisions, apart from the runs they ask for: given the steps so
//! far, which rate to run next, or the verdict. Pure, so every edge case is a unit test.
//!
//! Rates rise by a factor until a step fails (or the rising steps run out); then steps
//! bisect the gap between the best rate that passed and the lowest that failed. A rate that
//! passed above one that failed is noise and does not count: the capacity is the best rate
//! that passed below every failure.

/// How the search goes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Search {
    /// Offered events/s of the first step.
    pub start: f64,
    /// Each rising step multiplies the rate by this.
    pub factor: f64,
    /// The most rising steps.
    pub rising_steps: u32,
    /// The most bisecting steps after the first failure.
    pub refine_steps: u32,
    /// The finest difference worth a step (one user's events/s): a gap this narrow is not
    /// bisected, as its middle would run the users of a step already run.
    pub resolution: f64,
}

/// A step that ran.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tried {
    /// The events/s the search asked for.
    pub rate: f64,
    /// The events/s the step offered (whole users, so at or a little above `rate`).
    pub offered: f64,
    /// Whether it met the bound and was clean.
    pub passed: bool,
}

/// What the search does next.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Next {
    /// Run a step at this many events/s.
    Run(f64),
    /// The search is over.
    Done(Verdict),
}

/// The answer, and why the search stopped.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Verdict {
    /// The highest offered events/s that passed below every failure; `None` if none did.
    pub capacity: Option<f64>,
    /// Why the search stopped.
    pub stopped: Stopped,
}

/// Why the search stopped.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stopped {
    /// Every rising step passed: the capacity is at least the last one.
    AllPassed {
        /// The rising steps run.
        steps: u32,
    },
    /// A rising step failed at this offered rate; the bisection after it is done.
    FailedAt {
        /// The failed step's offered events/s.
        offered: f64,
    },
}

/// The next step of `search` after the steps `tried`, in the order they ran.
#[must_use]
pub fn next(search: &Search, tried: &[Tried]) -> Next {
    let Some(first_failure) = tried.iter().position(|step| !step.passed) else {
        let steps = u32::try_from(tried.len()).unwrap_or(u32::MAX);
        return if steps < search.rising_steps {
            Next::Run(search.start * search.factor.powi(i32::try_from(steps).unwrap_or(i32::MAX)))
        } else {
            Next::Done(Verdict {
                capacity: capacity(tried),
                stopped: Stopped::AllPassed { steps },
            })
        };
    };
    let done = Next::Done(Verdict {
        capacity: capacity(tried),
        stopped: Stopped::FailedAt {
            offered: tried[first_failure].offered,
        },
    });
    let refined = tried.len() - first_failure - 1;
    if refined >= usize::try_from(search.refine_steps).unwrap_or(usize::MAX) {
        return done;
    }
    let fail = lowest_failure(tried).unwrap_or(f64::INFINITY);
    let pass = capacity(tried).unwrap_or(0.0);
    if fail - pass <= search.resolution {
        return done;
    }
    Next::Run((pass + fail) / 2.0)
}

/// The lowest rate asked for that failed.
fn lowest_failure(tried: &[Tried]) -> Option<f64> {
    tried
        .iter()
        .filter(|step| !step.passed)
        .map(|step| step.rate)
        .min_by(f64::total_cmp)
}

/// The highest offered events/s that passed, of the steps asked below every failure.
#[must_use]
pub fn capacity(tried: &[Tried]) -> Option<f64> {
    let ceiling = lowest_failure(tried).unwrap_or(f64::INFINITY);
    tried
        .iter()
        .filter(|step| step.passed && step.rate < ceiling)
        .map(|step| step.offered)
        .max_by(f64::total_cmp)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The command line's defaults, with one user worth 10 events/s.
    const SEARCH: Search = Search {
        start: 10_000.0,
        factor: 1.5,
        rising_steps: 8,
        refine_steps: 2,
        resolution: 10.0,
    };

    fn step(rate: f64, passed: bool) -> Tried {
        Tried {
            rate,
            offered: rate,
            passed,
        }
    }

    /// Runs the search against `passes` (does this rate pass?) and returns the rates run and
    /// the verdict.
    fn search(search: &Search, passes: impl Fn(f64) -> bool) -> (Vec<f64>, Verdict) {
        let mut tried = Vec::new();
        loop {
            match next(search, &tried) {
                Next::Run(rate) => tried.push(step(rate, passes(rate))),
                Next::Done(verdict) => return (tried.iter().map(|t| t.rate).collect(), verdict),
            }
        }
    }

    #[test]
    fn the_first_step_is_the_start() {
        assert_eq!(next(&SEARCH, &[]), Next::Run(10_000.0));
    }

    #[test]
    fn a_first_step_that_fails_bisects_down_from_it_and_finds_nothing() {
        let (rates, verdict) = search(&SEARCH, |_| false);
        assert_eq!(rates, [10_000.0, 5_000.0, 2_500.0]);
        assert_eq!(
            verdict,
            Verdict {
                capacity: None,
                stopped: Stopped::FailedAt { offered: 10_000.0 },
            }
        );
    }

    #[test]
    fn all_passing_rises_to_the_last_step_and_stops() {
        let (rates, verdict) = search(&SEARCH, |_| true);
        assert_eq!(rates.len(), 8);
        let last = 10_000.0 * 1.5f64.powi(7);
        assert!((rates[7] - last).abs() < 1e-6, "{rates:?}");
        assert_eq!(verdict.capacity, Some(rates[7]));
        assert_eq!(verdict.stopped, Stopped::AllPassed { steps: 8 });
    }

    #[test]
    fn a_failure_is_bisected_towards_the_last_pass() {
        // Capacity 13,000: 10,000 passes, 15,000 fails, then 12,500 passes, 13,750 fails.
        let (rates, verdict) = search(&SEARCH, |rate| rate <= 13_000.0);
        assert_eq!(rates, [10_000.0, 15_000.0, 12_500.0, 13_750.0]);
        assert_eq!(verdict.capacity, Some(12_500.0));
        assert_eq!(verdict.stopped, Stopped::FailedAt { offered: 15_000.0 });
    }

    #[test]
    fn the_capacity_is_what_was_offered_not_what_was_asked() {
        // 10,005 events/s asked is 1,001 users at 10/s: 10,010 offered.
        let tried = [Tried {
            rate: 10_005.0,
            offered: 10_010.0,
            passed: true,
        }];
        assert_eq!(capacity(&tried), Some(10_010.0));
    }

    /// Noise: a rate that passed above one that failed does not count, and the bisection
    /// stays below the lowest failure.
    #[test]
    fn a_pass_above_a_failure_is_noise() {
        let tried = [
            step(10_000.0, true),
            step(15_000.0, false),
            step(12_500.0, false),
            step(14_000.0, true),
        ];
        assert_eq!(capacity(&tried), Some(10_000.0));
        let search = Search {
            refine_steps: 5,
            ..SEARCH
        };
        assert_eq!(next(&search, &tried), Next::Run(11_250.0));
    }

    #[test]
    fn the_bisection_halves_the_gap_and_stops_at_one_users_worth() {
        let search = Search {
            refine_steps: 100,
            ..SEARCH
        };
        let (rates, verdict) = self::search(&search, |rate| rate <= 12_345.0);
        // 2 rising steps, then halving a 5,000 gap until it is 10 or less: 9 more.
        assert_eq!(rates.len(), 2 + 9, "{rates:?}");
        let capacity = verdict.capacity.unwrap();
        assert!(
            capacity <= 12_345.0 && 12_345.0 - capacity <= 10.0,
            "{capacity}"
        );
    }

    #[test]
    fn every_search_ends_within_its_steps() {
        for capacity in [0.0, 9_999.0, 10_000.0, 14_999.0, 50_000.0, 1e9] {
            let (rates, _) = search(&SEARCH, |rate| rate <= capacity);
            let most = SEARCH.rising_steps + SEARCH.refine_steps;
            assert!(rates.len() <= most as usize, "{capacity}: {rates:?}");
        }
    }
}
