//! Chart primitives shared by runs, `cmdunit limits` and `cmdunit report`.
//!
//! Every chart is written twice from one drawing routine: `<stem>.png` for people browsing a run
//! folder and `<stem>.svg` for the PDF report (vector, so it prints sharply). Why these choices:
//! - The font (DejaVu Sans) is embedded in the binary and registered with plotters' pure-Rust
//!   `ab_glyph` renderer, so no system fontconfig or font file is needed at run time
//!   (`../shared/reference/rust-notes.md`). The SVG names the family `sans-serif`; the report's
//!   PDF step maps that family to the same embedded bytes ([`FONT_REGULAR`]).
//! - Sizes are chosen for print: a chart is typically shown about 85 mm wide in the report, so
//!   tick labels are ~3% of the chart width (≈ 7 pt on paper).
//! - Legends sit in their own panel right of the plot, so they never hide data.
//! - Log axes use plotters' log coordinates, labelled at powers of ten (and 2×, 5× when there is
//!   room) with plain numbers, not exponents.

use plotters::coord::ranged1d::{DefaultFormatting, Ranged};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters_backend::{BackendColor, BackendCoord, BackendTextStyle, DrawingErrorKind};
use std::path::{Path, PathBuf};
use std::sync::Once;

/// DejaVu Sans (licence in `assets/fonts/LICENSE-DejaVu.txt`), embedded.
pub const FONT_REGULAR: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
/// DejaVu Sans Bold, for chart titles.
pub const FONT_BOLD: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans-Bold.ttf");

/// One named line of (x, y) points.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
}

/// A chart's title, axis names (with units) and scales.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Axes {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub log_x: bool,
    pub log_y: bool,
}

/// Optional decorations for [`line_chart_with`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LineExtras {
    /// Spread around series `i` (same index as the series): `(x, low, high)` per point, drawn as a
    /// translucent band plus whiskers (e.g. min–max over repetitions). Empty = none.
    pub spread: Vec<Vec<(f64, f64, f64)>>,
    /// Reference curves drawn dashed in dark grey under the data (e.g. the lower bound).
    pub references: Vec<Series>,
    /// Legend in rows under the plot instead of a panel on its right: narrower charts, larger
    /// type when the chart is printed small (the report).
    pub legend_below: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    #[error("cannot create chart folder {path}: {source}")]
    Folder {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot draw chart {path}: {message}")]
    Draw { path: String, message: String },
    #[error("chart {path} has no data to draw")]
    Empty { path: String },
}

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
    let mut legend: Vec<LegendEntry> = series
        .iter()
        .enumerate()
        .map(|(i, s)| LegendEntry::line(&s.label, i))
        .collect();
    legend.extend(
        extras
            .references
            .iter()
            .enumerate()
            .map(|(k, r)| LegendEntry::dashed(&r.label, k)),
    );
    let below = extras.legend_below;
    let draw = |root: &Area, s: f64| -> Result<(), String> {
        let plot = frame(root, s, &axes.title, &legend, below)?;
        let x_span = x;
        xy_dispatch(&plot, s, axes, x, y, |chart, s| {
            for (k, r) in extras.references.iter().enumerate() {
                draw_dashed(chart, &r.points, k, s)?;
            }
            for (i, band) in extras.spread.iter().enumerate() {
                if band.is_empty() {
                    continue;
                }
                let color = palette(i);
                let mut poly: Vec<(f64, f64)> = band.iter().map(|&(x, lo, _)| (x, lo)).collect();
                poly.extend(band.iter().rev().map(|&(x, _, hi)| (x, hi)));
                chart
                    .draw_series(std::iter::once(Polygon::new(
                        poly,
                        color.mix(0.15).filled(),
                    )))
                    .map_err(|e| e.to_string())?;
                // Whiskers: a vertical line from low to high with short caps.
                let cap = |y: f64, x: f64| {
                    let d = if axes.log_x {
                        x * 0.06
                    } else {
                        (x_span.hi - x_span.lo) * 0.008
                    };
                    PathElement::new(vec![(x - d, y), (x + d, y)], color.stroke_width(px(1.5, s)))
                };
                for &(x, lo, hi) in band {
                    chart
                        .draw_series([
                            PathElement::new(
                                vec![(x, lo), (x, hi)],
                                color.stroke_width(px(1.5, s)),
                            ),
                            cap(lo, x),
                            cap(hi, x),
                        ])
                        .map_err(|e| e.to_string())?;
                }
            }
            for (i, ser) in series.iter().enumerate() {
                draw_line(chart, &ser.points, i, s)?;
            }
            Ok(())
        })
    };
    render(stem, legend_extent(&legend, below), &draw)
}

