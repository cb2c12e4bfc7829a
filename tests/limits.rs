//! `cmdunit limits` against the emulator at a small time scale: the measured figures agree with
//! the configured model within 10% (the emulator's figures are known, so this is what shows the
//! measurement method is right before it is pointed at a real system): one machine's capacity,
//! each region's no-load latency, work_time, and the forwarding unit's overhead; the forwarding
//! unit's ceiling where the model has one (a 17 ms stage) and none where it has none.

use cmdunit::emulator::topology::Topology;
use cmdunit::limits::markdown::{answers, cold_start, ColdStart};
use cmdunit::limits::{measure_emulator, LimitsPlan, ModelFigures};
use std::path::Path;

/// The two tests measure timing; running them at once would make each the other's load.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn within(measured: f64, expected: f64, tol: f64) -> bool {
    (measured - expected).abs() <= tol * expected
}

#[test]
fn limits_agree_with_the_configured_model() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let topology = Topology::default();
    let model = ModelFigures::of(&topology);
    let plan = LimitsPlan {
        samples: 12,
        capacity_levels: vec![1, 40],
        forwarder_levels: vec![],
        level_ms: 6000.0,
        worker_burst: 0,
        connection_burst: 0,
        scaling_k: vec![],
        cold_start: false,
    };
    // 0.25: the forwarding unit's 30 ms are 7.5 ms on the wall clock, above scheduling noise.
    let l = measure_emulator(&topology, 0.25, 7, &plan).expect("limits run");

    let cap = &l.machine_capacity;
    assert!(
        within(cap.ceiling_rps, model.machine_capacity_rps, 0.10),
        "capacity {} vs model {}",
        cap.ceiling_rps,
        model.machine_capacity_rps
    );
    for m in &l.machines {
        let expected = model.response_time_ms[&m.machine];
        assert!(
            within(m.response_time_ms.p50, expected, 0.10),
            "{}: response_time {} vs model {expected}",
            m.machine,
            m.response_time_ms.p50
        );
    }
    assert_eq!(l.regions.len(), 3);
    assert!(
        within(l.work_time.dist.mean, model.work_time_mean_ms, 0.10),
        "work_time {} vs {}",
        l.work_time.dist.mean,
        model.work_time_mean_ms
    );
    assert!(l.work_time.dist.min >= 18.0 && l.work_time.dist.max <= 21.0);
    assert_eq!(cold_start(&l), ColdStart::NotMeasured);
    assert!(
        within(
            l.forwarder_overhead.rtt_minus_response_ms,
            model.forwarder_overhead_ms,
            0.10
        ),
        "forwarding-unit overhead {} vs {}",
        l.forwarder_overhead.rtt_minus_response_ms,
        model.forwarder_overhead_ms
    );
}

#[test]
fn forwarding_unit_ceiling_and_its_scale_out_are_measured() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let topology = Topology::default();
    let model = ModelFigures::of(&topology);
    let plan = LimitsPlan {
        samples: 3,
        capacity_levels: vec![40],
        forwarder_levels: vec![60],
        level_ms: 4000.0,
        worker_burst: 0,
        connection_burst: 0,
        scaling_k: vec![1, 2],
        cold_start: true,
    };
    // 0.8: a forwarding unit's 17 ms stage is 13.6 ms on the wall clock, long against the
    // scheduling jitter of a loaded 2-core box. (At 0.4, beside four busy loops, the answers'
    // spacing once looked irregular and no ceiling was read, as the controller's own ceiling
    // detection blurs at small time scales.)
    let l = measure_emulator(&topology, 0.8, 3, &plan).expect("limits run");
    let b = &l.forwarder_bottleneck;
    // The unit's own ceiling (its queued answers one 17 ms pass apart), within 10% of 1000/17.
    assert!(
        within(b.ceiling_rps, 1000.0 / 17.0, 0.10),
        "ceiling {} vs {} (pass {:?} over {} answers)",
        b.ceiling_rps,
        1000.0 / 17.0,
        b.pass_ms,
        b.pass_samples
    );
    assert_eq!(
        b.stage_after,
        Some(false),
        "the default's stage sits before"
    );
    assert!(b.passed_rps > 0.0 && b.passed_rps <= 1.1 * b.ceiling_rps);
    let k1 = b.scaling[0].throughput_rps;
    let k2 = b.scaling[1].throughput_rps;
    assert!(
        within(k1, model.forwarder_ceiling_rps, 0.15),
        "K=1 {k1} vs {}",
        model.forwarder_ceiling_rps
    );
    assert!(k2 > 1.7 * k1, "K=2 {k2} vs K=1 {k1}");
    let cold = l.platform.cold_start_ms.expect("cold start measured");
    assert!(within(cold, 10_000.0, 0.15), "cold start {cold}");
    // The machines started asleep, so the text must report the cold start it measured.
    assert!(
        matches!(cold_start(&l), ColdStart::Observed { machines, of, .. } if machines == of),
        "{:?}",
        cold_start(&l)
    );
    assert!(b.bottleneck_from_n.is_some());
}

/// The same measurement against a unit without a stage: its throughput is what the machines gave
/// at that load, not a ceiling, and none is reported (nor an N from which it sets the pace).
#[test]
fn a_forwarding_unit_without_a_stage_is_reported_without_a_ceiling() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("topologies/no-ceiling.toml");
    let topology = Topology::load(&path).expect("no-ceiling topology");
    let plan = LimitsPlan {
        samples: 3,
        capacity_levels: vec![40],
        forwarder_levels: vec![10, 60],
        level_ms: 4000.0,
        worker_burst: 0,
        connection_burst: 0,
        scaling_k: vec![],
        cold_start: false,
    };
    let l = measure_emulator(&topology, 0.4, 5, &plan).expect("limits run");
    let b = &l.forwarder_bottleneck;
    assert!(
        !b.has_ceiling(),
        "ceiling {} (pass {:?} over {} answers, stage after {:?})",
        b.ceiling_rps,
        b.pass_ms,
        b.pass_samples,
        b.stage_after
    );
    assert_eq!(b.bottleneck_from_n, None);
    // 60 in flight over ~0.45 s trips: well over what a 17 ms stage would pass.
    assert!(
        b.passed_rps > 1.3 * 1000.0 / 17.0,
        "passed {}",
        b.passed_rps
    );
    let q6 = &answers(&l)[5].1;
    assert!(
        q6.contains("No forwarding-unit ceiling was seen") && !q6.contains("passes at most"),
        "{q6}"
    );
    let json = serde_json::to_value(&l).expect("limits.json");
    assert!(
        json["forwarder_bottleneck"]["ceiling_rps"].is_null(),
        "{json}"
    );
}
