//! `cmdunit summarize DIR`: rebuild a run folder's summary.json from its requests.csv — for a run
//! that was killed before it could write one (SIGKILL, a second Ctrl-C, a power cut). Jobs
//! without a row (in flight or never sent when it died) are counted as `unrecorded`, so that
//! `ok + failed == N` still holds.

use super::RunRecord;
use crate::endpoint::{Layout, MachineId, Target};
use crate::outcome::{Failure, Outcome, OutcomeKind};
use crate::stats::Stats;
use crate::summary::Summary;
use crate::usage::UsageError;
use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};

#[derive(Debug, clap::Args)]
pub struct SummarizeArgs {
    /// The run folder (it holds run.json and requests.csv).
    pub dir: PathBuf,
    /// Output format on stdout.
    #[arg(long, value_enum, default_value_t = crate::printer::Format::Text)]
    pub format: crate::printer::Format,
}

/// `cmdunit summarize DIR`.
pub fn run(args: SummarizeArgs) -> anyhow::Result<()> {
    let summary = rebuild(&args.dir)?;
    let path = args.dir.join("summary.json");
    crate::files::write_atomic(
        &path,
        crate::printer::render(crate::printer::Format::Json, &summary).as_bytes(),
    )
    .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    print!("{}", crate::printer::render(args.format, &summary));
    Ok(())
}

/// The summary of a run folder, from its rows.
pub fn rebuild(dir: &Path) -> anyhow::Result<Summary> {
    let record_path = dir.join("run.json");
    let text = std::fs::read_to_string(&record_path).map_err(|e| {
        UsageError(format!(
            "{} is not a run folder (cannot read run.json: {e})",
            dir.display()
        ))
    })?;
    let record: RunRecord = serde_json::from_str(&text)
        .map_err(|e| UsageError(format!("cannot parse {}: {e}", record_path.display())))?;
    let machines: Result<Vec<MachineId>, String> = record
        .machines
        .iter()
        .map(|m| MachineId::parse(m))
        .collect();
    let layout = Layout::new(machines.map_err(UsageError)?);
    let csv = dir.join("requests.csv");
    let file = std::fs::File::open(&csv)
        .map_err(|e| UsageError(format!("cannot read {}: {e}", csv.display())))?;
    let mut stats = Stats::new(layout.machines.len(), record.forwarders.len());
    let rows = read_rows(std::io::BufReader::new(file), &layout, |o| stats.record(o))
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", csv.display()))?;
    stats.count_unrecorded(record.n);
    Ok(Summary {
        version: 2,
        n: record.n,
        policy: record.policy.clone(),
        requested_policy: record.policy.clone(),
        reason: format!(
            "rebuilt from requests.csv: {rows} row(s) of {} request(s)",
            record.n
        ),
        ok: stats.ok,
        failed: stats.failed,
        cancelled: stats.cancelled,
        failures: stats.failures.clone(),
        retries: stats.retries,
        makespan_ms: stats.makespan_ms,
        completion_ms: stats.completion.quantiles(),
        latency_ms: stats.latency.quantiles(),
        response_time_ms: stats.response_time.quantiles(),
        per_machine: layout
            .machines
            .iter()
            .zip(&stats.per_machine)
            .map(|(m, c)| (m.to_string(), *c))
            .collect(),
        per_forwarder: record
            .forwarders
            .iter()
            .zip(&stats.per_forwarder)
            .map(|(u, c)| (u.clone(), *c))
            .collect::<BTreeMap<_, _>>(),
        forwarders: record.forwarders.clone(),
        calibration_source: "unknown".into(),
        time_scale: Some(record.time_scale),
        topology: record.topology.clone(),
        model_time: record.time_scale != 1.0,
        seed: record.seed,
        started_unix_s: record.started_unix_s,
        ..Summary::default()
    })
}

