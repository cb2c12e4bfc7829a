//! The first page's headline, computed from the sweep: the best makespan at the reference N and
//! which bound sets its pace, what more forwarding units changed, how far apart the policies are
//! without the forwarding unit's ceiling.
//!
//! Each clause is made only when the cells show it: "the forwarding unit sets the pace" when its
//! bound is the later one (by more than 10%) under every policy at that N, "faster" when K units
//! finished sooner than one, "differ" when the policies are more than 5% apart.

use super::charts::best_at;
use super::data::{reference_n, sweep, Cell, Policies, Table};
use super::sentences::count;
use crate::limits::Limits;
use crate::numbers::{faster_or_slower, secs};

/// Which of the two bounds is the later one, in every cell described.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Pace {
    /// The forwarding units' bound exceeds the machines' by more than 10% in every cell.
    ForwardingUnit,
    /// The machines' bound exceeds the forwarding units' by more than 10% in every cell.
    Machines,
    /// Neither throughout (or no cell).
    Mixed,
}

impl Pace {
    pub fn of<'a>(cells: impl IntoIterator<Item = &'a Cell>) -> Pace {
        let bounds: Vec<(f64, f64)> = cells
            .into_iter()
            .map(|c| (c.machines_bound_ms.mean, c.forwarders_bound_ms.mean))
            .collect();
        if bounds.is_empty() {
            Pace::Mixed
        } else if bounds.iter().all(|(m, f)| *f > 1.1 * m) {
            Pace::ForwardingUnit
        } else if bounds.iter().all(|(m, f)| *m > 1.1 * f) {
            Pace::Machines
        } else {
            Pace::Mixed
        }
    }
}

/// The cells of every policy at `n`.
fn cells_at(policies: &Policies, n: u64) -> impl Iterator<Item = &Cell> {
    policies.values().filter_map(move |c| c.get(&n))
}

/// The first page's headline: the best makespan at the reference N and who sets its pace; what
/// more forwarding units changed; how far apart the policies are without the ceiling.
pub fn headline(t: &Table, limits: Option<&Limits>) -> String {
    let mut parts = Vec::new();
    if let Some(ps) = sweep(t, "default") {
        if let Some(part) = reference_n(ps).and_then(|n| best_makespan(ps, n, limits)) {
            parts.push(part);
        }
    }
    if let Some(part) = scale_out(t) {
        parts.push(part);
    }
    if let Some(ps) = sweep(t, "no-ceiling") {
        if let Some(part) = reference_n(ps).and_then(|n| policy_spread(ps, n)) {
            parts.push(part);
        }
    }
    parts.join(" ")
}

/// "Headline: through the one forwarding unit, N = 1000 takes …: 58 requests/s … whatever the
/// policy, the forwarding unit sets the pace." — the last clause only when the runs' bounds say so.
fn best_makespan(ps: &Policies, n: u64, limits: Option<&Limits>) -> Option<String> {
    let (best, ms) = best_at(ps, n, |c| c.makespan_ms.mean)?;
    let cell = &ps[&best][&n];
    let through = match cell.forwarders {
        1 => "the one forwarding unit".to_string(),
        k => count(k, "forwarding unit"),
    };
    let mut s = format!(
        "Headline: through {through}, N = {n} takes {} at best ({best}; lower bound {}, \
         efficiency {:.2})",
        secs(ms),
        secs(cell.lower_bound_ms.mean),
        cell.efficiency.mean
    );
    if let Some(r) = ps.get("random").and_then(|c| c.get(&n)) {
        s.push_str(&format!(
            " against {} for the forwarding unit's own random choice",
            secs(r.makespan_ms.mean)
        ));
    }
    s.push_str(&format!(": {:.0} requests/s", n as f64 / (ms / 1000.0)));
    if let Some(l) = limits {
        let b = &l.forwarder_bottleneck;
        s.push_str(&if b.has_ceiling() {
            format!(
                ", against a measured forwarding-unit ceiling of {:.0}/s",
                b.ceiling_rps
            )
        } else {
            ", with no forwarding-unit ceiling seen by the limits analysis".to_string()
        });
    }
    let (m, f) = (
        secs(cell.machines_bound_ms.mean),
        secs(cell.forwarders_bound_ms.mean),
    );
    s.push_str(&match Pace::of(cells_at(ps, n)) {
        Pace::ForwardingUnit => format!(
            ". The forwarding unit's bound ({f}) is above the machines' ({m}) under every policy: \
             whatever the policy, the forwarding unit sets the pace."
        ),
        Pace::Machines => format!(
            ". The machines' bound ({m}) is above the forwarding unit's ({f}) under every policy: \
             the machines, not the forwarding unit, set the pace."
        ),
        Pace::Mixed => ".".into(),
    });
    Some(s)
}

