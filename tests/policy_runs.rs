//! Issue 3, acceptance 1: every policy against the embedded emulator (real HTTP on loopback, a
//! small time scale): all N accounted for, and each machine gets what the policy promises.

use cmdunit::calibrate::probe::ProbeMode;
use cmdunit::calibrate::Calibration;
use cmdunit::emulator::topology::Topology;
use cmdunit::endpoint::Target;
use cmdunit::policy::schedule::forwarder_slots;
use cmdunit::policy::{by_name, PlanInput};
use cmdunit::run::{run_batch, EmulateConfig, RunConfig};
use cmdunit::summary::Summary;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Small enough to keep each batch well under a second of wall time.
const SCALE: f64 = 0.03;

fn out_dir(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("cmdunit-policy-{}-{name}", std::process::id()))
}

/// Runs a batch; returns its summary and the calibration it planned with (calibration.json).
fn run_with(
    policy: &str,
    n: usize,
    topology: Option<Topology>,
    forwarders: usize,
) -> (Summary, Calibration) {
    let dir = out_dir(&format!("{policy}-{n}-{forwarders}"));
    let mut cfg = RunConfig::new(n, policy, Vec::new(), dir.clone());
    cfg.emulate = Some(EmulateConfig {
        forwarders,
        awake: true,
    });
    cfg.topology = topology;
    cfg.time_scale = SCALE;
    cfg.seed = 11;
    cfg.charts = false;
    // Quick calibration: latencies measured, service times and ceilings from the topology.
    cfg.calibration_mode = Some(ProbeMode::Quick);
    let summary = run_batch(&cfg).unwrap_or_else(|e| panic!("{policy}, N = {n}: {e}"));
    let text = std::fs::read_to_string(dir.join("calibration.json")).expect("calibration.json");
    let cal: Calibration = serde_json::from_str(&text).expect("a calibration");
    let _ = std::fs::remove_dir_all(&dir);
    (summary, cal)
}

fn run(policy: &str, n: usize) -> Summary {
    run_with(policy, n, None, 1).0
}

/// The per-machine counts a static policy's plan promises for this calibration.
fn planned_counts(policy: &str, n: usize, cal: &Calibration) -> BTreeMap<String, u64> {
    let layout = cal.layout();
    let plan = by_name(policy)
        .unwrap()
        .plan(&PlanInput {
            n,
            calibration: cal,
            layout: &layout,
            seed: 11,
        })
        .unwrap();
    let mut counts = BTreeMap::new();
    for j in &plan.jobs {
        let Target::Machine(m) = j.target else {
            panic!("{policy} left a job unbound: {j:?}")
        };
        *counts
            .entry(cal.machines[m as usize].id.to_string())
            .or_insert(0) += 1;
    }
    counts
}

fn count(s: &Summary, machine: &str) -> u64 {
    s.per_machine.get(machine).copied().unwrap_or(0)
}

fn per_region(s: &Summary, region: &str) -> u64 {
    s.per_machine
        .iter()
        .filter(|(m, _)| m.starts_with(&format!("{region}/")))
        .map(|(_, c)| c)
        .sum()
}

/// Everything answered, once: the emulator's default topology has no faults.
fn all_ok(s: &Summary, n: u64) {
    assert_eq!(s.n, n);
    assert_eq!(s.ok + s.failed, n, "{s:?}");
    assert_eq!(s.ok, n, "failures: {:?}", s.failures);
    assert_eq!(
        s.per_machine.values().sum::<u64>(),
        n,
        "{:?}",
        s.per_machine
    );
}

#[test]
fn machine_rr_gives_every_machine_the_same_count_within_one() {
    let s = run("machine-rr", 53);
    all_ok(&s, 53);
    assert_eq!(s.per_machine.len(), 5, "{:?}", s.per_machine);
    for (m, &c) in &s.per_machine {
        assert!((10..=11).contains(&c), "{m}: {c} ({:?})", s.per_machine);
    }
}

#[test]
fn region_rr_gives_every_region_the_same_count_within_one() {
    let s = run("region-rr", 31);
    all_ok(&s, 31);
    for r in ["asia", "emea", "us"] {
        let c = per_region(&s, r);
        assert!((10..=11).contains(&c), "{r}: {c} ({:?})", s.per_machine);
    }
}

