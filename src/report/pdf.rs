//! A4 pages from the report's blocks, made by the binary itself: each page is composed as one SVG
//! (text wrapped with the embedded font's own advances, charts nested as their SVG files) and
//! turned into a PDF page by krilla-svg. Why this way: the charts stay vector (sharp in print),
//! there is one font (DejaVu Sans, embedded in the binary and in the PDF), and no system tool.
//! usvg draws nothing for text whose font it cannot find, silently; the font database is filled
//! from the embedded bytes and `sans-serif` mapped to it, and a test reads the PDF's text back.

use super::doc::Block;
use crate::plot::{FONT_BOLD, FONT_REGULAR};
use ab_glyph::{Font, FontRef};
use std::fmt::Write;
use std::path::Path;

pub const PAGE_W: f64 = 595.0;
pub const PAGE_H: f64 = 842.0;
const MARGIN_X: f64 = 40.0;
const MARGIN_TOP: f64 = 34.0;
const MARGIN_BOTTOM: f64 = 36.0;
const GAP: f64 = 14.0;
const BODY: f64 = 8.6;
const SMALL: f64 = 7.7;
const CAPTION: f64 = 7.4;
const FAMILY: &str = "DejaVu Sans";

#[derive(Debug, thiserror::Error)]
pub enum PdfError {
    #[error("cannot read chart {path}: {source}")]
    Chart {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot lay out page {page}: {message}")]
    Svg { page: usize, message: String },
    #[error("cannot write the PDF: {0}")]
    Pdf(String),
}

/// Measures text with the embedded font.
struct Metrics {
    regular: FontRef<'static>,
    bold: FontRef<'static>,
}

impl Metrics {
    fn new() -> Option<Metrics> {
        Some(Metrics {
            regular: FontRef::try_from_slice(FONT_REGULAR).ok()?,
            bold: FontRef::try_from_slice(FONT_BOLD).ok()?,
        })
    }

    fn width(&self, text: &str, size: f64, bold: bool) -> f64 {
        let f = if bold { &self.bold } else { &self.regular };
        let upem = f64::from(f.units_per_em().unwrap_or(2048.0));
        text.chars()
            .map(|c| f64::from(f.h_advance_unscaled(f.glyph_id(c))))
            .sum::<f64>()
            * size
            / upem
    }

    /// Greedy word wrap to `width`.
    fn wrap(&self, text: &str, size: f64, bold: bool, width: f64) -> Vec<String> {
        let mut lines = Vec::new();
        let mut line = String::new();
        for word in text.split_whitespace() {
            let candidate = if line.is_empty() {
                word.to_string()
            } else {
                format!("{line} {word}")
            };
            if self.width(&candidate, size, bold) <= width || line.is_empty() {
                line = candidate;
            } else {
                lines.push(std::mem::take(&mut line));
                line = word.to_string();
            }
        }
        if !line.is_empty() {
            lines.push(line);
        }
        lines
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Pages being filled top to bottom.
struct Layout<'a> {
    m: Metrics,
    charts_dir: &'a Path,
    pages: Vec<String>,
    cur: String,
    y: f64,
}

impl<'a> Layout<'a> {
    fn room(&self) -> f64 {
        PAGE_H - MARGIN_BOTTOM - self.y
    }

    fn new_page(&mut self) {
        if !self.cur.is_empty() || self.y > MARGIN_TOP {
            self.pages.push(std::mem::take(&mut self.cur));
        }
        self.y = MARGIN_TOP;
    }

    fn ensure(&mut self, h: f64) {
        if h > self.room() && self.y > MARGIN_TOP + 1.0 {
            self.new_page();
        }
    }

