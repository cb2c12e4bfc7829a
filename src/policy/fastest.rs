//! `fastest`: every job to the machine with the shortest trip in the model. Optimal for one job;
//! beyond a dozen that machine's queue (one job per service time) is slower than spreading.

use super::window::{Paced, Rule};
use super::{require_model, up_machines, Binder, JobCtx, Policy, PolicyError, StartInput, View};
use crate::endpoint::Target;

pub struct Fastest;

/// Machines by their model trip, shortest first.
struct ByTrip {
    order: Vec<usize>,
    names: Vec<String>,
}

impl Rule for ByTrip {
    fn target(&mut self, view: &View, job: &JobCtx) -> Option<Target> {
        self.order
            .iter()
            .copied()
            .find(|&m| !view.machines[m].ejected && Some(m) != job.avoid)
            .map(|m| Target::Machine(m as u16))
    }

    fn reason(&self) -> String {
        format!(
            "everything to the machine with the shortest trip ({})",
            self.names.first().map_or("none", String::as_str)
        )
    }
}

impl Policy for Fastest {
    fn name(&self) -> &'static str {
        "fastest"
    }

    fn needs_model(&self) -> bool {
        true
    }

    fn start(&self, input: &StartInput) -> Result<Box<dyn Binder>, PolicyError> {
        let model = require_model(input, self.name())?;
        let mut order = up_machines(model)?;
        let trip = |m: usize| model.machines[m].latency_ms + model.machines[m].service_ms;
        order.sort_by(|&a, &b| trip(a).total_cmp(&trip(b)));
        let names = order
            .iter()
            .map(|&m| model.machines[m].id.to_string())
            .collect();
        Ok(Box::new(Paced::new(ByTrip { order, names }, input)))
    }
}
