//! The dispatcher's rules over a scripted in-memory transport (no sockets): every job ends
//! exactly once, retries go elsewhere within the budget, machines are ejected, forwarding units
//! are suspended and lost only when they keep refusing, hedges race, a stop ends the batch.

use super::*;
use crate::client::Caller;
use crate::endpoint::WorkAnswer;
use crate::policy::{by_name, StartInput};
use crossbeam_channel::Receiver;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

/// What the scripted system answers to the `call`-th attempt (0-based, over all agents) sent
/// through unit `f` to `target`.
type Script = dyn Fn(u64, usize, Target) -> (Duration, Result<WorkAnswer, Failure>) + Send + Sync;

struct Scripted {
    script: Arc<Script>,
    calls: Arc<AtomicU64>,
}

struct ScriptedCaller {
    script: Arc<Script>,
    calls: Arc<AtomicU64>,
}

impl Transport for Scripted {
    fn caller(&self) -> Box<dyn Caller> {
        Box::new(ScriptedCaller {
            script: self.script.clone(),
            calls: self.calls.clone(),
        })
    }
}

impl Caller for ScriptedCaller {
    fn call(&mut self, forwarder: usize, target: Target) -> Result<WorkAnswer, Failure> {
        let k = self.calls.fetch_add(1, Ordering::SeqCst);
        let (delay, result) = (self.script)(k, forwarder, target);
        std::thread::sleep(delay);
        result
    }
}

fn answer(layout: &Layout, target: Target) -> WorkAnswer {
    let m = match target {
        Target::Machine(m) => &layout.machines[m as usize],
        _ => &layout.machines[0],
    };
    WorkAnswer {
        machine: format!("Machine {}", m.index),
        region: m.region.clone(),
        response_time: 5,
        work_time: 1,
    }
}

struct Run {
    report: DispatchReport,
    outcomes: Vec<Outcome>,
    calls: u64,
}

fn config(n: u64, units: usize) -> DispatchConfig {
    DispatchConfig {
        n,
        forwarders: units,
        layout: Layout::documented(),
        time_scale: TimeScale::REAL,
        retry_budget: (n / 5).max(3),
        max_attempts: 4,
        eject_after: 3,
        eject_ms: 60_000.0,
        max_agents: 16,
        cancel: Arc::new(AtomicBool::new(false)),
        start_thread: start_agent_thread,
    }
}

fn run_with(
    cfg: &DispatchConfig,
    policy: &str,
    script: impl Fn(u64, usize, Target) -> (Duration, Result<WorkAnswer, Failure>)
        + Send
        + Sync
        + 'static,
) -> Run {
    let urls: Vec<String> = (0..cfg.forwarders).map(|i| format!("unit{i}")).collect();
    let binder = by_name(policy)
        .unwrap()
        .start(&StartInput {
            n: cfg.n,
            layout: &cfg.layout,
            forwarder_urls: &urls,
            model: None,
            seed: 1,
            time_scale: Default::default(),
        })
        .unwrap();
    run_binder(cfg, binder, script)
}

fn run_binder(
    cfg: &DispatchConfig,
    binder: Box<dyn Binder>,
    script: impl Fn(u64, usize, Target) -> (Duration, Result<WorkAnswer, Failure>)
        + Send
        + Sync
        + 'static,
) -> Run {
    let calls = Arc::new(AtomicU64::new(0));
    let transport: Arc<dyn Transport> = Arc::new(Scripted {
        script: Arc::new(script),
        calls: calls.clone(),
    });
    let (tx, rx): (_, Receiver<Vec<Outcome>>) = crossbeam_channel::unbounded();
    let (report, _) = dispatch(binder, transport, cfg, tx, Instant::now());
    let outcomes: Vec<Outcome> = rx.try_iter().flatten().collect();
    Run {
        report,
        outcomes,
        calls: calls.load(Ordering::SeqCst),
    }
}

/// Every id from 0 to n-1 has exactly one outcome (or is in the not-sent range).
fn assert_each_job_once(run: &Run, n: u64) {
    let mut seen = vec![0u32; n as usize];
    for o in &run.outcomes {
        seen[o.id as usize] += 1;
    }
    if let Some(ns) = run.report.not_sent {
        for id in ns.from_id..ns.from_id + ns.count {
            seen[id as usize] += 1;
        }
    }
    let wrong: Vec<usize> = (0..n as usize).filter(|&i| seen[i] != 1).collect();
    assert!(
        wrong.is_empty(),
        "jobs without exactly one outcome: {wrong:?}"
    );
}

