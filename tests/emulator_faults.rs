//! The topology's faults (a machine down, a machine failing a fraction of requests, a machine
//! slowed by a factor) and seeded, repeatable randomness.

mod emulator_support;
use emulator_support::*;

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
