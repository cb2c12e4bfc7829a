//! Policies: how a batch of N jobs is spread over forwarding units and machines.
//!
//! A policy is a small swappable object, in the manner of tower's `balance`: the dispatcher
//! knows nothing of its internals. It has two moments to decide:
//! - [`Policy::plan`], before execution: split the N jobs into queues (each served by its own
//!   pool of agents), fix each job's [`Target`] where the policy is static, choose the order in
//!   which they are sent, and optionally when (`release_ms`).
//! - [`Policy::bind`], when an agent takes a job whose target is [`Target::Late`]: choose the
//!   machine from the current load (late binding). The dispatcher holds one lock around `bind`
//!   and its own bookkeeping of the choice, so `bind` sees a consistent [`LoadView`].
//!   The dispatcher also calls `bind` to re-target a retry away from a failed machine.
//!
//! [`Policy::observe`] feeds each attempt's outcome back (latency estimates, failure penalties).
//!
//! One file per policy family; [`by_name`] and [`ALL`] are the registry.

use crate::calibrate::Calibration;
use crate::endpoint::{Layout, Target};

mod auto;
mod fastest;
mod late;
mod least_outstanding;
mod p2c_ewma;
mod per_region;
mod random;
mod round_robin;
pub mod schedule;
pub mod simulate;
pub mod sizing;
mod weighted;

pub use auto::Auto;
pub use fastest::Fastest;
pub use least_outstanding::LeastOutstanding;
pub use p2c_ewma::P2cEwma;
pub use per_region::PerRegion;
pub use random::Random;
pub use round_robin::{MachineRr, RegionRr};
pub use weighted::Weighted;

/// Inputs to planning.
pub struct PlanInput<'a> {
    pub n: usize,
    pub calibration: &'a Calibration,
    pub layout: &'a Layout,
    /// Seed for any randomness, so a run can be repeated.
    pub seed: u64,
}

/// One job of the batch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Job {
    pub id: u32,
    /// Which queue (and so which agent pool) serves it.
    pub queue: u16,
    pub target: Target,
    /// Which forwarding unit (index into `Calibration::forwarders`); `None` lets the dispatcher's
    /// forwarder chooser pick (least in flight among those up).
    pub forwarder: Option<u16>,
    /// Earliest send time, model ms after the batch start; `None` = as soon as an agent is free.
    pub release_ms: Option<f32>,
}

/// A queue and the number of agents (threads, each with its own HTTP agent) that serve it.
#[derive(Clone, Debug, PartialEq)]
pub struct QueueSpec {
    pub name: String,
    pub agents: usize,
}

/// A policy's decision for one batch.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The policy that made it (for `auto`, the one it chose).
    pub policy: String,
    /// One line on why: shown to the user and stored in the summary.
    pub reason: String,
    pub queues: Vec<QueueSpec>,
    /// All N jobs, in the order they are to be sent.
    pub jobs: Vec<Job>,
    /// The makespan the policy expects, model ms, where it can predict one.
    pub predicted_makespan_ms: Option<f64>,
}

/// The dispatcher's view of the current load, indexed like `Calibration::machines`.
#[derive(Clone, Debug, Default)]
pub struct LoadView {
    pub machines: Vec<MachineLoad>,
    /// Model milliseconds since the batch started (wall time / time scale): lets a late binder
    /// predict when a job it binds now would be answered.
    pub now_ms: f64,
    /// Jobs not yet taken by any agent.
    pub remaining: usize,
}

#[derive(Clone, Debug, Default)]
pub struct MachineLoad {
    /// Requests sent to it and not yet answered.
    pub in_flight: u32,
    /// Ejected after repeated failures: do not choose it until it is readmitted.
    pub ejected: bool,
    pub ok: u64,
    pub failed: u64,
}

/// The outcome of one attempt, fed back to the policy.
#[derive(Clone, Copy, Debug)]
pub struct Observation {
    /// The machine the attempt was bound to, or that answered it.
    pub machine: Option<usize>,
    /// Client-observed latency of the attempt, model ms.
    pub latency_ms: f64,
    pub ok: bool,
}

/// Why a policy could not plan.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("no machine is up: nothing to plan over")]
    NoMachineUp,
    #[error("no forwarding unit is up")]
    NoForwarderUp,
    #[error("{0}")]
    Other(String),
}

pub trait Policy: Send + Sync {
    /// The name used on the command line.
    fn name(&self) -> &'static str;

    /// Split the batch into queues and jobs before execution.
    fn plan(&self, input: &PlanInput) -> Result<Plan, PolicyError>;

