//! What the late-binding policies share: a plan whose jobs are bound when sent, paced and sized
//! from the same two-layer schedule as `per-region-queues`, and per-machine in-flight caps.

use super::per_region::{lead_ms, release_ms, size_pools, two_layer};
use super::{Job, Plan, PlanInput, Policy, QueueSpec};
use crate::calibrate::Calibration;
use crate::endpoint::Target;

/// In flight per machine, as a multiple of what keeps it busy (Little's law: its service rate
/// times a pass and a trip). Enough to cover jitter and a burst at the start of a batch; the rest
/// waits in cmdunit, where it can still go to another machine.
pub const CAP_FACTOR: f64 = 1.5;

/// The in-flight cap of each machine (0 for machines that are down).
pub fn caps(cal: &Calibration) -> Vec<u32> {
    let pass = cal.max_over_up_forwarders(|f| f.service_ms);
    let overhead = cal.max_over_up_forwarders(|f| f.overhead_ms);
    cal.machines
        .iter()
        .map(|e| {
            if !e.up {
                return 0;
            }
            let w = e.latency_ms + e.service_ms + overhead + pass;
            let busy = w * f64::from(e.concurrency.max(1)) / e.service_ms.max(1e-9);
            (busy * CAP_FACTOR).ceil() as u32 + 2
        })
        .collect()
}

/// One queue of late-bound jobs, released and routed through the units as the two-layer schedule
/// passes them, its pool sized by Little's law over the machines that schedule uses.
pub fn late_plan(policy: &dyn Policy, reset: &dyn Fn(), input: &PlanInput, reason: String) -> Plan {
    let cal = input.calibration;
    let (slots, a) = two_layer(input.n, cal);
    let lead = lead_ms(&slots, cal);
    let mut per_machine = vec![0usize; cal.machines.len()];
    for &m in &a.machine {
        per_machine[m] += 1;
    }
    let used: Vec<(usize, usize)> = per_machine
        .iter()
        .enumerate()
        .filter(|(_, &k)| k > 0)
        .map(|(m, &k)| (m, k))
        .collect();
    let mut plan = Plan {
        policy: policy.name().into(),
        reason,
        queues: vec![QueueSpec {
            name: "late".into(),
            agents: 1,
        }],
        jobs: slots
            .iter()
            .enumerate()
            .map(|(i, slot)| Job {
                id: i as u32,
                queue: 0,
                target: Target::Late,
                forwarder: Some(slot.forwarder as u16),
                release_ms: release_ms(slot, cal, lead),
            })
            .collect(),
        predicted_makespan_ms: None,
    };
    size_pools(&mut plan, input, policy, reset, &[used], lead);
    plan
}
