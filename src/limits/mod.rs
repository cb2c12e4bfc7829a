//! `cmdunit limits`: measures the system's limits and answers the eight questions of the
//! evaluation (issue 5) with numbers, charts, `limits.json` and a Markdown section.
//!
//! Why measure rather than read the topology: the same command must work against a real forwarding
//! unit (`--forwarder URL`), and against the emulator it checks that the emulator behaves like its
//! model (the tests compare the measured figures with the configured ones). Every figure is model
//! milliseconds (wall / time scale), so a run at `--time-scale 0.1` reads like one at 1.
//!
//! The probes ([`probe`]) are deliberately simple: sequential requests at no load, closed-loop
//! concurrency ramps (throughput against requests in flight) and simultaneous bursts (where the
//! 503s and refused connections start). What is derived from them (the N where the forwarding unit
//! becomes the bottleneck) reuses [`crate::bound::lower_bound`] on a calibration built from the
//! measurements.

pub mod markdown;
pub mod probe;

use crate::bound::lower_bound;
use crate::calibrate::{Calibration, CalibrationCost, ForwarderEstimate, MachineEstimate};
use crate::emulator::topology::Topology;
use crate::emulator::{Emulator, EmulatorConfig};
use crate::endpoint::MachineId;
use crate::plot::{self, Axes, LineExtras, Series};
use anyhow::Context;
use probe::{median, quantile, Level, Prober, Sample};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, clap::Args)]
pub struct LimitsArgs {
    /// Forwarding unit to measure (worker URLs are unknown, so direct comparisons are skipped).
    #[arg(long, env = "CMDUNIT_FORWARDER")]
    pub forwarder: Option<String>,
    /// Measure the embedded emulator (started in-process on free loopback ports); the default
    /// when no --forwarder is given, and it wins over one (e.g. from CMDUNIT_FORWARDER).
    #[arg(long)]
    pub emulate: bool,
    /// Topology of the emulator (default: the measured 2021 system).
    #[arg(long)]
    pub topology: Option<PathBuf>,
    /// Emulator time scale (0.1 = ten times faster); figures stay in model milliseconds.
    #[arg(long, default_value_t = 0.1)]
    pub time_scale: f64,
    /// Where limits.json, limits.md and the charts go.
    #[arg(long, default_value = "results/limits")]
    pub out: PathBuf,
    /// Fewer samples and levels (seconds instead of about a minute at scale 0.1).
    #[arg(long)]
    pub quick: bool,
    /// Seed of the emulator.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// What to measure and how much.
#[derive(Clone, Debug)]
pub struct LimitsPlan {
    /// Sequential no-load requests per machine (through the forwarding unit, and straight).
    pub samples: usize,
    /// Closed-loop concurrency levels straight to one machine.
    pub capacity_levels: Vec<usize>,
    /// Closed-loop concurrency levels through the forwarding unit, spread over all machines.
    pub forwarder_levels: Vec<usize>,
    /// Duration of each level, model ms.
    pub level_ms: f64,
    /// Simultaneous requests straight to one worker (where the 503s start); 0 skips.
    pub worker_burst: usize,
    /// Simultaneous connections to the forwarding unit (past its limit); 0 skips.
    pub connection_burst: usize,
    /// Forwarding-unit counts for the scaling measurement (emulator only); empty skips.
    pub scaling_k: Vec<usize>,
    /// Start asleep and measure the cold start (emulator only).
    pub cold_start: bool,
}

impl LimitsPlan {
    pub fn full() -> LimitsPlan {
        LimitsPlan {
            samples: 30,
            capacity_levels: vec![1, 2, 4, 8, 12, 16, 24, 32, 48, 64],
            forwarder_levels: vec![1, 2, 5, 10, 20, 40, 80, 160],
            level_ms: 8000.0,
            worker_burst: 2000,
            connection_burst: 1300,
            scaling_k: vec![1, 2, 3, 5, 8],
            cold_start: true,
        }
    }

