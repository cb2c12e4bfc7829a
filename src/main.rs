//! The `cmdunit` binary: parse the command line, hand off to the library, map the outcome to an
//! exit code (0 success, 1 run failed, 2 usage error). Everything else lives in the library.

fn main() -> std::process::ExitCode {
    cmdunit::cli::main()
}
