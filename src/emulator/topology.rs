//! The emulated system's parameters, read from a TOML file. The defaults are the measured 2021
//! system (`topologies/default.toml` gives each figure with its public source); every duration is
//! in model milliseconds and is multiplied by the time scale on the wall clock.
//!
//! Why every number has a range: a topology comes from a file anyone can edit, and the emulator
//! turns its numbers into allocations (one slot per server of a machine), threads and sleeps. A
//! value outside [`Topology::validate`]'s ranges is refused with a one-line message naming the
//! field, instead of an allocation abort or a panic deep inside a run.

use crate::endpoint::{Layout, MachineId};
use serde::{Deserialize, Serialize};
use std::ops::RangeInclusive;
use std::path::Path;

/// The default topology, shipped as a file and embedded in the binary.
pub const DEFAULT_TOPOLOGY: &str = include_str!("../../topologies/default.toml");

/// Every duration (model ms): up to one hour.
pub const DURATION_MS: RangeInclusive<f64> = 0.0..=3_600_000.0;
/// Concurrent client connections of a forwarding unit.
pub const CONNECTION_LIMIT: RangeInclusive<usize> = 1..=65_536;
/// Machines in a topology.
pub const MACHINES: RangeInclusive<usize> = 1..=256;
/// A machine's index in its region.
pub const MACHINE_INDEX: RangeInclusive<u32> = 0..=65_535;
/// Requests a machine serves at once.
pub const CONCURRENCY: RangeInclusive<u32> = 1..=1024;
/// Values in a machine's `work_time_ms` list.
pub const WORK_TIMES: RangeInclusive<usize> = 1..=1000;
/// A fault's error rate (a fraction).
pub const ERROR_RATE: RangeInclusive<f64> = 0.0..=1.0;
/// A fault's slow factor.
pub const SLOW_FACTOR: RangeInclusive<f64> = 0.001..=1000.0;
/// Longest region name and topology name (characters).
pub const MAX_REGION_CHARS: usize = 32;
pub const MAX_NAME_CHARS: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    #[error("cannot read topology file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid topology: {0}")]
    Invalid(String),
    #[error("invalid topology file {path}: {reason}")]
    InvalidFile { path: String, reason: String },
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
    /// Where the handling stage sits: before the call to the worker, or after it.
    #[serde(default)]
    pub handling_position: HandlingPosition,
    /// Overhead after the worker answers, overlapping between requests.
    pub overhead_ms: f64,
    /// Concurrent client connections it accepts (file descriptor limit 1024 measured).
    pub connection_limit: usize,
}

/// Where the forwarding unit's one-at-a-time stage sits; the public record does not settle it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HandlingPosition {
    /// Requests pass the stage one at a time, then the unit calls the worker: requests reach a
    /// machine at most one per `handling_ms`.
    #[default]
    Before,
    /// The unit calls the worker at once; answers leave the unit one at a time: every request
    /// reaches the machine together, and `response_time` includes the machine's whole queue.
    After,
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

/// Simple faults a machine can be given (in the topology, or at run time with
/// [`crate::emulator::Emulator::set_fault`]).
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

impl Fault {
    /// The fault's numbers in their ranges, or what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        if !ERROR_RATE.contains(&self.error_rate) {
            return Err(format!(
                "fault.error_rate must be in {}..={}, got {:?}",
                ERROR_RATE.start(),
                ERROR_RATE.end(),
                self.error_rate
            ));
        }
        if !SLOW_FACTOR.contains(&self.slow_factor) {
            return Err(format!(
                "fault.slow_factor must be in {}..={}, got {:?}",
                SLOW_FACTOR.start(),
                SLOW_FACTOR.end(),
                self.slow_factor
            ));
        }
        Ok(())
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

/// `name` in `range`, or a message saying so (NaN is never in a range). The value is shown with
/// `Debug`, so 1e300 reads as such rather than as 301 digits.
fn check<T: PartialOrd + std::fmt::Display + std::fmt::Debug>(
    name: &str,
    value: T,
    range: &RangeInclusive<T>,
) -> Result<(), String> {
    if range.contains(&value) {
        Ok(())
    } else {
        Err(format!(
            "{name} must be in {}..={}, got {value:?}",
            range.start(),
            range.end()
        ))
    }
}

