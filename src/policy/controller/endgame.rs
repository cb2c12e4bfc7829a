//! The batch's end, through units with a ceiling. Each unit passes its jobs in the order they
//! were sent, so which job takes which place in its stage decides when the batch ends: a far
//! machine's job placed last ends it late. Once the rest of the batch goes out at once, a dry
//! run finds the soonest end that best fit can reach, and the jobs are placed against it; they
//! go out half a pass apart, so that the stage sees them in that order ([`ControlLoop::held`]).

use super::predict::Lane;
use super::{ControlLoop, Standing, View, HORIZON_WORK};

/// Best fit's rule: a machine that answers by `answer` (and `waits` behind more than one job
/// there, see [`Lane::answer`]) is the better fit if it would not queue, answers by the
/// `deadline`, and answers later than the best fit found so far (`so_far`).
pub(super) fn fits_better(
    deadline: Option<f64>,
    answer: f64,
    waits: bool,
    so_far: Option<f64>,
) -> bool {
    !waits && deadline.is_some_and(|d| answer <= d + 1e-6) && so_far.is_none_or(|b| answer > b)
}

/// A dry run of the rest of the batch, every job still to send going now: to find the deadline
/// best fit can meet ([`ControlLoop::horizon`]).
struct Plan {
    now: f64,
    jobs: u64,
    /// Per usable unit: when its stage is free (or, with no ceiling, when a job leaves it), its
    /// pass interval where it has a ceiling, and its fixed cost.
    units: Vec<(f64, Option<f64>, f64)>,
    lanes: Vec<Lane>,
}

impl Plan {
    /// Bisection steps between half the time left and earliest completion's end.
    const STEPS: u32 = 10;

