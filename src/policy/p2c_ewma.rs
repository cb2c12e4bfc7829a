//! `p2c-ewma`: the power of two choices over peak-EWMA latency (Finagle, Linkerd and tower's
//! balancer). For each job, two DISTINCT machines are drawn at random (with-replacement draws
//! degrade to random a quarter of the time with four servers) and the one with the lower
//! `peak-EWMA latency × (in flight + 1)` wins. The estimate jumps up at once on a slow answer
//! and decays over ~10 s of model time. Pitfalls handled: a failed attempt counts as a very slow
//! one (fast errors must not look attractive), and an unmeasured machine starts from what an
//! earlier run measured of it (its trip in the model, when the run has one) or else from the best
//! estimate known so far, not a high default, so it is tried rather than starved. Needs no
//! model: it adapts to what it sees, at the price of not planning the tail. Paced by the
//! measured window like the other rules.
//!
//! Why a model's trips count when there is one: a batch that fits in one window goes out before
//! any answer, so without them every machine scores the same and the first wave is spread
//! evenly, far machines included (a batch of 100 over five machines with no unit ceiling ran at
//! 87 % of its bound; seeded with the trips, the near machines take more of it). The seed is only
//! a prior: the machine's first answer in this batch replaces it, so a stale figure lasts one
//! round trip, not the EWMA's ten seconds.

use super::window::Window;
use super::{Binder, Decision, JobCtx, Observation, Policy, PolicyError, Route, StartInput, View};
use crate::calibrate::Calibration;
use crate::endpoint::Target;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// Decay time of the EWMA, model ms (Finagle's default: 10 s).
pub const DECAY_MS: f64 = 10_000.0;
/// A failure is scored as this many times the machine's current estimate (at least its latency).
pub const FAILURE_PENALTY: f64 = 5.0;

pub struct P2cEwma;

struct Ewma {
    estimate: Vec<Option<f64>>,
    /// What the model says of each machine's latency before this batch measured it.
    prior: Vec<Option<f64>>,
    updated: Vec<f64>,
    window: Window,
    rng: SmallRng,
}

impl Policy for P2cEwma {
    fn name(&self) -> &'static str {
        "p2c-ewma"
    }

    fn start(&self, input: &StartInput) -> Result<Box<dyn Binder>, PolicyError> {
        let m = input.layout.machines.len();
        if m == 0 {
            return Err(PolicyError::NoMachineUp);
        }
        Ok(Box::new(Ewma {
            estimate: vec![None; m],
            prior: priors(input.model, m),
            updated: vec![0.0; m],
            window: Window::new(input.layout.machines.len(), input.model),
            rng: SmallRng::seed_from_u64(input.seed),
        }))
    }
}

/// Each machine's latency as the model has it (its no-load latency), for the machines whose
/// trip was measured; `None` elsewhere.
fn priors(model: Option<&Calibration>, machines: usize) -> Vec<Option<f64>> {
    let mut prior = vec![None; machines];
    let Some(model) = model else {
        return prior;
    };
    for (slot, e) in prior.iter_mut().zip(&model.machines) {
        if e.up && e.trip_measured {
            *slot = Some(model.no_load_latency_ms(e)).filter(|t| t.is_finite());
        }
    }
    prior
}

impl Ewma {
    /// A machine's score input: its estimate, else its prior, else the best known one.
    fn latency(&self, m: usize) -> f64 {
        self.estimate[m].or(self.prior[m]).unwrap_or_else(|| {
            self.estimate
                .iter()
                .zip(&self.prior)
                .filter_map(|(e, p)| e.or(*p))
                .fold(f64::INFINITY, f64::min)
                .clamp(0.0, 1e12)
        })
    }
}

impl Binder for Ewma {
    fn next(&mut self, view: &View, job: Option<&JobCtx>) -> Decision {
        let Some(job) = job else {
            return Decision::Wait { until_ms: None };
        };
        let in_flight = view.in_flight();
        if !self.window.allows(in_flight, view.unissued) {
            return Decision::Wait { until_ms: None };
        }
        let ok: Vec<usize> = view.choosable(job.avoid).collect();
        let m = match ok.len() {
            0 => None,
            1 => Some(ok[0]),
            k => {
                let a = self.rng.random_range(0..k);
                let mut b = self.rng.random_range(0..k - 1);
                if b >= a {
                    b += 1;
                }
                let score = |m: usize| self.latency(m) * f64::from(view.machines[m].in_flight + 1);
                let (a, b) = (ok[a], ok[b]);
                Some(if score(b) < score(a) { b } else { a })
            }
        };
        match (m, view.least_loaded_forwarder()) {
            (Some(m), Some(f)) => Decision::Send {
                route: Route {
                    forwarder: f,
                    target: Target::Machine(m as u16),
                },
                more: self.window.allows_another(in_flight, view.unissued),
            },
            _ => Decision::Wait {
                until_ms: Some(view.now_ms + 10.0),
            },
        }
    }

