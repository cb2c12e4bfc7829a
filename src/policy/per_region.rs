//! `per-region-queues`: one queue (and agent pool) per region; jobs split so that the predicted
//! finish times are equal, the far regions' jobs sent first, sends paced to the forwarding units.
//!
//! The split comes from the two-layer schedule ([`super::schedule`]): each pass through a
//! forwarding unit feeds the machine that leaves the most slack, working back from the end, so
//! the last jobs through the unit go to the nearest machines and every machine finishes near the
//! same time (the water level of the machines' bound when the unit is not the limit). Each job
//! names its machine and its forwarding unit (so every unit gets what its ceiling passes) and a
//! release time a little ahead of its slot: the order of sending is part of the plan, and
//! release times make it stick however the threads are scheduled. Each region's pool is sized by
//! Little's law from the calibration.

use super::schedule::{assign, forwarder_slots, Assignment, Slot};
use super::simulate::{simulate, simulate_with_agents};
use super::sizing::{check_up, connection_cap, pool};
use super::{Job, Plan, PlanInput, Policy, PolicyError, QueueSpec};
use crate::calibrate::Calibration;
use crate::endpoint::Target;

pub struct PerRegion;

/// A job is released at least this many passes ahead of its slot: enough queued at the unit to
/// hide the scheduling jitter of a send.
pub const MIN_LEAD_PASSES: f64 = 3.0;
/// ... and at most this many.
pub const MAX_LEAD_PASSES: f64 = 12.0;
/// Between the two, the lead is this fraction of the batch's time through the units.
pub const LEAD_FRACTION: f64 = 0.01;

/// How long before its slot a job is released. A stall of the sending thread shorter than the
/// lead costs nothing (the unit works through what is queued); what a long lead may cost — jobs
/// released together can reach the unit in any order — stays within the last 1% of the batch,
/// whose jobs all go to near machines anyway.
pub(crate) fn lead_ms(slots: &[Slot], cal: &Calibration) -> f64 {
    let pass = cal.max_over_up_forwarders(|f| f.service_ms);
    let span = slots.last().map_or(0.0, |s| s.start_ms);
    (LEAD_FRACTION * span).clamp(MIN_LEAD_PASSES * pass, MAX_LEAD_PASSES * pass)
}

/// The slots and the machine each feeds, for `n` jobs.
pub(crate) fn two_layer(n: usize, cal: &Calibration) -> (Vec<Slot>, Assignment) {
    let slots = forwarder_slots(n, cal);
    let a = assign(&slots, cal);
    (slots, a)
}

/// When the job of this slot may be sent: `lead_ms` before its slot begins; no pacing through a
/// unit without a ceiling.
pub(crate) fn release_ms(slot: &Slot, cal: &Calibration, lead_ms: f64) -> Option<f32> {
    if cal.forwarders[slot.forwarder].service_ms <= 0.0 {
        None
    } else {
        Some((slot.start_ms - lead_ms).max(0.0) as f32)
    }
}

/// Little's law for one pool: the machines it feeds, each kept busy at most at its service rate
/// for a pass through the unit, the lead and its trip, but never more than its jobs.
pub(crate) fn little_in_flight(
    cal: &Calibration,
    jobs_per_machine: &[(usize, usize)],
    lead_ms: f64,
) -> f64 {
    let up = cal.up_forwarders();
    let k = up.len().max(1) as f64;
    let pass: f64 = up
        .iter()
        .map(|&f| cal.forwarders[f].service_ms)
        .sum::<f64>()
        / k;
    let overhead: f64 = up
        .iter()
        .map(|&f| cal.forwarders[f].overhead_ms)
        .sum::<f64>()
        / k;
    jobs_per_machine
        .iter()
        .map(|&(m, jobs)| {
            let e = &cal.machines[m];
            let rate = f64::from(e.concurrency.max(1)) / e.service_ms.max(1e-9);
            let w = e.latency_ms + e.service_ms + overhead + pass + lead_ms;
            (rate * w).min(jobs as f64)
        })
        .sum()
}

