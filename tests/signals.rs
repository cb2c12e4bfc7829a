//! Stopping a run from outside, against the embedded emulator: SIGTERM is handled like Ctrl-C
//! (stop sending, let what is in flight finish, write everything, exit 1 since jobs were not
//! sent); SIGKILL loses at most the last second of answers and never leaves a torn row; a second
//! Ctrl-C quits at once, leaving whole rows that `cmdunit summarize` rebuilds a summary from.
//! Batches of billions run in bounded memory: jobs are not materialised, and those never sent
//! are one range in summary.json.

mod hostile_support;

use hostile_support::*;
use std::path::Path;
use std::time::{Duration, Instant};

/// Model time runs 20× faster than the wall clock: one unit passes a job every 17 ms model,
/// 0.85 ms wall, so a few thousand jobs take seconds.
const SCALE: &str = "0.05";

/// Each case keeps both cores busy with an emulated system: they run one at a time.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// `cmdunit N --emulate --awake` round robin over the machines, quiet, JSON on stdout.
fn start(n: u64, scale: &str, policy: &str, out: &Path, cache: &Path) -> Running {
    let n = n.to_string();
    spawn(
        &[
            &n,
            "--emulate",
            "--awake",
            "--time-scale",
            scale,
            "--policy",
            policy,
            "--timeout",
            "600",
            "--no-charts",
            "--format",
            "json",
            "-q",
            "--out",
            out.to_str().unwrap(),
        ],
        cache,
    )
}

