//! `weighted`: smooth weighted round robin over machines (NGINX's algorithm), each machine's
//! weight being how many jobs it could answer by the model's lower bound for this N. The counts
//! are right; the order is not: near and far machines stay interleaved to the end, so the last
//! jobs may go far.

use super::window::{Paced, Rule};
use super::{require_model, up_machines, Binder, JobCtx, Policy, PolicyError, StartInput, View};
use crate::endpoint::Target;

pub struct Weighted;

/// Smooth weighted round robin: each turn every machine gains its weight, the richest is chosen
/// and pays the total. Spreads each machine's turns evenly; state is one counter per machine.
pub(crate) struct SmoothWrr {
    weights: Vec<i64>,
    current: Vec<i64>,
}

impl SmoothWrr {
    pub fn new(weights: Vec<i64>) -> SmoothWrr {
        let n = weights.len();
        SmoothWrr {
            weights,
            current: vec![0; n],
        }
    }

    /// The next machine among those `allowed`.
    pub fn next(&mut self, allowed: impl Fn(usize) -> bool) -> Option<usize> {
        let ok: Vec<usize> = (0..self.weights.len())
            .filter(|&i| self.weights[i] > 0 && allowed(i))
            .collect();
        let total: i64 = ok.iter().map(|&i| self.weights[i]).sum();
        if total <= 0 {
            return None;
        }
        for &i in &ok {
            self.current[i] += self.weights[i];
        }
        let best = ok
            .iter()
            .copied()
            .max_by_key(|&i| (self.current[i], -(i as i64)))?;
        self.current[best] -= total;
        Some(best)
    }
}

struct Weights {
    wrr: SmoothWrr,
    summary: String,
}

impl Rule for Weights {
    fn target(&mut self, view: &View, job: &JobCtx) -> Option<Target> {
        self.wrr
            .next(|m| !view.machines[m].ejected && Some(m) != job.avoid)
            .map(|m| Target::Machine(m as u16))
    }

    fn reason(&self) -> String {
        format!("smooth weighted round robin, weights {}", self.summary)
    }
}

impl Policy for Weighted {
    fn name(&self) -> &'static str {
        "weighted"
    }

    fn needs_model(&self) -> bool {
        true
    }

    fn start(&self, input: &StartInput) -> Result<Box<dyn Binder>, PolicyError> {
        let model = require_model(input, self.name())?;
        up_machines(model)?;
        let bound = crate::bound::lower_bound(input.n, model);
        let weights = crate::bound::machine_counts(bound.lower_bound_ms, model);
        let summary = model
            .machines
            .iter()
            .zip(&weights)
            .map(|(m, w)| format!("{} {w}", m.id))
            .collect::<Vec<_>>()
            .join(", ");
        Ok(Box::new(Paced::new(
            Weights {
                wrr: SmoothWrr::new(weights),
                summary,
            },
            input,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smooth_wrr_spreads_turns_by_weight() {
        let mut w = SmoothWrr::new(vec![5, 1, 1]);
        let seq: Vec<usize> = (0..7).filter_map(|_| w.next(|_| true)).collect();
        assert_eq!(seq, vec![0, 0, 1, 0, 2, 0, 0]);
        let mut w = SmoothWrr::new(vec![1, 1]);
        assert_eq!(w.next(|m| m == 1), Some(1));
        assert_eq!(w.next(|_| false), None);
    }
}
