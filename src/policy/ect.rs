//! Earliest completion from a model: the shared core of the policies that decide from a model of
//! the system (`per-region-queues`, `least-outstanding`).
//!
//! A job passes a forwarding unit's one-at-a-time stage (its "slot": unit `k` passes one every
//! `s_k`), then travels half the trip to a machine, waits for one of its servers, is served, and
//! travels back. [`Slots`] hands out the units' slots in order and the release time at which a
//! job must be sent to make its slot (a few passes early, so a late thread costs nothing);
//! [`Servers`] keeps when each machine's servers are next free, so the machine whose answer would
//! come soonest can be chosen. Choosing that machine for every job in slot order is
//! earliest-completion-time list scheduling: with all jobs at once it is the machines' water
//! filling, and through a unit it sends the last slots to the nearest machines.

use super::{Route, View};
use crate::calibrate::Calibration;
use crate::endpoint::Target;

/// A job is sent this many passes ahead of its slot.
pub const LEAD_PASSES: f64 = 4.0;

/// When each machine's servers are next free, model ms.
pub(crate) struct Servers {
    free: Vec<Vec<f64>>,
}

impl Servers {
    pub fn new(model: &Calibration) -> Servers {
        Servers {
            free: model
                .machines
                .iter()
                .map(|m| vec![0.0; m.concurrency.clamp(1, 1024) as usize])
                .collect(),
        }
    }

    /// The server of `m` free soonest, and when.
    pub fn earliest(&self, m: usize) -> (usize, f64) {
        self.free[m]
            .iter()
            .copied()
            .enumerate()
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap_or((0, 0.0))
    }

    pub fn book(&mut self, m: usize, server: usize, until: f64) {
        if let Some(s) = self.free.get_mut(m).and_then(|v| v.get_mut(server)) {
            *s = until;
        }
    }
}

/// A choice of machine for one job.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Choice {
    pub machine: usize,
    pub server: usize,
    pub start: f64,
    /// When the model says the answer reaches the client.
    pub answer: f64,
}

/// The machine for a job leaving unit `f` at `exit`, among those `allowed`; `penalty(m)` is
/// added to each machine's predicted answer (its observed lag).
///
/// Without a `deadline` it is the machine that would answer soonest (earliest completion).
/// With one — the makespan the batch can reach — it is, among the machines where the job would
/// not wait for a server, the one that answers *latest while still by the deadline* (best fit):
/// early jobs use the far machines' slack and the near ones stay free for the last jobs, which
/// is what a schedule built backwards from the end does. A queue is never part of the fit: a
/// plan that piles a far machine's queue up to the deadline is right only in the model — sent
/// at what keeps the machine busy, those jobs wait in cmdunit and the unit's slots go unused
/// (a batch of 1000 through one unit once put 93 % of its jobs on asia and ran at 86 % of its
/// bound). If no machine fits, the soonest answer wins.
pub(crate) fn choose(
    model: &Calibration,
    servers: &Servers,
    f: usize,
    exit: f64,
    deadline: Option<f64>,
    allowed: impl Fn(usize) -> bool,
    penalty: impl Fn(usize) -> f64,
) -> Option<Choice> {
    let overhead = model.forwarders.get(f).map_or(0.0, |u| u.overhead_ms);
    let mut best: Option<(Choice, f64)> = None;
    let mut fit: Option<(Choice, f64)> = None;
    for (m, e) in model.machines.iter().enumerate() {
        if !e.up || !allowed(m) {
            continue;
        }
        let half = e.latency_ms / 2.0;
        let (server, free) = servers.earliest(m);
        let start = (exit + half).max(free);
        let answer = start + e.service_ms + half + overhead;
        let score = answer + penalty(m);
        let choice = Choice {
            machine: m,
            server,
            start,
            answer,
        };
        if best.is_none_or(|b| score < b.1 - 1e-9) {
            best = Some((choice, score));
        }
        let waits = start > exit + half + 1e-6;
        if !waits && deadline.is_some_and(|d| score <= d) && fit.is_none_or(|b| score > b.1 + 1e-9)
        {
            fit = Some((choice, score));
        }
    }
    fit.or(best).map(|b| b.0)
}

/// The deadline best fit aims at: the model's lower bound for the batch plus one service time
/// of the slowest machine (a bound is met only to within one job's discreteness).
pub(crate) fn deadline(model: &Calibration, n: u64) -> Option<f64> {
    let b = crate::bound::lower_bound(n, model).lower_bound_ms;
    let s = model
        .machines
        .iter()
        .filter(|m| m.up)
        .map(|m| m.service_ms)
        .fold(0.0, f64::max);
    b.is_finite().then_some(b + s)
}

/// The units' slots, handed out in job order, and the job waiting for its release.
pub(crate) struct Slots {
    unit_free: Vec<f64>,
    pending: Option<(u32, Route, f64)>,
}

impl Slots {
    pub fn new(units: usize) -> Slots {
        Slots {
            unit_free: vec![0.0; units],
            pending: None,
        }
    }

    /// The next slot: its unit (the model unit free soonest among those usable now) and when
    /// the job leaves the unit's stage.
    pub fn slot(&mut self, model: &Calibration, view: &View) -> Option<(usize, f64)> {
        let f = (0..self.unit_free.len())
            .filter(|&f| model.forwarders[f].up && view.forwarders[f].usable)
            .min_by(|&a, &b| self.unit_free[a].total_cmp(&self.unit_free[b]))?;
        let pass = model.forwarders[f].service_ms;
        let exit = self.unit_free[f] + pass;
        self.unit_free[f] = exit;
        Some((f, exit))
    }

    /// Remembers the route and release of the job being placed.
    pub fn hold(&mut self, job: u32, route: Route, release: f64) {
        self.pending = Some((job, route, release));
    }

    /// The route already chosen for `job`, if it is the one held.
    pub fn held(&self, job: u32) -> Option<(Route, f64)> {
        self.pending
            .filter(|p| p.0 == job)
            .map(|(_, route, release)| (route, release))
    }

    pub fn release(&mut self) {
        self.pending = None;
    }
}

/// When a job leaving unit `f` at `exit` should be sent.
pub(crate) fn release_ms(model: &Calibration, f: usize, exit: f64) -> f64 {
    let pass = model.forwarders.get(f).map_or(0.0, |u| u.service_ms);
    (exit - pass * (1.0 + LEAD_PASSES)).max(0.0)
}

/// A machine target.
pub(crate) fn machine(m: usize) -> Target {
    Target::Machine(m as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Best fit takes the farthest machine that answers by the deadline only where the job would
    /// not wait: a far machine with a queue in front is passed over for the next farthest free
    /// one (the plan once piled 93 % of a unit-paced batch on one far machine's queue, which the
    /// in-flight caps then held in cmdunit while the unit's slots went unused).
    #[test]
    fn best_fit_never_chooses_a_machine_where_the_job_would_wait() {
        let model = crate::calibrate::test_model(1, 17.0);
        let mut servers = Servers::new(&model);
        let deadline = Some(10_000.0);
        let first = choose(&model, &servers, 0, 0.0, deadline, |_| true, |_| 0.0).unwrap();
        assert_eq!(first.machine, 0, "the farthest machine first");
        // Machine 0 busy for another second: the job would queue there.
        servers.book(0, 0, 1500.0);
        let next = choose(&model, &servers, 0, 17.0, deadline, |_| true, |_| 0.0).unwrap();
        assert_eq!(next.machine, 1, "the next farthest, free");
        assert!(next.start <= 17.0 + model.machines[1].latency_ms / 2.0 + 1e-6);
    }
}
