//! `cmdunit limits`: measures the system's limits and answers eight questions about it with
//! numbers, charts, `limits.json` and a Markdown section: how many requests one machine handles,
//! each region's latency, the computation time of a request, a worker's no-load response time, the
//! latency the forwarding unit adds, the N from which the forwarding unit is the bottleneck (and
//! how to remove it), the latency the cloud platform adds, and the architecture's downsides.
//!
//! Why measure rather than read the topology: the same command must work against a real forwarding
//! unit (`--forwarder URL`), and against the emulator it checks that the emulator behaves like its
//! model (the tests compare the measured figures with the configured ones). Every figure is model
//! milliseconds (wall / time scale), so a run at `--time-scale 0.1` reads like one at 1.
//!
//! - [`args`]: the command line and the measurement plan;
//! - [`probe`]: timed requests: sequential, closed-loop ramps, simultaneous bursts;
//! - [`measure`]: the measurement and the figures derived from it;
//! - [`unit`]: the forwarding unit's ceiling, as the controller's estimator reads it;
//! - [`schema`]: the fields of `limits.json`;
//! - [`charts`], [`markdown`]: the charts and the answers, from `limits.json`'s figures alone.

pub mod args;
pub mod charts;
pub mod markdown;
pub mod measure;
pub mod probe;
pub mod schema;
pub mod unit;

pub use args::{LimitsArgs, LimitsPlan};
pub use charts::charts;
pub use measure::{measure, measure_emulator, System};
pub use schema::{
    Bottleneck, Burst, Capacity, Dist, Limits, MachineNoLoad, ModelFigures, Overhead, Platform,
    RegionLatency, ScalePoint, WorkTime,
};

use crate::emulator::topology::Topology;
use anyhow::Context;
use std::path::Path;

/// `cmdunit limits`.
pub fn run(args: LimitsArgs) -> anyhow::Result<()> {
    let plan = if args.quick {
        LimitsPlan::quick()
    } else {
        LimitsPlan::full()
    };
    let emulate = args.emulate || args.forwarder.is_none();
    let time_scale = args.time_scale.unwrap_or(if emulate { 0.1 } else { 1.0 });
    if !(time_scale.is_finite() && time_scale > 0.0) {
        return Err(crate::usage::UsageError(format!(
            "--time-scale must be > 0, got {time_scale}"
        ))
        .into());
    }
    let limits = if emulate {
        let topology = match &args.topology {
            Some(p) => Topology::load(p)?,
            None => Topology::default(),
        };
        measure_emulator(&topology, time_scale, args.seed, &plan)?
    } else {
        let url = args.forwarder.clone().unwrap_or_default();
        let url = crate::usage::check_url(&url).map_err(crate::usage::UsageError)?;
        let machines = Topology::default().layout().machines;
        let system = System {
            forwarders: vec![url],
            workers: Vec::new(),
            machines,
            time_scale,
            model: None,
        };
        measure(&system, &plan)?
    };
    let limits = write(&limits, &args.out)?;
    println!("{}", markdown::render(&limits, None));
    eprintln!("limits: wrote {}", args.out.join("limits.json").display());
    Ok(())
}

/// Write limits.json, limits.md and the charts into `out`; returns the limits with chart names.
pub fn write(limits: &Limits, out: &Path) -> anyhow::Result<Limits> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let mut limits = limits.clone();
    limits.downsides = markdown::downsides(&limits);
    limits.charts = charts(&limits, out)?;
    let json = serde_json::to_string_pretty(&limits)?;
    std::fs::write(out.join("limits.json"), json + "\n")
        .with_context(|| format!("cannot write {}", out.join("limits.json").display()))?;
    std::fs::write(out.join("limits.md"), markdown::render(&limits, None))
        .with_context(|| format!("cannot write {}", out.join("limits.md").display()))?;
    Ok(limits)
}