/// A TOML error on one line: where it is (line, column, the line itself) and what is wrong.
fn toml_error(e: &toml::de::Error, text: &str) -> String {
    let message = e.message().replace('\n', "; ");
    let Some(span) = e.span() else {
        return message;
    };
    let start = span.start.min(text.len());
    let before = &text.as_bytes()[..start];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let column = text.get(line_start..start).map_or(0, |s| s.chars().count()) + 1;
    let line_text = text
        .get(line_start..)
        .unwrap_or("")
        .lines()
        .next()
        .unwrap_or("");
    // Without a trailing comment (a `#` after a space; good enough for a hint).
    let code = line_text.find(" #").map_or(line_text, |i| &line_text[..i]);
    let source: String = code.trim().chars().take(60).collect();
    if source.is_empty() {
        format!("line {line}, column {column}: {message}")
    } else {
        format!("line {line}, column {column} (`{source}`): {message}")
    }
}

impl Topology {
    pub fn parse(text: &str) -> Result<Topology, TopologyError> {
        let t: Topology =
            toml::from_str(text).map_err(|e| TopologyError::Invalid(toml_error(&e, text)))?;
        t.validate()?;
        Ok(t)
    }

    pub fn load(path: &Path) -> Result<Topology, TopologyError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| TopologyError::Read {
            path: shown.clone(),
            source,
        })?;
        Topology::parse(&text).map_err(|e| match e {
            TopologyError::Invalid(reason) => TopologyError::InvalidFile {
                path: shown,
                reason,
            },
            other => other,
        })
    }

    /// Every field in its documented range (see the constants of this module).
    pub fn validate(&self) -> Result<(), TopologyError> {
        self.check().map_err(TopologyError::Invalid)
    }

    fn check(&self) -> Result<(), String> {
        let chars = self.name.chars().count();
        if chars == 0 || chars > MAX_NAME_CHARS || self.name.chars().any(char::is_control) {
            return Err(format!(
                "name must be 1 to {MAX_NAME_CHARS} printable characters"
            ));
        }
        let f = &self.forwarder;
        check("forwarder.handling_ms", f.handling_ms, &DURATION_MS)?;
        check("forwarder.overhead_ms", f.overhead_ms, &DURATION_MS)?;
        check(
            "forwarder.connection_limit",
            f.connection_limit,
            &CONNECTION_LIMIT,
        )?;
        check("the number of machines", self.machines.len(), &MACHINES)?;
        let mut seen = std::collections::HashSet::new();
        for m in &self.machines {
            let id = m.id();
            let region_ok = !m.region.is_empty()
                && m.region.chars().count() <= MAX_REGION_CHARS
                && m.region
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !region_ok {
                return Err(format!(
                    "machine {id}: region must be 1 to {MAX_REGION_CHARS} characters of [A-Za-z0-9_-]"
                ));
            }
            let at = |e: String| format!("machine {id}: {e}");
            check("index", m.index, &MACHINE_INDEX).map_err(at)?;
            if !seen.insert(id.clone()) {
                return Err(format!("machine {id} appears twice"));
            }
            for (name, value) in [
                ("latency_ms", m.latency_ms),
                ("jitter_ms", m.jitter_ms),
                ("handling_ms", m.handling_ms),
                ("router_timeout_ms", m.router_timeout_ms),
                ("idle_timeout_ms", m.idle_timeout_ms),
                ("boot_ms", m.boot_ms),
            ] {
                check(name, value, &DURATION_MS).map_err(at)?;
            }
            check(
                "the length of work_time_ms",
                m.work_time_ms.len(),
                &WORK_TIMES,
            )
            .map_err(at)?;
            let max_work = *DURATION_MS.end() as u64;
            if let Some(w) = m.work_time_ms.iter().find(|&&w| w > max_work) {
                return Err(at(format!(
                    "work_time_ms values must be in 0..={max_work}, got {w}"
                )));
            }
            check("concurrency", m.concurrency, &CONCURRENCY).map_err(at)?;
            m.fault.validate().map_err(at)?;
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

    /// The default file with `from` replaced by `to` everywhere.
    fn with(from: &str, to: &str) -> String {
        assert!(DEFAULT_TOPOLOGY.contains(from), "{from}");
        DEFAULT_TOPOLOGY.replace(from, to)
    }

    /// The one-line message a topology is refused with.
    fn refused(text: &str) -> String {
        let err = Topology::parse(text)
            .expect_err("must be refused")
            .to_string();
        assert!(!err.contains('\n'), "one line: {err}");
        err
    }

    #[test]
    fn bad_topologies_are_rejected_with_a_message() {
        let err = refused(&with("concurrency = 1", "concurrency = 0"));
        assert!(err.contains("concurrency"), "{err}");
        assert!(refused("nonsense = [").contains("line 1"));
    }

    #[test]
    fn absurd_numbers_are_refused_not_allocated() {
        for (from, to, says) in [
            (
                "concurrency = 1",
                "concurrency = 4294967295",
                "concurrency must be in 1..=1024",
            ),
            (
                "latency_ms = 290.0",
                "latency_ms = 1e300",
                "latency_ms must be in 0..=3600000",
            ),
            (
                "latency_ms = 290.0",
                "latency_ms = -5.0",
                "latency_ms must be in",
            ),
            (
                "latency_ms = 290.0",
                "latency_ms = nan",
                "latency_ms must be in",
            ),
            (
                "latency_ms = 290.0",
                "latency_ms = inf",
                "latency_ms must be in",
            ),
            ("boot_ms = 10000.0", "boot_ms = -1.0", "boot_ms must be in"),
            (
                "handling_ms = 17.0",
                "handling_ms = -17.0",
                "forwarder.handling_ms",
            ),
            (
                "overhead_ms = 13.0",
                "overhead_ms = 1e10",
                "forwarder.overhead_ms",
            ),
            (
                "connection_limit = 1024",
                "connection_limit = 0",
                "connection_limit",
            ),
            (
                "connection_limit = 1024",
                "connection_limit = 4294967295000",
                "connection_limit must be in 1..=65536",
            ),
            ("[18, 19, 20, 21]", "[]", "work_time_ms"),
            (
                "[18, 19, 20, 21]",
                "[9223372036854775807]",
                "work_time_ms values",
            ),
            ("index = 1", "index = 4000000000", "index must be in"),
            ("region = \"us\"", "region = \"\"", "region"),
        ] {
            let err = refused(&with(from, to));
            assert!(err.contains(says), "{to}: {err}");
        }
    }

    #[test]
    fn wrong_types_name_the_line_they_are_on() {
        // NaN written as a string is a type error, reported where it is.
        let err = refused(&with("latency_ms = 290.0", "latency_ms = \"NaN\""));
        assert!(
            err.contains("latency_ms = \"NaN\"") && err.contains("line "),
            "{err}"
        );
        let err = refused(&with("concurrency = 1 ", "concurrency = -1 "));
        assert!(err.contains("concurrency = -1"), "{err}");
        let err = refused(&with(
            "connection_limit = 1024",
            "connection_limit = 99999999999999999999999",
        ));
        assert!(err.contains("connection_limit"), "{err}");
    }

    #[test]
    fn zero_and_duplicate_machines_are_refused() {
        let none = "machines = []\n[forwarder]\nhandling_ms = 17.0\noverhead_ms = 13.0\n\
                    connection_limit = 1024\n";
        assert!(refused(none).contains("number of machines must be in 1..=256"));
        let twice = with("region = \"us\"\nindex = 1", "region = \"us\"\nindex = 0");
        assert!(refused(&twice).contains("us/0 appears twice"));
    }

    #[test]
    fn faults_out_of_range_are_refused() {
        for (fault, says) in [
            ("error_rate = 2.0", "error_rate"),
            ("error_rate = nan", "error_rate"),
            ("slow_factor = 0.0", "slow_factor"),
            ("slow_factor = 1e9", "slow_factor"),
        ] {
            let text = format!("{DEFAULT_TOPOLOGY}\n[machines.fault]\n{fault}\n");
            let err = refused(&text);
            assert!(err.contains(says), "{fault}: {err}");
        }
    }

    #[test]
    fn handling_position_defaults_to_before_and_reads_after() {
        let stripped: String = DEFAULT_TOPOLOGY
            .lines()
            .filter(|l| !l.starts_with("handling_position"))
            .map(|l| format!("{l}\n"))
            .collect();
        let t = Topology::parse(&stripped).unwrap();
        assert_eq!(t.forwarder.handling_position, HandlingPosition::Before);
        let after = with(
            "handling_position = \"before\"",
            "handling_position = \"after\"",
        );
        let t = Topology::parse(&after).unwrap();
        assert_eq!(t.forwarder.handling_position, HandlingPosition::After);
        assert_eq!(Topology::parse(&t.to_toml()).unwrap(), t, "round trip");
        let err = refused(&with(
            "handling_position = \"before\"",
            "handling_position = \"middle\"",
        ));
        assert!(
            err.contains("handling_position") && err.contains("after"),
            "{err}"
        );
    }
}
