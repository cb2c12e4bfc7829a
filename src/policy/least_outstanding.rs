//! `least-outstanding`: late binding. When an agent is about to send a job, it goes to the
//! machine where it would be answered soonest given what each machine already has outstanding:
//! the jobs bound to it and not yet answered, as a queue that drains at its service rate, plus
//! its trip and the pass through the unit. That is least-outstanding-work (HAProxy's leastconn,
//! NGINX's least_conn, weighted by what an outstanding job costs on each machine), so the last
//! jobs go to the nearest machines and a batch sent at once fills the machines up to an equal
//! water level. In flight per machine is capped from the calibration (Little's law), so waiting
//! happens in cmdunit where a job can still move; machines the dispatcher ejected are skipped.
//! The picture corrects itself from the answers: each machine's latest answer, compared with
//! what was predicted for it, gives how far that machine runs behind (or ahead of) the model,
//! and later predictions for it carry that lag — a machine slowed tenfold falls behind by a
//! service time with every answer and is soon left alone.

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
    /// How far each machine's latest answer came after the model's prediction (model ms).
    lag: Vec<f64>,
    /// When each machine's jobs in flight were bound and the latency the model predicted for
    /// them (without lag), oldest first.
    predicted: Vec<VecDeque<(f64, f64)>>,
}

/// A failed attempt counts as this many trips of lag (fast errors must not look attractive).
const FAILURE_LAG_TRIPS: f64 = 2.0;

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
            lag: vec![0.0; cal.machines.len()],
            predicted: vec![VecDeque::new(); cal.machines.len()],
        }
    }

    fn service(&self, m: usize) -> f64 {
        self.cal.machines[m].service_ms
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
            let answer_with_lag = answer + self.lag_at(m, now);
            if best.is_none_or(|b| answer_with_lag < b.3 - 1e-9) {
                best = Some((m, server, start, answer_with_lag));
            }
        }
        let (m, server, start, _) = best?;
        let answer =
            start + self.service(m) + self.cal.machines[m].latency_ms / 2.0 + unit.overhead_ms;
        self.unit_free[f] = exit;
        self.servers[m][server] = start + self.service(m);
        self.predicted[m].push_back((now, answer - now));
        Some(m)
    }

    /// How far machine `m` runs behind the model: its latest answer's lag, or more if its oldest
    /// job in flight is already overdue by more (a machine that stopped answering shows before
    /// its first late answer arrives).
    fn lag_at(&self, m: usize, now: f64) -> f64 {
        let overdue = self.predicted[m]
            .front()
            .map_or(f64::NEG_INFINITY, |&(bound_at, latency)| {
                now - bound_at - latency
            });
        self.lag[m].max(overdue)
    }

    pub(crate) fn observe(&mut self, obs: &Observation) {
        let Some(m) = obs.machine.filter(|&m| m < self.lag.len()) else {
            return;
        };
        let Some((_, predicted)) = self.predicted[m].pop_front() else {
            return;
        };
        let e = &self.cal.machines[m];
        let trip = e.latency_ms + e.service_ms;
        self.lag[m] = if obs.ok {
            // Ahead of the model by at most half a trip: a fast answer must not draw everything.
            (obs.latency_ms - predicted).max(-0.5 * trip)
        } else {
            self.lag[m].max(0.0) + FAILURE_LAG_TRIPS * trip
        };
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
            &|| self.reset(cal),
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
