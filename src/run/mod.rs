//! `cmdunit N`: one batch end to end — the system, what is known of it, the policy's binder,
//! dispatch, collection, the summary.
//!
//! [`run_batch`] is the whole pipeline as a library call (tests, the lab and the benchmarks use
//! it without the command line); [`args`] turns the command line into a [`RunConfig`]. Each run
//! writes a folder: run.json (what was asked, written first), requests.csv (one row per request,
//! streamed), summary.json, calibration.json (what the batch learned or used) and the charts.

pub mod args;
pub mod bound_cmd;
pub mod calibrate_cmd;
pub mod outdir;
pub mod signals;
pub mod summarize;
pub mod system;

use crate::calibrate::probe::{self, CalibrateError, ProbeConfig, ProbeMode};
use crate::calibrate::{store, Calibration};
use crate::client::{ClientConfig, HttpTransport};
use crate::dispatch::{self, DispatchConfig, DispatchReport};
use crate::endpoint::Layout;
use crate::policy::{PolicyError, StartInput};
use crate::stats::Stats;
use crate::summary::{NotSentRange, Summary};
use crate::timescale::TimeScale;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;
pub use system::EmulateConfig;

/// Where `cmdunit N` sends its requests when told nothing (the original's port).
pub const DEFAULT_FORWARDER: &str = "http://localhost:5000";
/// The largest N: job ids are 32-bit.
pub const MAX_N: u64 = u32::MAX as u64;
/// Attempts in flight at most, by default: far above what the systems measured need (a few
/// hundred), far below a forwarding unit's connection limit.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 512;
/// The largest per-attempt timeout, model seconds (an hour).
pub const MAX_TIMEOUT_S: f64 = 3600.0;

/// One batch, fully specified.
#[derive(Clone, Debug)]
pub struct RunConfig {
    pub n: u64,
    pub policy: String,
    /// Forwarding units to use (ignored with `emulate`).
    pub forwarders: Vec<String>,
    pub emulate: Option<EmulateConfig>,
    /// The machines, when the user names them (`--machines`).
    pub machines: Option<Layout>,
    /// Time scale of the system (an emulator's); real time for a real one.
    pub time_scale: TimeScale,
    pub out_dir: PathBuf,
    /// A calibration file to start from (and to save a calibration pass to).
    pub calibration_file: Option<PathBuf>,
    /// Ignore what earlier runs learned (the cache and `calibration_file`).
    pub recalibrate: bool,
    /// Read and write the user's cache of what runs learned.
    pub use_cache: bool,
    /// How thoroughly to calibrate when a policy needs a model and none is saved.
    pub probe_mode: ProbeMode,
    /// Per-attempt timeout, model ms.
    pub timeout_ms: f64,
    pub retries: Option<u64>,
    pub max_in_flight: usize,
    pub seed: u64,
    /// Messages on stderr.
    pub verbose: bool,
    pub progress: bool,
    pub charts: bool,
    /// Set it to stop the batch (Ctrl-C, SIGTERM).
    pub cancel: Option<Arc<AtomicBool>>,
    /// When the command started (for `wall_ms`).
    pub started: Instant,
}

