//! Shared helpers of the runtime's integration tests: an emulator on ephemeral loopback ports at a
//! small time scale, a batch config writing into a temporary folder, and requests.csv reading.
#![allow(dead_code)]

use cmdunit::emulator::topology::Topology;
use cmdunit::emulator::{Emulator, EmulatorConfig};
use cmdunit::run::{EmulateConfig, RunConfig};
use cmdunit::timescale::TimeScale;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

/// Model ms per wall ms in these tests: 10× faster than real time.
pub const SCALE: f64 = 0.1;

/// Timing-sensitive tests in one binary run one at a time (2 cores).
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// The default topology with `edit` applied.
pub fn topology(edit: impl FnOnce(&mut Topology)) -> Topology {
    let mut t = Topology::default();
    edit(&mut t);
    t.validate().unwrap();
    t
}

pub fn machine<'a>(
    t: &'a mut Topology,
    id: &str,
) -> &'a mut cmdunit::emulator::topology::MachineSpec {
    t.machines
        .iter_mut()
        .find(|m| m.id().to_string() == id)
        .unwrap()
}

/// One forwarding unit, machines awake, at time scale `scale`.
pub fn emulator_at(t: Topology, scale: f64) -> Emulator {
    Emulator::start(EmulatorConfig {
        topology: t,
        time_scale: scale,
        awake: true,
        seed: 7,
        ..EmulatorConfig::default()
    })
    .unwrap()
}

pub fn emulator(t: Topology, forwarders: usize, awake: bool) -> Emulator {
    Emulator::start(EmulatorConfig {
        topology: t,
        forwarders,
        time_scale: SCALE,
        awake,
        seed: 7,
        ..EmulatorConfig::default()
    })
    .unwrap()
}

/// A fresh temporary folder for a run.
pub fn tmp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "cmdunit-test-{}-{}-{name}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A batch against `urls` at the tests' time scale, writing into `dir`, with no cache (tests
/// never touch the user's cache).
pub fn config(n: u64, policy: &str, urls: Vec<String>, dir: &Path) -> RunConfig {
    let mut cfg = RunConfig::new(n, policy, urls, dir.to_path_buf());
    cfg.time_scale = TimeScale::new(SCALE).unwrap();
    cfg.use_cache = false;
    // Generous: on a loaded 2-core box a wall-clock stall must not turn into a timeout.
    cfg.timeout_ms = 600_000.0;
    cfg.charts = false;
    cfg.seed = 3;
    cfg
}

/// A batch of a policy that plans from a model, given the emulated system's true parameters as
/// its calibration file (so a fault in the emulator shows up only while the batch runs).
pub fn config_with_model(
    n: u64,
    policy: &str,
    urls: Vec<String>,
    model_of: &Topology,
    dir: &Path,
) -> RunConfig {
    let mut cfg = config(n, policy, urls.clone(), dir);
    cfg.calibration_file = Some(model_file(model_of, urls.len(), dir));
    cfg
}

/// The true parameters of `t` with `units` forwarding units, saved as a calibration file in
/// `dir` (a run adopts it for its own units' addresses).
pub fn model_file(t: &Topology, units: usize, dir: &Path) -> PathBuf {
    let urls: Vec<String> = (0..units).map(|i| format!("http://unit{i}")).collect();
    let mut model = cmdunit::run::system::true_model(t, &urls);
    model.created_unix_s = cmdunit::calibrate::unix_now();
    let file = dir.join("model.json");
    cmdunit::calibrate::store::save(&model, &file).unwrap();
    file
}

/// A batch against the embedded emulator (started by the run itself).
pub fn config_emulated(
    n: u64,
    policy: &str,
    t: Topology,
    forwarders: usize,
    awake: bool,
    dir: &Path,
) -> RunConfig {
    let mut cfg = config(n, policy, Vec::new(), dir);
    cfg.emulate = Some(EmulateConfig {
        topology: t,
        forwarders,
        awake,
    });
    cfg
}

/// requests.csv as (header, rows of fields).
pub fn requests(dir: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(dir.join("requests.csv")).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap().split(',').map(String::from).collect();
    let rows = lines
        .map(|l| l.split(',').map(String::from).collect())
        .collect();
    (header, rows)
}

/// The column `name` of `rows`.
pub fn column<'a>(header: &[String], rows: &'a [Vec<String>], name: &str) -> Vec<&'a str> {
    let i = header.iter().position(|h| h == name).unwrap();
    rows.iter().map(|r| r[i].as_str()).collect()
}

/// A number from a server's `GET /stats` JSON (`key` at the top level).
pub fn stat(url: &str, key: &str) -> u64 {
    let client = cmdunit::client::Client::new(&cmdunit::client::ClientConfig::default());
    let body = client.get(&format!("{url}/stats")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v[key].as_u64().unwrap_or_else(|| panic!("no {key} in {v}"))
}

/// Blocks until forwarding unit `url` has served at least `n` requests (progress, not time:
/// the tests must hold on a loaded box).
pub fn wait_served(url: &str, n: u64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while stat(url, "served") < n {
        assert!(std::time::Instant::now() < deadline, "no progress at {url}");
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}
