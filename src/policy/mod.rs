//! Policies: how a batch of N jobs is spread over forwarding units and machines.
//!
//! As in tower's `balance`, building a balancer and running it are two things:
//! - a [`Policy`] is a pure, shareable description (a name, whether it needs a model of the
//!   system before its first send) and a factory: [`Policy::start`] returns a fresh [`Binder`]
//!   for one batch;
//! - a [`Binder`] is that batch's decision state, owned by the dispatcher and called under the
//!   dispatcher's one lock, so it needs no locking of its own. For every job, when an agent is
//!   free, it answers [`Binder::next`]: send it now on this [`Route`], send a second copy of an
//!   overdue job instead (a hedge), or wait. Every attempt's result comes back through
//!   [`Binder::observe`].
//!
//! So "before execution" and "when sent" are the same interface: a policy that decided
//! everything before the batch (round robin, a plan from a model) answers from a rule and the
//! job's index, one that learns answers from what it has observed. Nothing is materialised per
//! job: a rule is O(machines) in memory whatever N.
//!
//! One file per policy family; [`by_name`] and [`ALL`] are the registry.

use crate::calibrate::Calibration;
use crate::endpoint::{Layout, Target};
use crate::outcome::Failure;

mod controller;
mod ect;
mod fastest;
mod least_outstanding;
mod p2c_ewma;
mod per_region;
mod random;
mod round_robin;
mod weighted;
pub mod window;

pub use controller::Controller;

/// What a policy is given for one batch.
pub struct StartInput<'a> {
    pub n: u64,
    pub layout: &'a Layout,
    /// The forwarding units (routes name them by index).
    pub forwarder_urls: &'a [String],
    /// What is known of the system before the first send: a saved calibration or one measured
    /// just now. `None` when nothing is known; policies that need it say so with
    /// [`Policy::needs_model`].
    pub model: Option<&'a Calibration>,
    /// Seed for any randomness, so a run can be repeated.
    pub seed: u64,
    /// How model time (what the view counts in) maps to the wall clock: what happens on the
    /// client's own machine (threads waiting for a core) takes wall time, at any scale.
    pub time_scale: crate::timescale::TimeScale,
}

/// Where one attempt goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Route {
    /// Forwarding unit (index into the run's units).
    pub forwarder: u16,
    pub target: Target,
}

/// The job a decision is asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JobCtx {
    pub id: u32,
    /// Attempts already sent for it (0 for a fresh job).
    pub attempt: u16,
    /// The machine that just failed it, to be avoided by a retry.
    pub avoid: Option<usize>,
    /// The route of its last attempt.
    pub previous: Option<Route>,
}

/// The dispatcher's picture at the moment of a decision.
#[derive(Clone, Copy, Debug)]
pub struct View<'a> {
    /// Model milliseconds since the batch started.
    pub now_ms: f64,
    pub machines: &'a [MachineLoad],
    pub forwarders: &'a [ForwarderLoad],
    /// Fresh jobs not yet sent.
    pub unissued: u64,
    /// Jobs sent and not yet ended.
    pub alive: usize,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MachineLoad {
    /// Attempts bound to it and not yet answered.
    pub in_flight: u32,
    /// Ejected after repeated failures: do not choose it until it is readmitted.
    pub ejected: bool,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ForwarderLoad {
    pub in_flight: u32,
    /// False while it refuses connections (suspended, or lost for the batch).
    pub usable: bool,
}

impl View<'_> {
    /// Machines that may be chosen now (not ejected), except `avoid`.
    pub fn choosable(&self, avoid: Option<usize>) -> impl Iterator<Item = usize> + '_ {
        (0..self.machines.len()).filter(move |&m| !self.machines[m].ejected && Some(m) != avoid)
    }

    /// The usable forwarding unit with the fewest attempts in flight.
    pub fn least_loaded_forwarder(&self) -> Option<u16> {
        (0..self.forwarders.len())
            .filter(|&f| self.forwarders[f].usable)
            .min_by_key(|&f| self.forwarders[f].in_flight)
            .map(|f| f as u16)
    }

    /// The choosable machine with the fewest in flight (ties to the lowest index).
    pub fn least_in_flight(&self, avoid: Option<usize>) -> Option<usize> {
        self.choosable(avoid)
            .min_by_key(|&m| self.machines[m].in_flight)
    }

    pub fn in_flight(&self) -> u32 {
        self.forwarders.iter().map(|f| f.in_flight).sum()
    }
}

/// What to do for the job asked about.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Decision {
    /// Send it now. `more`: another send is probably due at once, so an idle agent should ask.
    Send { route: Route, more: bool },
    /// Send a second copy of job `job` (already in flight and overdue) instead; the job asked
    /// about waits. The first answer wins.
    Hedge { job: u32, route: Route, more: bool },
    /// Not now: ask again at `until_ms` (model ms since the batch start), or when an answer
    /// arrives if `None`.
    Wait { until_ms: Option<f64> },
}

/// What an answer said.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Answered {
    pub response_time: u64,
    pub work_time: u64,
}

