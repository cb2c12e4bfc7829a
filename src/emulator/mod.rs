//! The emulated forwarding unit and workers (issue 2). To be written.
pub mod serve;
pub mod topology;
