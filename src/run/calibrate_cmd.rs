//! `cmdunit calibrate`: the thorough calibration pass on its own — bursts through each
//! forwarding unit and at each machine — saved where the next runs find it (the user's cache
//! for that system, or `--out FILE`). Batches do not need it (the default policy learns from
//! its own answers); it is there for the policies that plan from a model, for the limits
//! analysis, and for a bound to compare a system's batches against.

use super::system::{self, EmulateConfig};
use crate::calibrate::probe::{self, CalibrateError, ProbeConfig, ProbeMode};
use crate::calibrate::store;
use crate::emulator::topology::Topology;
use crate::endpoint::Layout;
use crate::timescale::TimeScale;
use crate::usage::{check_positive, check_url, UsageError};
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct CalibrateArgs {
    /// Forwarding unit URL; repeat it or give a comma-separated list.
    #[arg(
        long = "forwarder",
        short = 'f',
        env = "CMDUNIT_FORWARDER",
        value_delimiter = ',',
        value_name = "URL"
    )]
    pub forwarder: Vec<String>,
    /// The machines, e.g. asia/0,asia/1,emea/0.
    #[arg(long, value_name = "LIST")]
    pub machines: Option<String>,
    /// Calibrate the embedded emulator (started here).
    #[arg(long)]
    pub emulate: bool,
    /// Topology file for --emulate.
    #[arg(long, value_name = "FILE")]
    pub topology: Option<PathBuf>,
    /// Emulated forwarding units (1 to 64).
    #[arg(long, value_name = "K", default_value_t = 1)]
    pub forwarders: usize,
    /// Start the emulated machines awake.
    #[arg(long)]
    pub awake: bool,
    /// The system's time scale (results in model time; more than 0, at most 1000).
    #[arg(long, value_name = "F", allow_negative_numbers = true)]
    pub time_scale: Option<f64>,
    /// Only wake the machines and sample their latency (no bursts).
    #[arg(long)]
    pub quick: bool,
    /// Where to save it (default: the cache, where batches against this system find it).
    #[arg(long, short = 'o', value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Per-request timeout, model seconds (more than 0, at most 3600); a sleeping machine's
    /// wake-up must fit in it.
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = 60.0,
        allow_negative_numbers = true
    )]
    pub timeout: f64,
    /// Output format on stdout: text or json (the calibration itself).
    #[arg(long, value_enum, default_value_t = crate::printer::Format::Text)]
    pub format: crate::printer::Format,
}

/// `cmdunit calibrate`.
pub fn run(args: CalibrateArgs) -> anyhow::Result<()> {
    let scale = match args.time_scale {
        Some(s) => TimeScale::new(s).map_err(UsageError)?,
        None => TimeScale::REAL,
    };
    check_positive("--timeout", args.timeout, super::MAX_TIMEOUT_S).map_err(UsageError)?;
    let urls = if args.emulate {
        Vec::new()
    } else if args.forwarder.is_empty() {
        vec![super::DEFAULT_FORWARDER.to_string()]
    } else {
        args.forwarder
            .iter()
            .map(|u| check_url(u.trim()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(UsageError)?
    };
    if args.forwarders == 0 || args.forwarders > 64 {
        return Err(UsageError("--forwarders must be between 1 and 64".into()).into());
    }
    let machines = match &args.machines {
        Some(l) => Some(Layout::parse(l).map_err(|e| UsageError(format!("--machines: {e}")))?),
        None => None,
    };
    let emulate = if args.emulate {
        Some(EmulateConfig {
            topology: match &args.topology {
                Some(p) => Topology::load(p).map_err(|e| UsageError(e.to_string()))?,
                None => Topology::default(),
            },
            forwarders: args.forwarders,
            awake: args.awake,
        })
    } else {
        None
    };
    let timeout_ms = args.timeout * 1000.0;
    let sys = system::open(
        &urls,
        emulate.as_ref(),
        machines.as_ref(),
        scale,
        0,
        timeout_ms,
    )?;
    let cfg = ProbeConfig {
        mode: if args.quick {
            ProbeMode::Quick
        } else {
            ProbeMode::Full
        },
        time_scale: scale,
        timeout_ms,
        verbose: true,
        ..ProbeConfig::default()
    };
    let cal = probe::calibrate(&sys.layout, &sys.urls, &cfg).map_err(|e| match e {
        CalibrateError::Unreachable(u) => super::RunError::Unreachable(u),
    })?;
    if let Some(emu) = sys.emulator {
        emu.shutdown();
    }
    let path = args
        .out
        .clone()
        .or_else(|| store::cache_file(&sys.cache_key))
        .ok_or_else(|| {
            anyhow::anyhow!(
                "no cache folder ($XDG_CACHE_HOME and $HOME are unset): give --out FILE"
            )
        })?;
    store::save(&cal, &path)?;
    match args.format {
        crate::printer::Format::Json => {
            println!("{}", serde_json::to_string_pretty(&cal).unwrap_or_default())
        }
        _ => {
            for f in &cal.forwarders {
                let ceiling = if f.service_ms > 0.0 {
                    format!(
                        "one pass per {:.1} ms ({:.0}/s)",
                        f.service_ms,
                        1000.0 / f.service_ms
                    )
                } else {
                    "no ceiling seen".into()
                };
                println!(
                    "{}: {}, {ceiling}, overhead {:.1} ms",
                    f.url,
                    if f.up { "up" } else { "down" },
                    f.overhead_ms
                );
            }
            for m in &cal.machines {
                println!(
                    "{}: {}, latency {:.0} ms, service {:.1} ms, concurrency {}",
                    m.id,
                    if m.up { "up" } else { "down" },
                    m.latency_ms,
                    m.service_ms,
                    m.concurrency
                );
            }
            println!(
                "{} requests, {:.1} s (model time); saved to {}",
                cal.cost.requests,
                cal.cost.model_ms / 1000.0,
                path.display()
            );
        }
    }
    Ok(())
}
