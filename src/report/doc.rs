//! The report as a list of blocks, rendered twice: as Markdown (`REPORT.md`, every chart) and as
//! A4 PDF pages ([`super::pdf`], the charts marked for print). One document model keeps the two
//! from drifting apart.

use super::charts::Chart;
use std::fmt::Write;

#[derive(Clone, Debug)]
pub enum Block {
    Title(String),
    Heading(String),
    Para(String),
    /// A paragraph in smaller type (dense figures).
    Small(String),
    /// Numbered answers: (question, answer).
    Answers(Vec<(String, String)>),
    /// Charts two to a row, each with its takeaway. `print`: also in the PDF.
    Charts {
        charts: Vec<Chart>,
        print: bool,
    },
    /// Header row, then rows.
    Table(Vec<Vec<String>>),
    /// Blocks for REPORT.md only (the PDF has three pages at most).
    MarkdownOnly(Vec<Block>),
    PageBreak,
}

/// `REPORT.md`; `charts` is the chart folder relative to the Markdown file.
pub fn markdown(blocks: &[Block], charts: &str) -> String {
    let mut s = String::new();
    for b in blocks {
        if let Block::MarkdownOnly(inner) = b {
            s.push_str(&markdown(inner, charts));
            continue;
        }
        match b {
            Block::Title(t) => {
                let _ = writeln!(s, "# {t}\n");
            }
            Block::Heading(t) => {
                let _ = writeln!(s, "## {t}\n");
            }
            Block::Para(t) | Block::Small(t) => {
                let _ = writeln!(s, "{t}\n");
            }
            Block::Answers(qa) => {
                for (i, (q, a)) in qa.iter().enumerate() {
                    let _ = writeln!(s, "{}. **{q}** {a}", i + 1);
                }
                s.push('\n');
            }
            Block::Charts { charts: cs, .. } => {
                for c in cs {
                    let _ = writeln!(
                        s,
                        "![{}]({charts}/{}.png)\n\n*{}* {}\n",
                        c.title, c.stem, c.title, c.takeaway
                    );
                }
            }
            Block::Table(rows) => {
                if let Some(head) = rows.first() {
                    let _ = writeln!(s, "| {} |", head.join(" | "));
                    let _ = writeln!(s, "|{}", "---|".repeat(head.len()));
                    for r in &rows[1..] {
                        let _ = writeln!(s, "| {} |", r.join(" | "));
                    }
                    s.push('\n');
                }
            }
            Block::PageBreak | Block::MarkdownOnly(_) => {}
        }
    }
    s
}
