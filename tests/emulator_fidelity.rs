//! The emulator behaves like the measured system (model time, at a small time scale). The ranges
//! are the 2021 measurements that `topologies/default.toml` cites; tolerances are ratio-based so
//! a loaded 2-core box passes.
//! Each test's scale keeps the wall-clock request rate within what a debug build serves on a
//! busy 2-core machine (a few hundred per second), so host lag stays small in model time.

mod emulator_support;
use cmdunit::emulator::topology::HandlingPosition;
use emulator_support::*;
use std::time::Duration;

/// Model milliseconds of a wall duration at `scale`.
fn model_ms(d: Duration, scale: f64) -> f64 {
    d.as_secs_f64() * 1000.0 / scale
}

#[test]
fn no_load_response_times_match_the_measured_ranges() {
    let _serial = timing_lock();
    // The model's own medians sit close to the top of some ranges (us/0: 392 of 400 ms), so this
    // test runs in real time: host lag must stay under 8 wall ms for most requests.
    let emu = start(topology("no-ceiling"), 1.0, true, 1);
    let fu = emu.forwarder_urls()[0].clone();
    // One client per machine, 20 sequential requests each (the machines are independent, and
    // waiting in the forwarding unit's stage is not part of response_time).
    let ranges = [
        ("asia/0", 495.0, 560.0),
        ("asia/1", 495.0, 560.0),
        ("emea/0", 290.0, 350.0),
        ("us/0", 330.0, 400.0),
        ("us/1", 330.0, 400.0),
    ];
    let threads: Vec<_> = ranges
        .iter()
        .map(|&(m, lo, hi)| {
            let fu = fu.clone();
            std::thread::spawn(move || {
                let mut rts = Vec::new();
                for _ in 0..20 {
                    let a = get(&fu, &format!("/work/{m}"));
                    assert_eq!(a.status, 200);
                    let j = a.json();
                    let wt = j["work_time"].as_u64().unwrap();
                    assert!((18..=21).contains(&wt), "{m}: work_time {wt}");
                    rts.push(j["response_time"].as_f64().unwrap());
                }
                (m, lo, hi, median(&mut rts))
            })
        })
        .collect();
    for t in threads {
        let (m, lo, hi, med) = t.join().unwrap();
        eprintln!("{m}: median response_time {med} ms");
        assert!(
            (lo..=hi).contains(&med),
            "{m}: median response_time {med} not in {lo}..{hi}"
        );
    }
}

#[test]
fn a_thousand_at_once_to_one_machine_queue_at_the_machine_and_all_succeed() {
    let _serial = timing_lock();
    let scale = 0.5;
    let emu = start(topology("default"), scale, true, 1);
    let fu = addr(&emu.forwarder_urls()[0]);
    // Stamped, so that all 1000 count as sent at one model instant, and at time scale 0.5: beside
    // four busy loops the host took up to a wall second to start 1000 client threads, which
    // unstamped at 0.2 put the median at 13.8 s and stamped at 0.2 still at 12.4 s.
    let fired = fire_stamped(&emu, vec![(fu, "/work/us/1".to_string()); 1000]);
    let mut done: Vec<f64> = fired
        .iter()
        .map(|f| {
            let a = f.answer.as_ref().expect("every request is answered");
            assert_eq!(a.status, 200, "{}", a.body);
            model_ms(f.elapsed, scale)
        })
        .collect();
    let med = median(&mut done) / 1000.0;
    let last = done.last().copied().unwrap_or(0.0) / 1000.0;
    eprintln!("1000 via the forwarding unit to us/1: median {med:.2} s, last {last:.2} s");
    // The model gives ~11 s and ~22 s; the 2021 stress logs a median of 10-15 s and a maximum of
    // 17-24 s. A loaded host can only make answers late, never early, so the upper limits leave
    // room for it (one run in eight beside four busy loops went past the earlier 12.0 s).
    assert!((10.5..=12.5).contains(&med), "median completion {med:.2} s");
    assert!((21.0..=24.0).contains(&last), "last completion {last:.2} s");
    // Waiting in the forwarding unit's stage is not part of response_time: the machine's queue
    // only holds the excess of 59/s over ~45/s, so response_time stays well under completion.
    let max_rt = fired
        .iter()
        .filter_map(|f| f.answer.as_ref().ok())
        .map(|a| a.json()["response_time"].as_f64().unwrap())
        .fold(0.0, f64::max)
        / 1000.0;
    eprintln!("  largest response_time {max_rt:.2} s");
    assert!(
        max_rt > 2.0 && max_rt < 0.5 * last,
        "largest response_time {max_rt:.2} s"
    );
}

