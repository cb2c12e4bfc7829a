//! `cmdunit report`: charts, `REPORT.md` and `report.pdf` (at most three A4 pages) from the
//! files under `results/` only — the sweep's run folders and `limits/limits.json` — so every
//! number in the report comes from a file that `scripts/report.sh` regenerates.
//!
//! - [`data`]: reading run folders back and aggregating repetitions.
//! - [`charts`]: the charts and their one-line takeaways, computed from the data.
//! - [`headline`], [`sentences`]: the prose (headline; system, method, limits takeaways),
//!   computed likewise.
//! - [`tables`]: which policy for which N; the faults' full figures.
//! - [`numbers`]: durations, ratios and medians, written the same everywhere in the report.
//! - [`doc`]: the report as blocks, and its Markdown.
//! - [`pdf`]: the blocks laid out on A4 pages (SVG) and turned into a PDF by krilla.

pub mod charts;
pub mod data;
pub mod doc;
pub mod headline;
pub mod pdf;
pub mod sentences;
pub mod tables;

use crate::limits::{self, Limits};
use anyhow::Context;
use charts::Chart;
use data::{policy_order, Table, REFERENCE_N};
use doc::Block;
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

fn take(charts: &[Chart], stems: &[&str]) -> Vec<Chart> {
    stems
        .iter()
        .filter_map(|s| charts.iter().find(|c| c.stem == *s).cloned())
        .collect()
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
    let described: Vec<&data::Run> = if main.is_empty() {
        runs.iter().collect()
    } else {
        main.clone()
    };
    let policies = policy_order(main.iter().map(|r| r.policy.clone()));

    b.push(Block::Title("cmdunit: evaluation report".into()));
    b.push(Block::Para(format!(
        "cmdunit is a command unit: told N, it spreads the N requests over the forwarding \
         unit's /work endpoints, runs the batch on blocking per-thread HTTP agents and reports \
         every request. Its default policy, auto, learns the system from the batch's own answers \
         (each machine's trip and service time, the forwarding unit's overhead and ceiling) and \
         from what the last run learned, and sends each job where it would be answered soonest; \
         {} other policies are compared with it here.{}",
        crate::policy::ALL.len().saturating_sub(1),
        sentences::system(&described, limits)
    )));
    b.push(Block::Para(sentences::method(t, runs, policies.len())));
    b.push(Block::Para(headline::headline(t, limits)));
    b.push(Block::Charts {
        charts: take(charts, &["makespan-default", "makespan-no-ceiling"]),
        print: true,
    });
    b.push(Block::Heading("Which policy for which N".into()));
    b.push(Block::Table(tables::policy_table(t)));
    if let Some(line) = sentences::recommendation(t) {
        b.push(Block::Small(line));
    }
    if let Some(ts) = sentences::timescale_line(t) {
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
            let lc: Vec<Chart> = limit_charts
                .iter()
                .map(|stem| {
                    let (title, takeaway) = sentences::limit_chart(l, stem);
                    Chart {
                        stem: stem.clone(),
                        title: title.into(),
                        takeaway,
                    }
                })
                .collect();
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
    let reference = format!("per-machine-{REFERENCE_N}");
    let cdf = format!("cdf-{REFERENCE_N}");
    b.push(Block::Charts {
        charts: take(
            charts,
            &[
                "makespan-forwarders",
                "efficiency-default",
                "faults-no-ceiling-p99",
                "faults-p99",
                &reference,
                &cdf,
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
        if let Some(rows) = tables::fault_table(t, base, suffix) {
            b.push(Block::MarkdownOnly(vec![
                Block::Heading(format!("Faults, full figures ({base} system)")),
                Block::Table(rows),
            ]));
        }
    }
    b
}
