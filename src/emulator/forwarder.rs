//! The forwarding unit: a real HTTP proxy in front of the workers.
//!
//! Per request, as measured in 2021: a first-come-first-served handling stage of `handling_ms`,
//! one request at a time, on a virtual clock (`slot end = max(arrival, free_at) + handling`); a
//! call to the worker over a new HTTP connection, timed on the wall clock — that is the
//! `response_time` it reports; then `overhead_ms` that overlaps between requests. Client
//! connections past its limit are closed.
//!
//! Where the stage sits is not known from the public record, so it is a parameter
//! ([`HandlingPosition`]): *before* the call (requests reach the workers at most one per
//! `handling_ms`) or *after* it (every request reaches its worker at once; answers enter the stage
//! as they come back). Either way the wait in the stage is outside `response_time` and inside what
//! the client sees. An answer enters the "after" stage at the model instant the worker says it is
//! back (its [`http::REPLIED_HEADER`] stamp, same clock), so host lag in reading it shifts nothing.
use super::clock::Clock;
use super::http::{self, ConnStats, Handler, Request, Response};
use super::topology::{ForwarderSpec, HandlingPosition};
use crate::endpoint::{Layout, MachineId, WorkAnswer};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// One worker call's outcome.
struct Call {
    /// What the unit answers its client (once the stage and overhead are done).
    response: Response,
    /// When the worker's answer was read (wall).
    finished: Instant,
    /// When the answer was back at the unit (model ms).
    back_ms: f64,
}

/// The answer to a request dropped because the unit was stopped.
fn stopped() -> Response {
    let mut r = Response::error(503, "forwarding unit stopped");
    r.close = true;
    r
}

/// A worker the forwarding unit can call.
#[derive(Clone, Debug)]
pub struct Upstream {
    pub id: MachineId,
    pub addr: SocketAddr,
}

/// Per-machine counts as this forwarding unit saw them.
#[derive(Debug, Default)]
struct UpstreamCounts {
    ok: AtomicU64,
    failed: AtomicU64,
}

pub struct ForwarderHandler {
    spec: ForwarderSpec,
    clock: Clock,
    layout: Layout,
    upstreams: Vec<Upstream>,
    counts: Vec<UpstreamCounts>,
    /// End of the handling stage's latest slot (model ms).
    stage_free_at: Mutex<f64>,
    rng: Mutex<StdRng>,
    /// How long to wait for a worker before answering 504 (wall).
    upstream_timeout: Duration,
    in_flight: AtomicUsize,
    served: AtomicU64,
    failed: AtomicU64,
    stopped: AtomicBool,
    /// The server's connection counters, set once the server runs.
    conn_stats: OnceLock<Arc<ConnStats>>,
}

impl ForwarderHandler {
    /// `upstreams` in topology order. `upstream_timeout_ms` is model time.
    pub fn new(
        spec: ForwarderSpec,
        clock: Clock,
        upstreams: Vec<Upstream>,
        seed: u64,
        upstream_timeout_ms: f64,
    ) -> ForwarderHandler {
        let layout = Layout::new(upstreams.iter().map(|u| u.id.clone()).collect());
        let counts = upstreams
            .iter()
            .map(|_| UpstreamCounts::default())
            .collect();
        ForwarderHandler {
            spec,
            clock,
            layout,
            counts,
            upstreams,
            stage_free_at: Mutex::new(0.0),
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
            upstream_timeout: clock.to_wall(upstream_timeout_ms) + Duration::from_secs(2),
            in_flight: AtomicUsize::new(0),
            served: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            stopped: AtomicBool::new(false),
            conn_stats: OnceLock::new(),
        }
    }

    pub fn set_conn_stats(&self, stats: Arc<ConnStats>) {
        let _ = self.conn_stats.set(stats);
    }

