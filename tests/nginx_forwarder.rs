//! scripts/nginx-forwarder.sh: nginx (an independent forwarding unit, none of cmdunit's routing
//! code) in front of five `cmdunit serve --role worker` processes. The end-to-end benchmark
//! compares cmdunit against it, so these tests make sure that it routes every path the way the
//! original forwarding unit did, that cmdunit runs a batch through it, and that stopping it (or
//! its failing to start) leaves no process behind to skew later measurements.
//!
//! nginx is required, not optional: without it these tests fail and say how to install it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const SCALE: &str = "0.1";

/// The nginx binary: on PATH, or where Debian's nginx-light puts it (not on a non-root PATH).
fn nginx() -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|d| d.join("nginx"))
        .find(|p| p.is_file());
    on_path
        .or_else(|| Some(PathBuf::from("/usr/sbin/nginx")).filter(|p| p.is_file()))
        .unwrap_or_else(|| {
            panic!("nginx is not installed: apt-get install nginx-light (needed by these tests)")
        })
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A number no other process on this machine has on its command line: the workers get it as
/// their `--seed`, so any of them left running can be found afterwards.
fn marker() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    900_000_000 + u64::from(std::process::id() % 1000) * 100_000 + u64::from(nanos % 100_000)
}

/// A temporary folder, removed on drop (also when the test fails).
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let d = std::env::temp_dir().join(format!(
            "cmdunit-nginx-test-{tag}-{}-{}",
            std::process::id(),
            marker()
        ));
        std::fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }

    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The script running, stopped with SIGTERM (and waited for) on drop; whatever it started and
/// left running is then killed, so a failing test does not leave load on the machine.
struct Forwarder {
    child: Child,
    url: String,
    stderr_file: PathBuf,
    /// Its processes, recorded once it is up.
    started: Vec<Proc>,
}

impl Forwarder {
    fn start(port: u16, seed: u64, stderr_file: &Path) -> Result<Forwarder, String> {
        let mut child = Command::new("bash")
            .arg("scripts/nginx-forwarder.sh")
            .args([
                "--port",
                &port.to_string(),
                "--time-scale",
                SCALE,
                "--awake",
            ])
            .args(["--seed", &seed.to_string()])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("CMDUNIT", env!("CARGO_BIN_EXE_cmdunit"))
            .env("NGINX", nginx())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(stderr_file).unwrap())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(60)).unwrap_or_default();
        let url = line.trim().to_string();
        let stderr = || std::fs::read_to_string(stderr_file).unwrap_or_default();
        if !url.starts_with("http://") {
            let _ = stop(&mut child);
            return Err(format!("no URL printed; stderr:\n{}", stderr()));
        }
        let started = descendants(child.id());
        Ok(Forwarder {
            child,
            url,
            stderr_file: stderr_file.to_path_buf(),
            started,
        })
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        let _ = stop(&mut self.child);
        kill_all(&self.started);
    }
}

/// SIGKILL those of `procs` still running (the test's own cleanup after a failure).
fn kill_all(procs: &[Proc]) {
    for p in procs.iter().filter(|p| alive(p)) {
        let _ = Command::new("kill")
            .args(["-KILL", &p.pid.to_string()])
            .stderr(Stdio::null())
            .status();
    }
}

/// SIGTERM, then wait up to 30 s for the exit status (SIGKILL if it hangs).
fn stop(child: &mut Child) -> Option<std::process::ExitStatus> {
    if let Ok(Some(status)) = child.try_wait() {
        return Some(status);
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .stderr(Stdio::null())
        .status();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// A process as /proc shows it.
#[derive(Debug, Clone)]
struct Proc {
    pid: u32,
    ppid: u32,
    /// Start time (clock ticks since boot): a pid reused later has another one.
    start: u64,
    state: char,
    cmdline: String,
}

fn proc_info(pid: u32) -> Option<Proc> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: the fields follow the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default();
    Some(Proc {
        pid,
        state: f.first()?.chars().next()?,
        ppid: f.get(1)?.parse().ok()?,
        start: f.get(19)?.parse().ok()?,
        cmdline,
    })
}

fn all_procs() -> Vec<Proc> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(proc_info)
        .collect()
}

