//! Where a chart goes: every chart is drawn twice by one routine, as `<stem>.png` for people
//! browsing a run folder and as `<stem>.svg` for the PDF report (vector, so it prints sharply).
//!
//! Why one routine for both: plotters' bitmap and SVG backends are different types, and a chart
//! written against each would be two copies to keep in step. [`DynBackend`] puts both behind one
//! `DrawingBackend`, so a chart is a single function of `(area, scale)`.
//!
//! Why the font is compiled in: plotters' `ab_glyph` feature renders text in pure Rust from font
//! bytes it is given, instead of asking the system's fontconfig/FreeType. DejaVu Sans is embedded
//! ([`FONT_REGULAR`], [`FONT_BOLD`]) and registered as `sans-serif`, so a chart draws the same on
//! any machine, container or CI runner with no font installed. The SVG names the family
//! `sans-serif`; the report's PDF step maps that family to the same embedded bytes.

use super::style::{HEIGHT, PNG_SCALE, WIDTH};
use super::PlotError;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters_backend::DrawingErrorKind;
use plotters_backend::{BackendColor, BackendCoord, BackendStyle, BackendTextStyle};
use std::path::{Path, PathBuf};
use std::sync::Once;

/// DejaVu Sans (licence in `assets/fonts/LICENSE-DejaVu.txt`), embedded.
pub const FONT_REGULAR: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
/// DejaVu Sans Bold, for chart titles.
pub const FONT_BOLD: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans-Bold.ttf");

/// A drawing area on either backend.
pub(super) type Area<'a> = DrawingArea<DynBackend<'a>, Shift>;

/// What a drawing step returns: plotters' own error for [`DynBackend`], so `?` needs no mapping.
pub(super) type Drawn<T = ()> = Result<T, DrawingAreaErrorKind<BackendFailure>>;

/// Both backends behind one type so each chart has a single drawing routine.
pub(super) enum DynBackend<'a> {
    Bitmap(BitMapBackend<'a>),
    Svg(SVGBackend<'a>),
}

fn register_fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The bytes are compiled in and known to be valid fonts (checked by a unit test).
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT_REGULAR);
        let _ = plotters::style::register_font("sans-serif", FontStyle::Bold, FONT_BOLD);
    });
}

/// `stem` with `.ext` appended (a stem may itself contain dots).
pub(super) fn with_ext(stem: &Path, ext: &str) -> PathBuf {
    let mut name = stem.as_os_str().to_owned();
    name.push(".");
    name.push(ext);
    PathBuf::from(name)
}

/// Draw `draw` once as PNG (×[`PNG_SCALE`] for sharpness) and once as SVG. `(extra_w, extra_h)`
/// is logical room added to the plot panel for the legend.
pub(super) fn render(
    stem: &Path,
    (extra_w, extra_h): (u32, u32),
    draw: &dyn Fn(&Area, f64) -> Drawn,
) -> Result<(), PlotError> {
    register_fonts();
    if let Some(dir) = stem.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| PlotError::Folder {
            path: dir.display().to_string(),
            source,
        })?;
    }
    let (w, h) = (WIDTH + extra_w, HEIGHT + extra_h);
    let png = with_ext(stem, "png");
    let scaled = |v: u32| (f64::from(v) * PNG_SCALE) as u32;
    let bitmap = DynBackend::Bitmap(BitMapBackend::new(&png, (scaled(w), scaled(h))));
    paint(&png, bitmap, PNG_SCALE, draw)?;
    let svg = with_ext(stem, "svg");
    paint(
        &svg,
        DynBackend::Svg(SVGBackend::new(&svg, (w, h))),
        1.0,
        draw,
    )
}

/// White background, the chart, then the file.
fn paint(
    path: &Path,
    backend: DynBackend,
    scale: f64,
    draw: &dyn Fn(&Area, f64) -> Drawn,
) -> Result<(), PlotError> {
    let root = DrawingArea::from(backend);
    root.fill(&WHITE)
        .and_then(|()| draw(&root, scale))
        .and_then(|()| root.present())
        .map_err(|e| PlotError::Draw {
            path: path.display().to_string(),
            message: e.to_string(),
        })
}

/// A backend's failure, as text (the two backends' error types differ).
#[derive(Debug)]
pub(super) struct BackendFailure(String);

impl std::fmt::Display for BackendFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BackendFailure {}

fn wrap<T, E: std::error::Error + Send + Sync>(
    r: Result<T, DrawingErrorKind<E>>,
) -> Result<T, DrawingErrorKind<BackendFailure>> {
    r.map_err(|e| match e {
        DrawingErrorKind::DrawingError(e) => {
            DrawingErrorKind::DrawingError(BackendFailure(e.to_string()))
        }
        DrawingErrorKind::FontError(f) => DrawingErrorKind::FontError(f),
    })
}

/// Forward a backend call to whichever backend this is.
macro_rules! both {
    ($self:ident, $b:ident => $e:expr) => {
        match $self {
            DynBackend::Bitmap($b) => wrap($e),
            DynBackend::Svg($b) => wrap($e),
        }
    };
}

type Step<T = ()> = Result<T, DrawingErrorKind<BackendFailure>>;

impl DrawingBackend for DynBackend<'_> {
    type ErrorType = BackendFailure;

    fn get_size(&self) -> (u32, u32) {
        match self {
            DynBackend::Bitmap(b) => b.get_size(),
            DynBackend::Svg(b) => b.get_size(),
        }
    }
    fn ensure_prepared(&mut self) -> Step {
        both!(self, b => b.ensure_prepared())
    }
    fn present(&mut self) -> Step {
        both!(self, b => b.present())
    }
    fn draw_pixel(&mut self, point: BackendCoord, color: BackendColor) -> Step {
        both!(self, b => b.draw_pixel(point, color))
    }
    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Step {
        both!(self, b => b.draw_line(from, to, style))
    }
    fn draw_rect<S: BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Step {
        both!(self, b => b.draw_rect(upper_left, bottom_right, style, fill))
    }
    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> Step {
        both!(self, b => b.draw_path(path, style))
    }
    fn draw_circle<S: BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        style: &S,
        fill: bool,
    ) -> Step {
        both!(self, b => b.draw_circle(center, radius, style, fill))
    }
    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        style: &S,
    ) -> Step {
        both!(self, b => b.fill_polygon(vert, style))
    }
    fn draw_text<TStyle: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &TStyle,
        pos: BackendCoord,
    ) -> Step {
        both!(self, b => b.draw_text(text, style, pos))
    }
    fn estimate_text_size<TStyle: BackendTextStyle>(
        &self,
        text: &str,
        style: &TStyle,
    ) -> Step<(u32, u32)> {
        both!(self, b => b.estimate_text_size(text, style))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_fonts_are_valid() {
        for bytes in [FONT_REGULAR, FONT_BOLD] {
            assert!(plotters::style::register_font("test-font", FontStyle::Normal, bytes).is_ok());
        }
    }

    #[test]
    fn a_stem_with_dots_keeps_them() {
        assert_eq!(
            with_ext(Path::new("out/n1.5k"), "svg"),
            PathBuf::from("out/n1.5k.svg")
        );
    }
}
