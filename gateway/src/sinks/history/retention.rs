//! Retention: whole buckets dropped by age, then by size (a live-byte budget that shrinks
//! while the disk use stays near the cap), never the newest for size.

use std::path::Path;
use std::sync::atomic::Ordering;

use serde::Serialize;

use super::keys::{kind_index, tree_name};
use super::{History, HistoryError, Kind};

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

impl History {
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
    use std::time::Duration;

    use super::super::tests::{open, score, MIN};
    use super::super::{HistoryConfig, TimeRange};
    use crate::records::FlowSummary;

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
}
