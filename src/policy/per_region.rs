//! `per-region-queues`: every job's machine and send time fixed from the model before it is
//! sent. The units' slots are taken in order; each goes to the farthest machine that the model
//! says still answers by the batch's bound without a queue in front of it (best fit), so far
//! regions take the early slots, the machines finish together and the last slots through a unit
//! go to the nearest machines (an answer from asia comes ~200 ms after one from emea); where no
//! machine fits (a batch sent at once) it is the soonest answer, the machines' water filling; each
//! job is released a few passes before its slot, so sends follow the unit's pace. Nothing is
//! learned during the batch: it is as good as the model (a calibration pass, or a saved one).
//! In flight per machine is capped at what keeps it busy (Little's law over its trip), so a
//! batch released at once waits in cmdunit, not in a thousand sockets. Jobs are grouped per
//! region for the report.

use super::ect::{choose, machine, release_ms, Servers, Slots};
use super::{
    require_model, up_machines, Binder, Decision, JobCtx, Observation, Policy, PolicyError, Route,
    StartInput, View,
};
use crate::calibrate::Calibration;
use crate::endpoint::Target;
use std::collections::VecDeque;

pub struct PerRegion;

/// Planned slots kept ahead of the sends, at most: enough that a capped machine does not hold
/// up the others, few enough that memory stays flat whatever N.
const LOOKAHEAD: usize = 512;

struct ModelPlan {
    model: Calibration,
    n: u64,
    generated: u64,
    planned: VecDeque<(Route, f64)>,
    deadline: Option<f64>,
    caps: Vec<u32>,
    servers: Servers,
    slots: Slots,
    per_machine: Vec<u64>,
    last_answer: f64,
}

impl Policy for PerRegion {
    fn name(&self) -> &'static str {
        "per-region-queues"
    }

    fn needs_model(&self) -> bool {
        true
    }

    fn start(&self, input: &StartInput) -> Result<Box<dyn Binder>, PolicyError> {
        let model = require_model(input, self.name())?.clone();
        up_machines(&model)?;
        Ok(Box::new(ModelPlan {
            n: input.n,
            generated: 0,
            planned: VecDeque::new(),
            deadline: super::ect::deadline(&model, input.n),
            caps: super::least_outstanding::caps(&model),
            servers: Servers::new(&model),
            slots: Slots::new(model.forwarders.len()),
            per_machine: vec![0; model.machines.len()],
            model,
            last_answer: 0.0,
        }))
    }
}

impl ModelPlan {
    /// Plans the next slot: its unit, and the machine that fits it best.
    fn plan_one(&mut self, view: &View) -> bool {
        let Some((f, exit)) = self.slots.slot(&self.model, view) else {
            return false;
        };
        let Some(c) = choose(
            &self.model,
            &self.servers,
            f,
            exit,
            self.deadline,
            |m| self.model.machines[m].up,
            |_| 0.0,
        ) else {
            return false;
        };
        let service = self.model.machines[c.machine].service_ms;
        self.servers.book(c.machine, c.server, c.start + service);
        self.per_machine[c.machine] += 1;
        self.last_answer = self.last_answer.max(c.answer);
        let route = Route {
            forwarder: f as u16,
            target: machine(c.machine),
        };
        self.planned
            .push_back((route, release_ms(&self.model, f, exit)));
        self.generated += 1;
        true
    }
}

impl Binder for ModelPlan {
    fn next(&mut self, view: &View, job: Option<&JobCtx>) -> Decision {
        let Some(job) = job else {
            return Decision::Wait { until_ms: None };
        };
        let allowed = |m: usize| !view.machines[m].ejected && Some(m) != job.avoid;
        if job.attempt > 0 {
            // A retry: the soonest answer from now, through the least loaded unit.
            let Some(f) = view.least_loaded_forwarder() else {
                return Decision::Wait {
                    until_ms: Some(view.now_ms + 10.0),
                };
            };
            return match choose(
                &self.model,
                &self.servers,
                f as usize,
                view.now_ms,
                None,
                allowed,
                |_| 0.0,
            ) {
                Some(c) => Decision::Send {
                    route: Route {
                        forwarder: f,
                        target: machine(c.machine),
                    },
                    more: false,
                },
                None => Decision::Wait {
                    until_ms: Some(view.now_ms + 10.0),
                },
            };
        }
        // The planned slots are taken by whichever job is asked about (a job id is only a
        // label): the first one released whose machine has room, so a machine at its cap holds
        // up only its own slots.
        let now = view.now_ms;
        loop {
            let pick = self.planned.iter().position(|&(r, release)| {
                release <= now + 1e-9
                    && match r.target {
                        Target::Machine(m) => {
                            let l = view.machines[m as usize];
                            l.ejected || l.in_flight < self.caps[m as usize]
                        }
                        _ => true,
                    }
            });
            if let Some(i) = pick {
                let Some((mut route, _)) = self.planned.remove(i) else {
                    break;
                };
                if let Target::Machine(m) = route.target {
                    if view.machines[m as usize].ejected {
                        // Its machine was taken out since the plan: the soonest answer now.
                        let f = usize::from(route.forwarder);
                        let allowed = |m: usize| !view.machines[m].ejected;
                        match choose(&self.model, &self.servers, f, now, None, allowed, |_| 0.0) {
                            Some(c) => route.target = machine(c.machine),
                            None => {
                                self.planned.push_front((route, now));
                                return Decision::Wait {
                                    until_ms: Some(now + 10.0),
                                };
                            }
                        }
                    }
                }
                let pass = self.model.forwarders[usize::from(route.forwarder)].service_ms;
                return Decision::Send {
                    route,
                    more: pass <= 0.0 && view.unissued > 1,
                };
            }
            if self.planned.len() >= LOOKAHEAD || self.generated >= self.n || !self.plan_one(view) {
                break;
            }
        }
        let next = self
            .planned
            .iter()
            .map(|p| p.1)
            .filter(|&r| r > now)
            .fold(f64::INFINITY, f64::min);
        Decision::Wait {
            until_ms: next.is_finite().then_some(next),
        }
    }

