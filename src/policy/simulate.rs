//! A small deterministic simulator of the two-layer model, to predict what a plan will do before
//! running it (`auto` compares policies with it; tests check plans against it).
//!
//! It plays the dispatcher's part and the system's: each queue has its agents; an agent takes
//! the queue's next job, waits for its release time, binds it (late binding calls the policy's
//! `bind` with the simulated load), and sends it. The forwarding unit it goes through (the job's
//! own, or the one with the fewest in flight) passes jobs one at a time, first come first served,
//! for `service_ms` each; the job then travels half the machine's latency, waits its turn at the
//! machine (`concurrency` at a time, `service_ms` each), travels back and pays the unit's
//! overhead. Durations are the calibration's means: jitter and the spread of service times are
//! left out, so a real run lands a little above the prediction. `Target::Any` and
//! `Target::Region` are resolved with a seeded generator, like the forwarding unit's own choice.

use super::{Job, LoadView, MachineLoad, Observation, Plan, Policy};
use crate::calibrate::Calibration;
use crate::endpoint::{Layout, Target};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};

/// What the simulator predicts for a plan.
#[derive(Clone, Debug, Default)]
pub struct Prediction {
    pub makespan_ms: f64,
    /// Completion time of each job, indexed like `Plan::jobs`.
    pub completion_ms: Vec<f64>,
    /// Jobs per machine, indexed like `Calibration::machines`.
    pub per_machine: Vec<usize>,
    /// Jobs per forwarding unit.
    pub per_forwarder: Vec<usize>,
    /// The most jobs each queue had in flight at once.
    pub peak_in_flight: Vec<usize>,
    /// The most jobs in flight through each forwarding unit at once.
    pub peak_forwarder_in_flight: Vec<usize>,
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    /// An agent of this queue is free.
    Free { queue: usize },
    /// An agent sends the job at this position of `Plan::jobs`.
    Send { queue: usize, pos: usize },
    /// The job reaches its machine.
    Arrive { pos: usize },
    /// The job's answer reaches the client.
    Done { pos: usize },
}

struct Event {
    t: f64,
    seq: u64,
    kind: Kind,
}

impl PartialEq for Event {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Event {}
impl PartialOrd for Event {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Event {
    // Earliest first in a max-heap; ties in the order they were scheduled.
    fn cmp(&self, o: &Self) -> Ordering {
        o.t.total_cmp(&self.t).then(o.seq.cmp(&self.seq))
    }
}

/// Where a sent job is.
#[derive(Clone, Copy, Default)]
struct InFlight {
    queue: usize,
    machine: usize,
    forwarder: usize,
    sent: f64,
}

/// Predict a plan with the agents it asks for.
pub fn simulate(
    plan: &Plan,
    cal: &Calibration,
    layout: &Layout,
    policy: &dyn Policy,
    seed: u64,
) -> Prediction {
    let agents: Vec<usize> = plan.queues.iter().map(|q| q.agents).collect();
    simulate_with_agents(plan, cal, layout, policy, seed, &agents)
}

/// Predict a plan with the given agents per queue.
pub fn simulate_with_agents(
    plan: &Plan,
    cal: &Calibration,
    layout: &Layout,
    policy: &dyn Policy,
    seed: u64,
    agents: &[usize],
) -> Prediction {
    Sim::new(plan, cal, layout, policy, seed).run(agents)
}

struct Sim<'a> {
    plan: &'a Plan,
    cal: &'a Calibration,
    layout: &'a Layout,
    policy: &'a dyn Policy,
    rng: StdRng,
    heap: BinaryHeap<Event>,
    seq: u64,
    /// Positions of each queue's jobs, in plan order, and how many were taken.
    queue_jobs: Vec<Vec<usize>>,
    taken: Vec<usize>,
    load: LoadView,
    fu_in_flight: Vec<usize>,
    fu_free: Vec<f64>,
    servers: Vec<Vec<f64>>,
    flights: Vec<InFlight>,
    parked: VecDeque<(usize, usize)>,
    queue_in_flight: Vec<usize>,
    out: Prediction,
}

impl<'a> Sim<'a> {
    fn new(
        plan: &'a Plan,
        cal: &'a Calibration,
        layout: &'a Layout,
        policy: &'a dyn Policy,
        seed: u64,
    ) -> Self {
        let nq = plan.queues.len().max(1);
        let mut queue_jobs = vec![Vec::new(); nq];
        for (pos, j) in plan.jobs.iter().enumerate() {
            queue_jobs[(j.queue as usize).min(nq - 1)].push(pos);
        }
        let nm = cal.machines.len();
        let nf = cal.forwarders.len();
        Sim {
            plan,
            cal,
            layout,
            policy,
            rng: StdRng::seed_from_u64(seed),
            heap: BinaryHeap::new(),
            seq: 0,
            queue_jobs,
            taken: vec![0; nq],
            load: LoadView {
                machines: cal
                    .machines
                    .iter()
                    .map(|m| MachineLoad {
                        ejected: !m.up,
                        ..MachineLoad::default()
                    })
                    .collect(),
                now_ms: 0.0,
                remaining: plan.jobs.len(),
            },
            fu_in_flight: vec![0; nf],
            fu_free: vec![0.0; nf],
            servers: cal
                .machines
                .iter()
                .map(|m| vec![0.0; m.concurrency.max(1) as usize])
                .collect(),
            flights: vec![InFlight::default(); plan.jobs.len()],
            parked: VecDeque::new(),
            queue_in_flight: vec![0; nq],
            out: Prediction {
                makespan_ms: 0.0,
                completion_ms: vec![f64::NAN; plan.jobs.len()],
                per_machine: vec![0; nm],
                per_forwarder: vec![0; nf],
                peak_in_flight: vec![0; nq],
                peak_forwarder_in_flight: vec![0; nf],
            },
        }
    }

