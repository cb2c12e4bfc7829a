//! Empirical CDFs: for each sample set, the fraction of samples at or below each value. A CDF
//! shows a whole distribution of completion or response times in one line per policy or region,
//! where a mean or a few percentiles would hide the tail.

use super::axes::{xy_chart, Span};
use super::legend::{framed, Legend};
use super::lines::draw_line;
use super::{empty, Axes, PlotError, Series};
use std::path::Path;

/// Points drawn per CDF at most: more than a chart can show, few enough to keep the SVG small.
const CDF_POINTS: usize = 400;

/// Empirical CDFs, one per sample set: x = value (`axes.x_label`), y = fraction of samples at or
/// below it (`axes.y_label`, 0–1). Large sample sets are thinned to a few hundred points.
pub fn cdf_chart(
    stem: &Path,
    axes: &Axes,
    samples: &[(String, Vec<f64>)],
) -> Result<(), PlotError> {
    cdf_chart_with(stem, axes, samples, false)
}

/// [`cdf_chart`] with the legend under the plot when `legend_below`.
pub fn cdf_chart_with(
    stem: &Path,
    axes: &Axes,
    samples: &[(String, Vec<f64>)],
    legend_below: bool,
) -> Result<(), PlotError> {
    let series: Vec<Series> = samples
        .iter()
        .map(|(label, values)| Series {
            label: label.clone(),
            points: cdf_points(values, CDF_POINTS),
        })
        .collect();
    let xs: Vec<f64> = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .collect();
    let x = Span::fit(&xs, axes.log_x, false).ok_or_else(|| empty(stem))?;
    let legend = Legend::new(legend_below).lines(&series);
    framed(stem, &axes.title, &legend, &|plot, _, s| {
        xy_chart(plot, s, axes, (x, Span::unit()), &|chart| {
            for (i, ser) in series.iter().enumerate() {
                draw_line(chart, &ser.points, i, s, false)?;
            }
            Ok(())
        })
    })
}

/// The (value, fraction ≤ value) steps of an empirical CDF, at most about `max_points` of them.
pub fn cdf_points(values: &[f64], max_points: usize) -> Vec<(f64, f64)> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return Vec::new();
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let step = (n / max_points.max(2)).max(1);
    let mut out: Vec<(f64, f64)> = (0..n)
        .step_by(step)
        .map(|i| (v[i], (i + 1) as f64 / n as f64))
        .collect();
    if out.last().map(|p| p.1) != Some(1.0) {
        out.push((v[n - 1], 1.0));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plot::testutil::{non_empty, TmpDir};

    #[test]
    fn cdf_points_end_at_one_and_are_thinned() {
        let v: Vec<f64> = (0..10_000).map(f64::from).collect();
        let p = cdf_points(&v, 100);
        assert!(p.len() <= 102);
        assert_eq!(p.last().unwrap(), &(9999.0, 1.0));
        assert!(p.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1));
    }

    #[test]
    fn cdf_chart_is_written_and_empty_samples_are_an_error() {
        let dir = TmpDir::new("cdf");
        let samples = vec![
            ("a".to_string(), (0..1000).map(|i| i as f64).collect()),
            ("b".to_string(), (0..10).map(|i| (i * 50) as f64).collect()),
        ];
        let axes = Axes {
            title: "Completion time CDF".into(),
            x_label: "completion time (ms)".into(),
            y_label: "fraction of requests".into(),
            ..Axes::default()
        };
        cdf_chart(&dir.join("cdf"), &axes, &samples).unwrap();
        non_empty(&dir.join("cdf"));
        let none = cdf_chart(&dir.join("none"), &axes, &[("x".into(), vec![])]);
        assert!(matches!(none, Err(PlotError::Empty { .. })));
    }
}