    /// The earliest end best fit reaches, if it is clearly sooner than earliest completion's.
    fn horizon(&self) -> Option<f64> {
        let soonest = self.end(None);
        if self.end(Some(soonest)) > soonest + 1e-6 {
            return None;
        }
        let (mut lo, mut hi) = (self.now + (soonest - self.now) / 2.0, soonest);
        for _ in 0..Self::STEPS {
            let mid = (lo + hi) / 2.0;
            if self.end(Some(mid)) <= mid + 1e-6 {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        // A gain within one service is within the plan's discreteness — and best fit, which
        // brings every machine's end close to the deadline, is more exposed to the trips'
        // jitter than earliest completion, where only the last jobs end there.
        let service = self.lanes.iter().map(|l| l.service).fold(0.0, f64::max);
        (hi < soonest - service).then_some(hi)
    }

    /// When the batch ends if each job, in the order the units' stages pass them, goes to the
    /// machine best fit chooses against `deadline` (earliest completion where none fits, or
    /// without a deadline).
    fn end(&self, deadline: Option<f64>) -> f64 {
        let mut lanes = self.lanes.clone();
        let mut units = self.units.clone();
        let mut end = lanes
            .iter()
            .filter_map(|l| l.last)
            .fold(f64::NEG_INFINITY, f64::max);
        for _ in 0..self.jobs {
            let Some((u, exit)) = units
                .iter()
                .enumerate()
                .map(|(i, &(free, pass, _))| (i, free + pass.unwrap_or(0.0)))
                .min_by(|a, b| a.1.total_cmp(&b.1))
            else {
                break;
            };
            let d_fixed = units[u].2;
            let mut best: Option<(usize, f64, f64)> = None;
            let mut fitted: Option<(usize, f64, f64)> = None;
            for (i, lane) in lanes.iter().enumerate() {
                let (start, answer, waits) = lane.answer(exit, d_fixed);
                if best.is_none_or(|b| answer < b.2) {
                    best = Some((i, start, answer));
                }
                if fits_better(deadline, answer, waits, fitted.map(|b| b.2)) {
                    fitted = Some((i, start, answer));
                }
            }
            let Some((i, start, answer)) = fitted.or(best) else {
                break;
            };
            lanes[i].free = start + lanes[i].interval;
            if units[u].1.is_some() {
                units[u].0 = exit;
            }
            end = end.max(answer);
        }
        end
    }
}

impl ControlLoop {
    /// The deadline best fit aims at: the earliest end of the batch that a dry run of best fit
    /// reaches from the current estimates and what is in flight, every job still to send going
    /// now ([`Plan`]). Found by bisection between half the time left and the end that earliest
    /// completion would reach; `None` where best fit would not do better than that (or the dry
    /// runs would be long: many jobs left over many machines, not the end yet). Kept until the
    /// next answer changes the estimates, so that the jobs of one burst aim at one deadline.
    pub(super) fn horizon(&mut self, view: &View) -> Option<f64> {
        if let Some((answered, h)) = self.horizon {
            if answered == self.answered {
                return h;
            }
        }
        let h = self.plan(view).and_then(|plan| plan.horizon());
        self.horizon = Some((self.answered, h));
        h
    }

    /// The dry run's starting point: the machines that answer, as they are now, and the units.
    fn plan(&self, view: &View) -> Option<Plan> {
        if self.est.units.iter().any(|u| u.stage_after == Some(true)) {
            // Answers pass the stage on their way back, in the order they come: the order jobs
            // are sent in does not set it, and there is nothing to plan.
            return None;
        }
        let now = view.now_ms;
        let usable: Vec<usize> = (0..view.forwarders.len())
            .filter(|&f| view.forwarders[f].usable)
            .collect();
        let first = *usable.first()?;
        let units: Vec<(f64, Option<f64>, f64)> = usable
            .iter()
            .map(|&f| {
                let (d_fixed, queue) = self.unit_times(f);
                match self.est.units[f].pass_ms {
                    Some(pass) => (self.unit_free[f].max(now), Some(pass), d_fixed),
                    None => (now + queue, None, d_fixed),
                }
            })
            .collect();
        let lanes: Vec<Lane> = (0..self.machines.len())
            .filter(|&m| self.machines[m].standing == Standing::Known && !view.machines[m].ejected)
            .filter_map(|m| self.lane(m, first, now))
            .collect();
        let work = view.unissued.saturating_mul(lanes.len() as u64);
        (!lanes.is_empty() && work <= HORIZON_WORK).then_some(Plan {
            now,
            jobs: view.unissued,
            units,
            lanes,
        })
    }

    /// The end of the batch: what is left to send fits in what the machines keep in flight.
    /// Caps keep jobs in cmdunit so that they can still go anywhere; once the rest of the batch
    /// is no more than one round of in-flight work, there is nothing left to keep flexible, and
    /// the last jobs are placed where they are answered soonest even if a machine then holds a
    /// little more than keeps it busy (the water filling of the end).
    pub(super) fn endgame(&self, view: &View, f: usize) -> bool {
        if self.machines.iter().any(|c| c.standing == Standing::Fresh) {
            // A machine has yet to answer: what it will say is worth waiting for, so jobs go
            // out as places free up rather than all at once on a partial picture.
            return false;
        }
        let room: u64 = (0..self.machines.len())
            .filter(|&m| self.machines[m].standing == Standing::Known && !view.machines[m].ejected)
            .map(|m| u64::from(self.cap(m, f)))
            .sum();
        view.unissued <= room
    }

    /// Until when a fresh job waits to go through unit `f`: under best fit at the batch's end
    /// through a unit with a ceiling, half a pass after the last one, so that the stage sees
    /// them in the order the plan placed them (the parent module's note on the end says why).
    /// `None`: it may go now.
    pub(super) fn held(&mut self, view: &View, f: usize) -> Option<f64> {
        let pass = self.est.units[f].pass_ms.filter(|p| *p > 0.0)?;
        let release = self.last_sent[f] + pass / 2.0;
        if release <= view.now_ms || !self.endgame(view, f) {
            return None;
        }
        self.horizon(view).map(|_| release)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lane(trip: f64) -> Lane {
        Lane {
            half: trip / 2.0,
            interval: 20.0,
            service: 20.0,
            free: f64::NEG_INFINITY,
            last: None,
            blind: false,
        }
    }

    fn plan(units: usize, trips: &[f64], jobs: u64) -> Plan {
        Plan {
            now: 0.0,
            jobs,
            units: vec![(0.0, Some(17.0), 13.0); units],
            lanes: trips.iter().map(|&t| lane(t)).collect(),
        }
    }

    /// Two machines equally far: every order ends the same, best fit gains nothing, and
    /// earliest completion stays (a deadline would only expose every machine's end to jitter).
    #[test]
    fn a_plan_where_best_fit_gains_less_than_one_service_is_not_used() {
        assert_eq!(plan(1, &[300.0, 300.0], 20).horizon(), None);
    }

    /// Five units, two far machines and three near: earliest completion puts the far machines'
    /// jobs in the stages' last places; best fit reaches an end more than a service sooner.
    #[test]
    fn through_several_units_best_fit_plans_a_sooner_end() {
        let p = plan(5, &[520.0, 515.0, 310.0, 370.0, 350.0], 100);
        let soonest = p.end(None);
        let h = p.horizon().expect("best fit gains");
        assert!(h < soonest - 20.0, "{h} against {soonest}");
        assert!(
            p.end(Some(h)) <= h + 1e-6,
            "the deadline is met in the dry run"
        );
    }
}