fn ok_count(run: &Run) -> usize {
    run.outcomes
        .iter()
        .filter(|o| o.kind == OutcomeKind::Ok)
        .count()
}

#[test]
fn every_job_ends_exactly_once_and_agents_grow_with_need() {
    let cfg = config(300, 1);
    let layout = cfg.layout.clone();
    let run = run_with(&cfg, "machine-rr", move |_, _, t| {
        (Duration::from_millis(2), Ok(answer(&layout, t)))
    });
    assert_each_job_once(&run, 300);
    assert_eq!(ok_count(&run), 300);
    assert!(run.report.agents_peak > 1, "{:?}", run.report);
    assert!(run.report.agents_peak <= 17, "{:?}", run.report);
}

#[test]
fn failures_on_one_machine_are_retried_elsewhere_and_it_is_ejected() {
    let cfg = config(100, 1);
    let layout = cfg.layout.clone();
    let run = run_with(&cfg, "machine-rr", move |_, _, t| {
        let r = if t == Target::Machine(0) {
            Err(Failure::Status(503))
        } else {
            Ok(answer(&layout, t))
        };
        (Duration::from_micros(300), r)
    });
    assert_each_job_once(&run, 100);
    assert_eq!(ok_count(&run), 100);
    assert_eq!(run.report.ejections, 1);
    assert!(run.outcomes.iter().all(|o| o.machine != Some(0)));
    assert!(run.report.retries + run.report.moves >= 3);
}

#[test]
fn the_retry_budget_bounds_retries_when_everything_fails() {
    let mut cfg = config(50, 1);
    cfg.retry_budget = 7;
    let run = run_with(&cfg, "machine-rr", |_, _, _| {
        (Duration::from_micros(100), Err(Failure::Status(503)))
    });
    assert_each_job_once(&run, 50);
    assert_eq!(ok_count(&run), 0);
    assert_eq!(run.report.retries, 7);
    assert!(run
        .outcomes
        .iter()
        .all(|o| o.kind == OutcomeKind::Failed(Failure::Status(503))));
}

#[test]
fn a_unit_that_resets_two_connections_and_recovers_is_kept() {
    let cfg = config(50, 1);
    let layout = cfg.layout.clone();
    let run = run_with(&cfg, "machine-rr", move |k, _, t| {
        let r = if k < 2 {
            Err(Failure::Connect)
        } else {
            Ok(answer(&layout, t))
        };
        (Duration::from_micros(200), r)
    });
    assert_each_job_once(&run, 50);
    assert_eq!(ok_count(&run), 50);
    assert!(run.report.forwarders_lost.is_empty());
}

#[test]
fn jobs_move_off_a_dead_unit_without_spending_the_budget() {
    let cfg = config(60, 2);
    let layout = cfg.layout.clone();
    let refused = Arc::new(AtomicU64::new(0));
    let refused_in = refused.clone();
    let run = run_with(&cfg, "machine-rr", move |_, f, t| {
        let r = if f == 0 {
            refused_in.fetch_add(1, Ordering::SeqCst);
            Err(Failure::Connect)
        } else {
            Ok(answer(&layout, t))
        };
        (Duration::from_micros(300), r)
    });
    assert_each_job_once(&run, 60);
    assert_eq!(ok_count(&run), 60);
    assert_eq!(run.report.forwarders_lost, vec![0]);
    // Every refused attempt went again, and only those before the unit was taken out spent the
    // budget. (How many were in flight there when it was depends on how soon the agents
    // started: on a loaded machine, as few as one.)
    let r = &run.report;
    assert_eq!(r.moves + r.retries, refused.load(Ordering::SeqCst), "{r:?}");
    assert!(r.retries < u64::from(health::UNIT_SUSPEND_AFTER), "{r:?}");
    assert!(r.moves >= 1, "{r:?}");
}

