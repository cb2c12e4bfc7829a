//! One worker machine: a virtual-clock model of its network latency, its first-come-first-served
//! servers, sleep and boot, the platform router's timeout and the faults it can be given.
//!
//! Why a virtual clock: "first come, first served, 21.5 ms each" must hold exactly whatever the
//! host's scheduler does with a thousand threads. So each request, when it reaches the worker,
//! is *admitted*: the model computes at once when it reaches the machine (half the round-trip
//! latency later), when a server is free for it (`start = max(arrival, free_at)`), when it is done
//! and when the answer is back at the caller; the connection thread then only sleeps until that
//! absolute deadline. Service order is admission order; no timing depends on when threads wake.
//! When the caller is a forwarding unit of the same emulator, it stamps the request with the
//! moment it sent it (same clock), and the model starts from that stamp rather than from when
//! this thread got to read the request.

use super::clock::Clock;
use super::http::{Handler, Request, Response, REPLIED_HEADER};
use super::topology::{Fault, MachineSpec};
use crate::endpoint::{MachineId, WorkAnswer};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// How one admitted request ends.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Outcome {
    /// Served: the worker's own service time (`work_time`, integer ms).
    Served { work_time: u64 },
    /// The router gave up after its timeout (the work is still done): 503.
    RouterTimeout,
    /// The error-rate fault: 503 after the work.
    Failed,
}

/// The model's verdict for one request.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ticket {
    /// Model time at which the answer is back where the request came from.
    pub reply_at_ms: f64,
    pub outcome: Outcome,
}

/// Whether a machine is serving, booting or asleep at a given moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Power {
    Asleep,
    Booting,
    Awake,
}

impl Power {
    pub fn as_str(self) -> &'static str {
        match self {
            Power::Asleep => "asleep",
            Power::Booting => "booting",
            Power::Awake => "awake",
        }
    }
}

struct State {
    /// When each of the machine's `concurrency` servers is next free (model ms).
    free_at: Vec<f64>,
    /// Last moment the machine was doing anything (an arrival or the end of a service); `None`
    /// while it has never been woken.
    last_active: Option<f64>,
    /// End of the latest boot.
    booted_at: f64,
    rng: StdRng,
    /// The fault in force (the topology's at first; [`Machine::set_fault`] changes it).
    fault: Fault,
    /// Admitted requests not finished yet: (arrival, start, end).
    pending: Vec<(f64, f64, f64)>,
    served: u64,
    failed: u64,
    timeouts: u64,
    boots: u64,
}

/// The virtual-clock model of one machine.
pub struct Machine {
    pub spec: MachineSpec,
    pub id: MachineId,
    clock: Clock,
    state: Mutex<State>,
}

