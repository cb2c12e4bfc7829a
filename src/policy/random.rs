//! `random`: every job to `GET /work`, the forwarding unit's own random choice of region and
//! machine. The baseline every other policy must beat (Envoy notes that random beats round robin
//! when nothing checks the hosts' health).

use super::window::{Paced, Rule};
use super::{Binder, JobCtx, Policy, PolicyError, StartInput, View};
use crate::endpoint::Target;

pub struct Random;

struct AnyMachine;

impl Rule for AnyMachine {
    fn target(&mut self, _view: &View, _job: &JobCtx) -> Option<Target> {
        Some(Target::Any)
    }

    fn reason(&self) -> String {
        "every job to /work: the forwarding unit picks a random region, then a random machine"
            .into()
    }
}

impl Policy for Random {
    fn name(&self) -> &'static str {
        "random"
    }

    fn start(&self, input: &StartInput) -> Result<Box<dyn Binder>, PolicyError> {
        Ok(Box::new(Paced::new(AnyMachine, input)))
    }
}