    fn observe(&mut self, _view: &View, _obs: &Observation) {}

    fn reason(&self) -> String {
        let mut by_region: Vec<(String, u64)> = Vec::new();
        for (m, &c) in self.model.machines.iter().zip(&self.per_machine) {
            match by_region.iter_mut().find(|r| r.0 == m.id.region) {
                Some(r) => r.1 += c,
                None => by_region.push((m.id.region.clone(), c)),
            }
        }
        format!(
            "plan from the model: each job, in its unit's order, to the farthest machine that still answers by the bound with no queue in front (the last ones to the nearest; the soonest answer where none fits), released at the unit's pace; split {} (model: {:.0} ms)",
            by_region
                .iter()
                .map(|(r, c)| format!("{r} {c}"))
                .collect::<Vec<_>>()
                .join(", "),
            self.last_answer
        )
    }

    fn predicted_makespan_ms(&self) -> Option<f64> {
        Some(self.last_answer)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{fresh, Loads};
    use super::*;
    use crate::endpoint::Layout;

    fn plan_counts(n: u32, units: usize, pass: f64) -> (Vec<u64>, Vec<f64>, f64) {
        let model = crate::calibrate::test_model(units, pass);
        let layout = Layout::documented();
        let urls: Vec<String> = model.forwarders.iter().map(|f| f.url.clone()).collect();
        let input = StartInput {
            n: u64::from(n),
            layout: &layout,
            forwarder_urls: &urls,
            model: Some(&model),
            seed: 0,
            time_scale: Default::default(),
        };
        let mut b = PerRegion.start(&input).unwrap();
        let loads = Loads::new(5, units);
        let mut counts = vec![0u64; 5];
        let mut releases = Vec::new();
        let mut now = 0.0;
        for id in 0..n {
            loop {
                match b.next(&loads.view(now, u64::from(n - id)), Some(&fresh(id))) {
                    Decision::Send { route, .. } => {
                        if let Target::Machine(m) = route.target {
                            counts[m as usize] += 1;
                        }
                        releases.push(now);
                        break;
                    }
                    Decision::Wait { until_ms: Some(t) } => now = t,
                    d => panic!("{d:?}"),
                }
            }
        }
        (counts, releases, b.predicted_makespan_ms().unwrap())
    }

    #[test]
    fn without_a_ceiling_the_plan_is_the_water_filling_at_the_bound() {
        let (counts, releases, predicted) = plan_counts(1000, 1, 0.0);
        assert!(releases.iter().all(|&r| r == 0.0));
        let model = crate::calibrate::test_model(1, 0.0);
        let bound = crate::bound::lower_bound(1000, &model);
        assert!(
            predicted <= bound.lower_bound_ms + 25.0,
            "{predicted} vs {bound:?}"
        );
        // The far machines (asia) get fewer than the near ones.
        assert!(counts[0] < counts[2] && counts[1] < counts[4], "{counts:?}");
    }

    #[test]
    fn through_one_unit_sends_are_paced_and_the_last_go_to_the_nearest() {
        let (_, releases, predicted) = plan_counts(100, 1, 17.0);
        // One release per pass.
        let gaps: Vec<f64> = releases.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(
            gaps.iter().skip(10).all(|g| (g - 17.0).abs() < 1e-6),
            "{gaps:?}"
        );
        let model = crate::calibrate::test_model(1, 17.0);
        let bound = crate::bound::lower_bound(100, &model);
        assert!(
            predicted <= bound.lower_bound_ms + 25.0,
            "{predicted} vs {bound:?}"
        );
    }
}
