//! The limits analysis as text: one answer with numbers per question, and the downsides argued
//! from those numbers. Used for `limits.md`, the terminal, and the report.

use super::Limits;
use std::fmt::Write;

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
                    ", the first of them after {} s (the router's timeout)",
                    f1(ms / 1000.0)
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
    let o = &l.forwarder_overhead;
    out.push((
        "What latency does the forwarding unit add?".into(),
        match o.via_minus_direct_ms {
            Some(d) => format!(
                "{} ms per request at no load (client round trip − response_time: {} ms, less the \
                 {} ms the same gap measures straight to a worker); through it versus straight to \
                 the worker: {} ms.",
                f1(o.rtt_minus_response_ms),
                f1(o.raw_gap_ms),
                f1(o.measurement_gap_ms),
                f1(d)
            ),
            None => format!(
                "{} ms per request at no load (client round trip − response_time; worker URLs \
                 unknown, so no straight comparison).",
                f1(o.rtt_minus_response_ms)
            ),
        },
    ));
    let b = &l.forwarder_bottleneck;
    let mut q6 = format!(
        "One forwarding unit passes at most {} requests/s while the machines together serve {} — \
         {}% of their capacity.",
        f1(b.ceiling_rps),
        f0(b.machines_combined_rps),
        f0(100.0 * b.ceiling_rps / b.machines_combined_rps.max(1e-9))
    );
    if let Some(n) = b.bottleneck_from_n {
        let _ = write!(
            q6,
            " From N = {n} on, the forwarding unit's bound on a batch exceeds the machines' by more than 10%: it, not the machines, sets the pace."
        );
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
    if let (Some(first), Some(last)) = (b.scaling.first(), b.scaling.last()) {
        let _ = write!(
            q6,
            " Solution, measured: K forwarding units over the same workers — {} requests/s with K = {}, \
             {} with K = {} ({}×), until the machines ({} requests/s) become the limit.",
            f0(first.throughput_rps),
            first.forwarders,
            f0(last.throughput_rps),
            last.forwarders,
            f1(last.throughput_rps / first.throughput_rps.max(1e-9)),
            f0(b.machines_combined_rps)
        );
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
    match p.cold_start_ms {
        Some(c) => {
            let _ = write!(
                q7,
                "; a cold start adds {} s to the first request",
                f1(c / 1000.0)
            );
        }
        None => q7.push_str("; cold start not measured"),
    }
    match p.router_timeout_ms {
        Some(t) => {
            let _ = write!(
                q7,
                "; the router's 503 (the work is still done) reached the client after {} s at the \
                 earliest.",
                f1(t / 1000.0)
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

/// The downsides, each argued from a measured figure.
pub fn downsides(l: &Limits) -> Vec<String> {
    let b = &l.forwarder_bottleneck;
    let mut d = vec![format!(
        "(1) A single forwarding unit caps every batch at {} requests/s, {}% of what the machines \
         can serve, and is a single point of failure.",
        f0(b.ceiling_rps),
        f0(100.0 * b.ceiling_rps / b.machines_combined_rps.max(1e-9))
    )];
    d.push(format!(
        "(2) It adds {} ms to every request (a new connection to the worker each time).",
        f0(l.forwarder_overhead.rtt_minus_response_ms)
    ));
    if let Some(cb) = &b.connection_burst {
        d.push(format!(
            "(3) Past its connection limit it refuses clients ({} of {} in a burst) instead of \
             queueing them.",
            cb.size - cb.ok,
            cb.size
        ));
    }
    d.push(format!(
        "(4) Machines serve one request at a time (≈ {} ms each), so a queue of N adds ≈ N × {} ms; \
         nothing tells clients to back off until the router's 503{}, and that work is wasted.",
        f0(l.machine_capacity.service_ms),
        f0(l.machine_capacity.service_ms),
        l.platform
            .router_timeout_ms
            .map(|t| format!(" (the first after {} s)", f0(t / 1000.0)))
            .unwrap_or_default()
    ));
    if let Some(c) = l.platform.cold_start_ms {
        d.push(format!(
            "(5) Idle machines sleep: the first request waits {} s more.",
            f1(c / 1000.0)
        ));
    }
    let rts: Vec<f64> = l.machines.iter().map(|m| m.response_time_ms.p50).collect();
    d.push(format!(
        "(6) GET /work picks a machine at random, blind to load and to the {}–{} ms spread of \
         no-load response times; clients must plan per region themselves.",
        f0(rts.iter().copied().fold(f64::INFINITY, f64::min)),
        f0(rts.iter().copied().fold(0.0, f64::max))
    ));
    d
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
            "Configured model ({}): machine capacity {} requests/s, forwarding-unit ceiling {} \
             requests/s, mean work_time {} ms, forwarding-unit overhead {} ms, boot {} s.\n",
            m.topology,
            f1(m.machine_capacity_rps),
            f1(m.forwarder_ceiling_rps),
            f1(m.work_time_mean_ms),
            f0(m.forwarder_overhead_ms),
            f1(m.boot_ms / 1000.0)
        );
    }
    let prefix = charts.map(|c| format!("{c}/")).unwrap_or_default();
    for c in &l.charts {
        let _ = writeln!(s, "![{c}]({prefix}{c}.png)");
    }
    s
}