    fn text_line(&mut self, x: f64, baseline: f64, text: &str, size: f64, bold: bool) {
        let _ = writeln!(
            self.cur,
            r#"<text x="{x:.2}" y="{baseline:.2}" font-family="{FAMILY}" font-size="{size}"{}>{}</text>"#,
            if bold { r#" font-weight="bold""# } else { "" },
            esc(text)
        );
    }

    /// A wrapped paragraph at `x` within `width`; returns its height.
    fn para_at(&mut self, x: f64, y: f64, width: f64, text: &str, size: f64, bold: bool) -> f64 {
        let lh = size * 1.32;
        let lines = self.m.wrap(text, size, bold, width);
        for (i, l) in lines.iter().enumerate() {
            self.text_line(x, y + size + lh * i as f64, l, size, bold);
        }
        lh * lines.len() as f64
    }

    fn para(&mut self, text: &str, size: f64, bold: bool, after: f64) {
        let width = PAGE_W - 2.0 * MARGIN_X;
        let h = size * 1.32 * self.m.wrap(text, size, bold, width).len() as f64;
        self.ensure(h);
        let y = self.y;
        self.para_at(MARGIN_X, y, width, text, size, bold);
        self.y += h + after;
    }

    /// "**Question** answer" with a bold lead-in, wrapped together.
    fn answer(&mut self, index: usize, q: &str, a: &str) {
        let width = PAGE_W - 2.0 * MARGIN_X - 12.0;
        let lead = format!("{q} ");
        // Lay the bold question on its own run, then the answer after it, wrapping as one text.
        let words: Vec<(String, bool)> = lead
            .split_whitespace()
            .map(|w| (w.to_string(), true))
            .chain(a.split_whitespace().map(|w| (w.to_string(), false)))
            .collect();
        let size = SMALL;
        let lh = size * 1.3;
        let mut lines: Vec<Vec<(String, bool)>> = vec![Vec::new()];
        let mut w_line = 0.0;
        let space = self.m.width(" ", size, false);
        for (w, b) in words {
            let ww = self.m.width(&w, size, b);
            let started = lines.last().is_some_and(|l| !l.is_empty());
            if started && w_line + space + ww > width {
                lines.push(Vec::new());
                w_line = 0.0;
            }
            if let Some(l) = lines.last_mut() {
                if !l.is_empty() {
                    w_line += space;
                }
                l.push((w, b));
            }
            w_line += ww;
        }
        let h = lh * lines.len() as f64 + 2.5;
        self.ensure(h);
        self.text_line(MARGIN_X, self.y + size, &format!("{index}."), size, true);
        for (i, l) in lines.iter().enumerate() {
            let baseline = self.y + size + lh * i as f64;
            let mut x = MARGIN_X + 12.0;
            for (w, b) in l {
                self.text_line(x, baseline, w, size, *b);
                x += self.m.width(w, size, *b) + space;
            }
        }
        self.y += h;
    }

    fn charts(&mut self, charts: &[super::charts::Chart]) -> Result<(), PdfError> {
        let col = (PAGE_W - 2.0 * MARGIN_X - GAP) / 2.0;
        for row in charts.chunks(2) {
            let mut cells = Vec::new();
            let mut row_h: f64 = 0.0;
            for c in row {
                let path = self.charts_dir.join(format!("{}.svg", c.stem));
                let svg = std::fs::read_to_string(&path).map_err(|source| PdfError::Chart {
                    path: path.display().to_string(),
                    source,
                })?;
                let (w, h) = svg_size(&svg).unwrap_or((640.0, 420.0));
                let ch = col * h / w;
                let cap_lines = self.m.wrap(&c.takeaway, CAPTION, false, col).len() as f64;
                let cell_h = ch + 3.0 + cap_lines * CAPTION * 1.3;
                row_h = row_h.max(cell_h);
                cells.push((svg, w, h, ch, c.takeaway.clone()));
            }
            self.ensure(row_h + 8.0);
            let y = self.y;
            for (i, (svg, w, h, ch, takeaway)) in cells.into_iter().enumerate() {
                let x = MARGIN_X + i as f64 * (col + GAP);
                let _ = writeln!(
                    self.cur,
                    r#"<svg x="{x:.2}" y="{y:.2}" width="{col:.2}" height="{ch:.2}" viewBox="0 0 {w} {h}">{}</svg>"#,
                    svg_body(&svg)
                );
                self.para_at(x, y + ch + 1.0, col, &takeaway, CAPTION, false);
            }
            self.y += row_h + 8.0;
        }
        Ok(())
    }

    fn table(&mut self, rows: &[Vec<String>]) {
        let cols = rows.first().map_or(0, |r| r.len());
        if cols == 0 {
            return;
        }
        let width = PAGE_W - 2.0 * MARGIN_X;
        // Column widths from their widest cell; a table too wide gets smaller type, never
        // overlapping columns.
        let widths_at = |size: f64| -> Vec<f64> {
            (0..cols)
                .map(|c| {
                    rows.iter()
                        .map(|r| self.m.width(r.get(c).map_or("", |s| s), size, true))
                        .fold(10.0, f64::max)
                })
                .collect()
        };
        let natural: f64 = widths_at(SMALL).iter().sum::<f64>() + 8.0 * cols as f64;
        let size = if natural > width {
            SMALL * (width - 8.0 * cols as f64) / (natural - 8.0 * cols as f64)
        } else {
            SMALL
        };
        let widths = widths_at(size);
        let scale = 1.0;
        let lh = size * 1.45;
        self.ensure(lh * rows.len() as f64 + 4.0);
        let mut y = self.y;
        for (ri, r) in rows.iter().enumerate() {
            let mut x = MARGIN_X;
            for (c, cell) in r.iter().enumerate() {
                self.text_line(x, y + size, cell, size, ri == 0);
                x += (widths[c] + 8.0) * scale;
            }
            if ri == 0 {
                let _ = writeln!(
                    self.cur,
                    r##"<line x1="{MARGIN_X}" y1="{:.2}" x2="{:.2}" y2="{:.2}" stroke="#444" stroke-width="0.6"/>"##,
                    y + lh - 1.5,
                    MARGIN_X + width,
                    y + lh - 1.5
                );
            }
            y += lh;
        }
        self.y = y + 6.0;
    }
}

/// The width and height of an SVG's root element.
fn svg_size(svg: &str) -> Option<(f64, f64)> {
    let start = svg.find("<svg")?;
    let tag = &svg[start..start + svg[start..].find('>')?];
    let attr = |name: &str| -> Option<f64> {
        let i = tag.find(&format!(" {name}=\""))? + name.len() + 3;
        tag[i..i + tag[i..].find('"')?].parse().ok()
    };
    Some((attr("width")?, attr("height")?))
}

/// What is inside the SVG's root element.
fn svg_body(svg: &str) -> &str {
    let start = svg
        .find("<svg")
        .and_then(|s| svg[s..].find('>').map(|e| s + e + 1));
    let end = svg.rfind("</svg>");
    match (start, end) {
        (Some(s), Some(e)) if s <= e => &svg[s..e],
        _ => "",
    }
}

/// Lay the blocks out on A4 pages; returns one SVG document per page.
pub fn pages(blocks: &[Block], charts_dir: &Path, footer: &str) -> Result<Vec<String>, PdfError> {
    let m = Metrics::new().ok_or_else(|| PdfError::Pdf("embedded font unreadable".into()))?;
    let mut l = Layout {
        m,
        charts_dir,
        pages: Vec::new(),
        cur: String::new(),
        y: MARGIN_TOP,
    };
    for b in blocks {
        match b {
            Block::Title(t) => l.para(t, 15.5, true, 6.0),
            Block::Heading(t) => {
                l.ensure(60.0);
                l.y += 2.0;
                l.para(t, 11.5, true, 4.0)
            }
            Block::Para(t) => l.para(t, BODY, false, 5.0),
            Block::Small(t) => l.para(t, SMALL, false, 4.0),
            Block::Answers(qa) => {
                for (i, (q, a)) in qa.iter().enumerate() {
                    l.answer(i + 1, q, a);
                }
                l.y += 4.0;
            }
            Block::Charts { charts, print } => {
                if *print {
                    l.charts(charts)?;
                }
            }
            Block::Table(rows) => l.table(rows),
            Block::PageBreak => l.new_page(),
            Block::MarkdownOnly(_) => {}
        }
    }
    l.new_page();
    let total = l.pages.len();
    Ok(l
        .pages
        .iter()
        .enumerate()
        .map(|(i, body)| {
            let mut page = format!(
                r#"<svg xmlns="http://www.w3.org/2000/svg" width="{PAGE_W}" height="{PAGE_H}" viewBox="0 0 {PAGE_W} {PAGE_H}"><rect width="100%" height="100%" fill="white"/>"#
            );
            page.push_str(body);
            let _ = write!(
                page,
                r##"<text x="{MARGIN_X}" y="{:.1}" font-family="{FAMILY}" font-size="6.8" fill="#555">{}</text><text x="{:.1}" y="{:.1}" font-family="{FAMILY}" font-size="6.8" fill="#555" text-anchor="end">page {} of {total}</text></svg>"##,
                PAGE_H - 18.0,
                esc(footer),
                PAGE_W - MARGIN_X,
                PAGE_H - 18.0,
                i + 1
            );
            page
        })
        .collect())
}

/// The font database usvg resolves every family with: the embedded DejaVu Sans only.
fn options() -> usvg::Options<'static> {
    let mut opt = usvg::Options::default();
    let db = opt.fontdb_mut();
    db.load_font_data(FONT_REGULAR.to_vec());
    db.load_font_data(FONT_BOLD.to_vec());
    db.set_sans_serif_family(FAMILY);
    db.set_serif_family(FAMILY);
    db.set_monospace_family(FAMILY);
    opt.font_family = FAMILY.to_string();
    opt
}

/// Turn page SVGs into one PDF.
pub fn pdf(pages: &[String]) -> Result<Vec<u8>, PdfError> {
    use krilla::geom::Size;
    use krilla::page::PageSettings;
    use krilla_svg::{SurfaceExt, SvgSettings};
    let opt = options();
    let mut doc = krilla::Document::new();
    let size = Size::from_wh(PAGE_W as f32, PAGE_H as f32)
        .ok_or_else(|| PdfError::Pdf("bad page size".into()))?;
    for (i, svg) in pages.iter().enumerate() {
        let tree = usvg::Tree::from_str(svg, &opt).map_err(|e| PdfError::Svg {
            page: i + 1,
            message: e.to_string(),
        })?;
        let settings = PageSettings::from_wh(PAGE_W as f32, PAGE_H as f32)
            .ok_or_else(|| PdfError::Pdf("bad page size".into()))?;
        let mut page = doc.start_page_with(settings);
        let mut surface = page.surface();
        surface
            .draw_svg(&tree, size, SvgSettings::default())
            .ok_or_else(|| PdfError::Svg {
                page: i + 1,
                message: "krilla could not draw it".into(),
            })?;
        surface.finish();
        page.finish();
    }
    doc.finish().map_err(|e| PdfError::Pdf(format!("{e:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapping_respects_the_width() {
        let m = Metrics::new().unwrap();
        let text = "the quick brown fox jumps over the lazy dog ".repeat(10);
        let lines = m.wrap(&text, 9.0, false, 200.0);
        assert!(lines.len() > 3);
        assert!(lines.iter().all(|l| m.width(l, 9.0, false) <= 200.0));
    }

    #[test]
    fn svg_root_size_and_body_are_found() {
        let svg = r#"<?xml version="1.0"?><svg width="640" height="420" viewBox="0 0 640 420" xmlns="http://www.w3.org/2000/svg"><rect/></svg>"#;
        assert_eq!(svg_size(svg), Some((640.0, 420.0)));
        assert_eq!(svg_body(svg), "<rect/>");
    }

    #[test]
    fn a_page_with_text_becomes_a_pdf() {
        let blocks = vec![
            Block::Title("Report title".into()),
            Block::Para("Some words that must survive into the PDF.".into()),
        ];
        let pages = pages(&blocks, Path::new("."), "footer").unwrap();
        assert_eq!(pages.len(), 1);
        let bytes = pdf(&pages).unwrap();
        assert!(bytes.starts_with(b"%PDF"));
        assert!(bytes.len() > 2000);
    }
}
