//! Calibration: what cmdunit believes about the system before it plans a batch.
//!
//! The types here are the contract between the probing pass (which fills them from measurements),
//! the planners in [`crate::policy`] and the bound in [`crate::bound`] (which only read them).
//! All durations are model milliseconds (wall time divided by the time scale when emulating).

pub mod online;
pub mod probe;
pub mod store;

use crate::endpoint::{Layout, MachineId};
use serde::{Deserialize, Serialize};

/// The format version of calibration files; files of another version are not read.
pub const VERSION: u32 = 2;

/// What a unit's connection limit is taken to be when it was not measured (measuring it means
/// knocking the unit over): the dispatcher's own cap on attempts in flight applies instead.
pub const UNKNOWN_CONNECTION_LIMIT: usize = 0;

/// Seconds since the Unix epoch (0 if the clock is before it).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Everything the planners know about one run's system.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// Format version of this file.
    pub version: u32,
    /// When it was measured (seconds since the Unix epoch); 0 for a model-derived calibration.
    pub created_unix_s: u64,
    /// How it was obtained: "probed" (a calibration pass), "quick" (wake-up answers only),
    /// "learned" (what a batch's own answers showed), "model" (a topology's true parameters).
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
    /// Concurrent connections it accepts; 0 when not known.
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
    /// False when every answer it gave had waited at the machine (behind its boot or behind
    /// other jobs): such an answer's `response_time` holds the wait, not the trip, so
    /// `latency_ms` is only an upper bound. A run started from this does not take it as the
    /// machine's trip.
    #[serde(default = "trip_measured_default")]
    pub trip_measured: bool,
}

/// Files written before `trip_measured` existed held measured trips.
fn trip_measured_default() -> bool {
    true
}

/// What calibration cost: reported apart from the batch.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CalibrationCost {
    pub requests: u64,
    pub model_ms: f64,
}

impl Calibration {
    /// Nothing known yet: every machine and unit down, no figures.
    pub fn empty(layout: &Layout, forwarder_urls: &[String]) -> Calibration {
        Calibration {
            version: VERSION,
            created_unix_s: unix_now(),
            source: "empty".into(),
            forwarders: forwarder_urls
                .iter()
                .map(|url| ForwarderEstimate {
                    url: url.clone(),
                    up: false,
                    service_ms: 0.0,
                    overhead_ms: 0.0,
                    connection_limit: UNKNOWN_CONNECTION_LIMIT,
                })
                .collect(),
            machines: layout
                .machines
                .iter()
                .map(|id| MachineEstimate {
                    id: id.clone(),
                    up: false,
                    latency_ms: 0.0,
                    service_ms: 0.0,
                    concurrency: 1,
                    wake_ms: None,
                    trip_measured: true,
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

    /// What a job sent to machine `m` at no load takes, from its send to its answer, through the
    /// slowest unit that is up (its pass and its overhead): the latency Little's law keeps `m`
    /// busy over, and the figure a client-side latency estimate of `m` starts from.
    pub fn no_load_latency_ms(&self, m: &MachineEstimate) -> f64 {
        m.latency_ms
            + m.service_ms
            + self.max_over_up_forwarders(|f| f.overhead_ms)
            + self.max_over_up_forwarders(|f| f.service_ms)
    }

    /// Indices of the forwarding units that are up.
    pub fn up_forwarders(&self) -> Vec<usize> {
        (0..self.forwarders.len())
            .filter(|&i| self.forwarders[i].up)
            .collect()
    }
}

/// The default emulated system's true parameters (latency = base + mean jitter 20, service
/// 21.5 ms), `units` forwarding units with a `pass_ms` stage and 13 ms overhead: the worked
/// test vectors of the lower bound and the planners' unit tests.
#[cfg(test)]
pub(crate) fn test_model(units: usize, pass_ms: f64) -> Calibration {
    let layout = Layout::documented();
    let urls: Vec<String> = (0..units)
        .map(|i| format!("http://127.0.0.1:{}", 5000 + i))
        .collect();
    let mut cal = Calibration::empty(&layout, &urls);
    cal.source = "model".into();
    for f in &mut cal.forwarders {
        f.up = true;
        f.service_ms = pass_ms;
        f.overhead_ms = 13.0;
        f.connection_limit = 1024;
    }
    for (m, base) in cal
        .machines
        .iter_mut()
        .zip([500.0, 495.0, 290.0, 350.0, 330.0])
    {
        m.up = true;
        m.latency_ms = base + 20.0;
        m.service_ms = 21.5;
    }
    cal
}
