//! sled storage: the MQTT outbox, and the history (see [`super::history`] for its time buckets
//! and retention).
//!
//! Trees:
//! - `h/alerts/<bucket>`: key `ts_ms (u64 BE) ++ seq (u64 BE)`, value the alert JSON. History,
//!   for `netwarden alerts`; dropped whole by retention.
//! - `outbox`: key `seq (u64 BE)`, value [`OutboxEntry`]. An alert enters the history and the
//!   outbox in one transaction, which is flushed to disk before the alert is published; it leaves
//!   the outbox only after the broker's PUBACK and the ack hold ([`super::mqtt`]). `seq` comes from sled's persistent id generator,
//!   so it keeps increasing across restarts and the outbox replays in order.
//!
//! - `h/series/<bucket>`: key `target ++ 0x00 ++ if_name ++ 0x00 ++ ts_ms (u64 BE)`, value 28 bytes:
//!   `if_index (u32 BE) ++ step_ms (u64 BE) ++ in_bps (f64 BE) ++ out_bps (f64 BE)`, NaN for an
//!   unknown direction. One [`RateSample`] per SNMP interface per poll step; keyed by interface
//!   name so a renumbered interface keeps its series, and by time so a range query is one scan.
//!   Pruned by age (`snmp.series_retention_hours`, whole buckets) and by history retention.
//!
//! The outbox is capped (`store.outbox_max_alerts`). When full, the oldest alert that is not
//! `high` leaves it; only when every waiting alert is `high` does the oldest `high` one go. A
//! dropped alert stays in the history (`netwarden alerts`); drops are counted in
//! `outbox_dropped_full` and summarised in `meta`/`outbox_overflow` ([`OverflowReport`]), which
//! the MQTT task publishes retained on `<prefix>/status/outbox`. The seqs of waiting non-high
//! entries are indexed in memory (8 bytes each, bounded by the cap) so that an eviction does
//! not scan the outbox.
//!
//! One job per file: [`outbox`] (entries awaiting a PUBACK, the cap and its eviction order),
//! [`alerts`] (the alert history and its group commit with the outbox), [`series`] (SNMP rate
//! samples), [`recovery`] (a database that does not open). This file opens the store.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicUsize;
use std::sync::Mutex;

use super::history::{History, HistoryConfig, HistoryError};

mod alerts;
pub mod config;
mod eve;
mod learning;
mod outbox;
mod recovery;
mod samples;
mod series;
mod templates;

pub use eve::WindowRow;
pub use outbox::{OutboxEntry, OverflowReport};
pub use recovery::Recovery;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the database in {path}: another netwarden is running with this data directory (sled holds a lock on it); stop it or use another --data-dir")]
    Locked { path: PathBuf },
    #[error("cannot open the database in {path}: {error}")]
    Open { path: PathBuf, error: sled::Error },
    #[error("database error: {0}")]
    Sled(sled::Error),
    #[error("stored record is not valid: {0}")]
    Corrupt(serde_json::Error),
    #[error("stored series record is not valid ({len} bytes)")]
    BadSeriesRecord { len: usize },
    #[error(transparent)]
    History(#[from] HistoryError),
}

// The messages above include their cause, so it is not also a `source` (a `{:#}` chain would
// print it twice); `?` still converts.
impl From<sled::Error> for StoreError {
    fn from(e: sled::Error) -> Self {
        StoreError::Sled(e)
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        StoreError::Corrupt(e)
    }
}

/// How long `open` waits for a lock held by a store that is still closing.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

#[derive(Debug)]
pub struct Store {
    db: sled::Db,
    history: History,
    outbox: sled::Tree,
    meta: sled::Tree,
    outbox_len: AtomicUsize,
    outbox_cap: usize,
    /// Set when this start replaced a database that could not be opened.
    recovery: Option<recovery::Recovery>,
    /// Seqs of outbox entries that are not `high`: the eviction candidates, oldest first.
    low: Mutex<BTreeSet<u64>>,
    overflow: Mutex<OverflowReport>,
    /// Alerts published without a history entry (their bucket was being dropped).
    alerts_outside_history: std::sync::atomic::AtomicU64,
}

impl Store {
    /// Opens the store with the default history retention.
    pub fn open(dir: &Path, cache_bytes: u64, outbox_cap: usize) -> Result<Store, StoreError> {
        Store::open_with(dir, cache_bytes, outbox_cap, HistoryConfig::default())
    }

