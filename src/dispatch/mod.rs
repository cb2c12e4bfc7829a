//! Running a plan: agent threads, job channels, late binding, retries, ejection, the collector.
//!
//! Why this shape (design card, rust-notes.md): every HTTP call blocks, so each agent is a plain
//! `std::thread` with its own ureq agent, fed by a crossbeam channel per queue; rayon is kept for
//! CPU work. A feeder thread sends the plan's jobs in the plan's order (send order matters: the
//! forwarding unit handles one request at a time) and holds back jobs with a `release_ms`.
//!
//! All choices that depend on the current load — a late-bound job's machine
//! ([`Policy::bind`]), the forwarding unit of a job the plan left open (least in flight among
//! those up, within each unit's connection limit), where a retry goes — are made under one lock
//! together with the bookkeeping of the choice, so every decision sees a consistent
//! [`LoadView`]. Waiting (all machines at their cap, all units at their connection limit)
//! happens here, on a condition variable, where a job can still move.
//!
//! Reliability rules (load-balancing-anchors.md, after Envoy): connect errors, 5xx and timeouts
//! are retried elsewhere within a retry budget shared by the batch; a machine failing several
//! times in a row is ejected for a while (at most half of them at once); a forwarding unit that refuses
//! connections is taken out and its jobs move to the others without spending the budget. Every
//! job ends with exactly one [`Outcome`], also when the run is cancelled.

pub mod charts;
pub mod collector;

use crate::calibrate::Calibration;
use crate::client::{Client, ClientConfig, Failure};
use crate::endpoint::{Layout, Target};
use crate::policy::{Job, LoadView, MachineLoad, Observation, Plan, Policy};
use crossbeam_channel::{Receiver, Sender};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How one job ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutcomeKind {
    Ok,
    Failed(Failure),
    /// Never sent because the run was interrupted.
    Cancelled,
}

impl OutcomeKind {
    pub fn class(&self) -> String {
        match self {
            OutcomeKind::Ok => "ok".into(),
            OutcomeKind::Failed(f) => f.class(),
            OutcomeKind::Cancelled => "cancelled".into(),
        }
    }
}

/// One job's record: a row of requests.csv. Times are model ms after the batch start.
#[derive(Clone, Copy, Debug)]
pub struct Outcome {
    pub id: u32,
    /// Forwarding unit of the last attempt (index into the run's forwarders).
    pub forwarder: Option<u16>,
    /// Target of the last attempt.
    pub target: Target,
    /// The machine that answered (index into the layout).
    pub machine: Option<u16>,
    pub attempts: u16,
    pub kind: OutcomeKind,
    /// When the first attempt was sent.
    pub start_ms: f64,
    /// When the last attempt was sent.
    pub sent_ms: f64,
    /// When the job ended.
    pub end_ms: f64,
    /// The server's `response_time` and `work_time`, when it answered.
    pub response_time: Option<u32>,
    pub work_time: Option<u32>,
}

/// What the dispatcher needs besides the plan.
#[derive(Clone)]
pub struct DispatchConfig {
    pub forwarders: Vec<String>,
    pub client: ClientConfig,
    /// Wall time = model time × time_scale.
    pub time_scale: f64,
    /// Retries the whole batch may spend (attempts beyond the first, moves excluded).
    pub retry_budget: usize,
    /// Attempts per job at most (moves off a dead forwarding unit excluded).
    pub max_attempts: u16,
    /// Consecutive failures that eject a machine.
    pub eject_after: u32,
    /// First ejection length, model ms (doubles with each ejection of the same machine).
    pub eject_ms: f64,
    /// Set by Ctrl-C: stop sending, let what is in flight finish, cancel the rest.
    pub cancel: Arc<AtomicBool>,
}

/// Totals the dispatcher itself knows (the collector knows the rest).
#[derive(Clone, Debug, Default)]
pub struct DispatchReport {
    pub retries: u64,
    pub moves: u64,
    pub ejections: u64,
    pub forwarders_lost: Vec<usize>,
}

