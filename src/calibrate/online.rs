//! Estimates learned from answers as they arrive: the controller's picture of the system, and
//! the limits analysis' too (one estimator, so both tell a forwarding unit's ceiling from the
//! machines' the same way).
//!
//! Each answer through forwarding unit `f` from machine `m` gives three numbers: the client's
//! latency `c` (send to answer), the `response_time` `rt` the unit measured around its call to
//! the worker, and the worker's `work_time`. From them:
//! - `d = c − rt` is the time spent outside the worker call: the unit's queue and passes, its
//!   overhead, the client's own network and scheduling. Its minimum is the unit's fixed cost;
//!   anything above it is queueing at the unit (or in the client). A unit with a one-at-a-time
//!   stage shows it as `d` growing with what is queued; a unit without one never does.
//! - `rt` itself is the network trip to the machine, its queue and its service: its minimum is
//!   the machine's no-load trip, anything above it is queueing at the machine.
//! - While a unit (or machine) is queued, its departures are one pass (service interval) apart,
//!   so the rate of answers over a queued stretch is its ceiling. Whether the unit's stage sits
//!   before or after the worker call is not known; the departures are read both ways (`end − rt`
//!   for a stage before, `end` for one after) and the more regular series is taken.
//!
//! Nothing here assumes a figure about the system: until an estimate has data behind it, it is
//! `None` (or the seed a caller gave from an earlier run, replaced by what this run measures).

use super::{Calibration, CalibrationCost, ForwarderEstimate, MachineEstimate};
use crate::endpoint::Layout;
use std::collections::VecDeque;

/// Answers kept per unit to estimate its pass rate from a queued stretch.
const UNIT_WINDOW: usize = 64;
/// A stage serving one job at a time at a steady pace leaves its queued departures evenly
/// spaced; gaps that deviate more than this (median absolute deviation over the median gap)
/// are not a ceiling.
const MAX_IRREGULARITY: f64 = 0.35;
/// Queued answers needed before a unit's pass interval is trusted.
const MIN_UNIT_SAMPLES: usize = 16;
/// Intervals of a machine's busy stretches after which its measured interval outweighs the
/// `work_time` it reports.
const MACHINE_TRUST: f64 = 32.0;

/// One answer, as the estimator needs it (model ms).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    pub forwarder: usize,
    pub machine: usize,
    pub sent_ms: f64,
    pub end_ms: f64,
    pub response_time: f64,
    pub work_time: f64,
}

/// What is known of one forwarding unit.
#[derive(Clone, Debug, Default)]
pub struct LiveUnit {
    pub answers: u64,
    /// Smallest time outside the worker call (`c − rt`): its fixed cost, one pass included.
    pub d_min: Option<f64>,
    /// Recent queueing at the unit, model ms (EWMA of `d − d_min`).
    pub queue_ms: f64,
    /// Interval between two passes of its one-at-a-time stage, when a queued stretch showed it.
    pub pass_ms: Option<f64>,
    /// How many queued answers the pass estimate rests on.
    pub pass_samples: usize,
    /// The stage looked like it sits after the worker call (answers leave one at a time).
    pub stage_after: Option<bool>,
    /// Seeded from an earlier run and not yet confirmed by this one.
    pub seeded: bool,
    recent: VecDeque<(f64, f64, bool)>,
}

/// What is known of one machine.
#[derive(Clone, Debug, Default)]
pub struct LiveMachine {
    pub answers: u64,
    pub failures: u64,
    /// Smallest `response_time`: the no-load trip plus one service.
    pub rt_min: Option<f64>,
    /// Mean reported `work_time`.
    pub work_mean: Option<f64>,
    /// Interval between two completions while it is busy, measured from busy stretches.
    interval_sum: f64,
    interval_count: f64,
    in_stretch: bool,
    last_end: f64,
    /// Seeded values from an earlier run, used until this run has its own.
    seed_rt_min: Option<f64>,
    seed_interval: Option<f64>,
    pub concurrency: u32,
    /// When its last answer arrived, model ms.
    pub last_answer_ms: Option<f64>,
}

