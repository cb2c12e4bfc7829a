//! `run_batch` end to end against the emulator on loopback: every job accounted for, the run
//! folder complete, calibration measured, saved and reused.

mod run_support;

use cmdunit::calibrate::probe::ProbeMode;
use cmdunit::run::{run_batch, EmulateConfig, RunConfig};
use run_support::*;
use std::collections::HashSet;

#[test]
fn every_job_has_one_row_and_the_folder_is_complete() {
    let _g = serial();
    let emu = emulator(topology(|_| {}), 1, true);
    let dir = tmp_dir("complete");
    let cfg = config(
        60,
        "machine-rr",
        emu.forwarder_urls(),
        topology(|_| {}),
        &dir,
    );
    let s = run_batch(&cfg).unwrap();
    assert_eq!(s.n, 60);
    assert_eq!(s.ok + s.failed, 60);
    assert_eq!(s.ok, 60, "{s:?}");
    assert_eq!(s.per_machine.values().sum::<u64>(), 60);
    // machine-rr promises an even split.
    for (m, c) in &s.per_machine {
        assert!((11..=13).contains(c), "{m}: {c}");
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
    assert!(s.lower_bound_ms > 0.0 && s.efficiency > 0.0);
    assert!(s.model_time);
    for f in ["summary.json", "calibration.json"] {
        assert!(dir.join(f).exists(), "{f} missing");
    }
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    assert_eq!(saved["ok"], 60);
}

#[test]
fn sleeping_machines_are_woken_measured_and_then_used() {
    let _g = serial();
    // Asleep at start: every machine boots for 10 s (model) on its first request.
    let emu = emulator(topology(|_| {}), 1, false);
    let dir = tmp_dir("asleep");
    let mut cfg = config(
        25,
        "machine-rr",
        emu.forwarder_urls(),
        topology(|_| {}),
        &dir,
    );
    cfg.calibration_mode = Some(ProbeMode::Quick);
    let s = run_batch(&cfg).unwrap();
    assert_eq!(s.ok, 25, "{s:?}");
    let cal: cmdunit::calibrate::Calibration =
        serde_json::from_str(&std::fs::read_to_string(dir.join("calibration.json")).unwrap())
            .unwrap();
    assert_eq!(cal.source, "quick");
    for m in &cal.machines {
        assert!(m.up);
        let wake = m
            .wake_ms
            .expect("a sleeping machine's first answer is slow");
        assert!(wake > 5_000.0, "{}: {wake}", m.id);
    }
    // The calibration's cost is reported apart from the batch, and it took the boots: each
    // machine booted exactly once, so no request of the batch met a sleeping machine.
    assert!(s.calibration_ms > 5_000.0);
    assert_eq!(s.calibration_requests, 1 + 5 + 5 * 2);
    for (id, url) in emu.worker_urls() {
        assert_eq!(stat(&url, "boots"), 1, "{id}");
    }
}

#[test]
fn a_full_calibration_finds_the_model_parameters_and_is_reused_while_fresh() {
    let _g = serial();
    // A larger time scale than the other tests: the bursts measure differences of ~20 ms.
    let emu = cmdunit::emulator::Emulator::start(cmdunit::emulator::EmulatorConfig {
        time_scale: 0.2,
        awake: true,
        ..Default::default()
    })
    .unwrap();
    let dir = tmp_dir("full");
    let file = dir.join("saved-calibration.json");
    let mut cfg = config(10, "fastest", emu.forwarder_urls(), topology(|_| {}), &dir);
    cfg.time_scale = 0.2;
    cfg.calibration_mode = Some(ProbeMode::Full);
    cfg.calibration_file = Some(file.clone());
    let first = run_batch(&cfg).unwrap();
    assert_eq!(first.calibration_source, "probed");
    let cal = cmdunit::calibrate::store::load(&file).unwrap();
    // Latency ordering survives the measurement noise of a small time scale: asia is farthest,
    // emea nearest (500 vs 290 ms round trip in the model).
    let lat = |id: &str| {
        cal.machines
            .iter()
            .find(|m| m.id.to_string() == id)
            .unwrap()
            .latency_ms
    };
    assert!(lat("asia/0") > lat("emea/0") + 100.0, "{cal:?}");
    assert!(
        cal.forwarders[0].service_ms > 0.0,
        "the unit's ceiling is found"
    );
    // Second run: the saved file is fresh and describes the same system.
    cfg.calibration_mode = None;
    cfg.out_dir = dir.join("second");
    let second = run_batch(&cfg).unwrap();
    assert_eq!(second.calibration_source, "reused");
    assert!(second.calibration_requests < first.calibration_requests);
    // --recalibrate measures again.
    cfg.recalibrate = true;
    cfg.calibration_mode = Some(ProbeMode::Quick);
    cfg.out_dir = dir.join("third");
    assert_eq!(run_batch(&cfg).unwrap().calibration_source, "quick");
}

#[test]
fn emulate_in_process_with_several_forwarding_units() {
    let _g = serial();
    let dir = tmp_dir("emulate");
    let mut cfg = RunConfig::new(90, "machine-rr", Vec::new(), dir.clone());
    cfg.emulate = Some(EmulateConfig {
        forwarders: 3,
        awake: true,
    });
    cfg.time_scale = SCALE;
    cfg.charts = false;
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
    let mut cfg = config(
        400,
        "machine-rr",
        emu.forwarder_urls(),
        topology(|_| {}),
        &dir,
    );
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
    let (header, rows) = requests(&dir);
    assert_eq!(rows.len(), 400);
    let cancelled = column(&header, &rows, "outcome")
        .iter()
        .filter(|o| **o == "cancelled")
        .count();
    assert_eq!(cancelled as u64, s.cancelled);
}
