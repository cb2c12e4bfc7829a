//! Measurement primitives of the limits analysis: sequential samples at no load, closed-loop
//! concurrency ramps, and simultaneous bursts. Each one only sends `GET /work…` through the shared
//! [`crate::client::Client`] and times it on the wall clock; times are converted to model
//! milliseconds (wall / time scale) so figures read the same at any emulator speed.

use crate::client::{Client, ClientConfig, Failure};
use crate::endpoint::MachineId;
use crate::numbers::median;
use crate::timescale::TimeScale;
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Barrier, OnceLock};
use std::time::{Duration, Instant};

/// One request's outcome, model milliseconds.
#[derive(Clone, Debug)]
pub struct Sample {
    /// Client round trip.
    pub rtt_ms: f64,
    /// Sent, relative to the probe's start.
    pub start_ms: f64,
    pub end_ms: f64,
    /// Ok answer: the server's `response_time` and `work_time`, and who answered ("us/0").
    pub answer: Option<(f64, f64, String)>,
    /// Failure class ("connect", "http_503", ...).
    pub failure: Option<String>,
    /// The answering machine's index in the list the closed loop was given (None elsewhere, or
    /// when the answer names a machine not in it).
    pub machine: Option<usize>,
}

impl Sample {
    pub fn ok(&self) -> bool {
        self.answer.is_some()
    }
}

/// Times requests; knows the time scale.
#[derive(Clone, Copy, Debug)]
pub struct Prober {
    pub scale: TimeScale,
    /// Per-request timeout, model ms.
    pub timeout_ms: f64,
}

impl Prober {
    pub fn client(&self) -> Client {
        Client::new(&ClientConfig {
            timeout: self
                .scale
                .to_wall(self.timeout_ms)
                .max(Duration::from_secs(1)),
            max_idle: 4,
        })
    }

    fn model_ms(&self, d: Duration) -> f64 {
        self.scale.to_model_ms(d)
    }

    /// One timed request; `t0` is the probe's start.
    pub fn one(&self, client: &Client, url: &str, t0: Instant) -> Sample {
        let start = Instant::now();
        let result = client.get_work(url, "");
        let end = Instant::now();
        let answer = result.as_ref().ok().map(|a| {
            let id = match a.machine_index() {
                Some(i) => format!("{}/{i}", a.region),
                None => a.region.clone(),
            };
            (a.response_time as f64, a.work_time as f64, id)
        });
        Sample {
            rtt_ms: self.model_ms(end - start),
            start_ms: self.model_ms(start - t0),
            end_ms: self.model_ms(end - t0),
            answer,
            failure: result.err().map(|f: Failure| f.class()),
            machine: None,
        }
    }

    /// `count` requests one after the other (no load).
    pub fn sequential(&self, url: &str, count: usize) -> Vec<Sample> {
        let client = self.client();
        let t0 = Instant::now();
        (0..count).map(|_| self.one(&client, url, t0)).collect()
    }

    /// Closed loop: `concurrency` threads, each sending to `urls[(thread + k) % len]` back to back
    /// for `duration_ms` (model). Throughput counts completions after a warm-up quarter. Also
    /// returns every sample (times from the level's own start), each answer tagged with the
    /// answering machine's index in `machines`, for the estimator that reads a unit's ceiling
    /// from them.
    pub fn closed_loop(
        &self,
        urls: &[String],
        machines: &[MachineId],
        concurrency: usize,
        duration_ms: f64,
    ) -> (Level, Vec<Sample>) {
        let barrier = Arc::new(Barrier::new(concurrency));
        // The clock starts when every thread is ready (spawning hundreds takes a while on a
        // loaded machine, and that time must not count as idle).
        let start = Arc::new(OnceLock::new());
        let length = self.scale.to_wall(duration_ms);
        let mut samples: Vec<Sample> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..concurrency)
                .map(|i| {
                    let barrier = barrier.clone();
                    let start = start.clone();
                    let urls = urls.to_vec();
                    std::thread::Builder::new()
                        .stack_size(256 * 1024)
                        .spawn_scoped(scope, move || {
                            let client = self.client();
                            barrier.wait();
                            let t0: Instant = *start.get_or_init(Instant::now);
                            let deadline = t0 + length;
                            let mut out = Vec::new();
                            let mut k = i;
                            while Instant::now() < deadline {
                                out.push(self.one(&client, &urls[k % urls.len()], t0));
                                k += 1;
                            }
                            out
                        })
                })
                .collect();
            handles
                .into_iter()
                .filter_map(|h| h.ok())
                .flat_map(|h| h.join().unwrap_or_default())
                .collect()
        });
        let ids: Vec<String> = machines.iter().map(|m| m.to_string()).collect();
        for s in &mut samples {
            s.machine = s
                .answer
                .as_ref()
                .and_then(|a| ids.iter().position(|id| *id == a.2));
        }
        (
            Level::from_samples(concurrency, &samples, duration_ms),
            samples,
        )
    }

    /// `count` requests sent at the same moment, one connection each; `url_of(i)` picks the URL.
    pub fn burst(&self, count: usize, url_of: &(dyn Fn(usize) -> String + Sync)) -> Vec<Sample> {
        let barrier = Arc::new(Barrier::new(count));
        let start = Arc::new(OnceLock::new());
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..count)
                .filter_map(|i| {
                    let barrier = barrier.clone();
                    let start = start.clone();
                    let url = url_of(i);
                    std::thread::Builder::new()
                        .stack_size(128 * 1024)
                        .spawn_scoped(scope, move || {
                            let client = self.client();
                            barrier.wait();
                            let t0: Instant = *start.get_or_init(Instant::now);
                            self.one(&client, &url, t0)
                        })
                        .ok()
                })
                .collect();
            handles.into_iter().filter_map(|h| h.join().ok()).collect()
        })
    }
}

/// One concurrency level of a closed-loop ramp.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Level {
    pub concurrency: usize,
    /// Ok answers per second (model time), after the warm-up quarter.
    pub throughput_rps: f64,
    pub ok: usize,
    pub failed: usize,
    /// Median client round trip (model ms) and server `response_time`.
    pub rtt_p50_ms: f64,
    pub response_time_p50_ms: f64,
}

impl Level {
    fn from_samples(concurrency: usize, samples: &[Sample], duration_ms: f64) -> Level {
        let warm = duration_ms / 4.0;
        let counted = samples
            .iter()
            .filter(|s| s.ok() && s.end_ms >= warm && s.end_ms <= duration_ms)
            .count();
        let rtts: Vec<f64> = samples
            .iter()
            .filter(|s| s.ok())
            .map(|s| s.rtt_ms)
            .collect();
        let rts: Vec<f64> = samples
            .iter()
            .filter_map(|s| s.answer.as_ref().map(|a| a.0))
            .collect();
        Level {
            concurrency,
            throughput_rps: counted as f64 / ((duration_ms - warm) / 1000.0),
            ok: samples.iter().filter(|s| s.ok()).count(),
            failed: samples.iter().filter(|s| !s.ok()).count(),
            rtt_p50_ms: median(&rtts),
            response_time_p50_ms: median(&rts),
        }
    }
}