/// Vertical bar chart: categories along x (`axes.x_label`), values up y (`axes.y_label`), the
/// value printed above each bar. Log scales are ignored (bars start at zero).
pub fn bar_chart(stem: &Path, axes: &Axes, bars: &[(String, f64)]) -> Result<(), PlotError> {
    if bars.is_empty() || bars.iter().all(|(_, v)| !v.is_finite()) {
        return Err(empty(stem));
    }
    let top = bars.iter().map(|(_, v)| *v).fold(0.0f64, f64::max);
    let top = if top > 0.0 { top * 1.15 } else { 1.0 };
    let n = bars.len() as u32;
    let draw = |root: &Area, s: f64| -> Result<(), String> {
        let plot = frame(root, s, &axes.title, &[], false)?;
        let mut chart = ChartBuilder::on(&plot)
            .margin(px(10.0, s))
            .margin_right(px(28.0, s))
            .x_label_area_size(px(70.0, s))
            .y_label_area_size(px(95.0, s))
            .build_cartesian_2d((0u32..n - 1).into_segmented(), 0f64..top)
            .map_err(|e| e.to_string())?;
        let labels: Vec<&str> = bars.iter().map(|(l, _)| l.as_str()).collect();
        let longest = labels.iter().map(|l| l.chars().count()).max().unwrap_or(1);
        // Long category names on many bars do not fit side by side: shrink them.
        let room = 640.0 / f64::from(n.max(1)) / (longest as f64 * 0.62);
        let tick = (TICK_PX.min(room)).max(12.0);
        chart
            .configure_mesh()
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
            .y_label_style(font(TICK_PX, s))
            .axis_desc_style(font(DESC_PX, s))
            .light_line_style(WHITE.mix(0.0))
            .bold_line_style(BLACK.mix(0.12))
            .draw()
            .map_err(|e| e.to_string())?;
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
            chart
                .draw_series(std::iter::once(bar))
                .map_err(|e| e.to_string())?;
            chart
                .draw_series(std::iter::once(Text::new(
                    fmt_num(*v),
                    (SegmentValue::CenterOf(i), *v),
                    font(TICK_PX * 0.9, s).pos(Pos::new(HPos::Center, VPos::Bottom)),
                )))
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    };
    render(stem, (0, 0), &draw)
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
    let below = legend_below;
    if categories.is_empty() || layers.is_empty() {
        return Err(empty(stem));
    }
    let totals: Vec<f64> = (0..categories.len())
        .map(|c| {
            layers
                .iter()
                .map(|(_, v)| v.get(c).copied().unwrap_or(0.0))
                .sum()
        })
        .collect();
    let right = totals.iter().copied().fold(0.0f64, f64::max);
    let right = if right > 0.0 { right * 1.02 } else { 1.0 };
    let n = categories.len() as u32;
    let legend: Vec<LegendEntry> = layers
        .iter()
        .enumerate()
        .map(|(i, (l, _))| LegendEntry::block(l, i))
        .collect();
    let longest = categories
        .iter()
        .map(|c| c.chars().count())
        .max()
        .unwrap_or(4);
    let draw = |root: &Area, s: f64| -> Result<(), String> {
        let plot = frame(root, s, &axes.title, &legend, below)?;
        let mut chart = ChartBuilder::on(&plot)
            .margin(px(10.0, s))
            .margin_right(px(28.0, s))
            .x_label_area_size(px(70.0, s))
            .y_label_area_size(px(longest as f64 * TICK_PX * 0.62 + 45.0, s))
            .build_cartesian_2d(0f64..right, (0u32..n - 1).into_segmented())
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(n as usize)
            // The first category on top.
            .y_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) => (n as usize)
                    .checked_sub(*i as usize + 1)
                    .and_then(|c| categories.get(c))
                    .cloned()
                    .unwrap_or_default(),
                _ => String::new(),
            })
            .x_labels(5)
            .x_label_formatter(&|v| fmt_num(*v))
            .x_desc(axes.x_label.as_str())
            .y_desc(axes.y_label.as_str())
            .label_style(font(TICK_PX, s))
            .axis_desc_style(font(DESC_PX, s))
            .light_line_style(WHITE.mix(0.0))
            .bold_line_style(BLACK.mix(0.12))
            .draw()
            .map_err(|e| e.to_string())?;
        for c in 0..categories.len() {
            let mut left = 0.0;
            for (li, (_, values)) in layers.iter().enumerate() {
                let v = values.get(c).copied().unwrap_or(0.0);
                if v <= 0.0 {
                    continue;
                }
                let c32 = n - 1 - c as u32;
                let mut bar = Rectangle::new(
                    [
                        (left, SegmentValue::Exact(c32)),
                        (left + v, SegmentValue::Exact(c32 + 1)),
                    ],
                    palette(li).filled(),
                );
                bar.set_margin(px(5.0, s), px(5.0, s), 0, 0);
                chart
                    .draw_series(std::iter::once(bar))
                    .map_err(|e| e.to_string())?;
                left += v;
            }
        }
        Ok(())
    };
    render(stem, legend_extent(&legend, below), &draw)
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
    let right = right * 1.04;
    let below = legend_below;
    let n = categories.len() as f64;
    let g = groups.len() as f64;
    let legend: Vec<LegendEntry> = groups
        .iter()
        .enumerate()
        .map(|(i, (l, _))| LegendEntry::block(l, i))
        .collect();
    let longest = categories
        .iter()
        .map(|c| c.chars().count())
        .max()
        .unwrap_or(4);
    let draw = |root: &Area, s: f64| -> Result<(), String> {
        let plot = frame(root, s, &axes.title, &legend, below)?;
        let mut chart = ChartBuilder::on(&plot)
            .margin(px(10.0, s))
            .margin_right(px(28.0, s))
            .x_label_area_size(px(62.0, s))
            .y_label_area_size(px(longest as f64 * TICK_PX * 0.58 + 16.0, s))
            .build_cartesian_2d(0f64..right, 0f64..n)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(0)
            .x_labels(5)
            .x_label_formatter(&|v| fmt_num(*v))
            .x_desc(axes.x_label.as_str())
            .label_style(font(TICK_PX, s))
            .axis_desc_style(font(DESC_PX, s))
            .light_line_style(WHITE.mix(0.0))
            .bold_line_style(BLACK.mix(0.12))
            .draw()
            .map_err(|e| e.to_string())?;
        // Category i occupies [n - i - 1, n - i) so the first is on top.
        for (c, name) in categories.iter().enumerate() {
            let base = n - c as f64 - 1.0;
            for (gi, (_, values)) in groups.iter().enumerate() {
                let v = values.get(c).copied().unwrap_or(f64::NAN);
                if !v.is_finite() {
                    continue;
                }
                let y0 = base + 0.1 + 0.8 * (g - gi as f64 - 1.0) / g;
                let y1 = y0 + 0.8 / g;
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(0.0, y0), (v, y1)],
                        palette(gi).filled(),
                    )))
                    .map_err(|e| e.to_string())?;
            }
            let (x, y) = chart.backend_coord(&(0.0, base + 0.5));
            root.draw(&Text::new(
                name.clone(),
                (x - px(8.0, s) as i32, y),
                font(TICK_PX, s).pos(Pos::new(HPos::Right, VPos::Center)),
            ))
            .map_err(|e| e.to_string())?;
        }
        Ok(())
    };
    render(stem, legend_extent(&legend, below), &draw)
}

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
    let below = legend_below;
    let series: Vec<Series> = samples
        .iter()
        .map(|(label, values)| Series {
            label: label.clone(),
            points: cdf_points(values, 400),
        })
        .collect();
    let xs: Vec<f64> = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .collect();
    let x = Span::fit(&xs, axes.log_x, false).ok_or_else(|| empty(stem))?;
    let y = Span {
        lo: 0.0,
        hi: 1.0,
        log: false,
    };
    let legend: Vec<LegendEntry> = series
        .iter()
        .enumerate()
        .map(|(i, s)| LegendEntry::line(&s.label, i))
        .collect();
    let draw = |root: &Area, s: f64| -> Result<(), String> {
        let plot = frame(root, s, &axes.title, &legend, below)?;
        xy_dispatch(&plot, s, axes, x, y, |chart, s| {
            for (i, ser) in series.iter().enumerate() {
                chart
                    .draw_series(LineSeries::new(
                        ser.points.iter().copied(),
                        palette(i).stroke_width(px(3.0, s)),
                    ))
                    .map_err(|e| e.to_string())?;
            }
            Ok(())
        })
    };
    render(stem, legend_extent(&legend, below), &draw)
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