#[test]
fn fastest_sends_everything_to_the_nearest_machine() {
    let s = run("fastest", 25);
    all_ok(&s, 25);
    assert_eq!(count(&s, "emea/0"), 25, "{:?}", s.per_machine);
}

#[test]
fn random_leaves_the_choice_to_the_forwarding_unit() {
    let s = run("random", 60);
    all_ok(&s, 60);
    // 60 draws over five machines: every region is hit (each with probability 1/3 per draw).
    for r in ["asia", "emea", "us"] {
        assert!(per_region(&s, r) > 0, "{r}: {:?}", s.per_machine);
    }
}

#[test]
fn weighted_and_per_region_queues_give_each_machine_exactly_its_planned_count() {
    for (policy, n) in [("weighted", 200), ("per-region-queues", 300)] {
        let (s, cal) = run_with(policy, n, None, 1);
        all_ok(&s, n as u64);
        assert_eq!(s.per_machine, planned_counts(policy, n, &cal), "{policy}");
    }
}

#[test]
fn per_region_queues_predicts_its_plan_and_sends_far_regions_first() {
    let s = run("per-region-queues", 300);
    assert_eq!(s.policy, "per-region-queues");
    let predicted = s.predicted_makespan_ms.expect("a prediction");
    assert!(
        predicted >= s.lower_bound_ms - 1e-6,
        "{predicted} < {}",
        s.lower_bound_ms
    );
    assert!(s.reason.contains("far regions sent first"), "{}", s.reason);
}

#[test]
fn late_binding_policies_account_for_every_job() {
    for policy in ["least-outstanding", "p2c-ewma"] {
        let s = run(policy, 120);
        all_ok(&s, 120);
        assert_eq!(s.policy, policy);
        assert!(
            s.per_machine.values().filter(|&&c| c > 0).count() >= 2,
            "{policy}: {:?}",
            s.per_machine
        );
    }
}

#[test]
fn auto_sends_one_request_to_one_region() {
    let s = run("auto", 1);
    all_ok(&s, 1);
    assert_eq!(s.requested_policy, "auto");
    assert_ne!(s.policy, "auto", "auto names the policy it ran");
    assert!(s.reason.starts_with("auto chose"), "{}", s.reason);
    let used: Vec<_> = s.per_machine.iter().filter(|(_, &c)| c > 0).collect();
    assert_eq!(used.len(), 1, "{:?}", s.per_machine);
}

#[test]
fn auto_spreads_two_thousand_over_all_five_machines() {
    let s = run("auto", 2000);
    all_ok(&s, 2000);
    assert_eq!(s.per_machine.len(), 5, "{:?}", s.per_machine);
    assert!(
        s.per_machine.values().all(|&c| c > 0),
        "{:?}",
        s.per_machine
    );
}

#[test]
fn planned_policies_give_each_forwarding_unit_what_its_ceiling_passes() {
    let (s, cal) = run_with("per-region-queues", 300, None, 3);
    all_ok(&s, 300);
    let mut expected: BTreeMap<String, u64> = BTreeMap::new();
    for slot in forwarder_slots(300, &cal) {
        *expected
            .entry(cal.forwarders[slot.forwarder].url.clone())
            .or_insert(0) += 1;
    }
    assert_eq!(expected.len(), 3);
    assert_eq!(s.per_forwarder, expected);
}

#[test]
fn without_a_ceiling_the_plan_fills_the_machines_to_one_water_level() {
    let mut t = Topology::default();
    t.forwarder.handling_ms = 0.0;
    let (s, cal) = run_with("per-region-queues", 500, Some(t), 1);
    all_ok(&s, 500);
    assert_eq!(
        s.per_machine,
        planned_counts("per-region-queues", 500, &cal)
    );
    // Water-filling: a machine with a shorter trip (same service time) gets at least as many.
    let trip = |id: &str| {
        let m = cal
            .machines
            .iter()
            .find(|m| m.id.to_string() == id)
            .unwrap();
        m.latency_ms + m.service_ms
    };
    for (a, &ca) in &s.per_machine {
        for (b, &cb) in &s.per_machine {
            if trip(a) < trip(b) {
                assert!(ca >= cb, "{a} {ca} vs {b} {cb} ({:?})", s.per_machine);
            }
        }
    }
}
