//! Reading the sweep's files back: run folders with `summary.json` (and, for the CDFs,
//! `requests.csv`), grouped and aggregated over repetitions. The report reads nothing else, so
//! every number in it traces back to a file under `results/`.
//!
//! Layout (written by `scripts/sweep.sh`): `<group>/<key>/<policy>/n<N>-r<R>/summary.json` with
//! group `sweep` (key = topology), `scale` (key = `k<K>`) or `timescale` (key = `s<F>`).

use crate::summary::Summary;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not a valid summary: {source}")]
    Parse {
        path: String,
        source: serde_json::Error,
    },
}

/// One finished run.
#[derive(Clone, Debug)]
pub struct Run {
    pub group: String,
    pub key: String,
    /// The policy asked for (the folder name); `summary.policy` is what ran.
    pub policy: String,
    pub n: u64,
    pub rep: u32,
    pub dir: PathBuf,
    pub summary: Summary,
}

/// Mean, min and max over repetitions.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Spread {
    pub mean: f64,
    pub min: f64,
    pub max: f64,
}

impl Spread {
    pub fn of(values: impl IntoIterator<Item = f64>) -> Spread {
        let v: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return Spread {
                mean: f64::NAN,
                min: f64::NAN,
                max: f64::NAN,
            };
        }
        Spread {
            mean: v.iter().sum::<f64>() / v.len() as f64,
            min: v.iter().copied().fold(f64::INFINITY, f64::min),
            max: v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        }
    }
}

/// One (group, key, policy, N) cell over its repetitions.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Cell {
    pub runs: usize,
    pub makespan_ms: Spread,
    pub lower_bound_ms: Spread,
    pub efficiency: Spread,
    pub completion_mean_ms: Spread,
    pub completion_p99_ms: Spread,
    /// The two bounds whose later one is the lower bound: which one sets the pace.
    pub machines_bound_ms: Spread,
    pub forwarders_bound_ms: Spread,
    /// Forwarding units the runs used (the most over repetitions).
    pub forwarders: usize,
    pub ok: u64,
    pub failed: u64,
    /// Policies that actually ran (what auto chose), with counts.
    pub ran: BTreeMap<String, usize>,
    /// Mean ok requests per machine.
    pub per_machine: BTreeMap<String, f64>,
    pub time_scale: Option<f64>,
    /// A run folder of repetition 1 (for requests.csv).
    pub first_dir: Option<PathBuf>,
}

impl Cell {
    fn of(runs: &[&Run]) -> Cell {
        let mut ran = BTreeMap::new();
        let mut per_machine: BTreeMap<String, f64> = BTreeMap::new();
        for r in runs {
            *ran.entry(r.summary.policy.clone()).or_insert(0) += 1;
            for (m, c) in &r.summary.per_machine {
                *per_machine.entry(m.clone()).or_insert(0.0) += *c as f64 / runs.len() as f64;
            }
        }
        let s = |f: fn(&Summary) -> f64| Spread::of(runs.iter().map(|r| f(&r.summary)));
        Cell {
            runs: runs.len(),
            makespan_ms: s(|s| s.makespan_ms),
            lower_bound_ms: s(|s| s.lower_bound_ms),
            efficiency: s(|s| s.efficiency),
            completion_mean_ms: s(|s| s.completion_ms.mean),
            completion_p99_ms: s(|s| s.completion_ms.p99),
            machines_bound_ms: s(|s| s.machines_bound_ms),
            forwarders_bound_ms: s(|s| s.forwarders_bound_ms),
            forwarders: runs
                .iter()
                .map(|r| r.summary.forwarders.len())
                .max()
                .unwrap_or(0),
            ok: runs.iter().map(|r| r.summary.ok).sum(),
            failed: runs.iter().map(|r| r.summary.failed).sum(),
            ran,
            per_machine,
            time_scale: runs.first().and_then(|r| r.summary.time_scale),
            first_dir: runs.iter().min_by_key(|r| r.rep).map(|r| r.dir.clone()),
        }
    }
}

/// policy → N → cell: one topology of the sweep, one K of the scale runs.
pub type Policies = BTreeMap<String, BTreeMap<u64, Cell>>;

/// group → key → policy → N → cell.
pub type Table = BTreeMap<String, BTreeMap<String, Policies>>;

/// The policies run on topology `topo` in the sweep.
pub fn sweep<'a>(t: &'a Table, topo: &str) -> Option<&'a Policies> {
    t.get("sweep")?.get(topo)
}

/// Every N measured under any of the policies, ascending.
pub fn ns(policies: &Policies) -> Vec<u64> {
    let mut ns: Vec<u64> = policies.values().flat_map(|c| c.keys().copied()).collect();
    ns.sort_unstable();
    ns.dedup();
    ns
}

/// The largest N measured under any of the policies.
pub fn largest_n(policies: &Policies) -> Option<u64> {
    policies.values().flat_map(|c| c.keys()).copied().max()
}

