//! `cmdunit report`: charts, `REPORT.md` and `report.pdf` (at most three A4 pages) from the
//! files under `results/` only — the sweep's run folders and `limits/limits.json` — so every
//! number in the report comes from a file that `scripts/report.sh` regenerates.
//!
//! - [`data`]: reading run folders back and aggregating repetitions.
//! - [`charts`]: the charts and their one-line takeaways, computed from the data.
//! - [`doc`]: the report as blocks, and its Markdown.
//! - [`pdf`]: the blocks laid out on A4 pages (SVG) and turned into a PDF by krilla.

pub mod charts;
pub mod data;
pub mod doc;
pub mod numbers;
pub mod pdf;

use crate::limits::{self, Limits};
use anyhow::Context;
use charts::{best_at, Chart};
use data::{policy_order, Cell, Table};
use doc::Block;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// Folder holding sweep/, scale/, timescale/ and limits/ (what scripts/sweep.sh and
    /// `cmdunit limits` wrote).
    #[arg(long, default_value = "results")]
    pub from: PathBuf,
    /// Where REPORT.md, report.pdf and charts/ go (default: the --from folder).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// What a report run produced.
#[derive(Debug)]
pub struct ReportOutput {
    pub markdown: PathBuf,
    pub pdf: PathBuf,
    pub pages: usize,
    /// Chart stems under `<out>/charts/` (each has .png and .svg).
    pub charts: Vec<String>,
}

pub fn run(args: ReportArgs) -> anyhow::Result<()> {
    let out = args.out.clone().unwrap_or_else(|| args.from.clone());
    let r = build(&args.from, &out)?;
    println!(
        "report: {} ({} pages), {}, {} charts in {}",
        r.pdf.display(),
        r.pages,
        r.markdown.display(),
        r.charts.len(),
        out.join("charts").display()
    );
    Ok(())
}

/// Build the whole report from `from` into `out`.
pub fn build(from: &Path, out: &Path) -> anyhow::Result<ReportOutput> {
    let runs = data::load_runs(from)?;
    anyhow::ensure!(
        !runs.is_empty(),
        "no runs under {}: run scripts/sweep.sh first (or pass --from)",
        from.join("sweep").display()
    );
    let table = data::table(&runs);
    let charts_dir = out.join("charts");
    std::fs::create_dir_all(&charts_dir)
        .with_context(|| format!("cannot create {}", charts_dir.display()))?;
    let charts = charts::draw_all(&table, &charts_dir)?;
    let limits_path = from.join("limits").join("limits.json");
    let limits: Option<Limits> = if limits_path.is_file() {
        let text = std::fs::read_to_string(&limits_path)
            .with_context(|| format!("cannot read {}", limits_path.display()))?;
        Some(
            serde_json::from_str(&text)
                .with_context(|| format!("{} is not valid", limits_path.display()))?,
        )
    } else {
        None
    };
    let limit_charts = match &limits {
        Some(l) => limits::charts(l, &charts_dir)?,
        None => Vec::new(),
    };
    let blocks = blocks(&table, &runs, &charts, limits.as_ref(), &limit_charts);
    let markdown = out.join("REPORT.md");
    std::fs::write(&markdown, doc::markdown(&blocks, "charts"))
        .with_context(|| format!("cannot write {}", markdown.display()))?;
    let footer =
        "cmdunit evaluation report; regenerate with scripts/report.sh; every figure from results/";
    let pages = pdf::pages(&blocks, &charts_dir, footer)?;
    let bytes = pdf::pdf(&pages)?;
    let pdf_path = out.join("report.pdf");
    std::fs::write(&pdf_path, bytes)
        .with_context(|| format!("cannot write {}", pdf_path.display()))?;
    let mut stems: Vec<String> = charts.iter().map(|c| c.stem.clone()).collect();
    stems.extend(limit_charts);
    Ok(ReportOutput {
        markdown,
        pdf: pdf_path,
        pages: pages.len(),
        charts: stems,
    })
}

fn secs(ms: f64) -> String {
    if !ms.is_finite() {
        "n/a".into()
    } else if ms >= 10_000.0 {
        format!("{:.1} s", ms / 1000.0)
    } else {
        format!("{:.2} s", ms / 1000.0)
    }
}

fn take(charts: &[Chart], stems: &[&str]) -> Vec<Chart> {
    stems
        .iter()
        .filter_map(|s| charts.iter().find(|c| c.stem == *s).cloned())
        .collect()
}

fn sweep<'a>(t: &'a Table, topo: &str) -> Option<&'a BTreeMap<String, BTreeMap<u64, Cell>>> {
    t.get("sweep")?.get(topo)
}