#[test]
fn when_the_only_unit_is_dead_the_batch_ends_quickly_with_every_job_accounted_for() {
    let cfg = config(100_000, 1);
    let started = Instant::now();
    let run = run_with(&cfg, "machine-rr", |_, _, _| {
        (Duration::from_micros(50), Err(Failure::Connect))
    });
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_each_job_once(&run, 100_000);
    assert_eq!(run.report.forwarders_lost, vec![0]);
    let ns = run.report.not_sent.expect("a not-sent range");
    assert_eq!(ns.kind, OutcomeKind::Failed(Failure::Connect));
    assert!(run.calls < 1000, "{} calls to a dead unit", run.calls);
}

#[test]
fn a_stop_lets_what_is_in_flight_finish_and_records_the_rest_as_one_range() {
    let cfg = config(1_000_000, 1);
    let cancel = cfg.cancel.clone();
    let layout = cfg.layout.clone();
    let run = run_with(&cfg, "machine-rr", move |k, _, t| {
        if k == 200 {
            cancel.store(true, Ordering::SeqCst);
        }
        (Duration::from_micros(200), Ok(answer(&layout, t)))
    });
    assert_each_job_once(&run, 1_000_000);
    let ns = run.report.not_sent.expect("a not-sent range");
    assert_eq!(ns.kind, OutcomeKind::Cancelled);
    assert!(ns.count > 990_000);
    assert_eq!(ok_count(&run) as u64 + ns.count, 1_000_000);
}

#[test]
fn an_answer_naming_a_machine_that_is_not_in_the_system_is_a_bad_response() {
    let cfg = config(20, 1);
    let run = run_with(&cfg, "machine-rr", |_, _, _| {
        (
            Duration::from_micros(100),
            Ok(WorkAnswer {
                machine: "Machine 9".into(),
                region: "mars".into(),
                response_time: 5,
                work_time: 1,
            }),
        )
    });
    assert_each_job_once(&run, 20);
    assert_eq!(ok_count(&run), 0);
    assert!(run
        .outcomes
        .iter()
        .all(|o| o.kind == OutcomeKind::Failed(Failure::BadResponse) && o.machine.is_none()));
}

/// A binder that sends job 0 to machine 0 (which hangs), then hedges it to machine 1.
struct HedgeOnce {
    hedged: bool,
}

impl Binder for HedgeOnce {
    fn next(&mut self, view: &View, job: Option<&JobCtx>) -> Decision {
        let route = |m: u16| Route {
            forwarder: 0,
            target: Target::Machine(m),
        };
        match job {
            Some(j) if j.attempt == 0 && view.alive == 0 => Decision::Send {
                route: route(0),
                more: false,
            },
            _ if !self.hedged && view.now_ms > 20.0 => {
                self.hedged = true;
                Decision::Hedge {
                    job: 0,
                    route: route(1),
                    more: false,
                }
            }
            Some(_) => Decision::Wait { until_ms: None },
            None => Decision::Wait {
                until_ms: Some(view.now_ms + 5.0),
            },
        }
    }
    fn observe(&mut self, _view: &View, _obs: &Observation) {}
    fn reason(&self) -> String {
        String::new()
    }
}

#[test]
fn a_hedge_wins_the_race_and_the_job_still_ends_once() {
    let cfg = config(1, 1);
    let layout = cfg.layout.clone();
    let started = Instant::now();
    let run = run_binder(
        &cfg,
        Box::new(HedgeOnce { hedged: false }),
        move |_, _, t| {
            let delay = if t == Target::Machine(0) {
                Duration::from_millis(3000)
            } else {
                Duration::from_millis(1)
            };
            (delay, Ok(answer(&layout, t)))
        },
    );
    assert_each_job_once(&run, 1);
    assert_eq!(run.report.hedges, 1);
    assert_eq!(run.report.hedges_won, 1);
    assert_eq!(run.outcomes[0].machine, Some(1));
    assert_eq!(run.outcomes[0].attempts, 2);
    // The outcome came with the hedge, and the batch ended without waiting for the hung copy
    // (3 s; half of that is the margin for a loaded machine: with 50 ms of it, this once failed
    // while a compile ran).
    assert!(run.outcomes[0].end_ms < 1500.0, "{:?}", run.outcomes[0]);
    assert!(started.elapsed() < Duration::from_millis(1500));
}

