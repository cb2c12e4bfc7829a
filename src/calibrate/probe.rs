//! The calibration pass: measure the system before planning a batch.
//!
//! Steps, each cheap enough to be worth it:
//! 1. Reachability: one request to each forwarding unit (any HTTP answer means it is up).
//! 2. Wake-up: one request to every machine at once, spread over the units that are up. A
//!    sleeping machine may take many seconds to answer; that is shown on stderr. A machine that
//!    does not answer within the wake timeout is marked down, reported, and left out. These
//!    answers double as latency probes (`response_time` at no load = latency + service).
//! 3. Full mode only — forwarding units: a burst of simultaneous requests to each unit. Its
//!    handling stage serves one at a time, so sorting (client round trip − `response_time`)
//!    and regressing it on rank gives the per-request service time (the slope: its ceiling is
//!    1000 / slope requests/s) and the overlapping overhead (intercept − slope).
//! 4. Full mode only — machines: a burst to each machine in turn through one unit. Answers
//!    reach the machine one unit-service apart, so sorted `response_time`s grow by
//!    (machine spacing − unit service) per rank; the spacing, with the reported `work_time`,
//!    gives service time and concurrency, the intercept the latency.
//!
//! The units' overhead comes from the wake-up answers (client round trip − `response_time` of
//! the first one through each unit, less one handling slot), in every mode.
//!
//! Nothing is assumed: a figure that is not measured is absent (a unit without a measured
//! ceiling has `service_ms` 0; quick mode takes a machine's service time from the `work_time`
//! it reports; the connection limit is never measured — measuring it means knocking the unit
//! over). All times are model ms: wall time divided by the time scale.
//!
//! This pass is what `cmdunit calibrate` runs, what the limits analysis builds on, and what the
//! policies that plan from a model use when no saved calibration is fresh. The default policy
//! needs none of it: it learns from the batch itself.

use super::{Calibration, CalibrationCost};
use crate::client::{Client, ClientConfig, Failure};
use crate::endpoint::Layout;
use crate::endpoint::WorkAnswer;
use crate::numbers::median_of;
use crate::timescale::TimeScale;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Barrier;
use std::time::Instant;

/// How much to measure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeMode {
    /// Reachability and wake-up, then a few answers per machine: latency, reported work time.
    Quick,
    /// Also bursts per forwarding unit (its ceiling) and per machine (service, concurrency).
    Full,
}

#[derive(Clone, Debug)]
pub struct ProbeConfig {
    pub mode: ProbeMode,
    pub time_scale: TimeScale,
    /// Timeout of a probe (a sleeping machine's wake-up included), model ms.
    pub timeout_ms: f64,
    /// Simultaneous requests in a forwarding unit's burst.
    pub forwarder_burst: usize,
    /// Simultaneous requests in a machine's burst.
    pub machine_burst: usize,
    /// Quick mode: answers per machine after the wake-up one, for its latency.
    pub quick_samples: usize,
    /// Print progress to stderr.
    pub verbose: bool,
}

