//! `random`: every job to `/work`, so the forwarding unit makes its own random choice (a random
//! region, then a random machine in it). The baseline every other policy is measured against;
//! Envoy notes that random beats round robin when nothing checks health
//! (`../shared/reference/load-balancing-anchors.md`).

use super::sizing::{check_up, pool_for_shares};
use super::{Job, Plan, PlanInput, Policy, PolicyError, QueueSpec};
use crate::calibrate::Calibration;
use crate::endpoint::{Layout, Target};

pub struct Random;

/// The share of jobs each up machine gets when the forwarding unit picks a region at random and
/// then a machine in it.
pub(crate) fn region_random_shares(cal: &Calibration, layout: &Layout) -> Vec<(usize, f64)> {
    let regions: Vec<Vec<usize>> = (0..layout.regions.len())
        .map(|r| {
            layout
                .machines_of(r)
                .into_iter()
                .filter(|&m| cal.machines.get(m).is_some_and(|e| e.up))
                .collect::<Vec<_>>()
        })
        .filter(|ms| !ms.is_empty())
        .collect();
    let r = regions.len().max(1) as f64;
    regions
        .iter()
        .flat_map(|ms| {
            let k = ms.len() as f64;
            ms.iter().map(move |&m| (m, 1.0 / (r * k)))
        })
        .collect()
}

/// A plan with one queue ("all") whose jobs go to `target(i)` in order, sized for `shares`.
pub(crate) fn one_queue_plan(
    policy: &str,
    reason: String,
    input: &PlanInput,
    shares: &[(usize, f64)],
    target: impl Fn(usize) -> Target,
) -> Plan {
    let agents = pool_for_shares(input.calibration, shares, input.n);
    Plan {
        policy: policy.to_string(),
        reason,
        queues: vec![QueueSpec {
            name: "all".into(),
            agents,
        }],
        jobs: (0..input.n)
            .map(|i| Job {
                id: i as u32,
                queue: 0,
                target: target(i),
                forwarder: None,
                release_ms: None,
            })
            .collect(),
        predicted_makespan_ms: None,
    }
}

impl Policy for Random {
    fn name(&self) -> &'static str {
        "random"
    }

    fn plan(&self, input: &PlanInput) -> Result<Plan, PolicyError> {
        check_up(input.calibration)?;
        let shares = region_random_shares(input.calibration, input.layout);
        Ok(one_queue_plan(
            self.name(),
            "every job to /work: the forwarding unit picks region and machine at random".into(),
            input,
            &shares,
            |_| Target::Any,
        ))
    }
}
