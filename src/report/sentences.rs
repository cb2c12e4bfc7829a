//! The report's prose, computed from the data it describes: which system was measured and how,
//! the takeaways under the limits charts, the recommendation and the time-scale check (the
//! headline has a file of its own, [`super::headline`]).
//!
//! Why computed: the report is regenerated from whatever `results/` holds (another topology, a
//! real forwarding unit, a partial sweep), so a sentence written once for one data set would go on
//! claiming it for the next. Each claim here is made only when its figures show it: the system's
//! size from the summaries themselves, "2021" only for the topology that models it, "only" when
//! the forwarding unit falls short of the machines, "dominates" when the network outweighs the
//! work.

use super::charts::best_at;
use super::data::{ns, sweep, Run, Table};
use crate::emulator::topology::Topology;
use crate::limits::markdown::ScaleOut;
use crate::limits::Limits;
use crate::numbers::secs;
use std::collections::{BTreeMap, BTreeSet};

/// "1 forwarding unit", "5 machines".
pub(super) fn count(n: usize, one: &str) -> String {
    format!("{n} {one}{}", if n == 1 { "" } else { "s" })
}

/// "a", "a and b", "a, b and c".
fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// The system the runs measured, from their summaries: topology, machines, forwarding units; and
/// the emulator's model figures when `limits.json` measured the same topology.
pub fn system(runs: &[&Run], limits: Option<&Limits>) -> String {
    let topologies: BTreeSet<&str> = runs
        .iter()
        .filter_map(|r| r.summary.topology.as_deref())
        .collect();
    let machines: BTreeSet<&str> = runs
        .iter()
        .flat_map(|r| r.summary.per_machine.keys().map(String::as_str))
        .collect();
    let units = runs
        .iter()
        .map(|r| r.summary.forwarders.len())
        .max()
        .unwrap_or(0);
    let size = format!(
        "{} ({}) behind {}",
        count(machines.len(), "machine"),
        machines.iter().copied().collect::<Vec<_>>().join(", "),
        count(units, "forwarding unit")
    );
    let names: Vec<String> = topologies.iter().map(|t| format!("\"{t}\"")).collect();
    let mut s = if runs.iter().any(|r| r.summary.time_scale.is_some()) {
        let model = if topologies.contains(Topology::default().name.as_str()) {
            " (cmdunit's model of the measured 2021 system)"
        } else {
            ""
        };
        format!(
            " The system measured is topology {}{model} on cmdunit's emulator: {size}.",
            and_list(&names)
        )
    } else {
        format!(" The system measured is a live one: {size}.")
    };
    if let Some(m) = limits
        .and_then(|l| l.model.as_ref())
        .filter(|m| topologies.contains(m.topology.as_str()))
    {
        let rt: Vec<f64> = m.response_time_ms.values().copied().collect();
        let per_machine = match m.machine_concurrency {
            0 => format!("≈ {:.0} requests/s per machine", m.machine_capacity_rps),
            1 => format!(
                "one request at a time per machine (≈ {:.0}/s each)",
                m.machine_capacity_rps
            ),
            k => format!(
                "{k} requests at a time per machine (≈ {:.0}/s each)",
                m.machine_capacity_rps
            ),
        };
        let unit = if m.forwarder_ceiling_rps.is_finite() {
            format!("passes ≈ {:.0} requests/s", m.forwarder_ceiling_rps)
        } else {
            "has no ceiling".into()
        };
        s.push_str(&format!(
            " In the model: no-load response times {:.0}–{:.0} ms, {per_machine}, and a forwarding \
             unit that {unit} and adds ≈ {:.0} ms.",
            rt.iter().copied().fold(f64::INFINITY, f64::min),
            rt.iter().copied().fold(0.0, f64::max),
            m.forwarder_overhead_ms
        ));
    }
    s
}

