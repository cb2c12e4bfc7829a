//! An in-flight limit for the policies that do not pace themselves (round robin, random,
//! weighted, fastest, p2c-ewma): Little's law on what is measured, as TCP BBR does — the fastest
//! delivery rate seen times the shortest latency seen is what keeps the system busy; twice that
//! (plus a few) absorbs jitter. The window starts at a first wave per machine (what the
//! closed-loop controller sends before its first answer) and, after each measuring round,
//! follows what was measured: because a window-limited rate is window / latency, it doubles
//! about once per round trip while the rate grows, and falls back when the system needs less.
//! So against a system that answers in 50 µs it settles at a few dozen attempts in flight, and
//! against one that takes 400 ms and passes 59 jobs/s at about fifty — never at hundreds of idle
//! threads. (Starting at sixteen in all cost a batch of 100 over five distant machines two extra
//! round trips: twice the bound.)
//!
//! When the run has a model (a saved or named calibration), the first wave is what that model
//! says keeps the system busy, if that is more: sixteen per machine leaves a machine 540 ms away
//! that serves a job in 22 ms idle for most of its first round trip (~25 keep it busy), which
//! cost a batch of 1000 over five machines with no unit ceiling ~3 % of its bound. It is only
//! the first wave: the first measuring round replaces it with what was measured.
//!
//! The window keeps jobs in cmdunit so that they go out as the system can take them. Once the
//! rest of the batch fits in one window there is nothing left to pace, and it goes out at once:
//! held back, the last jobs of a batch of 100 over five machines waited a round trip (~350 ms)
//! for what, queued at the machines, costs a few services. The closed-loop controller ends its
//! batches the same way.

use super::Observation;
use crate::calibrate::Calibration;

/// Attempts in flight per machine before anything is measured, and the window's floor.
pub const INITIAL: u32 = 16;
/// The shortest measuring round, model ms (a round is one shortest latency, at least this).
const MIN_ROUND_MS: f64 = 5.0;

#[derive(Clone, Debug)]
pub struct Window {
    min_latency: Option<f64>,
    max_rate: f64,
    round_start: Option<f64>,
    round_answers: u32,
    limit: u32,
}

impl Default for Window {
    fn default() -> Self {
        Window::new(1, None)
    }
}

impl Window {
    /// A window over `machines` machines: a first wave of [`INITIAL`] each, or what `model`
    /// says keeps the system busy if that is more.
    pub fn new(machines: usize, model: Option<&Calibration>) -> Window {
        let machines = u32::try_from(machines.max(1)).unwrap_or(u32::MAX);
        let modelled = model.and_then(busy).map_or(0, want);
        Window {
            min_latency: None,
            max_rate: 0.0,
            round_start: None,
            round_answers: 0,
            limit: INITIAL.saturating_mul(machines).max(modelled),
        }
    }

    /// May another attempt be sent with `in_flight` already out and `unissued` jobs not sent
    /// yet? Yes below the limit, and at the batch's end: when what is left fits in one window.
    pub fn allows(&self, in_flight: u32, unissued: u64) -> bool {
        in_flight < self.limit || unissued <= u64::from(self.limit)
    }

    /// After a send with `in_flight` out before it and `unissued` left before it: is another send
    /// probably due at once (the `more` of a [`Decision::Send`](super::Decision::Send))?
    pub fn allows_another(&self, in_flight: u32, unissued: u64) -> bool {
        unissued > 1 && self.allows(in_flight + 1, unissued - 1)
    }

    pub fn limit(&self) -> u32 {
        self.limit
    }

    pub fn observe(&mut self, obs: &Observation) {
        if obs.result.is_ok() {
            let l = obs.latency_ms().max(0.0);
            self.min_latency = Some(self.min_latency.map_or(l, |m| m.min(l)));
        }
        let start = *self.round_start.get_or_insert(obs.end_ms);
        self.round_answers += 1;
        let round = self.min_latency.unwrap_or(0.0).max(MIN_ROUND_MS);
        let elapsed = obs.end_ms - start;
        if elapsed >= round {
            let rate = f64::from(self.round_answers) / elapsed;
            self.max_rate = self.max_rate.max(rate);
            self.round_start = Some(obs.end_ms);
            self.round_answers = 0;
            if let Some(l) = self.min_latency {
                self.limit = want(self.max_rate * l).max(INITIAL);
            }
        }
    }
}

/// The window for `bdp` attempts in flight keeping the system busy: twice that, plus a few.
fn want(bdp: f64) -> u32 {
    (2.0 * bdp + 4.0).ceil().clamp(0.0, f64::from(u32::MAX / 2)) as u32
}

/// What keeps the system of `model` busy: its rate (the machines' or the units', whichever is
/// lower) times its shortest trip; `None` when the model has nothing up, or a machine up with
/// no service time measured (its rate is not known, and taken as unlimited it would open the
/// window to the whole batch).
fn busy(model: &Calibration) -> Option<f64> {
    let up = || model.machines.iter().filter(|m| m.up);
    if up().any(|m| m.service_ms.is_nan() || m.service_ms <= 0.0) {
        return None;
    }
    let machines: f64 = up()
        .map(|m| f64::from(m.concurrency.max(1)) / m.service_ms)
        .sum();
    let units: f64 = model
        .forwarders
        .iter()
        .filter(|f| f.up)
        .map(|f| {
            if f.service_ms > 0.0 {
                1.0 / f.service_ms
            } else {
                f64::INFINITY
            }
        })
        .sum();
    let trip = up()
        .map(|m| model.no_load_latency_ms(m))
        .fold(f64::INFINITY, f64::min);
    let bdp = machines.min(units) * trip;
    bdp.is_finite().then_some(bdp)
}