// ---------------------------------------------------------------------------------------------
// Layout and style.

/// Logical canvas of the plot panel (SVG units); the PNG is drawn at twice this size.
const WIDTH: u32 = 640;
const HEIGHT: u32 = 370;
const PNG_SCALE: f64 = 2.0;
const TITLE_PX: f64 = 27.0;
const DESC_PX: f64 = 24.0;
const TICK_PX: f64 = 22.0;
const LEGEND_PX: f64 = 21.0;

type Area<'a> = DrawingArea<DynBackend<'a>, Shift>;

/// Both backends behind one type so each chart has a single drawing routine.
enum DynBackend<'a> {
    Bitmap(BitMapBackend<'a>),
    Svg(SVGBackend<'a>),
}

/// Colour-blind-safe (Okabe–Ito) first, then distinct extras for up to 12 series.
fn palette(i: usize) -> RGBColor {
    const COLORS: [RGBColor; 12] = [
        RGBColor(0, 114, 178),
        RGBColor(213, 94, 0),
        RGBColor(0, 158, 115),
        RGBColor(204, 121, 167),
        RGBColor(230, 159, 0),
        RGBColor(86, 180, 233),
        RGBColor(120, 120, 120),
        RGBColor(150, 40, 40),
        RGBColor(60, 60, 160),
        RGBColor(110, 150, 30),
        RGBColor(20, 20, 20),
        RGBColor(180, 140, 90),
    ];
    COLORS[i % COLORS.len()]
}

/// Reference curves: dark grey, then a muted red, then light grey.
fn reference_color(k: usize) -> RGBColor {
    [
        RGBColor(50, 50, 50),
        RGBColor(190, 60, 60),
        RGBColor(150, 150, 150),
    ][k % 3]
}

fn px(v: f64, s: f64) -> u32 {
    (v * s).round().max(1.0) as u32
}

fn font(size: f64, s: f64) -> TextStyle<'static> {
    ("sans-serif", size * s).into_font().color(&BLACK)
}