/// K = 1 against the most forwarding units measured, at the reference N of the scale-out runs.
fn scale_out(t: &Table) -> Option<String> {
    let scale = t.get("scale")?;
    let at = |k: &str, n: u64| {
        scale
            .get(k)?
            .values()
            .next()?
            .get(&n)
            .map(|c| c.makespan_ms.mean)
    };
    let n = reference_n(scale.get("k1")?)?;
    let one = at("k1", n)?;
    let (k_max, most) = scale
        .keys()
        .filter_map(|key| Some((key.strip_prefix('k')?.parse::<u64>().ok()?, key)))
        .filter(|(k, _)| *k > 1)
        .max()
        .and_then(|(k, key)| Some((k, at(key, n)?)))?;
    let change = faster_or_slower(one, most);
    let figures = format!(
        "N = {n} takes {} with K = 1 and {} with K = {k_max}",
        secs(one),
        secs(most)
    );
    Some(if change.ends_with("faster") {
        format!(
            "The fix is measured: with K forwarding units over the same workers, {figures}, \
             {change}."
        )
    } else {
        format!(
            "More forwarding units over the same workers do not help here: {figures} \
             ({change})."
        )
    })
}

/// How far apart the policies finish at `n`, and whether the machines set the pace there.
fn policy_spread(ps: &Policies, n: u64) -> Option<String> {
    let vals: Vec<(&String, f64)> = ps
        .iter()
        .filter_map(|(p, c)| Some((p, c.get(&n)?.makespan_ms.mean)))
        .filter(|(_, v)| v.is_finite())
        .collect();
    let b = vals.iter().min_by(|a, b| a.1.total_cmp(&b.1))?;
    let w = vals.iter().max_by(|a, b| a.1.total_cmp(&b.1))?;
    let limit = match Pace::of(cells_at(ps, n)) {
        Pace::Machines => " the machines are the limit and",
        _ => "",
    };
    let differ = match faster_or_slower(w.1, b.1).as_str() {
        "as fast" => "finish alike".to_string(),
        ratio => format!("differ {}", ratio.trim_end_matches(" faster")),
    };
    Some(format!(
        "Without the forwarding unit's ceiling{limit} the policies {differ}: {} {} against {} {} \
         at N = {n}.",
        b.0,
        secs(b.1),
        w.0,
        secs(w.1)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::data::Spread;

    fn one(v: f64) -> Spread {
        Spread {
            mean: v,
            min: v,
            max: v,
        }
    }

    /// A cell from its makespan and its machines' and forwarding units' bounds.
    fn cell([makespan_ms, machines_ms, forwarders_ms]: [f64; 3]) -> Cell {
        let bound = machines_ms.max(forwarders_ms);
        Cell {
            runs: 1,
            makespan_ms: one(makespan_ms),
            lower_bound_ms: one(bound),
            efficiency: one(bound / makespan_ms),
            machines_bound_ms: one(machines_ms),
            forwarders_bound_ms: one(forwarders_ms),
            forwarders: 1,
            ..Cell::default()
        }
    }

    /// `group` with rows of (key, policy, N, [makespan, machines' bound, units' bound]).
    fn table(group: &str, rows: &[(&str, &str, u64, [f64; 3])]) -> Table {
        let mut t = Table::new();
        for (key, policy, n, figures) in rows {
            t.entry(group.to_string())
                .or_default()
                .entry(key.to_string())
                .or_default()
                .entry(policy.to_string())
                .or_default()
                .insert(*n, cell(*figures));
        }
        t
    }

    const PACE: &str = "whatever the policy, the forwarding unit sets the pace";

    #[test]
    fn the_forwarding_unit_sets_the_pace_only_when_its_bound_is_the_later_one() {
        let limits = Limits::default();
        let unit_bound = table(
            "sweep",
            &[
                ("default", "random", 1000, [17_600.0, 5_400.0, 17_200.0]),
                ("default", "auto", 1000, [17_400.0, 5_400.0, 17_200.0]),
            ],
        );
        let h = headline(&unit_bound, Some(&limits));
        assert!(h.contains(PACE), "{h}");
        assert!(
            h.contains("bound (17.2 s) is above the machines' (5.40 s)"),
            "{h}"
        );

        let machines_bound = table(
            "sweep",
            &[
                ("default", "random", 1000, [9_000.0, 8_000.0, 2_000.0]),
                ("default", "auto", 1000, [8_500.0, 8_000.0, 2_000.0]),
            ],
        );
        let h = headline(&machines_bound, Some(&limits));
        assert!(!h.contains(PACE), "{h}");
        assert!(
            h.contains("the machines, not the forwarding unit, set the pace"),
            "{h}"
        );

        let mixed = table(
            "sweep",
            &[
                ("default", "random", 1000, [9_000.0, 8_000.0, 2_000.0]),
                ("default", "auto", 1000, [17_400.0, 5_400.0, 17_200.0]),
            ],
        );
        let h = headline(&mixed, Some(&limits));
        assert!(!h.contains("the pace"), "{h}");
    }

    #[test]
    fn a_limits_run_without_a_unit_ceiling_is_not_quoted_as_one() {
        let mut limits = Limits::default();
        limits.forwarder_bottleneck.ceiling_rps = f64::INFINITY;
        let t = table(
            "sweep",
            &[("default", "auto", 1000, [9_000.0, 8_000.0, 2_000.0])],
        );
        let h = headline(&t, Some(&limits));
        assert!(
            h.contains("with no forwarding-unit ceiling seen") && !h.contains("inf/s"),
            "{h}"
        );
        limits.forwarder_bottleneck.ceiling_rps = 58.8;
        let h = headline(&t, Some(&limits));
        assert!(
            h.contains("measured forwarding-unit ceiling of 59/s"),
            "{h}"
        );
    }

    #[test]
    fn more_forwarding_units_that_slow_the_batch_are_called_slower() {
        let faster = table(
            "scale",
            &[
                ("k1", "auto", 1000, [17_400.0, 5_000.0, 17_000.0]),
                ("k5", "auto", 1000, [5_250.0, 5_000.0, 3_400.0]),
            ],
        );
        let h = headline(&faster, None);
        assert!(
            h.contains("The fix is measured") && h.contains("3.3× faster"),
            "{h}"
        );

        let slower = table(
            "scale",
            &[
                ("k1", "auto", 1000, [17_400.0, 5_000.0, 17_000.0]),
                ("k3", "auto", 1000, [20_000.0, 5_000.0, 6_000.0]),
            ],
        );
        let h = headline(&slower, None);
        assert!(h.contains("(1.1× slower)") && !h.contains("faster"), "{h}");
        assert!(h.contains("do not help"), "{h}");

        let same = table(
            "scale",
            &[
                ("k1", "auto", 30, [2_000.0, 1_000.0, 1_900.0]),
                ("k2", "auto", 30, [1_980.0, 1_000.0, 1_000.0]),
            ],
        );
        let h = headline(&same, None);
        assert!(h.contains("N = 30 takes") && h.contains("(as fast)"), "{h}");
    }

    #[test]
    fn policies_that_finish_alike_are_not_said_to_differ() {
        let alike = table(
            "sweep",
            &[
                ("no-ceiling", "a", 1000, [5_000.0, 4_900.0, 1_000.0]),
                ("no-ceiling", "b", 1000, [5_100.0, 4_900.0, 1_000.0]),
            ],
        );
        let h = headline(&alike, None);
        let expected = "the machines are the limit and the policies finish alike";
        assert!(h.contains(expected), "{h}");
        let apart = table(
            "sweep",
            &[
                ("no-ceiling", "a", 1000, [5_000.0, 4_900.0, 1_000.0]),
                ("no-ceiling", "b", 1000, [22_000.0, 4_900.0, 1_000.0]),
            ],
        );
        assert!(headline(&apart, None).contains("the policies differ 4.4×"));
    }
}