/// How the sweep was run, from its folders: policies, N and repetitions per topology, the time
/// scale, the scale-out runs.
pub fn method(t: &Table, runs: &[Run], policies: usize) -> String {
    let scale = runs.iter().find_map(|r| r.summary.time_scale);
    let against = match scale {
        Some(s) => format!(
            "the emulator at time scale {s} (all times are model milliseconds: wall time / scale)"
        ),
        None => "the live system".into(),
    };
    // Topologies run alike (same N, same repetitions) are named together.
    let mut alike: BTreeMap<(Vec<u64>, u32), Vec<String>> = BTreeMap::new();
    for (topo, ps) in t.get("sweep").into_iter().flatten() {
        let reps = runs
            .iter()
            .filter(|r| r.group == "sweep" && &r.key == topo)
            .map(|r| r.rep)
            .max()
            .unwrap_or(0);
        alike.entry((ns(ps), reps)).or_default().push(topo.clone());
    }
    let mut groups: Vec<_> = alike.into_iter().collect();
    // The most measured first.
    groups.sort_by_key(|((ns, reps), _)| std::cmp::Reverse((*reps, ns.len())));
    let per_topology: Vec<String> = groups
        .iter()
        .map(|((ns, reps), topos)| {
            format!(
                "{} at N ∈ {{{}}} × {}",
                and_list(topos),
                ns.iter().map(u64::to_string).collect::<Vec<_>>().join(", "),
                count(*reps as usize, "repetition")
            )
        })
        .collect();
    let mut s = format!(
        "Method: every policy ({policies}) against {against}, per topology (files in \
         topologies/): {}.",
        per_topology.join("; ")
    );
    if let Some(ks) = scale_ks(t) {
        s.push_str(&format!(
            " {} over K ∈ {{{ks}}} forwarding units.",
            scale_ns(t)
        ));
    }
    s.push_str(
        " The system's limits measured by `cmdunit limits`. Lower bound: the latest of the \
         machines' and the forwarding units' bounds for N jobs at time 0 and of the two layers \
         taken together (efficiency = bound / makespan). Bands and whiskers: min–max over repetitions.",
    );
    s
}

/// The K of the scale-out runs, "1, 2, 3"; None without any.
fn scale_ks(t: &Table) -> Option<String> {
    let mut ks: Vec<u64> = t
        .get("scale")?
        .keys()
        .filter_map(|k| k.strip_prefix('k')?.parse().ok())
        .collect();
    ks.sort_unstable();
    (!ks.is_empty()).then(|| ks.iter().map(u64::to_string).collect::<Vec<_>>().join(", "))
}

/// "N = 1000 and 5000": the batch sizes of the scale-out runs.
fn scale_ns(t: &Table) -> String {
    let mut ns: Vec<String> = Vec::new();
    for ps in t.get("scale").into_iter().flat_map(|g| g.values()) {
        for n in super::data::ns(ps) {
            if !ns.contains(&n.to_string()) {
                ns.push(n.to_string());
            }
        }
    }
    ns.sort_by_key(|n| n.parse::<u64>().unwrap_or(0));
    format!("N = {}", and_list(&ns))
}

/// Titles and takeaways of the limits charts, from `limits.json`.
pub fn limit_chart(l: &Limits, stem: &str) -> (&'static str, String) {
    let c = &l.machine_capacity;
    let bn = &l.forwarder_bottleneck;
    match stem {
        "limits-throughput" => {
            let mut s = format!(
                "One machine saturates at {:.0}/s from {} in flight",
                c.ceiling_rps, c.knee_concurrency
            );
            if !bn.levels.is_empty() && !bn.has_ceiling() {
                s.push_str(&format!(
                    "; all {} through one forwarding unit reach {:.0}/s of their {:.0}/s, with no \
                     forwarding-unit ceiling seen",
                    count(l.machines.len(), "machine"),
                    bn.passed_rps,
                    bn.machines_combined_rps
                ));
            } else if !bn.levels.is_empty() {
                let only = if bn.ceiling_rps < 0.9 * bn.machines_combined_rps {
                    "only "
                } else {
                    ""
                };
                s.push_str(&format!(
                    "; all {} through one forwarding unit reach {only}{:.0}/s of their {:.0}/s",
                    count(l.machines.len(), "machine"),
                    bn.ceiling_rps,
                    bn.machines_combined_rps
                ));
            }
            ("Throughput against requests in flight", s + ".")
        }
        "limits-bounds" => (
            "Machines' bound and the forwarding unit's bound against N",
            match bn.bottleneck_from_n {
                Some(n) => format!(
                    "From N = {n} on the forwarding unit's bound is over 10% above the machines': \
                     it, not the machines, sets the pace."
                ),
                None => "The machines set the pace at every N measured.".into(),
            },
        ),
        "limits-scaling" => (
            "Throughput over K forwarding units",
            match ScaleOut::of(bn) {
                Some((ScaleOut::ReachesMachines, figures)) => format!(
                    "{figures}: scale-out works until the machines ({:.0}/s) are the limit.",
                    bn.machines_combined_rps
                ),
                Some((ScaleOut::BelowMachines, figures)) => format!(
                    "{figures}, still short of the machines' {:.0}/s.",
                    bn.machines_combined_rps
                ),
                Some((ScaleOut::NoGain, figures)) => {
                    format!("{figures}: more forwarding units do not raise the throughput.")
                }
                None => String::new(),
            },
        ),
        "limits-latency" => ("No-load response_time by region", latency_takeaway(l)),
        _ => (
            "work_time of every no-load answer",
            format!(
                "work_time is {:.0}–{:.0} ms, mean {:.1} ms.",
                l.work_time.dist.min, l.work_time.dist.max, l.work_time.dist.mean
            ),
        ),
    }
}

