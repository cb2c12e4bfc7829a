//! The emulated forwarding unit and its workers, faithful to the measured 2021 system.
//!
//! Every run, test, sweep and report measures against this, so it must behave like the real
//! system did in latency, capacity, overload and cold start; `topologies/default.toml` gives each
//! figure with the public measurement it comes from. Structure, by concern:
//! - [`topology`]: the parameters (TOML, the measured defaults embedded), each in a fixed range.
//! - [`clock`]: model time vs wall time (`--time-scale`), absolute deadlines.
//! - [`worker`]: one machine as a virtual-clock queue; its own HTTP server.
//! - [`forwarder`]: the forwarding unit, a real HTTP proxy with a FCFS handling stage.
//! - [`http`]: the small thread-per-connection HTTP/1.1 server and client both use.
//! - [`serve`]: `cmdunit serve`.
//!
//! [`Emulator::start`] runs K forwarding units and one worker per machine in this process, each on
//! its own port, all sharing one clock. Tests of a controller can change a machine's fault while
//! it runs ([`Emulator::set_fault`]): each worker's port is held for the emulator's whole life, so
//! a machine can go down (connections refused) and come back on the same port.

pub mod clock;
pub mod forwarder;
pub mod http;
pub mod serve;
pub mod topology;
pub mod worker;

use crate::endpoint::MachineId;
use clock::Clock;
use forwarder::{ForwarderHandler, Upstream};
use http::{ReservedPort, Server};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::{Arc, Mutex};
use topology::{Fault, Topology};
use worker::{Machine, WorkerHandler};

/// Time scales an emulator accepts (wall ms per model ms): below, host lag of one wall
/// millisecond would be over a model second; above, one model second would last over 16 minutes.
pub const TIME_SCALE: RangeInclusive<f64> = 0.001..=1000.0;
/// Forwarding units one emulator runs (each may hold `connection_limit` connections).
pub const FORWARDERS: RangeInclusive<usize> = 1..=64;