/// Every process under `root` (children, grandchildren, ...).
fn descendants(root: u32) -> Vec<Proc> {
    let procs = all_procs();
    let mut found: Vec<Proc> = Vec::new();
    let mut frontier = vec![root];
    while let Some(parent) = frontier.pop() {
        for p in procs.iter().filter(|p| p.ppid == parent) {
            frontier.push(p.pid);
            found.push(p.clone());
        }
    }
    found
}

/// Still running: same pid, same start time, not a zombie.
fn alive(p: &Proc) -> bool {
    proc_info(p.pid).is_some_and(|q| q.start == p.start && q.state != 'Z')
}

/// Wait up to 10 s for every process to be gone; return those still there.
fn left_over(procs: &[Proc]) -> Vec<Proc> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left: Vec<Proc> = procs.iter().filter(|p| alive(p)).cloned().collect();
        if left.is_empty() || Instant::now() > deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Processes whose command line carries this marker as the workers' seed.
fn with_seed(seed: u64) -> Vec<Proc> {
    let needle = format!("--seed {seed}");
    all_procs()
        .into_iter()
        .filter(|p| p.cmdline.contains(&needle) && p.state != 'Z')
        .collect()
}

/// One GET on a new connection: (status, body).
fn get(url: &str, path: &str) -> (u16, String) {
    let addr = url.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, body.to_string())
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body:?}"))
}

#[test]
fn cmdunit_runs_a_batch_through_nginx_and_stopping_leaves_nothing() {
    let dir = TempDir::new("batch");
    let seed = marker();
    let fwd = Forwarder::start(free_port(), seed, &dir.join("stderr.log"))
        .unwrap_or_else(|e| panic!("scripts/nginx-forwarder.sh did not start: {e}"));
    let url = fwd.url.clone();

    // What it started: five cmdunit workers and nginx (master and worker processes).
    let started = fwd.started.clone();
    let workers = started
        .iter()
        .filter(|p| p.cmdline.contains("serve --role worker"))
        .count();
    let nginx_procs: Vec<&Proc> = started
        .iter()
        .filter(|p| p.cmdline.starts_with("nginx"))
        .collect();
    assert_eq!(workers, 5, "processes under the script: {started:#?}");
    assert!(
        nginx_procs.len() >= 2,
        "nginx master and worker(s): {started:#?}"
    );
    let run_dir = nginx_procs
        .iter()
        .find_map(|p| {
            let after = p.cmdline.split_once(" -p ")?.1;
            after.split_whitespace().next().map(PathBuf::from)
        })
        .expect("nginx's command line names its -p folder");
    assert!(run_dir.is_dir());

    // Routing, as the original forwarding unit did it.
    let (status, body) = get(&url, "/");
    assert_eq!(status, 200, "{body}");
    assert_eq!(json(&body)["machines"].as_array().map(Vec::len), Some(5));
    let (status, body) = get(&url, "/work");
    assert_eq!(status, 200, "{body}");
    for region in ["asia", "emea", "us"] {
        let (status, body) = get(&url, &format!("/work/{region}"));
        assert_eq!(status, 200, "/work/{region}: {body}");
        assert_eq!(json(&body)["region"], region);
    }
    for (region, i) in [("asia", 1), ("emea", 0), ("us", 0), ("us", 1)] {
        let (status, body) = get(&url, &format!("/work/{region}/{i}"));
        assert_eq!(status, 200, "/work/{region}/{i}: {body}");
        let a = json(&body);
        assert_eq!(a["region"], region);
        assert_eq!(a["machine"], format!("Machine {i}"));
    }
    for path in [
        "/work/mars",
        "/work/us/7",
        "/work/us/1/x",
        "/work/",
        "/nope",
    ] {
        assert_eq!(get(&url, path).0, 404, "{path}");
    }

    // A batch through it, with cmdunit as built for this test.
    let out = dir.join("run");
    let run = Command::new(env!("CARGO_BIN_EXE_cmdunit"))
        .args([
            "50",
            "-f",
            &url,
            "--format",
            "json",
            "--no-charts",
            "--quiet",
        ])
        .args(["--time-scale", SCALE, "--out"])
        .arg(&out)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "cmdunit failed: {}\n{stdout}",
        String::from_utf8_lossy(&run.stderr)
    );
    let summary = json(&stdout);
    assert_eq!(summary["n"], 50);
    assert_eq!(summary["ok"], 50, "{summary:#}");
    assert_eq!(summary["failed"], 0, "{summary:#}");
    let per_machine = summary["per_machine"]
        .as_object()
        .unwrap_or_else(|| panic!("per_machine in {summary:#}"));
    for region in ["asia", "emea", "us"] {
        let answered: u64 = per_machine
            .iter()
            .filter(|(m, _)| m.starts_with(&format!("{region}/")))
            .filter_map(|(_, c)| c.as_u64())
            .sum();
        assert!(answered > 0, "no answer from {region}: {per_machine:?}");
    }

    // Stopping it stops everything it started and removes its folder.
    let mut fwd = fwd;
    let status = stop(&mut fwd.child);
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(143),
        "exit on SIGTERM; stderr:\n{}",
        std::fs::read_to_string(&fwd.stderr_file).unwrap_or_default()
    );
    let left = left_over(&started);
    assert!(left.is_empty(), "left running after SIGTERM: {left:#?}");
    assert!(with_seed(seed).is_empty(), "{:#?}", with_seed(seed));
    assert!(!run_dir.exists(), "{} not removed", run_dir.display());
}

