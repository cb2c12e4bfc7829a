//! `auto`: the closed-loop controller, cmdunit's default.
//!
//! What a user waits for is the whole command, on a system cmdunit may never have seen, so this
//! policy runs no pass before the batch and assumes no figure about the system. The batch's
//! first jobs are its probes; every answer updates the estimates ([`Estimator`]); every decision
//! uses the estimates of that moment:
//!
//! - **Where.** Each job goes, when it is sent, to the machine where it would be answered
//!   soonest: for each machine, the jobs it already has in flight are replayed through its queue
//!   (arriving half a trip after their send, served one interval apart, the first not before
//!   what the machine's last answer showed), and the new job's answer comes after them. This is
//!   earliest-completion list scheduling: all at once it is the machines' water filling, and at
//!   the end the last jobs go to whichever machines answer them soonest. Because the replay
//!   starts from the latest answer, an estimate that is wrong costs only until the next answer.
//! - **How many in flight.** A machine gets what keeps it busy (Little's law: its no-load
//!   latency over its service interval) plus a little; a forwarding unit that has shown a
//!   ceiling gets its pass rate times the latency of what goes through it plus a small standing
//!   queue. The rest waits in cmdunit, where it can still go anywhere. A window that is the limit
//!   while the unit shows no queue grows by one per answer (doubling per round trip), so a
//!   ceiling that is not there — a stale cache, a slower day — is gone within a few round trips.
//! - **What is not known yet.** A machine that has not answered gets a first wave of jobs
//!   (enough to keep a typical machine busy until its first answer, never more than its share);
//!   jobs are spread evenly over such machines. One that has not answered long after the others
//!   did (asleep, or gone) is out for now: no more jobs, and its jobs in flight are copied to
//!   machines that answer (hedges, first answer wins, within a budget); it is back as soon as it
//!   answers. A machine whose attempt failed gets one job at a time until one succeeds.
//! - **The end, through a unit with a ceiling.** A unit passes its jobs in the order they were
//!   sent, so a far machine's job placed in its stage's last places ends the batch late. Once
//!   the rest of the batch goes out at once, a dry run finds the soonest end that best fit can
//!   reach, and each job goes to the machine that answers it latest by then without queueing:
//!   the far machines take the first places, at their own pace, and the near ones the last —
//!   the longest-tail-first order that is optimal for one stage followed by delivery times
//!   (Jackson's rule). Used only where it gains more than one service on earliest completion.
//!   Such a plan rests on the order the stage sees, and a burst sent at once reaches it in
//!   whatever order its connections and threads get there (ten jobs sent within 5 ms passed up
//!   to five places out of order, and a far machine's job that slipped to a late place ended the
//!   batch late). So under it the jobs go out half a pass apart: in order, and still twice as
//!   fast as the stage passes them, so the stage never waits and a ceiling that is not there
//!   shows in the answers' spacing as before (pacing at the stage's own pace would hide it).
//! - **The tail.** Once everything is sent, the job expected back last is copied to a machine
//!   that would answer it clearly sooner — a machine that drained early, or one avoided on an
//!   estimate never checked against an answer that waited for nothing (a sleeping machine's
//!   queue drains after its boot, and the trip read from it is seconds too long); such an idle
//!   machine is judged by the typical trip for that one job. First answer wins; the copies are
//!   hedges, within the same budget.
//! - **Silence.** While nothing at all comes back (machines asleep), the silence is itself a
//!   measurement: what is in flight has taken at least that long, so by Little's law more is
//!   needed to keep a unit's stage busy. The first wave grows with the silence and a known unit's
//!   window with it; every job a unit passes while the machines boot is one it need not pass
//!   after.
//!
//! What the batch learned is handed back ([`Binder::learned`]) and saved in the user's cache, so
//! the next run against the same system starts from it — and corrects it.

use super::{Binder, Decision, JobCtx, Observation, Policy, PolicyError, Route, StartInput, View};
use crate::calibrate::online::{Estimator, Sample};
use crate::calibrate::Calibration;
use crate::endpoint::{Layout, Target};
use crate::numbers::median_of;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::collections::{HashSet, VecDeque};
use std::time::Duration;

pub struct Controller;

