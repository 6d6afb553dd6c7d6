//! The HTML report's plots, as SVG text drawn with plotters: the lateness percentile
//! distribution and the run's timeline. Pure: figures in, SVG out.

use anyhow::anyhow;
use hdrhistogram::Histogram;
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::measure::timeline::Timeline;

/// Width and height of every plot, px (the page scales them down to fit).
const SIZE: (u32, u32) = (900, 380);
/// Label and caption fonts.
const FONT: &str = "sans-serif";
/// Colours of the series, in order (colour-blind safe: Okabe–Ito).
const COLOURS: [RGBColor; 4] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
];
/// Percentile points per halving of the remaining distance to 100% (as in HdrHistogram's
/// percentile output).
const TICKS_PER_HALF_DISTANCE: u32 = 5;

/// One line of a time plot: its legend and its `(x, y)` points.
pub struct Line {
    /// The legend's text.
    pub label: String,
    /// The points, x ascending.
    pub points: Vec<(f64, f64)>,
}

impl Line {
    /// A line from a label and points.
    #[must_use]
    pub fn new(label: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Self {
            label: label.into(),
            points,
        }
    }
}

/// The x of percentile `q` (0..1) on the percentile plot: `log10(1 / (1 - q))`, so that
/// 90% is 1, 99% is 2, 99.9% is 3.
#[must_use]
pub fn percentile_x(q: f64) -> f64 {
    (1.0 / (1.0 - q)).log10()
}

/// The label of the percentile plot's `x`: the percentile it stands for (`0` → `0%`,
/// `log10(2)` → `50%`, `3` → `99.9%`).
#[must_use]
pub fn percentile_label(x: f64) -> String {
    let percent = 100.0 * (1.0 - 10f64.powf(-x));
    // 99.9 needs one decimal at x = 3, 99.99 two at x = 4, ...
    let decimals = (x.round() as i64 - 2).max(0) as usize;
    format!("{percent:.decimals$}%")
}

/// The points of the percentile plot: `(percentile_x, ms)`, ending at the max, placed at
/// `1 / (1 - p) = count` (the percentile one sample above which none remain). Empty for an
/// empty histogram.
#[must_use]
pub fn percentile_points(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    if h.is_empty() {
        return Vec::new();
    }
    let end = (h.len() as f64).log10();
    let mut points: Vec<(f64, f64)> = h
        .iter_quantiles(TICKS_PER_HALF_DISTANCE)
        .map(|v| {
            let q = v.quantile_iterated_to();
            let x = if q < 1.0 {
                percentile_x(q).min(end)
            } else {
                end
            };
            (x, v.value_iterated_to() as f64 / 1000.0)
        })
        .collect();
    // A step plot would show the same; the last point is the max.
    points.push((end, h.max() as f64 / 1000.0));
    points
}

/// The classic HdrHistogram percentile plot of `h` (µs): latency in ms against the
/// percentile on a log scale of `1 / (1 - p)`. `None` when `h` is empty.
///
/// # Errors
/// When plotters fails to draw (it should not, drawing into a string).
pub fn percentile_plot(title: &str, h: &Histogram<u64>) -> anyhow::Result<Option<String>> {
    percentile_lines_plot(title, "lateness, ms", &[("", h)])
}

/// The percentile plot of several histograms (µs) on one chart, each line labelled in a
/// legend (no legend for a single line with an empty label): how two latencies compare
/// across the whole distribution. `None` when every histogram is empty.
///
/// # Errors
/// When plotters fails to draw (it should not, drawing into a string).
pub fn percentile_lines_plot(
    title: &str,
    y_desc: &str,
    histograms: &[(&str, &Histogram<u64>)],
) -> anyhow::Result<Option<String>> {
    let lines: Vec<(&str, Vec<(f64, f64)>)> = histograms
        .iter()
        .map(|(label, h)| (*label, percentile_points(h)))
        .filter(|(_, points)| !points.is_empty())
        .collect();
    if lines.is_empty() {
        return Ok(None);
    }
    let all = || lines.iter().flat_map(|(_, points)| points.iter());
    let end = all().map(|p| p.0).fold(0.0, f64::max);
    // At least up to 99.9%, and one more decade than the data reach.
    let decades = end.ceil().max(3.0);
    let mut keys = vec![0.0, 2f64.log10()];
    keys.extend((1..=decades as u32).map(f64::from));
    let y_max = nice_max(all().map(|p| p.1));
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(draw_error)?;
        let mut chart = chart_builder(&root, title)
            .build_cartesian_2d(PercentileAxis { end: decades, keys }, 0.0..y_max)
            .map_err(draw_error)?;
        chart
            .configure_mesh()
            .x_desc("percentile (log scale of 1/(1-p))")
            .y_desc(y_desc)
            .x_label_formatter(&|x| percentile_label(*x))
            .y_label_formatter(&|y| format!("{y}"))
            .label_style((FONT, 14))
            .axis_desc_style((FONT, 15))
            .draw()
            .map_err(draw_error)?;
        let legend = lines.iter().any(|(label, _)| !label.is_empty());
        for (i, (label, points)) in lines.into_iter().enumerate() {
            let colour = COLOURS[i % COLOURS.len()];
            let series = chart
                .draw_series(LineSeries::new(points, colour.stroke_width(2)))
                .map_err(draw_error)?;
            if legend {
                series.label(label).legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 20, y)], colour.stroke_width(2))
                });
            }
        }
        if legend {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .label_font((FONT, 14))
                .draw()
                .map_err(draw_error)?;
        }
        root.present().map_err(draw_error)?;
    }
    Ok(Some(svg))
}

