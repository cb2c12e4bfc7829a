//! The report's charts, drawn from the aggregated sweep ([`super::data`]) with the shared plot
//! primitives, each with a one-line takeaway computed from the same cells. Policies keep one
//! colour across every chart (registry order); legends sit below the plot so the charts stay
//! legible when printed two to a row.

use super::data::{
    completion_times, largest_common_n, largest_n, ns, policy_order, sweep, Cell, Policies, Spread,
    Table, REFERENCE_N,
};
use crate::numbers::{faster_or_slower, median, secs};
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

fn below() -> LineExtras {
    LineExtras {
        legend_below: true,
        ..LineExtras::default()
    }
}

/// A metric of the cells over N: its mean (the line) and min–max (the band).
type Metric = fn(&Cell) -> Spread;

/// Per policy, a metric against N, with its min–max band, and the mean lower bound dashed.
fn metric_vs_n(policies: &Policies, metric: Metric, with_bound: bool) -> (Vec<Series>, LineExtras) {
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

/// One metric of the sweep against N, one line per policy, and its takeaway at the largest N.
struct VsN {
    stem: String,
    /// Chart title; the report's caption adds " against N".
    title: String,
    y_label: &'static str,
    metric: Metric,
    /// Logarithmic y (times spanning decades); efficiency stays linear.
    log_y: bool,
    /// Draw the mean lower bound, dashed.
    bound: bool,
}

impl VsN {
    /// Draw the chart; the caption is the title, "against N".
    fn draw(&self, policies: &Policies, dir: &Path) -> Result<(), PlotError> {
        let (series, extras) = metric_vs_n(policies, self.metric, self.bound);
        plot::line_chart_with(
            &dir.join(&self.stem),
            &Axes {
                title: self.title.clone(),
                x_label: "N (requests in the batch)".into(),
                y_label: self.y_label.into(),
                log_x: true,
                log_y: self.log_y,
            },
            &series,
            &extras,
        )
    }

    /// The policy with the lowest mean at the largest N, and that N.
    fn best_at_largest_n(&self, policies: &Policies) -> Option<(u64, String, f64)> {
        let n = largest_n(policies)?;
        let metric = self.metric;
        best_at(policies, n, |c| metric(c).mean).map(|(p, v)| (n, p, v))
    }
}

/// The policy with the lowest mean of `metric` at `n`.
pub fn best_at(
    policies: &Policies,
    n: u64,
    metric: impl Fn(&Cell) -> f64,
) -> Option<(String, f64)> {
    policies
        .iter()
        .filter_map(|(p, cells)| cells.get(&n).map(|c| (p.clone(), metric(c))))
        .filter(|(_, v)| v.is_finite())
        .min_by(|a, b| a.1.total_cmp(&b.1))
}

/// "1 forwarding unit", "3 forwarding units": how many the runs of a sweep topology used.
fn units(policies: &Policies) -> String {
    let k = policies
        .values()
        .flat_map(|c| c.values())
        .map(|c| c.forwarders)
        .max()
        .unwrap_or(0);
    format!("{k} forwarding unit{}", if k == 1 { "" } else { "s" })
}

/// Draw every chart the data allows; returns them in report order.
pub fn draw_all(t: &Table, dir: &Path) -> Result<Vec<Chart>, PlotError> {
    let mut out = Vec::new();
    for (topo, system) in [
        ("default", "measured system"),
        ("no-ceiling", "forwarding unit without a ceiling"),
    ] {
        let Some(policies) = sweep(t, topo) else {
            continue;
        };
        let title = if topo == "default" {
            format!("{system} ({})", units(policies))
        } else {
            system.to_string()
        };
        let chart = VsN {
            stem: format!("makespan-{topo}"),
            title: format!("Makespan, {title}"),
            y_label: "makespan (ms, model time)",
            metric: |c| c.makespan_ms,
            log_y: true,
            bound: true,
        };
        chart.draw(policies, dir)?;
        out.push(Chart {
            stem: chart.stem.clone(),
            title: format!("Makespan against N, {title}"),
            takeaway: makespan_takeaway(&chart, policies),
        });
    }

    if let Some(policies) = sweep(t, "default") {
        let efficiency = VsN {
            stem: "efficiency-default".into(),
            title: "Efficiency (lower bound / makespan)".into(),
            y_label: "efficiency (1 = optimal)",
            metric: |c| c.efficiency,
            log_y: false,
            bound: false,
        };
        efficiency.draw(policies, dir)?;
        out.push(Chart {
            stem: efficiency.stem,
            title: "Efficiency against N".into(),
            takeaway: efficiency_takeaway(policies),
        });
        for chart in [
            VsN {
                stem: "completion-mean-default".into(),
                title: "Mean completion time".into(),
                y_label: "mean completion (ms)",
                metric: |c| c.completion_mean_ms,
                log_y: true,
                bound: false,
            },
            VsN {
                stem: "completion-p99-default".into(),
                title: "p99 completion time".into(),
                y_label: "p99 completion (ms)",
                metric: |c| c.completion_p99_ms,
                log_y: true,
                bound: false,
            },
        ] {
            chart.draw(policies, dir)?;
            let takeaway = chart
                .best_at_largest_n(policies)
                .map(|(n, p, v)| format!("{} at N = {n}: best {p} with {}.", chart.title, secs(v)))
                .unwrap_or_default();
            out.push(Chart {
                title: format!("{} against N", chart.title),
                stem: chart.stem,
                takeaway,
            });
        }
        out.extend(reference_n_charts(policies, dir)?);
    }

    if let Some(chart) = scale_chart(t, dir)? {
        out.push(chart);
    }
    out.extend(fault_charts(t, dir)?);
    Ok(out)
}

/// Requests per machine and the completion-time CDFs at N = [`REFERENCE_N`], one bar or line per
/// policy (when that N was measured).
fn reference_n_charts(policies: &Policies, dir: &Path) -> Result<Vec<Chart>, PlotError> {
    let n = REFERENCE_N;
    let order = policy_order(policies.keys().cloned());
    let at: Vec<(&String, &Cell)> = order
        .iter()
        .filter_map(|p| policies[p].get(&n).map(|c| (p, c)))
        .collect();
    if at.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    let mut machines: Vec<String> = at
        .iter()
        .flat_map(|(_, c)| c.per_machine.keys().cloned())
        .collect();
    machines.sort();
    machines.dedup();
    let layers: Vec<(String, Vec<f64>)> = machines
        .iter()
        .map(|m| {
            let counts = at
                .iter()
                .map(|(_, c)| c.per_machine.get(m).copied().unwrap_or(0.0));
            (m.clone(), counts.collect())
        })
        .collect();
    let cats: Vec<String> = at.iter().map(|(p, _)| (*p).clone()).collect();
    let stem = format!("per-machine-{n}");
    plot::stacked_bar_chart(
        &dir.join(&stem),
        &Axes {
            title: format!("Requests per machine, N = {n}"),
            x_label: "requests answered".into(),
            y_label: String::new(),
            ..Axes::default()
        },
        &cats,
        &layers,
        true,
    )?;
    out.push(Chart {
        stem,
        title: format!("Requests per machine at N = {n}"),
        takeaway: per_machine_takeaway(&at),
    });
    let samples: Vec<(String, Vec<f64>)> = at
        .iter()
        .filter_map(|(p, c)| {
            let times = c.first_dir.as_deref().and_then(completion_times)?;
            Some(((*p).clone(), times))
        })
        .collect();
    if !samples.is_empty() {
        let stem = format!("cdf-{n}");
        plot::cdf_chart_with(
            &dir.join(&stem),
            &Axes {
                title: format!("Completion times, N = {n}"),
                x_label: "completion time from batch start (ms)".into(),
                y_label: "fraction of requests done".into(),
                ..Axes::default()
            },
            &samples,
            true,
        )?;
        out.push(Chart {
            stem,
            title: format!("Completion-time CDFs at N = {n} (repetition 1)"),
            takeaway: cdf_takeaway(&samples),
        });
    }
    Ok(out)
}

/// Makespan over K forwarding units, one line per N (the scale runs), when there are any.
fn scale_chart(t: &Table, dir: &Path) -> Result<Option<Chart>, PlotError> {
    let Some(scale) = t.get("scale") else {
        return Ok(None);
    };
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
    if per_n.is_empty() {
        return Ok(None);
    }
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
    Ok(Some(Chart {
        stem: "makespan-forwarders".into(),
        title: "Makespan against the number of forwarding units".into(),
        takeaway: scale_takeaway(&per_n),
    }))
}

/// p99 and mean completion per policy under each fault topology next to its fault-free base.
fn fault_charts(t: &Table, dir: &Path) -> Result<Vec<Chart>, PlotError> {
    let mut out = Vec::new();
    for (base_topo, suffix, system) in [
        ("default", "", "measured system"),
        ("no-ceiling", "-no-ceiling", "no ceiling"),
    ] {
        let faults = fault_topologies(t, suffix);
        let Some(base) = sweep(t, base_topo) else {
            continue;
        };
        let Some(n) = largest_common_n(t, &faults) else {
            continue;
        };
        let topos: Vec<&str> = std::iter::once(base_topo)
            .chain(faults.iter().map(String::as_str))
            .collect();
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
                    let policies = sweep(t, topo);
                    let values = order.iter().map(|p| {
                        policies
                            .and_then(|ps| ps.get(p))
                            .and_then(|c| c.get(&n))
                            .map_or(f64::NAN, metric)
                    });
                    (fault_label(topo), values.collect())
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

/// The fault topologies of the sweep on one base (`suffix` "" or "-no-ceiling") that were run.
pub fn fault_topologies(t: &Table, suffix: &str) -> Vec<String> {
    ["slow-machine", "machine-down"]
        .iter()
        .map(|f| format!("{f}{suffix}"))
        .filter(|f| sweep(t, f).is_some())
        .collect()
}

fn makespan_takeaway(chart: &VsN, policies: &Policies) -> String {
    let Some((n, best, ms)) = chart.best_at_largest_n(policies) else {
        return String::new();
    };
    match policies.get("random").and_then(|c| c.get(&n)) {
        Some(random) => format!(
            "At N = {n} {best} finishes in {} ({:.0}% of the bound's pace); random takes {}.",
            secs(ms),
            100.0
                * policies[&best]
                    .get(&n)
                    .map_or(f64::NAN, |c| c.efficiency.mean),
            secs(random.makespan_ms.mean)
        ),
        None => format!("At N = {n} {best} is fastest: {}.", secs(ms)),
    }
}

fn cdf_takeaway(samples: &[(String, Vec<f64>)]) -> String {
    let medians: Vec<(&String, f64)> = samples
        .iter()
        .map(|(p, v)| (p, median(v)))
        .filter(|(_, m)| m.is_finite())
        .collect();
    let best = medians.iter().min_by(|a, b| a.1.total_cmp(&b.1));
    let worst = medians.iter().max_by(|a, b| a.1.total_cmp(&b.1));
    match (best, worst) {
        (Some(b), Some(w)) => format!(
            "Half the requests are done after {} with {}, after {} with {}.",
            secs(b.1),
            b.0,
            secs(w.1),
            w.0
        ),
        _ => String::new(),
    }
}

fn efficiency_takeaway(policies: &Policies) -> String {
    let ns = ns(policies);
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

/// Per N, K = 1 against the fastest K; then where more units stop helping, and whether the
/// machines are then the limit (their bound above the forwarding units').
fn scale_takeaway(per_n: &BTreeMap<u64, Vec<(f64, Cell)>>) -> String {
    let fastest = |pts: &[(f64, Cell)]| -> Option<(f64, f64)> {
        pts.iter()
            .map(|(k, c)| (*k, c.makespan_ms.mean))
            .filter(|(_, ms)| ms.is_finite())
            .min_by(|a, b| a.1.total_cmp(&b.1))
    };
    let mut parts = Vec::new();
    for (n, pts) in per_n {
        let k1 = pts.iter().find(|(k, _)| *k == 1.0);
        if let (Some((_, c1)), Some((kb, best))) = (k1, fastest(pts)) {
            let one = c1.makespan_ms.mean;
            parts.push(if kb == 1.0 {
                format!("N = {n}: fastest with K = 1 ({})", secs(one))
            } else {
                format!(
                    "N = {n}: {} with K = {kb} against {} with K = 1 ({})",
                    secs(best),
                    secs(one),
                    faster_or_slower(one, best)
                )
            });
        }
    }
    // Where more units stop helping: the smallest K within 10% of the best, at the largest N.
    let plateau = per_n.values().last().and_then(|pts| {
        let (_, best) = fastest(pts)?;
        pts.iter().find(|(_, c)| c.makespan_ms.mean <= 1.1 * best)
    });
    match plateau {
        Some((k, c)) if *k > 1.0 => {
            let why = if c.machines_bound_ms.mean >= c.forwarders_bound_ms.mean {
                ": the machines are the limit"
            } else {
                ""
            };
            format!(
                "{}; from K = {k} on, more units barely help{why}.",
                parts.join("; ")
            )
        }
        _ => format!("{}.", parts.join("; ")),
    }
}

/// "slow-machine-no-ceiling" → "one machine ×5 slower"-style legend names.
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
        sweep(t, topo)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(makespan_ms: f64, machines_ms: f64, forwarders_ms: f64) -> Cell {
        let one = |v| Spread {
            mean: v,
            min: v,
            max: v,
        };
        Cell {
            runs: 1,
            makespan_ms: one(makespan_ms),
            machines_bound_ms: one(machines_ms),
            forwarders_bound_ms: one(forwarders_ms),
            ..Cell::default()
        }
    }

    #[test]
    fn more_forwarding_units_that_do_not_help_are_not_called_faster() {
        let per_n = BTreeMap::from([(
            1000,
            vec![
                (1.0, cell(17_400.0, 5_000.0, 17_000.0)),
                (3.0, cell(17_600.0, 5_000.0, 6_000.0)),
            ],
        )]);
        let s = scale_takeaway(&per_n);
        assert!(s.contains("fastest with K = 1 (17.4 s)"), "{s}");
        assert!(!s.contains("faster") && !s.contains("barely help"), "{s}");

        let per_n = BTreeMap::from([(
            1000,
            vec![
                (1.0, cell(17_400.0, 5_000.0, 17_000.0)),
                (5.0, cell(5_250.0, 5_000.0, 3_400.0)),
                (8.0, cell(5_300.0, 5_000.0, 2_100.0)),
            ],
        )]);
        let s = scale_takeaway(&per_n);
        assert!(
            s.contains("5.25 s with K = 5 against 17.4 s with K = 1 (3.3× faster)"),
            "{s}"
        );
        assert!(s.contains("from K = 5 on, more units barely help: the machines are the limit"));
    }

    #[test]
    fn the_cdf_takeaway_uses_the_median() {
        let samples = vec![
            ("a".to_string(), vec![1000.0, 2000.0, 3000.0, 4000.0]),
            ("b".to_string(), vec![500.0, 700.0, 900.0]),
        ];
        assert_eq!(
            cdf_takeaway(&samples),
            "Half the requests are done after 0.70 s with b, after 2.50 s with a."
        );
    }
}
