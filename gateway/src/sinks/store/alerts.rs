//! The alert history: an alert enters its history bucket and the outbox in one transaction
//! (flushed before it is published), and is read back by time range or page.

use std::sync::atomic::Ordering;

use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;

use super::{Store, StoreError};
use crate::records::Alert;
use crate::sinks::history::{Kind, TimeRange};

/// One alert of a batch, as it is written.
struct AlertRow {
    /// History key (event time, seq).
    key: [u8; 16],
    /// Outbox key.
    seq: u64,
    json: String,
    /// The outbox entry (topic, payload, severity).
    entry: Vec<u8>,
    ts_ms: u64,
    high: bool,
    /// Whether it enters the outbox (false only for the part of a batch larger than the
    /// outbox).
    queued: bool,
}

fn transaction_error(e: TransactionError<()>) -> StoreError {
    match e {
        TransactionError::Storage(s) => StoreError::Sled(s),
        TransactionError::Abort(()) => {
            StoreError::Sled(sled::Error::Unsupported("transaction aborted".into()))
        }
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
            let high = alert.severity == "high";
            let entry = serde_json::to_vec(&super::OutboxEntry {
                topic: topic.clone(),
                payload: json.clone(),
                high,
            })?;
            let seq = self.db.generate_id()?;
            rows.push(AlertRow {
                key: crate::sinks::history::time_key(alert.ts_ms, seq),
                seq,
                json,
                entry,
                ts_ms: alert.ts_ms,
                high,
                queued: true,
            });
        }
        // A batch larger than the whole outbox keeps its oldest alerts (non-high first) out of
        // it: they stay in the history and count as dropped.
        let batch: Vec<(bool, u64)> = rows.iter().map(|r| (r.high, r.ts_ms)).collect();
        let (queued, dropped) = self.admit(&batch)?;
        for (r, q) in rows.iter_mut().zip(queued) {
            r.queued = q;
        }
        let low: Vec<u64> = rows
            .iter()
            .filter(|r| r.queued && !r.high)
            .map(|r| r.seq)
            .collect();
        // One transaction per history bucket the batch touches (almost always one).
        let mut rest = rows.as_slice();
        while let Some(first) = rest.first() {
            let start = self.history.bucket_start(first.ts_ms);
            let n = rest
                .iter()
                .take_while(|r| self.history.bucket_start(r.ts_ms) == start)
                .count();
            let (group, tail) = rest.split_at(n);
            let in_history = self.append_group(first.ts_ms, group)?;
            if in_history {
                for r in group {
                    self.history
                        .account(Kind::Alerts, r.ts_ms, r.key.len() + r.json.len());
                }
            }
            let queued = group.iter().filter(|r| r.queued).count();
            self.outbox_len.fetch_add(queued, Ordering::Relaxed);
            rest = tail;
        }
        if let Ok(mut set) = self.low.lock() {
            set.extend(low);
        }
        self.db.flush()?;
        Ok(dropped)
    }

    /// Writes one bucket's group of alerts into its history tree and the outbox in one
    /// transaction. Retention may drop that bucket's tree between `tree_for` and the
    /// transaction (an alert stamped with an old event time lands in a bucket retention is
    /// removing): the write is then tried again on the bucket's fresh tree, and if that keeps
    /// failing the alerts go into the outbox alone, so they are still published (counted in
    /// `alerts_outside_history`). Returns whether they entered the history.
    fn append_group(&self, ts_ms: u64, group: &[AlertRow]) -> Result<bool, StoreError> {
        const TRIES: usize = 3;
        for _ in 0..TRIES {
            let bucket = self.history.tree_for(Kind::Alerts, ts_ms)?;
            let written = (&bucket, &self.outbox).transaction(|(a, o)| {
                for r in group {
                    a.insert(&r.key[..], r.json.as_bytes())?;
                    if r.queued {
                        o.insert(&r.seq.to_be_bytes()[..], r.entry.as_slice())?;
                    }
                }
                Ok::<_, ConflictableTransactionError<()>>(())
            });
            match written {
                Ok(()) => return Ok(true),
                Err(TransactionError::Storage(sled::Error::CollectionNotFound(_))) => continue,
                Err(e) => return Err(transaction_error(e)),
            }
        }
        self.outbox
            .transaction(|o| {
                for r in group.iter().filter(|r| r.queued) {
                    o.insert(&r.seq.to_be_bytes()[..], r.entry.as_slice())?;
                }
                Ok::<_, ConflictableTransactionError<()>>(())
            })
            .map_err(transaction_error)?;
        self.alerts_outside_history
            .fetch_add(group.len() as u64, Ordering::Relaxed);
        tracing::warn!(
            alerts = group.len(),
            ts_ms,
            "Alert history bucket was being dropped by retention; alerts queued for publishing without a history entry"
        );
        Ok(false)
    }

    /// Alerts published without a history entry because retention was dropping their bucket.
    pub fn alerts_outside_history(&self) -> u64 {
        self.alerts_outside_history.load(Ordering::Relaxed)
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

    /// Retention dropping the alerts' bucket while they are written (alerts with old event
    /// times) never loses one: each enters the outbox, with or without its history entry.
    #[test]
    fn alerts_written_while_retention_drops_their_bucket_all_reach_the_outbox() {
        let dir = tempfile::tempdir().expect("tmp");
        let s = std::sync::Arc::new(Store::open(dir.path(), 1 << 20, 100_000).expect("open"));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let dropper = {
            let (s, stop) = (s.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut rounds = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    s.history()
                        .drop_before(Kind::Alerts, u64::MAX / 2)
                        .expect("retention");
                    rounds += 1;
                }
                rounds
            })
        };
        const N: u64 = 400;
        for n in 0..N {
            s.append_alert(&alert(n, "medium"), "t").expect("append");
        }
        stop.store(true, Ordering::Relaxed);
        let rounds = dropper.join().expect("dropper");
        assert!(rounds > 0);
        assert_eq!(s.outbox_len(), N as usize);
        let seqs: Vec<_> = s.outbox_from(0, N as usize + 1).expect("outbox");
        assert_eq!(seqs.len(), N as usize, "every alert is in the outbox");
    }
}