impl LiveMachine {
    /// Has it answered in this run (or was it seeded)?
    pub fn known(&self) -> bool {
        self.rt_min.is_some() || self.seed_rt_min.is_some()
    }

    /// No-load `response_time` (trip + service).
    pub fn rt0(&self) -> Option<f64> {
        self.rt_min.or(self.seed_rt_min)
    }

    /// No-load `response_time` an earlier run measured, if this run started from one.
    pub fn seeded_rt0(&self) -> Option<f64> {
        self.seed_rt_min
    }

    /// Time between two completions while busy.
    pub fn interval(&self) -> Option<f64> {
        let per_server = self
            .work_mean
            .map(|w| w / f64::from(self.concurrency.max(1)));
        let measured =
            (self.interval_count >= 4.0).then(|| self.interval_sum / self.interval_count);
        let blended = match (measured, per_server) {
            (Some(i), Some(w)) => {
                // Few busy intervals are noisy (return jitter): lean on the reported work time
                // until there are enough.
                let trust = self.interval_count / (self.interval_count + MACHINE_TRUST);
                Some(trust * i + (1.0 - trust) * w.max(i.min(w * 2.0)))
            }
            (Some(i), None) => Some(i),
            (None, Some(w)) => Some(self.seed_interval.unwrap_or(w)),
            (None, None) => self.seed_interval,
        };
        blended.map(|i| i.max(0.01))
    }

    /// Measured busy-stretch intervals (not blended), for reporting.
    pub fn measured_interval(&self) -> Option<(f64, f64)> {
        (self.interval_count >= 1.0)
            .then(|| (self.interval_sum / self.interval_count, self.interval_count))
    }
}

/// The estimator: one per batch (or per limits run).
#[derive(Clone, Debug)]
pub struct Estimator {
    pub units: Vec<LiveUnit>,
    pub machines: Vec<LiveMachine>,
}

impl Estimator {
    pub fn new(forwarders: usize, machines: usize) -> Estimator {
        Estimator {
            units: vec![LiveUnit::default(); forwarders],
            machines: (0..machines)
                .map(|_| LiveMachine {
                    concurrency: 1,
                    ..LiveMachine::default()
                })
                .collect(),
        }
    }

    /// Starts from what an earlier run learned; this run's answers replace it.
    pub fn seed(&mut self, cal: &Calibration) {
        for (u, f) in self.units.iter_mut().zip(&cal.forwarders) {
            if !f.up {
                continue;
            }
            u.d_min = Some(f.overhead_ms + f.service_ms);
            u.pass_ms = (f.service_ms > 0.0).then_some(f.service_ms);
            u.seeded = true;
        }
        for (m, e) in self.machines.iter_mut().zip(&cal.machines) {
            if !e.up {
                continue;
            }
            let c = e.concurrency.max(1);
            // An upper bound is not a trip: the machine is learned anew, as if never seen.
            m.seed_rt_min = e.trip_measured.then_some(e.latency_ms + e.service_ms);
            m.seed_interval = Some(e.service_ms / f64::from(c));
            m.concurrency = c;
        }
    }

