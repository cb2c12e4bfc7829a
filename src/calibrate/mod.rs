//! Calibration: what cmdunit believes about the system before it plans a batch.
//!
//! The types here are the contract between the probing pass (which fills them from measurements),
//! the planners in [`crate::policy`] and the bound in [`crate::bound`] (which only read them).
//! All durations are model milliseconds (wall time divided by the time scale when emulating).

pub mod probe;
pub mod store;

use crate::emulator::topology::Topology;
use crate::endpoint::{Layout, MachineId};
use serde::{Deserialize, Serialize};

/// Everything the planners know about one run's system.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// Format version of this file.
    pub version: u32,
    /// When it was measured (seconds since the Unix epoch); 0 for a model-derived calibration.
    pub created_unix_s: u64,
    /// How it was obtained: "probed" or "model" (derived from a topology's parameters).
    pub source: String,
    pub forwarders: Vec<ForwarderEstimate>,
    pub machines: Vec<MachineEstimate>,
    pub cost: CalibrationCost,
}

/// One forwarding unit as measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ForwarderEstimate {
    pub url: String,
    pub up: bool,
    /// Time per request in its one-at-a-time handling stage (its ceiling is 1000 / service_ms
    /// requests/s); 0 when no ceiling was found.
    pub service_ms: f64,
    /// Overhead that overlaps between requests, paid after the worker answers.
    pub overhead_ms: f64,
    /// Concurrent connections it accepts.
    pub connection_limit: usize,
}

/// One machine as measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MachineEstimate {
    pub id: MachineId,
    /// False when it did not answer during calibration: excluded from plans.
    pub up: bool,
    /// Round-trip network latency between forwarding unit and machine, mean jitter included.
    pub latency_ms: f64,
    /// Mean time the machine is busy with one request.
    pub service_ms: f64,
    /// Requests it serves at once.
    pub concurrency: u32,
    /// How long its first request took when it was asleep, if it was.
    pub wake_ms: Option<f64>,
}

/// What calibration cost: reported apart from the batch.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CalibrationCost {
    pub requests: u64,
    pub model_ms: f64,
}

impl MachineEstimate {
    /// Time from leaving forwarding unit `f`'s handling stage to the client's answer, at no load:
    /// `trip_m` of `model.md`.
    pub fn trip_ms(&self, f: &ForwarderEstimate) -> f64 {
        self.latency_ms + self.service_ms + f.overhead_ms
    }
}

impl Calibration {
    /// What the parameters of a topology imply, without measuring anything. Used for planning
    /// when no probe is wanted, and as test vectors. `forwarder_urls` names the K units.
    pub fn from_topology(t: &Topology, forwarder_urls: &[String]) -> Calibration {
        let f = &t.forwarder;
        Calibration {
            version: 1,
            created_unix_s: 0,
            source: "model".into(),
            forwarders: forwarder_urls
                .iter()
                .map(|url| ForwarderEstimate {
                    url: url.clone(),
                    up: true,
                    service_ms: f.handling_ms,
                    overhead_ms: f.overhead_ms,
                    connection_limit: f.connection_limit,
                })
                .collect(),
            machines: t
                .machines
                .iter()
                .map(|m| MachineEstimate {
                    id: m.id(),
                    up: !m.fault.down,
                    latency_ms: m.latency_ms + m.jitter_ms / 2.0,
                    service_ms: m.mean_service_ms(),
                    concurrency: m.concurrency,
                    wake_ms: None,
                })
                .collect(),
            cost: CalibrationCost::default(),
        }
    }

    pub fn layout(&self) -> Layout {
        Layout::new(self.machines.iter().map(|m| m.id.clone()).collect())
    }

    /// Indices of the machines that are up.
    pub fn up_machines(&self) -> Vec<usize> {
        (0..self.machines.len())
            .filter(|&i| self.machines[i].up)
            .collect()
    }

    /// The largest value of `field` over the forwarding units that are up (0 when none is): the
    /// slowest pass or overhead a job may meet, whichever unit it goes through.
    pub fn max_over_up_forwarders(&self, field: impl Fn(&ForwarderEstimate) -> f64) -> f64 {
        self.forwarders
            .iter()
            .filter(|f| f.up)
            .map(field)
            .fold(0.0, f64::max)
    }

    /// Indices of the forwarding units that are up.
    pub fn up_forwarders(&self) -> Vec<usize> {
        (0..self.forwarders.len())
            .filter(|&i| self.forwarders[i].up)
            .collect()
    }
}

/// The default topology's own parameters with `units` forwarding units whose handling stage takes
/// `handling_ms` (0 = no ceiling): the calibration the planners' unit tests plan against.
#[cfg(test)]
pub(crate) fn model_calibration(units: usize, handling_ms: f64) -> Calibration {
    let mut t = Topology::default();
    t.forwarder.handling_ms = handling_ms;
    let urls: Vec<String> = (0..units).map(|i| format!("http://f{i}")).collect();
    Calibration::from_topology(&t, &urls)
}
