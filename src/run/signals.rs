//! Ctrl-C and SIGTERM: the first one stops sending, lets what is in flight finish and writes
//! everything (a run stopped by a supervisor is summarized like one stopped by hand); a second
//! one quits at once, leaving whole rows in requests.csv (`cmdunit summarize DIR` rebuilds the
//! summary from them).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

/// Whether the first signal says on stderr what it does (not with `--quiet`: a supervisor that
/// stops a quiet run reads the one `error:` line, nothing else).
static ANNOUNCE: AtomicBool = AtomicBool::new(true);

/// The process's stop flag, installed once; `announce` says whether stopping is told on stderr.
pub fn stop_flag(announce: bool) -> Arc<AtomicBool> {
    static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();
    ANNOUNCE.store(announce, Ordering::SeqCst);
    FLAG.get_or_init(|| {
        let flag = Arc::new(AtomicBool::new(false));
        let f = flag.clone();
        // The `termination` feature makes the handler catch SIGTERM and SIGHUP too.
        let _ = ctrlc::set_handler(move || {
            if f.swap(true, Ordering::SeqCst) {
                // Not in the middle of writing rows: requests.csv keeps whole rows only.
                let _rows = crate::collect::hold_writes();
                std::process::exit(130);
            }
            if ANNOUNCE.load(Ordering::SeqCst) {
                eprintln!(
                    "\nstopping: no new requests; waiting for those in flight (again to quit now)"
                );
            }
        });
        flag
    })
    .clone()
}