/// The fastest and slowest region, and whether the network or the work weighs more.
fn latency_takeaway(l: &Limits) -> String {
    let p50 = |r: &&crate::limits::RegionLatency| r.response_time_ms.p50;
    let fastest = l.regions.iter().min_by(|a, b| p50(a).total_cmp(&p50(b)));
    let slowest = l.regions.iter().max_by(|a, b| p50(a).total_cmp(&p50(b)));
    let (Some(f), Some(s)) = (fastest, slowest) else {
        return String::new();
    };
    let w = &l.work_time.dist;
    let net = l.platform.network_ms.p50;
    let which = if net > w.mean {
        format!(
            "the network ({net:.0} ms in the median), not the {:.0}–{:.0} ms of work, dominates",
            w.min, w.max
        )
    } else {
        format!(
            "the {:.0}–{:.0} ms of work weighs more than the network ({net:.0} ms in the median)",
            w.min, w.max
        )
    };
    format!(
        "{} answers fastest ({:.0} ms), {} slowest ({:.0} ms): {which}.",
        f.region,
        p50(&f),
        s.region,
        p50(&s)
    )
}

/// Which policy to use: how far auto and the best fixed policies are from the best at each N.
pub fn recommendation(t: &Table) -> Option<String> {
    let mut parts = Vec::new();
    let mut auto = Vec::new();
    for (topo, name, where_) in [
        ("default", "measured system", "on the measured system"),
        ("no-ceiling", "without the ceiling", "without the ceiling"),
    ] {
        let ps = sweep(t, topo)?;
        let ns = ns(ps);
        // Worst ratio to the best policy over all N, per policy.
        let mut worst: Vec<(String, f64)> = ps
            .iter()
            .filter_map(|(p, cells)| {
                let r = ns
                    .iter()
                    .map(|n| {
                        let best = best_at(ps, *n, |c| c.makespan_ms.mean)?.1;
                        Some(cells.get(n)?.makespan_ms.mean / best)
                    })
                    .collect::<Option<Vec<f64>>>()?;
                Some((p.clone(), r.into_iter().fold(0.0, f64::max)))
            })
            .collect();
        worst.sort_by(|a, b| a.1.total_cmp(&b.1));
        let gap = |r: f64| format!("≤ {:.0}% slower", 100.0 * (r - 1.0));
        let top: Vec<String> = worst
            .iter()
            .take(3)
            .map(|(p, r)| format!("{p} ({})", gap(*r)))
            .collect();
        parts.push(format!("{name}: {}", top.join(", ")));
        if let Some((_, r)) = worst.iter().find(|(p, _)| p == "auto") {
            auto.push(format!("{} {where_}", gap(*r)));
        }
    }
    let auto = if auto.is_empty() {
        String::new()
    } else {
        format!(
            " auto, the default, needs no calibration pass before a batch: it learns the system \
             from the batch's own answers and from what the last run learned. Here, like every \
             policy, it started from the calibration measured for its block, and it is {}.",
            auto.join(" and ")
        )
    };
    Some(format!(
        "Closest to the best at every N (worst gap to the best policy over all N): {}.{auto}",
        parts.join("; ")
    ))
}