#[test]
fn a_policy_that_never_starts_fails_to_start_cleanly() {
    let layout = Layout::documented();
    let err = by_name("per-region-queues").unwrap().start(&StartInput {
        n: 1,
        layout: &layout,
        forwarder_urls: &["u".to_string()],
        model: None,
        seed: 0,
        time_scale: Default::default(),
    });
    assert!(err.is_err());
}

/// Starts three agent threads, then refuses (as a system out of threads would).
fn three_threads_only(work: Box<dyn FnOnce() + Send>) -> std::io::Result<()> {
    static STARTED: AtomicU64 = AtomicU64::new(0);
    if STARTED.fetch_add(1, Ordering::SeqCst) >= 3 {
        return Err(std::io::Error::other("no more threads"));
    }
    start_agent_thread(work)
}

fn no_thread_at_all(_work: Box<dyn FnOnce() + Send>) -> std::io::Result<()> {
    Err(std::io::Error::other("no threads"))
}

#[test]
fn agents_that_cannot_start_leave_the_jobs_to_those_that_did() {
    let mut cfg = config(200, 1);
    cfg.start_thread = three_threads_only;
    let layout = cfg.layout.clone();
    let run = run_with(&cfg, "machine-rr", move |_, _, t| {
        (Duration::from_micros(300), Ok(answer(&layout, t)))
    });
    assert_each_job_once(&run, 200);
    // Every job answered: none was lost or cancelled with the threads that never started.
    assert_eq!(ok_count(&run), 200);
    assert!(run.report.agents_peak <= 3, "{:?}", run.report);
}

#[test]
fn with_no_thread_at_all_the_calling_thread_runs_the_batch() {
    let mut cfg = config(50, 1);
    cfg.start_thread = no_thread_at_all;
    let layout = cfg.layout.clone();
    let run = run_with(&cfg, "machine-rr", move |_, _, t| {
        (Duration::from_micros(100), Ok(answer(&layout, t)))
    });
    assert_each_job_once(&run, 50);
    assert_eq!(ok_count(&run), 50);
}

#[test]
fn outcomes_taken_for_the_collector_reach_it_even_when_the_batch_ends_meanwhile() {
    // An agent takes a batch of outcomes, then starts another agent before handing them over;
    // the batch may end in that gap. Many short batches with agents growing make it likely.
    for round in 0..200u64 {
        let cfg = config(50, 1);
        let layout = cfg.layout.clone();
        let run = run_with(&cfg, "auto", move |k, _, t| {
            let r = if k < 2 {
                Err(Failure::Connect)
            } else {
                Ok(answer(&layout, t))
            };
            (Duration::from_micros(50 + (k * 37 + round) % 400), r)
        });
        assert_each_job_once(&run, 50);
    }
}

#[test]
fn outcomes_reach_the_collector_promptly_while_every_agent_is_blocked() {
    // Four agents: the first four jobs answer at once, the next four take two seconds. The
    // first four outcomes must not wait for the slow ones (a kill would lose them).
    let mut cfg = config(8, 1);
    cfg.max_agents = 4;
    let layout = cfg.layout.clone();
    let script = move |k: u64, _: usize, t: Target| {
        let delay = if k < 4 {
            Duration::from_millis(5)
        } else {
            Duration::from_millis(2000)
        };
        (delay, Ok(answer(&layout, t)))
    };
    let binder = by_name("machine-rr")
        .unwrap()
        .start(&StartInput {
            n: cfg.n,
            layout: &cfg.layout,
            forwarder_urls: &["unit0".to_string()],
            model: None,
            seed: 1,
            time_scale: Default::default(),
        })
        .unwrap();
    let transport: Arc<dyn Transport> = Arc::new(Scripted {
        script: Arc::new(script),
        calls: Arc::new(AtomicU64::new(0)),
    });
    let (tx, rx): (_, Receiver<Vec<Outcome>>) = crossbeam_channel::unbounded();
    let t0 = Instant::now();
    let first = std::thread::spawn(move || {
        let batch = rx.recv().unwrap();
        (t0.elapsed(), batch.len())
    });
    let _ = dispatch(binder, transport, &cfg, tx, t0);
    let (when, count) = first.join().unwrap();
    assert!(count >= 1);
    assert!(
        when < Duration::from_millis(1000),
        "the first outcomes reached the collector after {when:?}"
    );
}
