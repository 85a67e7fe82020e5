//! Appending records to the bucket of their time and reading a time range back, newest kept
//! under a limit.

use serde::Serialize;

use super::{time_key, History, HistoryError, Kind};
use crate::records::{canonical_detector, FlowSummary, ScoreSummary};

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

impl History {
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
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::tests::{open, score};
    use super::super::HistoryConfig;
    use super::TimeRange;

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
}
