//! The emulated system's parameters, read from a TOML file. The defaults are the measured 2021
//! system (see `topologies/default.toml` and `../shared/reference/original-system.md`); every
//! duration is in model milliseconds and is multiplied by the time scale on the wall clock.

use crate::endpoint::{Layout, MachineId};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The default topology, shipped as a file and embedded in the binary.
pub const DEFAULT_TOPOLOGY: &str = include_str!("../../topologies/default.toml");

#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    #[error("cannot read topology file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid topology: {0}")]
    Parse(#[from] toml::de::Error),
    #[error("invalid topology: {0}")]
    Invalid(String),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    /// A name for reports ("default", "slow-machine", ...).
    #[serde(default = "default_name")]
    pub name: String,
    pub forwarder: ForwarderSpec,
    pub machines: Vec<MachineSpec>,
}

/// The forwarding unit: a first-come-first-served handling stage, then overhead that overlaps.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwarderSpec {
    /// Handling stage, one request at a time (17 ms ≈ 59 requests/s measured). 0 = no ceiling.
    pub handling_ms: f64,
    /// Overhead after the worker answers, overlapping between requests.
    pub overhead_ms: f64,
    /// Concurrent client connections it accepts (file descriptor limit 1024 measured).
    pub connection_limit: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MachineSpec {
    pub region: String,
    pub index: u32,
    /// Round-trip latency between forwarding unit and this machine (half each way).
    pub latency_ms: f64,
    /// Per-request jitter added to the round trip, uniform in [0, jitter_ms].
    pub jitter_ms: f64,
    /// `work_time` is drawn uniformly from these values (integer ms).
    pub work_time_ms: Vec<u64>,
    /// Request handling on top of `work_time`, during which the machine is busy.
    pub handling_ms: f64,
    /// Requests served at once (1 measured).
    pub concurrency: u32,
    /// The platform router answers 503 once a request has spent this long at the worker.
    pub router_timeout_ms: f64,
    /// The machine falls asleep after this long without a request.
    pub idle_timeout_ms: f64,
    /// A sleeping machine takes this long to boot before serving its first request.
    pub boot_ms: f64,
    #[serde(default)]
    pub fault: Fault,
}

/// Simple faults a machine can be given.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// Down: connections to the machine are refused.
    #[serde(default)]
    pub down: bool,
    /// Fraction of requests answered 503 (after the work is done).
    #[serde(default)]
    pub error_rate: f64,
    /// Service time multiplied by this factor (1 = normal).
    #[serde(default = "one")]
    pub slow_factor: f64,
}

impl Default for Fault {
    fn default() -> Self {
        Fault {
            down: false,
            error_rate: 0.0,
            slow_factor: 1.0,
        }
    }
}

fn one() -> f64 {
    1.0
}

fn default_name() -> String {
    "custom".to_string()
}

impl Default for Topology {
    fn default() -> Self {
        // The embedded default is checked by a unit test; parsing it cannot fail at run time
        // unless the binary itself is corrupt.
        Topology::parse(DEFAULT_TOPOLOGY).unwrap_or_else(|e| panic!("embedded topology: {e}"))
    }
}

impl Topology {
    pub fn parse(text: &str) -> Result<Topology, TopologyError> {
        let t: Topology = toml::from_str(text)?;
        t.validate()?;
        Ok(t)
    }

    pub fn load(path: &Path) -> Result<Topology, TopologyError> {
        let text = std::fs::read_to_string(path).map_err(|source| TopologyError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Topology::parse(&text)
    }

    pub fn validate(&self) -> Result<(), TopologyError> {
        let bad = |m: String| Err(TopologyError::Invalid(m));
        if self.machines.is_empty() {
            return bad("no machines".into());
        }
        let f = &self.forwarder;
        if !(f.handling_ms >= 0.0 && f.overhead_ms >= 0.0) {
            return bad("forwarder durations must be >= 0".into());
        }
        if f.connection_limit == 0 {
            return bad("forwarder.connection_limit must be > 0".into());
        }
        let mut seen = std::collections::HashSet::new();
        for m in &self.machines {
            let id = m.id();
            if m.region.is_empty()
                || !m
                    .region
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return bad(format!(
                    "machine {id}: region must be a non-empty [A-Za-z0-9_-] name"
                ));
            }
            if !seen.insert(id.clone()) {
                return bad(format!("machine {id} appears twice"));
            }
            let durations = [
                m.latency_ms,
                m.jitter_ms,
                m.handling_ms,
                m.router_timeout_ms,
                m.idle_timeout_ms,
                m.boot_ms,
            ];
            if durations.iter().any(|d| !(d.is_finite() && *d >= 0.0)) {
                return bad(format!("machine {id}: durations must be finite and >= 0"));
            }
            if m.work_time_ms.is_empty() {
                return bad(format!(
                    "machine {id}: work_time_ms must list at least one value"
                ));
            }
            if m.concurrency == 0 {
                return bad(format!("machine {id}: concurrency must be >= 1"));
            }
            if !(0.0..=1.0).contains(&m.fault.error_rate) {
                return bad(format!("machine {id}: fault.error_rate must be in [0, 1]"));
            }
            if !(m.fault.slow_factor.is_finite() && m.fault.slow_factor > 0.0) {
                return bad(format!("machine {id}: fault.slow_factor must be > 0"));
            }
        }
        Ok(())
    }

    pub fn layout(&self) -> Layout {
        Layout::new(self.machines.iter().map(MachineSpec::id).collect())
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }
}

impl MachineSpec {
    pub fn id(&self) -> MachineId {
        MachineId::new(self.region.clone(), self.index)
    }

    /// Mean `work_time` in ms.
    pub fn mean_work_ms(&self) -> f64 {
        self.work_time_ms.iter().sum::<u64>() as f64 / self.work_time_ms.len().max(1) as f64
    }

    /// Mean time the machine is busy with one request (work + handling, times the slow factor).
    pub fn mean_service_ms(&self) -> f64 {
        (self.mean_work_ms() + self.handling_ms) * self.fault.slow_factor
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_default_parses_and_matches_the_measured_system() {
        let t = Topology::parse(DEFAULT_TOPOLOGY).unwrap();
        assert_eq!(t.machines.len(), 5);
        assert_eq!(t.layout().regions, vec!["asia", "emea", "us"]);
        assert_eq!(t.forwarder.connection_limit, 1024);
        assert!((t.forwarder.handling_ms - 17.0).abs() < 1e-9);
        let emea = &t.machines[2];
        assert_eq!(emea.id().to_string(), "emea/0");
        assert!((emea.mean_service_ms() - 22.0).abs() < 1e-9);
    }

    #[test]
    fn bad_topologies_are_rejected_with_a_message() {
        let t = DEFAULT_TOPOLOGY.replace("concurrency = 1", "concurrency = 0");
        let err = Topology::parse(&t).unwrap_err().to_string();
        assert!(err.contains("concurrency"), "{err}");
        assert!(Topology::parse("nonsense = [").is_err());
    }
}
