//! sled storage: the alert history and the MQTT outbox.
//!
//! Trees:
//! - `alerts`: key `ts_ms (u64 BE) ++ seq (u64 BE)`, value the alert JSON. History, for
//!   `netwarden alerts`; retention by age and size is issue 6's work (not bounded yet).
//! - `outbox`: key `seq (u64 BE)`, value [`OutboxEntry`]. An alert enters the history and the
//!   outbox in one transaction, which is flushed to disk before the alert is published; it leaves
//!   the outbox only on the broker's PUBACK. `seq` comes from sled's persistent id generator,
//!   so it keeps increasing across restarts and the outbox replays in order.
//!
//! The outbox is capped (`store.outbox_max_alerts`). When full, the oldest `medium` alert leaves
//! it (else the oldest alert), counted in `outbox_dropped_full`; it stays in the history.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;

use crate::pipeline::alerting::Alert;

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
}

/// A message waiting for the broker's acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxEntry {
    pub topic: String,
    pub payload: String,
    pub high: bool,
}

/// How long `open` waits for a lock held by a store that is still closing.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

#[derive(Debug)]
pub struct Store {
    db: sled::Db,
    alerts: sled::Tree,
    outbox: sled::Tree,
    outbox_len: AtomicUsize,
    outbox_cap: usize,
}

impl Store {
    pub fn open(dir: &Path, cache_bytes: u64, outbox_cap: usize) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Open {
            path: dir.to_path_buf(),
            error: e.into(),
        })?;
        let path = dir.join("db");
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
        let alerts = db.open_tree("alerts")?;
        let outbox = db.open_tree("outbox")?;
        let outbox_len = AtomicUsize::new(outbox.len());
        Ok(Store {
            db,
            alerts,
            outbox,
            outbox_len,
            outbox_cap: outbox_cap.max(1),
        })
    }

    /// Records an alert in the history and the outbox, durably (flushed) before returning.
    /// Returns how many older alerts had to leave the full outbox.
    pub fn append_alert(&self, alert: &Alert, topic: &str) -> Result<u64, StoreError> {
        let json = serde_json::to_string(alert)?;
        let entry = OutboxEntry {
            topic: topic.to_string(),
            payload: json.clone(),
            high: alert.severity == "high",
        };
        let entry = serde_json::to_vec(&entry)?;
        let seq = self.db.generate_id()?;
        let mut akey = [0u8; 16];
        akey[..8].copy_from_slice(&alert.ts_ms.to_be_bytes());
        akey[8..].copy_from_slice(&seq.to_be_bytes());
        let dropped = self.make_room()?;
        (&self.alerts, &self.outbox)
            .transaction(|(a, o)| {
                a.insert(&akey[..], json.as_bytes())?;
                o.insert(&seq.to_be_bytes()[..], entry.as_slice())?;
                Ok::<_, ConflictableTransactionError<()>>(())
            })
            .map_err(|e| match e {
                TransactionError::Storage(s) => StoreError::Sled(s),
                TransactionError::Abort(()) => {
                    StoreError::Sled(sled::Error::Unsupported("transaction aborted".into()))
                }
            })?;
        self.outbox_len.fetch_add(1, Ordering::Relaxed);
        self.db.flush()?;
        Ok(dropped)
    }

    fn make_room(&self) -> Result<u64, StoreError> {
        let mut dropped = 0;
        while self.outbox_len.load(Ordering::Relaxed) >= self.outbox_cap {
            let victim = self
                .outbox
                .iter()
                .find_map(|kv| {
                    let (k, v) = kv.ok()?;
                    let e: OutboxEntry = serde_json::from_slice(&v).ok()?;
                    (!e.high).then_some(k)
                })
                .or_else(|| self.outbox.first().ok().flatten().map(|(k, _)| k));
            match victim {
                Some(k) => {
                    if self.outbox.remove(k)?.is_some() {
                        self.outbox_len.fetch_sub(1, Ordering::Relaxed);
                        dropped += 1;
                    }
                }
                None => {
                    self.outbox_len.store(0, Ordering::Relaxed);
                    break;
                }
            }
        }
        Ok(dropped)
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

    /// Removes an acknowledged entry.
    pub fn outbox_ack(&self, seq: u64) -> Result<(), StoreError> {
        if self.outbox.remove(seq.to_be_bytes())?.is_some() {
            self.outbox_len.fetch_sub(1, Ordering::Relaxed);
        }
        Ok(())
    }

    pub fn outbox_len(&self) -> usize {
        self.outbox_len.load(Ordering::Relaxed)
    }

    /// The newest `limit` alerts with `ts_ms >= since_ms`, oldest first.
    pub fn alerts(&self, since_ms: u64, limit: usize) -> Result<Vec<Alert>, StoreError> {
        let mut out = Vec::new();
        for kv in self
            .alerts
            .range(since_ms.to_be_bytes()..)
            .rev()
            .take(limit)
        {
            let (_, v) = kv?;
            out.push(serde_json::from_slice(&v)?);
        }
        out.reverse();
        Ok(out)
    }

    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::alerting::{ModelRef, Subject};

    fn alert(n: u64, severity: &str) -> Alert {
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
            subject: Subject {
                exporter: "e".into(),
                src_addr: "a".into(),
                dst_addr: "b".into(),
                src_port: 1,
                dst_port: 2,
                protocol: 6,
                flow_first_ms: 0,
                flow_last_ms: 0,
            },
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
        let ids: Vec<_> = s
            .outbox_from(0, 10)
            .expect("outbox")
            .into_iter()
            .map(|(_, e)| serde_json::from_str::<Alert>(&e.payload).expect("json").id)
            .collect();
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
        let ids: Vec<_> = s
            .outbox_from(0, 10)
            .expect("outbox")
            .into_iter()
            .map(|(_, e)| serde_json::from_str::<Alert>(&e.payload).expect("json").id)
            .collect();
        assert_eq!(ids, ["id-0", "id-2", "id-3"]);
        assert_eq!(s.alerts(0, 100).expect("alerts").len(), 4);
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
