//! The two-layer schedule: which forwarding unit passes each job when, and which machine it then
//! goes to, so that the batch finishes as early as the model allows.
//!
//! Jobs leave the forwarding units' one-at-a-time handling stages at fixed times (the "slots": unit
//! `k` passes a job every `s_k`). A job that leaves at `t` towards machine `m` arrives at
//! `t + latency_m/2`, waits its turn (first come, first served, `c_m` at a time), is served for
//! `s_m` and is answered `latency_m/2 + overhead` later (`../shared/reference/model.md`).
//!
//! Which machine each slot should feed is decided backwards from a target makespan `T`: the last
//! slot first, each to the machine with the most slack left (the latest it could still start
//! there minus when it would arrive). The last jobs thus land on the nearest machines (the tail
//! is what costs: emea answers ~345 ms after a job leaves the unit, asia ~590 ms), the earliest
//! on the far ones ("far regions first"), and when all slots leave at once (no ceiling) it is the
//! water-filling of the machines' bound. `T` is the smallest makespan for which this succeeds
//! (bisection).

use crate::calibrate::Calibration;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// One pass through a forwarding unit's handling stage.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Slot {
    pub forwarder: usize,
    /// When the job enters the handling stage (model ms after the batch start).
    pub start_ms: f64,
    /// When it leaves it, towards the machine.
    pub exit_ms: f64,
}

/// The `n` earliest slots over the up forwarding units, by exit time. Units without a ceiling
/// (`service_ms` 0) take every job at time 0, shared round robin among them.
pub fn forwarder_slots(n: usize, cal: &Calibration) -> Vec<Slot> {
    let up = cal.up_forwarders();
    let free: Vec<usize> = up
        .iter()
        .copied()
        .filter(|&f| cal.forwarders[f].service_ms <= 0.0)
        .collect();
    if !free.is_empty() {
        return (0..n)
            .map(|i| Slot {
                forwarder: free[i % free.len()],
                start_ms: 0.0,
                exit_ms: 0.0,
            })
            .collect();
    }
    // Merge the units' streams; integer microseconds keep the heap order exact.
    let us = |ms: f64| (ms * 1000.0).round() as u64;
    let mut heap: BinaryHeap<Reverse<(u64, usize, u64)>> = up
        .iter()
        .map(|&f| Reverse((us(cal.forwarders[f].service_ms), f, 1)))
        .collect();
    let mut slots = Vec::with_capacity(n);
    while slots.len() < n {
        let Some(Reverse((_, f, j))) = heap.pop() else {
            break;
        };
        let s = cal.forwarders[f].service_ms;
        slots.push(Slot {
            forwarder: f,
            start_ms: (j - 1) as f64 * s,
            exit_ms: j as f64 * s,
        });
        heap.push(Reverse((us((j + 1) as f64 * s), f, j + 1)));
    }
    slots
}

/// Which machine each slot feeds, and the makespan the model predicts for it.
#[derive(Clone, Debug)]
pub struct Assignment {
    pub machine: Vec<usize>,
    pub makespan_ms: f64,
}

/// Per machine: half its latency, its service time, and one "latest start" per server.
struct Lane {
    m: usize,
    half: f64,
    service: f64,
    next_start: Vec<f64>,
}

fn try_assign(slots: &[Slot], cal: &Calibration, t: f64, out: &mut [usize]) -> bool {
    let mut lanes: Vec<Lane> = cal
        .up_machines()
        .into_iter()
        .map(|m| {
            let e = &cal.machines[m];
            Lane {
                m,
                half: e.latency_ms / 2.0,
                service: e.service_ms,
                next_start: vec![f64::INFINITY; e.concurrency.max(1) as usize],
            }
        })
        .collect();
    for (i, slot) in slots.iter().enumerate().rev() {
        let overhead = cal.forwarders[slot.forwarder].overhead_ms;
        let mut best: Option<(usize, usize, f64, f64)> = None; // lane, server, slack, start
        for (li, lane) in lanes.iter().enumerate() {
            let (server, next) = lane
                .next_start
                .iter()
                .copied()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(&b.1))
                .unwrap_or((0, f64::INFINITY));
            let latest_finish = next.min(t - lane.half - overhead);
            let latest_start = latest_finish - lane.service;
            let slack = latest_start - (slot.exit_ms + lane.half);
            if slack >= -1e-9 && best.is_none_or(|b| slack > b.2) {
                best = Some((li, server, slack, latest_start));
            }
        }
        let Some((li, server, _, start)) = best else {
            return false;
        };
        lanes[li].next_start[server] = start;
        out[i] = lanes[li].m;
    }
    true
}

