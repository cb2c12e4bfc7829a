//! `least-outstanding`: late binding from a model, corrected by what the machines do. When a job
//! is released (at its unit's pace, as `per-region-queues` releases it), it goes to the machine
//! where it would be answered soonest given the work that machine already has outstanding — a
//! queue draining at its service rate, plus its trip — which is least-outstanding-work
//! (HAProxy's leastconn, NGINX's least_conn) weighted by what a job costs on each machine. The
//! picture corrects itself: each machine's latest answer, compared with what was predicted for
//! it, says how far it runs behind the model, and later predictions carry that lag; a machine
//! whose oldest job is overdue counts as behind by that much before it answers. In flight per
//! machine is capped (Little's law over its trip, with room for a burst), so waiting happens in
//! cmdunit, where a job can still go elsewhere.

use super::ect::{choose, machine, release_ms, Servers, Slots};
use super::{
    require_model, up_machines, Binder, Decision, JobCtx, Observation, Policy, PolicyError, Route,
    StartInput, View,
};
use crate::calibrate::Calibration;
use std::collections::VecDeque;

pub struct LeastOutstanding;

/// In flight per machine, as a multiple of what keeps it busy.
pub const CAP_FACTOR: f64 = 1.5;
/// A failed attempt counts as this many trips of lag (fast errors must not look attractive).
const FAILURE_LAG_TRIPS: f64 = 2.0;

struct Outstanding {
    model: Calibration,
    caps: Vec<u32>,
    servers: Servers,
    slots: Slots,
    lag: Vec<f64>,
    /// Per machine, its jobs in flight: (job, when bound, predicted latency), oldest first.
    predicted: Vec<VecDeque<(u32, f64, f64)>>,
}

/// The in-flight cap of each machine (0 for machines that are down).
pub(crate) fn caps(model: &Calibration) -> Vec<u32> {
    model
        .machines
        .iter()
        .map(|e| {
            if !e.up {
                return 0;
            }
            let w = model.no_load_latency_ms(e);
            let busy = w * f64::from(e.concurrency.max(1)) / e.service_ms.max(1e-3);
            (busy * CAP_FACTOR).min(1e6).ceil() as u32 + 2
        })
        .collect()
}

impl Policy for LeastOutstanding {
    fn name(&self) -> &'static str {
        "least-outstanding"
    }

    fn needs_model(&self) -> bool {
        true
    }

    fn start(&self, input: &StartInput) -> Result<Box<dyn Binder>, PolicyError> {
        let model = require_model(input, self.name())?.clone();
        up_machines(&model)?;
        Ok(Box::new(Outstanding {
            caps: caps(&model),
            servers: Servers::new(&model),
            slots: Slots::new(model.forwarders.len()),
            lag: vec![0.0; model.machines.len()],
            predicted: vec![VecDeque::new(); model.machines.len()],
            model,
        }))
    }
}

impl Outstanding {
    /// How far machine `m` runs behind the model: its latest answer's lag, or more if its
    /// oldest job in flight is already overdue by more.
    fn lag_at(&self, m: usize, now: f64) -> f64 {
        let overdue = self.predicted[m]
            .front()
            .map_or(f64::NEG_INFINITY, |&(_, bound_at, latency)| {
                now - bound_at - latency
            });
        self.lag[m].max(overdue)
    }

    fn trip(&self, m: usize) -> f64 {
        let e = &self.model.machines[m];
        e.latency_ms + e.service_ms
    }
}

impl Binder for Outstanding {
    fn next(&mut self, view: &View, job: Option<&JobCtx>) -> Decision {
        let Some(job) = job else {
            return Decision::Wait { until_ms: None };
        };
        let now = view.now_ms;
        let (f, exit) = if job.attempt > 0 {
            match view.least_loaded_forwarder() {
                Some(f) => (usize::from(f), now),
                None => {
                    return Decision::Wait {
                        until_ms: Some(now + 10.0),
                    }
                }
            }
        } else {
            let (f, release) = match self.slots.held(job.id) {
                Some((route, release)) => (usize::from(route.forwarder), release),
                None => {
                    let Some((f, exit)) = self.slots.slot(&self.model, view) else {
                        return Decision::Wait {
                            until_ms: Some(now + 10.0),
                        };
                    };
                    let release = release_ms(&self.model, f, exit);
                    let route = Route {
                        forwarder: f as u16,
                        target: crate::endpoint::Target::Late,
                    };
                    self.slots.hold(job.id, route, release);
                    (f, release)
                }
            };
            if now + 1e-9 < release {
                return Decision::Wait {
                    until_ms: Some(release),
                };
            }
            let pass = self.model.forwarders[f].service_ms;
            (f, now.max(release) + pass)
        };
        let allowed = |m: usize| {
            !view.machines[m].ejected
                && Some(m) != job.avoid
                && view.machines[m].in_flight < self.caps[m]
        };
        let lagged = |m: usize| self.lag_at(m, now);
        let Some(c) = choose(&self.model, &self.servers, f, exit, None, allowed, lagged) else {
            // Every machine is at its cap: an answer will free one.
            return Decision::Wait { until_ms: None };
        };
        if job.attempt == 0 {
            self.slots.release();
        }
        let service = self.model.machines[c.machine].service_ms;
        self.servers.book(c.machine, c.server, c.start + service);
        self.predicted[c.machine].push_back((job.id, now, c.answer - now));
        let pass = self.model.forwarders[f].service_ms;
        Decision::Send {
            route: Route {
                forwarder: f as u16,
                target: machine(c.machine),
            },
            more: pass <= 0.0 && view.unissued > 1,
        }
    }

    fn observe(&mut self, _view: &View, obs: &Observation) {
        let Some(m) = obs.machine.filter(|&m| m < self.lag.len()) else {
            return;
        };
        let q = &mut self.predicted[m];
        let Some(pos) = q.iter().position(|p| p.0 == obs.job) else {
            return;
        };
        let Some((_, _, predicted)) = q.remove(pos) else {
            return;
        };
        let trip = self.trip(m);
        self.lag[m] = if obs.result.is_ok() {
            // Ahead of the model by at most half a trip: a fast answer must not draw everything.
            (obs.latency_ms() - predicted).max(-0.5 * trip)
        } else {
            self.lag[m].max(0.0) + FAILURE_LAG_TRIPS * trip
        };
    }

    fn reason(&self) -> String {
        format!(
            "late binding to the machine that would answer soonest given its outstanding jobs; in flight capped at {}",
            self.model
                .machines
                .iter()
                .zip(&self.caps)
                .filter(|(e, _)| e.up)
                .map(|(e, c)| format!("{} {c}", e.id))
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}