/// The report's content.
fn blocks(
    t: &Table,
    runs: &[data::Run],
    charts: &[Chart],
    limits: Option<&Limits>,
    limit_charts: &[String],
) -> Vec<Block> {
    let mut b = Vec::new();
    let main: Vec<&data::Run> = runs
        .iter()
        .filter(|r| r.group == "sweep" && r.key == "default")
        .collect();
    let scale = main.iter().find_map(|r| r.summary.time_scale);
    let reps = main.iter().map(|r| r.rep).max().unwrap_or(0);
    let mut ns: Vec<u64> = main.iter().map(|r| r.n).collect();
    ns.sort();
    ns.dedup();
    let policies = policy_order(main.iter().map(|r| r.policy.clone()));

    b.push(Block::Title("cmdunit: evaluation report".into()));
    let system = match limits.and_then(|l| l.model.as_ref()) {
        Some(m) => {
            let rt: Vec<f64> = m.response_time_ms.values().copied().collect();
            format!(
                " The system is the 2021 forwarding unit with five cloud workers (asia 0–1, emea 0, \
                 us 0–1), reproduced by cmdunit's emulator from public measurements (topology \
                 \"{}\"): no-load response times {:.0}–{:.0} ms, one request at a time per machine \
                 (≈ {:.0}/s each), and a forwarding unit that passes ≈ {:.0} requests/s and adds \
                 ≈ {:.0} ms.",
                m.topology,
                rt.iter().copied().fold(f64::INFINITY, f64::min),
                rt.iter().copied().fold(0.0, f64::max),
                m.machine_capacity_rps,
                m.forwarder_ceiling_rps,
                m.forwarder_overhead_ms
            )
        }
        None => {
            " The system is the 2021 forwarding unit with five cloud workers (asia 0–1, emea 0, \
                  us 0–1), reproduced by cmdunit's emulator."
                .to_string()
        }
    };
    b.push(Block::Para(format!(
        "cmdunit is a command unit: told N, it calibrates the system (each machine's latency and \
         service time, the forwarding unit's overhead and ceiling), plans how to spread the N \
         requests over the forwarding unit's /work endpoints with one of {} policies (auto \
         picks one from N and the calibration), runs the batch on blocking per-thread HTTP agents \
         and reports every request.{system}",
        crate::policy::ALL.len()
    )));
    b.push(Block::Para(format!(
        "Method: every policy ({}) × N ∈ {{{}}} × {} repetition(s) against the emulator at time \
         scale {} (all times are model milliseconds: wall time / scale), on the default system \
         and on one whose forwarding unit has no ceiling; both again with one machine slowed ×5 \
         and with one down (topologies/slow-machine*.toml, machine-down*.toml; 1 repetition); {} \
         over K ∈ {{{}}} forwarding units; the system's limits measured by `cmdunit limits`. Lower bound: the later of the machines' and the forwarding units' \
         bounds for N jobs at time 0 (efficiency = bound / makespan). Bands and whiskers: min–max \
         over repetitions.",
        policies.len(),
        ns.iter().map(u64::to_string).collect::<Vec<_>>().join(", "),
        reps,
        scale.map_or("n/a".into(), |s| s.to_string()),
        scale_ns(t),
        scale_ks(t)
    )));
    b.push(Block::Para(headline(t, limits)));
    b.push(Block::Charts {
        charts: take(charts, &["makespan-default", "makespan-no-ceiling"]),
        print: true,
    });
    b.push(Block::Heading("Which policy for which N".into()));
    b.push(Block::Table(policy_table(t)));
    if let Some(line) = recommendation(t) {
        b.push(Block::Small(line));
    }
    if let Some(ts) = timescale_line(t) {
        b.push(Block::Small(ts));
    }

    b.push(Block::PageBreak);
    b.push(Block::Heading("System limits (cmdunit limits)".into()));
    match limits {
        Some(l) => {
            b.push(Block::Small(format!(
                "Measured on {} at time scale {}: {} sequential no-load requests per machine \
                 (through the forwarding unit and straight to the worker), closed-loop \
                 concurrency ramps (throughput against requests in flight), simultaneous bursts \
                 (503s, refused connections) and the throughput of K forwarding units.",
                l.system, l.time_scale, l.samples_per_machine
            )));
            b.push(Block::Answers(limits::markdown::answers(l)));
            let lc = limit_chart_list(l, limit_charts);
            b.push(Block::Charts {
                charts: take(
                    &lc,
                    &["limits-throughput", "limits-bounds", "limits-scaling", "limits-latency"],
                ),
                print: true,
            });
            b.push(Block::Charts {
                charts: take(&lc, &["limits-worktime"]),
                print: false,
            });
        }
        None => b.push(Block::Para(
            "No limits measurement found (results/limits/limits.json): run `cmdunit limits --emulate`."
                .into(),
        )),
    }

    b.push(Block::PageBreak);
    b.push(Block::Heading("Policy comparison".into()));
    b.push(Block::Charts {
        charts: take(
            charts,
            &[
                "makespan-forwarders",
                "efficiency-default",
                "faults-no-ceiling-p99",
                "faults-p99",
                "per-machine-1000",
                "cdf-1000",
            ],
        ),
        print: true,
    });
    b.push(Block::Charts {
        charts: take(
            charts,
            &[
                "completion-mean-default",
                "completion-p99-default",
                "faults-mean",
                "faults-no-ceiling-mean",
            ],
        ),
        print: false,
    });
    for (base, suffix) in [("default", ""), ("no-ceiling", "-no-ceiling")] {
        if let Some(rows) = fault_table(t, base, suffix) {
            b.push(Block::MarkdownOnly(vec![
                Block::Heading(format!("Faults, full figures ({base} system)")),
                Block::Table(rows),
            ]));
        }
    }
    b
}

