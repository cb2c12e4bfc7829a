//! `--forwarders K`: K forwarding units over the same workers, and killing one mid-run.

mod emulator_support;
use cmdunit::emulator::{Emulator, EmulatorConfig};
use emulator_support::*;
use std::time::Duration;

#[test]
fn k_forwarding_units_share_the_same_workers() {
    let emu = start(topology("default"), 0.05, true, 3);
    let urls = emu.forwarder_urls();
    assert_eq!(urls.len(), 3);
    for url in &urls {
        assert_eq!(get(url, "/work/emea/0").status, 200);
    }
    let (_, emea) = emu.worker_urls()[2].clone();
    assert_eq!(get(&emea, "/stats").json()["served"], 3);
    // Each unit counts only what it forwarded.
    for url in &urls {
        assert_eq!(get(url, "/stats").json()["served"], 1);
    }
}

#[test]
fn with_a_port_the_units_and_then_the_workers_take_consecutive_ports() {
    // Ports below the ephemeral range; try a few bases in case one is taken.
    let base = 20_000 + (std::process::id() % 500) as u16 * 20;
    let emu = (0..10)
        .find_map(|i| {
            Emulator::start(EmulatorConfig {
                port: base + i * 10,
                forwarders: 2,
                awake: true,
                time_scale: 0.05,
                ..EmulatorConfig::default()
            })
            .ok()
        })
        .expect("a free port range");
    let ports: Vec<u16> = emu
        .forwarder_urls()
        .iter()
        .chain(emu.worker_urls().iter().map(|(_, u)| u))
        .map(|u| addr(u).port())
        .collect();
    assert_eq!(ports.len(), 7);
    for w in ports.windows(2) {
        assert_eq!(w[1], w[0] + 1, "{ports:?}");
    }
    assert_eq!(get(&emu.forwarder_urls()[1], "/work/us/0").status, 200);
}

#[test]
fn a_forwarding_unit_killed_mid_run_drops_its_connections_and_refuses_new_ones() {
    let _serial = timing_lock();
    let scale = 0.05;
    let emu = std::sync::Arc::new(start(topology("default"), scale, true, 3));
    let urls = emu.forwarder_urls();
    // 60 requests queued at unit 1 (its stage alone takes 60 x 17 ms ~ 1 model second); kill it
    // once it has served ten.
    let killer = {
        let emu = emu.clone();
        let url = urls[1].clone();
        std::thread::spawn(move || {
            while get(&url, "/stats").json()["served"].as_u64().unwrap() < 10 {
                std::thread::sleep(Duration::from_secs_f64(0.01 * scale));
            }
            emu.stop_forwarder(1);
        })
    };
    let fired = fire(vec![(addr(&urls[1]), "/work/emea/0".to_string()); 60]);
    killer.join().unwrap();
    let ok = fired
        .iter()
        .filter(|f| matches!(&f.answer, Ok(a) if a.status == 200))
        .count();
    let cut = fired.iter().filter(|f| f.answer.is_err()).count();
    assert_eq!(ok + cut, 60, "each was answered 200 or cut");
    // Ten were done when it was killed (a few of them may have been cut while being written).
    assert!(ok >= 5, "served before the kill: {ok}");
    assert!(cut > 0, "the kill cut queued requests");
    // Dead: new connections are refused. The other units still serve the same workers.
    let refused = std::net::TcpStream::connect(addr(&urls[1])).unwrap_err();
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
    assert_eq!(get(&urls[0], "/work/emea/0").status, 200);
    assert_eq!(get(&urls[2], "/work/asia/1").status, 200);
    // Out of range: nothing happens.
    emu.stop_forwarder(9);
}