/// Waits until requests.csv holds at least `rows` rows (the batch is under way and the
/// collector has written); returns when its file first appeared (close to the batch start).
fn wait_rows(run: &Running, out: &Path, rows: usize) -> Instant {
    let deadline = Instant::now() + Duration::from_secs(60);
    let csv = out.join("requests.csv");
    let mut appeared = None;
    loop {
        assert!(!run.exited(), "the run ended before it could be stopped");
        assert!(Instant::now() < deadline, "the batch never started");
        if csv.exists() {
            let at = *appeared.get_or_insert_with(Instant::now);
            let lines = std::fs::read(&csv)
                .map(|b| b.iter().filter(|&&c| c == b'\n').count())
                .unwrap_or(0);
            if lines > rows {
                return at;
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn sigterm_is_handled_like_ctrl_c() {
    let _g = serial();
    let root = tmp_dir("sigterm");
    let (out, cache) = (root.join("run"), root.join("cache"));
    let n = 4000;
    let run = start(n, SCALE, "machine-rr", &out, &cache);
    wait_rows(&run, &out, 1);
    run.signal(libc::SIGTERM);
    let stopped = Instant::now();
    let r = run.finish(Duration::from_secs(60));
    check_stderr(&r);
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(r.stderr.contains("did not succeed"), "{}", r.stderr);
    assert!(
        stopped.elapsed() < Duration::from_secs(10),
        "it stopped sending"
    );
    let v = summary(&r, &out);
    let (ok, _) = check_live_counts(&v, n);
    let cancelled = v["cancelled"].as_u64().unwrap();
    assert!(ok > 0 && cancelled > 0, "{v}");
    // Every job sent has its row; those never sent are one range.
    let ns = &v["not_sent"];
    assert_eq!(ns["outcome"], "cancelled", "{v}");
    assert!(v["efficiency"].as_f64().unwrap() <= 1.0, "{v}");
    let (_, rows) = rows(&out);
    assert_eq!(rows.len() as u64 + ns["count"].as_u64().unwrap(), n);
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(written, v, "summary.json is what was printed");
}

#[test]
fn sigkill_loses_at_most_the_last_second_and_leaves_whole_rows() {
    let _g = serial();
    let root = tmp_dir("sigkill");
    let (out, cache) = (root.join("run"), root.join("cache"));
    let n = 8000;
    let run = start(n, SCALE, "machine-rr", &out, &cache);
    let began = wait_rows(&run, &out, 1);
    // Past the first second: rows have been written at least once since the batch started.
    std::thread::sleep(Duration::from_millis(1500).saturating_sub(began.elapsed()));
    assert!(!run.exited(), "the run ended before it could be killed");
    run.signal(libc::SIGKILL);
    let killed = began.elapsed();
    let r = run.finish(Duration::from_secs(10));
    assert_eq!(r.signal, Some(libc::SIGKILL));
    let (header, rows) = rows(&out);
    assert!(!rows.is_empty());
    assert!((rows.len() as u64) < n, "the run had finished");
    // The last answer on file ended at most a second (plus scheduling slack on a loaded box)
    // before the kill. Times in the file are model ms from the batch start.
    let scale: f64 = SCALE.parse().unwrap();
    let last_s = column(&header, &rows, "end_ms")
        .iter()
        .map(|t| t.parse::<f64>().unwrap())
        .fold(0.0, f64::max)
        * scale
        / 1000.0;
    let lost_s = killed.as_secs_f64() - last_s;
    assert!(
        lost_s < 1.0 + 0.75,
        "the last {lost_s:.2} s of answers were lost (killed at {killed:?})"
    );
    // The summary is rebuilt from the rows; the jobs without one are counted, not forgotten.
    let s = run_summarize(&out);
    let (ok, _) = check_counts(&s, n);
    assert!(ok > 0);
    assert_eq!(
        s["failures"]["unrecorded"].as_u64().unwrap(),
        n - rows.len() as u64,
        "{s}"
    );
}

/// `cmdunit summarize DIR --format json`: exit 0, the summary printed and written.
fn run_summarize(dir: &Path) -> serde_json::Value {
    let r = run(
        &["summarize", dir.to_str().unwrap(), "--format", "json"],
        dir,
        Duration::from_secs(30),
    );
    check_stderr(&r);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let printed: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    assert_eq!(printed, written);
    printed
}

#[test]
fn a_second_ctrl_c_quits_at_once_leaving_whole_rows_that_summarize_rebuilds() {
    let _g = serial();
    let root = tmp_dir("double-sigint");
    let (out, cache) = (root.join("run"), root.join("cache"));
    let n = 4000;
    // A slower clock than the other cases (a trip takes ~100 ms wall): the second Ctrl-C must
    // land while the first is still waiting for what is in flight.
    let run = start(n, "0.2", "machine-rr", &out, &cache);
    wait_rows(&run, &out, 1);
    std::thread::sleep(Duration::from_millis(300));
    run.signal(libc::SIGINT);
    std::thread::sleep(Duration::from_millis(10));
    run.signal(libc::SIGINT);
    let second = Instant::now();
    let r = run.finish(Duration::from_secs(30));
    assert!(
        second.elapsed() < Duration::from_secs(2),
        "it did not quit at once"
    );
    assert_eq!(r.code, Some(130), "{}", r.stderr);
    assert!(r.stderr.trim().is_empty(), "quiet: {}", r.stderr);
    assert!(
        !out.join("summary.json").exists(),
        "it did not quit at once"
    );
    let (_, rows) = rows(&out);
    let s = run_summarize(&out);
    check_counts(&s, n);
    let unrecorded = s["failures"]["unrecorded"].as_u64().unwrap();
    assert_eq!(unrecorded, n - rows.len() as u64, "{s}");
    assert!(unrecorded > 0, "{s}");
}

/// Stops a batch of `n` after it has run for a while; checks the memory it took and that the
/// never-sent jobs are one range.
fn huge_batch_is_stopped_in_bounded_memory(n: u64, policy: &str) {
    let _g = serial();
    let root = tmp_dir("huge-n");
    let (out, cache) = (root.join("run"), root.join("cache"));
    let run = start(n, SCALE, policy, &out, &cache);
    wait_rows(&run, &out, 100);
    std::thread::sleep(Duration::from_millis(500));
    let rss_running = peak_rss_kib(run.pid());
    run.signal(libc::SIGTERM);
    let r = run.finish(Duration::from_secs(60));
    check_stderr(&r);
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    let v = summary(&r, &out);
    let (ok, _) = check_live_counts(&v, n);
    assert!(ok > 0, "{v}");
    let ns = &v["not_sent"];
    assert_eq!(ns["outcome"], "cancelled", "{v}");
    // Against the emulator the bound is exact: a stopped batch is no faster than it.
    assert!(v["efficiency"].as_f64().unwrap() <= 1.0, "{v}");
    let (_, rows) = rows(&out);
    assert_eq!(rows.len() as u64 + ns["count"].as_u64().unwrap(), n);
    assert_eq!(ns["from_id"].as_u64().unwrap(), rows.len() as u64, "{v}");
    // Nothing in memory grows with N: a few tens of MB for the emulator, threads and buffers.
    for rss in [rss_running, r.max_rss_kib] {
        assert!(rss < 150 * 1024, "{rss} KiB for N = {n} ({policy})");
    }
}

#[test]
fn a_batch_of_100000000_runs_in_bounded_memory_and_stops_cleanly() {
    huge_batch_is_stopped_in_bounded_memory(100_000_000, "machine-rr");
}

#[test]
fn a_batch_of_4294967295_runs_in_bounded_memory_and_stops_cleanly() {
    huge_batch_is_stopped_in_bounded_memory(u64::from(u32::MAX), "auto");
}