fn register_fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The bytes are compiled in and known to be valid fonts (checked by a unit test).
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT_REGULAR);
        let _ = plotters::style::register_font("sans-serif", FontStyle::Bold, FONT_BOLD);
    });
}

fn empty(stem: &Path) -> PlotError {
    PlotError::Empty {
        path: stem.display().to_string(),
    }
}

fn with_ext(stem: &Path, ext: &str) -> PathBuf {
    let mut name = stem.as_os_str().to_owned();
    name.push(".");
    name.push(ext);
    PathBuf::from(name)
}

/// Draw once as PNG (×2 for sharpness) and once as SVG. `legend_w` is extra logical width for the
/// legend panel.
fn render(
    stem: &Path,
    (legend_w, legend_h): (u32, u32),
    draw: &dyn Fn(&Area, f64) -> Result<(), String>,
) -> Result<(), PlotError> {
    register_fonts();
    if let Some(dir) = stem.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| PlotError::Folder {
            path: dir.display().to_string(),
            source,
        })?;
    }
    let w = WIDTH + legend_w;
    let h = HEIGHT + legend_h;
    let fail = |path: &Path, message: String| PlotError::Draw {
        path: path.display().to_string(),
        message,
    };
    let png = with_ext(stem, "png");
    {
        let size = (
            (f64::from(w) * PNG_SCALE) as u32,
            (f64::from(h) * PNG_SCALE) as u32,
        );
        let root = DrawingArea::from(DynBackend::Bitmap(BitMapBackend::new(&png, size)));
        root.fill(&WHITE).map_err(|e| fail(&png, e.to_string()))?;
        draw(&root, PNG_SCALE).map_err(|m| fail(&png, m))?;
        root.present().map_err(|e| fail(&png, e.to_string()))?;
    }
    let svg = with_ext(stem, "svg");
    {
        let root = DrawingArea::from(DynBackend::Svg(SVGBackend::new(&svg, (w, h))));
        root.fill(&WHITE).map_err(|e| fail(&svg, e.to_string()))?;
        draw(&root, 1.0).map_err(|m| fail(&svg, m))?;
        root.present().map_err(|e| fail(&svg, e.to_string()))?;
    }
    Ok(())
}

