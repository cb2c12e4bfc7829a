//! `cmdunit N`: one batch end to end. To be written.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Number of requests to send.
    pub n: Option<String>,
}

pub fn run(_args: RunArgs) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}