/// The outcome of one attempt, fed back to the binder.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Observation {
    pub job: u32,
    pub route: Route,
    /// The machine that answered, or the one the attempt was bound to.
    pub machine: Option<usize>,
    /// When it was sent and when it ended, model ms since the batch start.
    pub sent_ms: f64,
    pub end_ms: f64,
    pub result: Result<Answered, Failure>,
    /// Its job had already been answered by another copy (a hedge that lost the race).
    pub superseded: bool,
}

impl Observation {
    /// Client-observed latency, model ms.
    pub fn latency_ms(&self) -> f64 {
        self.end_ms - self.sent_ms
    }
}

/// One batch's decision state (see the module docs).
pub trait Binder: Send {
    /// The decision for `job`, or — when `job` is `None` (nothing left to place) — whether to
    /// hedge an overdue job or wait.
    fn next(&mut self, view: &View, job: Option<&JobCtx>) -> Decision;

    /// Learn from an attempt's outcome.
    fn observe(&mut self, view: &View, obs: &Observation);

    /// One line on what it did and why, for the summary.
    fn reason(&self) -> String;

    /// What it believes of the system by now (learning binders), for the cache and the bound.
    fn learned(&self) -> Option<Calibration> {
        None
    }

    /// The makespan it predicted before the batch, where it predicts one.
    fn predicted_makespan_ms(&self) -> Option<f64> {
        None
    }
}

/// Why a policy could not start.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("no machine is up: nothing to send to")]
    NoMachineUp,
    #[error("policy {0} needs a model of the system (a calibration) and none was given")]
    NeedsModel(&'static str),
}

pub trait Policy: Send + Sync {
    /// The name used on the command line.
    fn name(&self) -> &'static str;

    /// True when it decides from a model of the system before the first send; the run then
    /// measures one first unless a saved one is fresh.
    fn needs_model(&self) -> bool {
        false
    }

    /// A fresh binder for one batch.
    fn start(&self, input: &StartInput) -> Result<Box<dyn Binder>, PolicyError>;
}

/// Every policy: its command-line name, what it does and when it wins (for `cmdunit policies`).
pub const ALL: &[(&str, &str)] = &[
    ("auto", "closed loop: learns the system from the batch's own answers (and the last run's), sends each job where it would be answered soonest, paces every unit and machine (default)"),
    ("random", "every job to /work: the forwarding unit's own random choice; the baseline"),
    ("region-rr", "round robin over /work/<region>; equal shares, as slow as the farthest region"),
    ("machine-rr", "round robin over the machines; equal shares, wins only when machines are alike"),
    ("fastest", "everything to the machine with the shortest trip (model); wins for a handful of requests"),
    ("weighted", "smooth weighted round robin, weights = each machine's capacity up to the bound (model); right counts, no tail order"),
    ("per-region-queues", "every job's machine and send time fixed from the model before it is sent, the last to the nearest; wins when the model is right"),
    ("least-outstanding", "late binding to the machine that would answer soonest given its outstanding jobs (model), corrected by each machine's lag"),
    ("p2c-ewma", "late binding: better of two distinct random machines by peak-EWMA latency x (in flight + 1); needs no model"),
];

/// The policy of that name, or `None`.
pub fn by_name(name: &str) -> Option<Box<dyn Policy>> {
    Some(match name {
        "random" => Box::new(random::Random),
        "region-rr" => Box::new(round_robin::RegionRr),
        "machine-rr" => Box::new(round_robin::MachineRr),
        "fastest" => Box::new(fastest::Fastest),
        "weighted" => Box::new(weighted::Weighted),
        "per-region-queues" => Box::new(per_region::PerRegion),
        "least-outstanding" => Box::new(least_outstanding::LeastOutstanding),
        "p2c-ewma" => Box::new(p2c_ewma::P2cEwma),
        "auto" => Box::new(Controller),
        _ => return None,
    })
}

/// The model's machines that are up, or the error that none is.
pub(crate) fn up_machines(model: &Calibration) -> Result<Vec<usize>, PolicyError> {
    let up = model.up_machines();
    if up.is_empty() {
        Err(PolicyError::NoMachineUp)
    } else {
        Ok(up)
    }
}

/// The model a policy that needs one was given.
pub(crate) fn require_model<'a>(
    input: &StartInput<'a>,
    name: &'static str,
) -> Result<&'a Calibration, PolicyError> {
    input.model.ok_or(PolicyError::NeedsModel(name))
}

#[cfg(test)]
pub(crate) mod testing;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_policy_is_found_by_name_and_names_itself() {
        for (name, _) in ALL {
            assert_eq!(by_name(name).unwrap().name(), *name);
        }
        assert!(by_name("no-such-policy").is_none());
    }

    #[test]
    fn policies_that_need_a_model_refuse_to_start_without_one() {
        let layout = Layout::documented();
        let input = StartInput {
            n: 10,
            layout: &layout,
            forwarder_urls: &["http://f".to_string()],
            model: None,
            seed: 0,
            time_scale: Default::default(),
        };
        for (name, _) in ALL {
            let p = by_name(name).unwrap();
            let started = p.start(&input);
            assert_eq!(started.is_err(), p.needs_model(), "{name}");
        }
    }
}