    /// Stop forwarding: requests waiting in the handling stage are dropped.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
    }

    /// The machine a `/work...` path asks for, or the 404 to answer.
    fn route(&self, path: &str) -> Result<usize, Response> {
        let mut parts = path.trim_start_matches('/').split('/');
        let not_found = |m: String| Response::error(404, &m);
        if parts.next() != Some("work") {
            return Err(not_found(format!("no such path: {path}")));
        }
        let (region, machine) = match (parts.next(), parts.next(), parts.next()) {
            (None, _, _) => (None, None),
            (Some(r), None, _) => (Some(r), None),
            (Some(r), Some(m), None) => (Some(r), Some(m)),
            _ => return Err(not_found(format!("no such path: {path}"))),
        };
        let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        let region_index = match region {
            // `/work`: a random region, then a random machine in it, as the original did.
            None => rng.random_range(0..self.layout.regions.len()),
            Some(r) => self
                .layout
                .region_index(r)
                .ok_or_else(|| not_found(format!("unknown region: {r}")))?,
        };
        let region_name = &self.layout.regions[region_index];
        match machine {
            None => {
                let of = self.layout.machines_of(region_index);
                Ok(of[rng.random_range(0..of.len())])
            }
            Some(m) => {
                let index: u32 = m
                    .parse()
                    .map_err(|_| not_found(format!("machine must be an integer: {m}")))?;
                self.layout
                    .machine_index(region_name, index)
                    .ok_or_else(|| not_found(format!("no machine {index} in region {region_name}")))
            }
        }
    }

    /// The handling stage: reserve the next slot and return when it ends (model ms).
    fn take_stage_slot(&self, arrival: f64) -> f64 {
        let mut free_at = self.stage_free_at.lock().unwrap_or_else(|e| e.into_inner());
        let end = arrival.max(*free_at) + self.spec.handling_ms;
        *free_at = end;
        end
    }

    fn forward(&self, machine: usize, sent_ms: f64) -> Response {
        let response = match self.spec.handling_position {
            HandlingPosition::Before => self.stage_then_call(machine, sent_ms),
            HandlingPosition::After => self.call_then_stage(machine, sent_ms),
        };
        let counts = &self.counts[machine];
        if response.status == 200 {
            counts.ok.fetch_add(1, Ordering::Relaxed);
            self.served.fetch_add(1, Ordering::Relaxed);
        } else {
            counts.failed.fetch_add(1, Ordering::Relaxed);
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
        response
    }

    /// The stage first (its wait is not in `response_time`), then the worker call.
    fn stage_then_call(&self, machine: usize, sent_ms: f64) -> Response {
        let slot_end = self.take_stage_slot(sent_ms);
        self.clock.sleep_until(slot_end);
        if self.stopped.load(Ordering::SeqCst) {
            return stopped();
        }
        // The call starts when the stage releases it (model time), even if this thread woke a
        // little late; the stamp tells the worker so, and response_time is timed from there.
        let call = self.call_worker(machine, slot_end);
        // The overhead after the answer overlaps with other requests: a deadline of its own.
        super::clock::sleep_until(call.finished + self.clock.to_wall(self.spec.overhead_ms));
        call.response
    }

    /// The worker call at once, then the stage for the answer (its wait is not in
    /// `response_time`, which was timed around the call alone), then the overhead.
    fn call_then_stage(&self, machine: usize, sent_ms: f64) -> Response {
        let call = self.call_worker(machine, sent_ms);
        let slot_end = self.take_stage_slot(call.back_ms);
        self.clock.sleep_until(slot_end);
        if self.stopped.load(Ordering::SeqCst) {
            return stopped();
        }
        self.clock.sleep_until(slot_end + self.spec.overhead_ms);
        call.response
    }

    /// Call the worker as if at model time `start_ms` and make the unit's answer.
    fn call_worker(&self, machine: usize, start_ms: f64) -> Call {
        let up = &self.upstreams[machine];
        let started = self.clock.instant_at(start_ms);
        let stamp = self.clock.stamp_at(start_ms);
        let result = http::get(
            up.addr,
            "/work",
            &[(http::SENT_HEADER, &stamp)],
            self.upstream_timeout,
        );
        let finished = Instant::now();
        let back_ms = result
            .as_ref()
            .ok()
            .and_then(|r| r.replied_stamp.as_deref())
            .and_then(|s| self.clock.read_stamp(s))
            .unwrap_or_else(|| self.clock.now_ms());
        let response_time = self
            .clock
            .to_model_ms(finished.saturating_duration_since(started))
            .round() as u64;
        let response = match result {
            Ok(r) if r.status == 200 => match serde_json::from_slice::<WorkAnswer>(&r.body) {
                Ok(worker) => {
                    let answer = WorkAnswer {
                        machine: worker.machine,
                        region: worker.region,
                        response_time,
                        work_time: worker.work_time,
                    };
                    Response::json_bytes(200, serde_json::to_vec(&answer).unwrap_or_default())
                }
                Err(_) => Response::error(502, &format!("bad answer from {}", up.id)),
            },
            // The worker's own error (503 from the router or a fault): passed through.
            Ok(r) => Response::json_bytes(r.status, r.body),
            Err(http::ClientError::Connect { .. }) => {
                Response::error(502, &format!("{} refused the connection", up.id))
            }
            Err(e) => Response::error(504, &format!("{}: {e}", up.id)),
        };
        Call {
            response,
            finished,
            back_ms,
        }
    }

    fn stats_json(&self) -> serde_json::Value {
        let conn = self.conn_stats.get();
        let c = |f: fn(&ConnStats) -> u64| conn.map_or(0, |s| f(s));
        let machines: Vec<serde_json::Value> = self
            .upstreams
            .iter()
            .zip(&self.counts)
            .map(|(u, n)| {
                // The worker's own view (queue, asleep/awake), asked over HTTP like anyone would.
                let worker = http::get(u.addr, "/stats", &[], Duration::from_secs(2))
                    .ok()
                    .filter(|r| r.status == 200)
                    .and_then(|r| serde_json::from_slice::<serde_json::Value>(&r.body).ok());
                serde_json::json!({
                    "machine": u.id.to_string(),
                    "url": format!("http://{}", u.addr),
                    "forwarded_ok": n.ok.load(Ordering::Relaxed),
                    "forwarded_failed": n.failed.load(Ordering::Relaxed),
                    "reachable": worker.is_some(),
                    "worker": worker,
                })
            })
            .collect();
        serde_json::json!({
            "role": "forwarder",
            "connections": {
                "accepted": c(|s| s.accepted.load(Ordering::Relaxed)),
                "refused": c(|s| s.refused.load(Ordering::Relaxed)),
                "open": conn.map_or(0, |s| s.open.load(Ordering::Relaxed)),
                "limit": self.spec.connection_limit,
                "bad_requests": c(|s| s.bad_requests.load(Ordering::Relaxed)),
            },
            "in_flight": self.in_flight.load(Ordering::Relaxed),
            "served": self.served.load(Ordering::Relaxed),
            "failed": self.failed.load(Ordering::Relaxed),
            "model_ms": self.clock.now_ms().round() as u64,
            "machines": machines,
        })
    }
}

