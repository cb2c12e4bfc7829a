//! Sizes, colours and type shared by every chart. Sizes are chosen for print: a chart is usually
//! shown about 85 mm wide in the report, so tick labels are ~3% of the chart width (≈ 7 pt on
//! paper). Every size is in logical (SVG) units and goes through [`px`] with the backend's scale,
//! so the PNG (drawn at twice the size) and the SVG match.

use plotters::prelude::*;

/// Logical canvas of the plot panel (SVG units); the PNG is drawn at [`PNG_SCALE`] times this.
pub(super) const WIDTH: u32 = 640;
pub(super) const HEIGHT: u32 = 370;
pub(super) const PNG_SCALE: f64 = 2.0;
pub(super) const TITLE_PX: f64 = 27.0;
pub(super) const DESC_PX: f64 = 24.0;
pub(super) const TICK_PX: f64 = 22.0;
pub(super) const LEGEND_PX: f64 = 21.0;
/// Rough advance of one character of tick-label text, in units of its font size: enough to size
/// label areas without measuring every string.
pub(super) const CHAR_W: f64 = 0.62;

/// Colour-blind-safe (Okabe–Ito) first, then distinct extras for up to 12 series.
pub(super) fn palette(i: usize) -> RGBColor {
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
pub(super) fn reference_color(k: usize) -> RGBColor {
    [
        RGBColor(50, 50, 50),
        RGBColor(190, 60, 60),
        RGBColor(150, 150, 150),
    ][k % 3]
}

/// A logical size in device pixels at scale `s` (at least one pixel).
pub(super) fn px(v: f64, s: f64) -> u32 {
    (v * s).round().max(1.0) as u32
}

/// Black text of `size` logical units in the embedded sans-serif family.
pub(super) fn font(size: f64, s: f64) -> TextStyle<'static> {
    ("sans-serif", size * s).into_font().color(&BLACK)
}

/// Width of the longest of `labels` in characters (`default` when there are none).
pub(super) fn longest<'a>(labels: impl IntoIterator<Item = &'a str>, default: usize) -> usize {
    labels
        .into_iter()
        .map(|l| l.chars().count())
        .max()
        .unwrap_or(default)
}
