//! Ctrl-C and SIGTERM: the first one stops sending, lets what is in flight finish and writes
//! everything (a run stopped by a supervisor is summarized like one stopped by hand); a second
//! one quits at once, leaving whole rows in requests.csv (`cmdunit summarize DIR` rebuilds the
//! summary from them).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

/// The process's stop flag, installed once.
pub fn stop_flag() -> Arc<AtomicBool> {
    static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();
    FLAG.get_or_init(|| {
        let flag = Arc::new(AtomicBool::new(false));
        let f = flag.clone();
        // The `termination` feature makes the handler catch SIGTERM and SIGHUP too.
        let _ = ctrlc::set_handler(move || {
            if f.swap(true, Ordering::SeqCst) {
                std::process::exit(130);
            }
            eprintln!(
                "\nstopping: no new requests; waiting for those in flight (again to quit now)"
            );
        });
        flag
    })
    .clone()
}