/// Feeds every whole row after the header to `record`; returns how many there were. A line
/// without its newline is not a row: the collector writes whole rows, but the kernel may cut a
/// write short when the process is killed in the middle of it, and a row cut inside its last
/// number would still parse (`…,19` read as `…,1`).
fn read_rows(
    mut input: impl BufRead,
    layout: &Layout,
    mut record: impl FnMut(&Outcome),
) -> std::io::Result<u64> {
    let mut line = Vec::new();
    let mut rows = 0;
    let mut header = true;
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 || line.last() != Some(&b'\n') {
            return Ok(rows);
        }
        if std::mem::take(&mut header) {
            continue;
        }
        let parsed = std::str::from_utf8(&line)
            .ok()
            .and_then(|l| parse_row(l.trim_end_matches(['\n', '\r']), layout));
        if let Some(o) = parsed {
            record(&o);
            rows += 1;
        }
    }
}

/// One row of requests.csv back into an outcome; `None` for a row that does not parse.
fn parse_row(line: &str, layout: &Layout) -> Option<Outcome> {
    let c: Vec<&str> = line.split(',').collect();
    if c.len() != 13 {
        return None;
    }
    let opt_u64 = |s: &str| {
        if s.is_empty() {
            Some(None)
        } else {
            s.parse().ok().map(Some)
        }
    };
    let time = |s: &str| s.parse::<f64>().ok();
    let kind = match c[6] {
        "ok" => OutcomeKind::Ok,
        "cancelled" => OutcomeKind::Cancelled,
        "connect" => OutcomeKind::Failed(Failure::Connect),
        "timeout" => OutcomeKind::Failed(Failure::Timeout),
        "bad_response" => OutcomeKind::Failed(Failure::BadResponse),
        s => OutcomeKind::Failed(Failure::Status(s.strip_prefix("http_")?.parse().ok()?)),
    };
    let machine = if c[3].is_empty() {
        None
    } else {
        Some(layout.machine_index(c[3], c[4].parse().ok()?)? as u16)
    };
    Some(Outcome {
        id: c[0].parse().ok()?,
        forwarder: opt_u64(c[1])?.map(|f| f as u16),
        target: Target::Any,
        machine,
        attempts: c[5].parse().ok()?,
        kind,
        start_ms: time(c[7])?,
        end_ms: time(c[8])?,
        sent_ms: time(c[9])?,
        response_time: opt_u64(c[11])?,
        work_time: opt_u64(c[12])?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_parse_back_and_torn_rows_are_skipped() {
        let l = Layout::documented();
        let o = parse_row(
            "7,1,/work/emea/0,emea,0,1,ok,0.00,400.50,12.35,388.16,350,19",
            &l,
        )
        .unwrap();
        assert_eq!(o.machine, Some(2));
        assert_eq!(o.response_time, Some(350));
        let f = parse_row("8,0,/work,,,2,http_503,1.00,2.00,1.50,0.50,,", &l).unwrap();
        assert_eq!(f.kind, OutcomeKind::Failed(Failure::Status(503)));
        assert!(parse_row("1992,,", &l).is_none());
        assert!(parse_row("x,0,/work,,,1,ok,0,0,0,0,,", &l).is_none());
    }

    #[test]
    fn a_row_cut_inside_its_last_number_is_not_counted() {
        let l = Layout::documented();
        let csv = format!(
            "{}\n7,1,/work/emea/0,emea,0,1,ok,0.00,400.50,12.35,388.16,350,19\n\
             8,1,/work/emea/0,emea,0,1,ok,0.00,400.50,12.35,388.16,350,1",
            crate::collect::CSV_HEADER
        );
        let mut seen = Vec::new();
        let rows = read_rows(csv.as_bytes(), &l, |o| seen.push(o.id)).unwrap();
        assert_eq!((rows, seen), (1, vec![7]));
        // Garbage is skipped, not fatal.
        let bad = b"h\n\xff\xfe,1\n7,1,/work/emea/0,emea,0,1,ok,0.00,400.50,12.35,388.16,350,19\n";
        assert_eq!(read_rows(&bad[..], &l, |_| {}).unwrap(), 1);
    }
}
