//! How many in flight: what keeps each machine busy (its cap), a unit's window (its pass rate
//! times the latency of what goes through it, plus a small standing queue), and which unit takes
//! the next job. Waiting happens in cmdunit, where a job can still go anywhere (see the module
//! note on "How many in flight").

use super::{
    ControlLoop, Standing, View, BLIND_DOUBLING_MS, MACHINE_EXTRA, MACHINE_SLACK, UNIT_QUEUE,
};

impl ControlLoop {
    /// What keeps machine `m` busy, plus slack (Little's law: latency over service interval,
    /// the latency no shorter than the current silence); for a machine not yet answered, the
    /// first wave, doubled for each [`BLIND_DOUBLING_MS`] of silence up to its share.
    pub(super) fn cap(&self, m: usize, f: usize) -> u32 {
        match self.machines[m].standing {
            Standing::Fresh => {
                let doublings = (self.quiet_ms / BLIND_DOUBLING_MS).min(32.0);
                let grown = f64::from(self.wave) * doublings.exp2();
                (grown.min(f64::from(self.share)) as u32).max(self.wave)
            }
            Standing::Doubtful => 1,
            Standing::Known => match self.machine_times(m) {
                Some((trip, interval, service)) => {
                    let (d_fixed, _) = self.unit_times(f);
                    let latency = (trip + service + d_fixed).max(self.quiet_ms);
                    let busy = latency / interval.max(1e-3);
                    (busy * MACHINE_SLACK + MACHINE_EXTRA)
                        .clamp(1.0, 1e6)
                        .ceil() as u32
                }
                None => self.wave,
            },
        }
    }

    /// Unit `f`'s in-flight window. A unit that has shown no ceiling (yet, or any more) while
    /// others have is held to the widest of their windows: taken for an empty one, it would draw
    /// every job until its own queue showed, hundreds of milliseconds later — enough to pile a
    /// batch's end onto one unit's stage while the machines starve. While nothing comes back
    /// the window is what keeps the unit's stage busy for the silence so far (Little's law with
    /// the latency measured as it grows). `None`: no limit.
    pub(super) fn window(&self, f: usize) -> Option<f64> {
        let w =
            self.windows[f].or_else(|| self.windows.iter().flatten().copied().reduce(f64::max))?;
        let silent = self.quiet_ms;
        let pass = self.est.units[f].pass_ms.filter(|p| *p > 0.0);
        Some(pass.map_or(w, |p| w.max(silent / p + UNIT_QUEUE)))
    }

    /// The usable unit with the most room in its window.
    pub(super) fn unit(&self, view: &View) -> Option<usize> {
        (0..view.forwarders.len())
            .filter(|&f| view.forwarders[f].usable)
            .filter(|&f| {
                self.window(f)
                    .is_none_or(|w| f64::from(view.forwarders[f].in_flight) < w)
            })
            .min_by(|&a, &b| {
                let load = |f: usize| {
                    let in_flight = f64::from(view.forwarders[f].in_flight);
                    in_flight / self.window(f).unwrap_or(1.0).max(1.0)
                };
                load(a).total_cmp(&load(b))
            })
    }

    /// Adjusts unit `f`'s window after an answer through it.
    pub(super) fn tune_window(&mut self, f: usize, view: &View, latency: f64) {
        let u = &self.est.units[f];
        let queue = u.queue_ms;
        let base = (latency - queue).max(0.0);
        let t = &mut self.through[f];
        t.base_ms = Some(t.base_ms.map_or(base, |b| 0.9 * b + 0.1 * base));
        let Some(pass) = u.pass_ms.filter(|p| *p > 0.0) else {
            self.windows[f] = None;
            return;
        };
        let in_flight = f64::from(view.forwarders[f].in_flight);
        let target = t.base_ms.unwrap_or(base) / pass + UNIT_QUEUE;
        let queued = queue > 2.0 * pass;
        let w = self.windows[f].unwrap_or(target);
        self.windows[f] = Some(if queued {
            target.max(1.0)
        } else if in_flight + 1.0 >= w {
            // The window is the limit and the unit shows no queue: it can take more.
            w + 1.0
        } else {
            w.max(target)
        });
    }

    /// Could another job be sent right now?
    pub(super) fn room(&self, view: &View, f: usize, just_sent: usize) -> bool {
        let unit_room = self
            .window(f)
            .is_none_or(|w| f64::from(view.forwarders[f].in_flight) + 1.0 < w);
        let machine_room = (0..self.machines.len()).any(|m| {
            let extra = u32::from(m == just_sent);
            !view.machines[m].ejected && view.machines[m].in_flight + extra < self.cap(m, f)
        });
        unit_room && machine_room
    }
}
