//! `auto` (the default): plans the batch with every other policy, predicts each plan's makespan
//! with the simulator ([`super::simulate`]) and runs the best, saying which and why. This is the
//! command unit's job as the mission states it: decide from the number of requests (and the
//! calibration) how to use the router. For one request every sensible plan sends it to the
//! nearest machine; for thousands through one forwarding unit the unit sets the pace and only
//! the order and the tail differ; with several units or none, the machines' water level decides.

use super::simulate::simulate;
use super::sizing::check_up;
use super::{by_name, Job, LoadView, Observation, Plan, PlanInput, Policy, PolicyError};
use crate::endpoint::Target;
use std::sync::Mutex;

/// The candidates, in order of preference when predictions tie.
pub const CANDIDATES: &[&str] = &[
    "per-region-queues",
    "least-outstanding",
    "fastest",
    "weighted",
    "p2c-ewma",
    "machine-rr",
    "region-rr",
    "random",
];

/// Above this many jobs only the candidates that can win are simulated (each simulation costs
/// about a second per million jobs).
pub const FEW_CANDIDATES_ABOVE: usize = 100_000;

#[derive(Default)]
pub struct Auto {
    chosen: Mutex<Option<Box<dyn Policy>>>,
}

impl Policy for Auto {
    fn name(&self) -> &'static str {
        "auto"
    }

    fn plan(&self, input: &PlanInput) -> Result<Plan, PolicyError> {
        check_up(input.calibration)?;
        let names: &[&str] = if input.n > FEW_CANDIDATES_ABOVE {
            &CANDIDATES[..2]
        } else {
            CANDIDATES
        };
        let mut scored: Vec<(&str, f64)> = Vec::new();
        for &name in names {
            let Some(p) = by_name(name) else { continue };
            let plan = p.plan(input)?;
            let predicted = match plan.predicted_makespan_ms {
                Some(t) => t,
                None => {
                    simulate(
                        &plan,
                        input.calibration,
                        input.layout,
                        p.as_ref(),
                        input.seed,
                    )
                    .makespan_ms
                }
            };
            scored.push((name, predicted));
        }
        // Lowest prediction; ties (within 0.5 ms) to the earlier, more deliberate candidate.
        let mut best = 0;
        for (i, s) in scored.iter().enumerate() {
            if s.1 < scored[best].1 - 0.5 {
                best = i;
            }
        }
        let (name, predicted) = *scored.get(best).ok_or(PolicyError::NoMachineUp)?;
        let chosen =
            by_name(name).ok_or_else(|| PolicyError::Other(format!("no policy {name}")))?;
        let mut plan = chosen.plan(input)?;
        let bound = crate::bound::lower_bound(input.n, input.calibration);
        let runner_up = scored
            .iter()
            .enumerate()
            .filter(|&(i, _)| i != best)
            .min_by(|a, b| a.1 .1.total_cmp(&b.1 .1))
            .map(|(_, s)| format!("; next best {} {:.0} ms", s.0, s.1))
            .unwrap_or_default();
        let limit = if bound.forwarders_ms >= bound.machines_ms {
            "forwarding units"
        } else {
            "machines"
        };
        plan.reason = format!(
            "auto chose {name}: predicted {predicted:.0} ms against a lower bound of {:.0} ms (the {limit} limit N = {}){runner_up}. {}",
            bound.lower_bound_ms, input.n, plan.reason
        );
        plan.predicted_makespan_ms = Some(predicted);
        *self.chosen.lock().unwrap_or_else(|p| p.into_inner()) = Some(chosen);
        Ok(plan)
    }

    fn bind(&self, job: &Job, load: &LoadView, avoid: Option<usize>) -> Option<Target> {
        let chosen = self.chosen.lock().unwrap_or_else(|p| p.into_inner());
        match chosen.as_ref() {
            Some(p) => p.bind(job, load, avoid),
            None => super::least_in_flight(load, avoid, None).map(|m| Target::Machine(m as u16)),
        }
    }

    fn observe(&self, obs: &Observation) {
        if let Some(p) = self
            .chosen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            p.observe(obs);
        }
    }
}
