//! `run_batch` end to end against the emulator on loopback: every job accounted for, the run
//! folder complete, sleeping machines woken by the batch itself, what a run learned reused by
//! the next, a stop that still accounts for every job.

mod run_support;

use cmdunit::run::run_batch;
use run_support::*;
use std::collections::HashSet;

#[test]
fn every_job_has_one_row_and_the_folder_is_complete() {
    let _g = serial();
    let emu = emulator(topology(|_| {}), 1, true);
    let dir = tmp_dir("complete");
    let cfg = config(60, "machine-rr", emu.forwarder_urls(), &dir);
    let s = run_batch(&cfg).unwrap();
    assert_eq!(s.n, 60);
    assert_eq!(s.ok + s.failed, 60);
    assert_eq!(s.ok, 60, "{s:?}");
    assert_eq!(s.per_machine.values().sum::<u64>(), 60);
    // machine-rr promises an even split.
    for (m, c) in &s.per_machine {
        assert_eq!(*c, 12, "{m}");
    }
    let (header, rows) = requests(&dir);
    assert_eq!(header.len(), 13);
    assert_eq!(rows.len(), 60);
    let ids: HashSet<&str> = column(&header, &rows, "id").into_iter().collect();
    assert_eq!(ids.len(), 60, "each job exactly once");
    for (start, end) in column(&header, &rows, "start_ms")
        .iter()
        .zip(column(&header, &rows, "end_ms"))
    {
        let (a, b): (f64, f64) = (start.parse().unwrap(), end.parse().unwrap());
        assert!(a >= 0.0 && b > a);
    }
    assert!(s.makespan_ms >= s.completion_ms.max - 1e-6);
    assert!(s.wall_ms >= s.makespan_ms);
    assert!(s.model_time);
    for f in ["summary.json", "run.json"] {
        assert!(dir.join(f).exists(), "{f} missing");
    }
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    assert_eq!(saved["ok"], 60);
}

#[test]
fn the_default_policy_learns_the_system_and_leaves_what_it_learned() {
    let _g = serial();
    let dir = tmp_dir("learned");
    let mut cfg = config_emulated(300, "auto", topology(|_| {}), 1, true, &dir);
    // The unit's ceiling is read from how evenly its answers are spaced: at 0.1 a pass is
    // 1.7 ms of wall time, and on a loaded machine a thread kept from a core for that long
    // blurs the spacing (7 failures in 20 runs beside two busy loops). At 0.5 it is 8.5 ms.
    cfg.time_scale = cmdunit::timescale::TimeScale::new(0.5).unwrap();
    let s = run_batch(&cfg).unwrap();
    assert_eq!(s.ok, 300, "{s:?}");
    assert_eq!(s.calibration_requests, 0, "no pass before the batch");
    assert_eq!(s.lower_bound_source, "model");
    let cal = cmdunit::calibrate::store::load(&dir.join("calibration.json")).unwrap();
    assert_eq!(cal.source, "learned");
    let lat = |id: &str| {
        cal.machines
            .iter()
            .find(|m| m.id.to_string() == id)
            .unwrap()
            .latency_ms
    };
    // asia is farthest, emea nearest (500 vs 290 ms round trip in the model).
    assert!(lat("asia/0") > lat("emea/0") + 100.0, "{cal:?}");
    // Through one unit at 17 ms a pass, 300 jobs queue at it: its ceiling is seen.
    let pass = cal.forwarders[0].service_ms;
    assert!(pass > 12.0 && pass < 26.0, "{pass}");
}

#[test]
fn sleeping_machines_are_woken_by_the_batch_and_then_used() {
    let _g = serial();
    // Asleep at start: every machine boots for 10 s (model) on its first request.
    let dir = tmp_dir("asleep");
    let cfg = config_emulated(150, "auto", topology(|_| {}), 1, false, &dir);
    let s = run_batch(&cfg).unwrap();
    assert_eq!(s.ok, 150, "{s:?}");
    // All five boot at once (10 s), then the batch runs: nothing is lost to the wake-up but
    // the boot itself.
    assert!(s.makespan_ms > 10_000.0, "{s:?}");
    assert!(
        s.makespan_ms < 10_000.0 + 2.0 * s.lower_bound_ms,
        "{} vs bound {}",
        s.makespan_ms,
        s.lower_bound_ms
    );
    assert!(
        s.per_machine.values().all(|&c| c > 0),
        "{:?}",
        s.per_machine
    );
}

#[test]
fn emulate_in_process_with_several_forwarding_units() {
    let _g = serial();
    let dir = tmp_dir("emulate");
    let cfg = config_emulated(90, "machine-rr", topology(|_| {}), 3, true, &dir);
    let s = run_batch(&cfg).unwrap();
    assert_eq!(s.ok, 90, "{s:?}");
    assert_eq!(s.forwarders.len(), 3);
    assert_eq!(s.per_forwarder.values().sum::<u64>(), 90);
    // The chooser (least in flight) uses every unit.
    assert!(
        s.per_forwarder.values().all(|&c| c >= 10),
        "{:?}",
        s.per_forwarder
    );
    assert_eq!(s.time_scale, Some(SCALE));
}

#[test]
fn interrupting_cancels_the_rest_and_still_accounts_for_every_job() {
    let _g = serial();
    let emu = emulator(topology(|_| {}), 1, true);
    let dir = tmp_dir("cancel");
    let mut cfg = config(400, "machine-rr", emu.forwarder_urls(), &dir);
    let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    cfg.cancel = Some(flag.clone());
    let url = emu.forwarder_urls()[0].clone();
    let stopper = std::thread::spawn(move || {
        // About a quarter of the way through (400 × 17 ms through one unit).
        wait_served(&url, 100);
        flag.store(true, std::sync::atomic::Ordering::SeqCst);
    });
    let s = run_batch(&cfg).unwrap();
    stopper.join().unwrap();
    assert_eq!(s.ok + s.failed, 400);
    assert!(s.cancelled > 0, "{s:?}");
    assert!(s.ok > 0, "what was in flight finished: {s:?}");
    assert_eq!(s.failures.get("cancelled"), Some(&s.cancelled));
    let ns = s
        .not_sent
        .clone()
        .expect("the jobs never sent, as one range");
    assert_eq!(ns.outcome, "cancelled");
    let (header, rows) = requests(&dir);
    // Every job sent has its row; those never sent are the range.
    assert_eq!(rows.len() as u64 + ns.count, 400);
    let ids: HashSet<u64> = column(&header, &rows, "id")
        .iter()
        .map(|i| i.parse().unwrap())
        .collect();
    assert!((ns.from_id..ns.from_id + ns.count).all(|i| !ids.contains(&i)));
}

#[test]
fn an_emulator_that_cannot_start_keeps_its_cause_in_the_error() {
    let dir = tmp_dir("emulator-error");
    let mut cfg = config_emulated(10, "auto", topology(|_| {}), 1, true, &dir);
    // A time scale the run accepts but the emulator refuses (below its smallest).
    cfg.time_scale = cmdunit::timescale::TimeScale::new(1e-6).unwrap();
    let err = run_batch(&cfg).unwrap_err();
    assert!(matches!(err, cmdunit::run::RunError::Emulator(_)), "{err}");
    let cause = std::error::Error::source(&err).expect("the emulator's own error as the source");
    assert!(!cause.to_string().is_empty());
}