struct Health {
    consecutive: u32,
    ejections: u32,
    ejected_until: Option<Instant>,
}

struct Shared {
    load: LoadView,
    health: Vec<Health>,
    fwd_in_flight: Vec<usize>,
    fwd_limit: Vec<usize>,
    fwd_up: Vec<bool>,
    fwd_consecutive: Vec<u32>,
    retries_left: usize,
    report: DispatchReport,
}

struct Dispatcher<'a> {
    cfg: &'a DispatchConfig,
    layout: Layout,
    policy: &'a dyn Policy,
    shared: Mutex<Shared>,
    changed: Condvar,
    t0: Instant,
}

/// Why an attempt could not even be sent.
enum Blocked {
    NoForwarder,
    Cancelled,
}

/// Runs `plan` to the end, sending one [`Outcome`] per job to `sink`. Blocks until every job has
/// ended. `t0` is the batch start all offsets refer to.
pub fn dispatch(
    plan: Plan,
    cal: &Calibration,
    policy: &dyn Policy,
    cfg: &DispatchConfig,
    sink: Sender<Outcome>,
    t0: Instant,
) -> DispatchReport {
    let layout = cal.layout();
    let machines = cal
        .machines
        .iter()
        .map(|m| MachineLoad {
            ejected: !m.up,
            ..MachineLoad::default()
        })
        .collect();
    let k = cfg.forwarders.len();
    let shared = Shared {
        load: LoadView {
            machines,
            now_ms: 0.0,
            remaining: plan.jobs.len(),
        },
        health: cal
            .machines
            .iter()
            .map(|_| Health {
                consecutive: 0,
                ejections: 0,
                ejected_until: None,
            })
            .collect(),
        fwd_in_flight: vec![0; k],
        fwd_limit: (0..k)
            .map(|i| {
                cal.forwarders
                    .get(i)
                    .map_or(1024, |f| f.connection_limit.max(1))
            })
            .collect(),
        fwd_up: (0..k)
            .map(|i| cal.forwarders.get(i).is_none_or(|f| f.up))
            .collect(),
        fwd_consecutive: vec![0; k],
        retries_left: cfg.retry_budget,
        report: DispatchReport::default(),
    };
    let d = Dispatcher {
        cfg,
        layout,
        policy,
        shared: Mutex::new(shared),
        changed: Condvar::new(),
        t0,
    };
    let queues: Vec<(Sender<Job>, Receiver<Job>)> = plan
        .queues
        .iter()
        .map(|_| crossbeam_channel::unbounded())
        .collect();
    std::thread::scope(|s| {
        for (qi, q) in plan.queues.iter().enumerate() {
            for _ in 0..q.agents.max(1) {
                let rx = queues[qi].1.clone();
                let sink = sink.clone();
                let d = &d;
                let spawned = std::thread::Builder::new()
                    .name(format!("agent-{qi}"))
                    .stack_size(256 * 1024)
                    .spawn_scoped(s, move || d.agent(rx, sink));
                if let Err(e) = spawned {
                    // Fewer agents than planned is slower but still correct.
                    eprintln!("warning: could not start an agent thread: {e}");
                    break;
                }
            }
        }
        let senders: Vec<Sender<Job>> = queues.iter().map(|(tx, _)| tx.clone()).collect();
        drop(queues);
        d.feed(plan.jobs, senders, &sink);
    });
    let shared = d.lock();
    shared.report.clone()
}