    /// Learns from one answer.
    pub fn observe(&mut self, s: &Sample) {
        let c = (s.end_ms - s.sent_ms).max(0.0);
        let rt = s.response_time.max(0.0);
        // An rt larger than the client's own latency cannot be a timing of this request (a
        // unit on another clock, or a lie): keep it out of the trip, count the rest.
        let rt_ok = rt <= c + 1.0;
        if let Some(u) = self.units.get_mut(s.forwarder) {
            u.answers += 1;
            if rt_ok {
                let d = c - rt;
                if u.seeded {
                    u.d_min = None;
                    u.seeded = false;
                }
                u.d_min = Some(u.d_min.map_or(d, |m: f64| m.min(d)));
                let q = (d - u.d_min.unwrap_or(d)).max(0.0);
                u.queue_ms = 0.8 * u.queue_ms + 0.2 * q;
                let queued = q > queue_threshold(u.pass_ms);
                u.recent.push_back((s.end_ms - rt, s.end_ms, queued));
                if u.recent.len() > UNIT_WINDOW {
                    u.recent.pop_front();
                }
                update_pass(u);
                disprove_pass(u);
            }
        }
        if let Some(m) = self.machines.get_mut(s.machine) {
            m.answers += 1;
            m.last_answer_ms = Some(s.end_ms);
            let w = s.work_time.max(0.0);
            m.work_mean = Some(match m.work_mean {
                Some(mean) => mean + (w - mean) / m.answers as f64,
                None => w,
            });
            if rt_ok {
                m.rt_min = Some(m.rt_min.map_or(rt, |x: f64| x.min(rt)));
            }
            // A busy stretch: consecutive answers that each waited behind a few others. Their
            // gaps are the machine's completion interval (plus return jitter, which averages out).
            let work = m.work_mean.unwrap_or(w).max(0.01);
            let wait = rt - m.rt_min.unwrap_or(rt);
            let busy = rt_ok && wait > 3.0 * work;
            if busy && m.in_stretch && s.end_ms >= m.last_end {
                m.interval_sum += s.end_ms - m.last_end;
                m.interval_count += 1.0;
            }
            m.in_stretch = busy;
            m.last_end = m.last_end.max(s.end_ms);
            if m.interval_count >= MACHINE_TRUST {
                if let Some(work) = m.work_mean {
                    let i = m.interval_sum / m.interval_count;
                    m.concurrency = ((work / i).round() as u32).clamp(1, 1024);
                }
            }
        }
    }

    /// Records a failed attempt on machine `m`.
    pub fn observe_failure(&mut self, m: usize) {
        if let Some(e) = self.machines.get_mut(m) {
            e.failures += 1;
        }
    }

    /// What is known, as a calibration (for the cache, the bound and the report). Machines that
    /// never answered are marked down; units without a measured ceiling have `service_ms` 0.
    pub fn snapshot(&self, layout: &Layout, forwarder_urls: &[String]) -> Calibration {
        Calibration {
            version: super::VERSION,
            created_unix_s: super::unix_now(),
            source: "learned".into(),
            forwarders: forwarder_urls
                .iter()
                .enumerate()
                .map(|(i, url)| {
                    let u = self.units.get(i);
                    let pass = u.and_then(|u| u.pass_ms).unwrap_or(0.0);
                    let d_min = u.and_then(|u| u.d_min);
                    ForwarderEstimate {
                        url: url.clone(),
                        up: d_min.is_some(),
                        service_ms: pass,
                        overhead_ms: (d_min.unwrap_or(0.0) - pass).max(0.0),
                        connection_limit: super::UNKNOWN_CONNECTION_LIMIT,
                    }
                })
                .collect(),
            machines: layout
                .machines
                .iter()
                .enumerate()
                .map(|(i, id)| {
                    let m = &self.machines[i];
                    let interval = m.interval().unwrap_or(0.0);
                    let c = m.concurrency.max(1);
                    let service = interval * f64::from(c);
                    MachineEstimate {
                        id: id.clone(),
                        up: m.known(),
                        latency_ms: (m.rt0().unwrap_or(0.0) - service).max(0.0),
                        service_ms: service,
                        concurrency: c,
                        wake_ms: None,
                        trip_measured: true,
                    }
                })
                .collect(),
            cost: CalibrationCost::default(),
        }
    }
}

/// Queueing at a unit must exceed this to count (model ms): two passes where a pass is known,
/// else a millisecond (a unit with no stage adds well under that).
fn queue_threshold(pass: Option<f64>) -> f64 {
    pass.map_or(1.0, |p| (2.0 * p).max(1.0))
}

