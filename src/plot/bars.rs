//! Bar charts. Vertical bars compare a handful of named values (requests per machine, work_time
//! counts) with the value printed on each bar. Horizontal bars are for comparisons across
//! policies, whose names are long: one row per category, named left of the plot, the first on
//! top; stacked (the layers of one total, e.g. requests per machine) or grouped (one bar per
//! series, e.g. p99 under each fault) share the same rows, axis and legend ([`horizontal_bars`]).

use super::axes::{style_mesh, Grid};
use super::format::fmt_num;
use super::legend::{framed, Legend};
use super::style::{font, longest, palette, px, CHAR_W, DESC_PX, TICK_PX, WIDTH};
use super::{empty, Axes, PlotError};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;

/// Vertical bar chart: categories along x (`axes.x_label`), values up y (`axes.y_label`), the
/// value printed above each bar. Log scales are ignored (bars start at zero).
pub fn bar_chart(stem: &Path, axes: &Axes, bars: &[(String, f64)]) -> Result<(), PlotError> {
    if bars.is_empty() || bars.iter().all(|(_, v)| !v.is_finite()) {
        return Err(empty(stem));
    }
    let top = bars.iter().map(|(_, v)| *v).fold(0.0f64, f64::max);
    let top = if top > 0.0 { top * 1.15 } else { 1.0 };
    let n = bars.len() as u32;
    let labels: Vec<&str> = bars.iter().map(|(l, _)| l.as_str()).collect();
    // Long category names on many bars do not fit side by side: shrink them.
    let room = f64::from(WIDTH)
        / f64::from(n.max(1))
        / (longest(labels.iter().copied(), 1) as f64 * CHAR_W);
    let tick = (TICK_PX.min(room)).max(12.0);
    framed(stem, &axes.title, &Legend::new(false), &|plot, _, s| {
        let mut chart = ChartBuilder::on(plot)
            .margin(px(10.0, s))
            .margin_right(px(28.0, s))
            .x_label_area_size(px(70.0, s))
            .y_label_area_size(px(95.0, s))
            .build_cartesian_2d((0u32..n - 1).into_segmented(), 0f64..top)?;
        style_mesh(&mut chart.configure_mesh(), s, Grid::Coarse)
            .disable_x_mesh()
            .x_labels(n as usize)
            .x_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) => labels
                    .get(*i as usize)
                    .map(|l| l.to_string())
                    .unwrap_or_default(),
                _ => String::new(),
            })
            .y_label_formatter(&|v| fmt_num(*v))
            .x_desc(axes.x_label.as_str())
            .y_desc(axes.y_label.as_str())
            .x_label_style(font(tick, s))
            .draw()?;
        for (i, (_, v)) in bars.iter().enumerate() {
            let i = i as u32;
            let mut bar = Rectangle::new(
                [
                    (SegmentValue::Exact(i), 0.0),
                    (SegmentValue::Exact(i + 1), *v),
                ],
                palette(0).filled(),
            );
            bar.set_margin(0, 0, px(12.0, s), px(12.0, s));
            chart.draw_series(std::iter::once(bar))?;
            chart.draw_series(std::iter::once(Text::new(
                fmt_num(*v),
                (SegmentValue::CenterOf(i), *v),
                font(TICK_PX * 0.9, s).pos(Pos::new(HPos::Center, VPos::Bottom)),
            )))?;
        }
        Ok(())
    })
}

/// Horizontal stacked bars: one bar per category (named on the left, `axes.y_label`), made of one
/// segment per layer (e.g. requests per machine per policy), values along x (`axes.x_label`).
pub fn stacked_bar_chart(
    stem: &Path,
    axes: &Axes,
    categories: &[String],
    layers: &[(String, Vec<f64>)],
    legend_below: bool,
) -> Result<(), PlotError> {
    if categories.is_empty() || layers.is_empty() {
        return Err(empty(stem));
    }
    let value = |layer: &Vec<f64>, c: usize| layer.get(c).copied().unwrap_or(0.0);
    let right = (0..categories.len())
        .map(|c| layers.iter().map(|(_, v)| value(v, c)).sum::<f64>())
        .fold(0.0f64, f64::max);
    let right = if right > 0.0 { right * 1.02 } else { 1.0 };
    let rows = Rows {
        categories,
        layers,
        right,
        // A small gap between neighbouring bars.
        gap_px: 5.0,
    };
    horizontal_bars(stem, axes, &rows, legend_below, &|c| {
        let mut left = 0.0;
        let mut out = Vec::new();
        for (li, (_, values)) in layers.iter().enumerate() {
            let v = value(values, c);
            if v > 0.0 {
                out.push(Segment {
                    x: (left, left + v),
                    y: (0.0, 1.0),
                    color: li,
                });
                left += v;
            }
        }
        out
    })
}

/// Horizontal grouped bars: one group of bars per category (named on the left), one bar per
/// series in each group (e.g. p99 completion per policy under each fault), values along x
/// (`axes.x_label`). Missing values (NaN) leave a gap.
pub fn grouped_bar_chart(
    stem: &Path,
    axes: &Axes,
    categories: &[String],
    groups: &[(String, Vec<f64>)],
    legend_below: bool,
) -> Result<(), PlotError> {
    let right = groups
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max);
    if categories.is_empty() || groups.is_empty() || right <= 0.0 {
        return Err(empty(stem));
    }
    let g = groups.len() as f64;
    let rows = Rows {
        categories,
        layers: groups,
        right: right * 1.04,
        gap_px: 0.0,
    };
    horizontal_bars(stem, axes, &rows, legend_below, &|c| {
        groups
            .iter()
            .enumerate()
            .filter_map(|(gi, (_, values))| {
                let v = values.get(c).copied().filter(|v| v.is_finite())?;
                // The first series on top, the group filling the middle 80% of the row.
                let y0 = 0.1 + 0.8 * (g - gi as f64 - 1.0) / g;
                Some(Segment {
                    x: (0.0, v),
                    y: (y0, y0 + 0.8 / g),
                    color: gi,
                })
            })
            .collect()
    })
}

