//! `cmdunit N`: one batch end to end — calibrate, plan, dispatch, collect, report.
//!
//! [`run_batch`] is the whole pipeline as a library call (tests, the lab and the benchmarks use
//! it without the CLI); [`run`] only turns the command line into a [`RunConfig`], prints the
//! summary and maps the outcome to an exit code. Each run writes a folder: requests.csv (one row
//! per request, streamed), summary.json, calibration.json and the charts.

use crate::calibrate::probe::{self, CalibrateError, ProbeConfig, ProbeMode};
use crate::calibrate::{store, Calibration};
use crate::client::ClientConfig;
use crate::dispatch::{self, DispatchConfig};
use crate::emulator::topology::Topology;
use crate::policy::{PlanInput, PolicyError};
use crate::printer::{self, Format};
use crate::summary::Summary;
use crate::usage::{check_url, parse_n, UsageError};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Where `cmdunit N` sends its requests when told nothing (the original's port).
pub const DEFAULT_FORWARDER: &str = "http://localhost:5000";

/// Batches of at least this many requests pay for a full calibration; smaller ones only wake
/// the machines and use those answers as latency probes (a full pass costs ~100 requests and a
/// few seconds, more than a small batch itself).
pub const FULL_CALIBRATION_FROM: usize = 200;

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Number of requests to send.
    #[arg(allow_negative_numbers = true)]
    pub n: Option<String>,

    /// How to spread the batch (`cmdunit policies` lists them).
    #[arg(long, short = 'p', default_value = "auto")]
    pub policy: String,

    /// Forwarding unit URL; repeat it or give a comma-separated list for several units.
    #[arg(
        long = "forwarder",
        short = 'f',
        env = "CMDUNIT_FORWARDER",
        value_delimiter = ',',
        value_name = "URL"
    )]
    pub forwarder: Vec<String>,

    /// Start the embedded emulator in-process on a free loopback port and run against it.
    #[arg(long)]
    pub emulate: bool,

    /// Topology file for --emulate (default: the measured 2021 system).
    #[arg(long, value_name = "FILE")]
    pub topology: Option<PathBuf>,

    /// Emulator time scale: every model duration takes this factor on the wall clock. Results are
    /// reported in model time.
    #[arg(long, value_name = "F")]
    pub time_scale: Option<f64>,

    /// Number of emulated forwarding units (with --emulate).
    #[arg(long, value_name = "K", default_value_t = 1)]
    pub forwarders: usize,

    /// Start the emulated machines awake (no cold start).
    #[arg(long)]
    pub awake: bool,

    /// Run folder (default: a new folder under results/runs/).
    #[arg(long, short = 'o', value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// Output format on stdout.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,

    /// Calibration file to reuse while fresh and to save to.
    #[arg(long, value_name = "FILE")]
    pub calibration: Option<PathBuf>,

    /// Measure again even when the calibration file is fresh.
    #[arg(long)]
    pub recalibrate: bool,

    /// Per-attempt timeout, model seconds.
    #[arg(long, value_name = "SECS", default_value_t = 60.0)]
    pub timeout: f64,

    /// Retry budget for the batch (default: 20% of N, at least 3).
    #[arg(long, value_name = "R")]
    pub retries: Option<usize>,

    /// Seed for the randomised policies and the emulator.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,

    /// Skip the PNG/SVG charts (requests.csv and summary.json are still written).
    #[arg(long)]
    pub no_charts: bool,

    /// No progress bar or calibration messages on stderr.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

/// Start the embedded emulator for the batch.
#[derive(Clone, Debug)]
pub struct EmulateConfig {
    pub forwarders: usize,
    pub awake: bool,
}