/// Title on top, legend panel on the right (or in rows below); returns the area for the plot.
fn frame<'a>(
    root: &Area<'a>,
    s: f64,
    title: &str,
    legend: &[LegendEntry],
    below: bool,
) -> Result<Area<'a>, String> {
    let title_h = if title.is_empty() {
        px(8.0, s)
    } else {
        px(TITLE_PX * 1.7, s)
    };
    let (top, body) = root.split_vertically(title_h);
    if !title.is_empty() {
        top.draw(&Text::new(
            title.to_string(),
            (px(16.0, s) as i32, px(10.0, s) as i32),
            ("sans-serif", TITLE_PX * s, FontStyle::Bold)
                .into_font()
                .color(&BLACK),
        ))
        .map_err(|e| e.to_string())?;
    }
    if legend.is_empty() {
        return Ok(body);
    }
    let (body_w, body_h) = body.dim_in_pixel();
    let (ew, eh) = legend_extent(legend, below);
    let row = LEGEND_PX * 1.45 * s;
    let (plot, panel, cols, y0) = if below {
        let (plot, panel) = body.split_vertically(body_h.saturating_sub(px(f64::from(eh), s)));
        let cols = legend_columns(legend);
        (plot, panel, cols, row * 0.6)
    } else {
        let (plot, panel) = body.split_horizontally(body_w.saturating_sub(px(f64::from(ew), s)));
        (plot, panel, 1, (f64::from(body_h) * 0.08).max(row))
    };
    let cell_w = f64::from(legend_entry_width(legend)) * s;
    for (i, entry) in legend.iter().enumerate() {
        let (c, r) = (i % cols, i / cols);
        let y = (y0 + row * r as f64) as i32;
        let dx = if below { px(30.0, s) as f64 } else { 0.0 } + cell_w * c as f64;
        let x0 = px(6.0, s) as i32 + dx as i32;
        let x1 = px(40.0, s) as i32 + dx as i32;
        match entry.kind {
            LegendKind::Line(c) => {
                let color = palette(c);
                panel
                    .draw(&PathElement::new(
                        vec![(x0, y), (x1, y)],
                        color.stroke_width(px(3.0, s)),
                    ))
                    .map_err(|e| e.to_string())?;
                panel
                    .draw(&Circle::new(((x0 + x1) / 2, y), px(4.5, s), color.filled()))
                    .map_err(|e| e.to_string())?;
            }
            LegendKind::Dashed(k) => {
                let seg = px(7.0, s) as i32;
                let mut x = x0;
                while x < x1 {
                    panel
                        .draw(&PathElement::new(
                            vec![(x, y), ((x + seg).min(x1), y)],
                            reference_color(k).stroke_width(px(2.5, s)),
                        ))
                        .map_err(|e| e.to_string())?;
                    x += 2 * seg;
                }
            }
            LegendKind::Block(c) => {
                let half = px(8.0, s) as i32;
                panel
                    .draw(&Rectangle::new(
                        [(x0 + 6, y - half), (x1 - 6, y + half)],
                        palette(c).filled(),
                    ))
                    .map_err(|e| e.to_string())?;
            }
        }
        panel
            .draw(&Text::new(
                entry.label.clone(),
                (x1 + px(8.0, s) as i32, y),
                font(LEGEND_PX, s).pos(Pos::new(HPos::Left, VPos::Center)),
            ))
            .map_err(|e| e.to_string())?;
    }
    Ok(plot)
}

struct LegendEntry {
    label: String,
    kind: LegendKind,
}

enum LegendKind {
    Line(usize),
    Dashed(usize),
    Block(usize),
}

impl LegendEntry {
    fn line(label: &str, color: usize) -> Self {
        LegendEntry {
            label: label.to_string(),
            kind: LegendKind::Line(color),
        }
    }
    fn dashed(label: &str, k: usize) -> Self {
        LegendEntry {
            label: label.to_string(),
            kind: LegendKind::Dashed(k),
        }
    }
    fn block(label: &str, color: usize) -> Self {
        LegendEntry {
            label: label.to_string(),
            kind: LegendKind::Block(color),
        }
    }
}

/// Logical width of one legend entry: marker + the longest label.
fn legend_entry_width(legend: &[LegendEntry]) -> u32 {
    let longest = legend
        .iter()
        .map(|e| e.label.chars().count())
        .max()
        .unwrap_or(0);
    (66.0 + longest as f64 * LEGEND_PX * 0.57) as u32
}

/// Entries per row when the legend sits below the plot.
fn legend_columns(legend: &[LegendEntry]) -> usize {
    ((f64::from(WIDTH) - 40.0) / f64::from(legend_entry_width(legend)))
        .floor()
        .max(1.0) as usize
}

/// Extra logical (width, height) the legend needs.
fn legend_extent(legend: &[LegendEntry], below: bool) -> (u32, u32) {
    if legend.is_empty() {
        (0, 0)
    } else if below {
        let rows = legend.len().div_ceil(legend_columns(legend));
        (0, (LEGEND_PX * 1.45 * rows as f64 + LEGEND_PX * 0.6) as u32)
    } else {
        (legend_entry_width(legend) + 10, 0)
    }
}

/// One axis' data range, padded, positive when logarithmic.
#[derive(Clone, Copy, Debug)]
struct Span {
    lo: f64,
    hi: f64,
    log: bool,
}