/// The rows of a horizontal bar chart.
struct Rows<'a> {
    categories: &'a [String],
    /// Named layers or series (the legend), one value per category each.
    layers: &'a [(String, Vec<f64>)],
    /// The x axis runs from 0 to here.
    right: f64,
    /// Logical pixels left empty above and below each segment.
    gap_px: f64,
}

/// One filled segment of a row: `x` in data units, `y` as fractions of the row's height (0 at its
/// bottom), in the palette colour `color`.
struct Segment {
    x: (f64, f64),
    y: (f64, f64),
    color: usize,
}

/// Rows of segments: category `c` occupies [n − c − 1, n − c) on the y axis so the first is on
/// top, and `segments(c)` are its bars.
fn horizontal_bars(
    stem: &Path,
    axes: &Axes,
    rows: &Rows,
    legend_below: bool,
    segments: &dyn Fn(usize) -> Vec<Segment>,
) -> Result<(), PlotError> {
    let legend = Legend::new(legend_below).blocks(rows.layers);
    let n = rows.categories.len() as f64;
    let names = longest(rows.categories.iter().map(String::as_str), 4) as f64;
    let desc = if axes.y_label.is_empty() {
        0.0
    } else {
        DESC_PX * 1.6
    };
    framed(stem, &axes.title, &legend, &|plot, root, s| {
        let mut chart = ChartBuilder::on(plot)
            .margin(px(10.0, s))
            .margin_right(px(28.0, s))
            .x_label_area_size(px(62.0, s))
            .y_label_area_size(px(names * TICK_PX * 0.58 + 16.0 + desc, s))
            .build_cartesian_2d(0f64..rows.right, 0f64..n)?;
        let mut mesh = chart.configure_mesh();
        style_mesh(&mut mesh, s, Grid::Coarse)
            .disable_y_mesh()
            .y_labels(0)
            .x_labels(5)
            .x_label_formatter(&|v| fmt_num(*v))
            .x_desc(axes.x_label.as_str());
        if !axes.y_label.is_empty() {
            mesh.y_desc(axes.y_label.as_str());
        }
        mesh.draw()?;
        let gap = px(rows.gap_px, s);
        for (c, name) in rows.categories.iter().enumerate() {
            let base = n - c as f64 - 1.0;
            for seg in segments(c) {
                let mut bar = Rectangle::new(
                    [(seg.x.0, base + seg.y.0), (seg.x.1, base + seg.y.1)],
                    palette(seg.color).filled(),
                );
                if rows.gap_px > 0.0 {
                    bar.set_margin(gap, gap, 0, 0);
                }
                chart.draw_series(std::iter::once(bar))?;
            }
            let (x, y) = chart.backend_coord(&(0.0, base + 0.5));
            root.draw(&Text::new(
                name.clone(),
                (x - px(8.0, s) as i32, y),
                font(TICK_PX, s).pos(Pos::new(HPos::Right, VPos::Center)),
            ))?;
        }
        Ok::<(), _>(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plot::testutil::{non_empty, TmpDir};

    fn axes() -> Axes {
        Axes {
            title: "Requests per machine".into(),
            x_label: "machine".into(),
            y_label: "requests".into(),
            ..Axes::default()
        }
    }

    #[test]
    fn vertical_stacked_and_grouped_bars_are_written() {
        let dir = TmpDir::new("bars");
        let bars: Vec<(String, f64)> = ["asia/0", "asia/1", "emea/0", "us/0", "us/1"]
            .iter()
            .enumerate()
            .map(|(i, m)| (m.to_string(), 100.0 + i as f64 * 50.0))
            .collect();
        bar_chart(&dir.join("bars"), &axes(), &bars).unwrap();
        non_empty(&dir.join("bars"));

        let cats = vec!["random".to_string(), "per-region-queues".to_string()];
        let layers = vec![
            ("asia/0".to_string(), vec![200.0, 150.0]),
            ("emea/0".to_string(), vec![200.0, 300.0]),
        ];
        stacked_bar_chart(&dir.join("stacked"), &axes(), &cats, &layers, true).unwrap();
        let svg = non_empty(&dir.join("stacked"));
        assert!(svg.contains("per-region-queues") && svg.contains("emea/0"));

        let groups = vec![
            ("default".to_string(), vec![900.0, 800.0]),
            ("slow machine".to_string(), vec![1900.0, f64::NAN]),
        ];
        grouped_bar_chart(&dir.join("grouped"), &axes(), &cats, &groups, true).unwrap();
        non_empty(&dir.join("grouped"));
    }

    #[test]
    fn bars_without_values_are_an_error_not_a_panic() {
        let dir = TmpDir::new("bars-none");
        let cats = vec!["a".to_string()];
        assert!(bar_chart(&dir.join("a"), &axes(), &[]).is_err());
        assert!(stacked_bar_chart(&dir.join("b"), &axes(), &[], &[], false).is_err());
        let nan = vec![("x".to_string(), vec![f64::NAN])];
        assert!(grouped_bar_chart(&dir.join("c"), &axes(), &cats, &nan, false).is_err());
    }
}
