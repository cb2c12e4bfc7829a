//! `p2c-ewma`: the power of two choices over peak-EWMA latency (Finagle, Linkerd and tower's
//! balancer). For each job, two DISTINCT machines are drawn at random (with-replacement draws
//! degrade to random a quarter of the time with four servers) and the one with the lower
//! `peak-EWMA latency × (in flight + 1)` wins. The estimate jumps up at once on a slow answer
//! and decays over ~10 s of model time. Pitfalls handled: a failed attempt counts as a very slow
//! one (fast errors must not look attractive), and an unmeasured machine starts from the best
//! estimate measured so far, not a high default, so it is tried rather than starved. Needs no
//! model: it adapts to what it sees, at the price of not planning the tail. Paced by the
//! measured window like the other rules.

use super::window::Window;
use super::{Binder, Decision, JobCtx, Observation, Policy, PolicyError, Route, StartInput, View};
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
            updated: vec![0.0; m],
            window: Window::new(input.layout.machines.len()),
            rng: SmallRng::seed_from_u64(input.seed),
        }))
    }
}

impl Ewma {
    /// A machine's score input: its estimate, or the best measured one while it has none.
    fn latency(&self, m: usize) -> f64 {
        self.estimate[m].unwrap_or_else(|| {
            self.estimate
                .iter()
                .flatten()
                .copied()
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
