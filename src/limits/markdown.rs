//! The limits analysis as text: one answer with numbers per question, and the downsides argued
//! from those numbers. Used for `limits.md`, the terminal, and the report.
//!
//! Every claim is conditioned on the figure it rests on, because the same text describes the
//! emulator and real forwarding units that behave differently: a cold start is only reported when
//! the first requests were clearly slower than the no-load ones, an added latency only when one
//! was measured, scale-out only as "more" when the throughput rose. What cannot be measured from
//! the client (e.g. how the forwarding unit connects to the workers) is not claimed.

use super::measure::BOTTLENECK_SEARCH_MAX_N;
use super::schema::{Bottleneck, Dist, Limits};
use crate::numbers::{compare, secs};
use std::fmt::Write;

/// Below this (model ms) an added latency is measurement noise, not a figure to report.
const NOISE_MS: f64 = 0.5;

fn f0(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.0}")
    } else {
        "n/a".into()
    }
}

fn f1(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.1}")
    } else {
        "n/a".into()
    }
}

/// One line per question (Q1–Q8), each with its figures.
pub fn answers(l: &Limits) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let c = &l.machine_capacity;
    let mut q1 = format!(
        "One machine ({}, {}) tops out at {} requests/s (≈ {} ms per request); 90% of that is \
         reached at {} requests in flight.",
        c.machine,
        c.path,
        f1(c.ceiling_rps),
        f1(c.service_ms),
        c.knee_concurrency
    );
    if let Some(b) = &c.burst {
        let e503 = b.failures.get("http_503").copied().unwrap_or(0);
        let _ = write!(
            q1,
            " A burst of {} at once: {} ok, {} answered 503{}.",
            b.size,
            b.ok,
            e503,
            match b.first_failure_ms {
                Some(ms) => format!(
                    ", the first of them after {} (the router's timeout)",
                    secs(ms)
                ),
                None => String::new(),
            }
        );
    } else {
        let _ = write!(q1, " (503s: no burst was measured).");
    }
    out.push(("How many requests can one machine handle?".to_string(), q1));

    let regions: Vec<String> = l
        .regions
        .iter()
        .map(|r| {
            format!(
                "{} {} ms (p5–p95 {}–{})",
                r.region,
                f0(r.response_time_ms.p50),
                f0(r.response_time_ms.p5),
                f0(r.response_time_ms.p95)
            )
        })
        .collect();
    out.push((
        "What is the latency of each region?".into(),
        format!(
            "Median no-load response_time: {}; the network round trip (response_time − work_time) \
             is {} ms in the median.",
            regions.join("; "),
            f0(l.platform.network_ms.p50)
        ),
    ));
    let w = &l.work_time;
    let hist: Vec<String> = w
        .histogram
        .iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect();
    out.push((
        "What is the computation time of a work request?".into(),
        format!(
            "work_time is {}–{} ms, mean {} ms over {} answers (counts {}), the same at any load.",
            f0(w.dist.min),
            f0(w.dist.max),
            f1(w.dist.mean),
            w.dist.n,
            hist.join(", ")
        ),
    ));
    out.push((
        "What is the response time of a worker with no load?".into(),
        format!(
            "{} ms in the median over machines ({}–{} ms), {}.",
            f0(l.worker_no_load_ms.p50),
            f0(l.worker_no_load_ms.min),
            f0(l.worker_no_load_ms.max),
            if l.machines.iter().any(|m| m.direct_rtt_ms.is_some()) {
                "straight to each worker"
            } else {
                "as the forwarding unit's response_time"
            }
        ),
    ));
    out.push((
        "What latency does the forwarding unit add?".into(),
        overhead_answer(l),
    ));
    let b = &l.forwarder_bottleneck;
    let mut q6 = unit_ceiling(b);
    match b.bottleneck_from_n {
        _ if !b.has_ceiling() => {
            q6.push_str(" At no N does it set the pace: the machines do.");
        }
        Some(n) => {
            let _ = write!(
                q6,
                " From N = {n} on, the forwarding unit's bound on a batch exceeds the machines' by \
                 more than 10%: it, not the machines, sets the pace."
            );
        }
        None => {
            let _ = write!(
                q6,
                " At no N up to {BOTTLENECK_SEARCH_MAX_N} does its bound on a batch exceed the \
                 machines' by more than 10%: the machines set the pace."
            );
        }
    }
    if let Some(cb) = &b.connection_burst {
        let _ = write!(
            q6,
            " {} connections at once: {} served, {} refused or cut.",
            cb.size,
            cb.ok,
            cb.size - cb.ok
        );
    }
    if let Some(sentence) = scale_out(b) {
        q6.push(' ');
        q6.push_str(&sentence);
    }
    out.push((
        "At what N does the forwarding unit become the bottleneck, and how to solve it?".into(),
        q6,
    ));
    let p = &l.platform;
    let mut q7 = format!(
        "Network round trip {} ms (median, {}–{} over all machines); queueing at one machine with \
         {} in flight adds {} ms to response_time",
        f0(p.network_ms.p50),
        f0(p.network_ms.min),
        f0(p.network_ms.max),
        p.max_level,
        f0(p.queueing_at_max_level_ms)
    );
    q7.push_str("; ");
    q7.push_str(&cold_start(l).clause());
    match p.router_timeout_ms {
        Some(t) => {
            let _ = write!(
                q7,
                "; the router's 503 (the work is still done) reached the client after {} at the \
                 earliest.",
                secs(t)
            );
        }
        None => q7.push('.'),
    }
    out.push(("How much latency does the cloud platform add?".into(), q7));
    out.push((
        "What are the downsides of this architecture?".into(),
        downsides(l).join(" "),
    ));
    out
}

