//! Cold start. A sleeping machine boots before its first request (which takes boot time +
//! normal), requests arriving meanwhile queue, and a machine idle past the idle timeout sleeps
//! again.

mod emulator_support;
use emulator_support::*;
use std::time::Duration;

fn worker_state(emu: &cmdunit::emulator::Emulator, machine: &str) -> serde_json::Value {
    let (_, url) = emu
        .worker_urls()
        .into_iter()
        .find(|(id, _)| id.to_string() == machine)
        .unwrap();
    get(&url, "/stats").json()
}

#[test]
fn first_request_to_a_sleeping_machine_waits_for_the_boot_and_idle_machines_sleep_again() {
    let _serial = timing_lock();
    let scale = 0.2;
    let mut t = topology("default");
    for m in &mut t.machines {
        m.idle_timeout_ms = 3_000.0;
        m.boot_ms = 4_000.0;
    }
    let spec = t.machines[2].clone(); // emea/0
    let (boot, lat) = (spec.boot_ms, spec.latency_ms);
    let normal_max = lat + spec.jitter_ms + 21.0 + spec.handling_ms;
    let emu = start(t, scale, false, 1);
    let fu = emu.forwarder_urls()[0].clone();
    assert_eq!(worker_state(&emu, "emea/0")["state"], "asleep");

    // First request: boot + normal. Meanwhile the machine reports that it is booting.
    let first = std::thread::spawn({
        let fu = fu.clone();
        move || get(&fu, "/work/emea/0").json()
    });
    std::thread::sleep(Duration::from_secs_f64(2.0 * scale)); // 2 model seconds in
    assert_eq!(worker_state(&emu, "emea/0")["state"], "booting");
    let rt = first.join().unwrap()["response_time"].as_f64().unwrap();
    assert!(
        rt >= boot + lat && rt <= (boot + normal_max) * 1.05,
        "first response_time {rt}"
    );
    // Awake now: a normal response time (well under the boot, whatever the host's lag).
    let rt = get(&fu, "/work/emea/0").json()["response_time"]
        .as_f64()
        .unwrap();
    assert!(rt >= lat && rt < boot / 2.0, "second response_time {rt}");
    assert_eq!(worker_state(&emu, "emea/0")["state"], "awake");

    // Idle past the timeout: asleep again, and the next request boots it again.
    std::thread::sleep(Duration::from_secs_f64(4.0 * scale));
    let s = worker_state(&emu, "emea/0");
    assert_eq!(s["state"], "asleep", "{s}");
    let rt = get(&fu, "/work/emea/0").json()["response_time"]
        .as_f64()
        .unwrap();
    assert!(rt >= boot + lat, "after sleeping again: response_time {rt}");
    assert_eq!(worker_state(&emu, "emea/0")["boots"], 2);
}

#[test]
fn requests_arriving_during_the_boot_queue_behind_it() {
    let _serial = timing_lock();
    let scale = 0.1;
    let mut t = topology("default");
    // Long, fixed service and no jitter, so the order of service shows plainly in the times.
    let m = &mut t.machines[3]; // us/0
    m.jitter_ms = 0.0;
    m.work_time_ms = vec![200];
    m.boot_ms = 2_000.0;
    let spec = m.clone();
    let service = 200.0 + spec.handling_ms;
    let emu = start(t, scale, false, 1);
    let (_, url) = emu.worker_urls()[3].clone();
    // Straight to the worker, three at once: all wait for the boot, then are served one by one.
    let fired = fire_stamped(&emu, vec![(addr(&url), "/work".to_string()); 3]);
    let mut rts: Vec<f64> = fired
        .iter()
        .map(|f| {
            f.answer.as_ref().unwrap().json()["response_time"]
                .as_f64()
                .unwrap()
        })
        .collect();
    rts.sort_by(|a, b| a.total_cmp(b));
    // The k-th answer leaves k services after the first. A reply is never sent before its
    // model time, but a worker thread kept off a core sends it late and its `response_time`
    // (measured, not modelled) grows: so the order of service is checked from below, where load
    // cannot reach, and lateness is allowed generously from above. (Checking the gaps between
    // answers failed beside four busy loops: a first answer 40 model ms late made the next gap
    // look 40 ms short.)
    let first = spec.boot_ms + spec.latency_ms + service;
    for (k, rt) in rts.iter().enumerate() {
        let due = first + k as f64 * service;
        assert!(
            *rt >= due - 1.0,
            "answer {k} before its turn at {due}: {rts:?}"
        );
    }
    assert!(rts[2] <= (first + 2.0 * service) * 1.25, "{rts:?}");
    assert_eq!(get(&url, "/stats").json()["boots"], 1);
}

#[test]
fn the_awake_flag_skips_the_boot() {
    let emu = start(topology("default"), 0.05, true, 1);
    let fu = &emu.forwarder_urls()[0];
    let rt = get(fu, "/work/us/1").json()["response_time"]
        .as_f64()
        .unwrap();
    assert!(rt < 2_000.0, "{rt}");
    assert_eq!(worker_state(&emu, "us/1")["boots"], 0);
}
