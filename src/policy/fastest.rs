//! `fastest`: everything to the machine with the shortest trip. For a handful of jobs nothing is
//! faster (model.md: N = 1 finishes at the shortest trip); past a machine's capacity the queue at
//! that one machine grows by its service time per job.

use super::random::one_queue_plan;
use super::sizing::{check_up, trip_ms};
use super::{Plan, PlanInput, Policy, PolicyError};
use crate::calibrate::Calibration;
use crate::endpoint::Target;

pub struct Fastest;

/// The up machine with the shortest trip (ties: the lowest index).
pub(crate) fn fastest_machine(cal: &Calibration) -> Option<usize> {
    cal.up_machines()
        .into_iter()
        .min_by(|&a, &b| trip_ms(cal, a).total_cmp(&trip_ms(cal, b)))
}

impl Policy for Fastest {
    fn name(&self) -> &'static str {
        "fastest"
    }

    fn plan(&self, input: &PlanInput) -> Result<Plan, PolicyError> {
        let cal = input.calibration;
        check_up(cal)?;
        let m = fastest_machine(cal).ok_or(PolicyError::NoMachineUp)?;
        Ok(one_queue_plan(
            self.name(),
            format!(
                "everything to {}, the shortest trip ({:.0} ms)",
                cal.machines[m].id,
                trip_ms(cal, m)
            ),
            input,
            &[(m, 1.0)],
            |_| Target::Machine(m as u16),
        ))
    }
}