/// Size each queue's pool: Little's law, and never more than the plan ever has in flight in
/// that queue (simulated with unlimited agents); all pools together below the units' connection
/// limits. Then predict the makespan with those pools. `reset` clears a late binder's state
/// before each simulation.
pub(crate) fn size_pools(
    plan: &mut Plan,
    input: &PlanInput,
    policy: &dyn Policy,
    reset: &dyn Fn(),
    per_queue_machines: &[Vec<(usize, usize)>],
    lead_ms: f64,
) {
    let cal = input.calibration;
    let unlimited: Vec<usize> = plan
        .queues
        .iter()
        .enumerate()
        .map(|(q, _)| plan.jobs.iter().filter(|j| j.queue as usize == q).count())
        .collect();
    reset();
    let peak = simulate_with_agents(plan, cal, input.layout, policy, input.seed, &unlimited)
        .peak_in_flight;
    let mut agents: Vec<usize> = per_queue_machines
        .iter()
        .enumerate()
        .map(|(q, ms)| {
            let little = little_in_flight(cal, ms, lead_ms);
            pool(little.min(peak[q] as f64), unlimited[q])
        })
        .collect();
    let cap = connection_cap(cal);
    let total: usize = agents.iter().sum();
    if total > cap {
        for a in &mut agents {
            *a = (*a * cap / total).max(1);
        }
    }
    for (q, a) in plan.queues.iter_mut().zip(agents) {
        q.agents = a;
    }
    reset();
    plan.predicted_makespan_ms =
        Some(simulate(plan, cal, input.layout, policy, input.seed).makespan_ms);
}

impl Policy for PerRegion {
    fn name(&self) -> &'static str {
        "per-region-queues"
    }

    fn plan(&self, input: &PlanInput) -> Result<Plan, PolicyError> {
        let cal = input.calibration;
        check_up(cal)?;
        let layout = input.layout;
        let (slots, a) = two_layer(input.n, cal);
        let lead = lead_ms(&slots, cal);
        // One queue per region that gets jobs, far regions first.
        let mut regions: Vec<usize> = Vec::new();
        for &m in &a.machine {
            let r = layout.region_index(&cal.machines[m].id.region).unwrap_or(0);
            if !regions.contains(&r) {
                regions.push(r);
            }
        }
        let mut per_machine = vec![0usize; cal.machines.len()];
        for &m in &a.machine {
            per_machine[m] += 1;
        }
        let queue_of = |m: usize| {
            let r = layout.region_index(&cal.machines[m].id.region).unwrap_or(0);
            regions.iter().position(|&x| x == r).unwrap_or(0) as u16
        };
        let jobs: Vec<Job> = slots
            .iter()
            .zip(&a.machine)
            .enumerate()
            .map(|(i, (slot, &m))| Job {
                id: i as u32,
                queue: queue_of(m),
                target: Target::Machine(m as u16),
                forwarder: Some(slot.forwarder as u16),
                release_ms: release_ms(slot, cal, lead),
            })
            .collect();
        let per_queue_machines: Vec<Vec<(usize, usize)>> = regions
            .iter()
            .map(|&r| {
                layout
                    .machines_of(r)
                    .into_iter()
                    .filter(|&m| per_machine[m] > 0)
                    .map(|m| (m, per_machine[m]))
                    .collect()
            })
            .collect();
        let split: Vec<String> = regions
            .iter()
            .zip(&per_queue_machines)
            .map(|(&r, ms)| {
                let jobs: usize = ms.iter().map(|&(_, k)| k).sum();
                format!("{} {}", layout.regions[r], jobs)
            })
            .collect();
        let mut plan = Plan {
            policy: self.name().into(),
            reason: format!(
                "split {} so that region finish times are equal (model: {:.0} ms), far regions sent first",
                split.join(", "),
                a.makespan_ms
            ),
            queues: regions
                .iter()
                .map(|&r| QueueSpec {
                    name: layout.regions[r].clone(),
                    agents: 1,
                })
                .collect(),
            jobs,
            predicted_makespan_ms: None,
        };
        size_pools(&mut plan, input, self, &|| (), &per_queue_machines, lead);
        Ok(plan)
    }
}
