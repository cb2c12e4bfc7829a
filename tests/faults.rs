//! Faults that appear while a batch runs, against the emulator on loopback: the run completes,
//! every job has exactly one outcome, failures are classified, and the policies that adapt move
//! load away from the bad machine. Policies that plan from a model plan on the healthy system.

mod run_support;

use cmdunit::run::{run_batch, RunError};
use cmdunit::summary::Summary;
use run_support::*;
use std::io::{Read, Write};

const ADAPTIVE: [&str; 3] = ["auto", "least-outstanding", "p2c-ewma"];

/// Runs `n` jobs with each policy against an emulator whose machine `bad` has `fault`.
fn with_fault(
    n: u64,
    bad: &str,
    fault: impl Fn(&mut cmdunit::emulator::topology::Fault),
    policies: &[&str],
) -> Vec<(String, Summary)> {
    let _g = serial();
    policies
        .iter()
        .map(|p| {
            let emu = emulator(topology(|t| fault(&mut machine(t, bad).fault)), 1, true);
            let dir = tmp_dir(&format!("fault-{p}"));
            let cfg = if cmdunit::policy::by_name(p).unwrap().needs_model() {
                config_with_model(n, p, emu.forwarder_urls(), &topology(|_| {}), &dir)
            } else {
                config(n, p, emu.forwarder_urls(), &dir)
            };
            let s = run_batch(&cfg).unwrap();
            assert_eq!(s.ok + s.failed, n, "{p}: every job ends once: {s:?}");
            let (_, rows) = requests(&dir);
            assert_eq!(rows.len() as u64, n, "{p}");
            (p.to_string(), s)
        })
        .collect()
}

#[test]
fn a_machine_refusing_connections_is_routed_around() {
    let mut policies = vec!["machine-rr"];
    policies.extend(ADAPTIVE);
    let runs = with_fault(100, "asia/0", |f| f.down = true, &policies);
    for (p, s) in &runs {
        // The forwarding unit answers 502 when its worker refuses: retried elsewhere.
        assert!(s.ok >= 97, "{p}: {s:?}");
        assert_eq!(s.per_machine["asia/0"], 0, "{p}");
        if p == "machine-rr" {
            assert!(
                s.retries > 0,
                "{p}: its share of asia/0 was retried elsewhere"
            );
            assert!(s.ejections > 0, "{p}: asia/0 was ejected");
        }
        for class in s.failures.keys() {
            assert_eq!(class, "http_502", "{p}: {s:?}");
        }
    }
}

#[test]
fn a_machine_answering_503_is_routed_around() {
    let mut policies = vec!["machine-rr"];
    policies.extend(ADAPTIVE);
    let runs = with_fault(100, "emea/0", |f| f.error_rate = 1.0, &policies);
    for (p, s) in &runs {
        assert!(s.ok >= 97, "{p}: {s:?}");
        assert_eq!(s.per_machine["emea/0"], 0, "{p}");
        for class in s.failures.keys() {
            assert_eq!(class, "http_503", "{p}: {s:?}");
        }
    }
}

#[test]
fn adaptive_policies_move_load_away_from_a_machine_slowed_ten_times() {
    let mut policies = vec!["machine-rr"];
    policies.extend(ADAPTIVE);
    let runs = with_fault(200, "us/1", |f| f.slow_factor = 10.0, &policies);
    let rr = &runs[0].1;
    assert_eq!(rr.ok, 200);
    // Round robin cannot adapt: a fifth of the batch waits on the slow machine.
    assert_eq!(rr.per_machine["us/1"], 40);
    for (p, s) in &runs[1..] {
        assert_eq!(s.ok, 200, "{p}: {s:?}");
        // Well under round robin's 40 (a loaded host blurs how much slower the machine looks:
        // beside four busy loops p2c-ewma once sent 28, at the earlier limit of 0.7 x 40).
        assert!(
            (s.per_machine["us/1"] as f64) < 0.8 * 40.0,
            "{p} sent {} to the slow machine",
            s.per_machine["us/1"]
        );
        assert!(
            s.makespan_ms < 0.85 * rr.makespan_ms,
            "{p}: {} ms vs machine-rr {} ms",
            s.makespan_ms,
            rr.makespan_ms
        );
    }
}

#[test]
fn a_machine_that_does_not_wake_is_left_out_and_its_jobs_go_elsewhere() {
    let _g = serial();
    // Everyone asleep; asia/1 boots for 200 s (model), the others for 10 s.
    let emu = emulator(
        topology(|t| machine(t, "asia/1").boot_ms = 200_000.0),
        1,
        false,
    );
    let dir = tmp_dir("no-wake");
    let cfg = config(60, "auto", emu.forwarder_urls(), &dir);
    let started = std::time::Instant::now();
    let s = run_batch(&cfg).unwrap();
    assert_eq!(s.ok, 60, "{s:?}");
    assert_eq!(s.per_machine["asia/1"], 0);
    assert!(s.hedges > 0, "{s:?}");
    // It did not wait for asia/1's boot (200 s model = 20 s here).
    assert!(s.makespan_ms < 60_000.0, "{s:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(15));
}

/// A real HTTP server on loopback that answers every request with a broken body.
fn bad_json_forwarder() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let bodies = [
            "not json at all",
            r#"{"machine": "Machine 0"}"#,
            r#"{"machine": "Machine 0", "region": "asia", "response_time": "fast", "work_time": 1}"#,
            r#"{"machine": "Mach"#,
            r#"["machine", "region"]"#,
        ];
        for (k, stream) in listener.incoming().enumerate() {
            let Ok(mut s) = stream else { continue };
            let body = bodies[k % bodies.len()];
            std::thread::spawn(move || {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = write!(
                    s,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            });
        }
    });
    url
}

