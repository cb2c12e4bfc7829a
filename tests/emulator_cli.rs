//! `cmdunit serve` as a process: the URLs it prints, the roles, --print-topology, usage errors.

mod emulator_support;
use emulator_support::*;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

fn cmdunit() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cmdunit"))
}

/// A `cmdunit serve` child, killed on drop.
struct Served {
    child: Child,
    /// The (label, url) lines it printed before "Ctrl-C to stop."
    urls: Vec<(String, String)>,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(args: &[&str]) -> Served {
    let mut child = cmdunit()
        .arg("serve")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = BufReader::new(child.stdout.take().unwrap());
    let mut urls = Vec::new();
    for line in out.lines() {
        let line = line.unwrap();
        if line.starts_with("Ctrl-C") {
            break;
        }
        if let Some(i) = line.find("http://") {
            urls.push((line[..i].trim().to_string(), line[i..].trim().to_string()));
        }
    }
    Served { child, urls }
}

#[test]
fn serve_prints_its_urls_and_serves() {
    let s = serve(&[
        "--port",
        "0",
        "--time-scale",
        "0.05",
        "--awake",
        "--forwarders",
        "2",
    ]);
    assert_eq!(s.urls.len(), 7, "{:?}", s.urls);
    assert!(s.urls[0].0.starts_with("forwarding unit"));
    assert!(s.urls[2].0.contains("asia/0"));
    let a = get(&s.urls[1].1, "/work/us/1");
    assert_eq!(a.status, 200);
    assert_eq!(a.json()["region"], "us");
}

#[test]
fn roles_run_alone_and_compose() {
    let w = serve(&[
        "--role",
        "worker",
        "--machine",
        "emea/0",
        "--port",
        "0",
        "--time-scale",
        "0.05",
    ]);
    assert_eq!(w.urls.len(), 1);
    let worker = w.urls[0].1.clone();
    assert_eq!(get(&worker, "/work").json()["region"], "emea");
    let workers = format!("emea/0={worker}");
    let f = serve(&[
        "--role",
        "forwarder",
        "--workers",
        &workers,
        "--port",
        "0",
        "--time-scale",
        "0.05",
    ]);
    let fu = f.urls[0].1.clone();
    let a = get(&fu, "/work/emea/0");
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.json()["machine"], "Machine 0");
    assert_eq!(get(&fu, "/work").status, 200);
    assert_eq!(
        get(&fu, "/work/us").status,
        404,
        "this unit only knows emea/0"
    );
    assert_eq!(get(&worker, "/stats").json()["served"], 3);
}

#[test]
fn print_topology_prints_the_default_file() {
    let out = cmdunit()
        .args(["serve", "--print-topology"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let t = cmdunit::emulator::topology::Topology::parse(&text).unwrap();
    assert_eq!(t, cmdunit::emulator::topology::Topology::default());
    assert!(
        text.contains("# "),
        "the comments that document it are kept"
    );
}

#[test]
fn bad_command_lines_exit_2() {
    for args in [
        vec!["serve", "--time-scale", "0"],
        vec!["serve", "--forwarders", "0"],
        vec!["serve", "--role", "forwarder"],
        vec!["serve", "--role", "forwarder", "--workers", "nonsense"],
        vec!["serve", "--role", "worker", "--machine", "mars/0"],
        vec!["serve", "--topology", "/nonexistent.toml"],
        vec!["serve", "--role", "sideways"],
    ] {
        let out = cmdunit().args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
}

/// A topology file in the temp directory, removed on drop.
struct TempTopology(std::path::PathBuf);

impl TempTopology {
    fn new(text: &str) -> TempTopology {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "cmdunit-topology-{}-{}.toml",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        let path = std::env::temp_dir().join(name);
        std::fs::write(&path, text).unwrap();
        TempTopology(path)
    }
}

impl Drop for TempTopology {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn absurd_topology_files_exit_2_with_one_line() {
    let default = cmdunit::emulator::topology::DEFAULT_TOPOLOGY;
    let with = |from: &str, to: &str| {
        assert!(default.contains(from), "{from}");
        default.replace(from, to)
    };
    let no_machines = "machines = []\n[forwarder]\nhandling_ms = 17.0\noverhead_ms = 13.0\n\
                       connection_limit = 1024\n"
        .to_string();
    for (text, says) in [
        (
            with("concurrency = 1", "concurrency = 4294967295"),
            "concurrency",
        ),
        (
            with("latency_ms = 290.0", "latency_ms = 1e300"),
            "latency_ms",
        ),
        (with("boot_ms = 10000.0", "boot_ms = -10000.0"), "boot_ms"),
        (
            with("latency_ms = 290.0", "latency_ms = \"NaN\""),
            "latency_ms",
        ),
        (with("latency_ms = 290.0", "latency_ms = nan"), "latency_ms"),
        (
            with(
                "connection_limit = 1024",
                "connection_limit = 4294967295000",
            ),
            "connection_limit",
        ),
        (
            with("[18, 19, 20, 21]", "[9223372036854775807]"),
            "work_time_ms",
        ),
        (
            with(
                "handling_position = \"before\"",
                "handling_position = \"sideways\"",
            ),
            "handling_position",
        ),
        (no_machines, "machines"),
        (
            with("region = \"us\"\nindex = 1", "region = \"us\"\nindex = 0"),
            "twice",
        ),
    ] {
        let file = TempTopology::new(&text);
        let out = cmdunit()
            .args(["serve", "--port", "0", "--topology"])
            .arg(&file.0)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{says}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
        assert!(
            stderr.starts_with("error: ") && stderr.contains(says),
            "{says}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn absurd_serve_flags_exit_2() {
    for args in [
        vec!["serve", "--time-scale", "1e-300"],
        vec!["serve", "--time-scale", "1e300"],
        vec!["serve", "--time-scale", "NaN"],
        vec!["serve", "--forwarders", "4294967295"],
    ] {
        let out = cmdunit().args(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}
