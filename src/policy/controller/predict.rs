//! Where a job would be answered: each machine's jobs in flight replayed through its queue from
//! what the estimates say now, so that every decision — where a job goes, which job to copy,
//! what the batch's end can reach — reads the same picture.

use super::ControlLoop;
use crate::numbers::median_of;

/// How a machine would take one more job: its times and when its queue is free of the jobs it
/// has in flight (model ms).
#[derive(Clone, Copy, Debug)]
pub(super) struct Lane {
    pub(super) half: f64,
    pub(super) interval: f64,
    pub(super) service: f64,
    pub(super) free: f64,
    /// When its last job in flight is expected back (`None`: it has none).
    pub(super) last: Option<f64>,
    /// Nothing is known of any machine: `free` is the count of jobs in flight, which alone
    /// decides (jobs spread evenly).
    pub(super) blind: bool,
}

impl Lane {
    /// A job leaving the unit's stage at `exit` (the unit adding `d_fixed`): when the machine
    /// starts it, when its answer is back, and whether it waits there behind more than one job
    /// (one job ahead keeps a machine busy while the stage passes jobs in groups, one per unit,
    /// at a pace that is not the machine's).
    pub(super) fn answer(&self, exit: f64, d_fixed: f64) -> (f64, f64, bool) {
        if self.blind {
            return (self.free, self.free, false);
        }
        let arrive = exit + self.half;
        let start = arrive.max(self.free);
        (
            start,
            start + self.service + self.half + d_fixed,
            start > arrive + self.interval + 1e-6,
        )
    }
}

impl ControlLoop {
    /// The network trip of `m` (unit to machine and back), its interval and its own service.
    pub(super) fn machine_times(&self, m: usize) -> Option<(f64, f64, f64)> {
        let e = &self.est.machines[m];
        let rt0 = e.rt0()?;
        let interval = e.interval()?;
        let service = interval * f64::from(e.concurrency.max(1));
        Some(((rt0 - service).max(0.0), interval, service))
    }

    /// A unit's fixed cost (outside the worker call) and its current queueing.
    pub(super) fn unit_times(&self, f: usize) -> (f64, f64) {
        let u = &self.est.units[f];
        (u.d_min.unwrap_or(0.0).max(0.0), u.queue_ms)
    }

    /// Typical no-load latency of the machines that answered (for those that have not).
    pub(super) fn typical_known(&self) -> Option<(f64, f64)> {
        let mut lat: Vec<f64> = Vec::new();
        let mut int: Vec<f64> = Vec::new();
        for m in 0..self.machines.len() {
            if let Some((trip, interval, service)) = self.machine_times(m) {
                lat.push(trip + service);
                int.push(interval);
            }
        }
        Some((median_of(&lat)?, median_of(&int)?))
    }

    /// When a job sent now through `f` to `m` would be answered: the jobs it already has are
    /// replayed through its queue (each arriving half a trip after it left the unit, served one
    /// interval after the other, the first not before what its last answer showed nor so early
    /// that it should have come back by now), and the new job is served after them.
    ///
    /// A machine that has not answered yet is predicted the same way with the typical trip and
    /// interval of those that have — its trip no shorter than the time it has been silent — so
    /// that it neither attracts every job nor is written off before it could have answered.
    pub(super) fn predict(&self, m: usize, f: usize, now: f64) -> Option<f64> {
        self.forecast(m, f, now).map(|(_, next)| next)
    }

    /// [`predict`](Self::predict) for an idle machine whose trip was never measured without a
    /// queue in front, with the typical machine's latency where that is quicker. Its own
    /// estimate may be the error (a sleeping machine's queue drains after its boot: every answer
    /// waited, and the trip read from them is seconds too long); believed, it would keep the
    /// machine idle for the rest of the batch and so never be corrected. Used for one job at a
    /// time — a probe, or a copy whose original still runs — so hope costs little if it is wrong.
    pub(super) fn hopeful(&self, m: usize, f: usize, now: f64) -> Option<f64> {
        let ctl = &self.machines[m];
        let own = self.predict(m, f, now)?;
        if ctl.clean || !ctl.in_flight.is_empty() || self.est.machines[m].answers == 0 {
            return Some(own);
        }
        let Some((typical, _)) = self.typical_known() else {
            return Some(own);
        };
        let (d_fixed, queue) = self.unit_times(f);
        Some(own.min(self.exit_time(f, now, queue) + typical + d_fixed))
    }

    /// [`predict`](Self::predict), and when the last job already in flight at `m` is expected
    /// back (`None` if it has none).
    pub(super) fn forecast(&self, m: usize, f: usize, now: f64) -> Option<(Option<f64>, f64)> {
        let lane = self.lane(m, f, now)?;
        let (d_fixed, queue) = self.unit_times(f);
        Some((
            lane.last,
            lane.answer(self.exit_time(f, now, queue), d_fixed).1,
        ))
    }

    /// How machine `m` would take one more job through `f`: the jobs it already has in flight
    /// replayed through its queue (see [`predict`](Self::predict)).
    pub(super) fn lane(&self, m: usize, f: usize, now: f64) -> Option<Lane> {
        let ctl = &self.machines[m];
        let (d_fixed, _) = self.unit_times(f);
        let (trip, interval, service, known) = match self.machine_times(m) {
            Some((trip, interval, service)) => (trip, interval, service, true),
            None => {
                let Some((lat, interval)) = self.typical_known() else {
                    // Nothing known of any machine: the count alone decides, jobs spread evenly.
                    let queued = ctl.in_flight.len() as f64;
                    return Some(Lane {
                        half: 0.0,
                        interval: 0.0,
                        service: 0.0,
                        free: now + queued,
                        last: None,
                        blind: true,
                    });
                };
                let interval = interval.max(1e-3);
                let silent = ctl.first_sent.map_or(0.0, |t| (now - t).max(0.0));
                let trip = (lat - interval).max(silent - interval - d_fixed).max(0.0);
                (trip, interval, interval, false)
            }
        };
        let half = trip / 2.0;
        let back = half + d_fixed;
        let mut free = ctl.last_done.unwrap_or(f64::NEG_INFINITY);
        for (i, &(_, sent, arrive, _)) in ctl.in_flight.iter().enumerate() {
            let arrive = if known { arrive } else { sent + half };
            let mut done = arrive.max(free) + interval;
            if i == 0 {
                // Not answered yet: it cannot have left the machine long ago.
                done = done.max(now - back);
            }
            free = done;
        }
        let last = (!ctl.in_flight.is_empty()).then_some(free + back);
        Some(Lane {
            half,
            interval,
            service,
            free,
            last,
            blind: false,
        })
    }

    /// When a job sent now through `f` would leave the unit's stage: after the jobs already
    /// sent through it, one pass each, where the unit has shown a ceiling; else after the
    /// queueing it shows now.
    pub(super) fn exit_time(&self, f: usize, now: f64, queue: f64) -> f64 {
        match self.est.units.get(f).and_then(|u| u.pass_ms) {
            Some(pass) => now.max(self.unit_free[f]) + pass,
            None => now + queue,
        }
    }
}
