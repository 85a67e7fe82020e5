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
//! Keys within a bucket:
//! - `alerts`: `ts_ms (u64 BE) ++ seq (u64 BE)`, the alert JSON;
//! - `flows`: `ts_ms ++ seq`, a [`FlowSummary`] JSON per summary interval (default a minute);
//! - `scores`: `ts_ms ++ seq`, a [`ScoreSummary`] JSON (flow detector: per interval; series
//!   detector: per interface window scored);
//! - `series`: `target 0 if_name 0 ts_ms`, 28 bytes per SNMP rate sample (see the store).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;

use crate::records::{canonical_detector, FlowSummary, ScoreSummary};

/// What kind of history a bucket holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Alerts,
    Flows,
    Scores,
    Series,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Alerts, Kind::Flows, Kind::Scores, Kind::Series];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Alerts => "alerts",
            Kind::Flows => "flows",
            Kind::Scores => "scores",
            Kind::Series => "series",
        }
    }

    fn from_name(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == s)
    }
}

/// Retention settings (`[history]` in the config).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryConfig {
    /// History older than this is dropped (a bucket goes when all of it is older).
    pub max_age: Duration,
    /// Disk use of the whole database (history, outbox, sled's own files) kept under this.
    pub max_disk_bytes: u64,
    /// Width of one bucket (one sled tree per kind).
    pub bucket: Duration,
    /// How often the pipeline writes a flow and score summary.
    pub summary_interval: Duration,
    /// Source hosts listed in each flow summary (by bytes).
    pub top_hosts: usize,
    /// How often the daemon runs [`History::enforce`].
    pub check_interval: Duration,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        HistoryConfig {
            max_age: Duration::from_secs(7 * 24 * 3600),
            max_disk_bytes: 256 << 20,
            bucket: Duration::from_secs(3600),
            summary_interval: Duration::from_secs(60),
            top_hosts: 20,
            check_interval: Duration::from_secs(30),
        }
    }
}

/// What one retention pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RetentionReport {
    pub dropped_age: u64,
    pub dropped_size: u64,
    pub disk_bytes: u64,
    pub live_bytes: u64,
}

/// Counters for stats.json.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct HistoryStats {
    pub buckets: u64,
    pub live_bytes: u64,
    pub disk_bytes: u64,
    pub live_budget_bytes: u64,
    pub buckets_dropped_age: u64,
    pub buckets_dropped_size: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("database error: {0}")]
    Sled(#[from] sled::Error),
    #[error("stored record is not valid: {0}")]
    Corrupt(#[from] serde_json::Error),
}

/// Per-record overhead added to key + value bytes in the live estimate (sled's node headers).
const RECORD_OVERHEAD: u64 = 24;

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
    buckets: Mutex<BTreeMap<u64, Bucket>>,
    /// Use counter for closing the least recently used bucket databases.
    tick: AtomicU64,
    live_budget: AtomicU64,
    dropped_age: AtomicU64,
    dropped_size: AtomicU64,
    disk_bytes: AtomicU64,
}

/// Bucket databases kept open at once (each has sled's flusher thread and page cache); the
/// others are opened again when a query or a late record needs them.
const MAX_OPEN_BUCKETS: usize = 3;
/// Page cache of one bucket database.
const BUCKET_CACHE_BYTES: u64 = 1 << 20;

#[derive(Debug, Default)]
struct Bucket {
    /// The bucket's own database (flows, scores, series), when open.
    db: Option<sled::Db>,
    /// Whether its directory exists.
    has_db: bool,
    alerts: Option<sled::Tree>,
    /// Live bytes per kind (estimate).
    bytes: [u64; 4],
    last_use: u64,
}

fn kind_index(kind: Kind) -> usize {
    match kind {
        Kind::Alerts => 0,
        Kind::Flows => 1,
        Kind::Scores => 2,
        Kind::Series => 3,
    }
}

fn tree_name(kind: Kind, start_ms: u64) -> String {
    format!("h/{}/{start_ms:013}", kind.name())
}

