//! The run's charts, behind one function so the drawing library can change without touching the
//! dispatcher. Drawn after the batch from the collector's bounded statistics (a CDF from the
//! completion histogram's quantiles, not from N stored samples), each as PNG and SVG.

use crate::endpoint::Layout;
use crate::plot::{bar_chart, cdf_chart, line_chart, Axes, Series};
use crate::stats::Stats;
use std::path::{Path, PathBuf};

/// Points of the completion-time CDF (evenly spaced quantiles).
const CDF_POINTS: usize = 400;

/// Draws the run's charts into `dir`; returns the stems written (`<stem>.png`, `<stem>.svg`).
pub fn draw(dir: &Path, stats: &Stats, layout: &Layout) -> Result<Vec<PathBuf>, String> {
    let axes = |title: &str, x: &str, y: &str| Axes {
        title: title.to_string(),
        x_label: x.to_string(),
        y_label: y.to_string(),
        log_x: false,
        log_y: false,
    };
    let mut written = Vec::new();
    let e = |e: crate::plot::PlotError| e.to_string();

    let stem = dir.join("completion-cdf");
    let sample = stats.completion.cdf_sample(CDF_POINTS);
    if !sample.is_empty() {
        cdf_chart(
            &stem,
            &axes(
                "Completion time from batch start (ok requests)",
                "completion time (model ms)",
                "fraction of requests",
            ),
            &[("completion".to_string(), sample)],
        )
        .map_err(e)?;
        written.push(stem);
    }

    let stem = dir.join("per-machine");
    let bars: Vec<(String, f64)> = layout
        .machines
        .iter()
        .zip(&stats.per_machine)
        .map(|(m, c)| (m.to_string(), *c as f64))
        .collect();
    bar_chart(
        &stem,
        &axes("Requests answered per machine", "machine", "ok requests"),
        &bars,
    )
    .map_err(e)?;
    written.push(stem);

    let stem = dir.join("over-time");
    let in_flight = Series {
        label: "in flight".into(),
        points: stats.series.in_flight(200),
    };
    let rate = Series {
        label: "completed per s".into(),
        points: stats.series.completions_per_s(80),
    };
    if !in_flight.points.is_empty() {
        line_chart(
            &stem,
            &axes(
                "In flight and completions over time",
                "time since batch start (model ms)",
                "requests",
            ),
            &[in_flight, rate],
        )
        .map_err(e)?;
        written.push(stem);
    }
    Ok(written)
}
