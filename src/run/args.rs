//! `cmdunit N …` from the command line: the arguments, checked where they enter, turned into a
//! [`RunConfig`]; the summary printed; the outcome mapped to an error the binary turns into an
//! exit code.

use super::{
    run_batch, EmulateConfig, RunConfig, RunError, DEFAULT_FORWARDER, MAX_N, MAX_TIMEOUT_S,
};
use crate::calibrate::probe::ProbeMode;
use crate::emulator::topology::Topology;
use crate::endpoint::Layout;
use crate::printer::{self, Format};
use crate::timescale::TimeScale;
use crate::usage::{check_positive, check_url, parse_n, UsageError};
use std::path::PathBuf;
use std::time::Instant;

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Number of requests to send (1 to 4294967295).
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

    /// The machines, e.g. asia/0,asia/1,emea/0 (default: what the forwarding unit describes at
    /// GET /, else the service's documented five).
    #[arg(long, value_name = "LIST")]
    pub machines: Option<String>,

    /// Start the embedded emulator in-process on free loopback ports and run against it.
    #[arg(long)]
    pub emulate: bool,

    /// Topology file for --emulate (default: the measured 2021 system).
    #[arg(long, value_name = "FILE")]
    pub topology: Option<PathBuf>,

    /// Time scale of the system: every model duration takes this factor on the wall clock
    /// (an emulator's --time-scale; more than 0, at most 1000). Results are reported in model
    /// time.
    #[arg(long, value_name = "F", allow_negative_numbers = true)]
    pub time_scale: Option<f64>,

    /// Number of emulated forwarding units (with --emulate; 1 to 64).
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

    /// Calibration file to start from while fresh (and to save a calibration pass to).
    #[arg(long, value_name = "FILE")]
    pub calibration: Option<PathBuf>,

    /// Start from nothing: ignore what earlier runs learned (the cache and --calibration).
    #[arg(long)]
    pub recalibrate: bool,

    /// Neither read nor write the cache of what runs learned ($XDG_CACHE_HOME/cmdunit).
    #[arg(long)]
    pub no_cache: bool,

    /// Per-attempt timeout, model seconds (more than 0, at most 3600). It also bounds how long
    /// a sleeping machine may take to wake and answer.
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = 60.0,
        allow_negative_numbers = true
    )]
    pub timeout: f64,

    /// Retry budget for the batch, 0 or more (default: 20% of N, at least 3).
    #[arg(long, value_name = "R")]
    pub retries: Option<u64>,

    /// Attempts in flight at most (agent threads; 1 to 16384).
    #[arg(long, value_name = "K", default_value_t = super::DEFAULT_MAX_IN_FLIGHT)]
    pub max_in_flight: usize,

    /// Seed for the randomised policies and the emulator.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,

    /// Skip the PNG/SVG charts (requests.csv and summary.json are still written).
    #[arg(long)]
    pub no_charts: bool,

    /// No progress bar or messages on stderr.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

/// The largest `--forwarders` for an emulated system.
const MAX_EMULATED_UNITS: usize = 64;
/// The largest `--max-in-flight`.
const MAX_IN_FLIGHT: usize = 16_384;

