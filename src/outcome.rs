//! What became of one job: the record the dispatcher produces and the collector consumes.
//!
//! It sits below both so that neither imports the other: the dispatcher only emits outcomes,
//! the collector (requests.csv, statistics) only reads them.

use crate::endpoint::Target;

/// How an attempt failed. `class()` is the name used in requests.csv and summary.json.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Failure {
    /// No connection to the forwarding unit, or it dropped the connection before answering.
    Connect,
    /// No complete answer within the timeout.
    Timeout,
    /// An answer with a status other than 200.
    Status(u16),
    /// A 200 answer whose body is not the expected JSON, names a machine that is not in the
    /// system, or carries timings outside their documented range.
    BadResponse,
}

impl Failure {
    pub fn class(&self) -> String {
        match self {
            Failure::Connect => "connect".into(),
            Failure::Timeout => "timeout".into(),
            Failure::Status(code) => format!("http_{code}"),
            Failure::BadResponse => "bad_response".into(),
        }
    }

    /// Worth another attempt elsewhere: connection problems, timeouts and 5xx (a 4xx or a
    /// malformed body would fail the same way again).
    pub fn retriable(&self) -> bool {
        match self {
            Failure::Connect | Failure::Timeout => true,
            Failure::Status(code) => *code >= 500,
            Failure::BadResponse => false,
        }
    }
}

/// How one job ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutcomeKind {
    Ok,
    Failed(Failure),
    /// Never sent because the run was interrupted.
    Cancelled,
}

impl OutcomeKind {
    pub fn class(&self) -> String {
        match self {
            OutcomeKind::Ok => "ok".into(),
            OutcomeKind::Failed(f) => f.class(),
            OutcomeKind::Cancelled => "cancelled".into(),
        }
    }
}

/// One job's record: a row of requests.csv. Times are model ms after the batch start.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Outcome {
    pub id: u32,
    /// Forwarding unit of the last attempt (index into the run's forwarders).
    pub forwarder: Option<u16>,
    /// Target of the last attempt.
    pub target: Target,
    /// The machine that answered (index into the layout).
    pub machine: Option<u16>,
    /// Attempts sent, hedges included.
    pub attempts: u16,
    pub kind: OutcomeKind,
    /// When the first attempt was sent.
    pub start_ms: f64,
    /// When the attempt that ended the job was sent.
    pub sent_ms: f64,
    /// When the job ended.
    pub end_ms: f64,
    /// The server's `response_time` and `work_time`, when it answered.
    pub response_time: Option<u64>,
    pub work_time: Option<u64>,
}

impl Outcome {
    /// A job that ended without being sent, at `now_ms`.
    pub fn unsent(id: u32, kind: OutcomeKind, now_ms: f64) -> Outcome {
        Outcome {
            id,
            forwarder: None,
            target: Target::Any,
            machine: None,
            attempts: 0,
            kind,
            start_ms: now_ms,
            sent_ms: now_ms,
            end_ms: now_ms,
            response_time: None,
            work_time: None,
        }
    }
}

/// Jobs that ended without ever being sent: ids `from_id .. from_id + count`, all of one kind.
/// Recorded as one range (in summary.json), not as one row each, so that stopping a batch of
/// billions costs nothing.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NotSent {
    pub from_id: u64,
    pub count: u64,
    pub kind: OutcomeKind,
}