/// Jobs per machine in the first wave, at most (before a machine's first answer).
pub const WAVE_MAX: u64 = 16;
/// The first wave holds back this share of the batch for the machines that answer first.
const WAVE_SHARE: f64 = 0.8;
/// Jobs a unit with a ceiling may hold queued in its stage.
const UNIT_QUEUE: f64 = 8.0;
/// In flight per machine beyond what keeps it busy, as a factor and a constant.
const MACHINE_SLACK: f64 = 1.2;
const MACHINE_EXTRA: f64 = 2.0;
/// A machine silent this many times the slowest first answer of the others is out for now.
const SILENT_FACTOR: f64 = 3.0;
/// …and never before this much wall time: on a busy client a thread can wait tens of
/// milliseconds for a core, which against a server answering in well under a millisecond would
/// make every machine look silent and copy jobs for nothing.
const SILENT_FLOOR_WALL: Duration = Duration::from_millis(50);
/// While nothing at all has come back, a fresh machine's first wave doubles with each of these of
/// silence (model ms). Before any answer there is no measurement to pace by; like TCP's initial
/// retransmission timeout of one second (RFC 6298), this is a generic network figure, not one of
/// the system's. It matters when machines are asleep: a forwarding unit with a ceiling can pass
/// jobs all through their boot, and every job it passes then is one it need not pass after.
const BLIND_DOUBLING_MS: f64 = 1000.0;
/// A job expected back last is copied to another machine at the batch's end only if the copy
/// would be back sooner by at least this share of its own latency (a copy costs a pass and a
/// service; small gains are within the estimates' noise).
const STEAL_GAIN: f64 = 0.25;
/// A job sent alone measured the trip if its answer was within this factor and margin (model
/// ms) of the quickest answer: return jitter, not a wait ([`ControlLoop::trip_measured`]).
const CLEAN_SLACK: f64 = 1.25;
const CLEAN_SLACK_MS: f64 = 5.0;
/// Hedges the batch may send: this share of N, plus a first wave's worth per machine.
const HEDGE_SHARE: f64 = 0.1;
/// The batch's end is planned by a dry run ([`ControlLoop::horizon`]) only while it costs at
/// most this many machine evaluations (jobs left × machines).
const HORIZON_WORK: u64 = 1 << 16;

impl Policy for Controller {
    fn name(&self) -> &'static str {
        "auto"
    }

    fn start(&self, input: &StartInput) -> Result<Box<dyn Binder>, PolicyError> {
        let m = input.layout.machines.len();
        if m == 0 {
            return Err(PolicyError::NoMachineUp);
        }
        let k = input.forwarder_urls.len();
        let mut est = Estimator::new(k, m);
        let seeded = match input.model {
            Some(model) => {
                est.seed(model);
                true
            }
            None => false,
        };
        let share = ((input.n as f64) * WAVE_SHARE / m as f64).ceil() as u64;
        // A unit whose ceiling an earlier run measured starts with the window it implies.
        let typical = {
            let rt0: Vec<f64> = est.machines.iter().filter_map(|e| e.rt0()).collect();
            median_of(&rt0)
        };
        let windows: Vec<Option<f64>> = est
            .units
            .iter()
            .map(|u| {
                let pass = u.pass_ms.filter(|p| *p > 0.0)?;
                let base = typical? + u.d_min.unwrap_or(0.0);
                Some(base / pass + UNIT_QUEUE)
            })
            .collect();
        let wave = share.clamp(1, WAVE_MAX) as u32;
        let share = share.max(1).min(u64::from(u32::MAX)) as u32;
        let machines = (0..m)
            .map(|i| MachineCtl {
                in_flight: VecDeque::new(),
                first_sent: None,
                standing: if est.machines[i].known() {
                    Standing::Known
                } else {
                    Standing::Fresh
                },
                last_done: None,
                last_answer_at: None,
                latency_ewma: None,
                clean: false,
                alone_rt: None,
            })
            .collect();
        Ok(Box::new(ControlLoop {
            layout: input.layout.clone(),
            urls: input.forwarder_urls.to_vec(),
            est,
            machines,
            windows,
            through: vec![Through::default(); k],
            unit_free: vec![0.0; k],
            last_sent: vec![f64::NEG_INFINITY; k],
            wave,
            share,
            hedges_left: ((input.n as f64) * HEDGE_SHARE) as u64 + WAVE_MAX * m as u64,
            quiet_ms: 0.0,
            hedged: HashSet::new(),
            silent_floor_ms: input.time_scale.to_model_ms(SILENT_FLOOR_WALL),
            seeded,
            rng: SmallRng::seed_from_u64(input.seed),
            sent: 0,
            hedges: 0,
            answered: 0,
            horizon: None,
        }))
    }
}

