//! The topology's faults (a machine down, a machine failing a fraction of requests, a machine
//! slowed by a factor), the same faults changed while the emulator runs, and seeded, repeatable
//! randomness.

mod emulator_support;
use cmdunit::emulator::topology::Fault;
use cmdunit::emulator::EmulatorError;
use cmdunit::endpoint::MachineId;
use emulator_support::*;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[test]
fn a_machine_that_is_down_refuses_connections_and_the_forwarding_unit_says_so() {
    let emu = start(topology("machine-down"), 0.05, true, 1);
    let fu = emu.forwarder_urls()[0].clone();
    let (id, url) = emu.worker_urls()[1].clone();
    assert_eq!(id.to_string(), "asia/1");
    let refused = std::net::TcpStream::connect(addr(&url)).unwrap_err();
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
    let a = get(&fu, "/work/asia/1");
    assert_eq!(a.status, 502, "{a:?}");
    assert!(a.json()["error"].as_str().unwrap().contains("asia/1"));
    // The rest of the system is fine.
    assert_eq!(get(&fu, "/work/asia/0").status, 200);
    let stats = get(&fu, "/stats").json();
    let asia1 = &stats["machines"][1];
    assert_eq!(asia1["reachable"], false);
    assert_eq!(asia1["forwarded_failed"], 1);
}

#[test]
fn an_error_rate_fails_about_that_fraction_with_503() {
    let mut t = topology("no-delay");
    t.machines[0].fault.error_rate = 0.5;
    let emu = start(t, 1.0, true, 1);
    let fu = emu.forwarder_urls()[0].clone();
    let n = 200;
    let failed = (0..n)
        .filter(|_| get(&fu, "/work/asia/0").status == 503)
        .count();
    // Binomial(200, 0.5): 100 +- 35 is more than 4.9 standard deviations.
    assert!((65..=135).contains(&failed), "{failed} of {n} failed");
    let stats = get(&emu.worker_urls()[0].1, "/stats").json();
    assert_eq!(stats["errors"], failed);
    assert_eq!(
        get(&fu, "/work/us/0").status,
        200,
        "other machines are fine"
    );
}

#[test]
fn a_slowed_machine_takes_its_factor_longer() {
    let emu = start(topology("slow-machine"), 0.1, true, 1);
    let fu = emu.forwarder_urls()[0].clone();
    for _ in 0..5 {
        let slow = get(&fu, "/work/us/0").json();
        let wt = slow["work_time"].as_u64().unwrap();
        assert!((5 * 18..=5 * 21).contains(&wt), "work_time {wt}");
        let normal = get(&fu, "/work/us/1").json();
        assert!((18..=21).contains(&normal["work_time"].as_u64().unwrap()));
    }
}

/// Twenty `/work` answers' work times (random machine, random draw) with a given seed.
fn work_times(seed: u64) -> Vec<u64> {
    let mut t = topology("no-delay");
    for m in &mut t.machines {
        m.work_time_ms = vec![18, 19, 20, 21];
    }
    let emu = cmdunit::emulator::Emulator::start(cmdunit::emulator::EmulatorConfig {
        topology: t,
        seed,
        awake: true,
        time_scale: 0.1,
        ..Default::default()
    })
    .unwrap();
    let fu = emu.forwarder_urls()[0].clone();
    (0..20)
        .map(|_| {
            let j = get(&fu, "/work").json();
            j["work_time"].as_u64().unwrap() * 100 + j["region"].as_str().unwrap().len() as u64
        })
        .collect()
}

#[test]
fn the_same_seed_repeats_the_same_draws() {
    let a = work_times(7);
    assert_eq!(a, work_times(7));
    assert_ne!(a, work_times(8));
}

fn machine(id: &str) -> MachineId {
    let (region, index) = id.split_once('/').unwrap();
    MachineId::new(region, index.parse().unwrap())
}

fn down() -> Fault {
    Fault {
        down: true,
        ..Fault::default()
    }
}

