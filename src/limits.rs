//! `cmdunit limits`. To be written.
#[derive(Debug, clap::Args)]
pub struct LimitsArgs {}

pub fn run(_args: LimitsArgs) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}
