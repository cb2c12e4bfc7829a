//! The measurement: no-load samples per machine (through the forwarding unit and straight to each
//! worker), closed-loop ramps (one machine; every machine through one forwarding unit), bursts,
//! the cold start, and the throughput of K forwarding units; then the figures derived from them.
//!
//! What is derived (the N from which the forwarding unit sets the pace) reuses
//! [`crate::bound::lower_bound`] on a calibration built from the measured figures, so the limits
//! analysis and the planner agree on what a bound is; and the forwarding unit's ceiling is the
//! controller's estimator's reading of the answers through it ([`super::unit`]), so the two agree
//! on whether a unit has one.

use super::args::LimitsPlan;
use super::probe::{Level, Prober, Sample};
use super::schema::{
    Bottleneck, Burst, Capacity, Dist, Limits, MachineNoLoad, ModelFigures, Overhead, Platform,
    RegionLatency, ScalePoint, WorkTime,
};
use super::unit::UnitWatch;
use crate::bound::lower_bound;
use crate::calibrate::{Calibration, CalibrationCost, ForwarderEstimate, MachineEstimate};
use crate::emulator::topology::Topology;
use crate::emulator::{Emulator, EmulatorConfig};
use crate::endpoint::MachineId;
use crate::numbers::median;
use crate::timescale::TimeScale;
use anyhow::Context;
use std::collections::BTreeMap;

/// The largest batch size searched for the N from which the forwarding unit sets the pace.
pub const BOTTLENECK_SEARCH_MAX_N: usize = 10_000;

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
        scale: TimeScale::new(system.time_scale).map_err(anyhow::Error::msg)?,
        timeout_ms: 120_000.0,
    };
    let forwarder = system
        .forwarders
        .first()
        .context("no forwarding unit to measure")?
        .trim_end_matches('/')
        .to_string();
    let via = |m: &MachineId| format!("{forwarder}/work/{}/{}", m.region, m.index);
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

    // Every answer through the forwarding unit (no load, then the closed loops) goes to the
    // estimator that decides whether the unit has a ceiling.
    let mut watch = UnitWatch::new(system.machines.len());

    // No load, one machine at a time.
    let mut machines = Vec::new();
    let mut all_ok: Vec<(f64, f64, String)> = Vec::new();
    let mut fu_gaps = Vec::new();
    let mut via_minus_direct = Vec::new();
    let mut direct_gaps = Vec::new();
    for (i, m) in system.machines.iter().enumerate() {
        let mut through = prober.sequential(&via(m), plan.samples);
        for s in &mut through {
            s.machine = Some(i);
        }
        watch.feed(&through);
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
        "no machine answered through {forwarder}; is the forwarding unit up?"
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
    let cap_via_unit = direct(&fastest).is_none();
    let levels: Vec<Level> = plan
        .capacity_levels
        .iter()
        .map(|&c| {
            let (level, samples) = prober.closed_loop(
                std::slice::from_ref(&cap_url),
                &system.machines,
                c,
                plan.level_ms,
            );
            if cap_via_unit {
                watch.feed_until(&samples, plan.level_ms);
            }
            level
        })
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
        .map(|&c| {
            let (level, samples) = prober.closed_loop(&spread, &system.machines, c, plan.level_ms);
            watch.feed_until(&samples, plan.level_ms);
            level
        })
        .collect();
    let passed = fu_levels
        .iter()
        .map(|l| l.throughput_rps)
        .fold(0.0, f64::max);
    // The ceiling is the unit's own (its queued answers one pass apart), never what the probe's
    // load got out of the machines; infinite when no such stage showed.
    let unit = watch.ceiling();
    let fu_ceiling = unit.rps();
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
    // differ only by one handling stage); never, for a unit without a ceiling.
    let bottleneck_from_n = if fu_ceiling.is_finite() {
        (1..=BOTTLENECK_SEARCH_MAX_N).find(|&n| {
            let b = lower_bound(n as u64, &cal);
            b.forwarders_ms > 1.1 * b.machines_ms
        })
    } else {
        None
    };
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
        pass_ms: unit.pass_ms,
        pass_samples: unit.samples,
        stage_after: unit.stage_after,
        passed_rps: passed,
        machines_combined_rps: machines_combined,
        bottleneck_from_n,
        bounds,
        connection_burst,
        scaling,
    };
    let limits = Limits {
        version: 1,
        system: match &system.model {
            Some((t, _)) => format!("emulator (topology {})", t.name),
            None => forwarder.clone(),
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
        // Argued from these figures when the analysis is written (`limits::write`).
        downsides: Vec::new(),
        model: system.model.as_ref().map(|(t, _)| ModelFigures::of(t)),
        charts: Vec::new(),
    };
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
        scale: TimeScale::new(scale).map_err(anyhow::Error::msg)?,
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
        let ids: Vec<MachineId> = topology.machines.iter().map(|m| m.id()).collect();
        let (level, _) = prober.closed_loop(&urls, &ids, concurrency, plan.level_ms);
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
    // No ceiling seen: no stage, so no pass to wait for.
    let fu_service = if fu_ceiling > 0.0 && fu_ceiling.is_finite() {
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
                trip_measured: true,
            })
            .collect(),
        cost: CalibrationCost::default(),
    }
}
