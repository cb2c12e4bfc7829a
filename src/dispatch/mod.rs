//! Running a batch: agent threads, one lock, retries, ejection, hedges, outcomes.
//!
//! Why this shape: every HTTP call blocks, so each agent is a plain `std::thread` with its own
//! connection ([`Caller`]); rayon is kept for CPU work. Jobs are not materialised: the batch is
//! a counter of jobs issued so far plus the few alive ones (in flight or waiting for a retry),
//! so memory does not grow with N. Agents are started when they are needed — when the binder
//! wants another job sent and no agent is idle — so the number of threads follows what is in
//! flight (Little's law) instead of being guessed before the batch.
//!
//! Every decision is made under one lock, together with the bookkeeping it depends on, so the
//! [`Binder`] always sees a consistent [`View`]. An agent that gets an answer asks for its next
//! job itself, without waking anyone; an idle agent is woken only when the binder says another
//! send is due (`more`), or when a pacing deadline passes. Outcomes go to the collector in small
//! batches (a channel hop per request would cost more than the rest of the bookkeeping).
//!
//! Reliability rules (after Envoy): connect errors, 5xx and timeouts are retried elsewhere
//! within a retry budget shared by the batch; a machine failing several times in a row is
//! ejected for a while; a forwarding unit that refuses connections is suspended and probed (see
//! [`health`]); an attempt off a unit or machine just taken out moves without spending the
//! budget. A hedge is a second copy of a job already in flight; the first answer wins and the
//! other is only observed. Every job ends with exactly one [`Outcome`], also when the run is
//! cancelled.

pub mod charts;
mod finish;
pub mod health;
#[cfg(test)]
mod tests;

use crate::client::Transport;
use crate::endpoint::{Layout, Target};
use crate::outcome::{Failure, NotSent, Outcome, OutcomeKind};
use crate::policy::{
    Binder, Decision, ForwarderLoad, JobCtx, MachineLoad, Observation, Route, View,
};
use crate::timescale::TimeScale;
use crossbeam_channel::Sender;
use health::{MachineHealth, UnitHealth, UnitState};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// What the dispatcher needs besides the binder and the transport.
#[derive(Clone)]
pub struct DispatchConfig {
    pub n: u64,
    pub forwarders: usize,
    pub layout: Layout,
    pub time_scale: TimeScale,
    /// Retries the whole batch may spend (attempts beyond the first; moves and hedges excluded).
    pub retry_budget: u64,
    /// Attempts per job at most (moves excluded).
    pub max_attempts: u16,
    /// Consecutive failures that eject a machine.
    pub eject_after: u32,
    /// First ejection length, model ms (doubles with each ejection of the same machine).
    pub eject_ms: f64,
    /// Agent threads at most (and so attempts in flight at most).
    pub max_agents: usize,
    /// Set by Ctrl-C or SIGTERM: stop sending, let what is in flight finish.
    pub cancel: Arc<AtomicBool>,
    /// Starts an agent thread ([`start_agent_thread`]; a seam for tests of what happens when the
    /// system will not start one).
    pub start_thread: fn(Box<dyn FnOnce() + Send>) -> std::io::Result<()>,
}

/// Starts an agent on a plain thread with a small stack: it holds one HTTP call's buffers,
/// nothing deep.
pub fn start_agent_thread(work: Box<dyn FnOnce() + Send>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("agent".into())
        .stack_size(AGENT_STACK)
        .spawn(work)
        .map(|_| ())
}

/// Totals the dispatcher itself knows (the collector knows the rest).
#[derive(Clone, Debug, Default)]
pub struct DispatchReport {
    pub retries: u64,
    pub moves: u64,
    pub ejections: u64,
    /// Second copies sent of jobs already in flight.
    pub hedges: u64,
    /// Hedges whose copy answered first.
    pub hedges_won: u64,
    pub forwarders_lost: Vec<usize>,
    /// The most agent threads running at once.
    pub agents_peak: usize,
    pub not_sent: Option<NotSent>,
}

