//! What happens when the database does not open.
//!
//! sled is crash-safe by design (a log with checksums; a torn tail is cut at recovery), and the
//! kill -9 tests (`tests/e2e/crash.rs`) reopen it after every kill. But a disk error, a full
//! disk at the wrong moment or a stray write can still leave files sled refuses, or panics on.
//! netwarden then does not refuse to start:
//! 1. the database directory is renamed to `db.broken-<UTC time>` and the reason is logged;
//! 2. a fresh database is created;
//! 3. the old files are scanned byte by byte for what can still be read: alert JSON (history)
//!    and outbox entries (alerts awaiting a PUBACK). sled stores values uncompressed, so each
//!    one that survived is found whole. Alerts go back into the history, outbox entries back
//!    into the outbox, in alert-time order, de-duplicated by alert id. Entries the broker had
//!    already acknowledged may be among them: subscribers see a duplicate (same id), never a
//!    gap;
//! 4. `recovery.json` in the data directory records when, why, where the old files are and
//!    what was recovered.

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use serde::Serialize;

use super::{OutboxEntry, Store, StoreError};
use crate::records::Alert;
use crate::sinks::history::{time_key, Kind};

/// What one recovery did (also written to `recovery.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Recovery {
    pub ts_ms: u64,
    pub reason: String,
    pub moved_to: PathBuf,
    pub alerts_recovered: u64,
    pub outbox_recovered: u64,
}

/// Runs `open`; a panic inside sled or an error that means "these files are damaged" becomes
/// `Err(reason)`. Other errors (locked by another process, permissions, ...) are returned as
/// they are: moving the database aside would not help with those.
pub(super) fn catch<T>(
    open: impl FnOnce() -> Result<T, StoreError>,
) -> Result<Result<T, StoreError>, String> {
    match std::panic::catch_unwind(AssertUnwindSafe(open)) {
        Ok(Err(e)) if is_damage(&e) => Err(e.to_string()),
        Ok(other) => Ok(other),
        Err(panic) => {
            let msg = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            Err(format!("sled panicked while opening it: {msg}"))
        }
    }
}

fn is_damage(e: &StoreError) -> bool {
    let sled_damage = |e: &sled::Error| match e {
        // A damaged `conf` reads as a database of an unsupported (pre-0.29) version.
        sled::Error::Corruption { .. }
        | sled::Error::ReportableBug(_)
        | sled::Error::Unsupported(_) => true,
        sled::Error::Io(io) => matches!(
            io.kind(),
            std::io::ErrorKind::InvalidData | std::io::ErrorKind::UnexpectedEof
        ),
        _ => false,
    };
    match e {
        StoreError::Open { error, .. } | StoreError::Sled(error) => sled_damage(error),
        StoreError::History(crate::sinks::history::HistoryError::Sled(error)) => sled_damage(error),
        StoreError::Corrupt(_) | StoreError::BadSeriesRecord { .. } => true,
        StoreError::History(crate::sinks::history::HistoryError::Corrupt(_)) => true,
        StoreError::Locked { .. } => false,
    }
}

/// Renames the database directory out of the way; returns where it went.
pub(super) fn move_aside(dir: &Path, path: &Path, reason: &str) -> Result<PathBuf, StoreError> {
    let stamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now())
        .to_string()
        .replace(':', "");
    let mut to = dir.join(format!("db.broken-{stamp}"));
    let mut n = 1;
    while to.exists() {
        to = dir.join(format!("db.broken-{stamp}-{n}"));
        n += 1;
    }
    std::fs::rename(path, &to).map_err(|e| StoreError::Open {
        path: path.to_path_buf(),
        error: e.into(),
    })?;
    tracing::error!(path = %path.display(), moved_to = %to.display(), reason,
        "The database cannot be opened; moved it aside and starting a fresh one (recovering what can be read from it)");
    Ok(to)
}

/// Alerts and outbox entries still readable in the files under `dir`.
pub fn salvage(dir: &Path) -> (Vec<Alert>, Vec<OutboxEntry>) {
    let mut alerts: BTreeMap<String, Alert> = BTreeMap::new();
    let mut outbox: BTreeMap<String, (u64, OutboxEntry)> = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let Ok(bytes) = std::fs::read(&p) else {
                continue;
            };
            scan(&bytes, &mut alerts, &mut outbox);
        }
    }
    let mut alerts: Vec<Alert> = alerts.into_values().collect();
    alerts.sort_by(|a, b| a.ts_ms.cmp(&b.ts_ms).then(a.id.cmp(&b.id)));
    let mut outbox: Vec<(u64, OutboxEntry)> = outbox.into_values().collect();
    outbox.sort_by_key(|(ts, _)| *ts);
    (alerts, outbox.into_iter().map(|(_, e)| e).collect())
}

fn scan(
    bytes: &[u8],
    alerts: &mut BTreeMap<String, Alert>,
    outbox: &mut BTreeMap<String, (u64, OutboxEntry)>,
) {
    const ALERT: &[u8] = br#"{"id":""#;
    const ENTRY: &[u8] = br#"{"topic":""#;
    let mut i = 0;
    while let Some(off) = bytes[i..].iter().position(|b| *b == b'{') {
        let at = i + off;
        let rest = &bytes[at..];
        if rest.starts_with(ALERT) {
            let mut it = serde_json::Deserializer::from_slice(rest).into_iter::<Alert>();
            if let Some(Ok(a)) = it.next() {
                alerts.entry(a.id.clone()).or_insert(a);
            }
        } else if rest.starts_with(ENTRY) {
            let mut it = serde_json::Deserializer::from_slice(rest).into_iter::<OutboxEntry>();
            if let Some(Ok(e)) = it.next() {
                if let Ok(a) = serde_json::from_str::<Alert>(&e.payload) {
                    outbox.entry(a.id.clone()).or_insert((a.ts_ms, e));
                }
            }
        }
        i = at + 1;
    }
}

