//! History in sled, bounded by age and by disk size.
//!
//! sled 0.34 never shrinks its files: deleting keys (or dropping trees) frees space inside them
//! for later writes, but the files keep their high-water size, and under steady churn they kept
//! growing in our replay (docs/retention.md). So history is written into time buckets of
//! `bucket` (default an hour) of wall-clock time, and retention removes whole buckets:
//! - flow summaries, scores and SNMP series live in one small sled database per bucket
//!   (`<data_dir>/history/<start ms, 13 digits>/`); dropping the bucket closes it and deletes
//!   the directory, so the space goes back to the file system at once;
//! - alerts stay in the main database as one tree per bucket (`h/alerts/<start>`), because they
//!   share a transaction with their outbox entry; they are few, and their tree is dropped with
//!   the bucket.
//!
//! Retention ([`History::enforce`]): buckets that ended more than `max_age` ago go; then, while
//! the live bytes exceed a budget (a quarter of `max_disk_bytes` at start, shrinking while the
//! measured disk use stays near the cap and grows) or the disk use exceeds the cap, the oldest
//! bucket goes. The newest bucket is never dropped for size. The MQTT outbox (`outbox` tree,
//! [`super::store`]) is never touched: alerts that await a PUBACK have their own cap.
//!
//! Keys within a bucket ([`keys`]):
//! - `alerts`: `ts_ms (u64 BE) ++ seq (u64 BE)`, the alert JSON;
//! - `flows`: `ts_ms ++ seq`, a [`FlowSummary`](crate::records::FlowSummary) JSON per summary
//!   interval (default a minute);
//! - `scores`: `ts_ms ++ seq`, a [`ScoreSummary`](crate::records::ScoreSummary) JSON (flow
//!   detector: per interval; series detector: per interface window scored);
//! - `series`: `target 0 if_name 0 ts_ms`, 28 bytes per SNMP rate sample (see the store).
//!
//! One job per file: [`config`] (retention settings), [`keys`] (kinds, tree names, record
//! keys), [`buckets`] (opening, finding and closing bucket databases), [`queries`] (appending
//! and range-reading records), [`retention`] (dropping buckets by age and size).

mod buckets;
mod config;
mod keys;
mod queries;
mod retention;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::Mutex;

pub use config::HistoryConfig;
pub use keys::{time_key, Kind};
pub use queries::TimeRange;
pub use retention::{dir_disk_bytes, HistoryStats, RetentionReport};

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("database error: {0}")]
    Sled(sled::Error),
    #[error("stored record is not valid: {0}")]
    Corrupt(serde_json::Error),
}

// The messages above include their cause, so it is not also a `source` (a `{:#}` chain would
// print it twice); `?` still converts.
impl From<sled::Error> for HistoryError {
    fn from(e: sled::Error) -> Self {
        HistoryError::Sled(e)
    }
}

impl From<serde_json::Error> for HistoryError {
    fn from(e: serde_json::Error) -> Self {
        HistoryError::Corrupt(e)
    }
}

/// History in time buckets: alerts as trees of the main database (they share a transaction
/// with the outbox), everything else in one sled database per bucket under `history/`.
#[derive(Debug)]
pub struct History {
    db: sled::Db,
    /// The main database's directory and the bucket databases' parent (both measured).
    db_dir: PathBuf,
    hist_dir: PathBuf,
    cfg: HistoryConfig,
    bucket_ms: u64,
    buckets: Mutex<BTreeMap<u64, buckets::Bucket>>,
    /// Use counter for closing the least recently used bucket databases.
    tick: AtomicU64,
    live_budget: AtomicU64,
    dropped_age: AtomicU64,
    dropped_size: AtomicU64,
    disk_bytes: AtomicU64,
}

#[cfg(test)]
mod tests {
    //! Helpers shared by the tests of every file of this module.
    use std::path::Path;

    use super::{History, HistoryConfig};
    use crate::records::ScoreSummary;

    pub(super) fn open(dir: &Path, cfg: HistoryConfig) -> History {
        let db = sled::Config::new()
            .path(dir.join("db"))
            .cache_capacity(1 << 20)
            .open()
            .expect("sled");
        History::open(db, &dir.join("db"), cfg).expect("history")
    }

    pub(super) fn score(ts_ms: u64, detector: &str) -> ScoreSummary {
        ScoreSummary {
            ts_ms,
            detector: detector.into(),
            model: "m@1".into(),
            subject: "flows".into(),
            count: 10,
            anomalous: 1,
            mean_error: 0.1,
            max_error: 0.9,
            threshold: 0.5,
        }
    }

    pub(super) const MIN: u64 = 60_000;
}