#[test]
fn a_machine_that_goes_down_mid_run_fails_until_it_comes_back() {
    let emu = start(topology("no-delay"), 1.0, true, 1);
    let fu = emu.forwarder_urls()[0].clone();
    let us0 = machine("us/0");
    let worker = emu.worker_urls()[3].1.clone();
    // A client keeps asking us/0 throughout; each answer is tagged with the phase it was sent
    // and answered in (0 up, 1 down, 2 up again; 9 while a fault is being changed, so that an
    // answer that straddles a change is never counted in either phase).
    const UP: u8 = 0;
    const DOWN: u8 = 1;
    const BACK: u8 = 2;
    const CHANGING: u8 = 9;
    let phase = Arc::new(AtomicU8::new(UP));
    let stop = Arc::new(AtomicBool::new(false));
    let client = std::thread::spawn({
        let (fu, phase, stop) = (fu.clone(), phase.clone(), stop.clone());
        move || {
            let mut seen = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                let before = phase.load(Ordering::SeqCst);
                let status = get(&fu, "/work/us/0").status;
                seen.push((before, status, phase.load(Ordering::SeqCst)));
                std::thread::sleep(Duration::from_millis(5));
            }
            seen
        }
    });
    std::thread::sleep(Duration::from_millis(300));
    phase.store(CHANGING, Ordering::SeqCst);
    emu.set_fault(&us0, down()).unwrap();
    phase.store(DOWN, Ordering::SeqCst);
    assert_eq!(
        TcpStream::connect(addr(&worker)).unwrap_err().kind(),
        std::io::ErrorKind::ConnectionRefused
    );
    assert_eq!(get(&fu, "/work/us/1").status, 200, "the others are fine");
    assert_eq!(get(&fu, "/stats").json()["machines"][3]["reachable"], false);
    assert!(emu.fault(&us0).unwrap().down);
    std::thread::sleep(Duration::from_millis(300));
    phase.store(CHANGING, Ordering::SeqCst);
    emu.set_fault(&us0, Fault::default()).unwrap();
    phase.store(BACK, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::SeqCst);
    let seen = client.join().unwrap();
    // Same port as before, serving again.
    assert_eq!(emu.worker_urls()[3].1, worker);
    assert_eq!(get(&worker, "/stats").json()["up"], true);
    for want in [UP, DOWN, BACK] {
        let within: Vec<u16> = seen
            .iter()
            .filter(|(a, _, b)| *a == want && *b == want)
            .map(|(_, s, _)| *s)
            .collect();
        assert!(within.len() >= 5, "phase {want}: {seen:?}");
        let expected = if want == DOWN { 502 } else { 200 };
        assert!(
            within.iter().all(|&s| s == expected),
            "phase {want}: {within:?}"
        );
    }
}

#[test]
fn a_machine_down_in_the_topology_can_be_brought_up() {
    let emu = start(topology("machine-down"), 0.05, true, 1);
    let fu = emu.forwarder_urls()[0].clone();
    assert_eq!(get(&fu, "/work/asia/1").status, 502);
    emu.set_fault(&machine("asia/1"), Fault::default()).unwrap();
    assert_eq!(get(&fu, "/work/asia/1").status, 200);
    emu.set_fault(&machine("asia/1"), down()).unwrap();
    assert_eq!(get(&fu, "/work/asia/1").status, 502);
}

#[test]
fn error_rate_and_slow_factor_change_at_run_time() {
    let emu = start(topology("default"), 0.1, true, 1);
    let fu = emu.forwarder_urls()[0].clone();
    let m = machine("us/0");
    let failing = Fault {
        error_rate: 1.0,
        ..Fault::default()
    };
    emu.set_fault(&m, failing).unwrap();
    assert!((0..5).all(|_| get(&fu, "/work/us/0").status == 503));
    emu.set_fault(&m, slow_by(5.0)).unwrap();
    for _ in 0..3 {
        let wt = get(&fu, "/work/us/0").json()["work_time"].as_u64().unwrap();
        assert!((5 * 18..=5 * 21).contains(&wt), "slowed work_time {wt}");
    }
    emu.set_fault(&m, Fault::default()).unwrap();
    let wt = get(&fu, "/work/us/0").json()["work_time"].as_u64().unwrap();
    assert!((18..=21).contains(&wt), "work_time {wt} once cleared");
}

fn slow_by(factor: f64) -> Fault {
    Fault {
        slow_factor: factor,
        ..Fault::default()
    }
}

#[test]
fn bad_runtime_faults_are_refused() {
    let emu = start(topology("no-delay"), 1.0, true, 1);
    let err = emu.set_fault(&machine("mars/0"), down()).unwrap_err();
    assert!(matches!(err, EmulatorError::UnknownMachine(_)), "{err}");
    for bad in [
        Fault {
            error_rate: 2.0,
            ..Fault::default()
        },
        Fault {
            error_rate: f64::NAN,
            ..Fault::default()
        },
        slow_by(0.0),
        slow_by(f64::INFINITY),
    ] {
        let err = emu.set_fault(&machine("us/0"), bad.clone()).unwrap_err();
        assert!(matches!(err, EmulatorError::Config(_)), "{bad:?}: {err}");
    }
    assert_eq!(emu.fault(&machine("us/0")), Some(Fault::default()));
}
