//! `p2c-ewma`: the power of two choices over peak-EWMA latency (Finagle, Linkerd and tower's
//! balancer, `../shared/reference/load-balancing-anchors.md`). For each job, two DISTINCT
//! machines are drawn at random (with-replacement draws degrade to random a quarter of the time
//! with four servers) and the one with the lower `peak-EWMA latency × (in flight + 1)` wins.
//! The estimate jumps up at once on a slow answer and decays over ~10 s of model time. Pitfalls
//! handled: a failed attempt counts as a very slow one (fast errors must not look attractive),
//! and an unmeasured machine starts from its calibrated trip, not a high default, so it is not
//! starved. Needs no model of the system beyond the calibration's trips: it adapts to what it
//! sees, at the price of not planning the tail.

use super::late::{caps, late_plan};
use super::sizing::{check_up, trip_ms};
use super::{least_in_flight, Job, LoadView, Observation, Plan, PlanInput, Policy, PolicyError};
use crate::calibrate::Calibration;
use crate::endpoint::Target;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::sync::Mutex;

/// Decay time of the EWMA, model ms (Finagle's default: 10 s).
pub const DECAY_MS: f64 = 10_000.0;
/// A failure is scored as this many calibrated trips.
pub const FAILURE_PENALTY: f64 = 5.0;

#[derive(Default)]
pub struct P2cEwma {
    state: Mutex<Option<Ewma>>,
}

struct Ewma {
    estimate: Vec<f64>,
    updated: Vec<f64>,
    trip: Vec<f64>,
    caps: Vec<u32>,
    up: Vec<bool>,
    /// The latest `now_ms` seen: observations carry no clock of their own.
    clock: f64,
    rng: StdRng,
}

impl Ewma {
    fn new(cal: &Calibration, seed: u64) -> Self {
        let trip: Vec<f64> = (0..cal.machines.len()).map(|m| trip_ms(cal, m)).collect();
        Ewma {
            estimate: trip.clone(),
            updated: vec![0.0; trip.len()],
            trip,
            caps: caps(cal),
            up: cal.machines.iter().map(|m| m.up).collect(),
            clock: 0.0,
            rng: StdRng::seed_from_u64(seed),
        }
    }

    fn bind(&mut self, load: &LoadView, avoid: Option<usize>) -> Option<usize> {
        self.clock = self.clock.max(load.now_ms);
        let ok: Vec<usize> = (0..self.up.len())
            .filter(|&m| self.up[m] && Some(m) != avoid)
            .filter(|&m| {
                load.machines
                    .get(m)
                    .is_none_or(|l| !l.ejected && l.in_flight < self.caps[m])
            })
            .collect();
        match ok.len() {
            0 => None,
            1 => Some(ok[0]),
            k => {
                let a = self.rng.random_range(0..k);
                let mut b = self.rng.random_range(0..k - 1);
                if b >= a {
                    b += 1;
                }
                let score = |m: usize| {
                    let in_flight = load.machines.get(m).map_or(0, |l| l.in_flight);
                    self.estimate[m] * f64::from(in_flight + 1)
                };
                let (a, b) = (ok[a], ok[b]);
                Some(if score(b) < score(a) { b } else { a })
            }
        }
    }

    fn observe(&mut self, obs: &Observation) {
        let Some(m) = obs.machine.filter(|&m| m < self.estimate.len()) else {
            return;
        };
        let x = if obs.ok {
            obs.latency_ms
        } else {
            obs.latency_ms.max(FAILURE_PENALTY * self.trip[m])
        };
        if x > self.estimate[m] {
            self.estimate[m] = x;
        } else {
            let w = (-(self.clock - self.updated[m]).max(0.0) / DECAY_MS).exp();
            self.estimate[m] = w * self.estimate[m] + (1.0 - w) * x;
        }
        self.updated[m] = self.clock;
    }
}

impl Policy for P2cEwma {
    fn name(&self) -> &'static str {
        "p2c-ewma"
    }

    fn plan(&self, input: &PlanInput) -> Result<Plan, PolicyError> {
        let cal = input.calibration;
        check_up(cal)?;
        self.reset(cal, input.seed);
        let plan = late_plan(
            self,
            &|| self.reset(cal, input.seed),
            input,
            "late binding: the better of two distinct random machines by peak-EWMA latency x (in flight + 1)".into(),
        );
        self.reset(cal, input.seed);
        Ok(plan)
    }

    fn bind(&self, job: &Job, load: &LoadView, avoid: Option<usize>) -> Option<Target> {
        let _ = job;
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match state.as_mut() {
            Some(s) => s.bind(load, avoid),
            None => least_in_flight(load, avoid, None),
        }
        .map(|m| Target::Machine(m as u16))
    }

    fn observe(&self, obs: &Observation) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = state.as_mut() {
            s.observe(obs);
        }
    }
}

impl P2cEwma {
    fn reset(&self, cal: &Calibration, seed: u64) {
        *self.state.lock().unwrap_or_else(|p| p.into_inner()) = Some(Ewma::new(cal, seed));
    }
}