/// A rule that names each job's target from its index alone (round robin, random, weighted,
/// fastest): decided before execution, with no feedback but health.
pub(crate) trait Rule: Send {
    /// The target of `job` (a retry has `attempt > 0` and may `avoid` a machine), or `None`
    /// when nothing can take it now.
    fn target(
        &mut self,
        view: &super::View,
        job: &super::JobCtx,
    ) -> Option<crate::endpoint::Target>;
    fn reason(&self) -> String;
}

/// A [`Rule`] paced by a [`Window`]: the binder of every policy that plans nothing but a rule.
pub(crate) struct Paced<R: Rule> {
    pub rule: R,
    pub window: Window,
}

impl<R: Rule> Paced<R> {
    pub fn new(rule: R, input: &super::StartInput) -> Paced<R> {
        Paced {
            rule,
            window: Window::new(input.layout.machines.len(), input.model),
        }
    }
}

impl<R: Rule> super::Binder for Paced<R> {
    fn next(&mut self, view: &super::View, job: Option<&super::JobCtx>) -> super::Decision {
        use super::Decision;
        let Some(job) = job else {
            return Decision::Wait { until_ms: None };
        };
        let in_flight = view.in_flight();
        if !self.window.allows(in_flight, view.unissued) {
            return Decision::Wait { until_ms: None };
        }
        let (Some(target), Some(forwarder)) =
            (self.rule.target(view, job), view.least_loaded_forwarder())
        else {
            return Decision::Wait {
                until_ms: Some(view.now_ms + 10.0),
            };
        };
        Decision::Send {
            route: super::Route { forwarder, target },
            more: self.window.allows_another(in_flight, view.unissued),
        }
    }

    fn observe(&mut self, _view: &super::View, obs: &super::Observation) {
        self.window.observe(obs);
    }

    fn reason(&self) -> String {
        format!(
            "{}; in flight by measured rate x latency (window {})",
            self.rule.reason(),
            self.window.limit()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::Target;
    use crate::policy::{Answered, Route};

    fn answer(sent: f64, end: f64) -> Observation {
        Observation {
            job: 0,
            route: Route {
                forwarder: 0,
                target: Target::Any,
            },
            machine: Some(0),
            sent_ms: sent,
            end_ms: end,
            result: Ok(Answered {
                response_time: 1,
                work_time: 1,
            }),
            superseded: false,
        }
    }

    /// A server passing one job per ms with 100 ms of latency keeps ~100 in flight busy: the
    /// window grows from 16 to about twice that, and no further.
    #[test]
    fn the_window_grows_to_twice_what_keeps_the_system_busy() {
        let mut w = Window::default();
        let (rate, latency): (f64, f64) = (1.0, 100.0);
        let mut t = latency;
        for _ in 0..20_000 {
            // Window-limited: answers come at min(rate, limit / latency).
            let r = rate.min(f64::from(w.limit()) / latency);
            t += 1.0 / r;
            w.observe(&answer(t - latency, t));
        }
        let l = w.limit();
        assert!((180..=230).contains(&l), "{l}");
    }

    /// Five machines 400 ms away: the first wave is sixteen each, not sixteen in all.
    #[test]
    fn the_first_wave_is_sixteen_per_machine() {
        assert_eq!(Window::new(5, None).limit(), 5 * INITIAL);
        assert_eq!(Window::new(0, None).limit(), INITIAL);
    }

    /// A window of 80: with 80 out, the next job waits while more than a window's worth is left,
    /// and goes once the rest fits in one window (a batch of 100 goes out at once). Held back,
    /// the last 20 of 100 waited a round trip: no-ceiling N = 100 took 1045 ms for a bound of
    /// 873 under `weighted` and `p2c-ewma`.
    #[test]
    fn the_rest_of_a_batch_that_fits_in_one_window_goes_at_once() {
        let w = Window::new(5, None);
        assert!(!w.allows(80, 81));
        assert!(w.allows(80, 80));
        assert!(w.allows(99, 1));
        assert!(w.allows(79, 1000));
    }

    /// With a model, the first wave is what keeps the system busy when that is more than sixteen
    /// per machine: five machines 310–520 ms away serving one job per 21.5 ms keep ~80 busy, so
    /// the window opens at twice that; behind a unit passing one job per 17 ms, ~21 do, and the
    /// sixteen per machine stand. The first measuring round then replaces it.
    #[test]
    fn a_model_opens_the_first_wave_at_what_keeps_the_system_busy() {
        let free = crate::calibrate::test_model(1, 0.0);
        let w = Window::new(5, Some(&free));
        assert!((150..=180).contains(&w.limit()), "{}", w.limit());
        let paced = crate::calibrate::test_model(1, 17.0);
        assert_eq!(Window::new(5, Some(&paced)).limit(), 5 * INITIAL);
        let mut unmeasured = crate::calibrate::test_model(1, 0.0);
        unmeasured.machines[3].service_ms = 0.0;
        assert_eq!(Window::new(5, Some(&unmeasured)).limit(), 5 * INITIAL);
        let mut w = w;
        let mut t = 400.0;
        // One answer per 10 ms at 400 ms of latency: ~40 keep it busy, measured over a round.
        for _ in 0..60 {
            t += 10.0;
            w.observe(&answer(t - 400.0, t));
        }
        assert!(w.limit() < 150, "measured, not modelled: {}", w.limit());
    }

    #[test]
    fn a_fast_system_gets_a_small_window() {
        let mut w = Window::new(5, None);
        let mut t = 0.0;
        for _ in 0..100_000 {
            t += 0.02;
            w.observe(&answer(t - 0.1, t));
        }
        assert!(w.limit() <= 32, "{}", w.limit());
    }
}
