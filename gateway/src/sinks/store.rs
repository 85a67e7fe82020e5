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

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;

use super::history::{History, HistoryConfig, HistoryError, Kind, TimeRange};
use crate::records::Alert;

pub mod config;
mod recovery;
use crate::records::RateSample;
pub use recovery::Recovery;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the database in {path}: another netwarden is running with this data directory (sled holds a lock on it); stop it or use another --data-dir")]
    Locked { path: PathBuf },
    #[error("cannot open the database in {path}: {error}")]
    Open { path: PathBuf, error: sled::Error },
    #[error("database error: {0}")]
    Sled(#[from] sled::Error),
    #[error("stored record is not valid: {0}")]
    Corrupt(#[from] serde_json::Error),
    #[error("stored series record is not valid ({len} bytes)")]
    BadSeriesRecord { len: usize },
    #[error(transparent)]
    History(#[from] HistoryError),
}

/// A message waiting for the broker's acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxEntry {
    pub topic: String,
    pub payload: String,
    pub high: bool,
}

/// Alerts that had to leave the full outbox unpublished, since the data directory was created.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverflowReport {
    pub dropped_total: u64,
    pub dropped_high: u64,
    pub dropped_other: u64,
    /// `ts_ms` of the newest dropped alert.
    pub last_dropped_alert_ts_ms: u64,
    /// When the last drop happened (gateway clock).
    pub last_drop_ms: u64,
    pub outbox_max_alerts: u64,
}

const OVERFLOW_KEY: &[u8] = b"outbox_overflow";

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
        let mut low = BTreeSet::new();
        let mut len = 0;
        for kv in outbox.iter() {
            let (k, v) = kv?;
            len += 1;
            let e: OutboxEntry = serde_json::from_slice(&v)?;
            if !e.high {
                if let Ok(seq) = <[u8; 8]>::try_from(&k[..]) {
                    low.insert(u64::from_be_bytes(seq));
                }
            }
        }
        let mut overflow: OverflowReport = match meta.get(OVERFLOW_KEY)? {
            Some(v) => serde_json::from_slice(&v)?,
            None => OverflowReport::default(),
        };
        overflow.outbox_max_alerts = outbox_cap.max(1) as u64;
        let store = Store {
            db,
            history,
            outbox,
            meta,
            outbox_len: AtomicUsize::new(len),
            outbox_cap: outbox_cap.max(1),
            recovery: None,
            low: Mutex::new(low),
            overflow: Mutex::new(overflow),
        };
        match broken {
            None => Ok(store),
            Some((moved, reason)) => store.recover_from(dir, &moved, &reason),
        }
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

impl Store {
    /// Records an alert in the history and the outbox, durably (flushed) before returning.
    /// Returns how many older alerts had to leave the full outbox.
    pub fn append_alert(&self, alert: &Alert, topic: &str) -> Result<u64, StoreError> {
        self.append_alerts(&[(alert, topic.to_string())])
    }

    /// Records several alerts with one transaction and one flush (a group commit: an alert
    /// storm from thousands of hosts must not cost an fsync each on the pipeline thread).
    /// Returns how many older alerts had to leave the full outbox.
    pub fn append_alerts(&self, alerts: &[(&Alert, String)]) -> Result<u64, StoreError> {
        let mut rows = Vec::with_capacity(alerts.len());
        for (alert, topic) in alerts {
            let json = serde_json::to_string(alert)?;
            let entry = serde_json::to_vec(&OutboxEntry {
                topic: topic.clone(),
                payload: json.clone(),
                high: alert.severity == "high",
            })?;
            let seq = self.db.generate_id()?;
            let akey = super::history::time_key(alert.ts_ms, seq);
            rows.push((akey, seq, json, entry, alert.ts_ms));
        }
        let dropped = self.make_room(rows.len())?;
        let low: Vec<u64> = rows
            .iter()
            .zip(alerts)
            .filter(|(_, (a, _))| a.severity != "high")
            .map(|(r, _)| r.1)
            .collect();
        // One transaction per history bucket the batch touches (almost always one).
        let mut rest = rows.as_slice();
        while let Some(first) = rest.first() {
            let start = self.history.bucket_start(first.4);
            let n = rest
                .iter()
                .take_while(|r| self.history.bucket_start(r.4) == start)
                .count();
            let (group, tail) = rest.split_at(n);
            let bucket = self.history.tree_for(Kind::Alerts, first.4)?;
            (&bucket, &self.outbox)
                .transaction(|(a, o)| {
                    for (akey, seq, json, entry, _) in group {
                        a.insert(&akey[..], json.as_bytes())?;
                        o.insert(&seq.to_be_bytes()[..], entry.as_slice())?;
                    }
                    Ok::<_, ConflictableTransactionError<()>>(())
                })
                .map_err(|e| match e {
                    TransactionError::Storage(s) => StoreError::Sled(s),
                    TransactionError::Abort(()) => {
                        StoreError::Sled(sled::Error::Unsupported("transaction aborted".into()))
                    }
                })?;
            for (akey, _, json, _, ts) in group {
                self.history
                    .account(Kind::Alerts, *ts, akey.len() + json.len());
            }
            self.outbox_len.fetch_add(group.len(), Ordering::Relaxed);
            rest = tail;
        }
        if let Ok(mut set) = self.low.lock() {
            set.extend(low);
        }
        self.db.flush()?;
        Ok(dropped)
    }

