//! `cmdunit report` end to end: a handful of real runs against the emulator (small time scale),
//! laid out as scripts/sweep.sh lays them out, plus a quick limits measurement, turned into the
//! report. Checks what the report promises: the PDF has at most three pages and its text is
//! there (fonts embedded: with no font usvg silently drops every label), every chart file exists
//! and is non-empty, and the prose describes the system that was run.

use cmdunit::emulator::topology::Topology;
use cmdunit::limits::{self, LimitsPlan};
use cmdunit::run::{run_batch, EmulateConfig, RunConfig};
use std::path::{Path, PathBuf};
use std::process::Command;

struct TmpDir(PathBuf);

impl Drop for TmpDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run(root: &Path, rel: &str, n: usize, policy: &str, topo: &Topology, k: usize, scale: f64) {
    let mut cfg = RunConfig::new(n as u64, policy, Vec::new(), root.join(rel));
    cfg.emulate = Some(EmulateConfig {
        topology: topo.clone(),
        forwarders: k,
        awake: true,
    });
    cfg.time_scale = cmdunit::timescale::TimeScale::new(scale).unwrap();
    cfg.use_cache = false;
    cfg.charts = false;
    cfg.progress = false;
    cfg.verbose = false;
    let s = run_batch(&cfg).expect("run");
    assert_eq!(s.ok + s.failed, n as u64);
}

fn tool(name: &str, args: &[&str]) -> String {
    let out = Command::new(name)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{name} not runnable ({e}); install poppler-utils"));
    assert!(out.status.success(), "{name} failed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn report_has_at_most_three_pages_text_and_every_chart() {
    let dir = TmpDir(std::env::temp_dir().join(format!("cmdunit-report-{}", std::process::id())));
    let root = dir.0.join("results");
    let default = Topology::default();
    let slow = Topology::load(Path::new("topologies/slow-machine.toml")).expect("slow-machine");
    let scale = 0.05;
    for policy in ["auto", "random", "per-region-queues"] {
        for n in [1, 30] {
            for r in [1, 2] {
                run(
                    &root,
                    &format!("sweep/default/{policy}/n{n}-r{r}"),
                    n,
                    policy,
                    &default,
                    1,
                    scale,
                );
            }
            run(
                &root,
                &format!("sweep/slow-machine/{policy}/n{n}-r1"),
                n,
                policy,
                &slow,
                1,
                scale,
            );
        }
    }
    for k in [1, 2] {
        run(
            &root,
            &format!("scale/k{k}/auto/n30-r1"),
            30,
            "auto",
            &default,
            k,
            scale,
        );
    }
    for s in [0.1, 0.05] {
        run(
            &root,
            &format!("timescale/s{s}/per-region-queues/n30-r1"),
            30,
            "per-region-queues",
            &default,
            1,
            s,
        );
    }
    let plan = LimitsPlan {
        samples: 3,
        capacity_levels: vec![1, 16],
        forwarder_levels: vec![10],
        level_ms: 2000.0,
        worker_burst: 0,
        connection_burst: 0,
        scaling_k: vec![1, 2],
        cold_start: false,
    };
    let l = limits::measure_emulator(&default, 0.05, 1, &plan).expect("limits");
    limits::write(&l, &root.join("limits")).expect("limits written");

    let out = dir.0.join("report");
    let r = cmdunit::report::build(&root, &out).expect("report");
    assert!(r.pages >= 1 && r.pages <= 3, "{} pages", r.pages);
    for stem in &r.charts {
        for ext in ["png", "svg"] {
            let p = out.join("charts").join(format!("{stem}.{ext}"));
            let len = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
            assert!(len > 500, "{} is {len} bytes", p.display());
        }
    }
    for stem in [
        "makespan-default",
        "efficiency-default",
        "makespan-forwarders",
        "faults-p99",
        "limits-throughput",
    ] {
        assert!(
            r.charts.iter().any(|c| c == stem),
            "chart {stem} missing: {:?}",
            r.charts
        );
    }
    let pdf = out.join("report.pdf");
    let info = tool("pdfinfo", &[pdf.to_str().unwrap()]);
    let pages: usize = info
        .lines()
        .find_map(|l| l.strip_prefix("Pages:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("pdfinfo pages");
    assert_eq!(pages, r.pages);
    assert!(pages <= 3);
    let text = tool("pdftotext", &[pdf.to_str().unwrap(), "-"]);
    for needle in [
        "evaluation report",
        "System limits",
        "Policy comparison",
        "makespan (ms, model time)",
        "N (requests in the batch)",
    ] {
        assert!(text.contains(needle), "PDF text lacks {needle:?}");
    }
    let md = std::fs::read_to_string(out.join("REPORT.md")).unwrap();
    assert!(md.contains("](charts/makespan-default.png)"));
    // The prose describes what ran: the default topology's five machines behind one unit, the
    // scale-out runs at their own N, and no cold start claimed when none was probed.
    for needle in [
        "topology \"default\"",
        "5 machines (asia/0, asia/1, emea/0, us/0, us/1) behind 1 forwarding unit",
        "N = 30 takes",
        "with K = 2",
        "cold start not measured",
    ] {
        assert!(md.contains(needle), "REPORT.md lacks {needle:?}");
    }
}
