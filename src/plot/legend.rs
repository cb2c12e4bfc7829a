//! The frame around every plot: the title on top and the legend in a panel of its own, right of
//! the plot or in rows under it, so a legend never hides data. Under the plot suits charts printed
//! two to a row (the report): the chart stays narrow and its type large.

use super::backend::{render, Area, Drawn};
use super::style::{font, palette, px, reference_color, LEGEND_PX, TITLE_PX, WIDTH};
use super::{PlotError, Series};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;

/// One legend entry: its label and the mark drawn before it.
pub(super) struct LegendEntry {
    label: String,
    kind: LegendKind,
}

enum LegendKind {
    /// A data line with a point marker, palette colour `i`.
    Line(usize),
    /// A dashed reference curve, reference colour `k`.
    Dashed(usize),
    /// A filled block (bars), palette colour `i`.
    Block(usize),
}

/// A chart's legend and where it sits.
pub(super) struct Legend {
    pub entries: Vec<LegendEntry>,
    pub below: bool,
}

impl Legend {
    pub fn new(below: bool) -> Legend {
        Legend {
            entries: Vec::new(),
            below,
        }
    }

    /// One line entry per series, in palette order.
    pub fn lines(mut self, series: &[Series]) -> Legend {
        self.entries
            .extend(series.iter().enumerate().map(|(i, s)| LegendEntry {
                label: s.label.clone(),
                kind: LegendKind::Line(i),
            }));
        self
    }

    /// One dashed entry per reference curve.
    pub fn dashed(mut self, references: &[Series]) -> Legend {
        self.entries
            .extend(references.iter().enumerate().map(|(k, r)| LegendEntry {
                label: r.label.clone(),
                kind: LegendKind::Dashed(k),
            }));
        self
    }

    /// One block entry per named layer (bars), in palette order.
    pub fn blocks<T>(mut self, layers: &[(String, T)]) -> Legend {
        self.entries
            .extend(layers.iter().enumerate().map(|(i, (l, _))| LegendEntry {
                label: l.clone(),
                kind: LegendKind::Block(i),
            }));
        self
    }

    /// Logical width of one entry: marker + the longest label.
    fn entry_width(&self) -> u32 {
        let longest = super::style::longest(self.entries.iter().map(|e| e.label.as_str()), 0);
        (66.0 + longest as f64 * LEGEND_PX * 0.57) as u32
    }

    /// Entries per row when the legend sits below the plot.
    fn columns(&self) -> usize {
        ((f64::from(WIDTH) - 40.0) / f64::from(self.entry_width()))
            .floor()
            .max(1.0) as usize
    }

    /// Extra logical (width, height) the legend needs beside or under the plot.
    fn extent(&self) -> (u32, u32) {
        if self.entries.is_empty() {
            (0, 0)
        } else if self.below {
            let rows = self.entries.len().div_ceil(self.columns());
            (0, (LEGEND_PX * 1.45 * rows as f64 + LEGEND_PX * 0.6) as u32)
        } else {
            (self.entry_width() + 10, 0)
        }
    }

    /// Draw the legend into `body` and return what is left for the plot.
    fn draw<'a>(&self, body: Area<'a>, s: f64) -> Drawn<Area<'a>> {
        if self.entries.is_empty() {
            return Ok(body);
        }
        let (body_w, body_h) = body.dim_in_pixel();
        let (ew, eh) = self.extent();
        let row = LEGEND_PX * 1.45 * s;
        let (plot, panel, cols, y0) = if self.below {
            let (plot, panel) = body.split_vertically(body_h.saturating_sub(px(f64::from(eh), s)));
            (plot, panel, self.columns(), row * 0.6)
        } else {
            let (plot, panel) =
                body.split_horizontally(body_w.saturating_sub(px(f64::from(ew), s)));
            (plot, panel, 1, (f64::from(body_h) * 0.08).max(row))
        };
        let cell_w = f64::from(self.entry_width()) * s;
        for (i, entry) in self.entries.iter().enumerate() {
            let (c, r) = (i % cols, i / cols);
            let y = (y0 + row * r as f64) as i32;
            let dx = if self.below { px(30.0, s) as f64 } else { 0.0 } + cell_w * c as f64;
            let x0 = px(6.0, s) as i32 + dx as i32;
            let x1 = px(40.0, s) as i32 + dx as i32;
            entry.mark(&panel, (x0, x1), y, s)?;
            panel.draw(&Text::new(
                entry.label.clone(),
                (x1 + px(8.0, s) as i32, y),
                font(LEGEND_PX, s).pos(Pos::new(HPos::Left, VPos::Center)),
            ))?;
        }
        Ok(plot)
    }
}

impl LegendEntry {
    /// The entry's mark between `x0` and `x1` at height `y`.
    fn mark(&self, panel: &Area, (x0, x1): (i32, i32), y: i32, s: f64) -> Drawn {
        match self.kind {
            LegendKind::Line(c) => {
                let color = palette(c);
                panel.draw(&PathElement::new(
                    vec![(x0, y), (x1, y)],
                    color.stroke_width(px(3.0, s)),
                ))?;
                panel.draw(&Circle::new(((x0 + x1) / 2, y), px(4.5, s), color.filled()))
            }
            LegendKind::Dashed(k) => {
                let seg = px(7.0, s) as i32;
                let mut x = x0;
                while x < x1 {
                    panel.draw(&PathElement::new(
                        vec![(x, y), ((x + seg).min(x1), y)],
                        reference_color(k).stroke_width(px(2.5, s)),
                    ))?;
                    x += 2 * seg;
                }
                Ok(())
            }
            LegendKind::Block(c) => {
                let half = px(8.0, s) as i32;
                panel.draw(&Rectangle::new(
                    [(x0 + 6, y - half), (x1 - 6, y + half)],
                    palette(c).filled(),
                ))
            }
        }
    }
}

/// Render a chart with its title and legend: `body(plot, root, scale)` draws the data into the
/// area left for the plot (`root` is the whole canvas, for text placed by backend coordinates).
pub(super) fn framed(
    stem: &Path,
    title: &str,
    legend: &Legend,
    body: &dyn Fn(&Area, &Area, f64) -> Drawn,
) -> Result<(), PlotError> {
    render(stem, legend.extent(), &|root, s| {
        let title_h = if title.is_empty() {
            px(8.0, s)
        } else {
            px(TITLE_PX * 1.7, s)
        };
        let (top, rest) = root.split_vertically(title_h);
        if !title.is_empty() {
            top.draw(&Text::new(
                title.to_string(),
                (px(16.0, s) as i32, px(10.0, s) as i32),
                ("sans-serif", TITLE_PX * s, FontStyle::Bold)
                    .into_font()
                    .color(&BLACK),
            ))?;
        }
        let plot = legend.draw(rest, s)?;
        body(&plot, root, s)
    })
}