/// The forwarding unit's ceiling as the estimator saw it: one request per pass of a one-at-a-time
/// stage, or none seen (it passed all the machines served).
fn unit_ceiling(b: &Bottleneck) -> String {
    if !b.has_ceiling() {
        let most = b.levels.iter().map(|l| l.concurrency).max().unwrap_or(0);
        return format!(
            "No forwarding-unit ceiling was seen: it passed all {}/s the machines served (up to \
             {most} requests in flight; their answers never left it one pass apart, as a \
             one-at-a-time stage would let them), while the machines together serve {}/s.",
            f1(b.passed_rps),
            f0(b.machines_combined_rps)
        );
    }
    let stage = match (b.pass_ms, b.stage_after) {
        (Some(p), after) => format!(
            " (one every {} ms: its answers queued and left it one pass apart{}, over {} queued \
             answers)",
            f1(p),
            match after {
                Some(true) => ", after the worker call",
                Some(false) => ", before the worker call",
                None => "",
            },
            b.pass_samples
        ),
        (None, _) => String::new(),
    };
    format!(
        "One forwarding unit passes at most {} requests/s{stage} while the machines together \
         serve {} — {}% of their capacity.",
        f1(b.ceiling_rps),
        f0(b.machines_combined_rps),
        f0(100.0 * b.ceiling_rps / b.machines_combined_rps.max(1e-9))
    )
}

/// The downsides, each argued from a measured figure and numbered; one whose figure does not show
/// it (no added latency, no refused connection, no cold start) is left out.
pub fn downsides(l: &Limits) -> Vec<String> {
    let b = &l.forwarder_bottleneck;
    let share = b.ceiling_rps / b.machines_combined_rps.max(1e-9);
    let mut d = vec![if !b.has_ceiling() {
        format!(
            "A single forwarding unit is a single point of failure (no ceiling was seen: it passed \
             all {} requests/s the machines served).",
            f0(b.passed_rps)
        )
    } else if share < 0.9 {
        format!(
            "A single forwarding unit caps every batch at {} requests/s, {}% of what the machines \
             can serve, and is a single point of failure.",
            f0(b.ceiling_rps),
            f0(100.0 * share)
        )
    } else {
        format!(
            "A single forwarding unit is a single point of failure (it passes {} requests/s, as \
             much as the machines serve).",
            f0(b.ceiling_rps)
        )
    }];
    let added = l.forwarder_overhead.rtt_minus_response_ms;
    if added >= NOISE_MS {
        d.push(format!(
            "It adds {} ms to every request, measured at no load.",
            f0(added)
        ));
    }
    if let Some(cb) = b.connection_burst.as_ref().filter(|cb| cb.ok < cb.size) {
        d.push(format!(
            "Past its connection limit it refuses clients ({} of {} in a burst) instead of \
             queueing them.",
            cb.size - cb.ok,
            cb.size
        ));
    }
    let service = l.machine_capacity.service_ms;
    d.push(format!(
        "A machine completes at most one request every ≈ {} ms (its measured ceiling, {} \
         requests/s), so a queue of N adds ≈ N × {} ms; nothing tells clients to back off until \
         the router's 503{}, and that work is wasted.",
        f0(service),
        f0(l.machine_capacity.ceiling_rps),
        f0(service),
        l.platform
            .router_timeout_ms
            .map(|t| format!(" (the first after {})", secs(t)))
            .unwrap_or_default()
    ));
    if let ColdStart::Observed { median_ms, .. } = cold_start(l) {
        d.push(format!(
            "Idle machines sleep: the first request waits {} more.",
            secs(median_ms)
        ));
    }
    let rts: Vec<f64> = l.machines.iter().map(|m| m.response_time_ms.p50).collect();
    d.push(format!(
        "No-load response times range over {}–{} ms from machine to machine, and GET /work \
         leaves the choice of machine to the forwarding unit: a client that wants the near \
         machines must address them per region itself.",
        f0(rts.iter().copied().fold(f64::INFINITY, f64::min)),
        f0(rts.iter().copied().fold(0.0, f64::max))
    ));
    d.into_iter()
        .enumerate()
        .map(|(i, text)| format!("({}) {text}", i + 1))
        .collect()
}

