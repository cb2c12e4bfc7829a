//! The forwarding unit's ceiling, decided the way the controller decides it: every answer that
//! went through the unit is fed to [`crate::calibrate::online::Estimator`], and the unit has a
//! ceiling only when its queued answers left it evenly spaced (a one-at-a-time stage passing at a
//! steady pace); the ceiling is then one request per pass.
//!
//! Why not the highest throughput through it: that is what the probe's load got out of the
//! machines, whatever the unit could pass. nginx, which passes thousands per second, was reported
//! to "pass at most 90/s" because 40 requests in flight over ~450 ms trips cannot give more. A
//! ceiling is claimed only from the unit's own queue; a unit that never queued (or whose queue
//! drained irregularly) has none that was seen.
//!
//! Each probe keeps its own clock (times from its start); they are laid end to end, a minute
//! apart, so that the estimator sees one timeline in which no two probes' answers interleave.

use super::probe::Sample as Probe;
use crate::calibrate::online::{Estimator, Sample};

/// Model ms left between two probes laid end to end: longer than any window the estimator keeps.
const GAP_MS: f64 = 60_000.0;

/// What the estimator made of the answers through the unit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct UnitCeiling {
    /// Interval between two passes of its one-at-a-time stage, when a queued stretch showed one.
    pub pass_ms: Option<f64>,
    /// The stage looked like it sits after the worker call (answers leave one at a time).
    pub stage_after: Option<bool>,
    /// Queued answers the pass rests on.
    pub samples: usize,
    /// Answers fed.
    pub answers: u64,
}

impl UnitCeiling {
    /// Requests per second it passes at most: infinite when no ceiling was seen.
    pub fn rps(&self) -> f64 {
        match self.pass_ms {
            Some(p) if p > 0.0 => 1000.0 / p,
            _ => f64::INFINITY,
        }
    }
}

/// Feeds the answers through one forwarding unit to the estimator, probe after probe.
pub struct UnitWatch {
    est: Estimator,
    /// Where the next probe's clock starts on the estimator's timeline.
    offset_ms: f64,
}

impl UnitWatch {
    /// For one unit over `machines` machines (the indices the samples carry).
    pub fn new(machines: usize) -> UnitWatch {
        UnitWatch {
            est: Estimator::new(1, machines),
            offset_ms: 0.0,
        }
    }

    /// One probe's samples, on its own clock; ok answers with a known machine only (a failure
    /// says nothing about how the unit passes answers). Fed in the order they arrived.
    pub fn feed(&mut self, samples: &[Probe]) {
        self.feed_until(samples, f64::INFINITY);
    }

    /// A closed loop's samples that arrived by `until_ms` (its end): after it no new request is
    /// sent, and the answers still in flight drain at the pace of whichever machines still hold
    /// some — one machine's service interval apart, which must not be read as the unit's pass.
    pub fn feed_until(&mut self, samples: &[Probe], until_ms: f64) {
        let mut ok: Vec<(&Probe, usize, f64, f64)> = samples
            .iter()
            .filter(|s| s.end_ms <= until_ms)
            .filter_map(|s| {
                let (rt, work, _) = s.answer.as_ref()?;
                Some((s, s.machine?, *rt, *work))
            })
            .filter(|(s, _, rt, work)| {
                s.start_ms.is_finite() && s.end_ms.is_finite() && rt.is_finite() && work.is_finite()
            })
            .collect();
        if ok.is_empty() {
            return;
        }
        ok.sort_by(|a, b| a.0.end_ms.total_cmp(&b.0.end_ms));
        let offset = self.offset_ms;
        for (s, machine, rt, work) in &ok {
            self.est.observe(&Sample {
                forwarder: 0,
                machine: *machine,
                sent_ms: offset + s.start_ms,
                end_ms: offset + s.end_ms,
                response_time: *rt,
                work_time: *work,
            });
        }
        let last = ok.iter().map(|o| o.0.end_ms).fold(0.0, f64::max);
        self.offset_ms = offset + last + GAP_MS;
    }

