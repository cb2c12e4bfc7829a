//! `cmdunit bound N`: the lower bound of a batch of N, from an emulated topology's true
//! parameters or from a calibration file — what a benchmark compares wall times against.

use crate::calibrate::store;
use crate::emulator::topology::Topology;
use crate::usage::{parse_n, UsageError};
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct BoundArgs {
    /// Number of requests.
    #[arg(allow_negative_numbers = true)]
    pub n: Option<String>,
    /// A topology file (default: the measured 2021 system).
    #[arg(long, value_name = "FILE", conflicts_with = "calibration")]
    pub topology: Option<PathBuf>,
    /// Forwarding units over the topology's machines (1 to 64).
    #[arg(long, value_name = "K", default_value_t = 1)]
    pub forwarders: usize,
    /// A calibration file (e.g. from `cmdunit calibrate`) instead of a topology.
    #[arg(long, value_name = "FILE")]
    pub calibration: Option<PathBuf>,
    /// Output format: text or json.
    #[arg(long, value_enum, default_value_t = crate::printer::Format::Text)]
    pub format: crate::printer::Format,
}

/// `cmdunit bound N`.
pub fn run(args: BoundArgs) -> anyhow::Result<()> {
    let n = parse_n(args.n.as_deref(), super::MAX_N).map_err(UsageError)?;
    if args.forwarders == 0 || args.forwarders > 64 {
        return Err(UsageError("--forwarders must be between 1 and 64".into()).into());
    }
    let (cal, source) = match &args.calibration {
        Some(path) => (
            store::load(path).map_err(|e| UsageError(e.to_string()))?,
            "calibration",
        ),
        None => {
            let t = match &args.topology {
                Some(p) => Topology::load(p).map_err(|e| UsageError(e.to_string()))?,
                None => Topology::default(),
            };
            let urls: Vec<String> = (0..args.forwarders).map(|i| format!("unit{i}")).collect();
            (super::system::true_model(&t, &urls), "model")
        }
    };
    let b = crate::bound::lower_bound(n, &cal);
    match args.format {
        crate::printer::Format::Json => println!(
            "{}",
            serde_json::json!({
                "n": n,
                "lower_bound_ms": b.lower_bound_ms,
                "machines_bound_ms": b.machines_ms,
                "forwarders_bound_ms": b.forwarders_ms,
                "source": source,
            })
        ),
        _ => println!(
            "N = {n}: lower bound {:.1} ms (machines {:.1} ms, forwarding units {:.1} ms; from the {source})",
            b.lower_bound_ms, b.machines_ms, b.forwarders_ms
        ),
    }
    Ok(())
}