impl Dispatcher<'_> {
    fn lock(&self) -> MutexGuard<'_, Shared> {
        // A panicking agent must not take the whole batch down with a poisoned lock.
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn now_ms(&self) -> f64 {
        self.t0.elapsed().as_secs_f64() * 1000.0 / self.cfg.time_scale
    }

    fn model_to_wall(&self, ms: f64) -> Duration {
        Duration::from_secs_f64((ms * self.cfg.time_scale / 1000.0).max(0.0))
    }

    fn cancelled(&self) -> bool {
        self.cfg.cancel.load(Ordering::Relaxed)
    }

    /// Sends the jobs in plan order, each no earlier than its release time.
    fn feed(&self, jobs: Vec<Job>, queues: Vec<Sender<Job>>, sink: &Sender<Outcome>) {
        for job in jobs {
            if let Some(r) = job.release_ms {
                let at = self.t0 + self.model_to_wall(r as f64);
                while Instant::now() < at && !self.cancelled() {
                    let left = at.saturating_duration_since(Instant::now());
                    std::thread::sleep(left.min(Duration::from_millis(50)));
                }
            }
            let q = (job.queue as usize).min(queues.len().saturating_sub(1));
            if self.cancelled() || queues.is_empty() || queues[q].send(job).is_err() {
                let _ = sink.send(self.cancelled_outcome(&job));
            }
        }
    }

    fn cancelled_outcome(&self, job: &Job) -> Outcome {
        let now = self.now_ms();
        {
            let mut sh = self.lock();
            sh.load.remaining = sh.load.remaining.saturating_sub(1);
        }
        Outcome {
            id: job.id,
            forwarder: None,
            target: job.target,
            machine: None,
            attempts: 0,
            kind: OutcomeKind::Cancelled,
            start_ms: now,
            sent_ms: now,
            end_ms: now,
            response_time: None,
            work_time: None,
        }
    }

    fn agent(&self, rx: Receiver<Job>, sink: Sender<Outcome>) {
        let client = Client::new(&ClientConfig {
            max_idle: self.cfg.forwarders.len().max(4),
            ..self.cfg.client.clone()
        });
        for job in rx.iter() {
            let outcome = if self.cancelled() {
                self.cancelled_outcome(&job)
            } else {
                self.run_job(&job, &client)
            };
            if sink.send(outcome).is_err() {
                return;
            }
        }
    }

    /// One job through all its attempts to exactly one outcome.
    fn run_job(&self, job: &Job, client: &Client) -> Outcome {
        {
            let mut sh = self.lock();
            sh.load.remaining = sh.load.remaining.saturating_sub(1);
        }
        let mut out = Outcome {
            id: job.id,
            forwarder: None,
            target: job.target,
            machine: None,
            attempts: 0,
            kind: OutcomeKind::Cancelled,
            start_ms: f64::NAN,
            sent_ms: f64::NAN,
            end_ms: f64::NAN,
            response_time: None,
            work_time: None,
        };
        let mut target = job.target;
        let mut avoid: Option<usize> = None;
        let mut rebind = false;
        let mut counted_attempts: u16 = 0;
        loop {
            let (t, f) = match self.acquire(job, target, avoid, rebind) {
                Ok(x) => x,
                Err(blocked) => {
                    let now = self.now_ms();
                    if out.attempts == 0 {
                        out.start_ms = now;
                        out.sent_ms = now;
                    }
                    out.end_ms = now;
                    out.kind = match (blocked, out.kind) {
                        (_, OutcomeKind::Failed(f)) => OutcomeKind::Failed(f),
                        (Blocked::NoForwarder, _) => OutcomeKind::Failed(Failure::Connect),
                        (Blocked::Cancelled, _) => OutcomeKind::Cancelled,
                    };
                    return out;
                }
            };
            target = t;
            let sent = self.now_ms();
            if out.attempts == 0 {
                out.start_ms = sent;
            }
            out.sent_ms = sent;
            out.attempts += 1;
            out.forwarder = Some(f as u16);
            out.target = t;
            let result = client.get_work(&self.cfg.forwarders[f], &self.layout.path(t));
            let end = self.now_ms();
            out.end_ms = end;
            let bound_machine = match t {
                Target::Machine(m) => Some(m as usize),
                _ => None,
            };
            match result {
                Ok(answer) => {
                    let answered = answer
                        .machine_index()
                        .and_then(|i| self.layout.machine_index(&answer.region, i));
                    self.release(f, bound_machine, answered, Ok(()));
                    self.policy.observe(&Observation {
                        machine: answered.or(bound_machine),
                        latency_ms: end - sent,
                        ok: true,
                    });
                    out.machine = answered.map(|m| m as u16);
                    out.response_time = Some(answer.response_time.min(u32::MAX as u64) as u32);
                    out.work_time = Some(answer.work_time.min(u32::MAX as u64) as u32);
                    out.kind = OutcomeKind::Ok;
                    return out;
                }
                Err(failure) => {
                    let moved = self.release(f, bound_machine, None, Err(failure));
                    self.policy.observe(&Observation {
                        machine: bound_machine,
                        latency_ms: end - sent,
                        ok: false,
                    });
                    out.kind = OutcomeKind::Failed(failure);
                    if !moved {
                        counted_attempts += 1;
                    }
                    if !failure.retriable()
                        || self.cancelled()
                        || counted_attempts >= self.cfg.max_attempts
                        || usize::from(out.attempts)
                            >= usize::from(self.cfg.max_attempts)
                                + self.cfg.forwarders.len()
                                + self.layout.machines.len()
                        || !(moved || self.take_retry())
                    {
                        return out;
                    }
                    // A retry goes to another machine where the policy can name one; a move
                    // off a dead forwarding unit keeps its target.
                    let unit_lost = failure == Failure::Connect;
                    if !(moved && unit_lost) && bound_machine.is_some() {
                        avoid = bound_machine;
                        rebind = true;
                    }
                }
            }
        }
    }

    fn take_retry(&self) -> bool {
        let mut sh = self.lock();
        if sh.retries_left == 0 {
            return false;
        }
        sh.retries_left -= 1;
        sh.report.retries += 1;
        true
    }

    /// Chooses the target and forwarding unit of the next attempt and books them, waiting while
    /// every choice is at its cap.
    fn acquire(
        &self,
        job: &Job,
        target: Target,
        avoid: Option<usize>,
        rebind: bool,
    ) -> Result<(Target, usize), Blocked> {
        let mut sh = self.lock();
        loop {
            if self.cancelled() {
                return Err(Blocked::Cancelled);
            }
            readmit(&mut sh);
            let needs_bind = match target {
                Target::Late => true,
                Target::Machine(m) => rebind || sh.load.machines[m as usize].ejected,
                _ => false,
            };
            let chosen = if needs_bind {
                sh.load.now_ms = self.now_ms();
                self.policy.bind(job, &sh.load, avoid)
            } else {
                Some(target)
            };
            let fwd = choose_forwarder(&sh, job.forwarder);
            match (chosen, fwd) {
                (_, Err(())) => return Err(Blocked::NoForwarder),
                (Some(t), Ok(Some(f))) => {
                    let t = if t == Target::Late { Target::Any } else { t };
                    if let Target::Machine(m) = t {
                        if let Some(ml) = sh.load.machines.get_mut(m as usize) {
                            ml.in_flight += 1;
                        }
                    }
                    sh.fwd_in_flight[f] += 1;
                    return Ok((t, f));
                }
                _ => {
                    // Everything is at its cap: wait for an answer to free a slot.
                    sh = self
                        .changed
                        .wait_timeout(sh, Duration::from_millis(20))
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                }
            }
        }
    }

    /// Undoes the booking of an attempt and updates health. Returns true when the job should
    /// move without spending the budget: the failure was a forwarding unit's that is now out, or
    /// its machine's, which is now ejected.
    fn release(
        &self,
        f: usize,
        bound: Option<usize>,
        answered: Option<usize>,
        result: Result<(), Failure>,
    ) -> bool {
        let mut sh = self.lock();
        sh.fwd_in_flight[f] = sh.fwd_in_flight[f].saturating_sub(1);
        if let Some(m) = bound {
            if let Some(ml) = sh.load.machines.get_mut(m) {
                ml.in_flight = ml.in_flight.saturating_sub(1);
            }
        }
        let mut moved = false;
        match result {
            Ok(()) => {
                sh.fwd_consecutive[f] = 0;
                if let Some(m) = answered.or(bound) {
                    sh.load.machines[m].ok += 1;
                    sh.health[m].consecutive = 0;
                }
            }
            Err(Failure::Connect) => {
                // The forwarding unit refused or dropped the connection: its fault, not the
                // machine's. Two in a row and it is out for the rest of the batch.
                sh.fwd_consecutive[f] += 1;
                if sh.fwd_up[f] && sh.fwd_consecutive[f] >= 2 {
                    sh.fwd_up[f] = false;
                    sh.report.forwarders_lost.push(f);
                }
                moved = !sh.fwd_up[f] && sh.fwd_up.iter().any(|&u| u);
                if moved {
                    sh.report.moves += 1;
                }
            }
            Err(_) => {
                sh.fwd_consecutive[f] = 0;
                if let Some(m) = bound {
                    sh.load.machines[m].failed += 1;
                    sh.health[m].consecutive += 1;
                    if sh.health[m].consecutive >= self.cfg.eject_after {
                        // At most half the machines out at once (Envoy caps ejection too):
                        // when everything fails, the fault is not the machines'.
                        let ejected = sh.load.machines.iter().filter(|ml| ml.ejected).count();
                        let cap = (sh.load.machines.len() / 2).max(1);
                        let others = sh.load.machines.len() - ejected - 1;
                        if ejected < cap && others > 0 && !sh.load.machines[m].ejected {
                            sh.health[m].ejections += 1;
                            sh.health[m].consecutive = 0;
                            let factor = f64::from(1u32 << sh.health[m].ejections.min(10)) / 2.0;
                            sh.health[m].ejected_until = Some(
                                Instant::now() + self.model_to_wall(self.cfg.eject_ms * factor),
                            );
                            sh.load.machines[m].ejected = true;
                            sh.report.ejections += 1;
                        }
                    }
                    // Jobs that were already on their way to a machine now ejected move, like
                    // those of a dead unit, without spending the budget.
                    moved = sh.load.machines[m].ejected;
                    if moved {
                        sh.report.moves += 1;
                    }
                }
            }
        }
        drop(sh);
        self.changed.notify_all();
        moved
    }
}

/// Ends ejections whose time is up.
fn readmit(sh: &mut Shared) {
    let now = Instant::now();
    for (h, ml) in sh.health.iter_mut().zip(sh.load.machines.iter_mut()) {
        if let Some(until) = h.ejected_until {
            if now >= until {
                h.ejected_until = None;
                ml.ejected = false;
            }
        }
    }
}

/// The plan's forwarding unit when it is up, else the one with the fewest in flight among those
/// up; `Ok(None)` when all are at their connection limit, `Err` when none is up.
fn choose_forwarder(sh: &Shared, pinned: Option<u16>) -> Result<Option<usize>, ()> {
    if let Some(f) = pinned.map(usize::from) {
        if f < sh.fwd_up.len() && sh.fwd_up[f] {
            return Ok((sh.fwd_in_flight[f] < sh.fwd_limit[f]).then_some(f));
        }
    }
    let up: Vec<usize> = (0..sh.fwd_up.len()).filter(|&f| sh.fwd_up[f]).collect();
    if up.is_empty() {
        return Err(());
    }
    Ok(up
        .into_iter()
        .filter(|&f| sh.fwd_in_flight[f] < sh.fwd_limit[f])
        .min_by_key(|&f| sh.fwd_in_flight[f]))
}