    fn push(&mut self, t: f64, kind: Kind) {
        self.seq += 1;
        self.heap.push(Event {
            t,
            seq: self.seq,
            kind,
        });
    }

    fn run(mut self, agents: &[usize]) -> Prediction {
        if self.cal.up_forwarders().is_empty() || self.cal.up_machines().is_empty() {
            self.out.makespan_ms = f64::INFINITY;
            return self.out;
        }
        for q in 0..self.queue_jobs.len() {
            let a = agents.get(q).copied().unwrap_or(1).max(1);
            for _ in 0..a.min(self.queue_jobs[q].len()) {
                self.push(0.0, Kind::Free { queue: q });
            }
        }
        while let Some(ev) = self.heap.pop() {
            match ev.kind {
                Kind::Free { queue } => self.free(ev.t, queue),
                Kind::Send { queue, pos } => self.send(ev.t, queue, pos),
                Kind::Arrive { pos } => self.arrive(ev.t, pos),
                Kind::Done { pos } => self.done(ev.t, pos),
            }
        }
        self.out
    }

    fn free(&mut self, t: f64, queue: usize) {
        let Some(&pos) = self.queue_jobs[queue].get(self.taken[queue]) else {
            return;
        };
        self.taken[queue] += 1;
        let release = f64::from(self.plan.jobs[pos].release_ms.unwrap_or(0.0));
        self.push(t.max(release), Kind::Send { queue, pos });
    }

    fn up_in(&self, machines: Vec<usize>) -> Vec<usize> {
        machines
            .into_iter()
            .filter(|&m| self.cal.machines.get(m).is_some_and(|e| e.up))
            .collect()
    }

    fn pick(&mut self, among: &[usize]) -> Option<usize> {
        if among.is_empty() {
            None
        } else {
            Some(among[self.rng.random_range(0..among.len())])
        }
    }

    /// The forwarding unit's own choice for `/work` and `/work/<region>`.
    fn resolve(&mut self, target: Target) -> Option<usize> {
        match target {
            Target::Machine(m) => Some(m as usize),
            Target::Region(r) => {
                let ms = self.up_in(self.layout.machines_of(r as usize));
                self.pick(&ms)
            }
            Target::Any | Target::Late => {
                let regions: Vec<Vec<usize>> = (0..self.layout.regions.len())
                    .map(|r| self.up_in(self.layout.machines_of(r)))
                    .filter(|ms| !ms.is_empty())
                    .collect();
                let r = self.rng.random_range(0..regions.len().max(1));
                let ms = regions.get(r).cloned().unwrap_or_default();
                self.pick(&ms)
            }
        }
    }

