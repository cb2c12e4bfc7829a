//! Printing a finished batch's [`Summary`], one file per format (as hyperfine has one exporter
//! per format): `text` for people, `json` for programs (the summary.json schema), `csv` and
//! `markdown` for tables.

mod csv;
mod json;
mod markdown;
mod text;

use crate::summary::Summary;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    #[default]
    Text,
    Json,
    Csv,
    Markdown,
}

/// The summary in `format`, ending with a newline.
pub fn render(format: Format, s: &Summary) -> String {
    match format {
        Format::Text => text::render(s),
        Format::Json => json::render(s),
        Format::Csv => csv::render(s),
        Format::Markdown => markdown::render(s),
    }
}

/// A duration for people: ms below a second, s above.
pub(crate) fn duration(ms: f64) -> String {
    if ms.abs() < 1000.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{:.3} s", ms / 1000.0)
    }
}

/// "asia/0 160, asia/1 158, …" in layout order as the summary keeps it (sorted by name).
pub(crate) fn per_machine(s: &Summary) -> String {
    s.per_machine
        .iter()
        .map(|(m, c)| format!("{m} {c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn sample() -> Summary {
        Summary {
            n: 10,
            policy: "machine-rr".into(),
            requested_policy: "auto".into(),
            reason: "spread".into(),
            ok: 9,
            failed: 1,
            failures: BTreeMap::from([("http_503".to_string(), 1)]),
            makespan_ms: 1500.0,
            lower_bound_ms: 1200.0,
            efficiency: 0.8,
            per_machine: BTreeMap::from([("asia/0".to_string(), 9)]),
            ..Summary::default()
        }
    }

    #[test]
    fn every_format_shows_the_key_numbers() {
        let s = sample();
        for f in [Format::Text, Format::Json, Format::Csv, Format::Markdown] {
            let out = render(f, &s);
            assert!(out.contains("machine-rr"), "{f:?}: {out}");
            assert!(out.ends_with('\n'), "{f:?}");
        }
        let v: serde_json::Value = serde_json::from_str(&render(Format::Json, &s)).unwrap();
        assert_eq!(v["n"], 10);
        assert_eq!(v["per_machine"]["asia/0"], 9);
        let csv = render(Format::Csv, &s);
        assert_eq!(csv.lines().count(), 2);
        assert_eq!(
            csv.lines().next().unwrap().split(',').count(),
            csv.lines().nth(1).unwrap().split(',').count()
        );
    }

    #[test]
    fn the_text_block_shows_the_wall_time_first_and_an_estimated_bound_as_one() {
        let mut s = sample();
        s.wall_ms = 2100.0;
        s.lower_bound_source = "model".into();
        let out = render(Format::Text, &s);
        let wall = out.find("Wall time:").expect("a wall time line");
        let makespan = out.find("Makespan:").expect("a makespan line");
        assert!(wall < makespan, "{out}");
        assert!(out.contains("2.100 s"), "{out}");
        assert!(!out.contains("estimated"), "{out}");
        s.lower_bound_source = "learned".into();
        let out = render(Format::Text, &s);
        assert!(out.contains("estimated lower bound"), "{out}");
    }
}
