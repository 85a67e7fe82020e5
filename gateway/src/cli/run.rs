//! `netwarden run`: the gateway daemon. Flags override the configuration file, which overrides
//! the defaults (no file needed: NetFlow on 0.0.0.0:2055, the built-in model).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use crate::config::{Config, Overrides};

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// TOML configuration (see docs/netwarden.example.toml); flags override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub overrides: Overrides,
}

pub fn execute(args: RunArgs) -> anyhow::Result<ExitCode> {
    let cfg =
        Config::load(args.config.as_deref(), &args.overrides).context("invalid configuration")?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(crate::runtime::run(cfg))?;
    Ok(ExitCode::SUCCESS)
}
