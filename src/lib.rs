//! cmdunit: decides how N requests should be spread over a multi-region service behind one or more
//! forwarding units, does it, and proves the decision with measurements and charts.
//!
//! Layout, by concern:
//! - [`emulator`]: the forwarding unit and its workers, calibrated to the measured 2021 system.
//! - [`endpoint`]: names of machines and the `/work` endpoints that reach them.
//! - [`client`]: one blocking HTTP agent per thread, and classification of each answer.
//! - [`calibrate`]: the probing pass that estimates latency, service time and ceilings.
//! - [`bound`]: the lower bound on a batch's makespan and a fluid model of the system.
//! - [`policy`]: one trait, one file per policy family; `auto` picks among them.
//! - [`dispatch`]: agent pools, job channels, retries, the collector thread.
//! - [`stats`], [`summary`], [`printer`], [`plot`]: numbers, their schema, their output.
//! - [`run`]: one batch end to end (`cmdunit N`).
//! - [`limits`], [`report`]: the evaluation lab.

pub mod bound;
pub mod calibrate;
pub mod cli;
pub mod client;
pub mod dispatch;
pub mod emulator;
pub mod endpoint;
pub mod limits;
pub mod plot;
pub mod policy;
pub mod printer;
pub mod report;
pub mod run;
pub mod stats;
pub mod summary;
pub mod usage;
