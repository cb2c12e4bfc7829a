//! What `cmdunit limits` is asked to do: its command-line arguments, and the plan of what to
//! measure and how much (the full plan takes about a minute at time scale 0.1; `--quick` seconds).

use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct LimitsArgs {
    /// Forwarding unit to measure (worker URLs are unknown, so direct comparisons are skipped).
    #[arg(long, env = "CMDUNIT_FORWARDER")]
    pub forwarder: Option<String>,
    /// Measure the embedded emulator (started in-process on free loopback ports); the default
    /// when no --forwarder is given, and it wins over one (e.g. from CMDUNIT_FORWARDER).
    #[arg(long)]
    pub emulate: bool,
    /// Topology of the emulator (default: the measured 2021 system).
    #[arg(long)]
    pub topology: Option<PathBuf>,
    /// Time scale of the system measured (0.1 = ten times faster); figures stay in model
    /// milliseconds. The emulator's (default 0.1), or with --forwarder that of the system behind
    /// it (default 1: a real system; e.g. 0.1 for scripts/nginx-forwarder.sh --time-scale 0.1).
    #[arg(long)]
    pub time_scale: Option<f64>,
    /// Where limits.json, limits.md and the charts go.
    #[arg(long, default_value = "results/limits")]
    pub out: PathBuf,
    /// Fewer samples and levels (seconds instead of about a minute at scale 0.1).
    #[arg(long)]
    pub quick: bool,
    /// Seed of the emulator.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// What to measure and how much.
#[derive(Clone, Debug)]
pub struct LimitsPlan {
    /// Sequential no-load requests per machine (through the forwarding unit, and straight).
    pub samples: usize,
    /// Closed-loop concurrency levels straight to one machine.
    pub capacity_levels: Vec<usize>,
    /// Closed-loop concurrency levels through the forwarding unit, spread over all machines.
    pub forwarder_levels: Vec<usize>,
    /// Duration of each level, model ms.
    pub level_ms: f64,
    /// Simultaneous requests straight to one worker (where the 503s start); 0 skips.
    pub worker_burst: usize,
    /// Simultaneous connections to the forwarding unit (past its limit); 0 skips.
    pub connection_burst: usize,
    /// Forwarding-unit counts for the scaling measurement (emulator only); empty skips.
    pub scaling_k: Vec<usize>,
    /// Start asleep and measure the cold start (emulator only).
    pub cold_start: bool,
}

impl LimitsPlan {
    pub fn full() -> LimitsPlan {
        LimitsPlan {
            samples: 30,
            capacity_levels: vec![1, 2, 4, 8, 12, 16, 24, 32, 48, 64],
            forwarder_levels: vec![1, 2, 5, 10, 20, 40, 80, 160],
            level_ms: 8000.0,
            worker_burst: 2000,
            connection_burst: 1300,
            scaling_k: vec![1, 2, 3, 5, 8],
            cold_start: true,
        }
    }

    pub fn quick() -> LimitsPlan {
        LimitsPlan {
            samples: 10,
            capacity_levels: vec![1, 8, 32],
            forwarder_levels: vec![5, 60],
            level_ms: 4000.0,
            worker_burst: 0,
            connection_burst: 0,
            scaling_k: vec![1, 3],
            cold_start: true,
        }
    }
}