/// The forwarding unit's added latency at no load, as measured, or that none was measurable.
fn overhead_answer(l: &Limits) -> String {
    let o = &l.forwarder_overhead;
    let how = match o.via_minus_direct_ms {
        Some(d) => format!(
            "client round trip − response_time: {} ms, less the {} ms the same gap measures \
             straight to a worker; through it versus straight to the worker: {} ms",
            f1(o.raw_gap_ms),
            f1(o.measurement_gap_ms),
            f1(d)
        ),
        None => "client round trip − response_time; worker URLs unknown, so no straight \
                 comparison"
            .to_string(),
    };
    if o.rtt_minus_response_ms >= NOISE_MS {
        format!(
            "{} ms per request at no load ({how}).",
            f1(o.rtt_minus_response_ms)
        )
    } else {
        format!(
            "None measurable at no load: {} ms, within {NOISE_MS} ms of nothing ({how}).",
            f1(o.rtt_minus_response_ms)
        )
    }
}

/// What adding forwarding units did to the throughput.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ScaleOut {
    /// Less than 5% more with the most units than with the fewest.
    NoGain,
    /// More, up to within 10% of the machines' combined capacity: the machines are then the limit.
    ReachesMachines,
    /// More, but still short of the machines' capacity.
    BelowMachines,
}

impl ScaleOut {
    /// From the scaling measurement: the verdict and its figures ("60 requests/s with K = 1, 225
    /// with K = 8 (3.8× more)"); None when fewer than two K were measured.
    pub fn of(b: &Bottleneck) -> Option<(ScaleOut, String)> {
        let (first, last) = (b.scaling.first()?, b.scaling.last()?);
        if first.forwarders == last.forwarders {
            return None;
        }
        let ratio = last.throughput_rps / first.throughput_rps;
        let figures = format!(
            "{} requests/s with K = {}, {} with K = {} ({})",
            f0(first.throughput_rps),
            first.forwarders,
            f0(last.throughput_rps),
            last.forwarders,
            compare(ratio, "more", "less", "no more")
        );
        let verdict = if ratio.is_nan() || ratio < 1.05 {
            ScaleOut::NoGain
        } else if last.throughput_rps >= 0.9 * b.machines_combined_rps {
            ScaleOut::ReachesMachines
        } else {
            ScaleOut::BelowMachines
        };
        Some((verdict, figures))
    }
}

/// What K forwarding units over the same workers did to the throughput, from the scaling
/// measurement (None when it was not run).
pub fn scale_out(b: &Bottleneck) -> Option<String> {
    let (verdict, figures) = ScaleOut::of(b)?;
    let machines = f0(b.machines_combined_rps);
    Some(match verdict {
        ScaleOut::NoGain => {
            format!("More forwarding units do not raise the throughput: {figures}.")
        }
        ScaleOut::ReachesMachines => format!(
            "Solution, measured: K forwarding units over the same workers — {figures}, close to \
             the machines' combined {machines} requests/s, which are then the limit."
        ),
        ScaleOut::BelowMachines => format!(
            "Solution, measured: K forwarding units over the same workers — {figures}; the \
             machines ({machines} requests/s combined) are not yet the limit."
        ),
    })
}

/// What the cold-start probe showed.
#[derive(Clone, Debug, PartialEq)]
pub enum ColdStart {
    /// The plan did not probe it.
    NotMeasured,
    /// The first request to every machine was about as fast as its no-load ones.
    NoneObserved,
    /// Some first requests were clearly slower: by `median_ms` in the median over those machines.
    Observed {
        median_ms: f64,
        machines: usize,
        of: usize,
    },
}

