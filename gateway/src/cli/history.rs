//! `netwarden alerts` and `netwarden history ...`: time-range queries over the stored history
//! (the daemon must not be running on the same data directory: sled locks it).

use std::path::Path;

use crate::sinks::history::TimeRange;
use crate::sinks::store::{Store, StoreError};

/// A `--since` / `--until` value: a duration back from `now_ms` ("2h", "7d", "90m") or a time
/// (RFC 3339, e.g. 2026-11-23T08:00:00Z).
pub fn parse_time(s: &str, now_ms: u64) -> Result<u64, String> {
    if let Ok(d) = humantime::parse_duration(s) {
        return Ok(now_ms.saturating_sub(d.as_millis() as u64));
    }
    humantime::parse_rfc3339_weak(s)
        .map_err(|_| format!("{s:?} is neither a duration (e.g. 2h, 7d) nor an RFC 3339 time"))
        .map(|t| {
            t.duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0)
        })
}

fn open(data_dir: &Path) -> Result<Store, StoreError> {
    Store::open(data_dir, 1 << 20, usize::MAX)
}

/// `netwarden alerts`: stored alerts in `range`, oldest first; returns how many.
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

fn time(ts_ms: u64) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_durations_back_or_rfc3339() {
        let now = 1_800_000_000_000;
        assert_eq!(parse_time("2h", now), Ok(now - 7_200_000));
        assert_eq!(parse_time("7d", now), Ok(now - 7 * 86_400_000));
        assert_eq!(
            parse_time("2026-11-23T00:00:00Z", now),
            Ok(1_795_392_000_000)
        );
        assert!(parse_time("yesterday", now).is_err());
    }
}
