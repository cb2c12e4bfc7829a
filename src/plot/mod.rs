//! Charts for runs, `cmdunit limits` and `cmdunit report`: one file per chart kind, on one shared
//! frame, style and output.
//!
//! - [`lines`]: line charts with spread bands and dashed reference curves;
//! - [`cdf`]: empirical CDFs;
//! - [`bars`]: vertical bars, and horizontal stacked or grouped bars;
//! - [`legend`]: the title and the legend panel around every plot;
//! - [`axes`]: fitted ranges, linear/log axes with readable log ticks, the shared grid;
//! - [`format`]: tick and value labels;
//! - [`style`]: sizes, palette and type;
//! - [`backend`]: PNG + SVG from one drawing routine, with the embedded font.
//!
//! Why a chart looks the way it does: every chart is written as PNG (browsing a run folder) and
//! SVG (the PDF report, sharp in print) from the same routine; legends sit in their own panel so
//! they never hide data; a policy keeps its palette colour across charts when callers pass series
//! in the same order; log axes are labelled with plain numbers at 1, 2 and 5 times powers of ten.

mod axes;
mod backend;
mod bars;
mod cdf;
mod format;
mod legend;
mod lines;
mod style;

pub use backend::{FONT_BOLD, FONT_REGULAR};
pub use bars::{bar_chart, grouped_bar_chart, stacked_bar_chart};
pub use cdf::{cdf_chart, cdf_chart_with, cdf_points};
pub use format::fmt_num;
pub use lines::{line_chart, line_chart_with};

use std::path::Path;

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

fn empty(stem: &Path) -> PlotError {
    PlotError::Empty {
        path: stem.display().to_string(),
    }
}

#[cfg(test)]
mod testutil {
    use std::path::{Path, PathBuf};

    /// A temporary folder per test, removed when the guard drops.
    pub struct TmpDir(PathBuf);

    impl TmpDir {
        pub fn new(test: &str) -> TmpDir {
            TmpDir(std::env::temp_dir().join(format!("cmdunit-plot-{}-{test}", std::process::id())))
        }
        pub fn join(&self, name: &str) -> PathBuf {
            self.0.join(name)
        }
    }

    impl Drop for TmpDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// Both files of `stem` exist with content; returns the SVG's text.
    pub fn non_empty(stem: &Path) -> String {
        for ext in ["png", "svg"] {
            let p = super::backend::with_ext(stem, ext);
            let len = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
            assert!(len > 1000, "{} is {len} bytes", p.display());
        }
        std::fs::read_to_string(super::backend::with_ext(stem, "svg")).unwrap_or_default()
    }
}