impl ColdStart {
    /// The clause of the platform answer.
    fn clause(&self) -> String {
        match self {
            ColdStart::NotMeasured => "cold start not measured".into(),
            ColdStart::NoneObserved => {
                "no cold start observed (the first request to each machine was no slower than \
                 its no-load ones)"
                    .into()
            }
            ColdStart::Observed {
                median_ms,
                machines,
                of,
            } => {
                let on = if machines == of {
                    String::new()
                } else {
                    format!(" on {machines} of {of} machines")
                };
                format!(
                    "a cold start adds {} to the first request{on}",
                    secs(*median_ms)
                )
            }
        }
    }
}

/// A machine counts as cold when its first request took both more than twice its median no-load
/// round trip and longer than its slowest no-load one: connection set-up and scheduling noise
/// stay well below that, a machine waking up (seconds) far above.
pub fn cold_start(l: &Limits) -> ColdStart {
    let probed: Vec<(f64, &Dist)> = l
        .machines
        .iter()
        .filter_map(|m| Some((m.cold_start_ms?, &m.via_forwarder_rtt_ms)))
        .collect();
    if probed.is_empty() {
        return ColdStart::NotMeasured;
    }
    let cold: Vec<f64> = probed
        .iter()
        .filter(|(extra, rtt)| *extra > rtt.p50 && *extra > rtt.max - rtt.p50)
        .map(|(extra, _)| *extra)
        .collect();
    if cold.is_empty() {
        return ColdStart::NoneObserved;
    }
    ColdStart::Observed {
        median_ms: crate::numbers::median(&cold),
        machines: cold.len(),
        of: probed.len(),
    }
}