#[test]
fn a_port_in_use_fails_the_start_and_stops_the_workers() {
    let dir = TempDir::new("busy");
    let seed = marker() + 1;
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    let err = match Forwarder::start(port, seed, &dir.join("stderr.log")) {
        Ok(f) => panic!("started on a port in use: {}", f.url),
        Err(e) => e,
    };
    assert!(err.contains("nginx exited"), "{err}");
    let left = left_over(&with_seed(seed));
    kill_all(&left);
    assert!(left.is_empty(), "workers left running: {left:#?}");
    drop(busy);
}

#[test]
fn without_nginx_it_says_how_to_install_it() {
    let run = Command::new("bash")
        .arg("scripts/nginx-forwarder.sh")
        .args(["--port", &free_port().to_string()])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("CMDUNIT", env!("CARGO_BIN_EXE_cmdunit"))
        .env("NGINX", "/nonexistent/nginx")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(1));
    assert!(run.stdout.is_empty(), "no URL on stdout");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.contains("apt-get install -y nginx-light"),
        "{stderr}"
    );
}

/// nginx passes thousands of requests per second: `cmdunit limits` through it must not report
/// what its probe's load got out of the machines as nginx's ceiling (it once said "passes at most
/// 89.7 requests/s … from N = 16 on it sets the pace").
#[test]
fn limits_through_nginx_report_no_forwarding_unit_ceiling_below_the_machines() {
    let dir = TempDir::new("limits");
    let seed = marker() + 2;
    let fwd = Forwarder::start(free_port(), seed, &dir.join("stderr.log"))
        .unwrap_or_else(|e| panic!("scripts/nginx-forwarder.sh did not start: {e}"));
    let out = dir.join("limits");
    let run = Command::new(env!("CARGO_BIN_EXE_cmdunit"))
        .args(["limits", "--forwarder", &fwd.url, "--quick"])
        .args(["--time-scale", SCALE, "--out"])
        .arg(&out)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "cmdunit limits failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let text = std::fs::read_to_string(out.join("limits.json")).unwrap();
    let l = json(&text);
    let b = &l["forwarder_bottleneck"];
    let combined = b["machines_combined_rps"].as_f64().unwrap_or(0.0);
    let passed = b["passed_rps"].as_f64().unwrap_or(0.0);
    assert!(
        combined > 0.0 && passed > 0.0,
        "nothing measured through nginx: {b:#}"
    );
    // Figures in model time: the workers run at the time scale given to limits.
    assert!(
        (combined - 5.0 * 1000.0 / 22.5).abs() < 0.3 * combined,
        "machines' combined capacity {combined}/s at time scale {SCALE}: {b:#}"
    );
    match b["ceiling_rps"].as_f64() {
        None => assert!(b["ceiling_rps"].is_null(), "{b:#}"),
        Some(c) => assert!(
            c >= combined,
            "a ceiling of {c}/s below the machines' {combined}/s"
        ),
    }
    assert!(b["bottleneck_from_n"].is_null(), "{b:#}");
    let md = std::fs::read_to_string(out.join("limits.md")).unwrap();
    assert!(!md.contains("passes at most"), "{md}");
}