    /// The estimator's verdict on the unit after everything fed so far.
    pub fn ceiling(&self) -> UnitCeiling {
        let u = &self.est.units[0];
        UnitCeiling {
            pass_ms: u.pass_ms,
            stage_after: u.pass_ms.and(u.stage_after),
            samples: if u.pass_ms.is_some() {
                u.pass_samples
            } else {
                0
            },
            answers: u.answers,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// No-load trips (latency + service) of five machines, model ms.
    const TRIPS: [f64; 5] = [520.0, 515.0, 310.0, 370.0, 350.0];

    /// A closed loop of `clients` through a unit whose one-at-a-time stage before the worker call
    /// takes `stage_ms` (0: no stage), over five machines serving one at a time in 20.5–23.5 ms;
    /// `noise(j)` is added to the client's own time on answer j (its scheduling). Requests are
    /// sent until `duration_ms`; those still in flight then drain.
    fn closed_loop(
        clients: usize,
        stage_ms: f64,
        duration_ms: f64,
        noise: &dyn Fn(usize) -> f64,
    ) -> Vec<Probe> {
        let mut next_send: Vec<f64> = vec![0.0; clients];
        let mut k: Vec<usize> = (0..clients).collect();
        let mut stage_free = 0.0f64;
        let mut machine_free = [0.0f64; 5];
        let mut out = Vec::new();
        loop {
            let (c, &send) = next_send
                .iter()
                .enumerate()
                .min_by(|a, b| a.1.total_cmp(b.1))
                .unwrap();
            if send >= duration_ms {
                break;
            }
            let depart = if stage_ms > 0.0 {
                stage_free = stage_free.max(send) + stage_ms;
                stage_free
            } else {
                send
            };
            let m = k[c] % 5;
            k[c] += 1;
            let arrive = depart + (TRIPS[m] - 22.5) / 2.0;
            let done = machine_free[m].max(arrive) + 20.5 + (hash(out.len() + 7) % 4) as f64;
            machine_free[m] = done;
            let rt = done + (TRIPS[m] - 22.5) / 2.0 - depart;
            let end = depart + rt + 13.0 + noise(out.len());
            out.push(Probe {
                rtt_ms: end - send,
                start_ms: send,
                end_ms: end,
                answer: Some((rt, 20.0, format!("m/{m}"))),
                failure: None,
                machine: Some(m),
            });
            next_send[c] = end;
        }
        out
    }

    /// A pseudo-random number from `j` (splitmix64).
    fn hash(j: usize) -> u64 {
        let mut z = (j as u64).wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Up to 5 ms of the client's own scheduling, irregular from answer to answer.
    fn jitter(j: usize) -> f64 {
        (hash(j) % 1000) as f64 / 200.0
    }

    #[test]
    fn a_queued_one_at_a_time_stage_is_the_ceiling() {
        let mut w = UnitWatch::new(5);
        w.feed_until(&closed_loop(5, 17.0, 8000.0, &jitter), 8000.0);
        assert_eq!(w.ceiling().pass_ms, None, "5 in flight never queue");
        w.feed_until(&closed_loop(60, 17.0, 8000.0, &jitter), 8000.0);
        let c = w.ceiling();
        let rps = c.rps();
        assert!((rps - 1000.0 / 17.0).abs() < 0.05 * 1000.0 / 17.0, "{c:?}");
        assert_eq!(c.stage_after, Some(false));
        assert!(c.samples >= 16, "{c:?}");
    }

    /// The same load with no stage: the machines set the throughput, the unit never queues.
    #[test]
    fn a_unit_that_never_queues_has_no_ceiling() {
        let mut w = UnitWatch::new(5);
        for clients in [5, 60, 160] {
            w.feed_until(&closed_loop(clients, 0.0, 8000.0, &jitter), 8000.0);
        }
        let c = w.ceiling();
        assert_eq!(c.pass_ms, None, "{c:?}");
        assert!(c.rps().is_infinite());
        assert!(c.answers > 1000);
    }

    /// Two probes each start their clock at 0: laid end to end, the second does not land on the
    /// first's answers (which would halve the spacing of the departures).
    #[test]
    fn probes_on_their_own_clocks_are_laid_end_to_end() {
        let probe = closed_loop(60, 17.0, 4000.0, &jitter);
        let mut w = UnitWatch::new(5);
        w.feed(&probe);
        w.feed(&probe);
        let pass = w.ceiling().pass_ms.expect("a pass");
        assert!((pass - 17.0).abs() < 1.0, "{pass}");
    }

    /// After a closed loop's end the answers still queued at the slowest machine drain one
    /// service interval apart: fed, they would read as a stage after the worker call.
    #[test]
    fn the_drain_after_a_closed_loop_is_not_read_as_a_pass() {
        let mut probe = closed_loop(5, 0.0, 4000.0, &jitter);
        let sent = probe.last().map_or(0.0, |p| p.start_ms);
        for j in 0..40 {
            let rt = 400.0 + 22.5 * (j + 1) as f64;
            let end = sent + rt + 13.0 + jitter(j);
            probe.push(Probe {
                rtt_ms: end - sent,
                start_ms: sent,
                end_ms: end,
                answer: Some((rt, 20.0, "m/0".into())),
                failure: None,
                machine: Some(0),
            });
        }
        let mut w = UnitWatch::new(5);
        w.feed_until(&probe, 4000.0);
        assert_eq!(w.ceiling().pass_ms, None);
        let mut w = UnitWatch::new(5);
        w.feed(&probe);
        assert!(
            w.ceiling().pass_ms.is_some(),
            "the drain alone looks like a pass"
        );
    }

    #[test]
    fn failures_and_unknown_machines_are_not_fed() {
        let mut w = UnitWatch::new(5);
        let mut probe = closed_loop(10, 0.0, 2000.0, &jitter);
        let n = probe.len() as u64;
        probe[0].machine = None;
        probe[1].answer = None;
        probe[1].failure = Some("http_503".into());
        w.feed(&probe);
        assert_eq!(w.ceiling().answers, n - 2);
    }
}
