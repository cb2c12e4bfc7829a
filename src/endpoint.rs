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

impl MachineId {
    /// `region/index`, as every output of cmdunit writes it.
    pub fn parse(s: &str) -> Result<MachineId, String> {
        let bad = || format!("a machine is written REGION/INDEX (e.g. asia/0), got {s:?}");
        let (region, index) = s.split_once('/').ok_or_else(bad)?;
        let ok_region = !region.is_empty()
            && region.len() <= 64
            && region
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        let index: u32 = index.parse().map_err(|_| bad())?;
        if !ok_region || index > 9999 {
            return Err(bad());
        }
        Ok(MachineId::new(region, index))
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
    /// The machines the service's API documents: `asia` 0 and 1, `emea` 0, `us` 0 and 1. This is
    /// the interface's shape (which paths exist), not a measurement of any of them; another
    /// system is described with `--machines`.
    pub fn documented() -> Layout {
        Layout::new(vec![
            MachineId::new("asia", 0),
            MachineId::new("asia", 1),
            MachineId::new("emea", 0),
            MachineId::new("us", 0),
            MachineId::new("us", 1),
        ])
    }

    /// A layout from `asia/0,asia/1,...`; machines must be distinct and well formed.
    pub fn parse(list: &str) -> Result<Layout, String> {
        let mut machines = Vec::new();
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let m = MachineId::parse(item)?;
            if machines.contains(&m) {
                return Err(format!("machine {m} is listed twice"));
            }
            machines.push(m);
        }
        if machines.is_empty() {
            return Err("no machine given".into());
        }
        if machines.len() > MAX_MACHINES {
            return Err(format!("at most {MAX_MACHINES} machines"));
        }
        Ok(Layout::new(machines))
    }

    /// How many distinct targets there are: `/work`, one per region, one per machine.
    pub fn target_count(&self) -> usize {
        1 + self.regions.len() + self.machines.len()
    }

    /// A dense index of `target` in `0..target_count()` (`Late` counts as `/work`), so that
    /// per-target data (such as prebuilt request paths) can live in a flat vector.
    pub fn target_index(&self, target: Target) -> usize {
        match target {
            Target::Any | Target::Late => 0,
            Target::Region(r) => 1 + r as usize,
            Target::Machine(m) => 1 + self.regions.len() + m as usize,
        }
    }

    /// The target of a dense index (inverse of [`Layout::target_index`]).
    pub fn target_at(&self, i: usize) -> Target {
        let r = self.regions.len();
        if i == 0 {
            Target::Any
        } else if i <= r {
            Target::Region((i - 1) as u16)
        } else {
            Target::Machine((i - 1 - r) as u16)
        }
    }

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

/// At most this many machines in a layout (indices are `u16`; far more than any real system).
pub const MAX_MACHINES: usize = 4096;

/// The largest `response_time` or `work_time` accepted in an answer, ms (a day). Larger values
/// cannot be timings of one request, so such an answer is a bad response.
pub const MAX_ANSWER_MS: u64 = 86_400_000;

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
