//! `--format text` (the default): a compact block like hyperfine's.

use super::{duration, per_machine};
use crate::summary::Summary;

pub fn render(s: &Summary) -> String {
    let mut out = String::new();
    let asked = if s.requested_policy != s.policy && !s.requested_policy.is_empty() {
        format!(" (chosen by {})", s.requested_policy)
    } else {
        String::new()
    };
    out.push_str(&format!(
        "Batch: {} requests, policy {}{asked}\n",
        s.n, s.policy
    ));
    if !s.reason.is_empty() {
        out.push_str(&format!("  Why:          {}\n", s.reason));
    }
    // What the user waited for first: from the command's start to the last answer.
    out.push_str(&format!(
        "  Wall time:    {}   (command start to last answer)\n",
        duration(s.wall_ms)
    ));
    // A bound from the true model is one; from measurements it is an estimate, and says so.
    let bound = match s.lower_bound_source.as_str() {
        "model" | "" => "lower bound",
        _ => "estimated lower bound",
    };
    out.push_str(&format!(
        "  Makespan:     {}   ({bound} {}, efficiency {:.1}%)\n",
        duration(s.makespan_ms),
        duration(s.lower_bound_ms),
        s.efficiency * 100.0
    ));
    let c = &s.completion_ms;
    out.push_str(&format!(
        "  Completion:   mean {}, p50 {}, p90 {}, p99 {}, max {}   (from batch start)\n",
        duration(c.mean),
        duration(c.p50),
        duration(c.p90),
        duration(c.p99),
        duration(c.max)
    ));
    let l = &s.latency_ms;
    out.push_str(&format!(
        "  Latency:      mean {}, p50 {}, p99 {}   (from each send)\n",
        duration(l.mean),
        duration(l.p50),
        duration(l.p99)
    ));
    let failures = if s.failures.is_empty() {
        String::new()
    } else {
        let f: Vec<String> = s.failures.iter().map(|(k, v)| format!("{k} {v}")).collect();
        format!(" ({})", f.join(", "))
    };
    out.push_str(&format!(
        "  Outcomes:     {} ok, {} failed{failures}, {} retries\n",
        s.ok, s.failed, s.retries
    ));
    if s.moves > 0 || s.ejections > 0 {
        out.push_str(&format!(
            "  Faults:       {} moves, {} machine ejections\n",
            s.moves, s.ejections
        ));
    }
    if !s.forwarders_lost.is_empty() {
        out.push_str(&format!(
            "  Units lost:   {} (their work moved to the others)\n",
            s.forwarders_lost.join(", ")
        ));
    }
    out.push_str(&format!("  Per machine:  {}\n", per_machine(s)));
    if s.per_forwarder.len() > 1 {
        let f: Vec<String> = s
            .per_forwarder
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        out.push_str(&format!("  Per unit:     {}\n", f.join(", ")));
    }
    out.push_str(&format!(
        "  Calibration:  {} requests, {} ({}; not part of the batch)\n",
        s.calibration_requests,
        duration(s.calibration_ms),
        s.calibration_source
    ));
    if s.model_time {
        out.push_str(&format!(
            "  Times are model time (wall time / time scale {}).\n",
            s.time_scale.unwrap_or(1.0)
        ));
    }
    out
}
