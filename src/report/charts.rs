//! The report's charts, drawn from the aggregated sweep ([`super::data`]) with the shared plot
//! primitives. Policies keep one colour across every chart (registry order), legends sit below
//! the plot so the charts stay legible when printed two to a row.

use super::data::{completion_times, policy_order, Cell, Table};
use crate::plot::{self, Axes, LineExtras, PlotError, Series};
use std::collections::BTreeMap;
use std::path::Path;

/// A chart written to `<dir>/<stem>.{png,svg}`, with its one-line takeaway.
#[derive(Clone, Debug)]
pub struct Chart {
    pub stem: String,
    pub title: String,
    pub takeaway: String,
}

fn cells<'a>(
    t: &'a Table,
    group: &str,
    key: &str,
) -> Option<&'a BTreeMap<String, BTreeMap<u64, Cell>>> {
    t.get(group)?.get(key)
}

fn below() -> LineExtras {
    LineExtras {
        legend_below: true,
        ..LineExtras::default()
    }
}

/// Per policy, a metric against N, with its min–max band, and the mean lower bound dashed.
fn metric_vs_n(
    policies: &BTreeMap<String, BTreeMap<u64, Cell>>,
    metric: fn(&Cell) -> super::data::Spread,
    with_bound: bool,
) -> (Vec<Series>, LineExtras) {
    let order = policy_order(policies.keys().cloned());
    let mut series = Vec::new();
    let mut extras = below();
    for p in &order {
        let cells = &policies[p];
        series.push(Series {
            label: p.clone(),
            points: cells
                .iter()
                .map(|(n, c)| (*n as f64, metric(c).mean))
                .collect(),
        });
        extras.spread.push(
            cells
                .iter()
                .filter(|(_, c)| c.runs > 1)
                .map(|(n, c)| (*n as f64, metric(c).min, metric(c).max))
                .collect(),
        );
    }
    if with_bound {
        let mut bound: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
        for cells in policies.values() {
            for (n, c) in cells {
                bound.entry(*n).or_default().push(c.lower_bound_ms.mean);
            }
        }
        extras.references.push(Series {
            label: "lower bound".into(),
            points: bound
                .iter()
                .map(|(n, v)| (*n as f64, v.iter().sum::<f64>() / v.len() as f64))
                .collect(),
        });
    }
    (series, extras)
}

/// The policy with the lowest mean of `metric` at `n`.
pub fn best_at(
    policies: &BTreeMap<String, BTreeMap<u64, Cell>>,
    n: u64,
    metric: fn(&Cell) -> f64,
) -> Option<(String, f64)> {
    policies
        .iter()
        .filter_map(|(p, cells)| cells.get(&n).map(|c| (p.clone(), metric(c))))
        .filter(|(_, v)| v.is_finite())
        .min_by(|a, b| a.1.total_cmp(&b.1))
}

fn secs(ms: f64) -> String {
    if ms >= 10_000.0 {
        format!("{:.0} s", ms / 1000.0)
    } else {
        format!("{:.2} s", ms / 1000.0)
    }
}