#[test]
fn with_the_stage_after_the_call_a_thousand_at_once_queue_at_the_machine_in_response_time() {
    let _serial = timing_lock();
    let scale = 0.2;
    let t = topology("stage-after");
    assert_eq!(t.forwarder.handling_position, HandlingPosition::After);
    let emu = start(t, scale, true, 1);
    let fu = addr(&emu.forwarder_urls()[0]);
    // Stamped: here nothing paces the requests before the machine, so the host's lag in reading
    // 1000 of them (up to a few model seconds at this scale) would come off their response_time;
    // the stamps make them all sent at one model instant, as the model has it.
    let fired = fire_stamped(&emu, vec![(fu, "/work/us/1".to_string()); 1000]);
    let mut done: Vec<f64> = fired
        .iter()
        .map(|f| {
            let a = f.answer.as_ref().expect("every request is answered");
            assert_eq!(a.status, 200, "{}", a.body);
            model_ms(f.elapsed, scale)
        })
        .collect();
    // What the client sees is as with the stage before the call: the machine's ~22 ms each.
    let med = median(&mut done) / 1000.0;
    let last = done.last().copied().unwrap_or(0.0) / 1000.0;
    eprintln!("1000 via a stage-after unit to us/1: median {med:.2} s, last {last:.2} s");
    assert!((10.5..=12.0).contains(&med), "median completion {med:.2} s");
    assert!((21.0..=23.5).contains(&last), "last completion {last:.2} s");
    // All 1000 reach the machine at once, so response_time holds its whole queue: the 2021
    // stress logs' median of 10-15 s.
    let mut rts: Vec<f64> = fired
        .iter()
        .filter_map(|f| f.answer.as_ref().ok())
        .map(|a| a.json()["response_time"].as_f64().unwrap())
        .collect();
    let rt_med = median(&mut rts) / 1000.0;
    let rt_max = rts.last().copied().unwrap_or(0.0) / 1000.0;
    eprintln!("  response_time median {rt_med:.2} s, largest {rt_max:.2} s");
    assert!(
        (10.0..=15.0).contains(&rt_med),
        "median response_time {rt_med:.2} s"
    );
    assert!(
        rt_max <= last,
        "response_time {rt_max:.2} s past completion {last:.2} s"
    );
}

#[test]
fn with_the_stage_after_the_call_response_time_leaves_out_the_wait_in_the_stage() {
    let _serial = timing_lock();
    let scale = 0.2;
    // Five machines answer ~225/s together, the stage lets 59/s out: answers wait in the stage.
    let emu = start(topology("stage-after"), scale, true, 1);
    let fired = fire_stamped(&emu, spread(&emu.forwarder_urls(), 500));
    let t = makespan_s(&fired, scale);
    let rt_max = fired
        .iter()
        .filter_map(|f| f.answer.as_ref().ok())
        .map(|a| a.json()["response_time"].as_f64().unwrap())
        .fold(0.0, f64::max)
        / 1000.0;
    eprintln!("500 over five machines, stage after: {t:.2} s, largest response_time {rt_max:.2} s");
    // The stage still sets the pace the client sees ...
    assert!((8.0..=9.5).contains(&t), "stage after: {t:.2} s");
    // ... but response_time only covers the worker call: each machine's 100 requests (~2.2 s of
    // queue plus its latency), not the ~8 s some answers then spend in the stage. (A loaded host
    // makes answers late and response_time longer: beside four busy loops it reached 4.7 s, so
    // the limit is three quarters of the makespan, which counting the stage would reach.)
    assert!(
        rt_max > 1.5 && rt_max < 0.75 * t,
        "largest response_time {rt_max:.2} s"
    );
}