/// The largest N that every one of the sweep topologies `topos` has measured.
pub fn largest_common_n(t: &Table, topos: &[String]) -> Option<u64> {
    topos
        .iter()
        .map(|topo| sweep(t, topo).and_then(largest_n))
        .collect::<Option<Vec<u64>>>()?
        .into_iter()
        .min()
}

/// The N a sentence is about: the report's reference batch of 1000 when it was measured, else the
/// largest N.
pub fn reference_n(policies: &Policies) -> Option<u64> {
    let ns = ns(policies);
    if ns.contains(&REFERENCE_N) {
        Some(REFERENCE_N)
    } else {
        ns.last().copied()
    }
}

/// The batch size the report's per-machine and CDF charts and its headline describe.
pub const REFERENCE_N: u64 = 1000;

/// Every run under `root`, sorted by path.
pub fn load_runs(root: &Path) -> Result<Vec<Run>, DataError> {
    let mut runs = Vec::new();
    for group in ["sweep", "scale", "timescale"] {
        let base = root.join(group);
        for key in subdirs(&base)? {
            for policy in subdirs(&base.join(&key))? {
                for run in subdirs(&base.join(&key).join(&policy))? {
                    let Some((n, rep)) = parse_run_name(&run) else {
                        continue;
                    };
                    let dir = base.join(&key).join(&policy).join(&run);
                    let path = dir.join("summary.json");
                    if !path.is_file() {
                        continue;
                    }
                    let text =
                        std::fs::read_to_string(&path).map_err(|source| DataError::Read {
                            path: path.display().to_string(),
                            source,
                        })?;
                    let summary: Summary =
                        serde_json::from_str(&text).map_err(|source| DataError::Parse {
                            path: path.display().to_string(),
                            source,
                        })?;
                    runs.push(Run {
                        group: group.to_string(),
                        key: key.clone(),
                        policy: policy.clone(),
                        n,
                        rep,
                        dir,
                        summary,
                    });
                }
            }
        }
    }
    Ok(runs)
}

/// Aggregate runs into cells.
pub fn table(runs: &[Run]) -> Table {
    let mut groups: BTreeMap<(String, String, String, u64), Vec<&Run>> = BTreeMap::new();
    for r in runs {
        groups
            .entry((r.group.clone(), r.key.clone(), r.policy.clone(), r.n))
            .or_default()
            .push(r);
    }
    let mut t = Table::new();
    for ((g, k, p, n), rs) in groups {
        t.entry(g)
            .or_default()
            .entry(k)
            .or_default()
            .entry(p)
            .or_default()
            .insert(n, Cell::of(&rs));
    }
    t
}

/// "n1000-r2" → (1000, 2).
pub fn parse_run_name(name: &str) -> Option<(u64, u32)> {
    let rest = name.strip_prefix('n')?;
    let (n, r) = rest.split_once("-r")?;
    Some((n.parse().ok()?, r.parse().ok()?))
}

fn subdirs(dir: &Path) -> Result<Vec<String>, DataError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(DataError::Read {
                path: dir.display().to_string(),
                source,
            })
        }
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .collect();
    names.sort();
    Ok(names)
}

/// Completion times (end_ms of ok rows) from a run's requests.csv; None when absent.
pub fn completion_times(dir: &Path) -> Option<Vec<f64>> {
    let text = std::fs::read_to_string(dir.join("requests.csv")).ok()?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next()?.split(',').collect();
    let end = header.iter().position(|h| *h == "end_ms")?;
    let outcome = header.iter().position(|h| *h == "outcome")?;
    let v: Vec<f64> = lines
        .filter_map(|l| {
            let cols: Vec<&str> = l.split(',').collect();
            (cols.get(outcome) == Some(&"ok"))
                .then(|| cols.get(end).and_then(|e| e.parse().ok()))
                .flatten()
        })
        .collect();
    (!v.is_empty()).then_some(v)
}

/// Policies in registry order (stable colours across charts), then any others.
pub fn policy_order(names: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut names: Vec<String> = names.into_iter().collect();
    names.sort();
    names.dedup();
    let mut out: Vec<String> = crate::policy::ALL
        .iter()
        .map(|(n, _)| n.to_string())
        .filter(|n| names.contains(n))
        .collect();
    let rest: Vec<String> = names.into_iter().filter(|n| !out.contains(n)).collect();
    out.extend(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_names_parse() {
        assert_eq!(parse_run_name("n1000-r2"), Some((1000, 2)));
        assert_eq!(parse_run_name("n1-r1"), Some((1, 1)));
        assert_eq!(parse_run_name("x"), None);
        assert_eq!(parse_run_name("n-r1"), None);
    }

    #[test]
    fn spread_ignores_nan() {
        let s = Spread::of([1.0, f64::NAN, 3.0]);
        assert_eq!((s.mean, s.min, s.max), (2.0, 1.0, 3.0));
    }
}
