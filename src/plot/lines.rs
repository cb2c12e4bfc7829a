//! Line charts: one line per series over x–y axes (either may be logarithmic), optionally with a
//! min–max spread per series (a translucent band plus whiskers, e.g. over repetitions) and dashed
//! reference curves under the data (e.g. the lower bound a policy is measured against).

use super::axes::{xy_chart, Span, XyChart};
use super::backend::Drawn;
use super::legend::{framed, Legend};
use super::style::{palette, px, reference_color};
use super::{empty, Axes, LineExtras, PlotError, Series};
use plotters::prelude::*;
use std::path::Path;

/// Line chart: one line (with point markers) per series.
pub fn line_chart(stem: &Path, axes: &Axes, series: &[Series]) -> Result<(), PlotError> {
    line_chart_with(stem, axes, series, &LineExtras::default())
}

/// Line chart with spread bands/whiskers and dashed reference curves.
pub fn line_chart_with(
    stem: &Path,
    axes: &Axes,
    series: &[Series],
    extras: &LineExtras,
) -> Result<(), PlotError> {
    let mut xs = Vec::new();
    let mut ys = Vec::new();
    for s in series.iter().chain(&extras.references) {
        for &(x, y) in &s.points {
            xs.push(x);
            ys.push(y);
        }
    }
    for band in &extras.spread {
        for &(x, lo, hi) in band {
            xs.push(x);
            ys.extend([lo, hi]);
        }
    }
    let x = Span::fit(&xs, axes.log_x, false).ok_or_else(|| empty(stem))?;
    let y = Span::fit(&ys, axes.log_y, true).ok_or_else(|| empty(stem))?;
    let legend = Legend::new(extras.legend_below)
        .lines(series)
        .dashed(&extras.references);
    framed(stem, &axes.title, &legend, &|plot, _, s| {
        xy_chart(plot, s, axes, (x, y), &|chart| {
            for (k, r) in extras.references.iter().enumerate() {
                draw_dashed(chart, &r.points, k, s)?;
            }
            for (i, band) in extras.spread.iter().enumerate() {
                draw_spread(chart, band, i, x, s)?;
            }
            for (i, ser) in series.iter().enumerate() {
                draw_line(chart, &ser.points, i, s, ser.points.len() <= 40)?;
            }
            Ok(())
        })
    })
}

/// Series `i`'s spread: a translucent band from low to high, and a whisker with short caps at
/// each point. `x` is the x axis (caps are a fixed share of it, or of x itself when logarithmic).
fn draw_spread(
    chart: &mut XyChart<'_, '_>,
    band: &[(f64, f64, f64)],
    i: usize,
    x: Span,
    s: f64,
) -> Drawn {
    if band.is_empty() {
        return Ok(());
    }
    let color = palette(i);
    let mut poly: Vec<(f64, f64)> = band.iter().map(|&(x, lo, _)| (x, lo)).collect();
    poly.extend(band.iter().rev().map(|&(x, _, hi)| (x, hi)));
    chart.draw_series(std::iter::once(Polygon::new(
        poly,
        color.mix(0.15).filled(),
    )))?;
    let stroke = color.stroke_width(px(1.5, s));
    let cap = |y: f64, at: f64| {
        let d = if x.log {
            at * 0.06
        } else {
            (x.hi - x.lo) * 0.008
        };
        PathElement::new(vec![(at - d, y), (at + d, y)], stroke)
    };
    for &(at, lo, hi) in band {
        chart.draw_series([
            PathElement::new(vec![(at, lo), (at, hi)], stroke),
            cap(lo, at),
            cap(hi, at),
        ])?;
    }
    Ok(())
}

/// Series `i` as a solid line in its palette colour, with a marker at each point if `markers`.
pub(super) fn draw_line(
    chart: &mut XyChart<'_, '_>,
    points: &[(f64, f64)],
    i: usize,
    s: f64,
    markers: bool,
) -> Drawn {
    let color = palette(i);
    chart.draw_series(LineSeries::new(
        points.iter().copied(),
        color.stroke_width(px(3.0, s)),
    ))?;
    if markers {
        chart.draw_series(
            points
                .iter()
                .map(|&p| Circle::new(p, px(5.0, s), color.filled())),
        )?;
    }
    Ok(())
}

/// Reference curve `k`, dashed in its reference colour.
fn draw_dashed(chart: &mut XyChart<'_, '_>, points: &[(f64, f64)], k: usize, s: f64) -> Drawn {
    chart.draw_series(DashedLineSeries::new(
        points.iter().copied(),
        px(10.0, s),
        px(7.0, s),
        reference_color(k).stroke_width(px(2.5, s)),
    ))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plot::testutil::{non_empty, TmpDir};

    #[test]
    fn line_chart_with_log_axes_bands_and_reference_is_written() {
        let dir = TmpDir::new("line");
        let stem = dir.join("line");
        let ns = [1.0, 10.0, 100.0, 1000.0, 5000.0];
        let series: Vec<Series> = (0..3)
            .map(|k| Series {
                label: format!("policy-{k}"),
                points: ns
                    .iter()
                    .map(|&n| (n, 300.0 + n * 17.0 * (1.0 + k as f64 * 0.2)))
                    .collect(),
            })
            .collect();
        let extras = LineExtras {
            legend_below: true,
            spread: vec![ns
                .iter()
                .map(|&n| (n, 290.0 + n * 16.0, 310.0 + n * 18.0))
                .collect()],
            references: vec![Series {
                label: "lower bound".into(),
                points: ns.iter().map(|&n| (n, 280.0 + n * 15.0)).collect(),
            }],
        };
        let axes = Axes {
            title: "Makespan against N".into(),
            x_label: "N (requests)".into(),
            y_label: "makespan (ms)".into(),
            log_x: true,
            log_y: true,
        };
        line_chart_with(&stem, &axes, &series, &extras).unwrap();
        let svg = non_empty(&stem);
        assert!(svg.contains("lower bound") && svg.contains("makespan (ms)"));
    }

    #[test]
    fn a_line_chart_without_points_is_an_error_not_a_panic() {
        let dir = TmpDir::new("none");
        assert!(matches!(
            line_chart(&dir.join("none"), &Axes::default(), &[]),
            Err(PlotError::Empty { .. })
        ));
    }
}