/// Draw every chart the data allows; returns them in report order.
pub fn draw_all(t: &Table, dir: &Path) -> Result<Vec<Chart>, PlotError> {
    let mut out = Vec::new();
    for (topo, title) in [
        ("default", "measured system (1 forwarding unit)"),
        ("no-ceiling", "forwarding unit without a ceiling"),
    ] {
        let Some(policies) = cells(t, "sweep", topo) else {
            continue;
        };
        let (series, extras) = metric_vs_n(policies, |c| c.makespan_ms, true);
        let stem = format!("makespan-{topo}");
        plot::line_chart_with(
            &dir.join(&stem),
            &Axes {
                title: format!("Makespan, {title}"),
                x_label: "N (requests in the batch)".into(),
                y_label: "makespan (ms, model time)".into(),
                log_x: true,
                log_y: true,
            },
            &series,
            &extras,
        )?;
        let n_max = policies
            .values()
            .flat_map(|c| c.keys())
            .copied()
            .max()
            .unwrap_or(0);
        let takeaway = match (
            best_at(policies, n_max, |c| c.makespan_ms.mean),
            policies.get("random").and_then(|c| c.get(&n_max)),
        ) {
            (Some((best, ms)), Some(random)) => format!(
                "At N = {n_max} {best} finishes in {} ({:.0}% of the bound's pace); random takes {}.",
                secs(ms),
                100.0 * best_cell(policies, &best, n_max).map_or(f64::NAN, |c| c.efficiency.mean),
                secs(random.makespan_ms.mean)
            ),
            (Some((best, ms)), None) => format!("At N = {n_max} {best} is fastest: {}.", secs(ms)),
            _ => String::new(),
        };
        out.push(Chart {
            stem,
            title: format!("Makespan against N, {title}"),
            takeaway,
        });
    }

    if let Some(policies) = cells(t, "sweep", "default") {
        let (series, extras) = metric_vs_n(policies, |c| c.efficiency, false);
        plot::line_chart_with(
            &dir.join("efficiency-default"),
            &Axes {
                title: "Efficiency (lower bound / makespan)".into(),
                x_label: "N (requests in the batch)".into(),
                y_label: "efficiency (1 = optimal)".into(),
                log_x: true,
                log_y: false,
            },
            &series,
            &extras,
        )?;
        out.push(Chart {
            stem: "efficiency-default".into(),
            title: "Efficiency against N".into(),
            takeaway: efficiency_takeaway(policies),
        });
        for (stem, title, metric, label) in [
            (
                "completion-mean-default",
                "Mean completion time",
                (|c: &Cell| c.completion_mean_ms) as fn(&Cell) -> super::data::Spread,
                "mean completion (ms)",
            ),
            (
                "completion-p99-default",
                "p99 completion time",
                |c: &Cell| c.completion_p99_ms,
                "p99 completion (ms)",
            ),
        ] {
            let (series, extras) = metric_vs_n(policies, metric, false);
            plot::line_chart_with(
                &dir.join(stem),
                &Axes {
                    title: title.into(),
                    x_label: "N (requests in the batch)".into(),
                    y_label: label.into(),
                    log_x: true,
                    log_y: true,
                },
                &series,
                &extras,
            )?;
            let n_max = policies
                .values()
                .flat_map(|c| c.keys())
                .copied()
                .max()
                .unwrap_or(0);
            let m2 = if stem.contains("p99") {
                |c: &Cell| c.completion_p99_ms.mean
            } else {
                |c: &Cell| c.completion_mean_ms.mean
            };
            let takeaway = best_at(policies, n_max, m2)
                .map(|(p, v)| format!("{title} at N = {n_max}: best {p} with {}.", secs(v)))
                .unwrap_or_default();
            out.push(Chart {
                stem: stem.into(),
                title: format!("{title} against N"),
                takeaway,
            });
        }
        let order = policy_order(policies.keys().cloned());
        let at: Vec<(&String, &Cell)> = order
            .iter()
            .filter_map(|p| policies[p].get(&1000).map(|c| (p, c)))
            .collect();
        if !at.is_empty() {
            let mut machines: Vec<String> = at
                .iter()
                .flat_map(|(_, c)| c.per_machine.keys().cloned())
                .collect();
            machines.sort();
            machines.dedup();
            let layers: Vec<(String, Vec<f64>)> = machines
                .iter()
                .map(|m| {
                    (
                        m.clone(),
                        at.iter()
                            .map(|(_, c)| c.per_machine.get(m).copied().unwrap_or(0.0))
                            .collect(),
                    )
                })
                .collect();
            let cats: Vec<String> = at.iter().map(|(p, _)| (*p).clone()).collect();
            plot::stacked_bar_chart(
                &dir.join("per-machine-1000"),
                &Axes {
                    title: "Requests per machine, N = 1000".into(),
                    x_label: "requests answered".into(),
                    y_label: String::new(),
                    ..Axes::default()
                },
                &cats,
                &layers,
                true,
            )?;
            out.push(Chart {
                stem: "per-machine-1000".into(),
                title: "Requests per machine at N = 1000".into(),
                takeaway: per_machine_takeaway(&at),
            });
            let samples: Vec<(String, Vec<f64>)> = at
                .iter()
                .filter_map(|(p, c)| {
                    c.first_dir
                        .as_deref()
                        .and_then(completion_times)
                        .map(|v| ((*p).clone(), v))
                })
                .collect();
            if !samples.is_empty() {
                plot::cdf_chart_with(
                    &dir.join("cdf-1000"),
                    &Axes {
                        title: "Completion times, N = 1000".into(),
                        x_label: "completion time from batch start (ms)".into(),
                        y_label: "fraction of requests done".into(),
                        ..Axes::default()
                    },
                    &samples,
                    true,
                )?;
                out.push(Chart {
                    stem: "cdf-1000".into(),
                    title: "Completion-time CDFs at N = 1000 (repetition 1)".into(),
                    takeaway: cdf_takeaway(&samples),
                });
            }
        }
    }

    if let Some(scale) = t.get("scale") {
        // k<K> → policy → N → cell; one series per N.
        let mut per_n: BTreeMap<u64, Vec<(f64, Cell)>> = BTreeMap::new();
        for (key, policies) in scale {
            let Some(k) = key.strip_prefix('k').and_then(|k| k.parse::<f64>().ok()) else {
                continue;
            };
            for cells in policies.values() {
                for (n, c) in cells {
                    per_n.entry(*n).or_default().push((k, c.clone()));
                }
            }
        }
        if !per_n.is_empty() {
            let mut series = Vec::new();
            let mut extras = below();
            for (n, pts) in &mut per_n {
                pts.sort_by(|a, b| a.0.total_cmp(&b.0));
                series.push(Series {
                    label: format!("N = {n}"),
                    points: pts.iter().map(|(k, c)| (*k, c.makespan_ms.mean)).collect(),
                });
                extras.spread.push(
                    pts.iter()
                        .filter(|(_, c)| c.runs > 1)
                        .map(|(k, c)| (*k, c.makespan_ms.min, c.makespan_ms.max))
                        .collect(),
                );
                extras.references.push(Series {
                    label: format!("bound, N = {n}"),
                    points: pts
                        .iter()
                        .map(|(k, c)| (*k, c.lower_bound_ms.mean))
                        .collect(),
                });
            }
            plot::line_chart_with(
                &dir.join("makespan-forwarders"),
                &Axes {
                    title: "Makespan over K forwarding units".into(),
                    x_label: "forwarding units K".into(),
                    y_label: "makespan (ms, model time)".into(),
                    log_x: false,
                    log_y: true,
                },
                &series,
                &extras,
            )?;
            out.push(Chart {
                stem: "makespan-forwarders".into(),
                title: "Makespan against the number of forwarding units".into(),
                takeaway: scale_takeaway(&per_n),
            });
        }
    }

    for (base_topo, suffix, system) in [
        ("default", "", "measured system"),
        ("no-ceiling", "-no-ceiling", "no ceiling"),
    ] {
        let faults: Vec<String> = ["slow-machine", "machine-down"]
            .iter()
            .map(|f| format!("{f}{suffix}"))
            .filter(|f| cells(t, "sweep", f).is_some())
            .collect();
        let Some(base) = cells(t, "sweep", base_topo) else {
            continue;
        };
        if faults.is_empty() {
            continue;
        }
        let topos: Vec<&str> = std::iter::once(base_topo)
            .chain(faults.iter().map(String::as_str))
            .collect();
        // The largest N every fault topology has.
        let n = faults
            .iter()
            .filter_map(|f| cells(t, "sweep", f))
            .map(|p| {
                p.values()
                    .flat_map(|c| c.keys())
                    .copied()
                    .max()
                    .unwrap_or(0)
            })
            .min()
            .unwrap_or(0);
        let order = policy_order(base.keys().cloned());
        for (metric_stem, what, metric) in [
            (
                "p99",
                "p99 completion",
                (|c: &Cell| c.completion_p99_ms.mean) as fn(&Cell) -> f64,
            ),
            ("mean", "mean completion", |c: &Cell| {
                c.completion_mean_ms.mean
            }),
        ] {
            let groups: Vec<(String, Vec<f64>)> = topos
                .iter()
                .map(|topo| {
                    let policies = cells(t, "sweep", topo);
                    (
                        fault_label(topo),
                        order
                            .iter()
                            .map(|p| {
                                policies
                                    .and_then(|ps| ps.get(p))
                                    .and_then(|c| c.get(&n))
                                    .map_or(f64::NAN, metric)
                            })
                            .collect(),
                    )
                })
                .collect();
            let stem = format!("faults{suffix}-{metric_stem}");
            plot::grouped_bar_chart(
                &dir.join(&stem),
                &Axes {
                    title: format!("Faults, {system}, N = {n}"),
                    x_label: format!("{what} (ms)"),
                    y_label: String::new(),
                    ..Axes::default()
                },
                &order,
                &groups,
                true,
            )?;
            out.push(Chart {
                stem,
                title: format!("{what} with one machine slowed ×5 or down, {system}, N = {n}"),
                takeaway: fault_takeaway(t, base_topo, &faults, &order, n, metric, what),
            });
        }
    }
    Ok(out)
}