/// The best assignment the backward rule finds for these slots: the smallest feasible makespan
/// to within 0.25 ms.
pub fn assign(slots: &[Slot], cal: &Calibration) -> Assignment {
    let mut machine = vec![0usize; slots.len()];
    if slots.is_empty() || cal.up_machines().is_empty() {
        return Assignment {
            machine,
            makespan_ms: 0.0,
        };
    }
    let n = slots.len();
    let bound = crate::bound::lower_bound(n, cal).machines_ms;
    let last_exit = slots.iter().map(|s| s.exit_ms).fold(0.0, f64::max);
    let min_trip = cal
        .up_machines()
        .into_iter()
        .map(|m| {
            let e = &cal.machines[m];
            e.latency_ms + e.service_ms
        })
        .fold(f64::INFINITY, f64::min);
    let mut lo = bound.max(last_exit + min_trip) - 1.0;
    let mut hi = lo + 64.0;
    while !try_assign(slots, cal, hi, &mut machine) {
        lo = hi;
        hi = lo + (hi - lo + 1.0) * 2.0;
    }
    while hi - lo > 0.25 {
        let mid = 0.5 * (lo + hi);
        if try_assign(slots, cal, mid, &mut machine) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    try_assign(slots, cal, hi, &mut machine);
    Assignment {
        machine,
        makespan_ms: hi,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::calibrate::model_calibration as cal;

    #[test]
    fn slots_merge_the_units_streams() {
        let s = forwarder_slots(7, &cal(2, 17.0));
        let exits: Vec<f64> = s.iter().map(|s| s.exit_ms).collect();
        assert_eq!(exits, [17.0, 17.0, 34.0, 34.0, 51.0, 51.0, 68.0]);
        assert_eq!(s[0].forwarder, 0);
        assert_eq!(s[1].forwarder, 1);
        let free = forwarder_slots(3, &cal(2, 0.0));
        assert!(free.iter().all(|s| s.exit_ms == 0.0));
    }

    #[test]
    fn the_last_jobs_through_the_unit_go_to_the_nearest_machines() {
        let c = cal(1, 17.0);
        let emea = c.layout().machine_index("emea", 0).unwrap();
        let slots = forwarder_slots(100, &c);
        let a = assign(&slots, &c);
        assert_eq!(a.machine[99], emea);
        // The bound is 1700 + trip(emea) = 2045; the backward rule stays within 2%.
        let b = crate::bound::lower_bound(100, &c).lower_bound_ms;
        assert!(
            a.makespan_ms >= b - 1e-6 && a.makespan_ms < b * 1.02,
            "{a:?} vs {b}"
        );
        // Far machines get the early slots only.
        let last_asia = (0..100)
            .rev()
            .find(|&i| c.machines[a.machine[i]].id.region == "asia");
        assert!(last_asia.is_none_or(|i| i < 80), "{last_asia:?}");
    }

    #[test]
    fn without_a_ceiling_it_is_the_machines_water_filling() {
        let c = cal(1, 0.0);
        for n in [1, 10, 100, 1000] {
            let a = assign(&forwarder_slots(n, &c), &c);
            let b = crate::bound::lower_bound(n, &c).machines_ms;
            assert!(
                a.makespan_ms <= b + 0.5,
                "N = {n}: {} vs {b}",
                a.makespan_ms
            );
        }
        let one = assign(&forwarder_slots(1, &c), &c);
        assert_eq!(c.machines[one.machine[0]].id.region, "emea");
    }
}
