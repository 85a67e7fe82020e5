//! Bucket databases: finding them at start, opening them on demand (at most a few at once),
//! the live-byte estimate per bucket and kind, and the move of earlier versions' layouts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use super::keys::{kind_index, parse_tree_name, tree_name};
use super::{History, HistoryConfig, HistoryError, Kind};

/// Per-record overhead added to key + value bytes in the live estimate (sled's node headers).
const RECORD_OVERHEAD: u64 = 24;

/// Bucket databases kept open at once (each has sled's flusher thread and page cache); the
/// others are opened again when a query or a late record needs them.
const MAX_OPEN_BUCKETS: usize = 3;
/// Page cache of one bucket database.
const BUCKET_CACHE_BYTES: u64 = 1 << 20;

#[derive(Debug, Default)]
pub(super) struct Bucket {
    /// The bucket's own database (flows, scores, series), when open.
    pub(super) db: Option<sled::Db>,
    /// Whether its directory exists.
    pub(super) has_db: bool,
    pub(super) alerts: Option<sled::Tree>,
    /// Live bytes per kind (estimate).
    pub(super) bytes: [u64; 4],
    pub(super) last_use: u64,
}

fn open_bucket_db(dir: &Path) -> Result<sled::Db, HistoryError> {
    // A bucket closed a moment ago may still be held by sled's flusher thread.
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    loop {
        match sled::Config::new()
            .path(dir)
            .cache_capacity(BUCKET_CACHE_BYTES)
            .open()
        {
            Err(sled::Error::Io(e))
                if std::time::Instant::now() < deadline
                    && e.kind() != std::io::ErrorKind::NotFound =>
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            other => return Ok(other?),
        }
    }
}

fn tree_bytes(tree: &sled::Tree) -> Result<u64, HistoryError> {
    let mut bytes = 0;
    for kv in tree.iter() {
        let (k, v) = kv?;
        bytes += (k.len() + v.len()) as u64 + RECORD_OVERHEAD;
    }
    Ok(bytes)
}

impl History {
    /// Finds every bucket (alert trees of `db`, bucket databases beside `db_dir`) and measures
    /// their live bytes (one scan; history is bounded, so this is too).
    pub fn open(db: sled::Db, db_dir: &Path, cfg: HistoryConfig) -> Result<History, HistoryError> {
        let bucket_ms = (cfg.bucket.as_millis() as u64).max(1000);
        let hist_dir = db_dir
            .parent()
            .map_or_else(|| PathBuf::from("history"), |p| p.join("history"));
        std::fs::create_dir_all(&hist_dir).map_err(|e| HistoryError::Sled(e.into()))?;
        let mut buckets: BTreeMap<u64, Bucket> = BTreeMap::new();
        for name in db.tree_names() {
            if let Some((Kind::Alerts, start)) = parse_tree_name(&name) {
                let tree = db.open_tree(&name)?;
                let b = buckets.entry(start).or_default();
                b.bytes[0] = tree_bytes(&tree)?;
                b.alerts = Some(tree);
            }
        }
        for e in std::fs::read_dir(&hist_dir)
            .map_err(|e| HistoryError::Sled(e.into()))?
            .flatten()
        {
            let Some(start) = e.file_name().to_str().and_then(|s| s.parse::<u64>().ok()) else {
                continue;
            };
            // A bucket database that does not open is moved aside; the rest of the history
            // (and the outbox) must not be held hostage by it.
            let path = e.path();
            let bdb = match std::panic::catch_unwind(|| open_bucket_db(&path)) {
                Ok(Ok(db)) => db,
                failed => {
                    let reason = match failed {
                        Ok(Err(e)) => e.to_string(),
                        _ => "sled panicked".to_string(),
                    };
                    let to = path.with_extension("broken");
                    tracing::error!(bucket = %path.display(), moved_to = %to.display(), reason,
                        "A history bucket cannot be opened; moved it aside");
                    let _ = std::fs::rename(&path, &to);
                    continue;
                }
            };
            let b = buckets.entry(start).or_default();
            b.has_db = true;
            for kind in [Kind::Flows, Kind::Scores, Kind::Series] {
                b.bytes[kind_index(kind)] = tree_bytes(&bdb.open_tree(kind.name())?)?;
            }
        }
        let h = History {
            db,
            db_dir: db_dir.to_path_buf(),
            hist_dir,
            live_budget: AtomicU64::new(cfg.max_disk_bytes / 4),
            cfg,
            bucket_ms,
            buckets: Mutex::new(buckets),
            tick: AtomicU64::new(0),
            dropped_age: AtomicU64::new(0),
            dropped_size: AtomicU64::new(0),
            disk_bytes: AtomicU64::new(0),
        };
        h.migrate_unbucketed()?;
        Ok(h)
    }

