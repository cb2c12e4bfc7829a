//! Arithmetic the planners share: rates, trips and agent pools sized by Little's law.
//!
//! A pool needs as many agents as jobs it should keep in flight: `L = λ · W` (Little's law), with
//! `λ` the rate the system can take that pool's jobs at and `W` the time each spends in flight.
//! Fewer agents starve the system; many more only move the waiting from cmdunit (where a job can
//! still be re-targeted) into the forwarding unit and the machines' queues (where it cannot), and
//! risk the forwarding unit's connection limit (it fell over at ~1000 connections,
//! `../shared/reference/original-system.md`).

use super::PolicyError;
use crate::calibrate::Calibration;

/// Headroom over Little's law for the variance of latency and service (jitter of 0–40 ms on a
/// trip of 300–600 ms, service 20.5–23.5 ms: `../shared/reference/model.md`).
pub const HEADROOM: f64 = 1.25;
/// Agents added on top, so small pools are not starved by one slow answer.
pub const SPARE_AGENTS: usize = 2;

/// Checks that something is up to plan over.
pub fn check_up(cal: &Calibration) -> Result<(), PolicyError> {
    if cal.up_machines().is_empty() {
        return Err(PolicyError::NoMachineUp);
    }
    if cal.up_forwarders().is_empty() {
        return Err(PolicyError::NoForwarderUp);
    }
    Ok(())
}

/// Jobs per model ms the up forwarding units can pass together (infinite without a ceiling).
pub fn forwarder_rate_per_ms(cal: &Calibration) -> f64 {
    cal.forwarders
        .iter()
        .filter(|f| f.up)
        .map(|f| {
            if f.service_ms > 0.0 {
                1.0 / f.service_ms
            } else {
                f64::INFINITY
            }
        })
        .sum()
}

/// Jobs per model ms machine `m` can serve.
pub fn machine_rate_per_ms(cal: &Calibration, m: usize) -> f64 {
    let e = &cal.machines[m];
    if e.service_ms > 0.0 {
        f64::from(e.concurrency.max(1)) / e.service_ms
    } else {
        f64::INFINITY
    }
}

/// Mean handling time and overhead over the up forwarding units.
pub fn mean_forwarder(cal: &Calibration) -> (f64, f64) {
    let up: Vec<_> = cal.forwarders.iter().filter(|f| f.up).collect();
    if up.is_empty() {
        return (0.0, 0.0);
    }
    let k = up.len() as f64;
    (
        up.iter().map(|f| f.service_ms).sum::<f64>() / k,
        up.iter().map(|f| f.overhead_ms).sum::<f64>() / k,
    )
}

/// `trip_m` of model.md through an average unit: leaving the handling stage to the answer.
pub fn trip_ms(cal: &Calibration, m: usize) -> f64 {
    let e = &cal.machines[m];
    e.latency_ms + e.service_ms + mean_forwarder(cal).1
}

/// The most agents all pools together may hold: 7/8 of the up units' connection limits, so the
/// forwarding units never see their limit even with a retry or a straggler connection.
pub fn connection_cap(cal: &Calibration) -> usize {
    let total: usize = cal
        .forwarders
        .iter()
        .filter(|f| f.up)
        .map(|f| f.connection_limit)
        .sum();
    (total * 7 / 8).max(1)
}

/// Agents for a pool that should keep `in_flight` jobs in flight (Little's `L`), with headroom,
/// never more than it has jobs.
pub fn pool(in_flight: f64, jobs: usize) -> usize {
    let want = (in_flight.max(0.0) * HEADROOM).ceil() as usize + SPARE_AGENTS;
    want.clamp(1, jobs.max(1))
}

/// Agents for one pool whose jobs go to machines in the given shares (machine index, fraction of
/// the jobs): `λ` is the rate the slowest-filled machine or the forwarding units allow, `W` the
/// mean trip plus a pass through a handling stage.
pub fn pool_for_shares(cal: &Calibration, shares: &[(usize, f64)], jobs: usize) -> usize {
    let machines_rate = shares
        .iter()
        .filter(|(_, share)| *share > 0.0)
        .map(|&(m, share)| machine_rate_per_ms(cal, m) / share)
        .fold(f64::INFINITY, f64::min);
    let rate = machines_rate.min(forwarder_rate_per_ms(cal));
    let w: f64 = shares
        .iter()
        .map(|&(m, s)| s * trip_ms(cal, m))
        .sum::<f64>()
        + mean_forwarder(cal).0;
    let in_flight = if rate.is_finite() {
        rate * w
    } else {
        jobs as f64
    };
    pool(in_flight, jobs).min(connection_cap(cal))
}

/// Even shares over the given machines.
pub fn even_shares(machines: &[usize]) -> Vec<(usize, f64)> {
    let k = machines.len().max(1) as f64;
    machines.iter().map(|&m| (m, 1.0 / k)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emulator::topology::Topology;

    fn cal(k: usize) -> Calibration {
        crate::calibrate::model_calibration(k, Topology::default().forwarder.handling_ms)
    }

    #[test]
    fn one_machine_needs_its_pipeline_in_flight() {
        let c = cal(1);
        // emea: 1/22 per ms, W = 310 + 22 + 13 + 17 = 362 ms: L ≈ 16.5, with headroom 23.
        let emea = c.layout().machine_index("emea", 0).unwrap();
        let a = pool_for_shares(&c, &[(emea, 1.0)], 10_000);
        assert!((20..=26).contains(&a), "{a}");
        assert_eq!(pool_for_shares(&c, &[(emea, 1.0)], 5), 5);
    }

    #[test]
    fn the_forwarding_unit_limits_a_pool_spread_over_all_machines() {
        let one = cal(1);
        let all = even_shares(&one.up_machines());
        let a1 = pool_for_shares(&one, &all, 10_000);
        // λ = 1/17 per ms, W ≈ 430 + 13 + 22 + 17: L ≈ 28.
        assert!((30..=40).contains(&a1), "{a1}");
        let a5 = pool_for_shares(&cal(5), &all, 10_000);
        assert!(a5 > 3 * a1, "five units keep more in flight: {a1} vs {a5}");
        assert_eq!(connection_cap(&one), 896);
    }
}