/// A time plot: `left` lines against the left axis, `right` ones (if any) against a second
/// axis on the right; x is seconds into the run. `None` when there is no point to draw.
///
/// # Errors
/// When plotters fails to draw.
pub fn time_plot(
    title: &str,
    x_end: f64,
    (left_desc, left): (&str, &[Line]),
    right: Option<(&str, &[Line])>,
    legend_at: SeriesLabelPosition,
) -> anyhow::Result<Option<String>> {
    let has_points = |lines: &[Line]| lines.iter().any(|l| !l.points.is_empty());
    if !has_points(left) && !right.is_some_and(|(_, r)| has_points(r)) {
        return Ok(None);
    }
    let x_end = x_end.max(1.0);
    let max_of = |lines: &[Line]| nice_max(lines.iter().flat_map(|l| l.points.iter().map(|p| p.1)));
    let y_max = max_of(left);
    let y2_max = right.map_or(1.0, |(_, r)| max_of(r));
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(draw_error)?;
        let mut builder = chart_builder(&root, title);
        if right.is_some() {
            builder.right_y_label_area_size(80);
        }
        // The secondary coordinates take the right label area: set them before the
        // primary mesh is drawn, or it labels both sides.
        let mut chart = builder
            .build_cartesian_2d(0.0..x_end, 0.0..y_max)
            .map_err(draw_error)?
            .set_secondary_coord(0.0..x_end, 0.0..y2_max);
        chart
            .configure_mesh()
            .x_desc("seconds into the run")
            .y_desc(left_desc)
            .y_label_formatter(&|y| short_number(*y))
            .label_style((FONT, 14))
            .axis_desc_style((FONT, 15))
            .draw()
            .map_err(draw_error)?;
        for (i, line) in left.iter().enumerate() {
            let colour = COLOURS[i % COLOURS.len()];
            chart
                .draw_series(LineSeries::new(
                    line.points.iter().copied(),
                    colour.stroke_width(2),
                ))
                .map_err(draw_error)?
                .label(line.label.clone())
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 20, y)], colour.stroke_width(2))
                });
        }
        if let Some((right_desc, right)) = right {
            chart
                .configure_secondary_axes()
                .y_desc(right_desc)
                .y_label_formatter(&|y| short_number(*y))
                .label_style((FONT, 14))
                .axis_desc_style((FONT, 15))
                .draw()
                .map_err(draw_error)?;
            for (i, line) in right.iter().enumerate() {
                let colour = COLOURS[(left.len() + i) % COLOURS.len()];
                chart
                    .draw_secondary_series(LineSeries::new(
                        line.points.iter().copied(),
                        colour.stroke_width(2),
                    ))
                    .map_err(draw_error)?
                    .label(format!("{} (right axis)", line.label))
                    .legend(move |(x, y)| {
                        PathElement::new([(x, y), (x + 20, y)], colour.stroke_width(2))
                    });
            }
        }
        chart
            .configure_series_labels()
            .position(legend_at)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font((FONT, 14))
            .draw()
            .map_err(draw_error)?;
        root.present().map_err(draw_error)?;
    }
    Ok(Some(svg))
}

/// The percentile plot's x axis: linear in `log10(1 / (1 - p))` from 0 to `end`, with
/// ticks only at the percentiles worth naming (50%, 90%, 99%, 99.9%, ...).
struct PercentileAxis {
    /// The last decade shown.
    end: f64,
    /// Where the ticks go.
    keys: Vec<f64>,
}

impl Ranged for PercentileAxis {
    type FormatOption = plotters::coord::ranged1d::DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let share = value / self.end;
        limit.0 + (f64::from(limit.1 - limit.0) * share).round() as i32
    }

    fn key_points<Hint: plotters::coord::ranged1d::KeyPointHint>(&self, _hint: Hint) -> Vec<f64> {
        self.keys.clone()
    }

    fn range(&self) -> std::ops::Range<f64> {
        0.0..self.end
    }
}