    /// Choose a machine for a job whose target is `Late`, or a new one for a retry (`avoid` is the
    /// machine that just failed it). Returns `None` when no machine can take it now (all capped):
    /// the agent waits and asks again. Static policies may keep the default, which picks the
    /// machine with the fewest in flight among those not ejected and not avoided.
    fn bind(&self, job: &Job, load: &LoadView, avoid: Option<usize>) -> Option<Target> {
        let _ = job;
        least_in_flight(load, avoid, None).map(|m| Target::Machine(m as u16))
    }

    /// Learn from an attempt's outcome.
    fn observe(&self, obs: &Observation) {
        let _ = obs;
    }
}

/// The machine with the fewest requests in flight, among those not ejected, not `avoid`, and
/// (when `caps` is given) below their cap; ties go to the lowest index.
pub fn least_in_flight(
    load: &LoadView,
    avoid: Option<usize>,
    caps: Option<&[u32]>,
) -> Option<usize> {
    load.machines
        .iter()
        .enumerate()
        .filter(|(i, m)| !m.ejected && Some(*i) != avoid)
        .filter(|(i, m)| caps.is_none_or(|c| m.in_flight < c[*i]))
        .min_by_key(|(_, m)| m.in_flight)
        .map(|(i, _)| i)
}

/// Every policy: its command-line name, what it does and when it wins (for `cmdunit policies`).
pub const ALL: &[(&str, &str)] = &[
    ("auto", "plans with every policy, predicts each makespan with the two-layer simulator, runs the best (default)"),
    ("random", "every job to /work: the forwarding unit's own random choice; the baseline"),
    ("region-rr", "round robin over /work/<region>; equal shares, as slow as the farthest region"),
    ("machine-rr", "round robin over the machines; equal shares, wins only when machines are alike"),
    ("fastest", "everything to the machine with the shortest trip; wins for a handful of requests"),
    ("weighted", "smooth weighted round robin, weights = the planned count per machine; right counts, no tail order"),
    ("per-region-queues", "one queue per region, split so machines finish together, far regions first, paced sends; wins when calibration is right"),
    ("least-outstanding", "late binding to the machine that would answer soonest given its outstanding jobs, capped; adapts to slow machines"),
    ("p2c-ewma", "late binding: better of two distinct random machines by peak-EWMA latency x (in flight + 1); needs no model"),
];

/// The policy of that name, or `None`.
pub fn by_name(name: &str) -> Option<Box<dyn Policy>> {
    Some(match name {
        "random" => Box::new(Random),
        "region-rr" => Box::new(RegionRr),
        "machine-rr" => Box::new(MachineRr),
        "fastest" => Box::new(Fastest),
        "weighted" => Box::new(Weighted),
        "per-region-queues" => Box::new(PerRegion),
        "least-outstanding" => Box::new(LeastOutstanding::default()),
        "p2c-ewma" => Box::new(P2cEwma::default()),
        "auto" => Box::new(Auto::default()),
        _ => return None,
    })
}

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

    fn default_input_plan(name: &str, n: usize) -> Plan {
        let topo = crate::emulator::topology::Topology::default();
        let cal = Calibration::from_topology(&topo, &["http://f".to_string()]);
        let layout = cal.layout();
        let input = PlanInput {
            n,
            calibration: &cal,
            layout: &layout,
            seed: 1,
        };
        by_name(name).unwrap().plan(&input).unwrap()
    }

    #[test]
    fn static_policies_target_what_they_promise() {
        let rr = default_input_plan("machine-rr", 103);
        assert_eq!(rr.jobs.len(), 103);
        let mut counts = [0usize; 5];
        for j in &rr.jobs {
            match j.target {
                Target::Machine(m) => counts[m as usize] += 1,
                t => panic!("machine-rr sent {t:?}"),
            }
        }
        assert!(counts.iter().all(|&c| c == 20 || c == 21), "{counts:?}");
        let fastest = default_input_plan("fastest", 50);
        // emea/0 is machine 2 in layout order (asia/0, asia/1, emea/0, us/0, us/1).
        assert!(fastest.jobs.iter().all(|j| j.target == Target::Machine(2)));
        let regions = default_input_plan("region-rr", 9);
        let r: Vec<_> = regions.jobs.iter().map(|j| j.target).collect();
        assert_eq!(
            r[0..3],
            [Target::Region(0), Target::Region(1), Target::Region(2)]
        );
        let random = default_input_plan("random", 7);
        assert!(random.jobs.iter().all(|j| j.target == Target::Any));
        let ids: Vec<u32> = random.jobs.iter().map(|j| j.id).collect();
        assert_eq!(ids, (0..7).collect::<Vec<u32>>());
        assert!(random.queues[0].agents >= 1 && random.queues[0].agents <= 7);
    }
}