/// What the controller thinks of a machine right now.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Standing {
    /// Has not answered yet: gets the first wave.
    Fresh,
    /// Answers: gets what keeps it busy.
    Known,
    /// Silent long after the others answered, or its last attempt failed: one job at a time
    /// (none while that one is out).
    Doubtful,
}

struct MachineCtl {
    /// Its attempts in flight: (job, sent, when it was expected to reach the machine, how it
    /// was sent), in send order.
    in_flight: VecDeque<(u32, f64, f64, Sent)>,
    first_sent: Option<f64>,
    standing: Standing,
    /// When its latest answer left it, model ms (answer time minus the trip back).
    last_done: Option<f64>,
    /// When its latest answer arrived, and how long its answers take (EWMA), model ms.
    last_answer_at: Option<f64>,
    latency_ewma: Option<f64>,
    /// The answer to a job sent alone after an earlier answer (so not into a boot) came: its
    /// trip was measured without a queue in front. Until then every answer may have waited —
    /// behind a boot, behind the first wave — and its trip is an upper bound.
    clean: bool,
    /// The shortest `response_time` of the answers to jobs sent alone, the first included
    /// ([`trip_measured`](ControlLoop::trip_measured) says when it is the machine's trip).
    alone_rt: Option<f64>,
}

/// How a job was sent to its machine.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Sent {
    /// Behind other jobs of ours still in flight there.
    Queued,
    /// Alone: nothing else of ours in flight there. `awake` if the machine had answered before
    /// (so the job did not go into a boot either).
    Alone { awake: bool },
}

/// Latency of what goes through a unit, without its queue (EWMA).
#[derive(Clone, Copy, Debug, Default)]
struct Through {
    base_ms: Option<f64>,
}

struct ControlLoop {
    layout: Layout,
    urls: Vec<String>,
    est: Estimator,
    machines: Vec<MachineCtl>,
    /// Per unit, its in-flight window; `None` while it has shown no ceiling.
    windows: Vec<Option<f64>>,
    through: Vec<Through>,
    /// Per unit, when its stage is expected to be free of the jobs sent through it (units with
    /// a ceiling).
    unit_free: Vec<f64>,
    /// Per unit, when a job was last sent through it.
    last_sent: Vec<f64>,
    wave: u32,
    /// What a fresh machine may be given before it answers, at most (its share of the batch).
    share: u32,
    hedges_left: u64,
    /// [`silence`](ControlLoop::silence) as of the decision being made (taken once per
    /// decision: it looks at every machine, and the caps of every machine use it).
    quiet_ms: f64,
    /// Jobs with more than one copy sent and a copy still in flight.
    hedged: HashSet<u32>,
    /// The shortest silence that counts, in model ms ([`SILENT_FLOOR_WALL`]).
    silent_floor_ms: f64,
    seeded: bool,
    rng: SmallRng,
    sent: u64,
    hedges: u64,
    /// Answers observed so far.
    answered: u64,
    /// The batch's end as last planned ([`horizon`](ControlLoop::horizon)), and `answered` then.
    horizon: Option<(u64, Option<f64>)>,
}

/// A candidate machine's predicted answer.
#[derive(Clone, Copy, Debug)]
struct Pick {
    machine: usize,
    answer: f64,
}

impl ControlLoop {
    /// How long nothing at all has come back while jobs are out, model ms: the time since the
    /// oldest job in flight was sent or since the last answer from anywhere, whichever is later.
    /// While every machine is silent this is a measured lower bound on the latency of what is in
    /// flight — longer than any estimate when the machines are asleep.
    fn silence(&self, now: f64) -> f64 {
        let oldest = self
            .machines
            .iter()
            .filter_map(|c| c.in_flight.front().map(|j| j.1))
            .fold(f64::INFINITY, f64::min);
        if !oldest.is_finite() {
            return 0.0;
        }
        let last = self
            .machines
            .iter()
            .filter_map(|c| c.last_answer_at)
            .fold(f64::NEG_INFINITY, f64::max);
        (now - oldest.max(last)).max(0.0)
    }

