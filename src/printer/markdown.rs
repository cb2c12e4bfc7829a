//! `--format markdown`: a table like hyperfine's markdown export.

use super::per_machine;
use crate::summary::Summary;

pub fn render(s: &Summary) -> String {
    let c = &s.completion_ms;
    let mut out = String::new();
    out.push_str("| Policy | N | Ok | Failed | Wall [ms] | Makespan [ms] | Lower bound [ms] | Efficiency | Completion mean ± p50 / p99 [ms] |\n");
    out.push_str("|:---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    out.push_str(&format!(
        "| `{}` | {} | {} | {} | {:.1} | {:.1} | {:.1} ({}) | {:.1}% | {:.1} / {:.1} / {:.1} |\n",
        s.policy,
        s.n,
        s.ok,
        s.failed,
        s.wall_ms,
        s.makespan_ms,
        s.lower_bound_ms,
        s.lower_bound_source,
        s.efficiency * 100.0,
        c.mean,
        c.p50,
        c.p99
    ));
    out.push_str(&format!("\nPer machine: {}\n", per_machine(s)));
    out
}