/// Re-estimates a unit's pass interval from its queued answers: within the recent window, the
/// departures of the queued ones are a pass apart. Both readings of the departure (before and
/// after the worker call) are tried; the one whose spacing is more regular wins.
fn update_pass(u: &mut LiveUnit) {
    let queued: Vec<(f64, f64)> = u
        .recent
        .iter()
        .filter(|r| r.2)
        .map(|r| (r.0, r.1))
        .collect();
    if queued.len() < MIN_UNIT_SAMPLES {
        return;
    }
    let before: Vec<f64> = queued.iter().map(|q| q.0).collect();
    let after: Vec<f64> = queued.iter().map(|q| q.1).collect();
    let (Some(b), Some(a)) = (spacing(before), spacing(after)) else {
        return;
    };
    let (best, is_after) = if a.1 < b.1 { (a, true) } else { (b, false) };
    if best.1 > MAX_IRREGULARITY {
        // Neither reading is a one-at-a-time stage passing at a steady pace: what looked like
        // queueing was noise (the client's own scheduling, say), not a ceiling.
        if !u.seeded {
            u.pass_ms = None;
            u.pass_samples = 0;
            u.stage_after = None;
        }
        return;
    }
    if best.0 > 0.0 && best.0.is_finite() {
        u.pass_ms = Some(best.0);
        u.pass_samples = queued.len();
        u.stage_after = Some(is_after);
        u.seeded = false;
    }
}

/// Drops a pass interval that the unit has been seen to beat: over the recent window it
/// answered clearly faster than one per pass (a ceiling from an earlier run, or from a noisy
/// stretch, that is not there).
fn disprove_pass(u: &mut LiveUnit) {
    let Some(pass) = u.pass_ms else {
        return;
    };
    if u.recent.len() < MIN_UNIT_SAMPLES {
        return;
    }
    // The mean rate over the window (answers over their span): whatever the order answers
    // arrive in, more of them than one per pass means the unit passed more than one per pass.
    let (first, last) = u
        .recent
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), r| {
            (a.min(r.1), b.max(r.1))
        });
    let spacing = (last - first) / (u.recent.len() - 1) as f64;
    if spacing.is_finite() && spacing * 1.25 < pass {
        u.pass_ms = None;
        u.pass_samples = 0;
        u.seeded = false;
    }
}

