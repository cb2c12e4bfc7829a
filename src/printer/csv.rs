//! `--format csv`: a header and one row with the batch's key numbers (per-request rows are in
//! the run folder's requests.csv).

use crate::summary::Summary;

pub fn render(s: &Summary) -> String {
    let header = "n,policy,ok,failed,cancelled,retries,wall_ms,makespan_ms,lower_bound_ms,\
                  lower_bound_source,efficiency,\
                  completion_mean_ms,completion_p50_ms,completion_p90_ms,completion_p99_ms,\
                  completion_max_ms,calibration_ms,calibration_requests,model_time";
    let c = &s.completion_ms;
    format!(
        "{header}\n{},{},{},{},{},{},{:.2},{:.2},{:.2},{},{:.4},{:.2},{:.2},{:.2},{:.2},{:.2},{:.2},{},{}\n",
        s.n,
        s.policy,
        s.ok,
        s.failed,
        s.cancelled,
        s.retries,
        s.wall_ms,
        s.makespan_ms,
        s.lower_bound_ms,
        s.lower_bound_source,
        s.efficiency,
        c.mean,
        c.p50,
        c.p90,
        c.p99,
        c.max,
        s.calibration_ms,
        s.calibration_requests,
        s.model_time
    )
}
