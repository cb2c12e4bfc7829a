//! Health of machines and forwarding units: who may be chosen, and for how long not.
//!
//! Machines (after Envoy's outlier detection): a machine failing `eject_after` attempts in a row
//! is ejected for a while, doubling with each ejection; it is readmitted when the time is up and
//! gets another chance. A machine is ejected only while another one that is not ejected did not
//! fail its last attempt — when every machine fails, the fault is not theirs (the unit, the
//! network), and ejecting them all would stop the batch.
//!
//! Forwarding units: only connection failures count against a unit (a 5xx is an answer). Two
//! dropped connections can be a blip; after `UNIT_SUSPEND_AFTER` in a row the unit is
//! suspended, then probed with one attempt after a backoff that doubles; it is declared lost for
//! the batch only after `UNIT_PROBES` probes in a row fail. A healthy unit that reset a few
//! connections stays in use.

use std::time::{Duration, Instant};

/// Connection failures in a row that suspend a forwarding unit.
pub const UNIT_SUSPEND_AFTER: u32 = 3;
/// Failed probes in a row after which a suspended unit is lost for the batch.
pub const UNIT_PROBES: u32 = 5;
/// The first backoff before probing a suspended unit (wall time: a refused connection is as
/// quick at any time scale); it doubles with each failed probe.
pub const UNIT_FIRST_BACKOFF: Duration = Duration::from_millis(50);

#[derive(Clone, Debug, Default)]
pub struct MachineHealth {
    consecutive: u32,
    ejections: u32,
    ejected_until: Option<Instant>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnitState {
    Up,
    /// Refusing connections; probed again at the instant given.
    Suspended(Instant),
    /// One probe attempt allowed in flight.
    Probing,
    Lost,
}

#[derive(Clone, Debug)]
pub struct UnitHealth {
    pub state: UnitState,
    consecutive: u32,
    failed_probes: u32,
}

impl Default for UnitHealth {
    fn default() -> Self {
        UnitHealth {
            state: UnitState::Up,
            consecutive: 0,
            failed_probes: 0,
        }
    }
}

/// What changed for a unit after an attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnitChange {
    None,
    Suspended,
    Lost,
    Recovered,
}

impl UnitHealth {
    /// May a new attempt go through this unit now (with `in_flight` already on it)?
    pub fn usable(&self, in_flight: u32) -> bool {
        match self.state {
            UnitState::Up => true,
            UnitState::Probing => in_flight == 0,
            UnitState::Suspended(_) | UnitState::Lost => false,
        }
    }

    /// Moves a suspended unit whose backoff is over to probing.
    pub fn readmit(&mut self, now: Instant) {
        if let UnitState::Suspended(at) = self.state {
            if now >= at {
                self.state = UnitState::Probing;
            }
        }
    }

    /// When a suspended unit will be probed.
    pub fn probe_at(&self) -> Option<Instant> {
        match self.state {
            UnitState::Suspended(at) => Some(at),
            _ => None,
        }
    }

    /// Records an attempt's result: `connect_failed` when the connection was refused or dropped.
    pub fn record(&mut self, connect_failed: bool, now: Instant) -> UnitChange {
        if !connect_failed {
            let was_down = self.state != UnitState::Up;
            self.consecutive = 0;
            self.failed_probes = 0;
            if self.state == UnitState::Lost {
                // An answer from an attempt sent before it was declared lost: keep the verdict,
                // the batch has moved on.
                return UnitChange::None;
            }
            self.state = UnitState::Up;
            return if was_down {
                UnitChange::Recovered
            } else {
                UnitChange::None
            };
        }
        self.consecutive += 1;
        match self.state {
            UnitState::Up if self.consecutive >= UNIT_SUSPEND_AFTER => {
                self.state = UnitState::Suspended(now + UNIT_FIRST_BACKOFF);
                UnitChange::Suspended
            }
            UnitState::Probing => {
                self.failed_probes += 1;
                if self.failed_probes >= UNIT_PROBES {
                    self.state = UnitState::Lost;
                    UnitChange::Lost
                } else {
                    let backoff = UNIT_FIRST_BACKOFF * (1u32 << self.failed_probes.min(10));
                    self.state = UnitState::Suspended(now + backoff);
                    UnitChange::Suspended
                }
            }
            _ => UnitChange::None,
        }
    }
}

impl MachineHealth {
    pub fn ejected(&self) -> bool {
        self.ejected_until.is_some()
    }

    pub fn ejected_until(&self) -> Option<Instant> {
        self.ejected_until
    }

