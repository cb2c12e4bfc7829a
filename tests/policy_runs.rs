//! Every policy against the embedded emulator (real HTTP on loopback, a small time scale): all N
//! accounted for, and each machine gets what the policy promises.

mod run_support;

use cmdunit::emulator::topology::Topology;
use cmdunit::endpoint::{Layout, Target};
use cmdunit::policy::{by_name, Decision, ForwarderLoad, JobCtx, MachineLoad, StartInput, View};
use cmdunit::run::run_batch;
use cmdunit::summary::Summary;
use run_support::*;

/// Runs a batch against the emulator; policies that plan from a model get the emulated
/// system's true parameters as their calibration file.
fn run_with(policy: &str, n: u64, t: Topology, forwarders: usize) -> Summary {
    let _g = serial();
    let dir = tmp_dir(&format!("{policy}-{n}-{forwarders}"));
    let mut cfg = config_emulated(n, policy, t.clone(), forwarders, true, &dir);
    cfg.seed = 11;
    if by_name(policy).unwrap().needs_model() {
        cfg.calibration_file = Some(model_file(&t, forwarders, &dir));
    }
    let summary = run_batch(&cfg).unwrap_or_else(|e| panic!("{policy}, N = {n}: {e}"));
    let _ = std::fs::remove_dir_all(&dir);
    summary
}

fn run(policy: &str, n: u64) -> Summary {
    run_with(policy, n, Topology::default(), 1)
}

/// The per-machine and per-unit counts a policy that decides from its model alone sends, played
/// without a system (every unit and machine free, time jumping to each release).
fn planned_counts(policy: &str, n: u64, t: &Topology, units: usize) -> (Vec<u64>, Vec<u64>) {
    let urls: Vec<String> = (0..units).map(|i| format!("u{i}")).collect();
    let model = cmdunit::run::system::true_model(t, &urls);
    let layout: Layout = t.layout();
    let mut b = by_name(policy)
        .unwrap()
        .start(&StartInput {
            n,
            layout: &layout,
            forwarder_urls: &urls,
            model: Some(&model),
            seed: 11,
            time_scale: Default::default(),
        })
        .unwrap();
    let machines = vec![MachineLoad::default(); layout.machines.len()];
    let forwarders = vec![
        ForwarderLoad {
            in_flight: 0,
            usable: true
        };
        units
    ];
    let (mut per_machine, mut per_unit) = (vec![0; machines.len()], vec![0; units]);
    let mut now = 0.0;
    for id in 0..n as u32 {
        loop {
            let view = View {
                now_ms: now,
                machines: &machines,
                forwarders: &forwarders,
                unissued: n - u64::from(id),
                alive: 0,
            };
            let ctx = JobCtx {
                id,
                attempt: 0,
                avoid: None,
                previous: None,
            };
            match b.next(&view, Some(&ctx)) {
                Decision::Send { route, .. } => {
                    let Target::Machine(m) = route.target else {
                        panic!("{policy}: {route:?}")
                    };
                    per_machine[m as usize] += 1;
                    per_unit[route.forwarder as usize] += 1;
                    break;
                }
                Decision::Wait { until_ms: Some(t) } if t > now => now = t,
                d => panic!("{policy}: {d:?} at {now}"),
            }
        }
    }
    (per_machine, per_unit)
}

fn counts_of(s: &Summary, t: &Topology) -> Vec<u64> {
    t.layout()
        .machines
        .iter()
        .map(|m| s.per_machine.get(&m.to_string()).copied().unwrap_or(0))
        .collect()
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
    assert_eq!(
        s.per_machine.get("emea/0"),
        Some(&25),
        "{:?}",
        s.per_machine
    );
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
fn policies_that_plan_from_the_model_send_each_machine_exactly_its_planned_count() {
    let t = Topology::default();
    for (policy, n) in [("weighted", 200), ("per-region-queues", 300)] {
        let s = run_with(policy, n, t.clone(), 1);
        all_ok(&s, n);
        assert_eq!(
            counts_of(&s, &t),
            planned_counts(policy, n, &t, 1).0,
            "{policy}"
        );
    }
}

#[test]
fn per_region_queues_predicts_near_its_bound_and_far_regions_take_early_slots() {
    let s = run("per-region-queues", 300);
    assert_eq!(s.policy, "per-region-queues");
    let predicted = s.predicted_makespan_ms.expect("a prediction");
    assert!(
        predicted >= s.lower_bound_ms - 1e-6 && predicted <= s.lower_bound_ms * 1.02,
        "{predicted} vs {}",
        s.lower_bound_ms
    );
    assert!(s.reason.contains("farthest machine"), "{}", s.reason);
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
fn auto_sends_one_request_to_one_machine() {
    let s = run("auto", 1);
    all_ok(&s, 1);
    assert_eq!(s.policy, "auto");
    assert!(s.reason.starts_with("closed loop"), "{}", s.reason);
    let used: Vec<_> = s.per_machine.iter().filter(|(_, &c)| c > 0).collect();
    assert_eq!(used.len(), 1, "{:?}", s.per_machine);
}

#[test]
fn auto_spreads_two_thousand_over_all_five_machines() {
    let mut t = Topology::default();
    t.forwarder.handling_ms = 0.0;
    let s = run_with("auto", 2000, t, 1);
    all_ok(&s, 2000);
    assert!(
        s.per_machine.values().all(|&c| c > 100),
        "{:?}",
        s.per_machine
    );
}

#[test]
fn planned_policies_give_each_forwarding_unit_what_its_ceiling_passes() {
    let t = Topology::default();
    let s = run_with("per-region-queues", 300, t.clone(), 3);
    all_ok(&s, 300);
    let (_, per_unit) = planned_counts("per-region-queues", 300, &t, 3);
    let mut got: Vec<u64> = s.per_forwarder.values().copied().collect();
    got.sort_unstable();
    let mut want = per_unit.clone();
    want.sort_unstable();
    assert_eq!(got, want, "{:?}", s.per_forwarder);
    assert_eq!(want, vec![100, 100, 100]);
}

#[test]
fn without_a_ceiling_the_plan_fills_the_machines_to_one_water_level() {
    let mut t = Topology::default();
    t.forwarder.handling_ms = 0.0;
    let s = run_with("per-region-queues", 500, t.clone(), 1);
    // (A burst of 500 at a small time scale measures the host more than the plan: ratio only.)
    all_ok(&s, 500);
    assert_eq!(
        counts_of(&s, &t),
        planned_counts("per-region-queues", 500, &t, 1).0
    );
    // Every machine is filled up to the same water level: the last answer from each comes
    // within a few service times of the bound.
    assert!(
        s.makespan_ms < s.lower_bound_ms * 3.0,
        "{} vs {}",
        s.makespan_ms,
        s.lower_bound_ms
    );
}