impl Handler for ForwarderHandler {
    fn handle(&self, request: &Request) -> Response {
        if request.method != "GET" {
            let mut r = Response::error(405, "method not allowed; use GET");
            r.extra_headers.push(("Allow", "GET".into()));
            return r;
        }
        match request.path.as_str() {
            "/" => Response::json(
                200,
                &serde_json::json!({
                    "service": "cmdunit emulated forwarding unit",
                    "endpoints": ["/work", "/work/<region>", "/work/<region>/<machine>", "/stats"],
                    "regions": self.layout.regions,
                    "machines": self.layout.machines.iter().map(|m| m.to_string()).collect::<Vec<_>>(),
                    "time_scale": self.clock.scale(),
                }),
            ),
            "/stats" => Response::json(200, &self.stats_json()),
            path => match self.route(path) {
                Err(not_found) => not_found,
                Ok(machine) => {
                    // Arrival: now, or when a client on this same clock says it sent it.
                    let sent = request
                        .sent_stamp
                        .as_deref()
                        .and_then(|s| self.clock.read_stamp(s));
                    let sent_ms = sent.unwrap_or_else(|| self.clock.now_ms());
                    self.in_flight.fetch_add(1, Ordering::SeqCst);
                    let r = self.forward(machine, sent_ms);
                    self.in_flight.fetch_sub(1, Ordering::SeqCst);
                    r
                }
            },
        }
    }
}