#[test]
fn malformed_json_is_a_classified_failure_never_a_panic() {
    let url = bad_json_forwarder();
    let dir = tmp_dir("bad-json");
    let mut cfg = config(25, "machine-rr", vec![url.clone()], &dir);
    cfg.time_scale = cmdunit::timescale::TimeScale::REAL;
    let s = run_batch(&cfg).unwrap();
    assert_eq!((s.ok, s.failed), (0, 25));
    assert_eq!(s.failures.len(), 1, "{s:?}");
    assert_eq!(s.failures["bad_response"], 25);
    assert_eq!(s.retries, 0, "a malformed answer is not worth retrying");
    let (header, rows) = requests(&dir);
    assert!(column(&header, &rows, "outcome")
        .iter()
        .all(|o| *o == "bad_response"));
    // A policy that needs a model calibrates first: no machine answers properly, so there is
    // nothing to plan over — an error, not a panic.
    let mut cfg = config(25, "least-outstanding", vec![url], &dir.join("probed"));
    cfg.time_scale = cmdunit::timescale::TimeScale::REAL;
    match run_batch(&cfg) {
        Err(RunError::Policy(e)) => assert!(e.to_string().contains("no machine"), "{e}"),
        other => panic!("expected a planning error, got {other:?}"),
    }
}

#[test]
fn a_forwarding_unit_killed_mid_run_has_its_share_finished_by_the_others() {
    let _g = serial();
    let n = 600;
    // A slower clock than the other tests (the run takes ~0.8 s wall): the kill must land early
    // in the run even when polling the unit's progress is slow on a loaded box.
    let scale = 0.2;
    let emu = std::sync::Arc::new(
        cmdunit::emulator::Emulator::start(cmdunit::emulator::EmulatorConfig {
            forwarders: 3,
            time_scale: scale,
            awake: true,
            ..Default::default()
        })
        .unwrap(),
    );
    let dir = tmp_dir("kill-unit");
    let mut cfg = config(n, "machine-rr", emu.forwarder_urls(), &dir);
    cfg.time_scale = cmdunit::timescale::TimeScale::new(scale).unwrap();
    let killer = {
        let emu = emu.clone();
        std::thread::spawn(move || {
            // Kill unit 1 once it has carried a tenth of its share.
            wait_served(&emu.forwarder_urls()[1], 20);
            emu.stop_forwarder(1);
        })
    };
    let s = run_batch(&cfg).unwrap();
    killer.join().unwrap();
    assert_eq!(s.ok + s.failed, n);
    assert_eq!(s.ok, n, "{s:?}");
    assert_eq!(s.forwarders_lost, [emu.forwarder_urls()[1].clone()]);
    assert!(s.moves > 0, "{s:?}");
    let per: Vec<u64> = emu
        .forwarder_urls()
        .iter()
        .map(|u| s.per_forwarder[u])
        .collect();
    let share = n as f64 / 3.0;
    assert!((per[1] as f64) < 0.75 * share, "the dead unit kept {per:?}");
    assert!(per[0] as f64 > share && per[2] as f64 > share, "{per:?}");
}

/// A real HTTP server on loopback that reads each request and never answers.
fn silent_forwarder() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 1024];
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 {
                        return;
                    }
                }
            });
        }
    });
    url
}

#[test]
fn a_silent_forwarding_unit_ends_in_classified_timeouts_within_the_retry_budget() {
    let url = silent_forwarder();
    let dir = tmp_dir("silent");
    let n = 12;
    let mut cfg = config(n, "machine-rr", vec![url], &dir);
    cfg.time_scale = cmdunit::timescale::TimeScale::REAL;
    cfg.timeout_ms = 150.0;
    let s = run_batch(&cfg).unwrap();
    assert_eq!((s.ok, s.failed), (0, n));
    assert_eq!(s.failures["timeout"], n, "{s:?}");
    // Budget: max(3, 20% of 12) = 3 retries; moves off ejected machines are bounded by the
    // ejection rule (never the last machine in).
    assert!(s.retries <= 3, "{s:?}");
    let (header, rows) = requests(&dir);
    let attempts: u64 = column(&header, &rows, "attempts")
        .iter()
        .map(|a| a.parse::<u64>().unwrap())
        .sum();
    assert!(attempts <= n + 3 + s.moves, "{attempts} attempts");
}
