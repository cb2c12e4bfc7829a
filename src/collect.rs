//! The collector thread: receives every outcome (in small batches from the agents), streams it
//! to requests.csv, keeps the bounded-memory [`Stats`], and moves the progress bar. One thread
//! owns the file and the numbers, so agents never wait on each other to record.
//!
//! Rows are formatted into one reused buffer (integers and fixed-point times by hand, no
//! formatting machinery per field) and written with one `write` of whole rows when the buffer
//! is full or at least once a second. A process killed at any moment therefore leaves a file of
//! whole rows, missing at most the last second of answers. Two caveats, both handled: a process
//! that quits on purpose (a second Ctrl-C) first takes [`hold_writes`], so it never exits in
//! the middle of a write; and SIGKILL can, in the kernel, cut a write short at a page boundary,
//! so the reader (`cmdunit summarize`) ignores a last line without its newline.

use crate::endpoint::Layout;
use crate::outcome::Outcome;
use crate::stats::Stats;
use crossbeam_channel::{Receiver, RecvTimeoutError};
use indicatif::ProgressBar;
use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Columns of requests.csv. Times are model ms: `start_ms`, `sent_ms` (the attempt that ended
/// the job) and `end_ms` from the batch start; `latency_ms` = `end_ms` − `sent_ms`.
pub const CSV_HEADER: &str = "id,forwarder,endpoint,region,machine,attempts,outcome,start_ms,end_ms,sent_ms,latency_ms,response_time,work_time";

/// Rows are written at least this often.
pub const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// ...or when this many bytes of rows are waiting.
const FLUSH_BYTES: usize = 256 * 1024;

/// Held while rows are being written.
static WRITING: Mutex<()> = Mutex::new(());

/// Waits until no rows are being written and keeps new writes from starting while the guard
/// lives: taken by a deliberate exit that must leave requests.csv in whole rows.
pub fn hold_writes() -> MutexGuard<'static, ()> {
    WRITING.lock().unwrap_or_else(|p| p.into_inner())
}

