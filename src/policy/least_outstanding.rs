//! `least-outstanding`: late binding. When an agent is about to send a job, it goes to the
//! machine where it would be answered soonest given what each machine already has outstanding:
//! the jobs bound to it and not yet answered, as a queue that drains at its service rate, plus
//! its trip and the pass through the unit. That is least-outstanding-work (HAProxy's leastconn,
//! NGINX's least_conn, weighted by what an outstanding job costs on each machine), so the last
//! jobs go to the nearest machines and a batch sent at once fills the machines up to an equal
//! water level. In flight per machine is capped from the calibration (Little's law), so waiting
//! happens in cmdunit where a job can still move; machines the dispatcher ejected are skipped,
//! and a machine answering slower than predicted is treated as slower from then on.

use super::late::{caps, late_plan};
use super::sizing::check_up;
use super::{least_in_flight, Job, LoadView, Observation, Plan, PlanInput, Policy, PolicyError};
use crate::calibrate::Calibration;
use crate::endpoint::Target;
use std::collections::VecDeque;
use std::sync::Mutex;

#[derive(Default)]
pub struct LeastOutstanding {
    state: Mutex<Option<Outstanding>>,
}

/// The policy's picture of the outstanding work: when each unit's stage and each machine's
/// servers are next free, as predicted from the jobs bound so far.
pub(crate) struct Outstanding {
    cal: Calibration,
    caps: Vec<u32>,
    unit_free: Vec<f64>,
    servers: Vec<Vec<f64>>,
    /// Observed / predicted latency, smoothed: > 1 when a machine is slower than calibrated.
    slowness: Vec<f64>,
    /// Predicted latencies of each machine's jobs in flight, oldest first.
    predicted: Vec<VecDeque<f64>>,
}

/// Weight of the newest observation in the slowness estimate.
const SLOWNESS_ALPHA: f64 = 0.3;
/// Observed / predicted above this counts as a slow machine (jitter alone stays below).
const SLOW_RATIO: f64 = 1.25;

impl Outstanding {
    pub(crate) fn new(cal: &Calibration) -> Self {
        Outstanding {
            cal: cal.clone(),
            caps: caps(cal),
            unit_free: vec![0.0; cal.forwarders.len()],
            servers: cal
                .machines
                .iter()
                .map(|m| vec![0.0; m.concurrency.max(1) as usize])
                .collect(),
            slowness: vec![1.0; cal.machines.len()],
            predicted: vec![VecDeque::new(); cal.machines.len()],
        }
    }

    fn service(&self, m: usize) -> f64 {
        let s = self.slowness[m];
        self.cal.machines[m].service_ms * if s > SLOW_RATIO { s } else { 1.0 }
    }

    /// Bind `job` at `now`: the machine with the earliest predicted answer among those allowed.
    pub(crate) fn bind(
        &mut self,
        job: &Job,
        load: &LoadView,
        avoid: Option<usize>,
    ) -> Option<usize> {
        let now = load.now_ms.max(f64::from(job.release_ms.unwrap_or(0.0)));
        let up_units = self.cal.up_forwarders();
        let f = match job.forwarder.map(usize::from) {
            Some(f) if up_units.contains(&f) => f,
            _ => *up_units
                .iter()
                .min_by(|&&a, &&b| self.unit_free[a].total_cmp(&self.unit_free[b]))?,
        };
        let unit = &self.cal.forwarders[f];
        let exit = now.max(self.unit_free[f]) + unit.service_ms.max(0.0);
        let mut best: Option<(usize, usize, f64, f64)> = None; // machine, server, start, answer
        for (m, e) in self.cal.machines.iter().enumerate() {
            let l = load.machines.get(m);
            if !e.up
                || Some(m) == avoid
                || l.is_some_and(|l| l.ejected || l.in_flight >= self.caps[m])
            {
                continue;
            }
            let half = e.latency_ms / 2.0;
            let (server, free) = self.servers[m]
                .iter()
                .copied()
                .enumerate()
                .min_by(|a, b| a.1.total_cmp(&b.1))
                .unwrap_or((0, 0.0));
            let start = (exit + half).max(free);
            let answer = start + self.service(m) + half + unit.overhead_ms;
            if best.is_none_or(|b| answer < b.3 - 1e-9) {
                best = Some((m, server, start, answer));
            }
        }
        let (m, server, start, answer) = best?;
        self.unit_free[f] = exit;
        self.servers[m][server] = start + self.service(m);
        self.predicted[m].push_back(answer - now);
        Some(m)
    }

    pub(crate) fn observe(&mut self, obs: &Observation) {
        let Some(m) = obs.machine.filter(|&m| m < self.slowness.len()) else {
            return;
        };
        let Some(predicted) = self.predicted[m].pop_front() else {
            return;
        };
        let ratio = if obs.ok {
            obs.latency_ms / predicted.max(1.0)
        } else {
            // A failed attempt: treat the machine as at least twice as slow until it recovers.
            2.0
        };
        self.slowness[m] = (1.0 - SLOWNESS_ALPHA) * self.slowness[m] + SLOWNESS_ALPHA * ratio;
    }
}

impl Policy for LeastOutstanding {
    fn name(&self) -> &'static str {
        "least-outstanding"
    }

    fn plan(&self, input: &PlanInput) -> Result<Plan, PolicyError> {
        let cal = input.calibration;
        check_up(cal)?;
        self.reset(cal);
        let caps = caps(cal);
        let plan = late_plan(
            self,
            input,
            format!(
                "late binding to the machine that would answer soonest given its outstanding jobs; in flight capped at {}",
                cal.machines
                    .iter()
                    .zip(&caps)
                    .filter(|(e, _)| e.up)
                    .map(|(e, c)| format!("{} {c}", e.id))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
        // Sizing the plan simulated it: start the batch from a clean picture.
        self.reset(cal);
        Ok(plan)
    }

    fn bind(&self, job: &Job, load: &LoadView, avoid: Option<usize>) -> Option<Target> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match state.as_mut() {
            Some(s) => s.bind(job, load, avoid),
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

impl LeastOutstanding {
    fn reset(&self, cal: &Calibration) {
        *self.state.lock().unwrap_or_else(|p| p.into_inner()) = Some(Outstanding::new(cal));
    }
}