    /// Makes the outbox hold at most `cap - incoming` entries (a batch larger than the cap
    /// empties it and overshoots by the difference until the next append): the oldest entry
    /// that is not `high` goes first, then the oldest `high` one.
    fn make_room(&self, incoming: usize) -> Result<u64, StoreError> {
        let mut report = OverflowReport::default();
        while self.outbox_len.load(Ordering::Relaxed) > 0
            && self.outbox_len.load(Ordering::Relaxed) + incoming > self.outbox_cap
        {
            let low = self.low.lock().ok().and_then(|mut set| set.pop_first());
            let victim = match low {
                Some(seq) => Some(seq.to_be_bytes().to_vec()),
                None => self.outbox.first()?.map(|(k, _)| k.to_vec()),
            };
            let Some(key) = victim else {
                self.outbox_len.store(0, Ordering::Relaxed);
                break;
            };
            // Acknowledged meanwhile (a stale index entry): nothing dropped, look again.
            let Some(v) = self.outbox.remove(&key)? else {
                continue;
            };
            self.outbox_len.fetch_sub(1, Ordering::Relaxed);
            report.dropped_total += 1;
            let entry: Option<OutboxEntry> = serde_json::from_slice(&v).ok();
            if entry.as_ref().is_some_and(|e| e.high) {
                report.dropped_high += 1;
            } else {
                report.dropped_other += 1;
            }
            if let Some(ts) = entry
                .and_then(|e| serde_json::from_str::<serde_json::Value>(&e.payload).ok())
                .and_then(|a| a["ts_ms"].as_u64())
            {
                report.last_dropped_alert_ts_ms = report.last_dropped_alert_ts_ms.max(ts);
            }
        }
        if report.dropped_total > 0 {
            let mut o = self
                .overflow
                .lock()
                .map_err(|_| sled::Error::Unsupported("overflow lock poisoned".into()))?;
            o.dropped_total += report.dropped_total;
            o.dropped_high += report.dropped_high;
            o.dropped_other += report.dropped_other;
            o.last_dropped_alert_ts_ms = o
                .last_dropped_alert_ts_ms
                .max(report.last_dropped_alert_ts_ms);
            o.last_drop_ms = crate::now_ms();
            self.meta.insert(OVERFLOW_KEY, serde_json::to_vec(&*o)?)?;
            tracing::warn!(
                dropped = report.dropped_total,
                dropped_total = o.dropped_total,
                outbox_max_alerts = self.outbox_cap,
                "Outbox full: oldest unpublished alerts (non-high first) left it; they stay in the history"
            );
        }
        Ok(report.dropped_total)
    }

    /// Alerts dropped from the full outbox so far.
    pub fn overflow(&self) -> OverflowReport {
        self.overflow.lock().map(|o| o.clone()).unwrap_or_default()
    }

