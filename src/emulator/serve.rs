//! `cmdunit serve`: run the emulator (or one of its roles) until Ctrl-C.
//!
//! Roles exist so that the pieces can be rearranged: `--role worker` runs one emulated machine,
//! `--role forwarder` runs a forwarding unit in front of workers given by URL (emulated or not),
//! and the default `--role all` runs K forwarding units and every worker of the topology.

use super::clock::Clock;
use super::forwarder::{ForwarderHandler, Upstream};
use super::http::Server;
use super::topology::{Topology, DEFAULT_TOPOLOGY};
use super::worker::Machine;
use super::{Emulator, EmulatorConfig};
use crate::endpoint::MachineId;
use crate::usage::UsageError;
use anyhow::Context;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    /// K forwarding units and one worker per machine of the topology.
    All,
    /// One forwarding unit in front of the workers given by --workers.
    Forwarder,
    /// One worker: the machine given by --machine.
    Worker,
}

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    cmdunit serve                                   # forwarding unit on :5000, workers on :5001-5005\n  \
    cmdunit serve --time-scale 0.1 --awake          # ten times faster, machines awake\n  \
    cmdunit serve --forwarders 5                    # forwarding units on :5000-5004, workers after\n  \
    cmdunit serve --role worker --machine asia/0 --port 6001\n  \
    cmdunit serve --role forwarder --workers asia/0=http://127.0.0.1:6001,emea/0=http://10.0.0.2:6002")]
pub struct ServeArgs {
    /// Port of the (first) forwarding unit; further forwarding units and then the workers take
    /// the next ports. 0 = ephemeral ports.
    #[arg(long, default_value_t = 5000)]
    pub port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// Topology file (TOML); default: the measured 2021 system (see --print-topology).
    #[arg(long, value_name = "FILE")]
    pub topology: Option<PathBuf>,
    /// Wall time per model time: 0.1 runs ten times faster. Answers keep model milliseconds.
    #[arg(long, value_name = "F", default_value_t = 1.0)]
    pub time_scale: f64,
    /// Seed of every random draw (jitter, work time, faults, random machine choice).
    #[arg(long, value_name = "S", default_value_t = 0)]
    pub seed: u64,
    /// Number of forwarding units, on consecutive ports, over the same workers.
    #[arg(long, value_name = "K", default_value_t = 1)]
    pub forwarders: usize,
    /// Start every machine awake (default: asleep, as the real ones usually were).
    #[arg(long)]
    pub awake: bool,
    /// Print the topology in effect (TOML) and exit.
    #[arg(long)]
    pub print_topology: bool,
    /// Which part to run.
    #[arg(long, value_enum, default_value_t = Role::All)]
    pub role: Role,
    /// With --role forwarder: the workers, as MACHINE=URL pairs (asia/0=http://127.0.0.1:6001).
    #[arg(long, value_name = "MACHINE=URL,...", value_delimiter = ',')]
    pub workers: Vec<String>,
    /// With --role worker: which machine of the topology to be (e.g. asia/0).
    #[arg(long, value_name = "REGION/INDEX")]
    pub machine: Option<String>,
}

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let (topology, text) = match &args.topology {
        Some(path) => {
            let t = Topology::load(path).map_err(|e| UsageError(e.to_string()))?;
            let text = std::fs::read_to_string(path).unwrap_or_else(|_| t.to_toml());
            (t, text)
        }
        None => (Topology::default(), DEFAULT_TOPOLOGY.to_string()),
    };
    if args.print_topology {
        print!("{text}");
        return Ok(());
    }
    let scale = &super::TIME_SCALE;
    if !scale.contains(&args.time_scale) {
        return Err(UsageError(format!(
            "--time-scale must be in {}..={}, got {:?}",
            scale.start(),
            scale.end(),
            args.time_scale
        ))
        .into());
    }
    let forwarders = &super::FORWARDERS;
    if !forwarders.contains(&args.forwarders) {
        return Err(UsageError(format!(
            "--forwarders must be in {}..={}, got {}",
            forwarders.start(),
            forwarders.end(),
            args.forwarders
        ))
        .into());
    }
    let awake = if args.awake { "awake" } else { "asleep" };
    println!(
        "cmdunit emulator: topology \"{}\", time scale {}, seed {}, machines start {awake}",
        topology.name, args.time_scale, args.seed
    );
    // Keep whatever runs alive until Ctrl-C.
    let _running: Box<dyn std::any::Any> = match args.role {
        Role::All => Box::new(serve_all(&args, topology)?),
        Role::Forwarder => Box::new(serve_forwarder(&args, topology)?),
        Role::Worker => Box::new(serve_worker(&args, topology)?),
    };
    println!("Ctrl-C to stop.");
    wait_for_ctrl_c()
}

