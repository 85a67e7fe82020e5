//! `netwarden history ...`: time-range queries over the stored history
//! (the daemon must not be running on the same data directory: sled locks it).

use std::path::Path;
use std::process::ExitCode;

use super::args::{DataDirArgs, JsonArgs, RangeArgs};
use crate::sinks::history::TimeRange;
use crate::sinks::store::{Store, StoreError};

#[derive(Debug, clap::Args)]
pub struct HistoryArgs {
    #[command(flatten)]
    pub data: DataDirArgs,
    #[command(subcommand)]
    pub command: HistoryCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum HistoryCommand {
    /// Flow summaries (per `history.summary_interval`: totals and the busiest sources).
    Flows {
        #[command(flatten)]
        range: RangeArgs,
        #[command(flatten)]
        output: JsonArgs,
    },
    /// Detector scores (flow detector per interval, series detector per interface window).
    Scores {
        #[command(flatten)]
        range: RangeArgs,
        /// Only this detector (flow_ae, series_lstm).
        #[arg(long)]
        detector: Option<String>,
        #[command(flatten)]
        output: JsonArgs,
    },
    /// SNMP rate samples of one interface; without --target/--if, lists the stored series.
    Series {
        #[arg(long)]
        target: Option<String>,
        /// Interface name (ifName, else ifDescr).
        #[arg(long = "if", value_name = "IF_NAME")]
        if_name: Option<String>,
        #[command(flatten)]
        range: RangeArgs,
        #[command(flatten)]
        output: JsonArgs,
    },
    /// Buckets, live and on-disk bytes.
    Status,
}

pub fn execute(args: HistoryArgs) -> anyhow::Result<ExitCode> {
    let dir = &args.data.data_dir;
    let now = crate::now_ms();
    let (n, what) = match args.command {
        HistoryCommand::Flows { range, output } => (
            flows(dir, &range.range(now)?, output.json)?,
            "flow summaries",
        ),
        HistoryCommand::Scores {
            range,
            detector,
            output,
        } => (
            scores(dir, &range.range(now)?, detector.as_deref(), output.json)?,
            "scores",
        ),
        HistoryCommand::Series {
            target,
            if_name,
            range,
            output,
        } => (
            series(
                dir,
                target.as_deref(),
                if_name.as_deref(),
                &range.range(now)?,
                output.json,
            )?,
            "series rows",
        ),
        HistoryCommand::Status => {
            status(dir)?;
            return Ok(ExitCode::SUCCESS);
        }
    };
    eprintln!("{n} {what}");
    Ok(ExitCode::SUCCESS)
}

pub(super) fn open(data_dir: &Path) -> Result<Store, StoreError> {
    Store::open(data_dir, 1 << 20, usize::MAX)
}

pub(super) fn time(ts_ms: u64) -> String {
    humantime::format_rfc3339_seconds(
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(ts_ms),
    )
    .to_string()
}

/// `netwarden history flows`: flow summaries, oldest first.
pub fn flows(data_dir: &Path, range: &TimeRange, json: bool) -> Result<usize, StoreError> {
    let store = open(data_dir)?;
    let rows = store.history().flow_summaries(range)?;
    for f in &rows {
        if json {
            println!("{}", serde_json::to_string(f)?);
            continue;
        }
        let top: Vec<String> = f
            .top_sources
            .iter()
            .take(3)
            .map(|h| format!("{} {} B", h.addr, h.bytes))
            .collect();
        println!(
            "{}  {:>7} flows {:>12} bytes {:>5} anomalous {:>5} hosts  top: {}",
            time(f.ts_ms),
            f.flows,
            f.bytes,
            f.anomalous,
            f.hosts,
            top.join(", ")
        );
    }
    Ok(rows.len())
}

/// `netwarden history scores`: score summaries, oldest first.
pub fn scores(
    data_dir: &Path,
    range: &TimeRange,
    detector: Option<&str>,
    json: bool,
) -> Result<usize, StoreError> {
    let store = open(data_dir)?;
    let rows = store.history().scores(range, detector)?;
    for s in &rows {
        if json {
            println!("{}", serde_json::to_string(s)?);
        } else {
            println!(
                "{}  {:<11} {:<24} n={:<6} anomalous={:<5} mean={:.4} max={:.4} threshold={:.4}",
                time(s.ts_ms),
                s.detector,
                s.subject,
                s.count,
                s.anomalous,
                s.mean_error,
                s.max_error,
                s.threshold
            );
        }
    }
    Ok(rows.len())
}

/// `netwarden history series`: one interface's rate samples, or (without `target`/`if_name`)
/// every stored series.
pub fn series(
    data_dir: &Path,
    target: Option<&str>,
    if_name: Option<&str>,
    range: &TimeRange,
    json: bool,
) -> Result<usize, StoreError> {
    let store = open(data_dir)?;
    let (Some(target), Some(if_name)) = (target, if_name) else {
        let names = store.series_names()?;
        for (t, i) in &names {
            if target.is_none_or(|x| x == t) {
                println!("{t}  {i}");
            }
        }
        return Ok(names.len());
    };
    let mut rows = store.series(target, if_name, range.from_ms, range.to_ms)?;
    let skip = rows.len().saturating_sub(range.limit);
    rows.drain(..skip);
    let bps = |v: Option<f64>| v.map_or("unknown".to_string(), |x| format!("{x:.0}"));
    for s in &rows {
        if json {
            println!(
                "{}",
                serde_json::json!({"ts_ms": s.ts_ms, "target": s.target, "if_name": s.if_name,
                    "if_index": s.if_index, "step_ms": s.step_ms, "in_bps": s.in_bps,
                    "out_bps": s.out_bps})
            );
        } else {
            println!(
                "{}  in {:>14} bps  out {:>14} bps",
                time(s.ts_ms),
                bps(s.in_bps),
                bps(s.out_bps)
            );
        }
    }
    Ok(rows.len())
}

/// `netwarden history status`: buckets and sizes.
pub fn status(data_dir: &Path) -> Result<(), StoreError> {
    let store = open(data_dir)?;
    let h = store.history();
    let stats = h.stats();
    println!(
        "{} bucket(s), {} live bytes (estimate), {} bytes on disk, outbox {} alert(s)",
        stats.buckets,
        h.live_bytes(),
        h.disk_bytes(),
        store.outbox_len()
    );
    for (kind, start, bytes) in h.buckets() {
        println!("{:<7} {}  {:>12} bytes", kind.name(), time(start), bytes);
    }
    Ok(())
}