impl Machine {
    /// A machine asleep (or awake since time 0 if `awake`), with its own seeded randomness.
    pub fn new(spec: MachineSpec, clock: Clock, seed: u64, awake: bool) -> Machine {
        let id = spec.id();
        // Bounded even if the spec skipped `Topology::validate`: one slot per server is allocated.
        let concurrency = spec
            .concurrency
            .clamp(1, *super::topology::CONCURRENCY.end()) as usize;
        Machine {
            state: Mutex::new(State {
                free_at: vec![0.0; concurrency],
                last_active: awake.then_some(0.0),
                booted_at: 0.0,
                rng: StdRng::seed_from_u64(seed),
                fault: spec.fault.clone(),
                pending: Vec::new(),
                served: 0,
                failed: 0,
                timeouts: 0,
                boots: 0,
            }),
            id,
            spec,
            clock,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The fault in force now.
    pub fn fault(&self) -> Fault {
        self.lock().fault.clone()
    }

    /// Change the fault from now on: requests admitted later are slowed or failed by the new one.
    /// (`down` is the server's business: see [`crate::emulator::Emulator::set_fault`].)
    pub fn set_fault(&self, fault: Fault) {
        self.lock().fault = fault;
    }

    /// Admit a request that reached the worker at model time `received_ms`.
    pub fn admit(&self, received_ms: f64) -> Ticket {
        let spec = &self.spec;
        let mut s = self.lock();
        let jitter = if spec.jitter_ms > 0.0 {
            s.rng.random_range(0.0..=spec.jitter_ms)
        } else {
            0.0
        };
        let half_trip = (spec.latency_ms + jitter) / 2.0;
        let arrival = received_ms + half_trip;
        let asleep = match s.last_active {
            None => true,
            Some(t) => arrival - t > spec.idle_timeout_ms,
        };
        if asleep {
            // Requests arriving while it boots find it awake-but-busy and queue behind the boot.
            let ready = arrival + spec.boot_ms;
            s.free_at.iter_mut().for_each(|f| *f = ready);
            s.booted_at = ready;
            s.boots += 1;
        }
        let (server, free_at) = s
            .free_at
            .iter()
            .copied()
            .enumerate()
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap_or((0, 0.0));
        let work = match spec.work_time_ms.len() {
            0 => 0.0, // rejected by Topology::validate; no panic if unvalidated
            n => spec.work_time_ms[s.rng.random_range(0..n)] as f64,
        };
        let slow = s.fault.slow_factor;
        let error_rate = s.fault.error_rate;
        let start = arrival.max(free_at);
        let end = start + (work + spec.handling_ms) * slow;
        if let Some(f) = s.free_at.get_mut(server) {
            *f = end;
        }
        s.last_active = Some(s.last_active.map_or(end, |t| t.max(end)));
        let now = received_ms;
        s.pending.retain(|p| p.2 > now);
        s.pending.push((arrival, start, end));
        let (leave, outcome) = if end - arrival > spec.router_timeout_ms {
            s.timeouts += 1;
            (arrival + spec.router_timeout_ms, Outcome::RouterTimeout)
        } else if error_rate > 0.0 && s.rng.random_bool(error_rate.clamp(0.0, 1.0)) {
            s.failed += 1;
            (end, Outcome::Failed)
        } else {
            s.served += 1;
            (
                end,
                Outcome::Served {
                    work_time: (work * slow).round() as u64,
                },
            )
        };
        Ticket {
            reply_at_ms: leave + half_trip,
            outcome,
        }
    }

    /// Power state at model time `now`.
    pub fn power(&self, now: f64) -> Power {
        let s = self.lock();
        Self::power_of(&s, &self.spec, now)
    }

    fn power_of(s: &State, spec: &MachineSpec, now: f64) -> Power {
        match s.last_active {
            None => Power::Asleep,
            Some(t) if now - t > spec.idle_timeout_ms => Power::Asleep,
            Some(_) if now < s.booted_at => Power::Booting,
            Some(_) => Power::Awake,
        }
    }

    /// Counters and state for `GET /stats`.
    pub fn stats_json(&self) -> serde_json::Value {
        let now = self.clock.now_ms();
        let mut s = self.lock();
        s.pending.retain(|p| p.2 > now);
        let queue = s.pending.iter().filter(|p| p.0 <= now && p.1 > now).count();
        let in_service = s.pending.iter().filter(|p| p.1 <= now && p.2 > now).count();
        serde_json::json!({
            "machine": self.id.to_string(),
            "up": !s.fault.down,
            "state": Self::power_of(&s, &self.spec, now).as_str(),
            "served": s.served,
            "failed": s.failed + s.timeouts,
            "router_timeouts": s.timeouts,
            "errors": s.failed,
            "boots": s.boots,
            "queue": queue,
            "in_service": in_service,
            "admitted_not_done": s.pending.len(),
            "model_ms": now.round() as u64,
        })
    }
}

/// The worker's HTTP face: `GET /work` (and its own `/work/<region>[/<machine>]`), `/`, `/stats`.
pub struct WorkerHandler {
    pub machine: Arc<Machine>,
    pub clock: Clock,
}

impl Handler for WorkerHandler {
    fn handle(&self, request: &Request) -> Response {
        if request.method != "GET" {
            let mut r = Response::error(405, "method not allowed; use GET");
            r.extra_headers.push(("Allow", "GET".into()));
            return r;
        }
        let id = &self.machine.id;
        match request.path.as_str() {
            "/" => Response::json(
                200,
                &serde_json::json!({
                    "service": "cmdunit emulated worker",
                    "machine": id.to_string(),
                    "endpoints": ["/work", "/stats"],
                    "time_scale": self.clock.scale(),
                }),
            ),
            "/stats" => Response::json(200, &self.machine.stats_json()),
            path if serves_path(path, id) => self.work(request),
            _ => Response::error(404, &format!("not found; this worker is {id}")),
        }
    }
}

/// `/work`, `/work/<region>` and `/work/<region>/<index>` naming this machine.
fn serves_path(path: &str, id: &MachineId) -> bool {
    let mut parts = path.trim_start_matches('/').split('/');
    if parts.next() != Some("work") {
        return false;
    }
    match (parts.next(), parts.next(), parts.next()) {
        (None, _, _) => true,
        (Some(r), None, _) => r == id.region,
        (Some(r), Some(i), None) => r == id.region && i.parse::<u32>().ok() == Some(id.index),
        _ => false,
    }
}

impl WorkerHandler {
    fn work(&self, request: &Request) -> Response {
        // A forwarding unit on this same clock says when it sent the request: the model (and
        // this worker's own timing) starts there, so the loopback connect and thread start-up
        // are not counted as network time.
        let sent = request
            .sent_stamp
            .as_deref()
            .and_then(|s| self.clock.read_stamp(s));
        let (received, received_ms) = match sent {
            Some(ms) => (self.clock.instant_at(ms), ms),
            None => (Instant::now(), self.clock.now_ms()),
        };
        let ticket = self.machine.admit(received_ms);
        self.clock.sleep_until(ticket.reply_at_ms);
        let own_ms = self.clock.to_model_ms(received.elapsed()).round() as u64;
        let id = &self.machine.id;
        let mut response = match ticket.outcome {
            Outcome::Served { work_time } => {
                let answer = WorkAnswer {
                    machine: format!("Machine {}", id.index),
                    region: id.region.clone(),
                    response_time: own_ms,
                    work_time,
                };
                Response::json_bytes(200, serde_json::to_vec(&answer).unwrap_or_default())
            }
            Outcome::RouterTimeout => Response::error(
                503,
                &format!(
                    "router timeout: request spent over {} ms at {id} (H12)",
                    self.machine.spec.router_timeout_ms
                ),
            ),
            Outcome::Failed => Response::error(503, &format!("{id} failed the request")),
        };
        // When the answer is back at the caller, in model time: a forwarding unit on this clock
        // takes it as the moment the answer arrived (see `REPLIED_HEADER`).
        response
            .extra_headers
            .push((REPLIED_HEADER, self.clock.stamp_at(ticket.reply_at_ms)));
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emulator::topology::Topology;

    fn machine(awake: bool) -> Machine {
        let mut spec = Topology::default().machines[2].clone(); // emea/0, 290 ms
        spec.jitter_ms = 0.0;
        spec.work_time_ms = vec![20];
        spec.handling_ms = 2.0;
        Machine::new(spec, Clock::new(1.0), 7, awake)
    }

    #[test]
    fn first_come_first_served_on_a_virtual_clock() {
        let m = machine(true);
        // Three requests received at once: served one after another, 22 ms each.
        let t: Vec<f64> = (0..3).map(|_| m.admit(1000.0).reply_at_ms).collect();
        assert_eq!(t, vec![1000.0 + 290.0 + 22.0, 1334.0, 1356.0]);
    }

    #[test]
    fn a_sleeping_machine_boots_and_queues_requests_meanwhile() {
        let m = machine(false);
        assert_eq!(m.power(0.0), Power::Asleep);
        let first = m.admit(0.0).reply_at_ms;
        assert_eq!(first, 290.0 + 10_000.0 + 22.0);
        assert_eq!(m.power(5_000.0), Power::Booting);
        let second = m.admit(100.0).reply_at_ms; // during boot: queued behind it
        assert_eq!(second, first + 22.0);
        // Idle past the timeout: asleep again, and the next request boots it again.
        let later = 10_400.0 + 1_800_001.0;
        assert_eq!(m.power(later), Power::Asleep);
        assert_eq!(m.admit(later).reply_at_ms, later + 10_312.0);
    }

    #[test]
    fn router_timeout_answers_at_the_mark_but_the_work_is_done() {
        let m = machine(true);
        let n = 2000;
        let outcomes: Vec<Ticket> = (0..n).map(|_| m.admit(0.0)).collect();
        let timeouts = outcomes
            .iter()
            .filter(|t| t.outcome == Outcome::RouterTimeout)
            .count();
        // Served while end - arrival <= 30 s: k * 22 <= 30 000 -> 1363 served.
        assert_eq!(timeouts, n - 30_000 / 22);
        let last = outcomes.last().unwrap();
        assert_eq!(last.reply_at_ms, 290.0 + 30_000.0);
    }

    #[test]
    fn paths_name_this_machine_only() {
        let id = MachineId::new("us", 1);
        assert!(serves_path("/work", &id));
        assert!(serves_path("/work/us", &id));
        assert!(serves_path("/work/us/1", &id));
        assert!(!serves_path("/work/us/0", &id));
        assert!(!serves_path("/work/eu", &id));
        assert!(!serves_path("/work/us/1/x", &id));
        assert!(!serves_path("/stats/x", &id));
    }
}