/// A job with an attempt in flight or waiting for another one.
struct Alive {
    attempts: u16,
    /// Attempts that count against `max_attempts` (moves do not).
    counted: u16,
    in_flight: u8,
    done: bool,
    start_ms: f64,
    last_failure: Option<Failure>,
    last_route: Option<Route>,
    avoid: Option<usize>,
    /// Sent time of the first copy in flight (to tell a hedge's win).
    first_sent_ms: f64,
}

/// One attempt handed to an agent.
struct Attempt {
    id: u32,
    route: Route,
    /// The machine the target names, if it names one.
    bound: Option<usize>,
    hedge: bool,
}

struct State {
    /// Taken out when the batch is over: an agent still blocked in a call (a hedge's losing
    /// copy) finds it gone and leaves.
    binder: Option<Box<dyn Binder>>,
    /// Outcomes waiting to go to the collector, and when the first of them ended.
    out: Vec<Outcome>,
    out_since: Option<Instant>,
    next_id: u64,
    retries: VecDeque<u32>,
    alive: HashMap<u32, Alive>,
    machines: Vec<MachineLoad>,
    forwarders: Vec<ForwarderLoad>,
    machine_health: Vec<MachineHealth>,
    unit_health: Vec<UnitHealth>,
    retries_left: u64,
    report: DispatchReport,
    agents: usize,
    idle: usize,
    max_agents: usize,
    ended: u64,
    stopping: bool,
    /// The attempt just booked took the last idle agent: its agent starts another one before
    /// making the call.
    pending_spawn: u32,
}

enum Step {
    Attempt(Attempt),
    Wait(Option<Instant>),
    Done,
}

struct Engine {
    cfg: DispatchConfig,
    transport: Arc<dyn Transport>,
    state: Mutex<State>,
    changed: Condvar,
    t0: Instant,
    /// Dropped when the batch is over, so the collector ends even while a losing hedge's
    /// agent is still blocked in its call.
    sink: Mutex<Option<Sender<Vec<Outcome>>>>,
}

