//! Numbers about a batch, in memory that does not grow with N.
//!
//! Why histograms: a run of any N must fit in memory that does not grow with N, so per-request
//! rows go to requests.csv as they arrive and only HDR histograms (3 significant digits, here in
//! model microseconds), counters and a time series with a bounded number of buckets stay in
//! memory. Means and maxima are kept exactly beside the histograms.

use crate::outcome::{NotSent, Outcome, OutcomeKind};
use crate::summary::Quantiles;
use hdrhistogram::Histogram;
use std::collections::BTreeMap;

/// At most this many buckets in the time series; beyond it, neighbours merge (width doubles).
const MAX_BUCKETS: usize = 1024;

/// A distribution of durations (model ms) in bounded memory.
#[derive(Clone, Debug)]
pub struct Distribution {
    hist: Histogram<u64>,
    sum: f64,
    max: f64,
}

impl Default for Distribution {
    fn default() -> Self {
        Distribution {
            // Auto-resizing; creation with 3 significant digits cannot fail.
            hist: Histogram::new(3).unwrap_or_else(|e| panic!("histogram: {e}")),
            sum: 0.0,
            max: 0.0,
        }
    }
}

impl Distribution {
    pub fn record(&mut self, ms: f64) {
        if !ms.is_finite() {
            return;
        }
        let ms = ms.max(0.0);
        let us = ((ms * 1000.0).round() as u64).max(1);
        // Auto-resizing histograms only refuse values beyond u64 range.
        let _ = self.hist.record(us);
        self.sum += ms;
        self.max = self.max.max(ms);
    }

    pub fn count(&self) -> u64 {
        self.hist.len()
    }

    pub fn quantile(&self, q: f64) -> f64 {
        if self.hist.is_empty() {
            return 0.0;
        }
        (self.hist.value_at_quantile(q) as f64 / 1000.0).min(self.max)
    }

    pub fn quantiles(&self) -> Quantiles {
        let n = self.count();
        if n == 0 {
            return Quantiles::default();
        }
        Quantiles {
            mean: self.sum / n as f64,
            p50: self.quantile(0.5),
            p90: self.quantile(0.9),
            p99: self.quantile(0.99),
            max: self.max,
        }
    }

    /// `points` values at evenly spaced quantiles: a sample with the same CDF, for charts.
    pub fn cdf_sample(&self, points: usize) -> Vec<f64> {
        if self.hist.is_empty() || points == 0 {
            return Vec::new();
        }
        (0..points)
            .map(|i| self.quantile((i as f64 + 0.5) / points as f64))
            .collect()
    }
}

/// Jobs started and ended per time bucket; the bucket width doubles as the run goes on.
#[derive(Clone, Debug)]
pub struct TimeSeries {
    pub width_ms: f64,
    starts: Vec<u64>,
    ends: Vec<u64>,
}

impl Default for TimeSeries {
    fn default() -> Self {
        TimeSeries {
            width_ms: 10.0,
            starts: Vec::new(),
            ends: Vec::new(),
        }
    }
}

impl TimeSeries {
    fn slot(&mut self, t_ms: f64) -> usize {
        let t = t_ms.max(0.0);
        while (t / self.width_ms) as usize >= MAX_BUCKETS {
            self.width_ms *= 2.0;
            for v in [&mut self.starts, &mut self.ends] {
                let merged: Vec<u64> = v.chunks(2).map(|c| c.iter().sum()).collect();
                *v = merged;
            }
        }
        let i = (t / self.width_ms) as usize;
        if self.starts.len() <= i {
            self.starts.resize(i + 1, 0);
            self.ends.resize(i + 1, 0);
        }
        i
    }

    pub fn record(&mut self, start_ms: f64, end_ms: f64) {
        if !(start_ms.is_finite() && end_ms.is_finite()) {
            return;
        }
        let s = self.slot(start_ms);
        self.starts[s] += 1;
        let e = self.slot(end_ms);
        self.ends[e] += 1;
    }

    /// (time, model ms) → jobs in flight, over at most `max_points` points: the level at the
    /// end of each bucket, averaged over groups of neighbouring buckets.
    pub fn in_flight(&self, max_points: usize) -> Vec<(f64, f64)> {
        let mut level: i64 = 0;
        let levels: Vec<f64> = (0..self.starts.len())
            .map(|i| {
                level += self.starts[i] as i64 - self.ends[i] as i64;
                level.max(0) as f64
            })
            .collect();
        let group = levels.len().div_ceil(max_points.max(1)).max(1);
        let width = self.width_ms * group as f64;
        let mut points: Vec<(f64, f64)> = levels
            .chunks(group)
            .enumerate()
            .map(|(i, c)| {
                (
                    (i as f64 + 0.5) * width,
                    c.iter().sum::<f64>() / c.len() as f64,
                )
            })
            .collect();
        // End at the true final level (zero once every job has ended).
        if let Some(&last) = levels.last() {
            points.push((levels.len() as f64 * self.width_ms, last));
        }
        points
    }

    /// (bucket middle, model ms) → completions per second of model time, over at most
    /// `max_points` buckets (neighbours merged so that a rate is readable).
    pub fn completions_per_s(&self, max_points: usize) -> Vec<(f64, f64)> {
        let group = self.ends.len().div_ceil(max_points.max(1)).max(1);
        let width = self.width_ms * group as f64;
        self.ends
            .chunks(group)
            .enumerate()
            .map(|(i, c)| {
                let count: u64 = c.iter().sum();
                ((i as f64 + 0.5) * width, count as f64 * 1000.0 / width)
            })
            .collect()
    }
}

