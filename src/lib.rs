//! cmdunit: decides how N requests should be spread over a multi-region service behind one or more
//! forwarding units, does it, and proves the decision with measurements and charts.
//!
//! Layout, down the data path of `cmdunit 800` (each layer imports only the ones above it in
//! this list; the emulator and the evaluation lab stand beside it and import from it, never the
//! reverse):
//! - vocabulary: [`endpoint`] (machines, layout, targets, the answer), [`timescale`] (model and
//!   wall time), [`outcome`] (what became of a job), [`usage`] (input checks), [`files`].
//! - [`client`]: one blocking HTTP agent per thread behind a small transport trait.
//! - [`calibrate`]: what is known of a system — online estimates from answers, the calibration
//!   pass, saved files and the cache; [`bound`]: the lower bound those figures imply.
//! - [`policy`]: one trait, one file per policy family; `auto` is the closed-loop controller.
//! - [`dispatch`]: agent threads, one lock, retries, ejection, hedges.
//! - [`collect`], [`stats`]: the collector thread, requests.csv, bounded-memory statistics.
//! - [`summary`], [`printer`], [`plot`]: the summary schema, the output formats, the charts.
//! - [`run`]: one batch end to end, and the commands around it; [`cli`]: the command line.
//! - beside: [`emulator`] (the system to test against), [`limits`] and [`report`] (the lab).

pub mod bound;
pub mod calibrate;
pub mod cli;
pub mod client;
pub mod collect;
pub mod dispatch;
pub mod emulator;
pub mod endpoint;
pub mod files;
pub mod limits;
pub mod numbers;
pub mod outcome;
pub mod plot;
pub mod policy;
pub mod printer;
pub mod report;
pub mod run;
pub mod stats;
pub mod summary;
pub mod timescale;
pub mod usage;
