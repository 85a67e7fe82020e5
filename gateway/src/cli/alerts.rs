//! `netwarden alerts`: stored alerts in a time range (the daemon must not be running on the same
//! data directory: sled locks it).

use std::path::Path;
use std::process::ExitCode;

use super::args::{DataDirArgs, JsonArgs, RangeArgs};
use super::history::open;
use crate::sinks::history::TimeRange;
use crate::sinks::store::StoreError;

#[derive(Debug, clap::Args)]
pub struct AlertsArgs {
    #[command(flatten)]
    pub data: DataDirArgs,
    #[command(flatten)]
    pub range: RangeArgs,
    /// Only alerts of this severity (medium, high).
    #[arg(long)]
    pub severity: Option<String>,
    #[command(flatten)]
    pub output: JsonArgs,
}

pub fn execute(args: AlertsArgs) -> anyhow::Result<ExitCode> {
    let range = args.range.range(crate::now_ms())?;
    let json = args.output.json;
    let n = list_alerts(&args.data.data_dir, &range, args.severity.as_deref(), json)?;
    if !json {
        eprintln!("{n} alert(s)");
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints the stored alerts in `range`, oldest first; returns how many.
pub fn list_alerts(
    data_dir: &Path,
    range: &TimeRange,
    severity: Option<&str>,
    json: bool,
) -> Result<usize, StoreError> {
    let store = open(data_dir)?;
    let alerts = store.alerts_in(range, severity)?;
    for a in &alerts {
        if json {
            println!("{}", serde_json::to_string(a)?);
        } else {
            println!("{}  {:<6}  {}  {}", a.ts, a.severity, a.id, a.summary);
        }
    }
    Ok(alerts.len())
}
