//! The lower bound on a batch's makespan: no policy can finish N jobs sooner.
//!
//! Two layers can limit a batch:
//! - the machines: machine `m` answers its first job at the earliest `trip_m` after the batch
//!   starts and, serving `c_m` at a time, `c_m` more every `s_m` after that. The machines' bound is
//!   the water level `T` at which they can together have answered N jobs:
//!   the smallest `T` with `Σ_m c_m · max(0, ⌊(T − trip_m)/s_m⌋ + 1) ≥ N`.
//! - the forwarding units: every job passes one unit's one-at-a-time handling stage. Unit `k`
//!   passes its `j`-th job at the earliest `j · s_k`, so the N-th job leaves the units no sooner
//!   than the smallest `T_f` with `Σ_k ⌊T_f / s_k⌋ ≥ N`, and then still needs the shortest trip.
//!   A unit with `s_k = 0` has no ceiling, and so neither has the layer.
//!
//! - both at once: the last `j` jobs to pass the units pass no sooner than the `(N − j + 1)`-th
//!   pass, and `j` jobs need at least the machines' water level for `j` after that, so the
//!   makespan is at least `pass(N − j + 1) + machines(j)` for every `j`. (With the stage after
//!   the worker call the same sum reads the other way round: the `(N − j + 1)`-th answer leaves
//!   the machines no sooner than `machines(N − j + 1)`, and `j` jobs still have to pass.) At
//!   `j = N` this is the machines' bound plus one pass, at `j = 1` the units'; in between it is
//!   tighter than either when the two layers are close, as with several units over five
//!   machines. Any set of `j` gives a valid bound; a few hundred are taken (every `j` up to 256,
//!   then a geometric grid), so the cost stays flat in N.
//!
//! The bound is the latest of these. Only machines and units that are `up` count. With K equal
//! units and far more machine capacity than unit capacity it is `⌈N/K⌉ · s + min trip`.

use crate::calibrate::Calibration;
use serde::{Deserialize, Serialize};

/// The lower bound for one batch size, model milliseconds. `f64::INFINITY` when nothing is up.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Bound {
    /// When the machines could have answered all N, were the forwarding units infinitely fast.
    pub machines_ms: f64,
    /// When the last job could leave the forwarding units plus the shortest trip after them.
    pub forwarders_ms: f64,
    /// The latest of the two and of the two layers taken together.
    pub lower_bound_ms: f64,
}

/// A stream of completions: the first at `start`, then `mult` more every `step` (step 0 means
/// unlimited at `start`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Stream {
    pub start: f64,
    pub step: f64,
    pub mult: f64,
}

impl Stream {
    /// How many completions happen at or before `t`.
    pub fn count(&self, t: f64) -> f64 {
        if t + 1e-9 < self.start {
            0.0
        } else if self.step <= 0.0 {
            f64::INFINITY
        } else {
            self.mult * (((t - self.start) / self.step + 1e-9).floor() + 1.0)
        }
    }

    /// The last completion time at or before `t` (`t >= start`).
    fn last_event(&self, t: f64) -> f64 {
        if self.step <= 0.0 {
            self.start
        } else {
            self.start + ((t - self.start) / self.step + 1e-9).floor() * self.step
        }
    }
}