fn best_cell<'a>(
    policies: &'a BTreeMap<String, BTreeMap<u64, Cell>>,
    p: &str,
    n: u64,
) -> Option<&'a Cell> {
    policies.get(p)?.get(&n)
}

fn cdf_takeaway(samples: &[(String, Vec<f64>)]) -> String {
    let median = |v: &Vec<f64>| {
        let mut v = v.clone();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let best = samples
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .min_by(|a, b| median(&a.1).total_cmp(&median(&b.1)));
    let worst = samples
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .max_by(|a, b| median(&a.1).total_cmp(&median(&b.1)));
    match (best, worst) {
        (Some(b), Some(w)) => format!(
            "Half the requests are done after {} with {}, after {} with {}.",
            secs(median(&b.1)),
            b.0,
            secs(median(&w.1)),
            w.0
        ),
        _ => String::new(),
    }
}

fn efficiency_takeaway(policies: &BTreeMap<String, BTreeMap<u64, Cell>>) -> String {
    let ns: Vec<u64> = {
        let mut v: Vec<u64> = policies.values().flat_map(|c| c.keys().copied()).collect();
        v.sort();
        v.dedup();
        v
    };
    let within: Vec<String> = policy_order(policies.keys().cloned())
        .into_iter()
        .filter(|p| {
            ns.iter()
                .filter(|n| **n >= 100)
                .all(|n| policies[p].get(n).is_some_and(|c| c.efficiency.mean >= 0.9))
        })
        .collect();
    if within.is_empty() {
        "No policy stays within 10% of the bound at every N ≥ 100.".into()
    } else {
        format!(
            "Within 10% of the bound at every N ≥ 100: {}.",
            within.join(", ")
        )
    }
}

fn per_machine_takeaway(at: &[(&String, &Cell)]) -> String {
    let spread: Vec<String> = at
        .iter()
        .filter_map(|(p, c)| {
            let total: f64 = c.per_machine.values().sum();
            let max = c.per_machine.values().copied().fold(0.0, f64::max);
            (total > 0.0 && max / total > 0.9).then(|| (*p).clone())
        })
        .collect();
    if spread.is_empty() {
        "Every policy spreads the batch over several machines.".into()
    } else {
        format!(
            "{} puts (nearly) everything on one machine; the others spread the load.",
            spread.join(", ")
        )
    }
}

fn scale_takeaway(per_n: &BTreeMap<u64, Vec<(f64, Cell)>>) -> String {
    let mut parts = Vec::new();
    for (n, pts) in per_n {
        let k1 = pts.iter().find(|(k, _)| *k == 1.0);
        let best = pts
            .iter()
            .min_by(|a, b| a.1.makespan_ms.mean.total_cmp(&b.1.makespan_ms.mean));
        if let (Some((_, c1)), Some((kb, cb))) = (k1, best) {
            parts.push(format!(
                "N = {n}: {:.1}× faster with K = {kb} ({} → {})",
                c1.makespan_ms.mean / cb.makespan_ms.mean,
                secs(c1.makespan_ms.mean),
                secs(cb.makespan_ms.mean)
            ));
        }
    }
    // Where more units stop helping: the smallest K within 10% of the best, at the largest N.
    let plateau = per_n.values().last().and_then(|pts| {
        let best = pts
            .iter()
            .map(|(_, c)| c.makespan_ms.mean)
            .fold(f64::INFINITY, f64::min);
        pts.iter()
            .find(|(_, c)| c.makespan_ms.mean <= 1.1 * best)
            .map(|(k, _)| *k)
    });
    match plateau {
        Some(k) => format!(
            "{}; from K = {k} on, more units barely help: the machines are the limit.",
            parts.join("; ")
        ),
        None => parts.join("; "),
    }
}

/// "slow-machine-no-ceiling" → "us/0 ×5 slower"-style legend names.
fn fault_label(topo: &str) -> String {
    let base = topo.trim_end_matches("-no-ceiling");
    match base {
        "slow-machine" => "one machine ×5 slower".into(),
        "machine-down" => "one machine down".into(),
        _ => "no fault".into(),
    }
}

fn fault_takeaway(
    t: &Table,
    base: &str,
    faults: &[String],
    order: &[String],
    n: u64,
    metric: fn(&Cell) -> f64,
    what: &str,
) -> String {
    let get = |topo: &str, p: &str| {
        t.get("sweep")
            .and_then(|g| g.get(topo))
            .and_then(|ps| ps.get(p))
            .and_then(|c| c.get(&n))
            .map(metric)
    };
    let mut parts = Vec::new();
    for topo in faults {
        let under: Vec<(String, f64, f64)> = order
            .iter()
            .filter_map(|p| {
                let v = get(topo, p)?;
                Some((p.clone(), v, v / get(base, p)?))
            })
            .filter(|(_, v, r)| v.is_finite() && r.is_finite())
            .collect();
        if let (Some(best), Some(bad)) = (
            under.iter().min_by(|a, b| a.1.total_cmp(&b.1)),
            under.iter().max_by(|a, b| a.2.total_cmp(&b.2)),
        ) {
            parts.push(format!(
                "{}: best {} {} (×{:.2} its no-fault {what}), hit hardest {} {} (×{:.2})",
                fault_label(topo),
                best.0,
                secs(best.1),
                best.2,
                bad.0,
                secs(bad.1),
                bad.2
            ));
        }
    }
    format!("{}.", parts.join("; "))
}