fn limit_chart_list(l: &Limits, stems: &[String]) -> Vec<Chart> {
    let c = &l.machine_capacity;
    let bn = &l.forwarder_bottleneck;
    let fastest = l
        .regions
        .iter()
        .min_by(|a, b| a.response_time_ms.p50.total_cmp(&b.response_time_ms.p50));
    let slowest = l
        .regions
        .iter()
        .max_by(|a, b| a.response_time_ms.p50.total_cmp(&b.response_time_ms.p50));
    stems
        .iter()
        .map(|s| {
            let (title, takeaway) = match s.as_str() {
                "limits-throughput" => (
                    "Throughput against requests in flight",
                    format!(
                        "One machine saturates at {:.0}/s from {} in flight; all five through one \
                         forwarding unit reach only {:.0}/s of their {:.0}/s.",
                        c.ceiling_rps, c.knee_concurrency, bn.ceiling_rps, bn.machines_combined_rps
                    ),
                ),
                "limits-bounds" => (
                    "Machines' bound and the forwarding unit's bound against N",
                    match bn.bottleneck_from_n {
                        Some(n) => format!(
                            "From N = {n} the forwarding unit's bound is over 10% above the \
                             machines': it sets the pace of almost every batch."
                        ),
                        None => "The machines set the pace at every N measured.".into(),
                    },
                ),
                "limits-scaling" => (
                    "Throughput over K forwarding units",
                    match (bn.scaling.first(), bn.scaling.last()) {
                        (Some(a), Some(z)) => format!(
                            "{:.0}/s with K = {} to {:.0}/s with K = {}: scale-out works until \
                             the machines ({:.0}/s) are the limit.",
                            a.throughput_rps,
                            a.forwarders,
                            z.throughput_rps,
                            z.forwarders,
                            bn.machines_combined_rps
                        ),
                        _ => String::new(),
                    },
                ),
                "limits-latency" => (
                    "No-load response_time by region",
                    match (fastest, slowest) {
                        (Some(f), Some(s)) => format!(
                            "{} answers fastest ({:.0} ms), {} slowest ({:.0} ms): the network, \
                             not the 18–21 ms of work, dominates.",
                            f.region, f.response_time_ms.p50, s.region, s.response_time_ms.p50
                        ),
                        _ => String::new(),
                    },
                ),
                _ => (
                    "work_time of every no-load answer",
                    format!(
                        "work_time is {:.0}–{:.0} ms, mean {:.1} ms.",
                        l.work_time.dist.min, l.work_time.dist.max, l.work_time.dist.mean
                    ),
                ),
            };
            Chart {
                stem: s.clone(),
                title: title.into(),
                takeaway,
            }
        })
        .collect()
}