    pub fn config(&self) -> &HistoryConfig {
        &self.cfg
    }

    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Bucket>> {
        // A panic while holding the lock leaves the map consistent (entries are whole).
        self.buckets.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Start of the bucket holding `ts_ms`.
    pub fn bucket_start(&self, ts_ms: u64) -> u64 {
        ts_ms - ts_ms % self.bucket_ms
    }

    pub(super) fn bucket_dir(&self, start: u64) -> PathBuf {
        self.hist_dir.join(format!("{start:013}"))
    }

    /// The tree of `kind` in the bucket starting at `start` (bucket created when new).
    pub(super) fn tree_at(&self, kind: Kind, start: u64) -> Result<sled::Tree, HistoryError> {
        let tick = self.tick.fetch_add(1, Ordering::Relaxed);
        let mut b = self.lock();
        let newest = b.keys().next_back().copied().unwrap_or(start).max(start);
        let bucket = b.entry(start).or_default();
        bucket.last_use = tick;
        if kind == Kind::Alerts {
            if let Some(t) = &bucket.alerts {
                return Ok(t.clone());
            }
            let t = self.db.open_tree(tree_name(Kind::Alerts, start))?;
            bucket.alerts = Some(t.clone());
            return Ok(t);
        }
        let db = match &bucket.db {
            Some(db) => db.clone(),
            None => {
                let db = open_bucket_db(&self.bucket_dir(start))?;
                bucket.db = Some(db.clone());
                bucket.has_db = true;
                db
            }
        };
        let tree = db.open_tree(kind.name())?;
        // Close the least recently used bucket databases beyond the limit (never the newest).
        let open: Vec<(u64, u64)> = b
            .iter()
            .filter(|(s, x)| x.db.is_some() && **s != newest && **s != start)
            .map(|(s, x)| (x.last_use, *s))
            .collect();
        if open.len() + 2 > MAX_OPEN_BUCKETS {
            let mut open = open;
            open.sort_unstable();
            for (_, s) in open.iter().take(open.len() + 2 - MAX_OPEN_BUCKETS) {
                if let Some(x) = b.get_mut(s) {
                    x.db = None;
                }
            }
        }
        Ok(tree)
    }

    /// The tree of `kind` for `ts_ms` (created when new).
    pub fn tree_for(&self, kind: Kind, ts_ms: u64) -> Result<sled::Tree, HistoryError> {
        self.tree_at(kind, self.bucket_start(ts_ms))
    }

    /// Adds `bytes` written into the bucket of `kind` at `ts_ms` to the live estimate.
    pub fn account(&self, kind: Kind, ts_ms: u64, bytes: usize) {
        let start = self.bucket_start(ts_ms);
        if let Some(x) = self.lock().get_mut(&start) {
            x.bytes[kind_index(kind)] += bytes as u64 + RECORD_OVERHEAD;
        }
    }

    /// Trees of `kind` that may hold records with `from_ms <= ts < to_ms`, oldest first.
    /// Every bucket starting before `to_ms` is included (buckets written with another width
    /// may start well before `from_ms`); callers range-scan each, which costs one seek when it
    /// holds nothing in range.
    pub fn trees_between(&self, kind: Kind, _from_ms: u64, to_ms: u64) -> Vec<sled::Tree> {
        let starts: Vec<u64> = self
            .lock()
            .range(..to_ms)
            .filter(|(_, b)| {
                if kind == Kind::Alerts {
                    b.alerts.is_some()
                } else {
                    b.has_db && b.bytes[kind_index(kind)] > 0
                }
            })
            .map(|(s, _)| *s)
            .collect();
        starts
            .into_iter()
            .filter_map(|s| match self.tree_at(kind, s) {
                Ok(t) => Some(t),
                Err(e) => {
                    tracing::warn!(error = %e, bucket = s, "Cannot open a history bucket");
                    None
                }
            })
            .collect()
    }

    /// Every bucket and kind: kind, start, live-byte estimate, oldest first.
    pub fn buckets(&self) -> Vec<(Kind, u64, u64)> {
        let mut out = Vec::new();
        for (s, b) in self.lock().iter() {
            for kind in Kind::ALL {
                let n = b.bytes[kind_index(kind)];
                if n > 0 {
                    out.push((kind, *s, n));
                }
            }
        }
        out
    }

    pub fn live_bytes(&self) -> u64 {
        self.lock()
            .values()
            .map(|b| b.bytes.iter().sum::<u64>())
            .sum()
    }

    /// Moves records of the layouts of earlier versions into buckets: unbucketed `alerts` and
    /// `series` trees, and `h/<kind>/<start>` trees of the main database for kinds that now
    /// live in bucket databases.
    fn migrate_unbucketed(&self) -> Result<(), HistoryError> {
        for name in self.db.tree_names() {
            let (kind, fixed_start) = match &name[..] {
                b"alerts" => (Kind::Alerts, None),
                b"series" => (Kind::Series, None),
                n => match parse_tree_name(n) {
                    Some((k, s)) if k != Kind::Alerts => (k, Some(s)),
                    _ => continue,
                },
            };
            let tree = self.db.open_tree(&name)?;
            let mut moved = 0u64;
            for kv in tree.iter() {
                let (k, v) = kv?;
                let ts = match kind {
                    Kind::Series => k.len().checked_sub(8).map(|n| &k[n..]),
                    _ => k.get(..8),
                }
                .and_then(|b| b.try_into().ok())
                .map(u64::from_be_bytes)
                .or(fixed_start)
                .unwrap_or(0);
                self.tree_for(kind, ts)?.insert(&k, &v)?;
                self.account(kind, ts, k.len() + v.len());
                moved += 1;
            }
            self.flush()?;
            self.db.drop_tree(&name)?;
            tracing::info!(tree = %String::from_utf8_lossy(&name), records = moved, "Moved history into time buckets");
        }
        Ok(())
    }

    /// Flushes the main database and every open bucket database.
    pub fn flush(&self) -> Result<(), HistoryError> {
        self.db.flush()?;
        let open: Vec<sled::Db> = self.lock().values().filter_map(|b| b.db.clone()).collect();
        for db in open {
            db.flush()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::tests::{open, MIN};
    use super::super::{time_key, HistoryConfig, TimeRange};

    #[test]
    fn unbucketed_trees_of_earlier_versions_move_into_buckets() {
        let dir = tempfile::tempdir().expect("tmp");
        {
            let db = sled::open(dir.path().join("db")).expect("sled");
            let old = db.open_tree("alerts").expect("tree");
            old.insert(time_key(5 * MIN, 1), &br#"{"severity":"high"}"#[..])
                .expect("insert");
            old.insert(time_key(7 * MIN, 2), &br#"{"severity":"medium"}"#[..])
                .expect("insert");
            db.flush().expect("flush");
        }
        let h = open(
            dir.path(),
            HistoryConfig {
                bucket: Duration::from_secs(60),
                ..HistoryConfig::default()
            },
        );
        assert!(!h.db.tree_names().iter().any(|n| n.as_ref() == b"alerts"));
        assert_eq!(h.stats().buckets, 2);
        let high = h
            .alerts_json(&TimeRange::since(0, 10), Some("high"))
            .expect("q");
        assert_eq!(high.len(), 1);
    }
}
