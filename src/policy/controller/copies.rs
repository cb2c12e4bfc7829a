//! Copies of jobs in flight (hedges, the first answer wins, within one budget): a job stuck at a
//! machine that went silent, and at the batch's end the job expected back last.

use super::{ControlLoop, Decision, Pick, Standing, View, SILENT_FACTOR, STEAL_GAIN};

impl ControlLoop {
    /// A job in flight at a machine that has gone silent, to copy elsewhere. A machine is
    /// silent when nothing came back from it for several times what its answers usually take
    /// (or, before its first answer, several times the slowest first answer of the others):
    /// asleep, hung, or gone.
    pub(super) fn overdue(&self, now: f64) -> Option<u32> {
        if self.hedges_left == 0 {
            return None;
        }
        let reference = self.reference_latency()?;
        for ctl in &self.machines {
            let Some(&(job, sent, _, _)) =
                ctl.in_flight.iter().find(|j| !self.hedged.contains(&j.0))
            else {
                continue;
            };
            let oldest = ctl.in_flight.front().map_or(sent, |j| j.1);
            let quiet_since = ctl.last_answer_at.map_or(oldest, |a| a.max(oldest));
            let usual = ctl.latency_ewma.unwrap_or(0.0).max(reference);
            if now - quiet_since > (SILENT_FACTOR * usual).max(self.silent_floor_ms) {
                return Some(job);
            }
        }
        None
    }

    /// The batch's end, everything sent: the job expected back last, with a machine that would
    /// answer a copy of it clearly sooner (first answer wins). This is the end's water filling
    /// for jobs already committed: a machine that drained its queue early — or that was
    /// avoided on an estimate that turned out wrong — takes the tail of the longest queue. The
    /// copies are hedges, within the same budget.
    pub(super) fn steal(&mut self, view: &View, f: usize) -> Option<(u32, Pick)> {
        if self.hedges_left == 0 || view.unissued > 0 {
            return None;
        }
        let now = view.now_ms;
        let (donor, job, due) = (0..self.machines.len())
            .filter(|&m| self.machines[m].standing == Standing::Known)
            .filter_map(|m| {
                let ctl = &self.machines[m];
                let (last, _) = self.forecast(m, f, now)?;
                let (_, interval, _) = self.machine_times(m)?;
                // The latest of its jobs not copied yet, one interval earlier per job after it.
                let (behind, &(job, _, _, _)) = ctl
                    .in_flight
                    .iter()
                    .rev()
                    .enumerate()
                    .find(|(_, j)| !self.hedged.contains(&j.0))?;
                Some((m, job, last? - behind as f64 * interval))
            })
            .max_by(|a, b| a.2.total_cmp(&b.2))?;
        let idle: Vec<Pick> = (0..self.machines.len())
            .filter(|&m| m != donor && !view.machines[m].ejected && view.machines[m].in_flight == 0)
            .filter(|&m| self.machines[m].standing == Standing::Known)
            .filter_map(|m| {
                Some(Pick {
                    machine: m,
                    answer: self.hopeful(m, f, now)?,
                })
            })
            .collect();
        let p = self
            .pick(view, f, Some(donor), false, false)
            .into_iter()
            .chain(idle)
            .min_by(|a, b| a.answer.total_cmp(&b.answer))?;
        (due - p.answer > STEAL_GAIN * (p.answer - now)).then_some((job, p))
    }

    /// A second copy of `job`, in flight elsewhere, to machine `m` through `f` (within the
    /// hedge budget; the first answer wins).
    pub(super) fn hedge(&mut self, job: u32, m: usize, f: usize, now: f64) -> Decision {
        self.hedged.insert(job);
        self.hedges_left = self.hedges_left.saturating_sub(1);
        self.hedges += 1;
        let route = self.send(m, f, job, now);
        Decision::Hedge {
            job,
            route,
            more: true,
        }
    }

    /// How long answers take now on the quickest machine that answers (its recent average):
    /// the yardstick of silence — a machine quiet for several times that, while the others
    /// answer, is asleep, hung or gone. `None` until a machine has answered.
    pub(super) fn reference_latency(&self) -> Option<f64> {
        let r = self
            .machines
            .iter()
            .filter_map(|c| c.latency_ewma)
            .fold(f64::INFINITY, f64::min);
        r.is_finite().then_some(r)
    }
}