impl Default for ProbeConfig {
    fn default() -> Self {
        ProbeConfig {
            mode: ProbeMode::Full,
            time_scale: TimeScale::REAL,
            timeout_ms: 60_000.0,
            forwarder_burst: 24,
            machine_burst: 12,
            quick_samples: 2,
            verbose: false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CalibrateError {
    #[error("no forwarding unit answers at {0}")]
    Unreachable(String),
}

/// One timed request.
struct Probe {
    client_ms: f64,
    /// When it was answered.
    done: Instant,
    result: Result<WorkAnswer, Failure>,
}

struct Prober {
    cfg: ProbeConfig,
    requests: AtomicU64,
}

/// Measures the system of `layout` behind `urls` and returns what was learnt with its cost.
pub fn calibrate(
    layout: &Layout,
    urls: &[String],
    cfg: &ProbeConfig,
) -> Result<Calibration, CalibrateError> {
    let started = Instant::now();
    let p = Prober {
        cfg: cfg.clone(),
        requests: AtomicU64::new(0),
    };
    let mut cal = Calibration::empty(layout, urls);

    // 1. Reachability.
    let reach: Vec<bool> = std::thread::scope(|s| {
        let handles: Vec<_> = cal
            .forwarders
            .iter()
            .map(|f| {
                let url = f.url.clone();
                let p = &p;
                s.spawn(move || p.reachable(&url))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or(false))
            .collect()
    });
    for (f, up) in cal.forwarders.iter_mut().zip(&reach) {
        f.up = *up;
    }
    let up_fwd = cal.up_forwarders();
    if up_fwd.is_empty() {
        let urls: Vec<&str> = cal.forwarders.iter().map(|f| f.url.as_str()).collect();
        return Err(CalibrateError::Unreachable(urls.join(", ")));
    }
    if cfg.verbose {
        for f in cal.forwarders.iter().filter(|f| !f.up) {
            eprintln!(
                "calibration: forwarding unit {} does not answer: left out",
                f.url
            );
        }
    }

    // 2. Wake every machine at once.
    if cfg.verbose {
        eprintln!(
            "calibration: waking {} machines through {} forwarding unit(s)…",
            cal.machines.len(),
            up_fwd.len()
        );
    }
    let wake_timeout = cfg.timeout_ms;
    let wake: Vec<Probe> = std::thread::scope(|s| {
        let handles: Vec<_> = cal
            .machines
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let url = cal.forwarders[up_fwd[i % up_fwd.len()]].url.clone();
                let path = m.id.path();
                let id = m.id.to_string();
                let p = &p;
                s.spawn(move || {
                    let probe = p.one(&url, &path, wake_timeout);
                    if p.cfg.verbose {
                        match &probe.result {
                            Ok(_) if probe.client_ms > 2000.0 => eprintln!(
                                "calibration: {id} answered after {:.1} s (it was asleep)",
                                probe.client_ms / 1000.0
                            ),
                            Ok(_) => {}
                            Err(f) => eprintln!(
                                "calibration: {id} did not wake ({}): marked down, left out",
                                f.class()
                            ),
                        }
                    }
                    probe
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or(Probe {
                    client_ms: 0.0,
                    done: Instant::now(),
                    result: Err(Failure::Connect),
                })
            })
            .collect()
    });
    // The unit's own overhead: the quickest (client round trip − response_time) among the
    // wake-up answers it carried, less one handling slot (the first of them waited for no other).
    let wake_overhead = |fi: usize, h: f64| -> Option<f64> {
        wake.iter()
            .enumerate()
            .filter(|(i, _)| up_fwd[i % up_fwd.len()] == fi)
            .filter_map(|(_, pr)| {
                pr.result
                    .as_ref()
                    .ok()
                    .map(|a| pr.client_ms - a.response_time as f64)
            })
            .min_by(f64::total_cmp)
            .map(|x| (x - h).max(0.0))
    };
    let main_fwd = cal.forwarders[up_fwd[0]].clone();
    for (i, probe) in wake.iter().enumerate() {
        let m = &mut cal.machines[i];
        match &probe.result {
            Ok(a) => {
                m.up = true;
                let asleep = probe.client_ms > 2000.0;
                m.wake_ms = asleep.then_some(probe.client_ms);
                // A first estimate, refined below: what it reports working, and the rest of
                // its response time as latency (not when a boot is in it).
                m.service_ms = (a.work_time as f64).max(0.01);
                if !asleep {
                    m.latency_ms = (a.response_time as f64 - m.service_ms).max(0.0);
                }
            }
            Err(_) => m.up = false,
        }
    }
    // Quick mode: two more answers per machine (all machines at once), and the median of its
    // samples — the wake-up answer only if it was not asleep — gives its latency. One sample
    // alone is at the mercy of jitter and of the host's scheduler.
    if cfg.mode == ProbeMode::Quick {
        let samples: Vec<Vec<(f64, f64)>> = std::thread::scope(|s| {
            let handles: Vec<_> = cal
                .machines
                .iter()
                .enumerate()
                .map(|(i, m)| {
                    let url = cal.forwarders[up_fwd[i % up_fwd.len()]].url.clone();
                    let (up, path) = (m.up, m.id.path());
                    let p = &p;
                    s.spawn(move || {
                        if !up {
                            return Vec::new();
                        }
                        let client = p.client(p.cfg.timeout_ms);
                        (0..p.cfg.quick_samples)
                            .filter_map(|_| p.timed(&client, &url, &path).result.ok())
                            .map(|a| (a.response_time as f64, a.work_time as f64))
                            .collect()
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_default())
                .collect()
        });
        for (i, mut answers) in samples.into_iter().enumerate() {
            if let (Ok(a), None) = (&wake[i].result, cal.machines[i].wake_ms) {
                answers.push((a.response_time as f64, a.work_time as f64));
            }
            let rt: Vec<f64> = answers.iter().map(|a| a.0).collect();
            let work: Vec<f64> = answers.iter().map(|a| a.1).collect();
            if let (Some(rt), Some(work)) = (median_of(&rt), median_of(&work)) {
                // The service time is what the machine reports working: quick mode sees no
                // queue, so it cannot see any handling on top.
                let m = &mut cal.machines[i];
                m.service_ms = work.max(0.01);
                m.latency_ms = (rt - m.service_ms).max(0.0);
            }
        }
    }

    if cfg.mode == ProbeMode::Full {
        // 3. Each forwarding unit's ceiling and overhead.
        for fi in up_fwd.clone() {
            let url = cal.forwarders[fi].url.clone();
            let (released, probes) = p.burst(&url, "/work", cfg.forwarder_burst);
            // Measured from the common release, not from each thread's own send: threads start
            // sending a little apart, but the unit's stage ends are one service time apart.
            let mut x: Vec<f64> = probes
                .iter()
                .filter_map(|pr| match &pr.result {
                    Ok(a) => Some(
                        cfg.time_scale.to_model_ms(pr.done - released) - a.response_time as f64,
                    ),
                    Err(_) => None,
                })
                .collect();
            if x.len() >= 4 {
                x.sort_by(f64::total_cmp);
                let (intercept, slope) = fit(&x);
                let f = &mut cal.forwarders[fi];
                f.service_ms = if slope < 0.5 { 0.0 } else { slope };
                f.overhead_ms = (intercept - f.service_ms).max(0.0);
            }
        }
    }
    {
        for fi in up_fwd.clone() {
            if let Some(o) = wake_overhead(fi, cal.forwarders[fi].service_ms) {
                cal.forwarders[fi].overhead_ms = o;
            }
        }
    }
    if cfg.mode == ProbeMode::Full {
        // 4. Each machine's latency, service time and concurrency, through the first unit.
        let h = cal.forwarders[up_fwd[0]].service_ms;
        for i in 0..cal.machines.len() {
            if !cal.machines[i].up {
                continue;
            }
            let (_, probes) = p.burst(&main_fwd.url, &cal.machines[i].id.path(), cfg.machine_burst);
            let answers: Vec<&WorkAnswer> = probes
                .iter()
                .filter_map(|pr| pr.result.as_ref().ok())
                .collect();
            if answers.len() < 4 {
                continue;
            }
            let mut rt: Vec<f64> = answers.iter().map(|a| a.response_time as f64).collect();
            rt.sort_by(f64::total_cmp);
            let work =
                answers.iter().map(|a| a.work_time as f64).sum::<f64>() / answers.len() as f64;
            let (intercept, slope) = fit(&rt);
            // Time between two completions at the machine.
            let spacing = (slope.max(0.0) + h).max(1e-3);
            let concurrency = ((1.1 * work / spacing).round() as u32).clamp(1, 64);
            let service = (spacing * f64::from(concurrency)).max(work);
            let m = &mut cal.machines[i];
            m.concurrency = concurrency;
            m.service_ms = service;
            m.latency_ms = (intercept - service).max(0.0);
        }
    }

    cal.source = match cfg.mode {
        ProbeMode::Quick => "quick",
        ProbeMode::Full => "probed",
    }
    .into();
    let model_ms = cfg.time_scale.since(started);
    let requests = p.requests.load(Ordering::Relaxed);
    cal.cost = CalibrationCost { requests, model_ms };
    Ok(cal)
}

impl Prober {
    fn client(&self, timeout_ms: f64) -> Client {
        Client::new(&ClientConfig {
            timeout: self
                .cfg
                .time_scale
                .to_wall(timeout_ms)
                .max(std::time::Duration::from_millis(50)),
            max_idle: 4,
        })
    }

    fn reachable(&self, url: &str) -> bool {
        self.requests.fetch_add(1, Ordering::Relaxed);
        match self
            .client(self.cfg.timeout_ms)
            .get(&format!("{}/", url.trim_end_matches('/')))
        {
            Ok(_) | Err(Failure::Status(_)) | Err(Failure::BadResponse) => true,
            Err(_) => false,
        }
    }

    fn one(&self, url: &str, path: &str, timeout_ms: f64) -> Probe {
        let client = self.client(timeout_ms);
        self.timed(&client, url, path)
    }

    fn timed(&self, client: &Client, url: &str, path: &str) -> Probe {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let t = Instant::now();
        let result = client.get_work(url, path);
        let done = Instant::now();
        Probe {
            client_ms: self.cfg.time_scale.to_model_ms(done - t),
            done,
            result,
        }
    }

    /// `n` simultaneous requests, released together by a barrier; also returns the release time.
    fn burst(&self, url: &str, path: &str, n: usize) -> (Instant, Vec<Probe>) {
        let barrier = Barrier::new(n + 1);
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..n)
                .map(|_| {
                    let barrier = &barrier;
                    s.spawn(move || {
                        let client = self.client(self.cfg.timeout_ms);
                        barrier.wait();
                        self.timed(&client, url, path)
                    })
                })
                .collect();
            barrier.wait();
            let released = Instant::now();
            let probes = handles.into_iter().filter_map(|h| h.join().ok()).collect();
            (released, probes)
        })
    }
}

/// Least-squares line through (k, ys[k]): (intercept, slope).
fn fit(ys: &[f64]) -> (f64, f64) {
    let n = ys.len() as f64;
    if ys.len() < 2 {
        return (ys.first().copied().unwrap_or(0.0), 0.0);
    }
    let mx = (n - 1.0) / 2.0;
    let my = ys.iter().sum::<f64>() / n;
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for (k, y) in ys.iter().enumerate() {
        let dx = k as f64 - mx;
        sxy += dx * (y - my);
        sxx += dx * dx;
    }
    let slope = sxy / sxx;
    (my - slope * mx, slope)
}

#[cfg(test)]
mod tests {
    use super::fit;

    #[test]
    fn fit_recovers_a_line() {
        let ys: Vec<f64> = (0..10).map(|k| 30.0 + 17.0 * k as f64).collect();
        let (a, b) = fit(&ys);
        assert!((a - 30.0).abs() < 1e-9 && (b - 17.0).abs() < 1e-9);
    }
}