    pub fn open_with(
        dir: &Path,
        cache_bytes: u64,
        outbox_cap: usize,
        history: HistoryConfig,
    ) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Open {
            path: dir.to_path_buf(),
            error: e.into(),
        })?;
        let path = dir.join("db");
        // A database that fails to open (or makes sled panic) is moved aside and replaced by a
        // fresh one, into which whatever alerts and outbox entries can still be read from the
        // old files are copied back (recovery.rs). "Locked" and I/O errors are not that.
        let (db, outbox, history, broken) =
            match recovery::catch(|| open_parts(&path, cache_bytes, history.clone())) {
                Ok(parts) => {
                    let (db, outbox, history) = parts?;
                    (db, outbox, history, None)
                }
                Err(reason) => {
                    let moved = recovery::move_aside(dir, &path, &reason)?;
                    let (db, outbox, history) = open_parts(&path, cache_bytes, history)?;
                    (db, outbox, history, Some((moved, reason)))
                }
            };
        let meta = db.open_tree("meta")?;
        let index = outbox::load_index(&outbox, &meta, outbox_cap.max(1))?;
        let store = Store {
            db,
            history,
            outbox,
            meta,
            outbox_len: AtomicUsize::new(index.len),
            outbox_cap: outbox_cap.max(1),
            recovery: None,
            low: Mutex::new(index.low),
            overflow: Mutex::new(index.overflow),
            alerts_outside_history: std::sync::atomic::AtomicU64::new(0),
        };
        match broken {
            None => Ok(store),
            Some((moved, reason)) => store.recover_from(dir, &moved, &reason),
        }
    }

    /// Flow summaries, score summaries, retention: the bucketed history.
    pub fn history(&self) -> &History {
        &self.history
    }

    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        self.history.flush()?;
        Ok(())
    }
}

/// Opens sled at `path` (waiting briefly for a lock held by a store that is closing) and the
/// trees the store needs.
fn open_parts(
    path: &Path,
    cache_bytes: u64,
    history: HistoryConfig,
) -> Result<(sled::Db, sled::Tree, History), StoreError> {
    {
        let path = path.to_path_buf();
        // sled's background flusher keeps the file lock for a moment after the last handle
        // drops, so a restart (or `netwarden alerts` right after a stop) retries briefly
        // before calling the store locked by another process.
        let deadline = std::time::Instant::now() + LOCK_WAIT;
        let db = loop {
            let opened = sled::Config::new()
                .path(&path)
                .cache_capacity(cache_bytes)
                .open()
                .map_err(|error| match &error {
                    sled::Error::Io(io)
                        if io.kind() == std::io::ErrorKind::WouldBlock
                            || io.to_string().contains("lock") =>
                    {
                        StoreError::Locked { path: path.clone() }
                    }
                    _ => StoreError::Open {
                        path: path.clone(),
                        error,
                    },
                });
            match opened {
                Err(StoreError::Locked { .. }) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                other => break other?,
            }
        };
        let outbox = db.open_tree("outbox")?;
        let history = History::open(db.clone(), &path, history)?;
        Ok((db, outbox, history))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{Alert, FlowSubject, ModelRef, Subject};

    #[test]
    fn a_store_error_chain_names_its_cause_once() {
        let cause = serde_json::from_str::<u8>("x").expect_err("not JSON");
        let shown = cause.to_string();
        for e in [
            StoreError::from(serde_json::from_str::<u8>("x").expect_err("not JSON")),
            StoreError::History(HistoryError::from(
                serde_json::from_str::<u8>("x").expect_err("not JSON"),
            )),
        ] {
            let chain = format!("{:#}", anyhow::Error::from(e));
            assert_eq!(chain.matches(&shown).count(), 1, "{chain}");
        }
    }

    /// A flow alert with id `id-{n}` at `1000 + n` ms (used by the tests of every file here).
    pub(super) fn alert(n: u64, severity: &str) -> Alert {
        Alert {
            id: format!("id-{n}"),
            ts_ms: 1000 + n,
            ts: String::new(),
            site: "s".into(),
            device: "d".into(),
            detector: "flow_ae".into(),
            model: ModelRef {
                name: "m".into(),
                version: "1".into(),
            },
            severity: severity.into(),
            score: 1.0,
            threshold: 0.5,
            subject: Subject::Flow(FlowSubject {
                exporter: "e".into(),
                src_addr: "a".into(),
                dst_addr: "b".into(),
                src_port: 1,
                dst_port: 2,
                protocol: 6,
                flow_first_ms: 0,
                flow_last_ms: 0,
            }),
            top_features: vec![],
            suppressed_since_last: 0,
            rule: None,
            summary: String::new(),
            incident: None,
        }
    }

    #[test]
    fn second_open_of_the_same_dir_says_locked() {
        let dir = tempfile::tempdir().expect("tmp");
        let _s = Store::open(dir.path(), 1 << 20, 3).expect("open");
        let err = Store::open(dir.path(), 1 << 20, 3).expect_err("locked");
        assert!(
            err.to_string().contains("another netwarden is running"),
            "{err}"
        );
    }
}
