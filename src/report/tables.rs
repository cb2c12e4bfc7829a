//! The report's tables: which policy for which N (measured, what auto ran, without the ceiling),
//! and the faults' full figures (REPORT.md only).

use super::charts::{best_at, fault_topologies};
use super::data::{largest_common_n, ns, policy_order, sweep, Table};
use crate::numbers::secs;

/// Rows: N; best policy (default system) with its makespan and efficiency; what auto ran; best
/// without the ceiling.
pub fn policy_table(t: &Table) -> Vec<Vec<String>> {
    let mut rows = vec![vec![
        "N".to_string(),
        "best (measured)".into(),
        "makespan".into(),
        "efficiency".into(),
        "auto ran".into(),
        "auto makespan".into(),
        "best (no ceiling)".into(),
        "makespan".into(),
    ]];
    let Some(ps) = sweep(t, "default") else {
        return rows;
    };
    let makespan = |c: &super::data::Cell| c.makespan_ms.mean;
    for n in ns(ps) {
        let best = best_at(ps, n, makespan);
        let auto = ps.get("auto").and_then(|c| c.get(&n));
        let nc = sweep(t, "no-ceiling").and_then(|p| best_at(p, n, makespan));
        let dash = || "-".to_string();
        rows.push(vec![
            n.to_string(),
            best.as_ref().map_or_else(dash, |b| b.0.clone()),
            best.as_ref().map_or_else(dash, |b| secs(b.1)),
            best.as_ref()
                .and_then(|b| ps[&b.0].get(&n))
                .map_or_else(dash, |c| format!("{:.2}", c.efficiency.mean)),
            auto.map_or_else(dash, |c| {
                c.ran.keys().cloned().collect::<Vec<_>>().join("/")
            }),
            auto.map_or_else(dash, |c| secs(c.makespan_ms.mean)),
            nc.as_ref().map_or_else(dash, |b| b.0.clone()),
            nc.as_ref().map_or_else(dash, |b| secs(b.1)),
        ]);
    }
    rows
}

/// Mean / p99 completion per policy on `base_topo` and its fault topologies, at the largest N all
/// the fault topologies measured.
pub fn fault_table(t: &Table, base_topo: &str, suffix: &str) -> Option<Vec<Vec<String>>> {
    let base = sweep(t, base_topo)?;
    let topos = fault_topologies(t, suffix);
    let n = largest_common_n(t, &topos)?;
    let mut head = vec![format!("policy (N = {n}), mean / p99")];
    head.push(base_topo.to_string());
    head.extend(topos.iter().cloned());
    let mut rows = vec![head];
    for p in policy_order(base.keys().cloned()) {
        let mut row = vec![p.clone()];
        for topo in std::iter::once(base_topo).chain(topos.iter().map(String::as_str)) {
            let c = sweep(t, topo)
                .and_then(|ps| ps.get(&p))
                .and_then(|c| c.get(&n));
            row.push(c.map_or("-".into(), |c| {
                format!(
                    "{} / {}",
                    secs(c.completion_mean_ms.mean),
                    secs(c.completion_p99_ms.mean)
                )
            }));
        }
        rows.push(row);
    }
    Some(rows)
}