/// The same batch at two time scales: does the faster sweep measure the same system?
pub fn timescale_line(t: &Table) -> Option<String> {
    let ts = t.get("timescale")?;
    let mut vals: Vec<(f64, f64, String)> = ts
        .iter()
        .filter_map(|(k, ps)| {
            let scale: f64 = k.strip_prefix('s')?.parse().ok()?;
            let (p, cells) = ps.iter().next()?;
            let (n, c) = cells.iter().next()?;
            Some((scale, c.makespan_ms.mean, format!("N = {n} {p}")))
        })
        .collect();
    vals.sort_by(|a, b| b.0.total_cmp(&a.0));
    let (reference, other) = (vals.first()?, vals.get(1)?);
    let diff = 100.0 * (other.1 - reference.1) / reference.1;
    Some(format!(
        "Time-scale check ({}): makespan {} at time scale {} and {} at scale {} — {:+.1}% ({}).",
        reference.2,
        secs(reference.1),
        reference.0,
        secs(other.1),
        other.0,
        diff,
        if diff.abs() <= 5.0 {
            "within 5%: the faster sweep measures the same system"
        } else {
            "NOT within 5%: read the sweep's absolute times with care"
        }
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::summary::Summary;

    fn run(topology: &str, machines: &[&str], forwarders: usize) -> Run {
        Run {
            group: "sweep".into(),
            key: "default".into(),
            policy: "auto".into(),
            n: 10,
            rep: 1,
            dir: Default::default(),
            summary: Summary {
                topology: Some(topology.into()),
                time_scale: Some(0.1),
                per_machine: machines.iter().map(|m| (m.to_string(), 2)).collect(),
                forwarders: (0..forwarders)
                    .map(|i| format!("http://127.0.0.1:{i}"))
                    .collect(),
                ..Summary::default()
            },
        }
    }

    #[test]
    fn the_system_is_described_from_the_summaries_not_assumed() {
        let small = run("three-machines", &["asia/0", "emea/0", "us/0"], 2);
        let s = system(&[&small], None);
        assert!(
            s.contains("topology \"three-machines\" on cmdunit's emulator"),
            "{s}"
        );
        let size = "3 machines (asia/0, emea/0, us/0) behind 2 forwarding units";
        assert!(s.contains(size), "{s}");
        assert!(!s.contains("2021") && !s.contains("five"), "{s}");

        let default = run(
            &Topology::default().name,
            &["asia/0", "asia/1", "emea/0", "us/0", "us/1"],
            1,
        );
        let l = Limits {
            model: Some(crate::limits::ModelFigures::of(&Topology::default())),
            ..Limits::default()
        };
        let s = system(&[&default], Some(&l));
        assert!(
            s.contains("measured 2021 system") && s.contains("5 machines"),
            "{s}"
        );
        assert!(s.contains("behind 1 forwarding unit."), "{s}");
        assert!(s.contains("one request at a time per machine"), "{s}");

        let mut live = run("x", &["us/0"], 1);
        live.summary.time_scale = None;
        live.summary.topology = None;
        let s = system(&[&live], Some(&l));
        assert!(
            s.contains("a live one: 1 machine (us/0)") && !s.contains("model"),
            "{s}"
        );
    }

    /// The recommendation reads auto's gap from the sweep: it once said "auto picks from N and
    /// the calibration" whatever auto did, long after auto stopped picking.
    #[test]
    fn the_recommendation_gives_autos_measured_gap() {
        use super::super::data::{Cell, Spread, Table};
        let cell = |ms: f64| Cell {
            runs: 1,
            makespan_ms: Spread::of([ms]),
            ..Cell::default()
        };
        let mut t = Table::new();
        for (topo, auto_ms) in [("default", 1100.0), ("no-ceiling", 1000.0)] {
            let policies = t
                .entry("sweep".into())
                .or_default()
                .entry(topo.into())
                .or_default();
            policies.insert("auto".into(), [(100, cell(auto_ms))].into());
            policies.insert("random".into(), [(100, cell(1000.0))].into());
        }
        let r = recommendation(&t).expect("both topologies");
        assert!(
            r.contains("≤ 10% slower on the measured system and ≤ 0% slower without the ceiling"),
            "{r}"
        );
        assert!(!r.contains("picks"), "{r}");
    }

    #[test]
    fn limits_takeaways_follow_the_figures() {
        let mut l = Limits {
            regions: vec![crate::limits::RegionLatency {
                region: "emea".into(),
                ..Default::default()
            }],
            machines: vec![Default::default(); 3],
            ..Limits::default()
        };
        l.platform.network_ms.p50 = 372.0;
        l.work_time.dist.min = 18.0;
        l.work_time.dist.max = 21.0;
        l.work_time.dist.mean = 19.5;
        assert!(limit_chart(&l, "limits-latency")
            .1
            .contains("the network (372 ms"));
        l.platform.network_ms.p50 = 2.0;
        assert!(limit_chart(&l, "limits-latency")
            .1
            .contains("work weighs more"));

        l.forwarder_bottleneck.levels = vec![Default::default()];
        l.forwarder_bottleneck.machines_combined_rps = 137.0;
        l.forwarder_bottleneck.ceiling_rps = 59.0;
        let t = limit_chart(&l, "limits-throughput").1;
        assert!(
            t.contains("all 3 machines") && t.contains("reach only 59/s"),
            "{t}"
        );
        l.forwarder_bottleneck.ceiling_rps = 135.0;
        assert!(!limit_chart(&l, "limits-throughput").1.contains("only"));
        l.forwarder_bottleneck.ceiling_rps = f64::INFINITY;
        l.forwarder_bottleneck.passed_rps = 90.0;
        let t = limit_chart(&l, "limits-throughput").1;
        assert!(
            t.contains("reach 90/s of their 137/s, with no forwarding-unit ceiling seen"),
            "{t}"
        );
    }
}