/// How to start an emulator.
#[derive(Clone, Debug)]
pub struct EmulatorConfig {
    pub topology: Topology,
    pub bind: IpAddr,
    /// Port of the first forwarding unit; the others and then the workers take the next ports.
    /// 0: every server gets an ephemeral port.
    pub port: u16,
    /// How many forwarding units run over the same workers.
    pub forwarders: usize,
    /// Wall milliseconds per model millisecond (0.1 = ten times faster).
    pub time_scale: f64,
    pub seed: u64,
    /// Start every machine awake instead of asleep.
    pub awake: bool,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        EmulatorConfig {
            topology: Topology::default(),
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            forwarders: 1,
            time_scale: 1.0,
            seed: 0,
            awake: false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot start a server thread: {0}")]
    Thread(std::io::Error),
    #[error("invalid emulator configuration: {0}")]
    Config(String),
    #[error("no machine {0} in this emulator")]
    UnknownMachine(MachineId),
    #[error(transparent)]
    Topology(#[from] topology::TopologyError),
}

/// One worker: its machine, the port held for it, and its server while it is up.
struct WorkerSlot {
    id: MachineId,
    machine: Arc<Machine>,
    /// Holds the port whether the machine is up or down (see [`http::ports`]).
    port: ReservedPort,
    /// The server while the machine is up; `None` while it is down (connections refused).
    server: Mutex<Option<Server>>,
}

impl WorkerSlot {
    fn addr(&self) -> SocketAddr {
        self.port.addr
    }

    /// Bring the server up or down to match `down`.
    fn set_down(&self, down: bool, clock: Clock) -> Result<(), EmulatorError> {
        let mut server = self.server.lock().unwrap_or_else(|e| e.into_inner());
        match (down, server.is_some()) {
            (true, true) => {
                if let Some(mut s) = server.take() {
                    s.stop();
                }
            }
            (false, false) => {
                let addr = self.addr();
                let listener = http::listen_shared(addr)
                    .map_err(|source| EmulatorError::Bind { addr, source })?;
                *server = Some(serve_worker(listener, self.machine.clone(), clock)?);
            }
            _ => {}
        }
        Ok(())
    }
}

struct ForwarderUnit {
    server: Mutex<Server>,
    handler: Arc<ForwarderHandler>,
    url: String,
}

/// A running emulator: K forwarding units and the workers, all in this process.
pub struct Emulator {
    forwarders: Vec<ForwarderUnit>,
    workers: Vec<WorkerSlot>,
    clock: Clock,
    warnings: Vec<String>,
}

impl Emulator {
    pub fn start(cfg: EmulatorConfig) -> Result<Emulator, EmulatorError> {
        cfg.topology.validate()?;
        if !TIME_SCALE.contains(&cfg.time_scale) {
            return Err(EmulatorError::Config(format!(
                "time scale must be in {}..={}, got {:?}",
                TIME_SCALE.start(),
                TIME_SCALE.end(),
                cfg.time_scale
            )));
        }
        if !FORWARDERS.contains(&cfg.forwarders) {
            return Err(EmulatorError::Config(format!(
                "forwarding units must be in {}..={}, got {}",
                FORWARDERS.start(),
                FORWARDERS.end(),
                cfg.forwarders
            )));
        }
        let t = &cfg.topology;
        let mut warnings = Vec::new();
        let needed = fd_need(t, cfg.forwarders);
        let limit = raise_fd_limit();
        if limit < needed {
            warnings.push(format!(
                "open-file limit is {limit}, below the {needed} this topology can use \
                 ({} forwarding unit(s) x {} connections, plus their worker calls); \
                 connections may fail before the modelled limit",
                cfg.forwarders, t.forwarder.connection_limit
            ));
        }
        let clock = Clock::new(cfg.time_scale);
        let port_at = |i: usize| -> Result<u16, EmulatorError> {
            if cfg.port == 0 {
                return Ok(0);
            }
            u16::try_from(cfg.port as usize + i).map_err(|_| {
                EmulatorError::Config(format!("port {} + {i} is past 65535", cfg.port))
            })
        };
        let k = cfg.forwarders;
        let mut workers = Vec::new();
        for (j, spec) in t.machines.iter().enumerate() {
            let addr = SocketAddr::new(cfg.bind, port_at(k + j)?);
            let port = ReservedPort::bind_shared(addr)
                .map_err(|source| EmulatorError::Bind { addr, source })?;
            let seed = mix(cfg.seed, 1 + j as u64);
            let slot = WorkerSlot {
                id: spec.id(),
                machine: Arc::new(Machine::new(spec.clone(), clock, seed, cfg.awake)),
                port,
                server: Mutex::new(None),
            };
            slot.set_down(spec.fault.down, clock)?;
            workers.push(slot);
        }
        let upstreams: Vec<Upstream> = workers
            .iter()
            .map(|w| Upstream {
                id: w.id.clone(),
                addr: w.addr(),
            })
            .collect();
        let mut forwarders = Vec::new();
        for i in 0..k {
            let addr = SocketAddr::new(cfg.bind, port_at(i)?);
            let handler = Arc::new(ForwarderHandler::new(
                t.forwarder.clone(),
                clock,
                upstreams.clone(),
                mix(cfg.seed, 1000 + i as u64),
                upstream_timeout_ms(t),
            ));
            let server = start_forwarder(handler.clone(), t.forwarder.connection_limit, addr)?;
            forwarders.push(ForwarderUnit {
                url: server.url(),
                server: Mutex::new(server),
                handler,
            });
        }
        Ok(Emulator {
            forwarders,
            workers,
            clock,
            warnings,
        })
    }

    /// One base URL per forwarding unit, e.g. `http://127.0.0.1:5000`.
    pub fn forwarder_urls(&self) -> Vec<String> {
        self.forwarders.iter().map(|f| f.url.clone()).collect()
    }

    /// Each worker's own base URL (a machine that is down has a port that refuses connections).
    pub fn worker_urls(&self) -> Vec<(MachineId, String)> {
        self.workers
            .iter()
            .map(|w| (w.id.clone(), format!("http://{}", w.addr())))
            .collect()
    }

    /// Change a machine's fault while the emulator runs. `down`: connections to the machine are
    /// refused from now on, and requests it was serving are cut; clearing it brings the machine
    /// back on the same port, with its queue and power state as they were. `slow_factor` and
    /// `error_rate` apply to requests that reach the machine from now on.
    pub fn set_fault(&self, machine: &MachineId, fault: Fault) -> Result<(), EmulatorError> {
        fault
            .validate()
            .map_err(|e| EmulatorError::Config(format!("machine {machine}: {e}")))?;
        let slot = self
            .workers
            .iter()
            .find(|w| &w.id == machine)
            .ok_or_else(|| EmulatorError::UnknownMachine(machine.clone()))?;
        let down = fault.down;
        slot.machine.set_fault(fault);
        slot.set_down(down, self.clock)
    }

    /// The fault a machine has now, if it is in this emulator.
    pub fn fault(&self, machine: &MachineId) -> Option<Fault> {
        self.workers
            .iter()
            .find(|w| &w.id == machine)
            .map(|w| w.machine.fault())
    }

    pub fn time_scale(&self) -> f64 {
        self.clock.scale()
    }

    /// Model milliseconds since the emulator started.
    pub fn now_ms(&self) -> f64 {
        self.clock.now_ms()
    }

    /// A value for the [`http::SENT_HEADER`] request header meaning "sent now": a client in this
    /// process that sends it has its requests taken as sent at that model instant, however long
    /// the host takes to read them. Tests use it to fire N requests at the same model moment, as
    /// the model assumes, on a loaded machine. The forwarding units stamp their worker calls the
    /// same way. Stamps from another clock are ignored.
    pub fn stamp(&self) -> String {
        self.clock.stamp()
    }

    /// Problems found at start that do not stop it (e.g. a low open-file limit).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Kill forwarding unit `i` mid-run: new connections are refused, open ones are cut, requests
    /// waiting in its handling stage are dropped. Out of range: nothing happens.
    pub fn stop_forwarder(&self, i: usize) {
        if let Some(f) = self.forwarders.get(i) {
            f.handler.stop();
            f.server.lock().unwrap_or_else(|e| e.into_inner()).stop();
        }
    }

    /// Stop every server (also done on drop).
    pub fn shutdown(self) {
        drop(self);
    }

    fn stop_all(&mut self) {
        for i in 0..self.forwarders.len() {
            self.stop_forwarder(i);
        }
        for w in &self.workers {
            if let Some(mut s) = w.server.lock().unwrap_or_else(|e| e.into_inner()).take() {
                s.stop();
            }
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.stop_all();
    }
}

/// Start one worker's server on `addr`.
pub fn start_worker(
    machine: Arc<Machine>,
    clock: Clock,
    addr: SocketAddr,
) -> Result<Server, EmulatorError> {
    let listener = http::listen(addr).map_err(|source| EmulatorError::Bind { addr, source })?;
    serve_worker(listener, machine, clock)
}

fn serve_worker(
    listener: std::net::TcpListener,
    machine: Arc<Machine>,
    clock: Clock,
) -> Result<Server, EmulatorError> {
    let name = machine.id.to_string();
    let handler = Arc::new(WorkerHandler { machine, clock });
    // A worker has no connection limit of its own beyond the process's descriptors.
    Server::start(listener, handler, usize::MAX, &name).map_err(EmulatorError::Thread)
}

/// Start one forwarding unit's server on `addr`.
pub fn start_forwarder(
    handler: Arc<ForwarderHandler>,
    connection_limit: usize,
    addr: SocketAddr,
) -> Result<Server, EmulatorError> {
    let listener = http::listen(addr).map_err(|source| EmulatorError::Bind { addr, source })?;
    let server = Server::start(listener, handler.clone(), connection_limit, "forwarder")
        .map_err(EmulatorError::Thread)?;
    handler.set_conn_stats(server.stats());
    Ok(server)
}

/// How long a forwarding unit waits for a worker (model ms): the router's own timeout plus the
/// longest round trip, doubled for safety. Past it the worker is considered lost (504).
pub fn upstream_timeout_ms(t: &Topology) -> f64 {
    let worst = t
        .machines
        .iter()
        .map(|m| m.router_timeout_ms + m.latency_ms + m.jitter_ms)
        .fold(0.0, f64::max);
    2.0 * worst.max(1000.0)
}

/// Descriptors the topology can use at once: each forwarding unit's client connections, one
/// worker connection per forwarded request on both ends, and some slack.
pub fn fd_need(t: &Topology, forwarders: usize) -> u64 {
    (forwarders as u64)
        .saturating_mul(t.forwarder.connection_limit as u64)
        .saturating_mul(3)
        .saturating_add(256)
}

/// Raise the open-file soft limit to the hard limit; returns the soft limit now in force.
pub fn raise_fd_limit() -> u64 {
    // SAFETY: getrlimit/setrlimit with a properly initialised struct.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 0;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                return raised.rlim_cur;
            }
        }
        lim.rlim_cur
    }
}

/// A seed for component `k` derived from the run's seed (splitmix64), so components draw
/// independent, repeatable streams.
pub fn mix(seed: u64, k: u64) -> u64 {
    let mut z = seed
        .wrapping_add(k.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
