//! `region-rr` and `machine-rr`: round robin over regions (`/work/<region>`) or over machines
//! (`/work/<region>/<machine>`), NGINX's and HAProxy's default. Equal shares whatever the
//! distance, so once the forwarding unit is not the limit the farthest share sets the makespan.
//! Job `i` goes to target `i mod k`; a retry goes to the next one; an ejected machine is
//! skipped.

use super::window::{Paced, Rule};
use super::{Binder, JobCtx, Policy, PolicyError, StartInput, View};
use crate::endpoint::{Layout, Target};

pub struct RegionRr;
pub struct MachineRr;

struct Regions(usize);
struct Machines;

impl Rule for Regions {
    fn target(&mut self, _view: &View, job: &JobCtx) -> Option<Target> {
        let r = (u64::from(job.id) + u64::from(job.attempt)) % self.0.max(1) as u64;
        Some(Target::Region(r as u16))
    }

    fn reason(&self) -> String {
        format!("round robin over the {} regions", self.0)
    }
}

impl Rule for Machines {
    fn target(&mut self, view: &View, job: &JobCtx) -> Option<Target> {
        let m = view.machines.len();
        let first = ((u64::from(job.id) + u64::from(job.attempt)) % m.max(1) as u64) as usize;
        (0..m)
            .map(|k| (first + k) % m)
            .find(|&i| !view.machines[i].ejected && Some(i) != job.avoid)
            .map(|i| Target::Machine(i as u16))
    }

    fn reason(&self) -> String {
        "round robin over the machines".into()
    }
}

impl Policy for RegionRr {
    fn name(&self) -> &'static str {
        "region-rr"
    }

    fn start(&self, input: &StartInput) -> Result<Box<dyn Binder>, PolicyError> {
        Ok(Box::new(Paced::new(
            Regions(input.layout.regions.len()),
            input,
        )))
    }
}

impl Policy for MachineRr {
    fn name(&self) -> &'static str {
        "machine-rr"
    }

    fn start(&self, input: &StartInput) -> Result<Box<dyn Binder>, PolicyError> {
        check(input.layout)?;
        Ok(Box::new(Paced::new(Machines, input)))
    }
}

fn check(layout: &Layout) -> Result<(), PolicyError> {
    if layout.machines.is_empty() {
        Err(PolicyError::NoMachineUp)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{fresh, Loads};
    use super::super::{Decision, Policy, StartInput};
    use super::*;

    #[test]
    fn machine_rr_gives_equal_shares_and_skips_ejected_machines() {
        let layout = Layout::documented();
        let input = StartInput {
            n: 103,
            layout: &layout,
            forwarder_urls: &["http://f".to_string()],
            model: None,
            seed: 0,
            time_scale: Default::default(),
        };
        let mut b = MachineRr.start(&input).unwrap();
        let mut loads = Loads::new(5, 1);
        let mut counts = [0; 5];
        for id in 0..103 {
            match b.next(&loads.view(0.0, 1), Some(&fresh(id))) {
                Decision::Send { route, .. } => match route.target {
                    Target::Machine(m) => counts[m as usize] += 1,
                    t => panic!("{t:?}"),
                },
                d => panic!("{d:?}"),
            }
        }
        assert!(counts.iter().all(|&c| c == 20 || c == 21), "{counts:?}");
        loads.machines[1].ejected = true;
        match b.next(&loads.view(0.0, 1), Some(&fresh(1))) {
            Decision::Send { route, .. } => assert_eq!(route.target, Target::Machine(2)),
            d => panic!("{d:?}"),
        }
    }
}
