//! `--format json`: the summary.json object itself, pretty-printed.

use crate::summary::Summary;

pub fn render(s: &Summary) -> String {
    // Serialising a plain struct of numbers, strings and maps cannot fail.
    serde_json::to_string_pretty(s).unwrap_or_default() + "\n"
}
