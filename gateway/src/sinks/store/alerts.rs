//! The alert history: an alert enters its history bucket and the outbox in one transaction
//! (flushed before it is published), and is read back by time range or page.

use std::sync::atomic::Ordering;

use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;

use super::{Store, StoreError};
use crate::records::Alert;
use crate::sinks::history::{Kind, TimeRange};

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
            let entry = serde_json::to_vec(&super::OutboxEntry {
                topic: topic.clone(),
                payload: json.clone(),
                high: alert.severity == "high",
            })?;
            let seq = self.db.generate_id()?;
            let akey = crate::sinks::history::time_key(alert.ts_ms, seq);
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
}

#[cfg(test)]
mod tests {
    use super::super::tests::alert;
    use super::*;

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
}
