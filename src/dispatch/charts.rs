//! The run's charts, behind one function so the drawing library can change without touching the
//! dispatcher. Drawn after the batch from the collector's bounded statistics (a CDF from the
//! completion histogram's quantiles, not from N stored samples), each as PNG and SVG.

use crate::endpoint::Layout;
use crate::plot::{bar_chart, cdf_chart, line_chart, Axes, PlotError, Series};
use crate::stats::Stats;
use rayon::prelude::*;
use std::path::{Path, PathBuf};

/// Points of the completion-time CDF (evenly spaced quantiles).
const CDF_POINTS: usize = 400;

/// Draws the run's charts into `dir`; returns the stems written (`<stem>.png`, `<stem>.svg`).
/// Drawing is CPU work, so the charts are drawn in parallel on rayon's pool: rayon is for
/// CPU-bound work, while the blocking HTTP work stays on plain threads (a blocked rayon worker
/// would stall every other task queued on the pool).
pub fn draw(dir: &Path, stats: &Stats, layout: &Layout) -> Result<Vec<PathBuf>, PlotError> {
    let charts: [&(dyn Fn() -> Result<Option<PathBuf>, PlotError> + Sync); 3] = [
        &|| completion_cdf(dir, stats),
        &|| per_machine(dir, stats, layout),
        &|| over_time(dir, stats),
    ];
    let drawn: Result<Vec<Option<PathBuf>>, PlotError> = charts.par_iter().map(|c| c()).collect();
    Ok(drawn?.into_iter().flatten().collect())
}

fn axes(title: &str, x: &str, y: &str) -> Axes {
    Axes {
        title: title.to_string(),
        x_label: x.to_string(),
        y_label: y.to_string(),
        log_x: false,
        log_y: false,
    }
}

fn completion_cdf(dir: &Path, stats: &Stats) -> Result<Option<PathBuf>, PlotError> {
    let sample = stats.completion.cdf_sample(CDF_POINTS);
    if sample.is_empty() {
        return Ok(None);
    }
    let stem = dir.join("completion-cdf");
    cdf_chart(
        &stem,
        &axes(
            "Completion time from batch start (ok requests)",
            "completion time (model ms)",
            "fraction of requests",
        ),
        &[("completion".to_string(), sample)],
    )?;
    Ok(Some(stem))
}

fn per_machine(dir: &Path, stats: &Stats, layout: &Layout) -> Result<Option<PathBuf>, PlotError> {
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
    )?;
    Ok(Some(stem))
}

fn over_time(dir: &Path, stats: &Stats) -> Result<Option<PathBuf>, PlotError> {
    let in_flight = Series {
        label: "in flight".into(),
        points: stats.series.in_flight(200),
    };
    if in_flight.points.is_empty() {
        return Ok(None);
    }
    let rate = Series {
        label: "completed per s".into(),
        points: stats.series.completions_per_s(80),
    };
    let stem = dir.join("over-time");
    line_chart(
        &stem,
        &axes(
            "In flight and completions over time",
            "time since batch start (model ms)",
            "requests",
        ),
        &[in_flight, rate],
    )?;
    Ok(Some(stem))
}