fn serve_all(args: &ServeArgs, topology: Topology) -> anyhow::Result<Emulator> {
    let emulator = Emulator::start(EmulatorConfig {
        topology: topology.clone(),
        bind: args.bind,
        port: args.port,
        forwarders: args.forwarders,
        time_scale: args.time_scale,
        seed: args.seed,
        awake: args.awake,
    })
    .context("starting the emulator")?;
    for w in emulator.warnings() {
        eprintln!("warning: {w}");
    }
    for (i, url) in emulator.forwarder_urls().iter().enumerate() {
        println!("forwarding unit {:<2}  {url}", i + 1);
    }
    for ((id, url), spec) in emulator.worker_urls().iter().zip(&topology.machines) {
        let down = if spec.fault.down { "  (down)" } else { "" };
        println!("worker {:<12} {url}{down}", id.to_string());
    }
    Ok(emulator)
}

fn serve_forwarder(args: &ServeArgs, topology: Topology) -> anyhow::Result<Server> {
    if args.workers.is_empty() {
        return Err(UsageError(
            "--role forwarder needs --workers MACHINE=URL,... (e.g. asia/0=http://127.0.0.1:6001)"
                .into(),
        )
        .into());
    }
    let mut upstreams = Vec::new();
    for pair in &args.workers {
        let (machine, url) = pair
            .split_once('=')
            .ok_or_else(|| UsageError(format!("--workers: expected MACHINE=URL, got {pair:?}")))?;
        let id = parse_machine(machine)?;
        if upstreams.iter().any(|u: &Upstream| u.id == id) {
            return Err(UsageError(format!("--workers: {id} is given twice")).into());
        }
        let addr = super::http::parse_base_url(url).ok_or_else(|| {
            UsageError(format!("--workers: {url:?} is not an http://host:port URL"))
        })?;
        upstreams.push(Upstream { id, addr });
    }
    let limit = super::raise_fd_limit();
    let needed = super::fd_need(&topology, 1);
    if limit < needed {
        eprintln!(
            "warning: open-file limit {limit} is below the {needed} the forwarding unit can use"
        );
    }
    let clock = Clock::new(args.time_scale);
    let handler = Arc::new(ForwarderHandler::new(
        topology.forwarder.clone(),
        clock,
        upstreams,
        super::mix(args.seed, 1000),
        super::upstream_timeout_ms(&topology),
    ));
    let addr = SocketAddr::new(args.bind, args.port);
    let server = super::start_forwarder(handler, topology.forwarder.connection_limit, addr)?;
    println!("forwarding unit     {}", server.url());
    Ok(server)
}

fn serve_worker(args: &ServeArgs, topology: Topology) -> anyhow::Result<Server> {
    let name = args
        .machine
        .as_deref()
        .ok_or_else(|| UsageError("--role worker needs --machine REGION/INDEX".into()))?;
    let id = parse_machine(name)?;
    let (j, spec) = topology
        .machines
        .iter()
        .enumerate()
        .find(|(_, m)| m.id() == id)
        .ok_or_else(|| UsageError(format!("machine {id} is not in the topology")))?;
    super::raise_fd_limit();
    let clock = Clock::new(args.time_scale);
    let machine = Arc::new(Machine::new(
        spec.clone(),
        clock,
        super::mix(args.seed, 1 + j as u64),
        args.awake,
    ));
    let server = super::start_worker(machine, clock, SocketAddr::new(args.bind, args.port))?;
    println!("worker {:<12} {}", id.to_string(), server.url());
    Ok(server)
}

fn parse_machine(s: &str) -> Result<MachineId, UsageError> {
    let bad = || UsageError(format!("machine must look like asia/0, got {s:?}"));
    let (region, index) = s.trim().split_once('/').ok_or_else(bad)?;
    let index: u32 = index.parse().map_err(|_| bad())?;
    if region.is_empty() {
        return Err(bad());
    }
    Ok(MachineId::new(region, index))
}

fn wait_for_ctrl_c() -> anyhow::Result<()> {
    let (tx, rx) = std::sync::mpsc::channel();
    ctrlc::set_handler(move || {
        let _ = tx.send(());
    })
    .context("installing the Ctrl-C handler")?;
    let _ = rx.recv();
    println!("stopping");
    Ok(())
}