    /// The machine for a job sent now through `f`: where it would be answered soonest — or,
    /// with `fit` at the batch's end, best fit against the horizon ([`horizon`](Self::horizon)):
    /// among the machines where the job would not queue, the one that answers latest while
    /// still by the horizon ([`endgame`] says why). Where no machine fits, the soonest answer
    /// wins.
    fn pick(
        &mut self,
        view: &View,
        f: usize,
        avoid: Option<usize>,
        retry: bool,
        fit: bool,
    ) -> Option<Pick> {
        let now = view.now_ms;
        let mut best: Option<Pick> = None;
        let mut fitted: Option<Pick> = None;
        let mut ties = 0u32;
        let endgame = self.endgame(view, f);
        let horizon = if fit && endgame {
            self.horizon(view)
        } else {
            None
        };
        let (d_fixed, queue) = self.unit_times(f);
        let exit = self.exit_time(f, now, queue);
        for m in 0..self.machines.len() {
            if view.machines[m].ejected || Some(m) == avoid {
                continue;
            }
            let capped = view.machines[m].in_flight >= self.cap(m, f);
            let standing = self.machines[m].standing;
            // A retry has already waited for one answer: it may go to a machine still in its
            // first wave rather than wait for a place to free up.
            let lifted =
                (endgame && standing == Standing::Known) || (retry && standing == Standing::Fresh);
            if capped && !lifted {
                continue;
            }
            let Some(lane) = self.lane(m, f, now) else {
                continue;
            };
            let (_, answer, waits) = lane.answer(exit, d_fixed);
            let pick = Pick { machine: m, answer };
            if endgame::fits_better(horizon, answer, waits, fitted.map(|b| b.answer)) {
                fitted = Some(pick);
            }
            match best {
                Some(b) if answer > b.answer + 1e-9 => {}
                Some(b) if (answer - b.answer).abs() <= 1e-9 => {
                    // Equal predictions (nothing known yet): a random one, not always the first.
                    ties += 1;
                    if self.rng.random_range(0..=ties) == 0 {
                        best = Some(pick);
                    }
                }
                _ => {
                    ties = 0;
                    best = Some(pick);
                }
            }
        }
        fitted.or(best)
    }

    /// A machine worth one job now to refresh what is known of it: it answers, has nothing in
    /// flight, and the batch has long enough left for its answer to come back well before the
    /// end. Without this an estimate that went bad — a trip measured while the machine was
    /// waking, a machine slowed for a while — would never be revisited, since the controller
    /// avoids what it believes slow.
    fn probe(&self, view: &View, f: usize) -> Option<usize> {
        let now = view.now_ms;
        let done = self.answered.max(1) as f64;
        let remaining = view.unissued as f64 * now / done;
        (0..self.machines.len())
            .filter(|&m| {
                let ctl = &self.machines[m];
                ctl.standing == Standing::Known
                    && ctl.in_flight.is_empty()
                    && !view.machines[m].ejected
                    && view.machines[m].in_flight == 0
            })
            .filter_map(|m| Some((m, self.hopeful(m, f, now)? - now)))
            .filter(|&(_, latency)| remaining > 2.0 * latency)
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(m, _)| m)
    }

    /// Marks machines that never answered, long after the others did, as doubtful.
    fn review(&mut self, now: f64) {
        let Some(reference) = self.reference_latency() else {
            return;
        };
        let floor = self.silent_floor_ms;
        for ctl in &mut self.machines {
            if ctl.standing == Standing::Fresh
                && ctl
                    .first_sent
                    .is_some_and(|t| now - t > (SILENT_FACTOR * reference).max(floor))
            {
                ctl.standing = Standing::Doubtful;
            }
        }
    }

    fn send(&mut self, m: usize, f: usize, job: u32, now: f64) -> Route {
        let (_, queue) = self.unit_times(f);
        let exit = self.exit_time(f, now, queue);
        if self.est.units.get(f).is_some_and(|u| u.pass_ms.is_some()) {
            self.unit_free[f] = exit;
        }
        if let Some(t) = self.last_sent.get_mut(f) {
            *t = now;
        }
        let half = self.machine_times(m).map_or(0.0, |t| t.0 / 2.0);
        let awake = self.est.machines[m].answers > 0;
        let ctl = &mut self.machines[m];
        let how = if ctl.in_flight.is_empty() {
            Sent::Alone { awake }
        } else {
            Sent::Queued
        };
        ctl.in_flight.push_back((job, now, exit + half, how));
        ctl.first_sent.get_or_insert(now);
        self.sent += 1;
        Route {
            forwarder: f as u16,
            target: Target::Machine(m as u16),
        }
    }
}