/// The time of the `n`-th completion over all streams (`n >= 1`); infinite if there are none.
pub(crate) fn nth_completion(n: u64, streams: &[Stream]) -> f64 {
    if streams.is_empty() {
        return f64::INFINITY;
    }
    let need = n as f64;
    let total = |t: f64| streams.iter().map(|s| s.count(t)).sum::<f64>();
    let mut lo = streams
        .iter()
        .map(|s| s.start)
        .fold(f64::INFINITY, f64::min);
    if total(lo) >= need {
        return lo;
    }
    if !lo.is_finite() {
        return f64::INFINITY;
    }
    let slowest = streams.iter().map(|s| s.step).fold(0.0, f64::max);
    // Grow the bracket by doubling its width; the width is kept at least a relative step above
    // `lo`, so that at huge times (where `lo + small == lo` in floating point) it still grows,
    // and the doubling is bounded, so absurd inputs end as "infinite" instead of looping.
    let mut width = slowest.max(1.0).max(lo.abs() * 1e-9);
    let mut hi = lo + width;
    let mut doublings = 0;
    while total(hi) < need {
        doublings += 1;
        if doublings > 2100 || !hi.is_finite() {
            return f64::INFINITY;
        }
        width *= 2.0;
        hi = lo + width;
    }
    // The count is a step function: bisect to well below one step, then snap to the event.
    for _ in 0..200 {
        if hi - lo < 1e-7 {
            break;
        }
        let mid = 0.5 * (lo + hi);
        if total(mid) >= need {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    streams
        .iter()
        .filter(|s| s.start <= hi + 1e-9)
        .map(|s| s.last_event(hi))
        .fold(f64::NEG_INFINITY, f64::max)
}

/// The machines' streams: when each up machine can answer jobs sent at time 0 through a unit
/// with overhead `overhead_ms`.
pub(crate) fn machine_streams(cal: &Calibration, overhead_ms: f64) -> Vec<Stream> {
    cal.machines
        .iter()
        .filter(|m| m.up)
        .map(|m| Stream {
            start: m.latency_ms + m.service_ms + overhead_ms,
            step: m.service_ms,
            mult: f64::from(m.concurrency.max(1)),
        })
        .collect()
}

/// The forwarding units' streams: when each up unit can pass jobs.
pub(crate) fn forwarder_streams(cal: &Calibration) -> Vec<Stream> {
    cal.forwarders
        .iter()
        .filter(|f| f.up)
        .map(|f| Stream {
            start: f.service_ms.max(0.0),
            step: f.service_ms.max(0.0),
            mult: 1.0,
        })
        .collect()
}

/// The smallest overhead among the up forwarding units (0 when none is up).
pub(crate) fn min_overhead(cal: &Calibration) -> f64 {
    let o = cal
        .forwarders
        .iter()
        .filter(|f| f.up)
        .map(|f| f.overhead_ms)
        .fold(f64::INFINITY, f64::min);
    if o.is_finite() {
        o
    } else {
        0.0
    }
}

/// The shortest makespan possible for `n` jobs sent at time 0, given the calibration.
pub fn lower_bound(n: u64, cal: &Calibration) -> Bound {
    if n == 0 {
        return Bound {
            machines_ms: 0.0,
            forwarders_ms: 0.0,
            lower_bound_ms: 0.0,
        };
    }
    let overhead = min_overhead(cal);
    let machines = machine_streams(cal, overhead);
    let machines_ms = nth_completion(n, &machines);
    let min_trip = machines
        .iter()
        .map(|s| s.start)
        .fold(f64::INFINITY, f64::min);
    let units = forwarder_streams(cal);
    let forwarders_ms = nth_completion(n, &units) + min_trip;
    Bound {
        machines_ms,
        forwarders_ms,
        lower_bound_ms: machines_ms
            .max(forwarders_ms)
            .max(both_layers(n, &units, &machines)),
    }
}

/// Exact for every `j` up to this, then a geometric grid.
const BOTH_LAYERS_EXACT: u64 = 256;

/// `max_j pass(N − j + 1) + machines(j)` over a set of `j` (see the module comment).
fn both_layers(n: u64, units: &[Stream], machines: &[Stream]) -> f64 {
    if units.is_empty() || units.iter().all(|u| u.step <= 0.0) {
        // No ceiling: the units pass everything at once, the machines' bound is the bound.
        return f64::NEG_INFINITY;
    }
    let mut best = f64::NEG_INFINITY;
    let mut j = 1u64;
    while j <= n {
        let v = nth_completion(n - j + 1, units) + nth_completion(j, machines);
        if v.is_finite() {
            best = best.max(v);
        }
        j = if j < BOTH_LAYERS_EXACT {
            j + 1
        } else if j == n {
            break;
        } else {
            (j + j / 8).min(n)
        };
    }
    best
}

/// How many jobs each machine (in the calibration's order) could answer by `t`, sent at time 0:
/// its share of the water level (0 for machines that are down).
pub fn machine_counts(t: f64, cal: &Calibration) -> Vec<i64> {
    let overhead = min_overhead(cal);
    cal.machines
        .iter()
        .map(|m| {
            if !m.up {
                return 0;
            }
            let s = Stream {
                start: m.latency_ms + m.service_ms + overhead,
                step: m.service_ms,
                mult: f64::from(m.concurrency.max(1)),
            };
            let c = s.count(t);
            if c.is_finite() {
                c.min(1e15) as i64
            } else {
                1
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model_calibration(k: usize) -> Calibration {
        crate::calibrate::test_model(k, 17.0)
    }

    #[test]
    fn matches_the_worked_table_of_model_md() {
        // (N, machines' bound, with K = 1, with K = 5), the table printed in whole ms.
        let table = [
            (1, 344.0, 361.0, 361.0),
            (10, 430.0, 520.0, 447.0),
            (100, 860.0, 2050.0, 877.0),
            (1000, 4730.0, 17350.0, 4747.0),
            (5000, 21930.0, 85350.0, 21947.0),
        ];
        let one = model_calibration(1);
        let five = model_calibration(5);
        for (n, machines, k1, k5) in table {
            let b1 = lower_bound(n, &one);
            let b5 = lower_bound(n, &five);
            assert_eq!(
                b1.machines_ms.floor(),
                machines,
                "machines, N = {n}: {b1:?}"
            );
            assert_eq!(b1.lower_bound_ms.floor(), k1, "K = 1, N = {n}: {b1:?}");
            assert_eq!(b5.lower_bound_ms.floor(), k5, "K = 5, N = {n}: {b5:?}");
            assert_eq!(b5.machines_ms, b1.machines_ms);
        }
    }

    /// Five units over five machines: the units pass 100 jobs in 340 ms and the machines alone
    /// could answer them by 860 ms, but no job leaves a unit before 17 ms, and the last ones
    /// leave too late to share the machines evenly. Taken together the layers bound more than
    /// either alone (the later of the two alone was 17 ms short here).
    #[test]
    fn two_close_layers_together_bound_more_than_either_alone() {
        let b = lower_bound(100, &model_calibration(5));
        assert!(
            b.lower_bound_ms >= b.machines_ms.max(b.forwarders_ms) + 17.0 - 1e-6,
            "{b:?}"
        );
        // Without a ceiling the units add nothing.
        let none = lower_bound(100, &crate::calibrate::test_model(5, 0.0));
        assert_eq!(none.lower_bound_ms, none.machines_ms);
    }

    #[test]
    fn only_up_machines_and_units_count() {
        let mut cal = model_calibration(2);
        let both = lower_bound(1000, &cal);
        cal.forwarders[1].up = false;
        let one_unit = lower_bound(1000, &cal);
        assert_eq!(one_unit.forwarders_ms.floor(), 17344.0);
        assert!(both.forwarders_ms < one_unit.forwarders_ms);
        // Without emea the shortest trip is us/1's: 350 + 21.5 + 13.
        cal.machines[2].up = false;
        let b = lower_bound(1, &cal);
        assert!((b.machines_ms - 384.5).abs() < 1e-6, "{b:?}");
        for m in &mut cal.machines {
            m.up = false;
        }
        assert!(lower_bound(1, &cal).lower_bound_ms.is_infinite());
    }

    #[test]
    fn a_unit_without_ceiling_leaves_the_machines_as_the_limit() {
        let mut cal = model_calibration(1);
        cal.forwarders[0].service_ms = 0.0;
        let b = lower_bound(1000, &cal);
        assert!((b.forwarders_ms - 344.5).abs() < 1e-6, "{b:?}");
        assert_eq!(b.lower_bound_ms, b.machines_ms);
    }

    #[test]
    fn units_of_different_speeds_share_the_batch_by_their_rates() {
        // One unit at 10 ms and one at 20 ms pass 3 jobs every 20 ms: 300 jobs by 2000 ms.
        let mut cal = model_calibration(2);
        cal.forwarders[0].service_ms = 10.0;
        cal.forwarders[1].service_ms = 20.0;
        let b = lower_bound(300, &cal);
        assert!((b.forwarders_ms - (2000.0 + 344.5)).abs() < 1e-6, "{b:?}");
    }

    #[test]
    fn absurd_latencies_end_instead_of_looping_forever() {
        let mut cal = model_calibration(1);
        cal.machines[0].latency_ms = 1e18;
        let b = lower_bound(1000, &cal);
        assert!(b.lower_bound_ms.is_finite());
        for m in &mut cal.machines {
            m.latency_ms = 1e300;
        }
        let b = lower_bound(1000, &cal);
        assert!(b.lower_bound_ms >= 1e300 || b.lower_bound_ms.is_infinite());
    }

    #[test]
    fn concurrency_multiplies_a_machines_capacity() {
        let mut cal = model_calibration(1);
        let single = lower_bound(1000, &cal).machines_ms;
        for m in &mut cal.machines {
            m.concurrency = 2;
        }
        let double = lower_bound(1000, &cal).machines_ms;
        // Twice the servers: the water level rises half as far above the trips.
        assert!(double < single * 0.6, "{single} vs {double}");
        assert_eq!(lower_bound(0, &cal).lower_bound_ms, 0.0);
    }
}