/// Starts the collector; join it for the [`Stats`] once every sender is dropped.
pub fn spawn(
    rx: Receiver<Vec<Outcome>>,
    csv: &Path,
    layout: Layout,
    forwarders: usize,
    progress: ProgressBar,
) -> std::io::Result<JoinHandle<std::io::Result<Stats>>> {
    let mut file = File::create(csv)?;
    file.write_all(format!("{CSV_HEADER}\n").as_bytes())?;
    std::thread::Builder::new()
        .name("collector".into())
        .spawn(move || {
            let mut stats = Stats::new(layout.machines.len(), forwarders);
            let rows = Rows::new(&layout);
            let mut buf: Vec<u8> = Vec::with_capacity(FLUSH_BYTES + 4096);
            let mut write_error: Option<std::io::Error> = None;
            let mut last_flush = Instant::now();
            let mut flush = |buf: &mut Vec<u8>, err: &mut Option<std::io::Error>| {
                if err.is_none() && !buf.is_empty() {
                    let _whole_rows = hold_writes();
                    if let Err(e) = file.write_all(buf) {
                        *err = Some(e);
                    }
                }
                buf.clear();
            };
            loop {
                let wait = FLUSH_EVERY.saturating_sub(last_flush.elapsed());
                match rx.recv_timeout(wait) {
                    Ok(batch) => {
                        for o in &batch {
                            stats.record(o);
                            rows.write(&mut buf, o);
                        }
                        progress.inc(batch.len() as u64);
                        if buf.len() >= FLUSH_BYTES {
                            flush(&mut buf, &mut write_error);
                            last_flush = Instant::now();
                        }
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => break,
                }
                if last_flush.elapsed() >= FLUSH_EVERY {
                    flush(&mut buf, &mut write_error);
                    last_flush = Instant::now();
                }
            }
            flush(&mut buf, &mut write_error);
            progress.finish_and_clear();
            match write_error {
                Some(e) => Err(e),
                None => Ok(stats),
            }
        })
}

/// What every row needs besides the outcome, prepared once.
struct Rows {
    paths: Vec<String>,
    machines: Vec<(String, String)>,
    layout: Layout,
}

impl Rows {
    fn new(layout: &Layout) -> Rows {
        Rows {
            paths: (0..layout.target_count())
                .map(|i| layout.path(layout.target_at(i)))
                .collect(),
            machines: layout
                .machines
                .iter()
                .map(|m| (m.region.clone(), m.index.to_string()))
                .collect(),
            layout: layout.clone(),
        }
    }

    fn write(&self, buf: &mut Vec<u8>, o: &Outcome) {
        let mut ints = itoa::Buffer::new();
        buf.extend_from_slice(ints.format(o.id).as_bytes());
        buf.push(b',');
        if let Some(f) = o.forwarder {
            buf.extend_from_slice(ints.format(f).as_bytes());
        }
        buf.push(b',');
        if o.attempts > 0 || o.forwarder.is_some() {
            buf.extend_from_slice(self.paths[self.layout.target_index(o.target)].as_bytes());
        }
        buf.push(b',');
        if let Some((region, index)) = o.machine.and_then(|m| self.machines.get(m as usize)) {
            buf.extend_from_slice(region.as_bytes());
            buf.push(b',');
            buf.extend_from_slice(index.as_bytes());
        } else {
            buf.push(b',');
        }
        buf.push(b',');
        buf.extend_from_slice(ints.format(o.attempts).as_bytes());
        buf.push(b',');
        buf.extend_from_slice(o.kind.class().as_bytes());
        for v in [o.start_ms, o.end_ms, o.sent_ms, o.end_ms - o.sent_ms] {
            buf.push(b',');
            fixed2(buf, v);
        }
        for v in [o.response_time, o.work_time] {
            buf.push(b',');
            if let Some(v) = v {
                buf.extend_from_slice(ints.format(v).as_bytes());
            }
        }
        buf.push(b'\n');
    }
}

/// `v` with two decimals (empty when not finite).
fn fixed2(buf: &mut Vec<u8>, v: f64) {
    if !v.is_finite() || v.abs() > 9e15 {
        return;
    }
    let hundredths = (v * 100.0).round() as i64;
    if hundredths < 0 {
        buf.push(b'-');
    }
    let h = hundredths.unsigned_abs();
    let mut ints = itoa::Buffer::new();
    buf.extend_from_slice(ints.format(h / 100).as_bytes());
    buf.push(b'.');
    let frac = h % 100;
    buf.push(b'0' + (frac / 10) as u8);
    buf.push(b'0' + (frac % 10) as u8);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::Target;
    use crate::outcome::{Failure, OutcomeKind};

    fn row(o: &Outcome) -> String {
        let mut buf = Vec::new();
        Rows::new(&Layout::documented()).write(&mut buf, o);
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn rows_match_the_header_and_format_times_with_two_decimals() {
        let o = Outcome {
            id: 7,
            forwarder: Some(1),
            target: Target::Machine(2),
            machine: Some(2),
            attempts: 1,
            kind: OutcomeKind::Ok,
            start_ms: 0.0,
            sent_ms: 12.345,
            end_ms: 400.5,
            response_time: Some(5_000_000_000),
            work_time: Some(19),
        };
        let r = row(&o);
        assert_eq!(
            r,
            "7,1,/work/emea/0,emea,0,1,ok,0.00,400.50,12.35,388.16,5000000000,19\n"
        );
        assert_eq!(
            r.trim_end().split(',').count(),
            CSV_HEADER.split(',').count()
        );
        let failed = Outcome {
            kind: OutcomeKind::Failed(Failure::Status(503)),
            machine: None,
            response_time: None,
            work_time: None,
            ..o
        };
        assert_eq!(
            row(&failed),
            "7,1,/work/emea/0,,,1,http_503,0.00,400.50,12.35,388.16,,\n"
        );
    }

    #[test]
    fn fixed_point_handles_signs_and_rounding() {
        for (v, s) in [
            (0.0, "0.00"),
            (-1.234, "-1.23"),
            (0.005, "0.01"),
            (99.999, "100.00"),
        ] {
            let mut b = Vec::new();
            fixed2(&mut b, v);
            assert_eq!(String::from_utf8(b).unwrap(), s, "{v}");
        }
        let mut b = Vec::new();
        fixed2(&mut b, f64::NAN);
        assert!(b.is_empty());
    }
}