impl Binder for ControlLoop {
    fn next(&mut self, view: &View, job: Option<&JobCtx>) -> Decision {
        let now = view.now_ms;
        self.quiet_ms = self.silence(now);
        self.review(now);
        let Some(f) = self.unit(view) else {
            return Decision::Wait { until_ms: None };
        };
        // A job stuck at a machine that is out for now is copied first, while there is room.
        if let Some(stuck) = self.overdue(now) {
            let from = self
                .machines
                .iter()
                .position(|c| c.in_flight.iter().any(|j| j.0 == stuck));
            if let Some(p) = self.pick(view, f, from, false, false) {
                return self.hedge(stuck, p.machine, f, now);
            }
        }
        let Some(job) = job else {
            if let Some((late, p)) = self.steal(view, f) {
                return self.hedge(late, p.machine, f, now);
            }
            // Nothing to place: look again when the oldest job could become overdue.
            return Decision::Wait {
                until_ms: Some(now + self.recheck_ms()),
            };
        };
        if job.attempt == 0 {
            if let Some(until) = self.held(view, f) {
                return Decision::Wait {
                    until_ms: Some(until),
                };
            }
            if let Some(m) = self.probe(view, f) {
                let route = self.send(m, f, job.id, now);
                return Decision::Send { route, more: true };
            }
        }
        match self.pick(view, f, job.avoid, job.attempt > 0, true) {
            Some(p) => {
                let route = self.send(p.machine, f, job.id, now);
                Decision::Send {
                    route,
                    more: view.unissued > 1 && self.room(view, f, p.machine),
                }
            }
            None => Decision::Wait {
                until_ms: Some(now + self.recheck_ms()),
            },
        }
    }

    fn observe(&mut self, view: &View, obs: &Observation) {
        let target = match obs.route.target {
            Target::Machine(m) => Some(m as usize),
            _ => None,
        };
        if let Some(m) = target.filter(|&m| m < self.machines.len()) {
            let q = &mut self.machines[m].in_flight;
            if let Some(pos) = q.iter().position(|j| j.0 == obs.job) {
                let how = q.remove(pos).map(|j| j.3);
                if let (Some(Sent::Alone { awake }), Ok(a)) = (how, obs.result) {
                    let rt = a.response_time as f64;
                    let ctl = &mut self.machines[m];
                    ctl.alone_rt = Some(ctl.alone_rt.map_or(rt, |r| r.min(rt)));
                    ctl.clean |= awake;
                }
            }
        }
        if self.hedged.contains(&obs.job)
            && !self
                .machines
                .iter()
                .any(|c| c.in_flight.iter().any(|j| j.0 == obs.job))
        {
            self.hedged.remove(&obs.job);
        }
        let f = usize::from(obs.route.forwarder);
        match (obs.result, obs.machine) {
            (Ok(a), Some(m)) if m < self.machines.len() => {
                self.answered += 1;
                let latency = obs.latency_ms();
                self.est.observe(&Sample {
                    forwarder: f,
                    machine: m,
                    sent_ms: obs.sent_ms,
                    end_ms: obs.end_ms,
                    response_time: a.response_time as f64,
                    work_time: a.work_time as f64,
                });
                let ctl = &mut self.machines[m];
                ctl.standing = Standing::Known;
                ctl.last_answer_at = Some(obs.end_ms);
                ctl.latency_ewma = Some(
                    ctl.latency_ewma
                        .map_or(latency, |e| 0.8 * e + 0.2 * latency),
                );
                if let Some((trip, _, _)) = self.machine_times(m) {
                    let (d_fixed, _) = self.unit_times(f);
                    let done = obs.end_ms - trip / 2.0 - d_fixed;
                    let ctl = &mut self.machines[m];
                    ctl.last_done = Some(ctl.last_done.map_or(done, |d| d.max(done)));
                }
                if f < self.windows.len() {
                    self.tune_window(f, view, latency);
                }
            }
            (Err(_), _) => {
                if let Some(m) = target.filter(|&m| m < self.machines.len()) {
                    self.est.observe_failure(m);
                    self.machines[m].standing = Standing::Doubtful;
                }
            }
            _ => {}
        }
    }