impl Span {
    /// `from_zero`: a linear axis of non-negative data starts at 0 (honest bar/line heights).
    fn fit(values: &[f64], log: bool, from_zero: bool) -> Option<Span> {
        let vals = values
            .iter()
            .copied()
            .filter(|v| v.is_finite() && (!log || *v > 0.0));
        let (mut lo, mut hi) = vals.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
        if !lo.is_finite() || !hi.is_finite() {
            return None;
        }
        if log {
            lo /= 1.3;
            hi *= 1.3;
        } else {
            if from_zero && lo >= 0.0 {
                lo = 0.0;
            }
            let pad = if hi > lo {
                (hi - lo) * 0.05
            } else {
                hi.abs().max(1.0) * 0.5
            };
            if !(from_zero && lo == 0.0) {
                lo -= pad;
            }
            hi += pad;
        }
        Some(Span { lo, hi, log })
    }
}

/// Room left of the plot for the y tick labels (as wide as the longest) and the axis name.
fn y_label_area(y: Span) -> f64 {
    let longest = [y.lo, y.hi, (y.lo + y.hi) / 2.0]
        .iter()
        .map(|v| {
            fmt_num(if y.log {
                10f64.powf(v.log10().floor())
            } else {
                *v
            })
            .len()
        })
        .max()
        .unwrap_or(4)
        .max(3);
    longest as f64 * TICK_PX * 0.62 + DESC_PX * 1.6 + 14.0
}

/// Build a cartesian chart with linear or log axes and run `body` on it; the four combinations
/// share one generic routine.
fn xy_dispatch<F>(plot: &Area, s: f64, axes: &Axes, x: Span, y: Span, body: F) -> Result<(), String>
where
    F: Fn(&mut XyChart<'_, '_>, f64) -> Result<(), String>,
{
    // Boxing the coordinate into one concrete type keeps the drawing code non-generic.
    let xr = AnyAxis::new(x);
    let yr = AnyAxis::new(y);
    let mut chart = ChartBuilder::on(plot)
        .margin(px(12.0, s))
        .margin_right(px(28.0, s))
        .x_label_area_size(px(58.0, s))
        .y_label_area_size(px(y_label_area(y), s))
        .build_cartesian_2d(xr, yr)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_labels(if x.log { 6 } else { 5 })
        .y_labels(if y.log { 12 } else { 7 })
        .x_label_formatter(&|v| fmt_num(*v))
        .y_label_formatter(&|v| fmt_num(*v))
        .x_desc(axes.x_label.as_str())
        .y_desc(axes.y_label.as_str())
        .label_style(font(TICK_PX, s))
        .axis_desc_style(font(DESC_PX, s))
        .light_line_style(BLACK.mix(0.04))
        .bold_line_style(BLACK.mix(0.14))
        .draw()
        .map_err(|e| e.to_string())?;
    body(&mut chart, s)
}

type XyChart<'a, 'b> = ChartContext<'a, DynBackend<'b>, Cartesian2d<AnyAxis, AnyAxis>>;

/// A linear or logarithmic f64 axis behind one type.
enum AnyAxis {
    Linear(RangedCoordf64),
    Log(LogCoord<f64>),
}

impl AnyAxis {
    fn new(span: Span) -> AnyAxis {
        if span.log {
            AnyAxis::Log((span.lo..span.hi).log_scale().into())
        } else {
            AnyAxis::Linear((span.lo..span.hi).into())
        }
    }
}

/// Ticks at 1, 2 and 5 times powers of ten inside `range` (only the powers of ten when that is
/// too many): readable, unambiguous labels on a log axis.
fn log_ticks(range: std::ops::Range<f64>, max: usize) -> Vec<f64> {
    let (lo, hi) = (range.start.min(range.end), range.start.max(range.end));
    if !(lo > 0.0 && hi.is_finite()) {
        return Vec::new();
    }
    let mut nice = Vec::new();
    let mut decade = 10f64.powf(lo.log10().floor());
    while decade <= hi {
        for k in [1.0, 2.0, 5.0] {
            let v = decade * k;
            if v >= lo && v <= hi {
                nice.push(v);
            }
        }
        decade *= 10.0;
    }
    let mantissa = |v: &f64| v / 10f64.powf(v.log10().floor());
    let ones_fives: Vec<f64> = nice
        .iter()
        .copied()
        .filter(|v| (mantissa(v) - 2.0).abs() > 1e-6)
        .collect();
    let decades: Vec<f64> = nice
        .iter()
        .copied()
        .filter(|v| (v.log10() - v.log10().round()).abs() < 1e-9)
        .collect();
    if nice.len() <= max || decades.len() < 2 {
        nice
    } else if ones_fives.len() <= max {
        ones_fives
    } else {
        decades
    }
}