/// The command line as a batch configuration, every value checked.
pub fn config(args: &RunArgs, started: Instant) -> Result<RunConfig, UsageError> {
    let n = parse_n(args.n.as_deref(), MAX_N).map_err(UsageError)?;
    if crate::policy::by_name(&args.policy).is_none() {
        return Err(UsageError(format!(
            "unknown policy '{}' (`cmdunit policies` lists them)",
            args.policy
        )));
    }
    let time_scale = match args.time_scale {
        Some(s) => TimeScale::new(s).map_err(UsageError)?,
        None => TimeScale::REAL,
    };
    check_positive("--timeout", args.timeout, MAX_TIMEOUT_S).map_err(UsageError)?;
    if args.forwarders == 0 || args.forwarders > MAX_EMULATED_UNITS {
        return Err(UsageError(format!(
            "--forwarders must be between 1 and {MAX_EMULATED_UNITS}"
        )));
    }
    if args.max_in_flight == 0 || args.max_in_flight > MAX_IN_FLIGHT {
        return Err(UsageError(format!(
            "--max-in-flight must be between 1 and {MAX_IN_FLIGHT}"
        )));
    }
    let forwarders = if args.emulate {
        Vec::new()
    } else if args.forwarder.is_empty() {
        vec![DEFAULT_FORWARDER.to_string()]
    } else {
        // A URL given empty is a mistake, not a request for the default.
        args.forwarder
            .iter()
            .map(|u| check_url(u.trim()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(UsageError)?
    };
    let machines = match &args.machines {
        Some(list) => {
            Some(Layout::parse(list).map_err(|e| UsageError(format!("--machines: {e}")))?)
        }
        None => None,
    };
    if args.emulate && !crate::emulator::TIME_SCALE.contains(&time_scale.factor()) {
        return Err(UsageError(format!(
            "--time-scale with --emulate must be between {} and {}",
            crate::emulator::TIME_SCALE.start(),
            crate::emulator::TIME_SCALE.end()
        )));
    }
    let emulate = if args.emulate {
        let topology = match &args.topology {
            Some(path) => Topology::load(path).map_err(|e| UsageError(e.to_string()))?,
            None => Topology::default(),
        };
        Some(EmulateConfig {
            topology,
            forwarders: args.forwarders,
            awake: args.awake,
        })
    } else {
        None
    };
    let out_dir = args
        .out
        .clone()
        .unwrap_or_else(|| super::outdir::default_out_dir(n, &args.policy));
    let mut cfg = RunConfig::new(n, &args.policy, forwarders, out_dir);
    cfg.emulate = emulate;
    cfg.machines = machines;
    cfg.time_scale = time_scale;
    cfg.calibration_file = args.calibration.clone();
    cfg.recalibrate = args.recalibrate;
    cfg.use_cache = !args.no_cache;
    cfg.probe_mode = ProbeMode::Full;
    cfg.timeout_ms = args.timeout * 1000.0;
    cfg.retries = args.retries;
    cfg.max_in_flight = args.max_in_flight;
    cfg.seed = args.seed;
    cfg.charts = !args.no_charts;
    cfg.verbose = !args.quiet;
    cfg.progress = !args.quiet;
    cfg.started = started;
    Ok(cfg)
}

/// `cmdunit N …`.
pub fn run(args: RunArgs, started: Instant) -> anyhow::Result<()> {
    let mut cfg = config(&args, started)?;
    cfg.cancel = Some(super::signals::stop_flag(!args.quiet));
    let out_dir = cfg.out_dir.clone();
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        run: RunArgs,
    }

    fn cfg(line: &[&str]) -> Result<RunConfig, UsageError> {
        let mut argv = vec!["cmdunit"];
        argv.extend_from_slice(line);
        let t = T::try_parse_from(argv).map_err(|e| UsageError(e.to_string()))?;
        config(&t.run, Instant::now())
    }

    #[test]
    fn bad_values_are_usage_errors_never_panics() {
        for line in [
            vec!["100", "--timeout", "1e300"],
            vec!["100", "--timeout", "0"],
            vec!["100", "--timeout", "NaN"],
            vec!["100", "--time-scale", "0"],
            vec!["100", "--time-scale", "inf"],
            vec!["100", "-f", ""],
            vec!["100", "-f", "http://[::1"],
            vec!["100", "--forwarders", "0"],
            vec!["100", "--emulate", "--time-scale", "0.0000001"],
            vec!["100", "--max-in-flight", "0"],
            vec!["100", "--machines", "asia"],
            vec!["100", "--policy", "nope"],
            vec!["0"],
            vec!["4294967296"],
            vec!["-5"],
        ] {
            assert!(cfg(&line).is_err(), "{line:?} was accepted");
        }
    }

    #[test]
    fn good_values_are_accepted() {
        let c = cfg(&["800", "-f", "http://[::1]:5000", "--timeout", "30"]).unwrap();
        assert_eq!(c.n, 800);
        assert_eq!(c.forwarders, vec!["http://[::1]:5000"]);
        assert_eq!(c.timeout_ms, 30_000.0);
        let c = cfg(&["4294967295"]).unwrap();
        assert_eq!(c.n, 4_294_967_295);
        assert_eq!(c.forwarders, vec![DEFAULT_FORWARDER]);
    }
}