    fn reason(&self) -> String {
        let mut parts = Vec::new();
        for (i, id) in self.layout.machines.iter().enumerate() {
            match self.machine_times(i) {
                Some((trip, interval, _)) if self.est.machines[i].answers > 0 => {
                    parts.push(format!("{id} trip {trip:.0} ms, one per {interval:.1} ms"))
                }
                _ => parts.push(format!("{id} never answered")),
            }
        }
        let units: Vec<String> = self
            .est
            .units
            .iter()
            .enumerate()
            .map(|(f, u)| match u.pass_ms {
                Some(p) => format!(
                    "unit {f}: one pass per {p:.1} ms ({:.0}/s), stage {} the worker call",
                    1000.0 / p,
                    if u.stage_after == Some(true) {
                        "after"
                    } else {
                        "before"
                    }
                ),
                None => format!("unit {f}: no ceiling seen"),
            })
            .collect();
        format!(
            "closed loop ({}): each job to the machine that would answer it soonest; first wave {} per machine; {} hedge(s). Learned: {}; {}",
            if self.seeded {
                "started from the last run's estimates"
            } else {
                "nothing known at the start"
            },
            self.wave,
            self.hedges,
            parts.join(", "),
            units.join("; ")
        )
    }

    fn learned(&self) -> Option<Calibration> {
        let mut cal = self.est.snapshot(&self.layout, &self.urls);
        for (m, e) in cal.machines.iter_mut().enumerate() {
            let live = &self.est.machines[m];
            if live.answers == 0 || self.trip_measured(m) {
                continue;
            }
            // This run's answers all waited: an upper bound. A trip an earlier run measured
            // within it still stands; otherwise the upper bound is passed on as one.
            match (live.seeded_rt0(), live.rt_min) {
                (Some(earlier), Some(bound)) if earlier <= bound => {
                    e.latency_ms = (earlier - e.service_ms).max(0.0);
                }
                _ => e.trip_measured = false,
            }
        }
        Some(cal)
    }
}

impl ControlLoop {
    /// Was machine `m`'s trip measured in this run, to be passed on to the next? Only an answer
    /// that waited for nothing at the machine measures it: behind a queue, `response_time` is
    /// the wait plus one service, and the trip cancels out of it. Which answers waited is not
    /// seen (a unit's queue holds jobs back as well as the machine's), so only a job sent alone
    /// — nothing else of ours in flight there — is taken to have waited for nothing. Not quite:
    /// the first job sent to a sleeping machine waits for its boot, and the jobs queued behind
    /// it, sent later into the boot, come back quicker than it. So the trip counts as measured
    /// when the quickest answer to a job sent alone is, within jitter, the quickest of all.
    /// Otherwise the trip read from the answers is an upper bound (seconds too long after a
    /// boot), and [`learned`](Binder::learned) says so. A first wave sent all at once into a
    /// boot still passes for a trip (nothing came back quicker than its first answer); the next
    /// run corrects it, as it corrects any estimate. Within the run, [`hopeful`](Self::hopeful)
    /// asks more: a job sent alone after an answer (`clean`).
    fn trip_measured(&self, m: usize) -> bool {
        match (self.machines[m].alone_rt, self.est.machines[m].rt_min) {
            (Some(alone), Some(min)) => alone <= CLEAN_SLACK * min + CLEAN_SLACK_MS,
            _ => false,
        }
    }

    /// How long to wait before looking again when nothing can be sent: a tenth of the shortest
    /// known trip (an answer usually comes first and wakes the agent anyway).
    fn recheck_ms(&self) -> f64 {
        let shortest = (0..self.machines.len())
            .filter_map(|m| self.machine_times(m).map(|(t, _, s)| t + s))
            .fold(f64::INFINITY, f64::min);
        if shortest.is_finite() {
            (shortest / 10.0).max(1.0)
        } else {
            50.0
        }
    }
}

mod copies;
mod endgame;
mod pacing;
mod predict;
#[cfg(test)]
mod tests;