    /// Ends an ejection whose time is up; true when it did.
    pub fn readmit(&mut self, now: Instant) -> bool {
        match self.ejected_until {
            Some(until) if now >= until => {
                self.ejected_until = None;
                true
            }
            _ => false,
        }
    }

    pub fn record_ok(&mut self) {
        self.consecutive = 0;
    }

    /// Did its last attempt succeed (or has it not been tried)?
    pub fn last_ok(&self) -> bool {
        self.consecutive == 0
    }
}

/// Records a failure of machine `m`; ejects it when it has failed `eject_after` in a row and
/// another machine is in and did not fail its last attempt. `eject_wall` is the first ejection's
/// length (doubling after). Returns true when `m` was ejected now.
pub fn record_machine_failure(
    all: &mut [MachineHealth],
    m: usize,
    eject_after: u32,
    eject_wall: Duration,
    now: Instant,
) -> bool {
    let Some(h) = all.get_mut(m) else {
        return false;
    };
    h.consecutive += 1;
    if h.consecutive < eject_after || h.ejected() {
        return false;
    }
    let healthy_other = all
        .iter()
        .enumerate()
        .any(|(i, o)| i != m && !o.ejected() && o.last_ok());
    if !healthy_other {
        return false;
    }
    let h = &mut all[m];
    h.ejections += 1;
    h.consecutive = 0;
    let factor = 1u32 << (h.ejections - 1).min(10);
    h.ejected_until = Some(now + eject_wall * factor);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_unit_that_reset_two_connections_stays_up() {
        let now = Instant::now();
        let mut u = UnitHealth::default();
        assert_eq!(u.record(true, now), UnitChange::None);
        assert_eq!(u.record(true, now), UnitChange::None);
        assert_eq!(u.record(false, now), UnitChange::None);
        assert_eq!(u.state, UnitState::Up);
        assert!(u.usable(100));
    }

    #[test]
    fn a_refusing_unit_is_suspended_probed_and_lost_only_after_failed_probes() {
        let now = Instant::now();
        let mut u = UnitHealth::default();
        for _ in 0..UNIT_SUSPEND_AFTER - 1 {
            u.record(true, now);
        }
        assert_eq!(u.record(true, now), UnitChange::Suspended);
        assert!(!u.usable(0));
        let mut t = now;
        for probe in 0..UNIT_PROBES {
            t = u.probe_at().unwrap();
            u.readmit(t);
            assert_eq!(u.state, UnitState::Probing);
            assert!(u.usable(0) && !u.usable(1));
            let change = u.record(true, t);
            if probe + 1 < UNIT_PROBES {
                assert_eq!(change, UnitChange::Suspended);
            } else {
                assert_eq!(change, UnitChange::Lost);
            }
        }
        assert!(!u.usable(0));
        assert!(t > now);
    }

    #[test]
    fn a_probe_that_succeeds_brings_the_unit_back() {
        let now = Instant::now();
        let mut u = UnitHealth::default();
        for _ in 0..UNIT_SUSPEND_AFTER {
            u.record(true, now);
        }
        let at = u.probe_at().unwrap();
        u.readmit(at);
        assert_eq!(u.record(false, at), UnitChange::Recovered);
        assert_eq!(u.state, UnitState::Up);
    }

    #[test]
    fn three_machines_down_of_five_are_all_ejected() {
        let now = Instant::now();
        let mut all = vec![MachineHealth::default(); 5];
        let mut ejected = 0;
        for m in 0..3 {
            for _ in 0..3 {
                if record_machine_failure(&mut all, m, 3, Duration::from_secs(1), now) {
                    ejected += 1;
                }
            }
        }
        assert_eq!(ejected, 3);
        assert!(!all[3].ejected() && !all[4].ejected());
    }

    #[test]
    fn when_every_machine_fails_the_last_one_is_not_ejected() {
        let now = Instant::now();
        let mut all = vec![MachineHealth::default(); 2];
        for m in 0..2 {
            for _ in 0..3 {
                record_machine_failure(&mut all, m, 3, Duration::from_secs(1), now);
            }
        }
        assert!(all[0].ejected());
        assert!(!all[1].ejected());
    }

    #[test]
    fn ejection_doubles_and_ends() {
        let now = Instant::now();
        let mut all = vec![MachineHealth::default(); 2];
        for _ in 0..3 {
            record_machine_failure(&mut all, 0, 3, Duration::from_secs(1), now);
        }
        let first = all[0].ejected_until().unwrap() - now;
        assert!(all[0].readmit(now + first));
        for _ in 0..3 {
            record_machine_failure(&mut all, 0, 3, Duration::from_secs(1), now);
        }
        assert_eq!(all[0].ejected_until().unwrap() - now, first * 2);
    }
}