/// Everything the collector keeps about a batch.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub ok: u64,
    pub failed: u64,
    pub cancelled: u64,
    pub failures: BTreeMap<String, u64>,
    /// Attempts beyond the first, over all jobs.
    pub retries: u64,
    /// Batch start → completion, ok jobs.
    pub completion: Distribution,
    /// Last send → completion, ok jobs.
    pub latency: Distribution,
    /// The server's `response_time`, ok jobs.
    pub response_time: Distribution,
    /// Ok jobs per machine (layout index).
    pub per_machine: Vec<u64>,
    /// Jobs per forwarding unit (of their last attempt).
    pub per_forwarder: Vec<u64>,
    /// The last outcome's end, model ms after the batch start.
    pub makespan_ms: f64,
    pub series: TimeSeries,
}

impl Stats {
    pub fn new(machines: usize, forwarders: usize) -> Stats {
        Stats {
            per_machine: vec![0; machines],
            per_forwarder: vec![0; forwarders],
            ..Stats::default()
        }
    }

    pub fn total(&self) -> u64 {
        self.ok + self.failed
    }

    pub fn record(&mut self, o: &Outcome) {
        self.retries += u64::from(o.attempts.saturating_sub(1));
        if o.end_ms.is_finite() {
            self.makespan_ms = self.makespan_ms.max(o.end_ms);
        }
        if let Some(f) = o.forwarder {
            if let Some(c) = self.per_forwarder.get_mut(f as usize) {
                *c += 1;
            }
        }
        if o.attempts > 0 {
            self.series.record(o.start_ms, o.end_ms);
        }
        match o.kind {
            OutcomeKind::Ok => {
                self.ok += 1;
                self.completion.record(o.end_ms);
                self.latency.record(o.end_ms - o.sent_ms);
                if let Some(rt) = o.response_time {
                    self.response_time.record(rt as f64);
                }
                if let Some(m) = o.machine {
                    if let Some(c) = self.per_machine.get_mut(m as usize) {
                        *c += 1;
                    }
                }
            }
            kind => {
                self.failed += 1;
                if kind == OutcomeKind::Cancelled {
                    self.cancelled += 1;
                }
                *self.failures.entry(kind.class()).or_insert(0) += 1;
            }
        }
    }
}

impl Stats {
    /// Counts as `unrecorded` failures the jobs of a batch of `n` that have no outcome here, and
    /// returns how many. A finished batch has none; a run folder rebuilt after a kill has those
    /// in flight or never sent; any other shortfall is a defect, which is then shown (a failure
    /// class, exit 1) instead of a summary where `ok + failed < N`.
    pub fn count_unrecorded(&mut self, n: u64) -> u64 {
        let missing = n.saturating_sub(self.ok + self.failed);
        if missing > 0 {
            self.failed += missing;
            *self.failures.entry("unrecorded".into()).or_insert(0) += missing;
        }
        missing
    }

    /// Counts jobs that ended without being sent.
    pub fn record_not_sent(&mut self, n: &NotSent) {
        if n.count == 0 {
            return;
        }
        match n.kind {
            OutcomeKind::Ok => self.ok += n.count,
            kind => {
                self.failed += n.count;
                if kind == OutcomeKind::Cancelled {
                    self.cancelled += n.count;
                }
                *self.failures.entry(kind.class()).or_insert(0) += n.count;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_close_and_exact_where_kept_exactly() {
        let mut d = Distribution::default();
        for i in 1..=1000 {
            d.record(i as f64);
        }
        let q = d.quantiles();
        assert!((q.mean - 500.5).abs() < 1e-9);
        assert!((q.p50 - 500.0).abs() < 1.0, "{q:?}");
        assert!((q.p99 - 990.0).abs() < 1.5, "{q:?}");
        assert_eq!(q.max, 1000.0);
        assert_eq!(d.cdf_sample(10).len(), 10);
    }

    #[test]
    fn jobs_without_an_outcome_are_counted_as_unrecorded() {
        let mut s = Stats::new(1, 1);
        s.ok = 41;
        s.failed = 2;
        s.failures.insert("timeout".into(), 2);
        assert_eq!(s.count_unrecorded(50), 7);
        assert_eq!((s.ok, s.failed, s.failures["unrecorded"]), (41, 9, 7));
        assert_eq!(s.count_unrecorded(50), 0);
    }

    #[test]
    fn time_series_stays_bounded_and_conserves_counts() {
        let mut s = TimeSeries::default();
        for i in 0..100_000u32 {
            let t = f64::from(i);
            s.record(t, t + 5.0);
        }
        assert!(s.starts.len() <= MAX_BUCKETS);
        let points = s.completions_per_s(100);
        assert!(points.len() <= 100);
        let width = points[1].0 - points[0].0;
        let ends: f64 = points.iter().map(|(_, r)| r * width / 1000.0).sum();
        assert!((ends - 100_000.0).abs() < 1e-6);
        assert_eq!(s.in_flight(100).last().map(|p| p.1), Some(0.0));
        assert!(s.in_flight(100).len() <= 101);
    }
}
