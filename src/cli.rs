//! The command line: which subcommand, and how its outcome maps to an exit code (0 success,
//! 1 the run failed, 2 a bad command line). Each subcommand's arguments live beside the code
//! that runs it; this file only dispatches.

use crate::usage::UsageError;
use clap::{Parser, Subcommand};
use std::process::ExitCode;
use std::time::Instant;

#[derive(Debug, Parser)]
#[command(
    name = "cmdunit",
    version,
    about = "Spread N requests over a multi-region service as fast as it allows, and prove it",
    long_about = "Spread N requests over a multi-region service as fast as it allows, and prove it.\n\n\
        `cmdunit N` sends N requests through the forwarding unit(s), learning the system from \
        the answers as they come (and from the last run against it), and writes requests.csv, \
        summary.json and charts to a run folder. `--emulate` runs against the embedded emulator.",
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub run: crate::run::args::RunArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the emulated forwarding unit(s) and their workers.
    Serve(crate::emulator::serve::ServeArgs),
    /// List every policy, what it does and when it wins.
    Policies,
    /// Measure a system thoroughly and save it where the next batches find it.
    Calibrate(crate::run::calibrate_cmd::CalibrateArgs),
    /// The lower bound of a batch of N on an emulated topology or a calibrated system.
    Bound(crate::run::bound_cmd::BoundArgs),
    /// Rebuild a run folder's summary.json from its requests.csv (e.g. after a kill).
    Summarize(crate::run::summarize::SummarizeArgs),
    /// Measure the system's limits and answer the eight questions.
    Limits(crate::limits::LimitsArgs),
    /// Build charts, REPORT.md and report.pdf from the files under results/.
    Report(crate::report::ReportArgs),
}

pub fn main() -> ExitCode {
    let started = Instant::now();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let result = match cli.command {
        Some(Command::Serve(args)) => crate::emulator::serve::run(args),
        Some(Command::Policies) => {
            for (name, what) in crate::policy::ALL {
                println!("{name:<18} {what}");
            }
            Ok(())
        }
        Some(Command::Calibrate(args)) => crate::run::calibrate_cmd::run(args),
        Some(Command::Bound(args)) => crate::run::bound_cmd::run(args),
        Some(Command::Summarize(args)) => crate::run::summarize::run(args),
        Some(Command::Limits(args)) => crate::limits::run(args),
        Some(Command::Report(args)) => crate::report::run(args),
        None => crate::run::args::run(cli.run, started),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let usage = e.downcast_ref::<UsageError>().is_some()
                || matches!(
                    e.downcast_ref::<crate::run::RunError>(),
                    Some(crate::run::RunError::Usage(_))
                );
            eprintln!("error: {}", one_line(&e));
            ExitCode::from(if usage { 2 } else { 1 })
        }
    }
}

/// The error and its causes on one line. Library errors already name their cause in their own
/// message (`cannot write X: Permission denied`), so a cause is added only when it says more.
fn one_line(e: &anyhow::Error) -> String {
    let mut line = e.to_string();
    for cause in e.chain().skip(1) {
        let cause = cause.to_string();
        if !line.contains(&cause) {
            line.push_str(": ");
            line.push_str(&cause);
        }
    }
    line.replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::one_line;

    #[test]
    fn causes_already_in_the_message_are_not_repeated() {
        let io = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "Permission denied");
        let e = anyhow::Error::new(io).context("cannot write out/summary.json: Permission denied");
        assert_eq!(
            one_line(&e),
            "cannot write out/summary.json: Permission denied"
        );
        let e = anyhow::anyhow!("disk full").context("cannot save the run");
        assert_eq!(one_line(&e), "cannot save the run: disk full");
    }
}