    /// Outbox entries with `seq >= from`, in order, at most `limit`.
    pub fn outbox_from(
        &self,
        from: u64,
        limit: usize,
    ) -> Result<Vec<(u64, OutboxEntry)>, StoreError> {
        let mut out = Vec::new();
        for kv in self.outbox.range(from.to_be_bytes()..).take(limit) {
            let (k, v) = kv?;
            let mut seq = [0u8; 8];
            seq.copy_from_slice(&k[..8]);
            out.push((u64::from_be_bytes(seq), serde_json::from_slice(&v)?));
        }
        Ok(out)
    }

    /// Removes an acknowledged entry; returns it if it was still there.
    pub fn outbox_ack(&self, seq: u64) -> Result<Option<OutboxEntry>, StoreError> {
        if let Ok(mut set) = self.low.lock() {
            set.remove(&seq);
        }
        match self.outbox.remove(seq.to_be_bytes())? {
            Some(v) => {
                self.outbox_len.fetch_sub(1, Ordering::Relaxed);
                Ok(serde_json::from_slice(&v).ok())
            }
            None => Ok(None),
        }
    }

    pub fn outbox_len(&self) -> usize {
        self.outbox_len.load(Ordering::Relaxed)
    }

    /// The newest `limit` alerts with `ts_ms >= since_ms`, oldest first.
    pub fn alerts(&self, since_ms: u64, limit: usize) -> Result<Vec<Alert>, StoreError> {
        self.alerts_in(&TimeRange::since(since_ms, limit), None)
    }

    /// The newest `range.limit` alerts in `[range.from_ms, range.to_ms)`, optionally of one
    /// severity, oldest first.
    pub fn alerts_in(
        &self,
        range: &TimeRange,
        severity: Option<&str>,
    ) -> Result<Vec<Alert>, StoreError> {
        self.history
            .alerts_json(range, severity)?
            .into_iter()
            .map(|v| serde_json::from_value(v).map_err(StoreError::from))
            .collect()
    }

    /// Flow summaries, score summaries, retention: the bucketed history.
    pub fn history(&self) -> &History {
        &self.history
    }

    /// One page of alerts with `since_ms <= ts_ms < until_ms`, newest first, that `keep`
    /// accepts: at most `limit`, starting below `cursor` (the `next` of the previous page).
    /// Returns the page and, when it is full, the cursor of the next one.
    pub fn alerts_page(
        &self,
        since_ms: u64,
        until_ms: u64,
        cursor: Option<[u8; 16]>,
        limit: usize,
        keep: impl Fn(&Alert) -> bool,
    ) -> Result<(Vec<Alert>, Option<[u8; 16]>), StoreError> {
        let mut out = Vec::new();
        if since_ms >= until_ms || limit == 0 {
            return Ok((out, None));
        }
        let mut upper = [0u8; 16];
        upper[..8].copy_from_slice(&until_ms.to_be_bytes());
        let upper = match cursor {
            Some(c) if c < upper => c,
            _ => upper,
        };
        let lower = since_ms.to_be_bytes();
        // Buckets partition time, so newest bucket first, newest key first, is newest first.
        for tree in self
            .history
            .trees_between(Kind::Alerts, since_ms, until_ms)
            .iter()
            .rev()
        {
            for kv in tree.range(lower.as_slice()..upper.as_slice()).rev() {
                let (k, v) = kv?;
                let alert: Alert = serde_json::from_slice(&v)?;
                if !keep(&alert) {
                    continue;
                }
                out.push(alert);
                if out.len() == limit {
                    let next = <[u8; 16]>::try_from(k.as_ref()).ok();
                    return Ok((out, next));
                }
            }
        }
        Ok((out, None))
    }

    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        self.history.flush()?;
        Ok(())
    }

    /// Appends one rate sample to the `series` tree (not flushed: losing the last second of
    /// samples in a crash is fine, flushing per sample is not).
    pub fn append_sample(&self, s: &RateSample) -> Result<(), StoreError> {
        let mut v = [0u8; SERIES_VALUE_LEN];
        v[..4].copy_from_slice(&s.if_index.to_be_bytes());
        v[4..12].copy_from_slice(&s.step_ms.to_be_bytes());
        v[12..20].copy_from_slice(&s.in_bps.unwrap_or(f64::NAN).to_be_bytes());
        v[20..28].copy_from_slice(&s.out_bps.unwrap_or(f64::NAN).to_be_bytes());
        let key = series_key(&s.target, &s.if_name, s.ts_ms);
        self.history
            .tree_for(Kind::Series, s.ts_ms)?
            .insert(key.as_slice(), &v[..])?;
        self.history
            .account(Kind::Series, s.ts_ms, key.len() + v.len());
        Ok(())
    }

    /// Samples of one interface with `from_ms <= ts_ms < to_ms`, oldest first.
    pub fn series(
        &self,
        target: &str,
        if_name: &str,
        from_ms: u64,
        to_ms: u64,
    ) -> Result<Vec<RateSample>, StoreError> {
        let mut out = Vec::new();
        if from_ms >= to_ms {
            return Ok(out);
        }
        let range = series_key(target, if_name, from_ms)..series_key(target, if_name, to_ms);
        for tree in self.history.trees_between(Kind::Series, from_ms, to_ms) {
            for kv in tree.range(range.clone()) {
                let (k, v) = kv?;
                out.push(decode_sample(target, if_name, &k, &v)?);
            }
        }
        Ok(out)
    }

    /// Every `(target, if_name)` with stored samples (a skip scan: one seek per series).
    pub fn series_names(&self) -> Result<Vec<(String, String)>, StoreError> {
        let mut names = std::collections::BTreeSet::new();
        for tree in self.history.trees_between(Kind::Series, 0, u64::MAX) {
            names.extend(series_names_in(&tree)?);
        }
        Ok(names.into_iter().collect())
    }

    /// Drops the rate samples older than `before_ms` (whole buckets: a bucket goes when all
    /// of it is older); returns how many buckets.
    pub fn prune_series(&self, before_ms: u64) -> Result<u64, StoreError> {
        Ok(self.history.drop_before(Kind::Series, before_ms)?)
    }
}

