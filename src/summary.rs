//! The schema of `summary.json`: one finished batch. The sweep writes one per run and the report
//! reads nothing else, so every field is documented and stable. Times are model milliseconds
//! (wall time / time scale when emulating; `model_time` says which).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Schema version.
    pub version: u32,
    pub n: u64,
    /// The policy actually run (what `auto` chose, when it was asked for).
    pub policy: String,
    /// The policy asked for on the command line.
    pub requested_policy: String,
    /// Why this policy and plan (auto's reasoning, or the policy's own one line).
    pub reason: String,
    pub ok: u64,
    pub failed: u64,
    /// Jobs never sent because the run was interrupted (counted in `failed` too).
    pub cancelled: u64,
    /// Failures by class: "connect", "timeout", "http_503", "bad_response", "cancelled", ...
    pub failures: BTreeMap<String, u64>,
    /// Retries spent (attempts beyond the first).
    pub retries: u64,
    /// Attempts that moved without spending the retry budget: off a forwarding unit that stopped
    /// accepting connections, or off a machine just ejected.
    #[serde(default)]
    pub moves: u64,
    /// Times a machine was ejected after repeated failures.
    #[serde(default)]
    pub ejections: u64,
    /// Forwarding units taken out mid-run (URLs).
    #[serde(default)]
    pub forwarders_lost: Vec<String>,
    /// Second copies sent of jobs that looked stuck, and how many of them answered first.
    #[serde(default)]
    pub hedges: u64,
    #[serde(default)]
    pub hedges_won: u64,
    /// The most agent threads running at once.
    #[serde(default)]
    pub agents_peak: u64,
    /// Jobs never sent (interrupted, or every unit lost): one range, not one row each.
    #[serde(default)]
    pub not_sent: Option<NotSentRange>,
    /// Command start to the last answer: everything the user waited for (process start,
    /// calibration if any, the batch). Model time like every time here.
    #[serde(default)]
    pub wall_ms: f64,
    /// Batch start (first send) to the last outcome.
    pub makespan_ms: f64,
    pub lower_bound_ms: f64,
    /// Where the bound's figures come from: "model" (the emulator's true topology: exact),
    /// "calibration" (a calibration pass or file: an estimate), "learned" (this batch's own
    /// answers: an estimate).
    #[serde(default)]
    pub lower_bound_source: String,
    pub machines_bound_ms: f64,
    pub forwarders_bound_ms: f64,
    /// lower_bound_ms / makespan_ms (1 = as fast as possible).
    pub efficiency: f64,
    /// What the plan predicted, where the policy predicts.
    pub predicted_makespan_ms: Option<f64>,
    /// Completion time of each ok request measured from the batch start.
    pub completion_ms: Quantiles,
    /// Time of each ok request measured from the moment its (last) attempt was sent.
    pub latency_ms: Quantiles,
    /// The server's own `response_time` over ok requests.
    pub response_time_ms: Quantiles,
    /// Ok requests per machine, "asia/0" → count.
    pub per_machine: BTreeMap<String, u64>,
    /// Requests per forwarding unit URL.
    pub per_forwarder: BTreeMap<String, u64>,
    pub forwarders: Vec<String>,
    /// Calibration pass before the batch (model ms and requests; 0 when none ran: the default
    /// policy learns from the batch itself).
    pub calibration_ms: f64,
    pub calibration_requests: u64,
    /// What the batch started from: "none", "cache" (an earlier run's estimates), "file"
    /// (`--calibration`), "probed"/"quick" (a calibration pass just now).
    pub calibration_source: String,
    /// Set when run against the embedded emulator.
    pub time_scale: Option<f64>,
    pub topology: Option<String>,
    /// True when times are model time (wall / time scale).
    pub model_time: bool,
    pub seed: u64,
    pub started_unix_s: u64,
}

/// Jobs `from_id .. from_id + count` ended without being sent, all as `outcome`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NotSentRange {
    pub from_id: u64,
    pub count: u64,
    pub outcome: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Quantiles {
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}