    fn observe(&mut self, _view: &View, obs: &Observation) {
        self.window.observe(obs);
        let Some(m) = obs.machine.filter(|&m| m < self.estimate.len()) else {
            return;
        };
        let x = if obs.result.is_ok() {
            obs.latency_ms()
        } else {
            obs.latency_ms()
                .max(FAILURE_PENALTY * self.latency(m).max(obs.latency_ms()))
        };
        let now = obs.end_ms;
        self.estimate[m] = Some(match self.estimate[m] {
            Some(e) if x <= e => {
                let w = (-(now - self.updated[m]).max(0.0) / DECAY_MS).exp();
                w * e + (1.0 - w) * x
            }
            _ => x,
        });
        self.updated[m] = now;
    }

    fn reason(&self) -> String {
        format!(
            "late binding: the better of two distinct random machines by peak-EWMA latency x (in flight + 1); window {}",
            self.window.limit()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::Layout;
    use crate::policy::testing::{fresh, ok, Loads};

    fn start(model: Option<&Calibration>) -> Box<dyn Binder> {
        let layout = Layout::documented();
        P2cEwma
            .start(&StartInput {
                n: 100,
                layout: &layout,
                forwarder_urls: &["http://127.0.0.1:5000".to_string()],
                model,
                seed: 7,
                time_scale: Default::default(),
            })
            .unwrap()
    }

    /// Sends a first wave of `n` jobs before any answer; jobs per machine.
    fn first_wave(binder: &mut dyn Binder, n: u32) -> Vec<u32> {
        let mut loads = Loads::new(5, 1);
        for id in 0..n {
            let view = loads.view(0.0, u64::from(n - id));
            match binder.next(&view, Some(&fresh(id))) {
                Decision::Send { route, .. } => loads.book(route),
                other => panic!("job {id} not sent: {other:?}"),
            }
        }
        loads.machines.iter().map(|m| m.in_flight).collect()
    }

    /// A batch that fits in one window goes out before any answer. With a model, the near
    /// machines (trips ~330 ms) take more of it than the far ones (~540 ms); without one, every
    /// machine scores the same and the wave is spread about evenly. (Without the model's trips a
    /// batch of 100 over five machines with no unit ceiling ran at 87 % of its bound.)
    #[test]
    fn a_first_wave_leans_on_the_machines_the_model_says_are_near() {
        let model = crate::calibrate::test_model(1, 0.0);
        let seeded = first_wave(start(Some(&model)).as_mut(), 100);
        let far = seeded[0] + seeded[1];
        let near = seeded[2] + seeded[3] + seeded[4];
        assert!(
            near as f64 / 3.0 > 1.2 * far as f64 / 2.0,
            "near machines not favoured: {seeded:?}"
        );
        let blind = first_wave(start(None).as_mut(), 100);
        let (lo, hi) = (blind.iter().min().unwrap(), blind.iter().max().unwrap());
        assert!(hi - lo <= 2, "without a model the wave is even: {blind:?}");
    }

    /// The model's figure is a prior, not a measurement: the machine's first answer in the batch
    /// replaces it outright. Blended through the EWMA instead, a stale trip of ~630 ms would
    /// still count as ~590 after an answer in 60 ms, and the quick machine would get no more
    /// than its even share for seconds.
    #[test]
    fn a_machines_first_answer_replaces_what_the_model_said() {
        let mut model = crate::calibrate::test_model(1, 0.0);
        for m in &mut model.machines {
            m.latency_ms = 600.0;
        }
        let mut b = start(Some(&model));
        let loads = Loads::new(5, 1);
        let route = match b.next(&loads.view(0.0, 1), Some(&fresh(0))) {
            Decision::Send { route, .. } => route,
            other => panic!("{other:?}"),
        };
        let Target::Machine(quick) = route.target else {
            panic!("a machine is named")
        };
        b.observe(&loads.view(100.0, 0), &ok(0, route, 40.0, 100.0, 50));
        let mut loads = Loads::new(5, 1);
        for id in 1..=50 {
            match b.next(&loads.view(100.0, 1), Some(&fresh(id))) {
                Decision::Send { route, .. } => loads.book(route),
                other => panic!("job {id}: {other:?}"),
            }
        }
        let got = loads.machines[quick as usize].in_flight;
        assert!(got > 20, "the quick machine took {got} of 50");
    }

    /// A trip the model holds only as an upper bound (every answer had waited) is no prior: the
    /// machine starts from the best figure known, as if the model did not have it.
    #[test]
    fn a_trip_known_only_as_an_upper_bound_is_not_a_prior() {
        let mut model = crate::calibrate::test_model(1, 0.0);
        model.machines[0].trip_measured = false;
        let prior = priors(Some(&model), 5);
        assert!(prior[0].is_none());
        assert!(prior[1..].iter().all(Option::is_some));
        assert!(priors(None, 5).iter().all(Option::is_none));
    }
}