/// The Markdown section. `charts`: relative folder of the chart files to link (None: same folder).
pub fn render(l: &Limits, charts: Option<&str>) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "## System limits\n");
    let _ = writeln!(
        s,
        "Measured on {} at time scale {} (figures in model milliseconds), {} no-load samples per \
         machine.\n",
        l.system, l.time_scale, l.samples_per_machine
    );
    for (i, (q, a)) in answers(l).iter().enumerate() {
        let _ = writeln!(s, "{}. **{}** {}\n", i + 1, q, a);
    }
    if let Some(m) = &l.model {
        let _ = writeln!(
            s,
            "Configured model ({}): machine capacity {} requests/s, forwarding-unit ceiling {}, \
             mean work_time {} ms, forwarding-unit overhead {} ms, boot {}.\n",
            m.topology,
            f1(m.machine_capacity_rps),
            if m.forwarder_ceiling_rps.is_finite() {
                format!("{} requests/s", f1(m.forwarder_ceiling_rps))
            } else {
                "none".into()
            },
            f1(m.work_time_mean_ms),
            f0(m.forwarder_overhead_ms),
            secs(m.boot_ms)
        );
    }
    let prefix = charts.map(|c| format!("{c}/")).unwrap_or_default();
    for c in &l.charts {
        let _ = writeln!(s, "![{c}]({prefix}{c}.png)");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::schema::{Burst, MachineNoLoad, ScalePoint};

    /// Two machines at ~300 ms no-load round trip, a forwarding unit at 60 of 230 requests/s.
    fn limits(cold_start_ms: Option<f64>, added_ms: f64) -> Limits {
        let rtt = Dist {
            n: 10,
            p50: 300.0,
            max: 320.0,
            ..Dist::default()
        };
        let machine = |name: &str| MachineNoLoad {
            machine: name.into(),
            via_forwarder_rtt_ms: rtt.clone(),
            cold_start_ms,
            ..MachineNoLoad::default()
        };
        let mut l = Limits {
            machines: vec![machine("asia/0"), machine("us/0")],
            ..Limits::default()
        };
        l.forwarder_overhead.rtt_minus_response_ms = added_ms;
        l.forwarder_bottleneck.ceiling_rps = 60.0;
        l.forwarder_bottleneck.machines_combined_rps = 230.0;
        l.machine_capacity.ceiling_rps = 46.0;
        l.machine_capacity.service_ms = 21.7;
        l
    }

    fn text(l: &Limits) -> String {
        answers(l)
            .into_iter()
            .map(|(q, a)| format!("{q} {a}"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn a_negative_or_tiny_cold_start_is_reported_as_none_observed() {
        for extra in [-30.0, 0.0, 15.0] {
            let l = limits(Some(extra), 30.0);
            assert_eq!(cold_start(&l), ColdStart::NoneObserved);
            let t = text(&l);
            assert!(t.contains("no cold start observed"), "{t}");
            assert!(
                !t.contains("cold start adds") && !t.contains("sleep"),
                "{t}"
            );
        }
        let t = text(&limits(Some(10_000.0), 30.0));
        assert!(
            t.contains("a cold start adds 10.0 s to the first request"),
            "{t}"
        );
        assert!(t.contains("the first request waits 10.0 s more"), "{t}");
        assert!(text(&limits(None, 30.0)).contains("cold start not measured"));
    }

    #[test]
    fn the_forwarding_unit_latency_claims_only_what_was_measured() {
        let t = text(&limits(None, 30.0));
        assert!(
            t.contains("It adds 30 ms to every request, measured at no load."),
            "{t}"
        );
        assert!(!t.contains("connection"), "{t}");
        let t = text(&limits(None, -0.2));
        assert!(!t.contains("It adds"), "{t}");
        assert!(t.contains("None measurable at no load"), "{t}");
        let d = downsides(&limits(None, -0.2));
        assert!(d[1].starts_with("(2) A machine completes"), "{d:?}");
    }

    #[test]
    fn scale_out_that_does_not_raise_throughput_is_not_a_solution() {
        let mut l = limits(None, 30.0);
        let point = |forwarders, throughput_rps| ScalePoint {
            forwarders,
            concurrency: 45,
            throughput_rps,
        };
        l.forwarder_bottleneck.scaling = vec![point(1, 60.0), point(8, 225.0)];
        let s = scale_out(&l.forwarder_bottleneck).unwrap();
        assert!(s.starts_with("Solution") && s.contains("3.8× more"), "{s}");
        assert!(s.contains("which are then the limit"), "{s}");
        l.forwarder_bottleneck.scaling = vec![point(1, 60.0), point(8, 58.0)];
        let s = scale_out(&l.forwarder_bottleneck).unwrap();
        assert!(s.starts_with("More forwarding units do not raise") && s.contains("no more"));
        l.forwarder_bottleneck.scaling = vec![point(1, 60.0), point(3, 120.0)];
        let s = scale_out(&l.forwarder_bottleneck).unwrap();
        assert!(
            s.contains("2.0× more") && s.contains("not yet the limit"),
            "{s}"
        );
    }

    #[test]
    fn a_burst_served_in_full_is_not_a_downside() {
        let mut l = limits(None, 30.0);
        let burst = |ok| Burst {
            size: 1300,
            ok,
            ..Burst::default()
        };
        l.forwarder_bottleneck.connection_burst = Some(burst(1036));
        assert!(downsides(&l).iter().any(|d| d.contains("264 of 1300")));
        l.forwarder_bottleneck.connection_burst = Some(burst(1300));
        assert!(!downsides(&l).iter().any(|d| d.contains("refuses")));
    }

    /// nginx passes thousands per second: what the probe got through it is not its ceiling.
    #[test]
    fn a_forwarding_unit_without_a_ceiling_is_not_said_to_pass_at_most() {
        let mut l = limits(None, 30.0);
        l.forwarder_bottleneck.ceiling_rps = f64::INFINITY;
        l.forwarder_bottleneck.passed_rps = 89.7;
        let t = text(&l);
        assert!(
            t.contains("No forwarding-unit ceiling was seen: it passed all 89.7/s the machines"),
            "{t}"
        );
        assert!(t.contains("At no N does it set the pace"), "{t}");
        assert!(
            !t.contains("passes at most") && !t.contains("inf") && !t.contains("NaN"),
            "{t}"
        );
        let d = downsides(&l);
        assert!(
            d[0].contains("no ceiling was seen") && !d[0].contains("caps"),
            "{d:?}"
        );
        l.forwarder_bottleneck.ceiling_rps = 58.8;
        l.forwarder_bottleneck.pass_ms = Some(17.0);
        l.forwarder_bottleneck.stage_after = Some(false);
        let t = text(&l);
        assert!(
            t.contains("passes at most 58.8 requests/s (one every 17.0 ms")
                && t.contains("before the worker call"),
            "{t}"
        );
    }

    #[test]
    fn a_forwarding_unit_as_fast_as_the_machines_is_not_called_a_cap() {
        let mut l = limits(None, 30.0);
        assert!(downsides(&l)[0].contains("caps every batch at 60 requests/s, 26%"));
        l.forwarder_bottleneck.ceiling_rps = 400.0;
        let d = downsides(&l);
        assert!(
            !d[0].contains("caps") && d[0].contains("single point of failure"),
            "{d:?}"
        );
        assert!(text(&l).contains("the machines set the pace"));
    }
}
