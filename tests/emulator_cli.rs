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