    pub fn quick() -> LimitsPlan {
        LimitsPlan {
            samples: 10,
            capacity_levels: vec![1, 8, 32],
            forwarder_levels: vec![5, 40],
            level_ms: 4000.0,
            worker_burst: 0,
            connection_burst: 0,
            scaling_k: vec![1, 3],
            cold_start: true,
        }
    }
}

/// The system under measurement.
pub struct System {
    pub forwarders: Vec<String>,
    /// Each worker's own URL when known (the emulator), else empty.
    pub workers: Vec<(MachineId, String)>,
    /// Machines to probe through the forwarding unit.
    pub machines: Vec<MachineId>,
    pub time_scale: f64,
    /// The emulator's configuration, for model figures and the scaling measurement.
    pub model: Option<(Topology, u64)>,
}

/// `limits.json`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Limits {
    pub version: u32,
    /// "emulator (topology NAME)" or the forwarding unit's URL.
    pub system: String,
    pub time_scale: f64,
    pub samples_per_machine: usize,
    /// Q1.
    pub machine_capacity: Capacity,
    /// Q2: per region, no-load `response_time`.
    pub regions: Vec<RegionLatency>,
    /// Per machine, no load.
    pub machines: Vec<MachineNoLoad>,
    /// Q3.
    pub work_time: WorkTime,
    /// Q4: a worker's response time at no load, over all machines.
    pub worker_no_load_ms: Dist,
    /// Q5.
    pub forwarder_overhead: Overhead,
    /// Q6.
    pub forwarder_bottleneck: Bottleneck,
    /// Q7.
    pub platform: Platform,
    /// Q8.
    pub downsides: Vec<String>,
    /// The configured model's figures, when emulating (for comparison).
    pub model: Option<ModelFigures>,
    pub charts: Vec<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Dist {
    pub n: usize,
    pub mean: f64,
    pub p5: f64,
    pub p50: f64,
    pub p95: f64,
    pub min: f64,
    pub max: f64,
}

impl Dist {
    pub fn of(values: &[f64]) -> Dist {
        let v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return Dist::default();
        }
        Dist {
            n: v.len(),
            mean: v.iter().sum::<f64>() / v.len() as f64,
            p5: quantile(&v, 0.05),
            p50: quantile(&v, 0.5),
            p95: quantile(&v, 0.95),
            min: v.iter().copied().fold(f64::INFINITY, f64::min),
            max: v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        }
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Capacity {
    pub machine: String,
    /// "direct" (straight to the worker) or "via forwarding unit".
    pub path: String,
    pub levels: Vec<Level>,
    /// Highest measured throughput, requests/s.
    pub ceiling_rps: f64,
    /// Smallest concurrency reaching 90% of the ceiling.
    pub knee_concurrency: usize,
    /// Service time implied by the ceiling, ms.
    pub service_ms: f64,
    pub burst: Option<Burst>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Burst {
    pub size: usize,
    pub ok: usize,
    pub failures: BTreeMap<String, usize>,
    /// Slowest ok answer's client time, model ms.
    pub slowest_ok_ms: f64,
    /// Fastest failed answer's client time, model ms (where the 503s start).
    pub first_failure_ms: Option<f64>,
}

impl Burst {
    fn of(samples: &[Sample]) -> Burst {
        let mut failures = BTreeMap::new();
        for s in samples {
            if let Some(f) = &s.failure {
                *failures.entry(f.clone()).or_insert(0) += 1;
            }
        }
        let first_failure_ms = samples
            .iter()
            .filter(|s| !s.ok())
            .map(|s| s.rtt_ms)
            .fold(None, |a: Option<f64>, x| Some(a.map_or(x, |a| a.min(x))));
        Burst {
            size: samples.len(),
            ok: samples.iter().filter(|s| s.ok()).count(),
            failures,
            slowest_ok_ms: samples
                .iter()
                .filter(|s| s.ok())
                .map(|s| s.rtt_ms)
                .fold(0.0, f64::max),
            first_failure_ms,
        }
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RegionLatency {
    pub region: String,
    /// The server's `response_time` at no load.
    pub response_time_ms: Dist,
    /// What the client saw through the forwarding unit.
    pub client_rtt_ms: Dist,
    /// Every no-load `response_time` of the region (for its distribution chart).
    #[serde(default)]
    pub samples_ms: Vec<f64>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct MachineNoLoad {
    pub machine: String,
    pub response_time_ms: Dist,
    pub via_forwarder_rtt_ms: Dist,
    /// Straight to the worker (when its URL is known).
    pub direct_rtt_ms: Option<Dist>,
    /// `response_time` − `work_time`: the network round trip the platform adds.
    pub network_ms: Dist,
    /// First request to the sleeping machine minus its no-load round trip.
    pub cold_start_ms: Option<f64>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct WorkTime {
    pub dist: Dist,
    /// work_time (ms) → count.
    pub histogram: BTreeMap<u64, usize>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Overhead {
    /// What the forwarding unit adds: `raw_gap_ms` minus `measurement_gap_ms` (the same gap
    /// straight to a worker, i.e. the client's and HTTP's own cost; 0 when workers are unknown).
    pub rtt_minus_response_ms: f64,
    /// Median over no-load requests through it of (client round trip − `response_time`).
    pub raw_gap_ms: f64,
    /// Median of (client round trip − `response_time`) straight to the workers.
    pub measurement_gap_ms: f64,
    /// Median via the forwarding unit minus median straight to the worker, averaged over machines.
    pub via_minus_direct_ms: Option<f64>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Bottleneck {
    /// Closed-loop ramp through one forwarding unit, spread evenly over every machine.
    pub levels: Vec<Level>,
    pub ceiling_rps: f64,
    /// Machines' combined capacity (one machine's ceiling × machines up).
    pub machines_combined_rps: f64,
    /// Smallest N whose lower bound is set by the forwarding unit rather than the machines
    /// (bounds computed from the measured figures).
    pub bottleneck_from_n: Option<usize>,
    /// (N, machines' bound, forwarding unit's bound) from the measured figures, model ms.
    pub bounds: Vec<(usize, f64, f64)>,
    pub connection_burst: Option<Burst>,
    /// Measured solution: throughput through K forwarding units over the same workers.
    pub scaling: Vec<ScalePoint>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ScalePoint {
    pub forwarders: usize,
    pub concurrency: usize,
    pub throughput_rps: f64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Platform {
    /// Network round trip per request (`response_time` − `work_time`), all machines.
    pub network_ms: Dist,
    /// Queueing at one machine: `response_time` at the highest capacity level minus at no load.
    pub queueing_at_max_level_ms: f64,
    pub max_level: usize,
    /// Cold start added to the first request, median over machines (when measured).
    pub cold_start_ms: Option<f64>,
    /// Router timeout seen in the worker burst: the fastest 503, if any.
    pub router_timeout_ms: Option<f64>,
}

/// What the emulator was configured with (means), for side-by-side comparison.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ModelFigures {
    pub topology: String,
    pub machine_capacity_rps: f64,
    pub forwarder_ceiling_rps: f64,
    pub work_time_mean_ms: f64,
    pub forwarder_overhead_ms: f64,
    /// Machine → expected no-load `response_time` (latency + mean jitter + service).
    pub response_time_ms: BTreeMap<String, f64>,
    pub boot_ms: f64,
    pub router_timeout_ms: f64,
    pub connection_limit: usize,
}

impl ModelFigures {
    pub fn of(t: &Topology) -> ModelFigures {
        let first = t.machines.first();
        ModelFigures {
            topology: t.name.clone(),
            machine_capacity_rps: t
                .machines
                .iter()
                .map(|m| 1000.0 / m.mean_service_ms())
                .fold(0.0, f64::max),
            forwarder_ceiling_rps: if t.forwarder.handling_ms > 0.0 {
                1000.0 / t.forwarder.handling_ms
            } else {
                f64::INFINITY
            },
            work_time_mean_ms: first.map(|m| m.mean_work_ms()).unwrap_or(0.0),
            forwarder_overhead_ms: t.forwarder.handling_ms + t.forwarder.overhead_ms,
            response_time_ms: t
                .machines
                .iter()
                .map(|m| {
                    (
                        m.id().to_string(),
                        m.latency_ms + m.jitter_ms / 2.0 + m.mean_service_ms(),
                    )
                })
                .collect(),
            boot_ms: first.map(|m| m.boot_ms).unwrap_or(0.0),
            router_timeout_ms: first.map(|m| m.router_timeout_ms).unwrap_or(0.0),
            connection_limit: t.forwarder.connection_limit,
        }
    }
}

/// `cmdunit limits`.
pub fn run(args: LimitsArgs) -> anyhow::Result<()> {
    let plan = if args.quick {
        LimitsPlan::quick()
    } else {
        LimitsPlan::full()
    };
    let limits = if args.emulate || args.forwarder.is_none() {
        if !(args.time_scale.is_finite() && args.time_scale > 0.0) {
            return Err(crate::usage::UsageError(format!(
                "--time-scale must be > 0, got {}",
                args.time_scale
            ))
            .into());
        }
        let topology = match &args.topology {
            Some(p) => Topology::load(p)?,
            None => Topology::default(),
        };
        measure_emulator(&topology, args.time_scale, args.seed, &plan)?
    } else {
        let url = args.forwarder.clone().unwrap_or_default();
        let url = crate::usage::check_url(&url).map_err(crate::usage::UsageError)?;
        let machines = Topology::default().layout().machines;
        let system = System {
            forwarders: vec![url],
            workers: Vec::new(),
            machines,
            time_scale: 1.0,
            model: None,
        };
        measure(&system, &plan)?
    };
    let limits = write(&limits, &args.out)?;
    println!("{}", markdown::render(&limits, None));
    eprintln!("limits: wrote {}", args.out.join("limits.json").display());
    Ok(())
}

/// Start the emulator (asleep, as the real system usually was) and measure it.
pub fn measure_emulator(
    topology: &Topology,
    time_scale: f64,
    seed: u64,
    plan: &LimitsPlan,
) -> anyhow::Result<Limits> {
    let emu = Emulator::start(EmulatorConfig {
        topology: topology.clone(),
        time_scale,
        seed,
        awake: !plan.cold_start,
        ..EmulatorConfig::default()
    })
    .context("cannot start the emulator")?;
    let system = System {
        forwarders: emu.forwarder_urls(),
        workers: emu.worker_urls(),
        machines: topology
            .machines
            .iter()
            .filter(|m| !m.fault.down)
            .map(|m| m.id())
            .collect(),
        time_scale,
        model: Some((topology.clone(), seed)),
    };
    let limits = measure(&system, plan)?;
    emu.shutdown();
    Ok(limits)
}

/// Measure `system` according to `plan`.
pub fn measure(system: &System, plan: &LimitsPlan) -> anyhow::Result<Limits> {
    let prober = Prober {
        scale: system.time_scale,
        timeout_ms: 120_000.0,
    };
    let fu = system
        .forwarders
        .first()
        .context("no forwarding unit to measure")?
        .trim_end_matches('/')
        .to_string();
    let via = |m: &MachineId| format!("{fu}/work/{}/{}", m.region, m.index);
    let direct = |m: &MachineId| {
        system
            .workers
            .iter()
            .find(|(id, _)| id == m)
            .map(|(_, u)| format!("{}/work", u.trim_end_matches('/')))
    };

    // Cold start: the first request to every machine at once.
    let cold: Vec<Sample> = if plan.cold_start {
        let urls: Vec<String> = system.machines.iter().map(&via).collect();
        prober.burst(urls.len(), &|i| urls[i].clone())
    } else {
        Vec::new()
    };

    // No load, one machine at a time.
    let mut machines = Vec::new();
    let mut all_ok: Vec<(f64, f64, String)> = Vec::new();
    let mut fu_gaps = Vec::new();
    let mut via_minus_direct = Vec::new();
    let mut direct_gaps = Vec::new();
    for (i, m) in system.machines.iter().enumerate() {
        let through = prober.sequential(&via(m), plan.samples);
        let answers: Vec<&(f64, f64, String)> =
            through.iter().filter_map(|s| s.answer.as_ref()).collect();
        let rts: Vec<f64> = answers.iter().map(|a| a.0).collect();
        let rtts: Vec<f64> = through
            .iter()
            .filter(|s| s.ok())
            .map(|s| s.rtt_ms)
            .collect();
        fu_gaps.extend(
            through
                .iter()
                .filter_map(|s| s.answer.as_ref().map(|a| s.rtt_ms - a.0)),
        );
        let network: Vec<f64> = answers.iter().map(|a| a.0 - a.1).collect();
        all_ok.extend(answers.iter().map(|a| (*a).clone()));
        let direct_dist = direct(m).map(|u| {
            let d = prober.sequential(&u, plan.samples);
            direct_gaps.extend(
                d.iter()
                    .filter_map(|s| s.answer.as_ref().map(|a| s.rtt_ms - a.0)),
            );
            let v: Vec<f64> = d.iter().filter(|s| s.ok()).map(|s| s.rtt_ms).collect();
            all_ok.extend(d.iter().filter_map(|s| s.answer.clone()));
            Dist::of(&v)
        });
        if let Some(d) = &direct_dist {
            if d.n > 0 && !rtts.is_empty() {
                via_minus_direct.push(median(&rtts) - d.p50);
            }
        }
        let cold_start_ms = cold
            .get(i)
            .filter(|s| s.ok() && !rtts.is_empty())
            .map(|s| s.rtt_ms - median(&rtts));
        machines.push(MachineNoLoad {
            machine: m.to_string(),
            response_time_ms: Dist::of(&rts),
            via_forwarder_rtt_ms: Dist::of(&rtts),
            direct_rtt_ms: direct_dist,
            network_ms: Dist::of(&network),
            cold_start_ms,
        });
    }
    anyhow::ensure!(
        !all_ok.is_empty(),
        "no machine answered through {fu}; is the forwarding unit up?"
    );

    // Regions.
    let mut region_names: Vec<String> = system.machines.iter().map(|m| m.region.clone()).collect();
    region_names.dedup();
    let regions = region_names
        .iter()
        .map(|r| {
            let rts: Vec<f64> = all_ok
                .iter()
                .filter(|a| a.2.split('/').next() == Some(r.as_str()))
                .map(|a| a.0)
                .collect();
            RegionLatency {
                region: r.clone(),
                response_time_ms: Dist::of(&rts),
                client_rtt_ms: Dist::default(),
                samples_ms: rts,
            }
        })
        .collect::<Vec<_>>();
    // Client round trips per region (through the forwarding unit).
    let regions: Vec<RegionLatency> = regions
        .into_iter()
        .map(|mut r| {
            let v: Vec<f64> = machines
                .iter()
                .filter(|m| m.machine.split('/').next() == Some(r.region.as_str()))
                .flat_map(|m| [m.via_forwarder_rtt_ms.p50])
                .collect();
            r.client_rtt_ms = Dist::of(&v);
            r
        })
        .collect();

    let work: Vec<f64> = all_ok.iter().map(|a| a.1).collect();
    let mut histogram = BTreeMap::new();
    for w in &work {
        *histogram.entry(*w as u64).or_insert(0) += 1;
    }
    let worker_no_load: Vec<f64> = machines
        .iter()
        .flat_map(|m| match &m.direct_rtt_ms {
            Some(d) => vec![d.p50],
            None => vec![m.response_time_ms.p50],
        })
        .collect();

    // Q1: one machine's capacity, the fastest one, straight when possible.
    let fastest = machines
        .iter()
        .zip(&system.machines)
        .min_by(|a, b| {
            a.0.response_time_ms
                .p50
                .total_cmp(&b.0.response_time_ms.p50)
        })
        .map(|(_, id)| id.clone())
        .context("no machine")?;
    let (cap_url, cap_path) = match direct(&fastest) {
        Some(u) => (u, "direct"),
        None => (via(&fastest), "via forwarding unit"),
    };
    let levels: Vec<Level> = plan
        .capacity_levels
        .iter()
        .map(|&c| prober.closed_loop(std::slice::from_ref(&cap_url), c, plan.level_ms))
        .collect();
    let ceiling = levels.iter().map(|l| l.throughput_rps).fold(0.0, f64::max);
    let knee = levels
        .iter()
        .find(|l| l.throughput_rps >= 0.9 * ceiling)
        .map(|l| l.concurrency)
        .unwrap_or(0);
    let worker_burst = (plan.worker_burst > 0 && direct(&fastest).is_some())
        .then(|| Burst::of(&prober.burst(plan.worker_burst, &|_| cap_url.clone())));
    let no_load_rt = machines
        .iter()
        .find(|m| m.machine == fastest.to_string())
        .map(|m| m.response_time_ms.p50)
        .unwrap_or(f64::NAN);
    let top = levels.last().cloned().unwrap_or_default();
    let capacity = Capacity {
        machine: fastest.to_string(),
        path: cap_path.to_string(),
        levels,
        ceiling_rps: ceiling,
        knee_concurrency: knee,
        service_ms: if ceiling > 0.0 { 1000.0 / ceiling } else { 0.0 },
        burst: worker_burst.clone(),
    };

    // Q6: through one forwarding unit, spread over every machine.
    let spread: Vec<String> = system.machines.iter().map(&via).collect();
    let fu_levels: Vec<Level> = plan
        .forwarder_levels
        .iter()
        .map(|&c| prober.closed_loop(&spread, c, plan.level_ms))
        .collect();
    let fu_ceiling = fu_levels
        .iter()
        .map(|l| l.throughput_rps)
        .fold(0.0, f64::max);
    let connection_burst = (plan.connection_burst > 0).then(|| {
        Burst::of(&prober.burst(plan.connection_burst, &|i| spread[i % spread.len()].clone()))
    });
    let machines_combined = capacity.ceiling_rps * system.machines.len() as f64;
    let measurement_gap = if direct_gaps.is_empty() {
        0.0
    } else {
        median(&direct_gaps)
    };
    let overhead = Overhead {
        rtt_minus_response_ms: median(&fu_gaps) - measurement_gap,
        raw_gap_ms: median(&fu_gaps),
        measurement_gap_ms: measurement_gap,
        via_minus_direct_ms: (!via_minus_direct.is_empty())
            .then(|| via_minus_direct.iter().sum::<f64>() / via_minus_direct.len() as f64),
    };
    let cal = measured_calibration(
        &machines,
        &system.machines,
        &capacity,
        fu_ceiling,
        &overhead,
        1,
    );
    let ns: Vec<usize> = (0..=40)
        .map(|i| (10f64.powf(i as f64 / 10.0)).round() as usize)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let bounds: Vec<(usize, f64, f64)> = ns
        .iter()
        .map(|&n| {
            let b = lower_bound(n as u64, &cal);
            (n, b.machines_ms, b.forwarders_ms)
        })
        .collect();
    // Where the forwarding unit's bound passes the machines' by more than 10% (at N = 1 the two
    // differ only by one handling stage).
    let bottleneck_from_n = (1..=10_000).find(|&n| {
        let b = lower_bound(n as u64, &cal);
        b.forwarders_ms > 1.1 * b.machines_ms
    });
    let scaling = match &system.model {
        Some((topology, seed)) if !plan.scaling_k.is_empty() => {
            measure_scaling(topology, *seed, system.time_scale, plan)?
        }
        _ => Vec::new(),
    };

    let cold_values: Vec<f64> = machines.iter().filter_map(|m| m.cold_start_ms).collect();
    let network_all: Vec<f64> = all_ok.iter().map(|a| a.0 - a.1).collect();
    let platform = Platform {
        network_ms: Dist::of(&network_all),
        queueing_at_max_level_ms: top.response_time_p50_ms - no_load_rt,
        max_level: top.concurrency,
        cold_start_ms: (!cold_values.is_empty()).then(|| median(&cold_values)),
        router_timeout_ms: worker_burst.as_ref().and_then(|b| b.first_failure_ms),
    };
    let bottleneck = Bottleneck {
        levels: fu_levels,
        ceiling_rps: fu_ceiling,
        machines_combined_rps: machines_combined,
        bottleneck_from_n,
        bounds,
        connection_burst,
        scaling,
    };
    let mut limits = Limits {
        version: 1,
        system: match &system.model {
            Some((t, _)) => format!("emulator (topology {})", t.name),
            None => fu.clone(),
        },
        time_scale: system.time_scale,
        samples_per_machine: plan.samples,
        machine_capacity: capacity,
        regions,
        machines,
        work_time: WorkTime {
            dist: Dist::of(&work),
            histogram,
        },
        worker_no_load_ms: Dist::of(&worker_no_load),
        forwarder_overhead: overhead,
        forwarder_bottleneck: bottleneck,
        platform,
        downsides: Vec::new(),
        model: system.model.as_ref().map(|(t, _)| ModelFigures::of(t)),
        charts: Vec::new(),
    };
    limits.downsides = markdown::downsides(&limits);
    Ok(limits)
}

/// Throughput through K forwarding units over the same workers, for each K of the plan.
fn measure_scaling(
    topology: &Topology,
    seed: u64,
    scale: f64,
    plan: &LimitsPlan,
) -> anyhow::Result<Vec<ScalePoint>> {
    let prober = Prober {
        scale,
        timeout_ms: 120_000.0,
    };
    let mut out = Vec::new();
    for &k in &plan.scaling_k {
        let emu = Emulator::start(EmulatorConfig {
            topology: topology.clone(),
            time_scale: scale,
            seed,
            forwarders: k,
            awake: true,
            ..EmulatorConfig::default()
        })
        .context("cannot start the emulator")?;
        let mut urls = Vec::new();
        for m in topology.machines.iter().filter(|m| !m.fault.down) {
            for f in emu.forwarder_urls() {
                urls.push(format!("{f}/work/{}/{}", m.region, m.index));
            }
        }
        // Enough in flight to keep K units and all machines busy (Little's law, ~0.5 s trips).
        let concurrency = (45 * k).min(240);
        let level = prober.closed_loop(&urls, concurrency, plan.level_ms);
        out.push(ScalePoint {
            forwarders: k,
            concurrency,
            throughput_rps: level.throughput_rps,
        });
        emu.shutdown();
    }
    Ok(out)
}

/// A calibration built from the measured figures, for the bounds.
fn measured_calibration(
    machines: &[MachineNoLoad],
    ids: &[MachineId],
    capacity: &Capacity,
    fu_ceiling: f64,
    overhead: &Overhead,
    k: usize,
) -> Calibration {
    let service = capacity.service_ms;
    let fu_service = if fu_ceiling > 0.0 {
        1000.0 / fu_ceiling
    } else {
        0.0
    };
    Calibration {
        version: 1,
        created_unix_s: 0,
        source: "limits".into(),
        forwarders: (0..k)
            .map(|i| ForwarderEstimate {
                url: format!("forwarder-{i}"),
                up: true,
                service_ms: fu_service,
                overhead_ms: (overhead.rtt_minus_response_ms - fu_service).max(0.0),
                connection_limit: 1024,
            })
            .collect(),
        machines: machines
            .iter()
            .zip(ids)
            .map(|(m, id)| MachineEstimate {
                id: id.clone(),
                up: m.response_time_ms.n > 0,
                latency_ms: (m.response_time_ms.mean - service).max(0.0),
                service_ms: service,
                concurrency: 1,
                wake_ms: None,
            })
            .collect(),
        cost: CalibrationCost::default(),
    }
}

/// Write limits.json, limits.md and the charts into `out`; returns the limits with chart names.
pub fn write(limits: &Limits, out: &Path) -> anyhow::Result<Limits> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let mut limits = limits.clone();
    limits.charts = charts(&limits, out)?;
    let json = serde_json::to_string_pretty(&limits)?;
    std::fs::write(out.join("limits.json"), json + "\n")
        .with_context(|| format!("cannot write {}", out.join("limits.json").display()))?;
    std::fs::write(out.join("limits.md"), markdown::render(&limits, None))
        .with_context(|| format!("cannot write {}", out.join("limits.md").display()))?;
    Ok(limits)
}

/// The limits charts; returns their stems (file names without extension).
pub fn charts(limits: &Limits, out: &Path) -> anyhow::Result<Vec<String>> {
    let mut names = Vec::new();
    let cap = &limits.machine_capacity;
    let b = &limits.forwarder_bottleneck;
    let mut series = vec![Series {
        label: format!("one machine ({})", cap.machine),
        points: cap
            .levels
            .iter()
            .map(|l| (l.concurrency as f64, l.throughput_rps))
            .collect(),
    }];
    if !b.levels.is_empty() {
        series.push(Series {
            label: "all machines via 1 FU".into(),
            points: b
                .levels
                .iter()
                .map(|l| (l.concurrency as f64, l.throughput_rps))
                .collect(),
        });
    }
    let xs: Vec<f64> = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .collect();
    let (x0, x1) = (
        xs.iter().copied().fold(f64::INFINITY, f64::min),
        xs.iter().copied().fold(0.0, f64::max),
    );
    let extras = LineExtras {
        legend_below: true,
        spread: Vec::new(),
        references: vec![Series {
            label: "machines' combined".into(),
            points: vec![(x0, b.machines_combined_rps), (x1, b.machines_combined_rps)],
        }],
    };
    plot::line_chart_with(
        &out.join("limits-throughput"),
        &Axes {
            title: "Throughput against requests in flight".into(),
            x_label: "concurrent requests (closed loop)".into(),
            y_label: "throughput (requests/s)".into(),
            log_x: true,
            log_y: false,
        },
        &series,
        &extras,
    )?;
    names.push("limits-throughput".to_string());

    let samples: Vec<(String, Vec<f64>)> = limits
        .regions
        .iter()
        .filter(|r| !r.samples_ms.is_empty())
        .map(|r| (r.region.clone(), r.samples_ms.clone()))
        .collect();
    if !samples.is_empty() {
        plot::cdf_chart_with(
            &out.join("limits-latency"),
            &Axes {
                title: "No-load response_time by region".into(),
                x_label: "response_time (ms)".into(),
                y_label: "fraction of answers".into(),
                ..Axes::default()
            },
            &samples,
            true,
        )?;
        names.push("limits-latency".into());
    }
    let bars: Vec<(String, f64)> = limits
        .work_time
        .histogram
        .iter()
        .map(|(w, c)| (format!("{w} ms"), *c as f64))
        .collect();
    if !bars.is_empty() {
        plot::bar_chart(
            &out.join("limits-worktime"),
            &Axes {
                title: "work_time of every no-load answer".into(),
                x_label: "work_time".into(),
                y_label: "answers".into(),
                ..Axes::default()
            },
            &bars,
        )?;
        names.push("limits-worktime".into());
    }
    if !b.bounds.is_empty() {
        let series = vec![
            Series {
                label: "machines' bound".into(),
                points: b.bounds.iter().map(|&(n, m, _)| (n as f64, m)).collect(),
            },
            Series {
                label: "1 FU's bound".into(),
                points: b.bounds.iter().map(|&(n, _, f)| (n as f64, f)).collect(),
            },
        ];
        plot::line_chart_with(
            &out.join("limits-bounds"),
            &Axes {
                title: "Who limits a batch of N (measured figures)".into(),
                x_label: "N (requests)".into(),
                y_label: "lower bound (ms)".into(),
                log_x: true,
                log_y: true,
            },
            &series,
            &LineExtras {
                legend_below: true,
                ..LineExtras::default()
            },
        )?;
        names.push("limits-bounds".into());
    }
    if !b.scaling.is_empty() {
        let series = vec![Series {
            label: "measured".into(),
            points: b
                .scaling
                .iter()
                .map(|s| (s.forwarders as f64, s.throughput_rps))
                .collect(),
        }];
        let k1 = b.scaling.iter().map(|s| s.forwarders).max().unwrap_or(1) as f64;
        let extras = LineExtras {
            legend_below: true,
            spread: Vec::new(),
            references: vec![
                Series {
                    label: "machines' combined".into(),
                    points: vec![
                        (1.0, b.machines_combined_rps),
                        (k1, b.machines_combined_rps),
                    ],
                },
                Series {
                    label: "K × 1 FU ceiling".into(),
                    // Drawn until it passes the machines' capacity by 30% (beyond, moot).
                    points: (1..=k1 as usize)
                        .map(|k| (k as f64, k as f64 * b.ceiling_rps))
                        .take_while(|p| p.1 <= 1.3 * b.machines_combined_rps)
                        .collect(),
                },
            ],
        };
        plot::line_chart_with(
            &out.join("limits-scaling"),
            &Axes {
                title: "Throughput over K forwarding units".into(),
                x_label: "forwarding units K".into(),
                y_label: "throughput (requests/s)".into(),
                ..Axes::default()
            },
            &series,
            &extras,
        )?;
        names.push("limits-scaling".into());
    }
    Ok(names)
}
