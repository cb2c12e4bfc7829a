//! Helpers for the policies' unit tests: a view over a calibration's machines and units, and
//! observations as the dispatcher would make them.

use super::{Answered, ForwarderLoad, JobCtx, MachineLoad, Observation, Route, View};
use crate::endpoint::Target;

pub struct Loads {
    pub machines: Vec<MachineLoad>,
    pub forwarders: Vec<ForwarderLoad>,
}

impl Loads {
    pub fn new(machines: usize, forwarders: usize) -> Loads {
        Loads {
            machines: vec![MachineLoad::default(); machines],
            forwarders: vec![
                ForwarderLoad {
                    in_flight: 0,
                    usable: true
                };
                forwarders
            ],
        }
    }

    pub fn view(&self, now_ms: f64, unissued: u64) -> View<'_> {
        View {
            now_ms,
            machines: &self.machines,
            forwarders: &self.forwarders,
            unissued,
            alive: 0,
        }
    }

    /// Books a route as the dispatcher does.
    pub fn book(&mut self, route: Route) {
        self.forwarders[route.forwarder as usize].in_flight += 1;
        if let Target::Machine(m) = route.target {
            self.machines[m as usize].in_flight += 1;
        }
    }

    pub fn unbook(&mut self, route: Route) {
        self.forwarders[route.forwarder as usize].in_flight -= 1;
        if let Target::Machine(m) = route.target {
            self.machines[m as usize].in_flight -= 1;
        }
    }
}

pub fn fresh(id: u32) -> JobCtx {
    JobCtx {
        id,
        attempt: 0,
        avoid: None,
        previous: None,
    }
}

pub fn ok(job: u32, route: Route, sent: f64, end: f64, rt: u64) -> Observation {
    let machine = match route.target {
        Target::Machine(m) => Some(m as usize),
        _ => None,
    };
    Observation {
        job,
        route,
        machine,
        sent_ms: sent,
        end_ms: end,
        result: Ok(Answered {
            response_time: rt,
            work_time: 20,
        }),
        superseded: false,
    }
}
