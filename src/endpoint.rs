//! Machines and endpoints. A machine is named `region/index` (e.g. `asia/0`), the way every
//! output of cmdunit names it; the forwarding unit's JSON names it `"Machine 0"` in `"asia"`.

use serde::{Deserialize, Serialize};
use std::fmt;

/// One worker machine: its region and its index within the region.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MachineId {
    pub region: String,
    pub index: u32,
}

impl MachineId {
    pub fn new(region: impl Into<String>, index: u32) -> Self {
        MachineId {
            region: region.into(),
            index,
        }
    }

    /// The path that reaches exactly this machine through a forwarding unit.
    pub fn path(&self) -> String {
        format!("/work/{}/{}", self.region, self.index)
    }
}

impl fmt::Display for MachineId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.region, self.index)
    }
}

/// What a job asks the forwarding unit for. Indices refer to the run's [`Layout`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// `GET /work`: the forwarding unit picks a random machine in a random region.
    Any,
    /// `GET /work/<region>`: the forwarding unit picks a random machine of that region.
    Region(u16),
    /// `GET /work/<region>/<machine>`.
    Machine(u16),
    /// Not chosen yet: a late-binding policy picks the machine when an agent takes the job.
    Late,
}

/// The regions and machines of a run, in a fixed order that indices refer to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layout {
    pub regions: Vec<String>,
    pub machines: Vec<MachineId>,
}

impl Layout {
    pub fn new(machines: Vec<MachineId>) -> Self {
        let mut regions: Vec<String> = Vec::new();
        for m in &machines {
            if !regions.contains(&m.region) {
                regions.push(m.region.clone());
            }
        }
        Layout { regions, machines }
    }

    /// The request path for a target (`Late` must be bound first; it maps to `/work`).
    pub fn path(&self, target: Target) -> String {
        match target {
            Target::Any | Target::Late => "/work".to_string(),
            Target::Region(r) => format!("/work/{}", self.regions[r as usize]),
            Target::Machine(m) => self.machines[m as usize].path(),
        }
    }

    pub fn machine_index(&self, region: &str, index: u32) -> Option<usize> {
        self.machines
            .iter()
            .position(|m| m.region == region && m.index == index)
    }

    pub fn region_index(&self, region: &str) -> Option<usize> {
        self.regions.iter().position(|r| r == region)
    }

    /// Indices of the machines of region `r`.
    pub fn machines_of(&self, r: usize) -> Vec<usize> {
        let name = &self.regions[r];
        (0..self.machines.len())
            .filter(|&i| &self.machines[i].region == name)
            .collect()
    }
}

/// The forwarding unit's answer body, exactly as the original sent it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkAnswer {
    pub machine: String,
    pub region: String,
    pub response_time: u64,
    pub work_time: u64,
}

impl WorkAnswer {
    /// The machine index parsed from `"Machine 3"`.
    pub fn machine_index(&self) -> Option<u32> {
        self.machine.strip_prefix("Machine ")?.trim().parse().ok()
    }
}
