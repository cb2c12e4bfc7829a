//! `per-region-queues`: every job's machine and send time fixed from the model before it is
//! sent. The units' slots are taken in order; each goes to the farthest machine that the model
//! says still answers by the batch's bound (best fit), so far regions take the early slots, the
//! machines finish together and the last slots through a unit go to the nearest machines (an
//! answer from asia comes ~200 ms after one from emea); each
//! job is released a few passes before its slot, so sends follow the unit's pace. Nothing is
//! learned during the batch: it is as good as the model (a calibration pass, or a saved one).
//! Jobs are grouped per region for the report.

use super::ect::{choose, machine, release_ms, Servers, Slots};
use super::{
    require_model, up_machines, Binder, Decision, JobCtx, Observation, Policy, PolicyError,
    Route, StartInput, View,
};
use crate::calibrate::Calibration;

pub struct PerRegion;

struct ModelPlan {
    model: Calibration,
    deadline: Option<f64>,
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
            deadline: super::ect::deadline(&model, input.n),
            servers: Servers::new(&model),
            slots: Slots::new(model.forwarders.len()),
            per_machine: vec![0; model.machines.len()],
            model,
            last_answer: 0.0,
        }))
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
        let (route, release) = match self.slots.held(job.id) {
            Some(held) => held,
            None => {
                let Some((f, exit)) = self.slots.slot(&self.model, view, job) else {
                    return Decision::Wait {
                        until_ms: Some(view.now_ms + 10.0),
                    };
                };
                let Some(c) =
                    choose(&self.model, &self.servers, f, exit, self.deadline, allowed, |_| 0.0)
                else {
                    return Decision::Wait {
                        until_ms: Some(view.now_ms + 10.0),
                    };
                };
                let service = self.model.machines[c.machine].service_ms;
                self.servers.book(c.machine, c.server, c.start + service);
                self.per_machine[c.machine] += 1;
                self.last_answer = self.last_answer.max(c.answer);
                let route = Route {
                    forwarder: f as u16,
                    target: machine(c.machine),
                };
                let release = release_ms(&self.model, f, exit);
                self.slots.hold(job.id, route, release);
                (route, release)
            }
        };
        if view.now_ms + 1e-9 < release {
            return Decision::Wait {
                until_ms: Some(release),
            };
        }
        self.slots.release();
        let pass = self.model.forwarders[usize::from(route.forwarder)].service_ms;
        Decision::Send {
            route,
            more: pass <= 0.0 && view.unissued > 1,
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
            "plan from the model: each job, in its unit's order, to the farthest machine that still answers by the bound (the last ones to the nearest), released at the unit's pace; split {} (model: {:.0} ms)",
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
    use crate::endpoint::{Layout, Target};

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
        assert!(predicted <= bound.lower_bound_ms + 25.0, "{predicted} vs {bound:?}");
        // emea (nearest) gets the most, asia the least.
        assert!(counts[2] > counts[3] && counts[3] > counts[0], "{counts:?}");
    }

    #[test]
    fn through_one_unit_sends_are_paced_and_the_last_go_to_the_nearest() {
        let (_, releases, predicted) = plan_counts(100, 1, 17.0);
        // One release per pass.
        let gaps: Vec<f64> = releases.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(gaps.iter().skip(10).all(|g| (g - 17.0).abs() < 1e-6), "{gaps:?}");
        let model = crate::calibrate::test_model(1, 17.0);
        let bound = crate::bound::lower_bound(100, &model);
        assert!(predicted <= bound.lower_bound_ms + 25.0, "{predicted} vs {bound:?}");
    }
}