    fn send(&mut self, t: f64, queue: usize, pos: usize) {
        let job: Job = self.plan.jobs[pos];
        self.load.now_ms = t;
        let target = if job.target == Target::Late {
            match self.policy.bind(&job, &self.load, None) {
                Some(tg) => tg,
                None if self.load.machines.iter().any(|m| m.in_flight > 0) => {
                    // All capped: wait for the next answer and ask again.
                    self.parked.push_back((queue, pos));
                    return;
                }
                None => Target::Any,
            }
        } else {
            job.target
        };
        let Some(m) = self.resolve(target) else {
            return;
        };
        let up_fus = self.cal.up_forwarders();
        let f = match job.forwarder.map(usize::from) {
            Some(f) if self.cal.forwarders.get(f).is_some_and(|e| e.up) => f,
            _ => up_fus
                .iter()
                .copied()
                .min_by_key(|&f| self.fu_in_flight[f])
                .unwrap_or(0),
        };
        let exit = t.max(self.fu_free[f]) + self.cal.forwarders[f].service_ms.max(0.0);
        self.fu_free[f] = exit;
        self.load.remaining = self.load.remaining.saturating_sub(1);
        self.load.machines[m].in_flight += 1;
        self.fu_in_flight[f] += 1;
        self.queue_in_flight[queue] += 1;
        self.out.peak_in_flight[queue] =
            self.out.peak_in_flight[queue].max(self.queue_in_flight[queue]);
        self.out.peak_forwarder_in_flight[f] =
            self.out.peak_forwarder_in_flight[f].max(self.fu_in_flight[f]);
        self.flights[pos] = InFlight {
            queue,
            machine: m,
            forwarder: f,
            sent: t,
        };
        self.push(
            exit + self.cal.machines[m].latency_ms / 2.0,
            Kind::Arrive { pos },
        );
    }

    fn arrive(&mut self, t: f64, pos: usize) {
        let fl = self.flights[pos];
        let e = &self.cal.machines[fl.machine];
        let servers = &mut self.servers[fl.machine];
        let (i, free) = servers
            .iter()
            .copied()
            .enumerate()
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap_or((0, 0.0));
        let finish = t.max(free) + e.service_ms;
        if let Some(s) = servers.get_mut(i) {
            *s = finish;
        }
        let answer = finish + e.latency_ms / 2.0 + self.cal.forwarders[fl.forwarder].overhead_ms;
        self.push(answer, Kind::Done { pos });
    }