impl Ranged for AnyAxis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        match self {
            AnyAxis::Linear(r) => r.map(value, limit),
            AnyAxis::Log(r) => r.map(value, limit),
        }
    }

    fn key_points<Hint: plotters::coord::ranged1d::KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        match self {
            AnyAxis::Linear(r) => r.key_points(hint),
            // Label only 1, 2 and 5 times a power of ten: readable, unambiguous log ticks.
            AnyAxis::Log(r) => log_ticks(r.range(), hint.max_num_points()),
        }
    }

    fn range(&self) -> std::ops::Range<f64> {
        match self {
            AnyAxis::Linear(r) => r.range(),
            AnyAxis::Log(r) => r.range(),
        }
    }
}

fn draw_line(
    chart: &mut XyChart<'_, '_>,
    points: &[(f64, f64)],
    i: usize,
    s: f64,
) -> Result<(), String> {
    let color = palette(i);
    chart
        .draw_series(LineSeries::new(
            points.iter().copied(),
            color.stroke_width(px(3.0, s)),
        ))
        .map_err(|e| e.to_string())?;
    if points.len() <= 40 {
        chart
            .draw_series(
                points
                    .iter()
                    .map(|&p| Circle::new(p, px(5.0, s), color.filled())),
            )
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn draw_dashed(
    chart: &mut XyChart<'_, '_>,
    points: &[(f64, f64)],
    k: usize,
    s: f64,
) -> Result<(), String> {
    chart
        .draw_series(DashedLineSeries::new(
            points.iter().copied(),
            px(10.0, s),
            px(7.0, s),
            reference_color(k).stroke_width(px(2.5, s)),
        ))
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// Plain, short tick labels: 5000, 0.25, 1.5k is avoided (units live in the axis name).
pub fn fmt_num(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let a = v.abs();
    if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        trim(format!("{v:.1}"))
    } else if a >= 1.0 {
        trim(format!("{v:.2}"))
    } else {
        trim(format!("{v:.3}"))
    }
}

fn trim(s: String) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

// ---------------------------------------------------------------------------------------------
// The two backends behind one DrawingBackend.

#[derive(Debug)]
struct BackendFailure(String);

impl std::fmt::Display for BackendFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BackendFailure {}

fn wrap<E: std::error::Error + Send + Sync>(
    r: Result<(), DrawingErrorKind<E>>,
) -> Result<(), DrawingErrorKind<BackendFailure>> {
    r.map_err(|e| match e {
        DrawingErrorKind::DrawingError(e) => {
            DrawingErrorKind::DrawingError(BackendFailure(e.to_string()))
        }
        DrawingErrorKind::FontError(f) => DrawingErrorKind::FontError(f),
    })
}

macro_rules! both {
    ($self:ident, $b:ident => $e:expr) => {
        match $self {
            DynBackend::Bitmap($b) => wrap($e),
            DynBackend::Svg($b) => wrap($e),
        }
    };
}

impl DrawingBackend for DynBackend<'_> {
    type ErrorType = BackendFailure;

    fn get_size(&self) -> (u32, u32) {
        match self {
            DynBackend::Bitmap(b) => b.get_size(),
            DynBackend::Svg(b) => b.get_size(),
        }
    }
    fn ensure_prepared(&mut self) -> Result<(), DrawingErrorKind<BackendFailure>> {
        both!(self, b => b.ensure_prepared())
    }
    fn present(&mut self) -> Result<(), DrawingErrorKind<BackendFailure>> {
        both!(self, b => b.present())
    }
    fn draw_pixel(
        &mut self,
        point: BackendCoord,
        color: BackendColor,
    ) -> Result<(), DrawingErrorKind<BackendFailure>> {
        both!(self, b => b.draw_pixel(point, color))
    }
    fn draw_line<S: plotters_backend::BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Result<(), DrawingErrorKind<BackendFailure>> {
        both!(self, b => b.draw_line(from, to, style))
    }
    fn draw_rect<S: plotters_backend::BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<BackendFailure>> {
        both!(self, b => b.draw_rect(upper_left, bottom_right, style, fill))
    }
    fn draw_path<S: plotters_backend::BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<BackendFailure>> {
        both!(self, b => b.draw_path(path, style))
    }
    fn draw_circle<S: plotters_backend::BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<BackendFailure>> {
        both!(self, b => b.draw_circle(center, radius, style, fill))
    }
    fn fill_polygon<S: plotters_backend::BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<BackendFailure>> {
        both!(self, b => b.fill_polygon(vert, style))
    }
    fn draw_text<TStyle: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &TStyle,
        pos: BackendCoord,
    ) -> Result<(), DrawingErrorKind<BackendFailure>> {
        both!(self, b => b.draw_text(text, style, pos))
    }
    fn estimate_text_size<TStyle: BackendTextStyle>(
        &self,
        text: &str,
        style: &TStyle,
    ) -> Result<(u32, u32), DrawingErrorKind<BackendFailure>> {
        match self {
            DynBackend::Bitmap(b) => b.estimate_text_size(text, style).map_err(|e| match e {
                DrawingErrorKind::DrawingError(e) => {
                    DrawingErrorKind::DrawingError(BackendFailure(e.to_string()))
                }
                DrawingErrorKind::FontError(f) => DrawingErrorKind::FontError(f),
            }),
            DynBackend::Svg(b) => b.estimate_text_size(text, style).map_err(|e| match e {
                DrawingErrorKind::DrawingError(e) => {
                    DrawingErrorKind::DrawingError(BackendFailure(e.to_string()))
                }
                DrawingErrorKind::FontError(f) => DrawingErrorKind::FontError(f),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A temporary folder per test, removed when the guard drops.
    struct TmpDir(PathBuf);

    impl TmpDir {
        fn new(test: &str) -> TmpDir {
            TmpDir(std::env::temp_dir().join(format!("cmdunit-plot-{}-{test}", std::process::id())))
        }
        fn join(&self, name: &str) -> PathBuf {
            self.0.join(name)
        }
    }

    impl Drop for TmpDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn non_empty(stem: &Path) {
        for ext in ["png", "svg"] {
            let p = with_ext(stem, ext);
            let len = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
            assert!(len > 1000, "{} is {len} bytes", p.display());
        }
    }

    #[test]
    fn embedded_fonts_are_valid() {
        assert!(ab_glyph_ok(FONT_REGULAR));
        assert!(ab_glyph_ok(FONT_BOLD));
    }

    fn ab_glyph_ok(bytes: &'static [u8]) -> bool {
        plotters::style::register_font("test-font", FontStyle::Normal, bytes).is_ok()
    }

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
        non_empty(&stem);
        let svg = std::fs::read_to_string(with_ext(&stem, "svg")).unwrap();
        assert!(svg.contains("lower bound") && svg.contains("makespan (ms)"));
    }

    #[test]
    fn bar_stacked_and_cdf_charts_are_written() {
        let dir = TmpDir::new("bars");
        let tmp = |name: &str| dir.join(name);
        let axes = Axes {
            title: "Requests per machine".into(),
            x_label: "machine".into(),
            y_label: "requests".into(),
            ..Axes::default()
        };
        let bars: Vec<(String, f64)> = ["asia/0", "asia/1", "emea/0", "us/0", "us/1"]
            .iter()
            .enumerate()
            .map(|(i, m)| (m.to_string(), 100.0 + i as f64 * 50.0))
            .collect();
        let stem = tmp("bars");
        bar_chart(&stem, &axes, &bars).unwrap();
        non_empty(&stem);

        let stem = tmp("stacked");
        let cats = vec!["random".to_string(), "per-region-queues".to_string()];
        let layers = vec![
            ("asia/0".to_string(), vec![200.0, 150.0]),
            ("emea/0".to_string(), vec![200.0, 300.0]),
        ];
        stacked_bar_chart(&stem, &axes, &cats, &layers, true).unwrap();
        non_empty(&stem);

        let stem = tmp("grouped");
        let groups = vec![
            ("default".to_string(), vec![900.0, 800.0]),
            ("slow machine".to_string(), vec![1900.0, f64::NAN]),
        ];
        grouped_bar_chart(&stem, &axes, &cats, &groups, true).unwrap();
        non_empty(&stem);

        let stem = tmp("cdf");
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
        cdf_chart(&stem, &axes, &samples).unwrap();
        non_empty(&stem);
    }

    #[test]
    fn no_data_is_an_error_not_a_panic() {
        let dir = TmpDir::new("none");
        let tmp = |name: &str| dir.join(name);
        let axes = Axes::default();
        assert!(matches!(
            line_chart(&tmp("none"), &axes, &[]),
            Err(PlotError::Empty { .. })
        ));
        assert!(bar_chart(&tmp("none2"), &axes, &[]).is_err());
        assert!(cdf_chart(&tmp("none3"), &axes, &[("x".into(), vec![])]).is_err());
    }

    #[test]
    fn cdf_points_end_at_one_and_are_thinned() {
        let v: Vec<f64> = (0..10_000).map(f64::from).collect();
        let p = cdf_points(&v, 100);
        assert!(p.len() <= 102);
        assert_eq!(p.last().unwrap(), &(9999.0, 1.0));
        assert!(p.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1));
    }

    #[test]
    fn tick_labels_are_short() {
        assert_eq!(fmt_num(5000.0), "5000");
        assert_eq!(fmt_num(0.5), "0.5");
        assert_eq!(fmt_num(12.25), "12.2");
    }
}
