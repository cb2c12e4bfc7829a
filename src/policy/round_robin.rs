//! Round robin, over regions (`region-rr`, `/work/<region>`, the forwarding unit picks the machine)
//! or over machines (`machine-rr`, `/work/<region>/<machine>`). Equal shares whatever the
//! machines' distance or speed: simple, predictable, and as slow as the slowest share
//! (NGINX's and HAProxy's default, `../shared/reference/load-balancing-anchors.md`).

use super::random::{one_queue_plan, region_random_shares};
use super::sizing::{check_up, even_shares};
use super::{Plan, PlanInput, Policy, PolicyError};
use crate::endpoint::Target;

pub struct RegionRr;
pub struct MachineRr;

impl Policy for RegionRr {
    fn name(&self) -> &'static str {
        "region-rr"
    }

    fn plan(&self, input: &PlanInput) -> Result<Plan, PolicyError> {
        let cal = input.calibration;
        check_up(cal)?;
        let regions: Vec<u16> = (0..input.layout.regions.len())
            .filter(|&r| {
                input
                    .layout
                    .machines_of(r)
                    .iter()
                    .any(|&m| cal.machines.get(m).is_some_and(|e| e.up))
            })
            .map(|r| r as u16)
            .collect();
        let shares = region_random_shares(cal, input.layout);
        Ok(one_queue_plan(
            self.name(),
            format!("round robin over {} regions", regions.len()),
            input,
            &shares,
            |i| Target::Region(regions[i % regions.len()]),
        ))
    }
}

impl Policy for MachineRr {
    fn name(&self) -> &'static str {
        "machine-rr"
    }

    fn plan(&self, input: &PlanInput) -> Result<Plan, PolicyError> {
        let cal = input.calibration;
        check_up(cal)?;
        let machines = cal.up_machines();
        Ok(one_queue_plan(
            self.name(),
            format!("round robin over {} machines", machines.len()),
            input,
            &even_shares(&machines),
            |i| Target::Machine(machines[i % machines.len()] as u16),
        ))
    }
}
