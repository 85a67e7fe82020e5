//! Flag groups shared by several commands, flattened into each (`#[command(flatten)]`), so a
//! flag is declared, documented and parsed once.

use std::path::PathBuf;

use netwarden_firmware::SeriesParams;

use crate::records::time::parse_time;
use crate::sinks::history::TimeRange;

/// The data directory of a stopped daemon, read by the offline query commands (sled locks the
/// database while the daemon runs).
#[derive(Debug, Clone, clap::Args)]
pub struct DataDirArgs {
    #[arg(
        long,
        value_name = "DIR",
        default_value = "./netwarden-data",
        global = true
    )]
    pub data_dir: PathBuf,
}

/// A time range: `--since`/`--until` take a duration back from now (2h, 7d), Unix ms, or an
/// RFC 3339 time (the HTTP API's forms, [`crate::records::time`]); the newest `--limit` records
/// are shown.
#[derive(Debug, Clone, clap::Args)]
pub struct RangeArgs {
    /// From this time on (e.g. 2h, 7d, 2026-11-23T00:00:00Z); default: everything kept.
    #[arg(long)]
    pub since: Option<String>,
    /// Before this time (same forms); default: now and later.
    #[arg(long)]
    pub until: Option<String>,
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
}

impl RangeArgs {
    pub fn range(&self, now_ms: u64) -> anyhow::Result<TimeRange> {
        Ok(TimeRange {
            from_ms: time_flag("since", self.since.as_deref(), now_ms)?.unwrap_or(0),
            to_ms: time_flag("until", self.until.as_deref(), now_ms)?.unwrap_or(u64::MAX),
            limit: self.limit,
        })
    }
}

/// A time flag's value in Unix ms; the error names the flag.
pub fn time_flag(flag: &str, value: Option<&str>, now_ms: u64) -> anyhow::Result<Option<u64>> {
    value
        .map(|v| parse_time(v, now_ms).map_err(|e| anyhow::anyhow!("--{flag}: {e}")))
        .transpose()
}

/// `--json`: one JSON object per line instead of a table.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct JsonArgs {
    /// One JSON object per line instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// How rate samples become series-v1 rows; training and serving must agree.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct SeriesArgs {
    /// Seconds added to UTC before taking hour and day of week (the site's local time).
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    pub utc_offset_secs: i32,
    /// Unknown steps in a row tolerated before an interface's window restarts.
    #[arg(long, default_value_t = SeriesParams::DEFAULT.max_unknown_steps)]
    pub max_unknown_steps: u16,
}

impl SeriesArgs {
    pub fn params(self) -> SeriesParams {
        SeriesParams {
            utc_offset_s: self.utc_offset_secs,
            max_unknown_steps: self.max_unknown_steps,
            ..SeriesParams::DEFAULT
        }
    }
}
