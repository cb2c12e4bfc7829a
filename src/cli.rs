//! The command line: which subcommand, and how its outcome maps to an exit code.
//! Each subcommand's arguments live beside the code that runs it.

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "cmdunit",
    version,
    about = "Spread N requests over a multi-region service as fast as it allows, and prove it",
    long_about = "Spread N requests over a multi-region service as fast as it allows, and prove it.\n\n\
        `cmdunit N` calibrates, plans with a policy (default: auto), runs the batch against the \
        forwarding unit and writes requests.csv, summary.json and charts to a run folder.",
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub run: crate::run::RunArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the emulated forwarding unit(s) and their workers.
    Serve(crate::emulator::serve::ServeArgs),
    /// List every policy, what it does and when it wins.
    Policies,
    /// Measure the system's limits and answer the eight questions.
    Limits(crate::limits::LimitsArgs),
    /// Build charts, REPORT.md and report.pdf from the files under results/.
    Report(crate::report::ReportArgs),
}

pub use crate::usage::UsageError;

pub fn main() -> ExitCode {
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
        Some(Command::Limits(args)) => crate::limits::run(args),
        Some(Command::Report(args)) => crate::report::run(args),
        None => crate::run::run(cli.run),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let usage = e.downcast_ref::<UsageError>().is_some();
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
    line
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