/// The first page's headline, from the files.
fn scale_ks(t: &Table) -> String {
    let mut ks: Vec<u64> = t
        .get("scale")
        .map(|g| {
            g.keys()
                .filter_map(|k| k.strip_prefix('k')?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    ks.sort();
    ks.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")
}

fn scale_ns(t: &Table) -> String {
    let mut ns: Vec<u64> = t
        .get("scale")
        .map(|g| {
            g.values()
                .flat_map(|ps| ps.values().flat_map(|c| c.keys().copied()))
                .collect()
        })
        .unwrap_or_default();
    ns.sort();
    ns.dedup();
    format!(
        "N = {}",
        ns.iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(" and ")
    )
}

fn headline(t: &Table, limits: Option<&Limits>) -> String {
    let mut parts = Vec::new();
    if let Some(ps) = sweep(t, "default") {
        let n = if ps.values().any(|c| c.contains_key(&1000)) {
            1000
        } else {
            ps.values()
                .flat_map(|c| c.keys())
                .copied()
                .max()
                .unwrap_or(0)
        };
        if let Some((best, ms)) = best_at(ps, n, |c| c.makespan_ms.mean) {
            let cell = &ps[&best][&n];
            let mut s = format!(
                "Headline: through the one forwarding unit, N = {n} takes {} at best ({best}; \
                 lower bound {}, efficiency {:.2})",
                secs(ms),
                secs(cell.lower_bound_ms.mean),
                cell.efficiency.mean
            );
            if let Some(r) = ps.get("random").and_then(|c| c.get(&n)) {
                s.push_str(&format!(
                    " against {} for the forwarding unit's own random choice",
                    secs(r.makespan_ms.mean)
                ));
            }
            let pace = n as f64 / (ms / 1000.0);
            parts.push(match limits {
                Some(l) => format!(
                    "{s}: {pace:.0} requests/s, against a measured forwarding-unit ceiling of \
                     {:.0}/s — whatever the policy, the forwarding unit sets the pace.",
                    l.forwarder_bottleneck.ceiling_rps
                ),
                None => format!("{s}: {pace:.0} requests/s."),
            });
        }
    }
    if let Some(scale) = t.get("scale") {
        let at = |k: &str| {
            scale
                .get(k)
                .and_then(|ps| ps.values().next())
                .and_then(|c| c.get(&1000))
                .map(|c| c.makespan_ms.mean)
        };
        let best = scale
            .iter()
            .filter_map(|(k, ps)| {
                ps.values()
                    .next()
                    .and_then(|c| c.get(&1000))
                    .map(|c| (k.clone(), c.makespan_ms.mean))
            })
            .min_by(|a, b| a.1.total_cmp(&b.1));
        if let (Some(k1), Some((kb, mb))) = (at("k1"), best) {
            parts.push(format!(
                "The fix is measured: K forwarding units over the same workers bring N = 1000 \
                 from {} (K = 1) to {} ({}), {:.1}× faster.",
                secs(k1),
                secs(mb),
                kb.replace('k', "K = "),
                k1 / mb
            ));
        }
    }
    if let Some(ps) = sweep(t, "no-ceiling") {
        let n = 1000;
        let vals: Vec<(String, f64)> = ps
            .iter()
            .filter_map(|(p, c)| c.get(&n).map(|c| (p.clone(), c.makespan_ms.mean)))
            .collect();
        if let (Some(b), Some(w)) = (
            vals.iter().min_by(|a, b| a.1.total_cmp(&b.1)),
            vals.iter().max_by(|a, b| a.1.total_cmp(&b.1)),
        ) {
            parts.push(format!(
                "Without the forwarding unit's ceiling the machines are the limit and the \
                 policies differ {:.1}×: {} {} against {} {} at N = {n}.",
                w.1 / b.1,
                b.0,
                secs(b.1),
                w.0,
                secs(w.1)
            ));
        }
    }
    parts.join(" ")
}

/// Rows: N; best policy (default system) with its makespan and efficiency; what auto ran; best
/// without the ceiling.
fn policy_table(t: &Table) -> Vec<Vec<String>> {
    let mut rows = vec![vec![
        "N".to_string(),
        "best (measured)".into(),
        "makespan".into(),
        "efficiency".into(),
        "auto ran".into(),
        "auto makespan".into(),
        "best (no ceiling)".into(),
        "makespan".into(),
    ]];
    let Some(ps) = sweep(t, "default") else {
        return rows;
    };
    let mut ns: Vec<u64> = ps.values().flat_map(|c| c.keys().copied()).collect();
    ns.sort();
    ns.dedup();
    for n in ns {
        let best = best_at(ps, n, |c| c.makespan_ms.mean);
        let auto = ps.get("auto").and_then(|c| c.get(&n));
        let nc = sweep(t, "no-ceiling").and_then(|p| best_at(p, n, |c| c.makespan_ms.mean));
        rows.push(vec![
            n.to_string(),
            best.as_ref().map_or("-".into(), |b| b.0.clone()),
            best.as_ref().map_or("-".into(), |b| secs(b.1)),
            best.as_ref()
                .and_then(|b| ps[&b.0].get(&n))
                .map_or("-".into(), |c| format!("{:.2}", c.efficiency.mean)),
            auto.map_or("-".into(), |c| {
                c.ran.keys().cloned().collect::<Vec<_>>().join("/")
            }),
            auto.map_or("-".into(), |c| secs(c.makespan_ms.mean)),
            nc.as_ref().map_or("-".into(), |b| b.0.clone()),
            nc.as_ref().map_or("-".into(), |b| secs(b.1)),
        ]);
    }
    rows
}

/// Which policy to use: how far auto and the best fixed policies are from the best at each N.
fn recommendation(t: &Table) -> Option<String> {
    let mut parts = Vec::new();
    for (topo, name) in [
        ("default", "measured system"),
        ("no-ceiling", "without the ceiling"),
    ] {
        let ps = sweep(t, topo)?;
        let mut ns: Vec<u64> = ps.values().flat_map(|c| c.keys().copied()).collect();
        ns.sort();
        ns.dedup();
        // Worst ratio to the best policy over all N, per policy.
        let mut worst: Vec<(String, f64)> = ps
            .iter()
            .filter_map(|(p, cells)| {
                let r = ns
                    .iter()
                    .map(|n| {
                        let best = best_at(ps, *n, |c| c.makespan_ms.mean)?.1;
                        Some(cells.get(n)?.makespan_ms.mean / best)
                    })
                    .collect::<Option<Vec<f64>>>()?;
                Some((p.clone(), r.into_iter().fold(0.0, f64::max)))
            })
            .collect();
        worst.sort_by(|a, b| a.1.total_cmp(&b.1));
        let top: Vec<String> = worst
            .iter()
            .take(3)
            .map(|(p, r)| format!("{p} (≤ {:.0}% slower)", 100.0 * (r - 1.0)))
            .collect();
        parts.push(format!("{name}: {}", top.join(", ")));
    }
    Some(format!(
        "Closest to the best at every N (worst gap to the best policy over all N): {}. auto picks \
         from N and the calibration, so it is the default; a fixed policy only pays off when its \
         weakness is known not to matter.",
        parts.join("; ")
    ))
}

fn timescale_line(t: &Table) -> Option<String> {
    let ts = t.get("timescale")?;
    let mut vals: Vec<(f64, f64, String)> = ts
        .iter()
        .filter_map(|(k, ps)| {
            let scale: f64 = k.strip_prefix('s')?.parse().ok()?;
            let (p, cells) = ps.iter().next()?;
            let (n, c) = cells.iter().next()?;
            Some((scale, c.makespan_ms.mean, format!("N = {n} {p}")))
        })
        .collect();
    vals.sort_by(|a, b| b.0.total_cmp(&a.0));
    let (reference, other) = (vals.first()?, vals.get(1)?);
    let diff = 100.0 * (other.1 - reference.1) / reference.1;
    Some(format!(
        "Time-scale check ({}): makespan {} at time scale {} and {} at scale {} — {:+.1}% ({}).",
        reference.2,
        secs(reference.1),
        reference.0,
        secs(other.1),
        other.0,
        diff,
        if diff.abs() <= 5.0 {
            "within 5%: the faster sweep measures the same system"
        } else {
            "NOT within 5%: read the sweep's absolute times with care"
        }
    ))
}

fn fault_table(t: &Table, base_topo: &str, suffix: &str) -> Option<Vec<Vec<String>>> {
    let base = sweep(t, base_topo)?;
    let topos: Vec<String> = ["slow-machine", "machine-down"]
        .iter()
        .map(|f| format!("{f}{suffix}"))
        .filter(|f| sweep(t, f).is_some())
        .collect();
    if topos.is_empty() {
        return None;
    }
    let n = topos
        .iter()
        .filter_map(|f| sweep(t, f))
        .map(|p| {
            p.values()
                .flat_map(|c| c.keys())
                .copied()
                .max()
                .unwrap_or(0)
        })
        .min()?;
    let mut head = vec![format!("policy (N = {n}), mean / p99")];
    head.push(base_topo.to_string());
    head.extend(topos.iter().cloned());
    let mut rows = vec![head];
    for p in policy_order(base.keys().cloned()) {
        let mut row = vec![p.clone()];
        for topo in std::iter::once(base_topo).chain(topos.iter().map(String::as_str)) {
            let c = sweep(t, topo)
                .and_then(|ps| ps.get(&p))
                .and_then(|c| c.get(&n));
            row.push(c.map_or("-".into(), |c| {
                format!(
                    "{} / {}",
                    secs(c.completion_mean_ms.mean),
                    secs(c.completion_p99_ms.mean)
                )
            }));
        }
        rows.push(row);
    }
    Some(rows)
}