fn series_names_in(tree: &sled::Tree) -> Result<Vec<(String, String)>, StoreError> {
    {
        let mut out = Vec::new();
        let mut from: Vec<u8> = Vec::new();
        while let Some((k, _)) = tree.range(from.as_slice()..).next().transpose()? {
            let Some(prefix) = series_prefix(&k) else {
                return Err(StoreError::BadSeriesRecord { len: k.len() });
            };
            let mut parts = prefix[..prefix.len() - 1].splitn(2, |b| *b == 0);
            let target = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
            let name = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
            out.push((target, name));
            from = prefix.to_vec();
            from.extend_from_slice(&[0xFF; 9]);
        }
        Ok(out)
    }
}

const SERIES_VALUE_LEN: usize = 28;

fn series_key(target: &str, if_name: &str, ts_ms: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(target.len() + if_name.len() + 10);
    k.extend_from_slice(target.as_bytes());
    k.push(0);
    k.extend_from_slice(if_name.as_bytes());
    k.push(0);
    k.extend_from_slice(&ts_ms.to_be_bytes());
    k
}

/// `target 0 if_name 0` of a series key.
fn series_prefix(k: &[u8]) -> Option<&[u8]> {
    let n = k.len().checked_sub(8)?;
    let prefix = &k[..n];
    (prefix.last() == Some(&0) && prefix.iter().filter(|b| **b == 0).count() == 2).then_some(prefix)
}