    fn done(&mut self, t: f64, pos: usize) {
        let fl = self.flights[pos];
        self.load.machines[fl.machine].in_flight -= 1;
        self.load.machines[fl.machine].ok += 1;
        self.fu_in_flight[fl.forwarder] -= 1;
        self.queue_in_flight[fl.queue] -= 1;
        self.out.completion_ms[pos] = t;
        self.out.makespan_ms = self.out.makespan_ms.max(t);
        self.out.per_machine[fl.machine] += 1;
        self.out.per_forwarder[fl.forwarder] += 1;
        self.policy.observe(&Observation {
            machine: Some(fl.machine),
            latency_ms: t - fl.sent,
            ok: true,
        });
        self.push(t, Kind::Free { queue: fl.queue });
        // One answer frees one place: one waiting job asks again.
        if let Some((queue, pos)) = self.parked.pop_front() {
            self.push(t, Kind::Send { queue, pos });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{by_name, PlanInput};

    use crate::calibrate::model_calibration as cal;

    fn predict(name: &str, n: usize, c: &Calibration) -> Prediction {
        let layout = c.layout();
        let p = by_name(name).unwrap();
        let plan = p
            .plan(&PlanInput {
                n,
                calibration: c,
                layout: &layout,
                seed: 7,
            })
            .unwrap();
        simulate(&plan, c, &layout, p.as_ref(), 7)
    }

    #[test]
    fn one_job_takes_a_pass_and_a_trip() {
        let c = cal(1, 17.0);
        let p = predict("fastest", 1, &c);
        // 17 + 310 (290 + mean jitter) + 22 + 13.
        assert!((p.makespan_ms - 362.0).abs() < 1e-9, "{p:?}");
        assert_eq!(p.per_machine.iter().sum::<usize>(), 1);
    }

    #[test]
    fn a_single_machine_queues_its_jobs() {
        let c = cal(1, 0.0);
        let p = predict("fastest", 100, &c);
        // emea serves one at a time: 99 more services after the first answer.
        assert!(
            (p.makespan_ms - (345.0 + 99.0 * 22.0)).abs() < 1.0,
            "{}",
            p.makespan_ms
        );
    }

    #[test]
    fn the_forwarding_unit_paces_a_spread_batch() {
        let c = cal(1, 17.0);
        let p = predict("machine-rr", 1000, &c);
        let b = crate::bound::lower_bound(1000, &c).lower_bound_ms;
        assert!(
            p.makespan_ms >= b && p.makespan_ms < b * 1.05,
            "{} vs {b}",
            p.makespan_ms
        );
        assert!(
            p.per_machine.iter().all(|&k| k == 200),
            "{:?}",
            p.per_machine
        );
        let three = predict("machine-rr", 1000, &cal(3, 17.0));
        assert!(three.makespan_ms < p.makespan_ms / 2.0);
        assert!(
            three.per_forwarder.iter().all(|&k| k > 300),
            "{:?}",
            three.per_forwarder
        );
    }
}

#[cfg(test)]
mod efficiency {
    use super::*;
    use crate::policy::{by_name, PlanInput};

    use crate::calibrate::model_calibration as cal;

    /// Predicted efficiency (bound / makespan) of a policy.
    pub(crate) fn efficiency(name: &str, n: usize, c: &Calibration) -> f64 {
        let layout = c.layout();
        let p = by_name(name).unwrap();
        let input = PlanInput {
            n,
            calibration: c,
            layout: &layout,
            seed: 3,
        };
        let plan = p.plan(&input).unwrap();
        assert_eq!(plan.jobs.len(), n);
        let pred = simulate(&plan, c, &layout, p.as_ref(), 3);
        crate::bound::lower_bound(n, c).lower_bound_ms / pred.makespan_ms
    }

    #[test]
    fn auto_is_predicted_near_the_bound_at_every_n_with_and_without_a_ceiling() {
        for c in [cal(1, 17.0), cal(1, 0.0)] {
            for n in [1, 10, 100, 1000] {
                let e = efficiency("auto", n, &c);
                assert!(
                    e >= 0.95,
                    "auto, N = {n}, unit {}: {e}",
                    c.forwarders[0].service_ms
                );
            }
        }
    }

    #[test]
    fn planned_and_late_binding_policies_are_predicted_near_the_bound_from_100_jobs() {
        for c in [cal(1, 17.0), cal(1, 0.0), cal(5, 17.0)] {
            for name in ["per-region-queues", "least-outstanding"] {
                for n in [100, 1000] {
                    let e = efficiency(name, n, &c);
                    assert!(
                        e >= 0.9,
                        "{name}, N = {n}, {} units: {e}",
                        c.forwarders.len()
                    );
                }
            }
        }
    }

    #[test]
    fn the_naive_policies_are_predicted_to_lose_where_they_should() {
        // One machine cannot keep up with a thousand jobs; round robin waits for asia.
        let free = cal(1, 0.0);
        assert!(efficiency("fastest", 1000, &free) < 0.3);
        assert!(efficiency("machine-rr", 10, &free) < 0.8);
    }

    #[test]
    fn auto_sends_one_job_to_one_region_and_spreads_two_thousand_over_every_machine() {
        let c = cal(1, 17.0);
        let layout = c.layout();
        for (n, machines) in [(1, 1), (2000, 5)] {
            let p = by_name("auto").unwrap();
            let input = PlanInput {
                n,
                calibration: &c,
                layout: &layout,
                seed: 3,
            };
            let plan = p.plan(&input).unwrap();
            let pred = simulate(&plan, &c, &layout, p.as_ref(), 3);
            let used = pred.per_machine.iter().filter(|&&k| k > 0).count();
            assert_eq!(
                used, machines,
                "N = {n}: {} {:?}",
                plan.policy, pred.per_machine
            );
            assert!(plan.reason.starts_with("auto chose"), "{}", plan.reason);
        }
    }

    #[test]
    fn least_outstanding_leaves_a_machine_that_turns_out_ten_times_slower() {
        // Planned on a healthy system; in the simulated truth us/1 serves ten times slower.
        let planned = cal(1, 17.0);
        let mut truth = planned.clone();
        let us1 = planned.layout().machine_index("us", 1).unwrap();
        truth.machines[us1].service_ms *= 10.0;
        let layout = planned.layout();
        let run = |name: &str| {
            let p = by_name(name).unwrap();
            let input = PlanInput {
                n: 600,
                calibration: &planned,
                layout: &layout,
                seed: 3,
            };
            let plan = p.plan(&input).unwrap();
            simulate(&plan, &truth, &layout, p.as_ref(), 3)
        };
        let fixed = run("per-region-queues");
        let late = run("least-outstanding");
        assert!(
            late.per_machine[us1] * 3 < fixed.per_machine[us1],
            "{:?} vs {:?}",
            late.per_machine,
            fixed.per_machine
        );
        assert!(
            late.makespan_ms < 0.8 * fixed.makespan_ms,
            "{} vs {}",
            late.makespan_ms,
            fixed.makespan_ms
        );
    }
}
