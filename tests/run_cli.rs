//! The `cmdunit N` command line, through the built binary: exit codes (0 ok, 1 run failed,
//! 2 usage), one-line messages, and the JSON printed with `--format json`.

mod run_support;

use run_support::*;
use std::process::{Command, Output};

fn cmdunit(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cmdunit"))
        .args(args)
        .env_remove("CMDUNIT_FORWARDER")
        // Never the user's cache: a folder of this test run's own.
        .env("XDG_CACHE_HOME", tmp_dir("cache"))
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).trim().to_string()
}

#[test]
fn bad_command_lines_exit_2_with_one_line() {
    let out = tmp_dir("cli-usage");
    let out = out.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["--emulate"], "missing N"),
        (&["0", "--emulate"], "at least 1"),
        (&["-5", "--emulate"], "at least 1"),
        (&["abc", "--emulate"], "whole number"),
        (&["12.5"], "whole number"),
        (&["10", "--policy", "nonesuch"], "unknown policy"),
        (
            &["10", "-p", "random", "--forwarder", "localhost:5000"],
            "bad forwarding unit URL",
        ),
        (
            &["10", "-p", "random", "--forwarder", "http://a:99999"],
            "bad forwarding unit URL",
        ),
        (
            &["10", "-p", "random", "--forwarder", "https://secure"],
            "bad forwarding unit URL",
        ),
        (
            &["10", "-p", "random", "--emulate", "--time-scale", "0"],
            "--time-scale",
        ),
    ];
    for (args, expect) in cases {
        let mut a = args.to_vec();
        a.extend(["--out", out, "-q"]);
        let o = cmdunit(&a);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(expect), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: one line, got {err}");
    }
}

#[test]
fn an_unreachable_forwarding_unit_exits_1_and_says_how_to_start_one() {
    // A port that was just free: nothing listens on it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let out = tmp_dir("cli-unreachable");
    let o = cmdunit(&[
        "5",
        "--forwarder",
        &url,
        "--out",
        out.to_str().unwrap(),
        "-q",
        "--policy",
        "random",
    ]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&url) && err.contains("cmdunit serve") && err.contains("--emulate"),
        "{err}"
    );
}

#[test]
fn json_output_has_the_promised_fields() {
    let _g = serial();
    let dir = tmp_dir("cli-json");
    let o = cmdunit(&[
        "40",
        "--emulate",
        "--awake",
        "--time-scale",
        "0.05",
        "--policy",
        "machine-rr",
        "--no-cache",
        "--format",
        "json",
        "--timeout",
        "600",
        "--out",
        dir.to_str().unwrap(),
        "-q",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["n"], 40);
    assert_eq!(v["policy"], "machine-rr");
    assert_eq!(
        v["ok"].as_u64().unwrap() + v["failed"].as_u64().unwrap(),
        40
    );
    for key in ["makespan_ms", "wall_ms", "lower_bound_ms", "efficiency"] {
        assert!(v[key].as_f64().unwrap() > 0.0, "{key}: {}", v[key]);
    }
    for q in ["mean", "p50", "p90", "p99", "max"] {
        assert!(
            v["completion_ms"][q].as_f64().unwrap() > 0.0,
            "completion_ms.{q}"
        );
    }
    let per_machine = v["per_machine"].as_object().unwrap();
    assert_eq!(per_machine.len(), 5);
    assert_eq!(per_machine["asia/0"], 8);
    assert_eq!(v["model_time"], true);
    assert_eq!(v["lower_bound_source"], "model");
    assert!(v["wall_ms"].as_f64().unwrap() >= v["makespan_ms"].as_f64().unwrap());
    let (_, rows) = requests(&dir);
    assert_eq!(rows.len(), 40);
    for f in [
        "summary.json",
        "run.json",
        "completion-cdf.png",
        "per-machine.svg",
        "over-time.png",
    ] {
        assert!(dir.join(f).exists(), "{f}");
    }
    // The text format is the default and says the times are model time.
    let o = cmdunit(&[
        "5",
        "--emulate",
        "--awake",
        "--time-scale",
        "0.05",
        "--policy",
        "fastest",
        "--no-charts",
        "--out",
        dir.join("text").to_str().unwrap(),
        "-q",
    ]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        text.contains("Makespan") && text.contains("model time"),
        "{text}"
    );
}

#[test]
fn ctrl_c_stops_sending_waits_for_what_is_in_flight_and_writes_everything() {
    let _g = serial();
    let dir = tmp_dir("cli-ctrl-c");
    let n = 3000;
    // 3000 requests through one unit at 17 ms each: ~51 s model, ~2.5 s wall at this scale.
    let child = Command::new(env!("CARGO_BIN_EXE_cmdunit"))
        .args([
            &n.to_string(),
            "--emulate",
            "--awake",
            "--time-scale",
            "0.05",
            "--policy",
            "machine-rr",
            "--timeout",
            "600",
            "--no-charts",
            "--no-cache",
            "--format",
            "json",
            "-q",
            "--out",
            dir.to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // requests.csv appears when the batch starts (after calibration).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !dir.join("requests.csv").exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the batch never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    // SAFETY: sending a signal to our own child process by its id.
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    assert_eq!(rc, 0);
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    // Cancelled jobs count as not succeeded: exit 1, with the summary printed anyway.
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("did not succeed"), "{err}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let (ok, cancelled) = (v["ok"].as_u64().unwrap(), v["cancelled"].as_u64().unwrap());
    assert!(ok > 0 && cancelled > 0, "{v}");
    assert_eq!(ok + v["failed"].as_u64().unwrap(), n as u64);
    // Every job sent has its row; those never sent are one range in the summary.
    let (_, rows) = requests(&dir);
    let never_sent = v["not_sent"]["count"].as_u64().unwrap();
    assert_eq!(rows.len() as u64 + never_sent, n as u64);
    assert!(dir.join("summary.json").exists());
}
