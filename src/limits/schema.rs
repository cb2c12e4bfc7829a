//! The schema of `limits.json`: what `cmdunit limits` measured, in model milliseconds. The report
//! reads this file back (never the measurement itself), so every field says what was measured and
//! how; fields added later carry `#[serde(default)]` so older files still load.

use super::probe::{Level, Sample};
use crate::emulator::topology::Topology;
use crate::numbers::quantile;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `limits.json`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Limits {
    pub version: u32,
    /// "emulator (topology NAME)" or the forwarding unit's URL.
    pub system: String,
    pub time_scale: f64,
    pub samples_per_machine: usize,
    /// How many requests one machine can handle: its throughput ceiling.
    pub machine_capacity: Capacity,
    /// The latency of each region: no-load `response_time` per region.
    pub regions: Vec<RegionLatency>,
    /// Per machine, no load.
    pub machines: Vec<MachineNoLoad>,
    /// The computation time of a work request (`work_time`).
    pub work_time: WorkTime,
    /// A worker's response time at no load, over all machines.
    pub worker_no_load_ms: Dist,
    /// The latency the forwarding unit adds.
    pub forwarder_overhead: Overhead,
    /// At what N the forwarding unit becomes the bottleneck, and K units as the remedy.
    pub forwarder_bottleneck: Bottleneck,
    /// The latency the cloud platform adds (network, queueing, cold start, router timeout).
    pub platform: Platform,
    /// The architecture's downsides, each argued from a figure above.
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
    /// Outcomes of requests sent at the same moment.
    pub fn of(samples: &[Sample]) -> Burst {
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
    /// The most the unit passes, requests/s: one request per pass of its one-at-a-time stage, as
    /// the controller's estimator reads it from the answers that queued at it. Infinite (`null`
    /// in the file) when no such stage was seen: the unit passed whatever the machines served.
    #[serde(deserialize_with = "null_is_infinite")]
    pub ceiling_rps: f64,
    /// The stage's pass interval (model ms) when one was seen, and the queued answers it rests on.
    #[serde(default)]
    pub pass_ms: Option<f64>,
    #[serde(default)]
    pub pass_samples: usize,
    /// The stage looked like it sits after the worker call (answers leave one at a time).
    #[serde(default)]
    pub stage_after: Option<bool>,
    /// The highest closed-loop throughput through it (the ramp's best level), requests/s.
    #[serde(default)]
    pub passed_rps: f64,
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

impl Bottleneck {
    /// Whether a ceiling was seen (`ceiling_rps` finite).
    pub fn has_ceiling(&self) -> bool {
        self.ceiling_rps.is_finite()
    }
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
    /// Infinite for a forwarding unit without a ceiling, written as `null` (JSON has no infinity).
    #[serde(deserialize_with = "null_is_infinite")]
    pub forwarder_ceiling_rps: f64,
    pub work_time_mean_ms: f64,
    pub forwarder_overhead_ms: f64,
    /// Machine → expected no-load `response_time` (latency + mean jitter + service).
    pub response_time_ms: BTreeMap<String, f64>,
    pub boot_ms: f64,
    pub router_timeout_ms: f64,
    pub connection_limit: usize,
    /// Requests one machine serves at once (the most over machines); 0 in files written before
    /// it was recorded.
    #[serde(default)]
    pub machine_concurrency: u32,
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
            machine_concurrency: t.machines.iter().map(|m| m.concurrency).max().unwrap_or(0),
        }
    }
}

/// Reads back what serde_json writes for an infinite f64: `null`.
fn null_is_infinite<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::INFINITY))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_of_a_forwarding_unit_without_a_ceiling_read_back() {
        let t = Topology::parse(include_str!("../../topologies/no-ceiling.toml")).unwrap();
        let l = Limits {
            model: Some(ModelFigures::of(&t)),
            ..Limits::default()
        };
        let json = serde_json::to_string(&l).unwrap();
        let back: Limits = serde_json::from_str(&json).unwrap();
        assert!(back.model.unwrap().forwarder_ceiling_rps.is_infinite());
    }

    #[test]
    fn a_measured_forwarding_unit_without_a_ceiling_reads_back_as_none_seen() {
        let mut l = Limits::default();
        l.forwarder_bottleneck.ceiling_rps = f64::INFINITY;
        l.forwarder_bottleneck.passed_rps = 131.0;
        let json = serde_json::to_string(&l).unwrap();
        assert!(json.contains("\"ceiling_rps\":null"), "{json}");
        let back: Limits = serde_json::from_str(&json).unwrap();
        assert!(!back.forwarder_bottleneck.has_ceiling());
        assert_eq!(back.forwarder_bottleneck.passed_rps, 131.0);
        l.forwarder_bottleneck.ceiling_rps = 58.8;
        let back: Limits = serde_json::from_str(&serde_json::to_string(&l).unwrap()).unwrap();
        assert_eq!(back.forwarder_bottleneck.ceiling_rps, 58.8);
    }
}