#[test]
fn two_thousand_at_once_straight_to_a_worker_hit_the_router_timeout() {
    let _serial = timing_lock();
    let scale = 0.2;
    let t = topology("default");
    let spec = t
        .machines
        .iter()
        .find(|m| m.id().to_string() == "emea/0")
        .unwrap()
        .clone();
    let emu = start(t, scale, true, 1);
    let (_, url) = emu
        .worker_urls()
        .into_iter()
        .find(|(id, _)| id.to_string() == "emea/0")
        .unwrap();
    let n = 2000;
    let fired = fire_stamped(&emu, vec![(addr(&url), "/work".to_string()); n]);
    let mut ok = 0;
    let mut unavailable = 0;
    let mut at_503 = Vec::new();
    for f in &fired {
        match f.answer.as_ref().map(|a| a.status) {
            Ok(200) => ok += 1,
            Ok(503) => {
                unavailable += 1;
                // Never before the 30 s mark: this holds under any load.
                let at = model_ms(f.elapsed, scale);
                assert!(at >= spec.router_timeout_ms, "503 after {at:.0} ms");
                at_503.push(at);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(ok + unavailable, n);
    // Answered at the 30 s mark (+ the way back), not when the work ends (up to ~44 s). The
    // median is checked, not each one: ~640 answers leave at one instant, and beside four busy
    // loops the client took 470 wall ms to read the last of them (4.7 s at time scale 0.1).
    let at_median = median(&mut at_503);
    assert!(
        at_median < spec.router_timeout_ms + 3000.0,
        "median 503 after {at_median:.0} ms"
    );
    // The model: all arrive together, one at a time, mean service s; those whose time at the
    // worker passes the router timeout get 503.
    let served = (spec.router_timeout_ms / spec.mean_service_ms()).floor() as usize;
    let expected = (n - served) as f64;
    let err = (unavailable as f64 - expected).abs() / expected;
    eprintln!("2000 straight to emea/0: {unavailable} x 503, model {expected}");
    assert!(
        err <= 0.05,
        "{unavailable} answered 503, model says {expected} ({:.1}% off)",
        err * 100.0
    );
}

/// 500 requests spread evenly over the five machines.
fn spread(forwarders: &[String], n: usize) -> Vec<(std::net::SocketAddr, String)> {
    let machines = ["asia/0", "asia/1", "emea/0", "us/0", "us/1"];
    (0..n)
        .map(|i| {
            let f = &forwarders[i % forwarders.len()];
            // Each forwarding unit also gets every machine equally.
            let m = machines[(i / forwarders.len()) % machines.len()];
            (addr(f), format!("/work/{m}"))
        })
        .collect()
}

fn makespan_s(fired: &[Fired], scale: f64) -> f64 {
    fired
        .iter()
        .map(|f| {
            let a = f.answer.as_ref().expect("answered");
            assert_eq!(a.status, 200, "{}", a.body);
            model_ms(f.elapsed, scale) / 1000.0
        })
        .fold(0.0, f64::max)
}

#[test]
fn five_hundred_spread_over_the_machines_hit_the_forwarding_units_ceiling() {
    let _serial = timing_lock();
    let scale = 0.2;
    let emu = start(topology("default"), scale, true, 1);
    let t = makespan_s(
        &fire_stamped(&emu, spread(&emu.forwarder_urls(), 500)),
        scale,
    );
    eprintln!("500 over five machines, one forwarding unit: {t:.2} s");
    assert!((8.0..=9.5).contains(&t), "one forwarding unit: {t:.2} s");
}

#[test]
fn five_forwarding_units_lift_the_ceiling() {
    let _serial = timing_lock();
    let scale = 0.5;
    let emu = start(topology("default"), scale, true, 5);
    let urls = emu.forwarder_urls();
    assert_eq!(urls.len(), 5);
    let t = makespan_s(&fire_stamped(&emu, spread(&urls, 500)), scale);
    eprintln!("500 over five machines, five forwarding units: {t:.2} s");
    // One unit takes at least 8 s (above); five take ~2.8 s on an idle host, where the machines
    // set the pace. The check is that the ceiling is lifted, at most half of one unit's time,
    // so that a loaded host cannot fail it (beside four busy loops one run took 3.49 s, past
    // the earlier limit of 3.2 s).
    assert!(t < 4.0, "five forwarding units: {t:.2} s");
}
