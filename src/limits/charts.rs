//! The limits charts, drawn from `limits.json`'s figures alone (the report redraws them from the
//! file): throughput against requests in flight, the no-load response-time CDF per region, the
//! work_time histogram, the machines' and the forwarding unit's bounds against N, and throughput
//! over K forwarding units.

use super::probe::Level;
use super::schema::Limits;
use crate::plot::{self, Axes, LineExtras, Series};
use std::path::Path;

/// The limits charts; returns their stems (file names without extension).
pub fn charts(limits: &Limits, out: &Path) -> anyhow::Result<Vec<String>> {
    let mut names = Vec::new();
    let cap = &limits.machine_capacity;
    let b = &limits.forwarder_bottleneck;
    let below = |references: Vec<Series>| LineExtras {
        legend_below: true,
        spread: Vec::new(),
        references,
    };

    let mut series = vec![throughput(
        format!("one machine ({})", cap.machine),
        &cap.levels,
    )];
    if !b.levels.is_empty() {
        series.push(throughput("all machines via 1 FU".into(), &b.levels));
    }
    let xs = series.iter().flat_map(|s| s.points.iter().map(|p| p.0));
    let (x0, x1) = xs.fold((f64::INFINITY, 0.0f64), |(lo, hi), x| {
        (lo.min(x), hi.max(x))
    });
    plot::line_chart_with(
        &out.join("limits-throughput"),
        &Axes {
            title: "Throughput against requests in flight".into(),
            x_label: "concurrent requests (closed loop)".into(),
            y_label: "throughput (requests/s)".into(),
            log_x: true,
            log_y: false,
        },
        &series,
        &below(vec![machines_combined(b.machines_combined_rps, x0, x1)]),
    )?;
    names.push("limits-throughput".to_string());

    let samples: Vec<(String, Vec<f64>)> = limits
        .regions
        .iter()
        .filter(|r| !r.samples_ms.is_empty())
        .map(|r| (r.region.clone(), r.samples_ms.clone()))
        .collect();
    if !samples.is_empty() {
        plot::cdf_chart_with(
            &out.join("limits-latency"),
            &Axes {
                title: "No-load response_time by region".into(),
                x_label: "response_time (ms)".into(),
                y_label: "fraction of answers".into(),
                ..Axes::default()
            },
            &samples,
            true,
        )?;
        names.push("limits-latency".into());
    }

    let bars: Vec<(String, f64)> = limits
        .work_time
        .histogram
        .iter()
        .map(|(w, c)| (format!("{w} ms"), *c as f64))
        .collect();
    if !bars.is_empty() {
        plot::bar_chart(
            &out.join("limits-worktime"),
            &Axes {
                title: "work_time of every no-load answer".into(),
                x_label: "work_time".into(),
                y_label: "answers".into(),
                ..Axes::default()
            },
            &bars,
        )?;
        names.push("limits-worktime".into());
    }

    if !b.bounds.is_empty() {
        let bound = |label: &str, pick: fn(&(usize, f64, f64)) -> f64| Series {
            label: label.into(),
            points: b.bounds.iter().map(|t| (t.0 as f64, pick(t))).collect(),
        };
        plot::line_chart_with(
            &out.join("limits-bounds"),
            &Axes {
                title: "Who limits a batch of N (measured figures)".into(),
                x_label: "N (requests)".into(),
                y_label: "lower bound (ms)".into(),
                log_x: true,
                log_y: true,
            },
            &[
                bound("machines' bound", |t| t.1),
                bound("1 FU's bound", |t| t.2),
            ],
            &below(Vec::new()),
        )?;
        names.push("limits-bounds".into());
    }

    if !b.scaling.is_empty() {
        let series = vec![Series {
            label: "measured".into(),
            points: b
                .scaling
                .iter()
                .map(|s| (s.forwarders as f64, s.throughput_rps))
                .collect(),
        }];
        let k_max = b.scaling.iter().map(|s| s.forwarders).max().unwrap_or(1);
        let k_times_one = Series {
            label: "K × 1 FU ceiling".into(),
            // Drawn until it passes the machines' capacity by 30% (beyond, moot); not at all
            // when no ceiling was seen.
            points: (1..=k_max)
                .map(|k| (k as f64, k as f64 * b.ceiling_rps))
                .take_while(|p| p.1.is_finite() && p.1 <= 1.3 * b.machines_combined_rps)
                .collect(),
        };
        let mut references = vec![machines_combined(
            b.machines_combined_rps,
            1.0,
            k_max as f64,
        )];
        if !k_times_one.points.is_empty() {
            references.push(k_times_one);
        }
        plot::line_chart_with(
            &out.join("limits-scaling"),
            &Axes {
                title: "Throughput over K forwarding units".into(),
                x_label: "forwarding units K".into(),
                y_label: "throughput (requests/s)".into(),
                ..Axes::default()
            },
            &series,
            &below(references),
        )?;
        names.push("limits-scaling".into());
    }
    Ok(names)
}

/// Throughput against requests in flight over a closed-loop ramp.
fn throughput(label: String, levels: &[Level]) -> Series {
    Series {
        label,
        points: levels
            .iter()
            .map(|l| (l.concurrency as f64, l.throughput_rps))
            .collect(),
    }
}

/// The machines' combined capacity as a flat reference line from `x0` to `x1`.
fn machines_combined(rps: f64, x0: f64, x1: f64) -> Series {
    Series {
        label: "machines' combined".into(),
        points: vec![(x0, rps), (x1, rps)],
    }
}
