//! The run over time as the HTML report shows it beside the totals: lateness p99 per time
//! slot (from [`LatenessSlots`]) and reconnection attempts per second (from the timeline),
//! on one time axis, so a rolling restart shows where and how long it hurt.

use plotters::prelude::SeriesLabelPosition;

use crate::measure::slots::LatenessSlots;
use crate::measure::timeline::Timeline;
use crate::report::plots::{time_plot, Line};

/// Reconnection attempts per second between consecutive samples, at the later one's time.
/// A window shorter than half the period is left out, as a rate over a sliver is noise.
#[must_use]
pub fn reconnect_rates(t: &Timeline) -> Vec<(f64, f64)> {
    let shortest = t.period_ms as f64 / 2000.0;
    t.samples
        .windows(2)
        .filter_map(|w| {
            let dt = w[1].elapsed_secs - w[0].elapsed_secs;
            (dt > 0.0 && dt >= shortest).then(|| {
                (
                    w[1].elapsed_secs,
                    w[1].reconnects.saturating_sub(w[0].reconnects) as f64 / dt,
                )
            })
        })
        .collect()
}

/// The plot: lateness p99 per slot (left axis, ms) and reconnections per second (right
/// axis). `None` when neither has a point.
///
/// # Errors
/// When plotters fails to draw.
pub fn plot(slots: &LatenessSlots, timeline: &Timeline) -> anyhow::Result<Option<String>> {
    let p99 = slots.p99_ms();
    let reconnects = reconnect_rates(timeline);
    let x_end = timeline
        .samples
        .last()
        .map_or(0.0, |s| s.elapsed_secs)
        .max(p99.last().map_or(0.0, |p| p.0));
    time_plot(
        "Lateness p99 and reconnections over time",
        x_end,
        (
            "lateness p99, ms",
            &[Line::new(
                format!("lateness p99 per {} ms", slots.slot_ms),
                p99,
            )],
        ),
        Some((
            "reconnections/s",
            &[Line::new("reconnection attempts/s", reconnects)],
        )),
        SeriesLabelPosition::UpperRight,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::timeline::Sample;

    #[test]
    fn reconnections_per_second_come_from_the_growth_between_samples() {
        let mut t = Timeline::new(500);
        for (secs, reconnects) in [(0.0, 0), (0.5, 0), (1.0, 50), (1.1, 60), (1.5, 60)] {
            t.push(Sample {
                elapsed_secs: secs,
                reconnects,
                ..Sample::default()
            });
        }
        assert_eq!(
            reconnect_rates(&t),
            vec![(0.5, 0.0), (1.0, 100.0), (1.5, 0.0)]
        );
    }

    #[test]
    fn the_plot_is_drawn_when_there_is_something_to_draw() {
        let empty = plot(&LatenessSlots::default(), &Timeline::new(500)).unwrap();
        assert!(empty.is_none());
        let mut slots = LatenessSlots::new(500);
        let mut h = crate::measure::metrics::new_histogram();
        h.record(5_000).unwrap();
        slots.record(0.2, &h).unwrap();
        let svg = plot(&slots, &Timeline::new(500)).unwrap().unwrap();
        assert!(svg.contains("lateness p99 per 500 ms"), "{svg}");
    }
}