/// The typical spacing of sorted departures — the median gap, so that a moment when the queue
/// ran dry (one long gap) does not count as a slow pass — and how irregular the gaps are (their
/// median absolute deviation relative to it).
fn spacing(mut xs: Vec<f64>) -> Option<(f64, f64)> {
    if xs.len() < 3 {
        return None;
    }
    xs.sort_by(f64::total_cmp);
    let mut gaps: Vec<f64> = xs.windows(2).map(|w| w[1] - w[0]).collect();
    gaps.sort_by(f64::total_cmp);
    let median = gaps[gaps.len() / 2];
    if median <= 0.0 {
        return None;
    }
    let mut dev: Vec<f64> = gaps.iter().map(|g| (g - median).abs()).collect();
    dev.sort_by(f64::total_cmp);
    Some((median, dev[dev.len() / 2] / median))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(f: usize, m: usize, sent: f64, end: f64, rt: f64) -> Sample {
        Sample {
            forwarder: f,
            machine: m,
            sent_ms: sent,
            end_ms: end,
            response_time: rt,
            work_time: 20.0,
        }
    }

    /// A unit passing one job every 17 ms before the worker call, 40 jobs sent at once to
    /// machines with different trips: the pass interval is found, and the stage before.
    #[test]
    fn a_unit_ceiling_before_the_call_is_measured() {
        let mut e = Estimator::new(1, 3);
        let trips = [300.0, 400.0, 550.0];
        for j in 0..40 {
            let m = j % 3;
            let leave = 17.0 * (j + 1) as f64;
            let rt = trips[m] + ((j * 7) % 11) as f64;
            let end = leave + rt + 13.0;
            e.observe(&sample(0, m, 0.0, end, rt));
        }
        let u = &e.units[0];
        let pass = u.pass_ms.expect("a pass interval");
        assert!((pass - 17.0).abs() < 1.0, "{pass}");
        assert_eq!(u.stage_after, Some(false));
        assert!((u.d_min.unwrap() - 30.0).abs() < 1e-9);
    }

    /// The same unit with its stage after the call: answers leave one at a time.
    #[test]
    fn a_unit_ceiling_after_the_call_is_measured() {
        let mut e = Estimator::new(1, 3);
        let trips = [300.0, 400.0, 550.0];
        let mut exit_free: f64 = 0.0;
        let mut arrivals: Vec<(f64, f64, usize)> = (0..60)
            .map(|j| {
                let m = j % 3;
                let rt = trips[m] + ((j * 7) % 11) as f64 + 20.0 * (j / 3) as f64;
                (rt, rt, m)
            })
            .collect();
        arrivals.sort_by(|a, b| a.0.total_cmp(&b.0));
        for (arrive, rt, m) in arrivals {
            exit_free = exit_free.max(arrive) + 17.0;
            e.observe(&sample(0, m, 0.0, exit_free + 13.0, rt));
        }
        let u = &e.units[0];
        let pass = u.pass_ms.expect("a pass interval");
        assert!((pass - 17.0).abs() < 1.5, "{pass}");
        assert_eq!(u.stage_after, Some(true));
    }

    /// A unit without a stage (answers in any order, `c − rt` constant): no ceiling.
    #[test]
    fn no_ceiling_is_claimed_for_a_unit_that_never_queues() {
        let mut e = Estimator::new(1, 5);
        for j in 0..500 {
            let m = j % 5;
            let rt = 300.0 + 50.0 * m as f64 + 22.0 * (j / 5) as f64;
            e.observe(&sample(0, m, 0.0, rt + 0.8, rt));
        }
        assert_eq!(e.units[0].pass_ms, None);
        let cal = e.snapshot(&Layout::documented(), &["http://x".into()]);
        assert_eq!(cal.forwarders[0].service_ms, 0.0);
    }

    /// A busy machine's completions are its service interval apart.
    #[test]
    fn a_busy_machine_interval_is_measured_beyond_its_work_time() {
        let mut e = Estimator::new(1, 1);
        for j in 0..200 {
            // Sent at once, served one at a time every 22.5 ms (work 20 + handling 2.5).
            let done = 150.0 + 22.5 * (j + 1) as f64;
            let rt = done + 150.0;
            e.observe(&Sample {
                forwarder: 0,
                machine: 0,
                sent_ms: 0.0,
                end_ms: rt + 10.0,
                response_time: rt,
                work_time: 20.0,
            });
        }
        let i = e.machines[0].interval().unwrap();
        assert!((i - 22.5).abs() < 1.0, "{i}");
    }

    /// A seed is used until this run's own answers replace it.
    #[test]
    fn seeded_values_give_way_to_measurements() {
        let mut cal = Calibration::empty(&Layout::documented(), &["http://x".into()]);
        cal.forwarders[0].up = true;
        cal.forwarders[0].service_ms = 17.0;
        cal.forwarders[0].overhead_ms = 13.0;
        for m in &mut cal.machines {
            m.up = true;
            m.latency_ms = 300.0;
            m.service_ms = 22.0;
        }
        let mut e = Estimator::new(1, 5);
        e.seed(&cal);
        assert_eq!(e.units[0].pass_ms, Some(17.0));
        assert_eq!(e.machines[2].rt0(), Some(322.0));
        e.observe(&sample(0, 2, 0.0, 361.0, 360.0));
        assert_eq!(e.machines[2].rt0(), Some(360.0));
        assert_eq!(e.units[0].d_min, Some(1.0));
    }

    #[test]
    fn an_impossible_response_time_does_not_poison_the_trip() {
        let mut e = Estimator::new(1, 1);
        e.observe(&sample(0, 0, 0.0, 400.0, 1e17));
        assert_eq!(e.machines[0].rt_min, None);
        assert_eq!(e.units[0].d_min, None);
        assert_eq!(e.machines[0].answers, 1);
    }
}
