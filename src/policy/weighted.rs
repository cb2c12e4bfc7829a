//! `weighted`: smooth weighted round robin over machines (NGINX's algorithm,
//! `../shared/reference/load-balancing-anchors.md`), the weights being how many jobs the
//! two-layer schedule would give each machine for this N. The counts are right; the order is
//! not: near and far machines are interleaved to the end, so the last jobs may go far.

use super::per_region::two_layer;
use super::random::one_queue_plan;
use super::sizing::check_up;
use super::{Plan, PlanInput, Policy, PolicyError};
use crate::endpoint::Target;

pub struct Weighted;

/// Smooth weighted round robin: each turn every machine gains its weight, the richest is chosen
/// and pays the total. Spreads each machine's turns evenly.
pub(crate) fn smooth_wrr(weights: &[(usize, i64)], n: usize) -> Vec<usize> {
    let total: i64 = weights.iter().map(|w| w.1).sum();
    let mut current = vec![0i64; weights.len()];
    let mut out = Vec::with_capacity(n);
    if total <= 0 {
        return out;
    }
    for _ in 0..n {
        for (c, w) in current.iter_mut().zip(weights) {
            *c += w.1;
        }
        let best = (0..weights.len())
            .max_by_key(|&i| (current[i], -(i as i64)))
            .unwrap_or(0);
        current[best] -= total;
        out.push(weights[best].0);
    }
    out
}

impl Policy for Weighted {
    fn name(&self) -> &'static str {
        "weighted"
    }

    fn plan(&self, input: &PlanInput) -> Result<Plan, PolicyError> {
        let cal = input.calibration;
        check_up(cal)?;
        let (_, a) = two_layer(input.n, cal);
        let mut counts = vec![0i64; cal.machines.len()];
        for &m in &a.machine {
            counts[m] += 1;
        }
        let weights: Vec<(usize, i64)> = counts
            .iter()
            .enumerate()
            .filter(|(_, &c)| c > 0)
            .map(|(m, &c)| (m, c))
            .collect();
        let order = smooth_wrr(&weights, input.n);
        let n = input.n.max(1) as f64;
        let shares: Vec<(usize, f64)> = weights.iter().map(|&(m, c)| (m, c as f64 / n)).collect();
        let desc: Vec<String> = weights
            .iter()
            .map(|&(m, c)| format!("{} {}", cal.machines[m].id, c))
            .collect();
        Ok(one_queue_plan(
            self.name(),
            format!("smooth weighted round robin, weights {}", desc.join(", ")),
            input,
            &shares,
            |i| Target::Machine(order[i] as u16),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smooth_wrr_spreads_turns_and_honours_weights() {
        let order = smooth_wrr(&[(0, 5), (1, 1), (2, 1)], 7);
        assert_eq!(order, [0, 0, 1, 0, 2, 0, 0]);
        let many = smooth_wrr(&[(3, 2), (4, 1)], 300);
        assert_eq!(many.iter().filter(|&&m| m == 3).count(), 200);
    }
}