/// Runs the batch to the end, sending every job's [`Outcome`] to `sink` (in batches), and
/// returns the totals and the binder (for what it learned). Returns as soon as every job has
/// ended: an agent still waiting on the losing copy of a hedged job is left to finish on its
/// own (its answer is no longer needed). `t0` is the batch start all offsets refer to.
pub fn dispatch(
    binder: Box<dyn Binder>,
    transport: Arc<dyn Transport>,
    cfg: &DispatchConfig,
    sink: Sender<Vec<Outcome>>,
    t0: Instant,
) -> (DispatchReport, Box<dyn Binder>) {
    let m = cfg.layout.machines.len();
    let k = cfg.forwarders;
    let state = State {
        binder: Some(binder),
        out: Vec::new(),
        out_since: None,
        next_id: 0,
        retries: VecDeque::new(),
        alive: HashMap::new(),
        machines: vec![MachineLoad::default(); m],
        forwarders: vec![
            ForwarderLoad {
                in_flight: 0,
                usable: true
            };
            k
        ],
        machine_health: vec![MachineHealth::default(); m],
        unit_health: vec![UnitHealth::default(); k],
        retries_left: cfg.retry_budget,
        report: DispatchReport::default(),
        agents: 1,
        idle: 0,
        max_agents: cfg.max_agents.max(1),
        ended: 0,
        stopping: false,
        pending_spawn: 0,
    };
    let engine = Arc::new(Engine {
        cfg: cfg.clone(),
        transport,
        state: Mutex::new(state),
        changed: Condvar::new(),
        t0,
        sink: Mutex::new(Some(sink)),
    });
    if k == 0 || m == 0 {
        let mut st = engine.lock();
        engine.fail_unissued(&mut st, OutcomeKind::Failed(Failure::Connect));
    } else if engine.spawn_first() {
        // Wait for the last outcome, not for the last agent: one may still be blocked on the
        // losing copy of a hedged job. Meanwhile send outcomes that have waited too long: when
        // every agent is blocked in a slow call, none of them would (a kill would lose them).
        let mut st = engine.lock();
        while st.ended < engine.cfg.n {
            engine.flush_due(&mut st, false);
            st = engine
                .changed
                .wait_timeout(st, IDLE_POLL)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    } else {
        // Not even one thread could be started: this one does the work.
        Engine::agent(&engine);
    }
    let mut st = engine.lock();
    let binder = st.binder.take();
    let out = std::mem::take(&mut st.out);
    st.report.agents_peak = st.report.agents_peak.max(1);
    // A unit still refusing connections at the end was lost to this batch, whether or not its
    // last probe had come.
    st.report.forwarders_lost = (0..k)
        .filter(|&f| st.unit_health[f].state != UnitState::Up)
        .collect();
    let report = st.report.clone();
    // Sent and closed under the state lock, so that no agent is between taking outcomes and
    // sending them (see `flush_due`).
    engine.send(out);
    *engine.sink.lock().unwrap_or_else(|p| p.into_inner()) = None;
    drop(st);
    engine.changed.notify_all();
    let binder = binder.unwrap_or_else(|| Box::new(Finished));
    (report, binder)
}

/// Stands in for a binder that was already taken (cannot happen: only the first agent, which
/// returns from [`dispatch`], takes it).
struct Finished;

impl Binder for Finished {
    fn next(&mut self, _view: &View, _job: Option<&JobCtx>) -> Decision {
        Decision::Wait { until_ms: None }
    }
    fn observe(&mut self, _view: &View, _obs: &Observation) {}
    fn reason(&self) -> String {
        String::new()
    }
}

impl Engine {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking agent must not take the whole batch down with a poisoned lock.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn now_ms(&self) -> f64 {
        self.cfg.time_scale.since(self.t0)
    }

    fn cancelled(&self) -> bool {
        self.cfg.cancel.load(Ordering::Relaxed)
    }

    /// One agent: takes steps until the batch is over.
    fn agent(this: &Arc<Engine>) {
        let mut caller = this.transport.caller();
        let mut st = this.lock();
        loop {
            match this.step(&mut st) {
                Step::Attempt(a) => {
                    this.flush_due(&mut st, false);
                    let spawn = std::mem::take(&mut st.pending_spawn);
                    drop(st);
                    for _ in 0..spawn {
                        this.spawn();
                    }
                    let t = Instant::now();
                    let sent = this.cfg.time_scale.to_model_ms(t - this.t0);
                    let result = caller.call(usize::from(a.route.forwarder), a.route.target);
                    let end = this.cfg.time_scale.to_model_ms(Instant::now() - this.t0);
                    st = this.lock();
                    if st.binder.is_none() {
                        // The batch ended while this copy was out: nothing left to do.
                        return;
                    }
                    this.finish(&mut st, a, sent, end, result);
                }
                Step::Wait(until) => {
                    if this.flush_due(&mut st, true) {
                        continue;
                    }
                    let wait = until
                        .map(|u| u.saturating_duration_since(Instant::now()))
                        .unwrap_or(IDLE_POLL)
                        .clamp(Duration::from_micros(50), IDLE_POLL);
                    st.idle += 1;
                    st = this
                        .changed
                        .wait_timeout(st, wait)
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                    st.idle -= 1;
                }
                Step::Done => break,
            }
        }
        drop(st);
        this.changed.notify_all();
    }

    /// Sends the outcomes due to the collector — a full batch, an old one, or any when `all` —
    /// and says whether it sent any. It sends under the state lock (a push on an unbounded
    /// channel): outcomes taken out of the state and sent after the lock is dropped could
    /// arrive after [`dispatch`] has closed the channel, and be lost.
    fn flush_due(&self, st: &mut State, all: bool) -> bool {
        let due = st.out.len() >= BATCH
            || st.out_since.is_some_and(|t| t.elapsed() >= BATCH_AGE)
            || (all && !st.out.is_empty());
        if !due {
            return false;
        }
        st.out_since = None;
        self.send(std::mem::take(&mut st.out));
        true
    }

    fn send(&self, batch: Vec<Outcome>) {
        if batch.is_empty() {
            return;
        }
        if let Some(sink) = self.sink.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            // The collector outlives the batch; if it is gone the run is failing anyway.
            let _ = sink.send(batch);
        }
    }

    /// Starts the first agent; false when no thread can be started.
    fn spawn_first(self: &Arc<Engine>) -> bool {
        let engine = self.clone();
        (self.cfg.start_thread)(Box::new(move || Engine::agent(&engine))).is_ok()
    }

    /// Starts one more agent thread if allowed.
    fn spawn(self: &Arc<Engine>) {
        {
            let mut st = self.lock();
            if st.agents >= st.max_agents || st.binder.is_none() {
                return;
            }
            st.agents += 1;
        }
        let engine = self.clone();
        let started = (self.cfg.start_thread)(Box::new(move || Engine::agent(&engine)));
        let mut st = self.lock();
        if started.is_ok() {
            st.report.agents_peak = st.report.agents_peak.max(st.agents);
        } else {
            // Fewer agents than wanted is slower but still correct: stop trying.
            st.agents -= 1;
            st.max_agents = st.agents;
        }
    }

    /// The next thing this agent should do.
    fn step(&self, st: &mut State) -> Step {
        let now = Instant::now();
        if self.cancelled() && !st.stopping {
            self.stop(st);
        }
        self.readmit(st, now);
        if st.ended >= self.cfg.n {
            return Step::Done;
        }
        if st.unit_health.iter().all(|u| u.state == UnitState::Lost) {
            self.fail_everything_waiting(st, Failure::Connect);
            return if st.ended >= self.cfg.n {
                Step::Done
            } else {
                Step::Wait(None)
            };
        }
        if st.stopping {
            // Only what is in flight is left; its agents end it.
            return Step::Wait(None);
        }
        if !st
            .forwarders
            .iter()
            .zip(&st.unit_health)
            .any(|(f, u)| u.usable(f.in_flight))
        {
            let probe = st.unit_health.iter().filter_map(|u| u.probe_at()).min();
            return Step::Wait(probe);
        }
        let job = if let Some(&id) = st.retries.front() {
            st.alive.get(&id).map(|a| JobCtx {
                id,
                attempt: a.attempts,
                avoid: a.avoid,
                previous: a.last_route,
            })
        } else if st.next_id < self.cfg.n {
            Some(JobCtx {
                id: st.next_id as u32,
                attempt: 0,
                avoid: None,
                previous: None,
            })
        } else {
            None
        };
        let now_ms = self.now_ms();
        let unissued = self.cfg.n - st.next_id;
        let view = View {
            now_ms,
            machines: &st.machines,
            forwarders: &st.forwarders,
            unissued,
            alive: st.alive.len(),
        };
        let Some(binder) = st.binder.as_mut() else {
            return Step::Done;
        };
        let decision = binder.next(&view, job.as_ref());
        let (attempt, more) = match decision {
            Decision::Send { route, more } => match job {
                Some(ctx) => (self.book_job(st, ctx, route, now_ms), more),
                None => return Step::Wait(Some(now + Duration::from_millis(1))),
            },
            Decision::Hedge {
                job: id,
                route,
                more,
            } => match self.book_hedge(st, id, route) {
                Some(a) => (a, more),
                None => return Step::Wait(Some(now + Duration::from_millis(1))),
            },
            Decision::Wait { until_ms } => {
                let at = until_ms.map(|ms| self.cfg.time_scale.instant(self.t0, ms));
                return Step::Wait(at);
            }
        };
        // Keep one agent free for what comes next: wake one if another send is due now, start
        // one if none is left idle — two when more sends are due, so that a burst the binder
        // wants at once (a first wave) gets its threads in a few doublings, not one by one.
        if more && st.idle > 0 {
            self.changed.notify_one();
        } else if st.idle == 0 && st.agents < st.max_agents {
            // Never more than one spare beyond what is in flight.
            let in_flight: u32 = st.forwarders.iter().map(|f| f.in_flight).sum();
            let spare = (in_flight as usize + 2).saturating_sub(st.agents) as u32;
            st.pending_spawn = (if more { 2 } else { 1 }).min(spare);
        }
        Step::Attempt(attempt)
    }

    /// A route the binder chose, made valid: a usable unit, a machine that is in and exists.
    fn repair(&self, st: &State, mut route: Route, avoid: Option<usize>) -> Option<Route> {
        let f = usize::from(route.forwarder);
        let unit_ok =
            f < st.forwarders.len() && st.unit_health[f].usable(st.forwarders[f].in_flight);
        if !unit_ok {
            route.forwarder = (0..st.forwarders.len())
                .filter(|&f| st.unit_health[f].usable(st.forwarders[f].in_flight))
                .min_by_key(|&f| st.forwarders[f].in_flight)? as u16;
        }
        route.target = match route.target {
            Target::Machine(m)
                if (m as usize) < st.machines.len() && !st.machines[m as usize].ejected =>
            {
                route.target
            }
            Target::Machine(_) | Target::Late => {
                let m = (0..st.machines.len())
                    .filter(|&m| !st.machines[m].ejected && Some(m) != avoid)
                    .min_by_key(|&m| st.machines[m].in_flight)
                    .or_else(|| {
                        (0..st.machines.len())
                            .filter(|&m| !st.machines[m].ejected)
                            .min_by_key(|&m| st.machines[m].in_flight)
                    })?;
                Target::Machine(m as u16)
            }
            Target::Region(r) if (r as usize) < self.cfg.layout.regions.len() => route.target,
            Target::Region(_) | Target::Any => Target::Any,
        };
        Some(route)
    }

    fn book(&self, st: &mut State, route: Route) -> Option<usize> {
        st.forwarders[usize::from(route.forwarder)].in_flight += 1;
        match route.target {
            Target::Machine(m) => {
                st.machines[m as usize].in_flight += 1;
                Some(m as usize)
            }
            _ => None,
        }
    }

    fn book_job(&self, st: &mut State, ctx: JobCtx, route: Route, now_ms: f64) -> Attempt {
        let route = self.repair(st, route, ctx.avoid).unwrap_or(route);
        if ctx.attempt == 0 && st.retries.front() != Some(&ctx.id) {
            st.next_id += 1;
            st.alive.insert(
                ctx.id,
                Alive {
                    attempts: 0,
                    counted: 0,
                    in_flight: 0,
                    done: false,
                    start_ms: now_ms,
                    last_failure: None,
                    last_route: None,
                    avoid: None,
                    first_sent_ms: now_ms,
                },
            );
        } else {
            st.retries.pop_front();
        }
        let bound = self.book(st, route);
        if let Some(a) = st.alive.get_mut(&ctx.id) {
            a.attempts += 1;
            a.in_flight += 1;
            a.last_route = Some(route);
            a.first_sent_ms = now_ms;
        }
        Attempt {
            id: ctx.id,
            route,
            bound,
            hedge: false,
        }
    }

    fn book_hedge(&self, st: &mut State, id: u32, route: Route) -> Option<Attempt> {
        let a = st.alive.get(&id)?;
        if a.done || a.in_flight != 1 || st.retries.contains(&id) {
            return None;
        }
        let route = self.repair(st, route, None)?;
        let bound = self.book(st, route);
        let a = st.alive.get_mut(&id)?;
        a.attempts += 1;
        a.in_flight += 1;
        st.report.hedges += 1;
        Some(Attempt {
            id,
            route,
            bound,
            hedge: true,
        })
    }

    /// Ends ejections and unit suspensions whose time is up.
    fn readmit(&self, st: &mut State, now: Instant) {
        for (h, l) in st.machine_health.iter_mut().zip(st.machines.iter_mut()) {
            if h.readmit(now) {
                l.ejected = false;
            }
        }
        for (u, f) in st.unit_health.iter_mut().zip(st.forwarders.iter_mut()) {
            u.readmit(now);
            f.usable = u.usable(f.in_flight);
        }
    }
}

/// An agent thread's stack: it holds one HTTP call's buffers, nothing deep.
const AGENT_STACK: usize = 256 * 1024;
/// An idle agent asks again at least this often.
const IDLE_POLL: Duration = Duration::from_millis(20);
/// Outcomes per batch sent to the collector.
const BATCH: usize = 256;
/// A batch is sent at the latest this long after its first outcome.
const BATCH_AGE: Duration = Duration::from_millis(100);