impl Store {
    /// Fills this fresh store from the moved-aside files and writes `recovery.json`.
    pub(super) fn recover_from(
        mut self,
        dir: &Path,
        moved: &Path,
        reason: &str,
    ) -> Result<Store, StoreError> {
        let (alerts, outbox) = salvage(moved);
        for a in &alerts {
            let json = serde_json::to_string(a)?;
            let key = time_key(a.ts_ms, self.db.generate_id()?);
            self.history
                .tree_for(Kind::Alerts, a.ts_ms)?
                .insert(key, json.as_bytes())?;
            self.history
                .account(Kind::Alerts, a.ts_ms, key.len() + json.len());
        }
        let keep = outbox.len().min(self.outbox_cap);
        // Over the cap: the newest stay (the cap's policy applies on the next append).
        for e in &outbox[outbox.len() - keep..] {
            let seq = self.db.generate_id()?;
            self.outbox
                .insert(seq.to_be_bytes(), serde_json::to_vec(e)?)?;
            if !e.high {
                if let Ok(mut set) = self.low.lock() {
                    set.insert(seq);
                }
            }
        }
        self.outbox_len.store(self.outbox.len(), Ordering::Relaxed);
        self.db.flush()?;
        let r = Recovery {
            ts_ms: crate::now_ms(),
            reason: reason.to_string(),
            moved_to: moved.to_path_buf(),
            alerts_recovered: alerts.len() as u64,
            outbox_recovered: keep as u64,
        };
        tracing::error!(moved_to = %moved.display(), alerts = r.alerts_recovered,
            outbox = r.outbox_recovered, "Recovered alerts and outbox entries from the damaged database (details in recovery.json)");
        if let Ok(json) = serde_json::to_string_pretty(&r) {
            let _ = std::fs::write(dir.join("recovery.json"), json);
        }
        self.recovery = Some(r);
        Ok(self)
    }

    /// Set when this start replaced a database that could not be opened.
    pub fn recovery(&self) -> Option<&Recovery> {
        self.recovery.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(n: u64) -> Alert {
        crate::sinks::store::tests::alert(n, "high")
    }

    /// Overwrites the start of every file of the database (sled's config and the head of its
    /// log) with garbage, the way a bad disk block or a stray write would.
    fn damage(db: &Path) {
        for e in std::fs::read_dir(db).expect("dir").flatten() {
            let p = e.path();
            if p.is_file() {
                let len = std::fs::metadata(&p).expect("meta").len().min(64) as usize;
                let mut bytes = std::fs::read(&p).expect("read");
                bytes[..len].fill(0xA5);
                std::fs::write(&p, bytes).expect("write");
            }
        }
    }

    #[test]
    fn a_damaged_database_is_moved_aside_and_its_alerts_and_outbox_recovered() {
        let dir = tempfile::tempdir().expect("tmp");
        {
            let s = Store::open(dir.path(), 1 << 20, 100).expect("open");
            for n in 0..6 {
                s.append_alert(&alert(n), "t/high").expect("append");
            }
            for (seq, _) in s.outbox_from(0, 2).expect("outbox") {
                s.outbox_ack(seq).expect("ack");
            }
            s.flush().expect("flush");
        }
        damage(&dir.path().join("db"));

        let s = Store::open(dir.path(), 1 << 20, 100).expect("a damaged database still opens");
        let r = s.recovery().expect("recovery happened").clone();
        assert!(
            r.moved_to.exists(),
            "old files kept at {}",
            r.moved_to.display()
        );
        assert!(r
            .moved_to
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("db.broken-")));
        assert_eq!(r.alerts_recovered, 6, "{r:?}");
        let ids: Vec<String> = s
            .alerts(0, 100)
            .expect("alerts")
            .into_iter()
            .map(|a| a.id)
            .collect();
        assert_eq!(ids, ["id-0", "id-1", "id-2", "id-3", "id-4", "id-5"]);
        // Every unacknowledged entry is back, in order; acknowledged ones may come back too
        // (a duplicate by id, never a gap).
        let outbox: Vec<String> = s
            .outbox_from(0, 100)
            .expect("outbox")
            .into_iter()
            .map(|(_, e)| serde_json::from_str::<Alert>(&e.payload).expect("json").id)
            .collect();
        for id in ["id-2", "id-3", "id-4", "id-5"] {
            assert!(
                outbox.iter().any(|x| x == id),
                "{id} missing from {outbox:?}"
            );
        }
        let mut sorted = outbox.clone();
        sorted.sort();
        assert_eq!(outbox, sorted, "outbox in alert order");
        let written: serde_json::Value = serde_json::from_slice(
            &std::fs::read(dir.path().join("recovery.json")).expect("recovery.json"),
        )
        .expect("json");
        assert_eq!(written["alerts_recovered"], 6);
        drop(s);
        // The fresh database is healthy: the next start is a normal one.
        let s = Store::open(dir.path(), 1 << 20, 100).expect("reopen");
        assert!(s.recovery().is_none());
        assert_eq!(s.alerts(0, 100).expect("alerts").len(), 6);
    }

    #[test]
    fn a_locked_database_is_not_mistaken_for_damage() {
        let dir = tempfile::tempdir().expect("tmp");
        let _s = Store::open(dir.path(), 1 << 20, 100).expect("open");
        let err = Store::open(dir.path(), 1 << 20, 100).expect_err("locked");
        assert!(matches!(err, StoreError::Locked { .. }), "{err}");
        assert!(!dir
            .path()
            .read_dir()
            .expect("dir")
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("db.broken")));
    }
}