fn decode_sample(
    target: &str,
    if_name: &str,
    k: &[u8],
    v: &[u8],
) -> Result<RateSample, StoreError> {
    let bad = || StoreError::BadSeriesRecord { len: v.len() };
    if v.len() != SERIES_VALUE_LEN || k.len() < 8 {
        return Err(bad());
    }
    let ts_ms = u64::from_be_bytes(k[k.len() - 8..].try_into().map_err(|_| bad())?);
    let if_index = u32::from_be_bytes(v[..4].try_into().map_err(|_| bad())?);
    let step_ms = u64::from_be_bytes(v[4..12].try_into().map_err(|_| bad())?);
    let rate = |b: &[u8]| -> Result<Option<f64>, StoreError> {
        let x = f64::from_be_bytes(b.try_into().map_err(|_| bad())?);
        Ok((!x.is_nan()).then_some(x))
    };
    Ok(RateSample {
        target: target.to_string(),
        if_index,
        if_name: if_name.to_string(),
        ts_ms,
        step_ms,
        in_bps: rate(&v[12..20])?,
        out_bps: rate(&v[20..28])?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{FlowSubject, ModelRef, Subject};

    /// A flow alert with id `id-{n}` at `1000 + n` ms (also used by the recovery tests).
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
            summary: String::new(),
        }
    }

    #[test]
    fn alerts_survive_reopen_and_outbox_replays_in_order() {
        let dir = tempfile::tempdir().expect("tmp");
        {
            let s = Store::open(dir.path(), 1 << 20, 100).expect("open");
            for n in 0..5 {
                s.append_alert(&alert(n, "high"), "t/high").expect("append");
            }
            let first = s.outbox_from(0, 1).expect("outbox")[0].0;
            s.outbox_ack(first).expect("ack");
        }
        let s = Store::open(dir.path(), 1 << 20, 100).expect("reopen");
        assert_eq!(s.outbox_len(), 4);
        let ids = outbox_ids(&s);
        assert_eq!(ids, ["id-1", "id-2", "id-3", "id-4"]);
        assert_eq!(s.alerts(0, 100).expect("alerts").len(), 5);
        assert_eq!(s.alerts(1003, 100).expect("alerts").len(), 2);
    }

    #[test]
    fn full_outbox_drops_oldest_medium_first_history_keeps_all() {
        let dir = tempfile::tempdir().expect("tmp");
        let s = Store::open(dir.path(), 1 << 20, 3).expect("open");
        s.append_alert(&alert(0, "high"), "t").expect("a");
        s.append_alert(&alert(1, "medium"), "t").expect("a");
        s.append_alert(&alert(2, "high"), "t").expect("a");
        assert_eq!(s.append_alert(&alert(3, "high"), "t").expect("a"), 1);
        let ids = outbox_ids(&s);
        assert_eq!(ids, ["id-0", "id-2", "id-3"]);
        assert_eq!(s.alerts(0, 100).expect("alerts").len(), 4);
        // Only high ones left: the oldest high goes.
        assert_eq!(s.append_alert(&alert(4, "high"), "t").expect("a"), 1);
        assert_eq!(outbox_ids(&s), ["id-2", "id-3", "id-4"]);
        let o = s.overflow();
        assert_eq!(
            (o.dropped_total, o.dropped_high, o.dropped_other),
            (2, 1, 1)
        );
        assert_eq!(o.last_dropped_alert_ts_ms, 1001, "the newest dropped alert");
        assert_eq!(o.outbox_max_alerts, 3);
        drop(s);
        // The report and the eviction order survive a restart.
        let s = Store::open(dir.path(), 1 << 20, 3).expect("reopen");
        assert_eq!(s.overflow().dropped_total, 2);
        s.append_alert(&alert(5, "medium"), "t").expect("a");
        s.append_alert(&alert(6, "medium"), "t").expect("a");
        assert_eq!(
            outbox_ids(&s),
            ["id-3", "id-4", "id-6"],
            "id-2 (high) then id-5 (medium)"
        );
    }

    #[test]
    fn acknowledged_entries_are_no_eviction_candidates() {
        let dir = tempfile::tempdir().expect("tmp");
        let s = Store::open(dir.path(), 1 << 20, 2).expect("open");
        s.append_alert(&alert(0, "medium"), "t").expect("a");
        s.append_alert(&alert(1, "high"), "t").expect("a");
        let first = s.outbox_from(0, 1).expect("outbox")[0].0;
        s.outbox_ack(first).expect("ack");
        assert_eq!(s.append_alert(&alert(2, "medium"), "t").expect("a"), 0);
        assert_eq!(s.append_alert(&alert(3, "high"), "t").expect("a"), 1);
        assert_eq!(outbox_ids(&s), ["id-1", "id-3"]);
        assert_eq!(s.outbox_len(), 2);
    }

    fn outbox_ids(s: &Store) -> Vec<String> {
        s.outbox_from(0, 10)
            .expect("outbox")
            .into_iter()
            .map(|(_, e)| serde_json::from_str::<Alert>(&e.payload).expect("json").id)
            .collect()
    }

    #[test]
    fn a_group_commit_keeps_order_and_makes_room_for_the_whole_batch() {
        let dir = tempfile::tempdir().expect("tmp");
        let s = Store::open(dir.path(), 1 << 20, 4).expect("open");
        s.append_alert(&alert(0, "medium"), "t").expect("a");
        s.append_alert(&alert(1, "high"), "t").expect("a");
        let batch = [alert(2, "high"), alert(3, "medium"), alert(4, "high")];
        let rows: Vec<_> = batch.iter().map(|a| (a, "t".to_string())).collect();
        assert_eq!(s.append_alerts(&rows).expect("batch"), 1, "one must leave");
        let ids = outbox_ids(&s);
        assert_eq!(ids, ["id-1", "id-2", "id-3", "id-4"]);
        assert_eq!(s.outbox_len(), 4);
        drop(s);
        let s = Store::open(dir.path(), 1 << 20, 4).expect("reopen");
        assert_eq!(
            s.alerts(0, 100).expect("alerts").len(),
            5,
            "durable after reopen"
        );
    }

    fn sample(target: &str, name: &str, ts_ms: u64, in_bps: Option<f64>) -> RateSample {
        RateSample {
            target: target.into(),
            if_index: 3,
            if_name: name.into(),
            ts_ms,
            step_ms: 10_000,
            in_bps,
            out_bps: Some(1.5),
        }
    }

    #[test]
    fn series_range_query_by_interface_and_time_and_pruning() {
        let dir = tempfile::tempdir().expect("tmp");
        let one_second = HistoryConfig {
            bucket: std::time::Duration::from_secs(1),
            ..HistoryConfig::default()
        };
        let s = Store::open_with(dir.path(), 1 << 20, 3, one_second).expect("open");
        for ts in [1_000, 2_000, 3_000] {
            s.append_sample(&sample("r1", "eth0", ts, Some(ts as f64)))
                .expect("append");
            s.append_sample(&sample("r1", "eth0.1", ts, None))
                .expect("append");
            s.append_sample(&sample("r10", "eth0", ts, Some(1.0)))
                .expect("append");
        }
        let got = s.series("r1", "eth0", 1_500, 3_001).expect("query");
        assert_eq!(
            got,
            [
                sample("r1", "eth0", 2_000, Some(2_000.0)),
                sample("r1", "eth0", 3_000, Some(3_000.0))
            ]
        );
        let unknown = s.series("r1", "eth0.1", 0, u64::MAX).expect("query");
        assert_eq!(unknown.len(), 3);
        assert!(unknown.iter().all(|x| x.in_bps.is_none()));
        assert_eq!(
            s.series_names().expect("names"),
            [
                ("r1".to_string(), "eth0".to_string()),
                ("r1".to_string(), "eth0.1".to_string()),
                ("r10".to_string(), "eth0".to_string())
            ]
        );
        // Whole buckets go: [1000, 2000) and [2000, 3000) end by 3000; [3000, 4000) stays.
        assert_eq!(s.prune_series(3_500).expect("prune"), 2);
        assert_eq!(s.series("r1", "eth0", 0, u64::MAX).expect("q").len(), 1);
        assert_eq!(s.series("r10", "eth0", 0, u64::MAX).expect("q").len(), 1);
    }

    #[test]
    fn alert_pages_are_newest_first_filtered_and_resume_at_the_cursor() {
        let dir = tempfile::tempdir().expect("tmp");
        let s = Store::open(dir.path(), 1 << 20, 100).expect("open");
        for n in 0..10 {
            let sev = if n % 2 == 0 { "high" } else { "medium" };
            s.append_alert(&alert(n, sev), "t").expect("append");
        }
        let high = |a: &Alert| a.severity == "high";
        let (page, next) = s.alerts_page(0, u64::MAX, None, 3, high).expect("page");
        let ids: Vec<_> = page.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(ids, ["id-8", "id-6", "id-4"]);
        let (page, next) = s.alerts_page(0, u64::MAX, next, 3, high).expect("page 2");
        let ids: Vec<_> = page.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(ids, ["id-2", "id-0"]);
        assert!(next.is_none());
        let (page, _) = s
            .alerts_page(1003, 1006, None, 10, |_| true)
            .expect("range");
        assert_eq!(page.len(), 3);
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