/// The timeline's plots, in the report's order: connected users and events/s; reconnects
/// and errors; RSS (only when `show_rss`). A plot with nothing to draw is `None`.
///
/// # Errors
/// When plotters fails to draw.
pub fn timeline_plots(
    t: &Timeline,
    embedded: bool,
    show_rss: bool,
) -> anyhow::Result<[Option<String>; 3]> {
    let x_end = t.samples.last().map_or(0.0, |s| s.elapsed_secs);
    let series = |f: &dyn Fn(&crate::measure::timeline::Sample) -> Option<f64>| -> Vec<(f64, f64)> {
        t.samples
            .iter()
            .filter_map(|s| f(s).map(|y| (s.elapsed_secs, y)))
            .collect()
    };
    let users = time_plot(
        "Connected users (open streams) and events/s",
        x_end,
        (
            "open streams",
            &[Line::new(
                "open streams",
                series(&|s| Some(s.open_streams as f64)),
            )],
        ),
        Some(("events/s", &[Line::new("events/s", t.event_rates())])),
        SeriesLabelPosition::LowerMiddle,
    )?;
    let errors = time_plot(
        "Reconnects and errors (totals so far)",
        x_end,
        (
            "count",
            &[
                Line::new("reconnects", series(&|s| Some(s.reconnects as f64))),
                Line::new("errors", series(&|s| Some(s.errors as f64))),
            ],
        ),
        None,
        SeriesLabelPosition::UpperLeft,
    )?;
    let rss = if show_rss {
        let this = if embedded {
            "this process (server + load generator)"
        } else {
            "load test"
        };
        let mut lines = vec![Line::new(this, series(&|s| s.rss_mib))];
        let server = series(&|s| s.server_rss_mib);
        if !server.is_empty() {
            lines.push(Line::new("server (--server-pid)", server));
        }
        time_plot(
            "Resident memory (RSS)",
            x_end,
            ("RSS, MiB", &lines),
            None,
            SeriesLabelPosition::LowerRight,
        )?
    } else {
        None
    };
    Ok([users, errors, rss])
}

fn chart_builder<'a, 'b>(
    root: &'a DrawingArea<SVGBackend<'b>, Shift>,
    title: &str,
) -> ChartBuilder<'a, 'b, SVGBackend<'b>> {
    let mut builder = ChartBuilder::on(root);
    builder
        .caption(title, (FONT, 20))
        .margin(12)
        // Room for the last x label (99.99%) to the right of the frame.
        .margin_right(36)
        .x_label_area_size(50)
        .y_label_area_size(80);
    builder
}

/// A little above the largest value, so the top line is not on the frame (1 when there is
/// nothing above zero).
fn nice_max(values: impl Iterator<Item = f64>) -> f64 {
    let max = values.fold(0.0, f64::max);
    if max > 0.0 {
        max * 1.08
    } else {
        1.0
    }
}

/// `12500` as `12.5k`, `3000000` as `3M`: axis labels that fit.
#[must_use]
pub fn short_number(y: f64) -> String {
    let trim = |s: String| {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_owned()
        } else {
            s
        }
    };
    match y.abs() {
        a if a >= 1e6 => format!("{}M", trim(format!("{:.2}", y / 1e6))),
        a if a >= 1e4 => format!("{}k", trim(format!("{:.1}", y / 1e3))),
        _ => trim(format!("{y:.2}")),
    }
}

fn draw_error<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("drawing a plot: {e:?}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::metrics::{new_histogram, record};
    use std::time::Duration;

    #[test]
    fn percentiles_sit_at_their_decade() {
        assert!((percentile_x(0.9) - 1.0).abs() < 1e-9);
        assert!((percentile_x(0.999) - 3.0).abs() < 1e-9);
        assert_eq!(percentile_label(0.0), "0%");
        assert_eq!(percentile_label(2f64.log10()), "50%");
        assert_eq!(percentile_label(1.0), "90%");
        assert_eq!(percentile_label(2.0), "99%");
        assert_eq!(percentile_label(3.0), "99.9%");
        assert_eq!(percentile_label(5.0), "99.999%");
    }

    #[test]
    fn the_percentile_curve_rises_and_ends_at_the_max() {
        let mut h = new_histogram();
        for ms in 1..=1000u64 {
            record(&mut h, Duration::from_millis(ms));
        }
        let points = percentile_points(&h);
        assert!(points
            .windows(2)
            .all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1));
        let last = points.last().unwrap();
        assert!((last.0 - 3.0).abs() < 1e-9, "{last:?}");
        assert!((last.1 - 1000.0).abs() < 1.0, "{last:?}");
        assert!(percentile_points(&new_histogram()).is_empty());
    }

    #[test]
    fn a_plot_is_one_svg_with_its_labels() {
        let mut h = new_histogram();
        for ms in 1..=100u64 {
            record(&mut h, Duration::from_millis(ms));
        }
        let svg = percentile_plot("Lateness", &h).unwrap().unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..80]);
        assert_eq!(svg.matches("<svg").count(), 1);
        for label in ["99.9%", "50%", "lateness, ms", "Lateness"] {
            assert!(svg.contains(label), "{label} missing");
        }
        assert_eq!(percentile_plot("empty", &new_histogram()).unwrap(), None);
    }

    #[test]
    fn short_numbers_fit_an_axis() {
        assert_eq!(short_number(0.0), "0");
        assert_eq!(short_number(2.5), "2.5");
        assert_eq!(short_number(12_500.0), "12.5k");
        assert_eq!(short_number(3_000_000.0), "3M");
    }
}