fn parse_tree_name(name: &[u8]) -> Option<(Kind, u64)> {
    let s = std::str::from_utf8(name).ok()?;
    let rest = s.strip_prefix("h/")?;
    let (kind, start) = rest.split_once('/')?;
    Some((Kind::from_name(kind)?, start.parse().ok()?))
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

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Bucket>> {
        // A panic while holding the lock leaves the map consistent (entries are whole).
        self.buckets.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Start of the bucket holding `ts_ms`.
    pub fn bucket_start(&self, ts_ms: u64) -> u64 {
        ts_ms - ts_ms % self.bucket_ms
    }

    fn bucket_dir(&self, start: u64) -> PathBuf {
        self.hist_dir.join(format!("{start:013}"))
    }

    /// The tree of `kind` in the bucket starting at `start` (bucket created when new).
    fn tree_at(&self, kind: Kind, start: u64) -> Result<sled::Tree, HistoryError> {
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

    fn append_json<T: Serialize>(&self, kind: Kind, ts_ms: u64, v: &T) -> Result<(), HistoryError> {
        let json = serde_json::to_vec(v)?;
        let tree = self.tree_for(kind, ts_ms)?;
        let key = time_key(ts_ms, self.db.generate_id()?);
        tree.insert(key, json.as_slice())?;
        self.account(kind, ts_ms, key.len() + json.len());
        Ok(())
    }

    /// Stores a flow summary (not flushed: sled flushes on its own within half a second).
    pub fn append_flow_summary(&self, s: &FlowSummary) -> Result<(), HistoryError> {
        self.append_json(Kind::Flows, s.ts_ms, s)
    }

    pub fn append_score(&self, s: &ScoreSummary) -> Result<(), HistoryError> {
        self.append_json(Kind::Scores, s.ts_ms, s)
    }

    fn query_json<T: serde::de::DeserializeOwned>(
        &self,
        kind: Kind,
        range: &TimeRange,
        mut keep: impl FnMut(&T) -> bool,
    ) -> Result<Vec<T>, HistoryError> {
        let mut out = Vec::new();
        if range.from_ms >= range.to_ms {
            return Ok(out);
        }
        let (lo, hi) = (time_key(range.from_ms, 0), time_key(range.to_ms, 0));
        // Newest first, so `limit` keeps the newest; reversed at the end.
        for tree in self
            .trees_between(kind, range.from_ms, range.to_ms)
            .iter()
            .rev()
        {
            for kv in tree.range(lo..hi).rev() {
                let (_, v) = kv?;
                let rec: T = serde_json::from_slice(&v)?;
                if keep(&rec) {
                    out.push(rec);
                    if out.len() >= range.limit {
                        out.reverse();
                        return Ok(out);
                    }
                }
            }
        }
        out.reverse();
        Ok(out)
    }

    /// Flow summaries in `range`, oldest first (the newest `range.limit`).
    pub fn flow_summaries(&self, range: &TimeRange) -> Result<Vec<FlowSummary>, HistoryError> {
        self.query_json(Kind::Flows, range, |_| true)
    }

    /// Score summaries in `range`, optionally of one detector, oldest first.
    pub fn scores(
        &self,
        range: &TimeRange,
        detector: Option<&str>,
    ) -> Result<Vec<ScoreSummary>, HistoryError> {
        self.query_json(Kind::Scores, range, |s: &ScoreSummary| {
            detector.is_none_or(|d| canonical_detector(&s.detector) == canonical_detector(d))
        })
    }

    /// Score summaries in `range` of one detector and subject (an interface's
    /// `target/if_name`), oldest first.
    pub fn scores_of(
        &self,
        range: &TimeRange,
        detector: &str,
        subject: &str,
    ) -> Result<Vec<ScoreSummary>, HistoryError> {
        self.query_json(Kind::Scores, range, |s: &ScoreSummary| {
            canonical_detector(&s.detector) == canonical_detector(detector) && s.subject == subject
        })
    }

    /// Alert JSON values in `range`, optionally of one severity, oldest first.
    pub fn alerts_json(
        &self,
        range: &TimeRange,
        severity: Option<&str>,
    ) -> Result<Vec<serde_json::Value>, HistoryError> {
        self.query_json(Kind::Alerts, range, |a: &serde_json::Value| {
            severity.is_none_or(|s| a.get("severity").and_then(|v| v.as_str()) == Some(s))
        })
    }

    /// Drops the `kind` records of every bucket that ends at or before `before_ms` (series
    /// retention); returns how many buckets had some.
    pub fn drop_before(&self, kind: Kind, before_ms: u64) -> Result<u64, HistoryError> {
        let victims: Vec<u64> = self
            .lock()
            .iter()
            .filter(|(start, b)| {
                *start + self.bucket_ms <= before_ms && b.bytes[kind_index(kind)] > 0
            })
            .map(|(s, _)| *s)
            .collect();
        for start in &victims {
            if kind == Kind::Alerts {
                self.db.drop_tree(tree_name(Kind::Alerts, *start))?;
                if let Some(b) = self.lock().get_mut(start) {
                    b.alerts = None;
                }
            } else {
                let tree_db = self.tree_at(kind, *start).map(|_| ());
                tree_db?;
                let db = self.lock().get(start).and_then(|b| b.db.clone());
                if let Some(db) = db {
                    db.drop_tree(kind.name())?;
                }
            }
            if let Some(b) = self.lock().get_mut(start) {
                b.bytes[kind_index(kind)] = 0;
            }
        }
        Ok(victims.len() as u64)
    }

    /// Drops a whole bucket: its alert tree and its database directory (which gives the
    /// space back to the file system at once).
    fn drop_bucket(&self, start: u64) -> Result<(), HistoryError> {
        let removed = self.lock().remove(&start);
        if let Some(b) = removed {
            if b.alerts.is_some() {
                self.db.drop_tree(tree_name(Kind::Alerts, start))?;
            }
            drop(b.db);
            if b.has_db {
                std::fs::remove_dir_all(self.bucket_dir(start))
                    .map_err(|e| HistoryError::Sled(e.into()))?;
            }
        }
        Ok(())
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

    /// Disk use of the main database and the bucket databases: allocated blocks, as `du`.
    pub fn disk_bytes(&self) -> u64 {
        dir_disk_bytes(&self.db_dir) + dir_disk_bytes(&self.hist_dir)
    }

    /// One retention pass at wall-clock time `now_ms`: age first, then size. Runs on the
    /// caller's thread (the daemon calls it every `check_interval` from its own thread).
    pub fn enforce(&self, now_ms: u64) -> Result<RetentionReport, HistoryError> {
        let mut report = RetentionReport::default();
        let horizon = now_ms.saturating_sub(self.cfg.max_age.as_millis() as u64);
        let old: Vec<u64> = self
            .lock()
            .keys()
            .filter(|s| **s + self.bucket_ms <= horizon)
            .copied()
            .collect();
        for s in old {
            self.drop_bucket(s)?;
            report.dropped_age += 1;
        }
        let cap = self.cfg.max_disk_bytes;
        let mut disk = self.disk_bytes();
        let mut live = self.live_bytes();
        let last_disk = self.disk_bytes.load(Ordering::Relaxed);
        if disk > cap / 10 * 9 && disk > last_disk {
            // Near the cap and still growing: keep less live data than before (never under
            // 1/16 of the cap, so that a burst cannot talk retention into keeping nothing).
            let budget = self
                .live_budget
                .load(Ordering::Relaxed)
                .min(live / 10 * 7)
                .max(cap / 16);
            self.live_budget.store(budget, Ordering::Relaxed);
        }
        let budget = self.live_budget.load(Ordering::Relaxed);
        while live > budget || (disk > cap && self.lock().len() > 1) {
            // The oldest bucket; never the newest.
            let oldest = {
                let b = self.lock();
                (b.len() > 1).then(|| b.keys().next().copied()).flatten()
            };
            let Some(victim) = oldest else { break };
            self.drop_bucket(victim)?;
            report.dropped_size += 1;
            live = self.live_bytes();
            disk = self.disk_bytes();
        }
        self.dropped_age
            .fetch_add(report.dropped_age, Ordering::Relaxed);
        self.dropped_size
            .fetch_add(report.dropped_size, Ordering::Relaxed);
        self.disk_bytes.store(disk, Ordering::Relaxed);
        report.disk_bytes = disk;
        report.live_bytes = live;
        Ok(report)
    }

    pub fn stats(&self) -> HistoryStats {
        let b = self.lock();
        HistoryStats {
            buckets: b.len() as u64,
            live_bytes: b.values().map(|x| x.bytes.iter().sum::<u64>()).sum(),
            disk_bytes: self.disk_bytes.load(Ordering::Relaxed),
            live_budget_bytes: self.live_budget.load(Ordering::Relaxed),
            buckets_dropped_age: self.dropped_age.load(Ordering::Relaxed),
            buckets_dropped_size: self.dropped_size.load(Ordering::Relaxed),
        }
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

/// `ts_ms (u64 BE) ++ seq (u64 BE)`.
pub fn time_key(ts_ms: u64, seq: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&ts_ms.to_be_bytes());
    k[8..].copy_from_slice(&seq.to_be_bytes());
    k
}

/// A time range `[from_ms, to_ms)` and how many records at most (the newest).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    pub from_ms: u64,
    pub to_ms: u64,
    pub limit: usize,
}

impl TimeRange {
    pub fn since(from_ms: u64, limit: usize) -> TimeRange {
        TimeRange {
            from_ms,
            to_ms: u64::MAX,
            limit,
        }
    }
}

/// Allocated bytes of every file under `dir` (what `du` counts; sparse files count as used).
pub fn dir_disk_bytes(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => stack.push(e.path()),
                Ok(m) => total += m.blocks() * 512,
                Err(_) => {}
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(dir: &Path, cfg: HistoryConfig) -> History {
        let db = sled::Config::new()
            .path(dir.join("db"))
            .cache_capacity(1 << 20)
            .open()
            .expect("sled");
        History::open(db, &dir.join("db"), cfg).expect("history")
    }

    fn score(ts_ms: u64, detector: &str) -> ScoreSummary {
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

    const MIN: u64 = 60_000;

    #[test]
    fn range_queries_span_buckets_and_keep_the_newest_under_a_limit() {
        let dir = tempfile::tempdir().expect("tmp");
        let cfg = HistoryConfig {
            bucket: Duration::from_secs(60),
            ..HistoryConfig::default()
        };
        let h = open(dir.path(), cfg);
        for i in 0..10u64 {
            let det = if i % 2 == 0 { "flow_ae" } else { "series_ae" };
            h.append_score(&score(i * 30_000, det)).expect("append");
        }
        assert_eq!(h.stats().buckets, 5, "two records per one-minute bucket");
        let r = TimeRange {
            from_ms: 45_000,
            to_ms: 210_000,
            limit: 100,
        };
        let ts: Vec<u64> = h
            .scores(&r, None)
            .expect("q")
            .iter()
            .map(|s| s.ts_ms)
            .collect();
        assert_eq!(ts, [60_000, 90_000, 120_000, 150_000, 180_000]);
        let flow: Vec<u64> = h
            .scores(&r, Some("flow_ae"))
            .expect("q")
            .iter()
            .map(|s| s.ts_ms)
            .collect();
        assert_eq!(flow, [60_000, 120_000, 180_000]);
        let newest: Vec<u64> = h
            .scores(&TimeRange::since(0, 3), None)
            .expect("q")
            .iter()
            .map(|s| s.ts_ms)
            .collect();
        assert_eq!(newest, [210_000, 240_000, 270_000]);
    }

    #[test]
    fn scores_stored_under_the_old_series_lstm_name_are_read_as_series_ae() {
        let dir = tempfile::tempdir().expect("tmp");
        let h = open(dir.path(), HistoryConfig::default());
        // 1 and 3: written before issue 14 renamed the detector; 2: after; 4: the flow detector.
        for (ts, det) in [
            (1, "series_lstm"),
            (2, "series_ae"),
            (3, "series_lstm"),
            (4, "flow_ae"),
        ] {
            let mut s = score(ts, det);
            s.subject = "r1/eth0".into();
            h.append_score(&s).expect("append");
        }
        let r = TimeRange::since(0, 100);
        for name in ["series_ae", "series_lstm"] {
            let ts: Vec<u64> = h
                .scores(&r, Some(name))
                .expect("q")
                .iter()
                .map(|s| s.ts_ms)
                .collect();
            assert_eq!(ts, [1, 2, 3], "detector {name}");
            let of: Vec<u64> = h
                .scores_of(&r, name, "r1/eth0")
                .expect("q")
                .iter()
                .map(|s| s.ts_ms)
                .collect();
            assert_eq!(of, [1, 2, 3], "detector {name}");
        }
        let flow = h.scores(&r, Some("flow_ae")).expect("q");
        assert_eq!(flow.len(), 1);
    }

    #[test]
    fn age_retention_drops_whole_old_buckets_only() {
        let dir = tempfile::tempdir().expect("tmp");
        let cfg = HistoryConfig {
            bucket: Duration::from_secs(60),
            max_age: Duration::from_secs(120),
            ..HistoryConfig::default()
        };
        let h = open(dir.path(), cfg);
        for m in 0..5 {
            h.append_score(&score(m * MIN + 1, "flow_ae"))
                .expect("append");
            h.append_flow_summary(&FlowSummary {
                ts_ms: m * MIN + 1,
                window_ms: MIN,
                flows: 1,
                packets: 1,
                bytes: 1,
                anomalous: 0,
                hosts: 1,
                hosts_untracked: 0,
                top_sources: vec![],
            })
            .expect("append");
        }
        // Now 5 min: the horizon is 3 min, so buckets [0,1) and [1,2) and [2,3) end by it.
        let r = h.enforce(5 * MIN).expect("enforce");
        assert_eq!(r.dropped_age, 3);
        assert_eq!(r.dropped_size, 0);
        let left: Vec<u64> = h
            .scores(&TimeRange::since(0, 100), None)
            .expect("q")
            .iter()
            .map(|s| s.ts_ms)
            .collect();
        assert_eq!(left, [3 * MIN + 1, 4 * MIN + 1]);
        assert_eq!(
            h.flow_summaries(&TimeRange::since(0, 100))
                .expect("q")
                .len(),
            2
        );
        drop(h);
        let h = open(dir.path(), HistoryConfig::default());
        assert_eq!(h.stats().buckets, 2, "drops are durable");
        assert_eq!(
            std::fs::read_dir(dir.path().join("history"))
                .expect("dir")
                .count(),
            2,
            "dropped buckets' databases are gone from the disk"
        );
    }

    #[test]
    fn size_retention_drops_oldest_buckets_first_and_keeps_the_current_one() {
        let dir = tempfile::tempdir().expect("tmp");
        let cfg = HistoryConfig {
            bucket: Duration::from_secs(60),
            max_disk_bytes: 64 << 10, // far below what sled's files take: always over
            ..HistoryConfig::default()
        };
        let h = open(dir.path(), cfg);
        for m in 0..6 {
            for i in 0..50 {
                h.append_score(&score(m * MIN + i, "flow_ae"))
                    .expect("append");
            }
        }
        h.db.flush().expect("flush");
        let r = h.enforce(6 * MIN).expect("enforce");
        assert_eq!(r.dropped_age, 0);
        assert_eq!(r.dropped_size, 5, "all but the newest bucket");
        let left = h.scores(&TimeRange::since(0, 1000), None).expect("q");
        assert_eq!(left.len(), 50);
        assert!(left.iter().all(|s| s.ts_ms >= 5 * MIN));
        assert_eq!(h.stats().buckets_dropped_size, 5);
    }

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
