//! Axes: fitting a range to the data, linear or logarithmic coordinates behind one type, and the
//! grid every chart shares.
//!
//! Log axes use plotters' log coordinates but are labelled only at 1, 2 and 5 times a power of ten
//! (just the powers of ten when those are too many), with plain numbers: a reader sees "200",
//! "500", "1000" rather than plotters' default ticks or exponents.

use super::backend::{Area, Drawn, DynBackend};
use super::format::fmt_num;
use super::style::{font, longest, px, CHAR_W, DESC_PX, TICK_PX};
use super::Axes;
use plotters::chart::MeshStyle;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

/// One axis' data range, padded, positive when logarithmic.
#[derive(Clone, Copy, Debug)]
pub(super) struct Span {
    pub lo: f64,
    pub hi: f64,
    pub log: bool,
}

impl Span {
    /// The range of the finite `values` (positive ones on a log axis), padded; `None` when there
    /// is none. `from_zero`: a linear axis of non-negative data starts at 0 (honest heights).
    pub fn fit(values: &[f64], log: bool, from_zero: bool) -> Option<Span> {
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

    /// The fraction axis of a CDF: 0 to 1, linear.
    pub fn unit() -> Span {
        Span {
            lo: 0.0,
            hi: 1.0,
            log: false,
        }
    }
}

/// Room left of the plot for the y tick labels (as wide as the longest) and the axis name.
fn y_label_area(y: Span) -> f64 {
    let labels = [y.lo, y.hi, (y.lo + y.hi) / 2.0].map(|v| {
        fmt_num(if y.log {
            10f64.powf(v.log10().floor())
        } else {
            v
        })
    });
    let widest = longest(labels.iter().map(String::as_str), 4).max(3);
    widest as f64 * TICK_PX * CHAR_W + DESC_PX * 1.6 + 14.0
}

/// How faint a chart's grid is.
#[derive(Clone, Copy)]
pub(super) enum Grid {
    /// x–y charts: a faint fine grid under a light coarse one.
    Fine,
    /// Bar charts: only the coarse grid, lighter (the bars carry the reading).
    Coarse,
}

/// The mesh settings every chart shares: label and axis-name type, grid shades.
pub(super) fn style_mesh<'m, 'a, 'b, 'c, X: Ranged, Y: Ranged>(
    mesh: &'m mut MeshStyle<'a, 'b, X, Y, DynBackend<'c>>,
    s: f64,
    grid: Grid,
) -> &'m mut MeshStyle<'a, 'b, X, Y, DynBackend<'c>> {
    let (light, bold) = match grid {
        Grid::Fine => (BLACK.mix(0.04), BLACK.mix(0.14)),
        Grid::Coarse => (WHITE.mix(0.0), BLACK.mix(0.12)),
    };
    mesh.label_style(font(TICK_PX, s))
        .axis_desc_style(font(DESC_PX, s))
        .light_line_style(light)
        .bold_line_style(bold)
}

/// A chart with f64 axes, linear or logarithmic on either.
pub(super) type XyChart<'a, 'b> = ChartContext<'a, DynBackend<'b>, Cartesian2d<AnyAxis, AnyAxis>>;

/// Build an x–y chart on `plot` with its mesh drawn, and run `body` on it.
pub(super) fn xy_chart(
    plot: &Area,
    s: f64,
    axes: &Axes,
    (x, y): (Span, Span),
    body: &dyn Fn(&mut XyChart<'_, '_>) -> Drawn,
) -> Drawn {
    let mut chart = ChartBuilder::on(plot)
        .margin(px(12.0, s))
        .margin_right(px(28.0, s))
        .x_label_area_size(px(58.0, s))
        .y_label_area_size(px(y_label_area(y), s))
        .build_cartesian_2d(AnyAxis::new(x), AnyAxis::new(y))?;
    style_mesh(&mut chart.configure_mesh(), s, Grid::Fine)
        .x_labels(if x.log { 6 } else { 5 })
        .y_labels(if y.log { 12 } else { 7 })
        .x_label_formatter(&|v| fmt_num(*v))
        .y_label_formatter(&|v| fmt_num(*v))
        .x_desc(axes.x_label.as_str())
        .y_desc(axes.y_label.as_str())
        .draw()?;
    body(&mut chart)
}

/// A linear or logarithmic f64 axis behind one type, so the four combinations of axes share one
/// chart type and the drawing code stays non-generic.
pub(super) enum AnyAxis {
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

impl Ranged for AnyAxis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        match self {
            AnyAxis::Linear(r) => r.map(value, limit),
            AnyAxis::Log(r) => r.map(value, limit),
        }
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        match self {
            AnyAxis::Linear(r) => r.key_points(hint),
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

/// Ticks at 1, 2 and 5 times powers of ten inside `range`; at most `max` of them by dropping the
/// 2s, then keeping only the powers of ten (as long as two of those remain).
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_ticks_thin_to_powers_of_ten_when_crowded() {
        assert_eq!(
            log_ticks(1.0..100.0, 12),
            vec![1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0]
        );
        assert_eq!(log_ticks(1.0..100.0, 5), vec![1.0, 5.0, 10.0, 50.0, 100.0]);
        assert_eq!(log_ticks(1.0..100.0, 3), vec![1.0, 10.0, 100.0]);
        assert!(log_ticks(0.0..10.0, 5).is_empty());
    }

    #[test]
    fn linear_spans_of_non_negative_data_start_at_zero() {
        let s = Span::fit(&[5.0, 10.0], false, true).unwrap();
        assert_eq!(s.lo, 0.0);
        assert!(s.hi > 10.0);
        let l = Span::fit(&[-1.0, 10.0, 100.0], true, false).unwrap();
        assert!(l.lo > 0.0 && l.lo < 10.0 && l.hi > 100.0);
        assert!(Span::fit(&[f64::NAN], false, true).is_none());
    }
}