/// One batch, fully specified.
#[derive(Clone, Debug)]
pub struct RunConfig {
    pub n: usize,
    pub policy: String,
    /// Forwarding units to use (ignored with `emulate`).
    pub forwarders: Vec<String>,
    pub emulate: Option<EmulateConfig>,
    /// The system's machines (and the prior for calibration); default topology when `None`.
    pub topology: Option<Topology>,
    /// Time scale of the system (an emulator's); 1.0 for a real one.
    pub time_scale: f64,
    pub out_dir: PathBuf,
    pub calibration_file: Option<PathBuf>,
    pub recalibrate: bool,
    /// `None`: full from [`FULL_CALIBRATION_FROM`] requests, quick below.
    pub calibration_mode: Option<ProbeMode>,
    /// Per-attempt timeout, model ms.
    pub timeout_ms: f64,
    pub retries: Option<usize>,
    pub seed: u64,
    /// Calibration messages on stderr.
    pub verbose: bool,
    pub progress: bool,
    pub charts: bool,
    /// Set it to stop the batch (Ctrl-C).
    pub cancel: Option<Arc<AtomicBool>>,
}

impl RunConfig {
    /// A batch against `forwarders` with defaults for everything else.
    pub fn new(n: usize, policy: &str, forwarders: Vec<String>, out_dir: PathBuf) -> RunConfig {
        RunConfig {
            n,
            policy: policy.to_string(),
            forwarders,
            emulate: None,
            topology: None,
            time_scale: 1.0,
            out_dir,
            calibration_file: None,
            recalibrate: false,
            calibration_mode: None,
            timeout_ms: 60_000.0,
            retries: None,
            seed: 0,
            verbose: false,
            progress: false,
            charts: true,
            cancel: None,
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
    Emulator(String),
    #[error("cannot plan the batch: {0}")]
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

/// Calibrates, plans and runs one batch, writes its folder, returns its summary.
pub fn run_batch(cfg: &RunConfig) -> Result<Summary, RunError> {
    if cfg.n == 0 || cfg.n > u32::MAX as usize {
        return Err(RunError::Usage(format!(
            "N must be between 1 and {}",
            u32::MAX
        )));
    }
    if !(cfg.time_scale.is_finite() && cfg.time_scale > 0.0) {
        return Err(RunError::Usage("--time-scale must be > 0".into()));
    }
    if !(cfg.timeout_ms.is_finite() && cfg.timeout_ms > 0.0) {
        return Err(RunError::Usage("--timeout must be > 0".into()));
    }
    let policy = crate::policy::by_name(&cfg.policy).ok_or_else(|| {
        RunError::Usage(format!(
            "unknown policy '{}' (`cmdunit policies` lists them)",
            cfg.policy
        ))
    })?;
    let topology = cfg.topology.clone().unwrap_or_default();

    // The system: an emulator started here, or the given units.
    let emulator = match &cfg.emulate {
        Some(e) => Some(start_emulator(&topology, e, cfg)?),
        None => None,
    };
    let urls = match &emulator {
        Some(emu) => emu.forwarder_urls(),
        None => cfg.forwarders.clone(),
    };
    if urls.is_empty() {
        return Err(RunError::Usage("no forwarding unit given".into()));
    }
    std::fs::create_dir_all(&cfg.out_dir).map_err(io_err(&cfg.out_dir))?;

    let cal = calibration(cfg, &topology, &urls, emulator.is_some())?;
    let layout = cal.layout();

    let plan = policy.plan(&PlanInput {
        n: cfg.n,
        calibration: &cal,
        layout: &layout,
        seed: cfg.seed,
    })?;
    let bound = crate::bound::lower_bound(cfg.n, &cal);
    if cfg.verbose {
        eprintln!(
            "plan: {} over {} queue(s), {} agent(s): {}",
            plan.policy,
            plan.queues.len(),
            plan.queues.iter().map(|q| q.agents).sum::<usize>(),
            plan.reason
        );
    }

    // The batch.
    let progress = progress_bar(cfg);
    let (tx, rx) = crossbeam_channel::unbounded();
    let csv = cfg.out_dir.join("requests.csv");
    let collector = dispatch::collector::spawn(rx, &csv, layout.clone(), urls.len(), progress)
        .map_err(io_err(&csv))?;
    let retry_budget = cfg.retries.unwrap_or((cfg.n / 5).max(3));
    let dcfg = DispatchConfig {
        forwarders: urls.clone(),
        client: ClientConfig {
            timeout: wall(cfg.timeout_ms, cfg.time_scale),
            max_idle: urls.len().max(4),
        },
        time_scale: cfg.time_scale,
        retry_budget,
        max_attempts: 4,
        eject_after: 3,
        eject_ms: 5_000.0,
        cancel: cfg
            .cancel
            .clone()
            .unwrap_or_else(|| Arc::new(AtomicBool::new(false))),
    };
    let started_unix_s = unix_now();
    let predicted = plan.predicted_makespan_ms;
    let (plan_policy, plan_reason) = (plan.policy.clone(), plan.reason.clone());
    let t0 = Instant::now();
    let report = dispatch::dispatch(plan, &cal, policy.as_ref(), &dcfg, tx, t0);
    let wall_ms = t0.elapsed().as_secs_f64() * 1000.0;
    let stats = collector
        .join()
        .map_err(|_| RunError::Io {
            path: csv.display().to_string(),
            source: std::io::Error::other("the collector thread panicked"),
        })?
        .map_err(io_err(&csv))?;
    if let Some(emu) = emulator {
        emu.shutdown();
    }
    if cfg.verbose && !report.forwarders_lost.is_empty() {
        let lost: Vec<&str> = report
            .forwarders_lost
            .iter()
            .map(|&f| urls[f].as_str())
            .collect();
        eprintln!(
            "forwarding unit(s) lost mid-run: {} ({} jobs moved to the others)",
            lost.join(", "),
            report.moves
        );
    }

    let model_time = cfg.time_scale != 1.0;
    let summary = Summary {
        version: 1,
        n: cfg.n as u64,
        policy: plan_policy,
        requested_policy: cfg.policy.clone(),
        reason: plan_reason,
        ok: stats.ok,
        failed: stats.failed,
        cancelled: stats.cancelled,
        failures: stats.failures.clone(),
        retries: stats.retries,
        moves: report.moves,
        ejections: report.ejections,
        forwarders_lost: report
            .forwarders_lost
            .iter()
            .map(|&f| urls[f].clone())
            .collect(),
        makespan_ms: stats.makespan_ms,
        lower_bound_ms: bound.lower_bound_ms,
        machines_bound_ms: bound.machines_ms,
        forwarders_bound_ms: bound.forwarders_ms,
        efficiency: if stats.makespan_ms > 0.0 {
            bound.lower_bound_ms / stats.makespan_ms
        } else {
            0.0
        },
        predicted_makespan_ms: predicted,
        completion_ms: stats.completion.quantiles(),
        latency_ms: stats.latency.quantiles(),
        response_time_ms: stats.response_time.quantiles(),
        per_machine: layout
            .machines
            .iter()
            .zip(&stats.per_machine)
            .map(|(m, c)| (m.to_string(), *c))
            .collect(),
        per_forwarder: urls
            .iter()
            .zip(&stats.per_forwarder)
            .map(|(u, c)| (u.clone(), *c))
            .collect::<BTreeMap<_, _>>(),
        forwarders: urls.clone(),
        calibration_ms: cal.cost.model_ms,
        calibration_requests: cal.cost.requests,
        calibration_source: cal.source.clone(),
        time_scale: (cfg.emulate.is_some() || model_time).then_some(cfg.time_scale),
        topology: cfg.emulate.as_ref().map(|_| topology.name.clone()),
        model_time,
        seed: cfg.seed,
        started_unix_s,
        wall_ms,
    };
    let path = cfg.out_dir.join("summary.json");
    std::fs::write(&path, printer::render(Format::Json, &summary)).map_err(io_err(&path))?;
    if cfg.charts {
        if let Err(e) = dispatch::charts::draw(&cfg.out_dir, &stats, &layout) {
            eprintln!("warning: charts not drawn: {e}");
        }
    }
    Ok(summary)
}

/// Measures the system, or reuses a fresh saved calibration; saves the result.
fn calibration(
    cfg: &RunConfig,
    topology: &Topology,
    urls: &[String],
    emulating: bool,
) -> Result<Calibration, RunError> {
    let prior = Calibration::from_topology(topology, urls);
    let mut start = prior.clone();
    let mut mode = cfg
        .calibration_mode
        .unwrap_or(if cfg.n >= FULL_CALIBRATION_FROM {
            ProbeMode::Full
        } else {
            ProbeMode::Quick
        });
    if let Some(file) = cfg.calibration_file.as_ref().filter(|f| f.exists()) {
        if !cfg.recalibrate {
            let saved = store::load(file)?;
            match store::unusable(&saved, &prior, !emulating) {
                None => {
                    start = store::adopt(&saved, &prior);
                    mode = ProbeMode::Refresh;
                    if cfg.verbose {
                        eprintln!("calibration: reusing {}", file.display());
                    }
                }
                Some(why) if cfg.verbose => {
                    eprintln!("calibration: not reusing {}: {why}", file.display())
                }
                Some(_) => {}
            }
        }
    }
    let probe_cfg = ProbeConfig {
        mode,
        time_scale: cfg.time_scale,
        timeout_ms: cfg.timeout_ms,
        verbose: cfg.verbose,
        ..ProbeConfig::default()
    };
    let cal = probe::calibrate(&start, &probe_cfg).map_err(|e| match e {
        CalibrateError::Unreachable(u) => RunError::Unreachable(u),
    })?;
    if cfg.verbose {
        eprintln!(
            "calibration: {} requests, {:.1} s model time ({})",
            cal.cost.requests,
            cal.cost.model_ms / 1000.0,
            cal.source
        );
        let down: Vec<String> = cal
            .machines
            .iter()
            .filter(|m| !m.up)
            .map(|m| m.id.to_string())
            .collect();
        if !down.is_empty() {
            eprintln!("calibration: down and left out: {}", down.join(", "));
        }
    }
    store::save(&cal, &cfg.out_dir.join("calibration.json"))?;
    if let Some(file) = &cfg.calibration_file {
        if mode != ProbeMode::Refresh {
            store::save(&cal, file)?;
        }
    }
    Ok(cal)
}

fn start_emulator(
    topology: &Topology,
    e: &EmulateConfig,
    cfg: &RunConfig,
) -> Result<crate::emulator::Emulator, RunError> {
    let ecfg = crate::emulator::EmulatorConfig {
        topology: topology.clone(),
        forwarders: e.forwarders.max(1),
        time_scale: cfg.time_scale,
        seed: cfg.seed,
        awake: e.awake,
        ..crate::emulator::EmulatorConfig::default()
    };
    crate::emulator::Emulator::start(ecfg).map_err(|err| RunError::Emulator(err.to_string()))
}

fn wall(model_ms: f64, scale: f64) -> Duration {
    Duration::from_secs_f64((model_ms * scale / 1000.0).max(0.001))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn progress_bar(cfg: &RunConfig) -> ProgressBar {
    if !cfg.progress || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(cfg.n as u64), ProgressDrawTarget::stderr());
    if let Ok(style) =
        ProgressStyle::with_template("{bar:40} {pos}/{len} requests  {elapsed_precise}  eta {eta}")
    {
        bar.set_style(style);
    }
    bar
}

/// The Ctrl-C flag, installed once per process: the first Ctrl-C stops dispatching, a second
/// one exits at once.
fn interrupt_flag() -> Arc<AtomicBool> {
    static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();
    FLAG.get_or_init(|| {
        let flag = Arc::new(AtomicBool::new(false));
        let f = flag.clone();
        let _ = ctrlc::set_handler(move || {
            if f.swap(true, Ordering::SeqCst) {
                std::process::exit(130);
            }
            eprintln!("\ninterrupted: no new requests; waiting for those in flight (Ctrl-C again to quit now)");
        });
        flag
    })
    .clone()
}

fn default_out_dir(n: usize, policy: &str) -> PathBuf {
    let secs = unix_now();
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let stamp = format!(
        "{y:04}{m:02}{d:02}-{:02}{:02}{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    );
    let base = PathBuf::from("results/runs");
    let mut dir = base.join(format!("{stamp}-{policy}-n{n}"));
    let mut k = 2;
    while dir.exists() {
        dir = base.join(format!("{stamp}-{policy}-n{n}-{k}"));
        k += 1;
    }
    dir
}

/// `cmdunit N …` from the command line.
pub fn run(args: RunArgs) -> anyhow::Result<()> {
    let n = parse_n(args.n.as_deref(), u64::from(u32::MAX)).map_err(UsageError)? as usize;
    if crate::policy::by_name(&args.policy).is_none() {
        return Err(UsageError(format!(
            "unknown policy '{}' (`cmdunit policies` lists them)",
            args.policy
        ))
        .into());
    }
    if let Some(s) = args.time_scale {
        if !(s.is_finite() && s > 0.0) {
            return Err(UsageError(format!("--time-scale must be > 0, got {s}")).into());
        }
    }
    if !(args.timeout.is_finite() && args.timeout > 0.0) {
        return Err(UsageError(format!("--timeout must be > 0, got {}", args.timeout)).into());
    }
    if args.forwarders == 0 {
        return Err(UsageError("--forwarders must be at least 1".into()).into());
    }
    let forwarders = if args.emulate {
        Vec::new()
    } else {
        let given: Vec<String> = args
            .forwarder
            .iter()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        let given = if given.is_empty() {
            vec![DEFAULT_FORWARDER.to_string()]
        } else {
            given
        };
        given
            .iter()
            .map(|u| check_url(u))
            .collect::<Result<Vec<_>, _>>()
            .map_err(UsageError)?
    };
    let topology = match &args.topology {
        Some(path) => Some(Topology::load(path).map_err(|e| UsageError(e.to_string()))?),
        None => None,
    };
    let out_dir = args
        .out
        .clone()
        .unwrap_or_else(|| default_out_dir(n, &args.policy));
    let mut cfg = RunConfig::new(n, &args.policy, forwarders, out_dir.clone());
    cfg.emulate = args.emulate.then_some(EmulateConfig {
        forwarders: args.forwarders,
        awake: args.awake,
    });
    cfg.topology = topology;
    cfg.time_scale = args.time_scale.unwrap_or(1.0);
    cfg.calibration_file = args.calibration.clone();
    cfg.recalibrate = args.recalibrate;
    cfg.timeout_ms = args.timeout * 1000.0;
    cfg.retries = args.retries;
    cfg.seed = args.seed;
    cfg.charts = !args.no_charts;
    cfg.verbose = !args.quiet;
    cfg.progress = !args.quiet;
    cfg.cancel = Some(interrupt_flag());

    let summary = match run_batch(&cfg) {
        Ok(s) => s,
        Err(RunError::Usage(m)) => return Err(UsageError(m).into()),
        Err(e) => return Err(e.into()),
    };
    print!("{}", printer::render(args.format, &summary));
    if !args.quiet {
        eprintln!("results: {}", out_dir.display());
    }
    if summary.failed > 0 {
        anyhow::bail!(
            "{} of {} requests did not succeed ({}); see {}",
            summary.failed,
            summary.n,
            summary
                .failures
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", "),
            out_dir.join("requests.csv").display()
        );
    }
    Ok(())
}
