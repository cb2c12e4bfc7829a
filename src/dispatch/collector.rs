//! The collector thread: receives every outcome, streams it to requests.csv, keeps the
//! bounded-memory [`Stats`], and moves the progress bar. One thread owns the file and the
//! numbers, so agents never wait on each other to record.

use super::Outcome;
use crate::endpoint::Layout;
use crate::stats::Stats;
use crossbeam_channel::Receiver;
use indicatif::ProgressBar;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::thread::JoinHandle;

/// Columns of requests.csv. Times are model ms: `start_ms`, `sent_ms` (last attempt) and
/// `end_ms` from the batch start; `latency_ms` = `end_ms` − `sent_ms`.
pub const CSV_HEADER: &str = "id,forwarder,endpoint,region,machine,attempts,outcome,start_ms,end_ms,sent_ms,latency_ms,response_time,work_time";

/// Starts the collector; join it for the [`Stats`] once every sender is dropped.
pub fn spawn(
    rx: Receiver<Outcome>,
    csv: &Path,
    layout: Layout,
    forwarders: usize,
    progress: ProgressBar,
) -> std::io::Result<JoinHandle<std::io::Result<Stats>>> {
    let mut out = BufWriter::with_capacity(1 << 16, File::create(csv)?);
    writeln!(out, "{CSV_HEADER}")?;
    std::thread::Builder::new()
        .name("collector".into())
        .spawn(move || {
            let mut stats = Stats::new(layout.machines.len(), forwarders);
            let mut write_error: Option<std::io::Error> = None;
            for o in rx.iter() {
                stats.record(&o);
                if write_error.is_none() {
                    if let Err(e) = write_row(&mut out, &o, &layout) {
                        write_error = Some(e);
                    }
                }
                progress.inc(1);
            }
            progress.finish_and_clear();
            if let Some(e) = write_error {
                return Err(e);
            }
            out.flush()?;
            Ok(stats)
        })
}

fn write_row(out: &mut impl Write, o: &Outcome, layout: &Layout) -> std::io::Result<()> {
    let (region, machine) = match o.machine.and_then(|m| layout.machines.get(m as usize)) {
        Some(m) => (m.region.as_str(), m.index.to_string()),
        None => ("", String::new()),
    };
    let fwd = o.forwarder.map(|f| f.to_string()).unwrap_or_default();
    let opt = |v: Option<u32>| v.map(|x| x.to_string()).unwrap_or_default();
    writeln!(
        out,
        "{},{},{},{},{},{},{},{:.2},{:.2},{:.2},{:.2},{},{}",
        o.id,
        fwd,
        layout.path(o.target),
        region,
        machine,
        o.attempts,
        o.kind.class(),
        o.start_ms,
        o.end_ms,
        o.sent_ms,
        o.end_ms - o.sent_ms,
        opt(o.response_time),
        opt(o.work_time),
    )
}