impl RunConfig {
    /// A batch against `forwarders` with defaults for everything else.
    pub fn new(n: u64, policy: &str, forwarders: Vec<String>, out_dir: PathBuf) -> RunConfig {
        RunConfig {
            n,
            policy: policy.to_string(),
            forwarders,
            emulate: None,
            machines: None,
            time_scale: TimeScale::REAL,
            out_dir,
            calibration_file: None,
            recalibrate: false,
            use_cache: true,
            probe_mode: ProbeMode::Full,
            timeout_ms: 60_000.0,
            retries: None,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            seed: 0,
            verbose: false,
            progress: false,
            charts: true,
            cancel: None,
            started: Instant::now(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{0}")]
    Usage(String),
    #[error(
        "cannot reach the forwarding unit at {0}: start one with `cmdunit serve`, or run against \
         the embedded emulator with `--emulate`"
    )]
    Unreachable(String),
    #[error("cannot start the emulator: {0}")]
    Emulator(#[from] crate::emulator::EmulatorError),
    #[error("cannot start the batch: {0}")]
    Policy(#[from] PolicyError),
    #[error("{0}")]
    Store(#[from] store::StoreError),
    #[error("cannot write {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> RunError + '_ {
    move |source| RunError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// What was asked, written before the first request so that a killed run can be summarized.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunRecord {
    pub n: u64,
    pub policy: String,
    pub forwarders: Vec<String>,
    pub machines: Vec<String>,
    pub time_scale: f64,
    pub topology: Option<String>,
    pub seed: u64,
    pub started_unix_s: u64,
}

/// What the batch started from, and what it cost to get.
struct Start {
    model: Option<Calibration>,
    source: &'static str,
    cost_ms: f64,
    cost_requests: u64,
}

/// Runs one batch, writes its folder, returns its summary.
pub fn run_batch(cfg: &RunConfig) -> Result<Summary, RunError> {
    if cfg.n == 0 || cfg.n > MAX_N {
        return Err(RunError::Usage(format!("N must be between 1 and {MAX_N}")));
    }
    if !(cfg.timeout_ms.is_finite()
        && cfg.timeout_ms > 0.0
        && cfg.timeout_ms <= MAX_TIMEOUT_S * 1000.0)
    {
        return Err(RunError::Usage(format!(
            "--timeout must be > 0 and at most {MAX_TIMEOUT_S} s"
        )));
    }
    let policy = crate::policy::by_name(&cfg.policy).ok_or_else(|| {
        RunError::Usage(format!(
            "unknown policy '{}' (`cmdunit policies` lists them)",
            cfg.policy
        ))
    })?;
    let sys = system::open(
        &cfg.forwarders,
        cfg.emulate.as_ref(),
        cfg.machines.as_ref(),
        cfg.time_scale,
        cfg.seed,
        cfg.timeout_ms,
    )?;
    std::fs::create_dir_all(&cfg.out_dir).map_err(io_err(&cfg.out_dir))?;
    let record = RunRecord {
        n: cfg.n,
        policy: cfg.policy.clone(),
        forwarders: sys.urls.clone(),
        machines: sys.layout.machines.iter().map(|m| m.to_string()).collect(),
        time_scale: cfg.time_scale.factor(),
        topology: sys.topology.clone(),
        seed: cfg.seed,
        started_unix_s: crate::calibrate::unix_now(),
    };
    let run_json = cfg.out_dir.join("run.json");
    crate::files::write_atomic(
        &run_json,
        serde_json::to_string_pretty(&record)
            .unwrap_or_default()
            .as_bytes(),
    )
    .map_err(io_err(&run_json))?;

    let start = starting_point(cfg, &sys, policy.needs_model())?;
    let binder = policy.start(&StartInput {
        n: cfg.n,
        layout: &sys.layout,
        forwarder_urls: &sys.urls,
        model: start.model.as_ref(),
        seed: cfg.seed,
        time_scale: cfg.time_scale,
    })?;

    // The batch.
    let (tx, rx) = crossbeam_channel::unbounded();
    let csv = cfg.out_dir.join("requests.csv");
    let collector = crate::collect::spawn(
        rx,
        &csv,
        sys.layout.clone(),
        sys.urls.len(),
        progress_bar(cfg),
    )
    .map_err(io_err(&csv))?;
    let transport: Arc<dyn crate::client::Transport> = Arc::new(HttpTransport::new(
        &sys.urls,
        &sys.layout,
        ClientConfig {
            timeout: cfg.time_scale.to_wall(cfg.timeout_ms),
            max_idle: sys.urls.len(),
        },
    ));
    let dcfg = DispatchConfig {
        n: cfg.n,
        forwarders: sys.urls.len(),
        layout: sys.layout.clone(),
        time_scale: cfg.time_scale,
        retry_budget: cfg.retries.unwrap_or((cfg.n / 5).max(3)),
        max_attempts: 4,
        eject_after: 3,
        eject_ms: 5_000.0,
        max_agents: cfg.max_in_flight.max(1),
        cancel: cfg
            .cancel
            .clone()
            .unwrap_or_else(|| Arc::new(AtomicBool::new(false))),
        start_thread: dispatch::start_agent_thread,
    };
    let t0 = Instant::now();
    let lead_ms = cfg.time_scale.to_model_ms(t0 - cfg.started);
    let (report, binder) = dispatch::dispatch(binder, transport, &dcfg, tx, t0);
    let predicted = binder.predicted_makespan_ms();
    let mut stats = collector
        .join()
        .map_err(|_| RunError::Io {
            path: csv.display().to_string(),
            source: std::io::Error::other("the collector thread panicked"),
        })?
        .map_err(io_err(&csv))?;
    if let Some(ns) = &report.not_sent {
        stats.record_not_sent(ns);
    }
    // Every job has ended once by now; should one not have reached the collector, the summary
    // says so rather than report fewer jobs than were asked for.
    let unrecorded = stats.count_unrecorded(cfg.n);
    if unrecorded > 0 {
        eprintln!("warning: {unrecorded} job(s) ended without an outcome reaching requests.csv");
    }
    if let Some(emu) = sys.emulator {
        emu.shutdown();
    }

    // What was learned, for the next run and for this run's bound.
    let learned = binder.learned().map(|l| store::adopt(&l, &sys.urls));
    if let Some(l) = &learned {
        save_learned(cfg, &sys.cache_key, l, stats.ok);
    }
    let used = learned.clone().or(start.model.clone());
    if let Some(c) = &used {
        let path = cfg.out_dir.join("calibration.json");
        store::save(c, &path)?;
    }
    let (bound, bound_source) = match (&sys.truth, &start.model, &learned) {
        (Some(t), _, _) => (crate::bound::lower_bound(cfg.n, t), "model"),
        (None, Some(m), _) if start.source != "cache" => {
            (crate::bound::lower_bound(cfg.n, m), "calibration")
        }
        (None, _, Some(l)) => (crate::bound::lower_bound(cfg.n, l), "learned"),
        (None, Some(m), None) => (crate::bound::lower_bound(cfg.n, m), "calibration"),
        (None, None, None) => (
            crate::bound::lower_bound(cfg.n, &Calibration::empty(&sys.layout, &sys.urls)),
            "none",
        ),
    };
    if cfg.verbose && !report.forwarders_lost.is_empty() {
        let lost: Vec<&str> = report
            .forwarders_lost
            .iter()
            .map(|&f| sys.urls[f].as_str())
            .collect();
        eprintln!(
            "forwarding unit(s) lost mid-run: {} ({} jobs moved to the others)",
            lost.join(", "),
            report.moves
        );
    }

    let summary = summarize_run(SummaryParts {
        cfg,
        record: &record,
        stats: &stats,
        report: &report,
        layout: &sys.layout,
        urls: &sys.urls,
        reason: binder.reason(),
        policy_ran: policy.name(),
        predicted,
        bound,
        bound_source,
        start: &start,
        lead_ms,
    });
    let path = cfg.out_dir.join("summary.json");
    crate::files::write_atomic(
        &path,
        crate::printer::render(crate::printer::Format::Json, &summary).as_bytes(),
    )
    .map_err(io_err(&path))?;
    if cfg.charts {
        if let Err(e) = dispatch::charts::draw(&cfg.out_dir, &stats, &sys.layout) {
            eprintln!("warning: charts not drawn: {e}");
        }
    }
    if summary.ok == 0 && only_connection_failures(&summary) {
        return Err(RunError::Unreachable(sys.urls.join(", ")));
    }
    Ok(summary)
}

/// True when every failure is a refused or dropped connection: nothing was ever reached.
fn only_connection_failures(s: &Summary) -> bool {
    s.failed > 0
        && s.failures
            .iter()
            .all(|(k, _)| k == "connect" || k == "cancelled")
        && s.failures.get("connect").copied().unwrap_or(0) > 0
}

/// Finds what is known before the first send: a calibration file, the cache, or — for a policy
/// that plans from a model and has none — a calibration pass now.
fn starting_point(
    cfg: &RunConfig,
    sys: &system::System,
    needs_model: bool,
) -> Result<Start, RunError> {
    let none = Start {
        model: None,
        source: "none",
        cost_ms: 0.0,
        cost_requests: 0,
    };
    if !cfg.recalibrate {
        if let Some(file) = cfg.calibration_file.as_ref().filter(|f| f.exists()) {
            // A file the user named that cannot be trusted is a bad command line: refused with
            // its reason, never used.
            let saved = store::load(file).map_err(|e| RunError::Usage(e.to_string()))?;
            match store::unusable(&saved, &sys.layout, &sys.urls) {
                None => {
                    if cfg.verbose {
                        eprintln!("calibration: starting from {}", file.display());
                    }
                    return Ok(Start {
                        model: Some(store::adopt(&saved, &sys.urls)),
                        source: "file",
                        ..none
                    });
                }
                Some(why) if cfg.verbose => {
                    eprintln!("calibration: not using {}: {why}", file.display())
                }
                Some(_) => {}
            }
        }
        if cfg.use_cache {
            if let Some(path) = store::cache_file(&sys.cache_key).filter(|p| p.exists()) {
                // What an earlier run left is only a seed: a bad or stale one is passed over
                // (the batch learns anyway, and overwrites it).
                let saved =
                    store::load(&path).map_err(|e| e.to_string()).and_then(
                        |c| match store::unusable(&c, &sys.layout, &sys.urls) {
                            None => Ok(c),
                            Some(why) => Err(format!("{}: {why}", path.display())),
                        },
                    );
                match saved {
                    Ok(saved) => {
                        return Ok(Start {
                            model: Some(store::adopt(&saved, &sys.urls)),
                            source: "cache",
                            ..none
                        });
                    }
                    Err(why) if cfg.verbose => eprintln!("calibration: not using the cache: {why}"),
                    Err(_) => {}
                }
            }
        }
    }
    if !needs_model {
        return Ok(none);
    }
    if cfg.verbose {
        eprintln!(
            "calibration: policy {} plans from a model; measuring the system first",
            cfg.policy
        );
    }
    let pcfg = ProbeConfig {
        mode: cfg.probe_mode,
        time_scale: cfg.time_scale,
        timeout_ms: cfg.timeout_ms,
        verbose: cfg.verbose,
        ..ProbeConfig::default()
    };
    let cal = probe::calibrate(&sys.layout, &sys.urls, &pcfg).map_err(|e| match e {
        CalibrateError::Unreachable(u) => RunError::Unreachable(u),
    })?;
    if let Some(file) = &cfg.calibration_file {
        store::save(&cal, file)?;
    }
    Ok(Start {
        cost_ms: cal.cost.model_ms,
        cost_requests: cal.cost.requests,
        model: Some(cal),
        source: if cfg.probe_mode == ProbeMode::Full {
            "probed"
        } else {
            "quick"
        },
    })
}

/// Keeps what the batch learned for the next run against the same system (only if it learned
/// anything: a batch that reached nothing must not erase a good estimate).
fn save_learned(cfg: &RunConfig, key: &str, learned: &Calibration, ok: u64) {
    if !cfg.use_cache || ok == 0 || !learned.machines.iter().any(|m| m.up) {
        return;
    }
    if let Some(path) = store::cache_file(key) {
        if let Err(e) = store::save(learned, &path) {
            if cfg.verbose {
                eprintln!("warning: {e}");
            }
        }
    }
}

struct SummaryParts<'a> {
    cfg: &'a RunConfig,
    record: &'a RunRecord,
    stats: &'a Stats,
    report: &'a DispatchReport,
    layout: &'a Layout,
    urls: &'a [String],
    reason: String,
    policy_ran: &'static str,
    predicted: Option<f64>,
    bound: crate::bound::Bound,
    bound_source: &'static str,
    start: &'a Start,
    lead_ms: f64,
}

fn summarize_run(p: SummaryParts) -> Summary {
    let s = p.stats;
    let cfg = p.cfg;
    let model_time = !cfg.time_scale.is_real();
    Summary {
        version: 2,
        n: cfg.n,
        policy: p.policy_ran.to_string(),
        requested_policy: cfg.policy.clone(),
        reason: p.reason,
        ok: s.ok,
        failed: s.failed,
        cancelled: s.cancelled,
        failures: s.failures.clone(),
        retries: p.report.retries,
        moves: p.report.moves,
        ejections: p.report.ejections,
        forwarders_lost: p
            .report
            .forwarders_lost
            .iter()
            .map(|&f| p.urls[f].clone())
            .collect(),
        hedges: p.report.hedges,
        hedges_won: p.report.hedges_won,
        agents_peak: p.report.agents_peak as u64,
        not_sent: p.report.not_sent.map(|n| NotSentRange {
            from_id: n.from_id,
            count: n.count,
            outcome: n.kind.class(),
        }),
        wall_ms: p.lead_ms + s.makespan_ms,
        makespan_ms: s.makespan_ms,
        lower_bound_ms: finite_or_zero(p.bound.lower_bound_ms),
        lower_bound_source: p.bound_source.into(),
        machines_bound_ms: finite_or_zero(p.bound.machines_ms),
        forwarders_bound_ms: finite_or_zero(p.bound.forwarders_ms),
        // The bound is that of all N jobs: a batch stopped before it sent them all has no
        // efficiency to report (it would read as thousands of times faster than possible).
        efficiency: if s.makespan_ms > 0.0
            && p.bound.lower_bound_ms.is_finite()
            && p.report.not_sent.is_none()
        {
            p.bound.lower_bound_ms / s.makespan_ms
        } else {
            0.0
        },
        predicted_makespan_ms: p.predicted,
        completion_ms: s.completion.quantiles(),
        latency_ms: s.latency.quantiles(),
        response_time_ms: s.response_time.quantiles(),
        per_machine: p
            .layout
            .machines
            .iter()
            .zip(&s.per_machine)
            .map(|(m, c)| (m.to_string(), *c))
            .collect(),
        per_forwarder: p
            .urls
            .iter()
            .zip(&s.per_forwarder)
            .map(|(u, c)| (u.clone(), *c))
            .collect::<BTreeMap<_, _>>(),
        forwarders: p.urls.to_vec(),
        calibration_ms: p.start.cost_ms,
        calibration_requests: p.start.cost_requests,
        calibration_source: p.start.source.into(),
        time_scale: (cfg.emulate.is_some() || model_time).then_some(cfg.time_scale.factor()),
        topology: p.record.topology.clone(),
        model_time,
        seed: cfg.seed,
        started_unix_s: p.record.started_unix_s,
    }
}

fn finite_or_zero(x: f64) -> f64 {
    if x.is_finite() {
        x
    } else {
        0.0
    }
}

fn progress_bar(cfg: &RunConfig) -> ProgressBar {
    if !cfg.progress || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(cfg.n), ProgressDrawTarget::stderr());
    if let Ok(style) =
        ProgressStyle::with_template("{bar:40} {pos}/{len} requests  {elapsed_precise}  eta {eta}")
    {
        bar.set_style(style);
    }
    bar
}
