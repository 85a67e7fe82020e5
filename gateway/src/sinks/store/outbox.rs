//! The MQTT outbox: key `seq (u64 BE)`, value [`OutboxEntry`], capped, with the in-memory
//! index of non-high entries that makes an eviction cheap and the persisted overflow report.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;

use serde::{Deserialize, Serialize};

use super::{Store, StoreError};

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

impl OverflowReport {
    /// Counts one alert that left (or never entered) the outbox; `alert_ts_ms` is its event
    /// time (0 when unknown).
    pub(super) fn count(&mut self, high: bool, alert_ts_ms: u64) {
        self.dropped_total += 1;
        if high {
            self.dropped_high += 1;
        } else {
            self.dropped_other += 1;
        }
        self.last_dropped_alert_ts_ms = self.last_dropped_alert_ts_ms.max(alert_ts_ms);
    }
}

const OVERFLOW_KEY: &[u8] = b"outbox_overflow";

/// What `open` reads back of the outbox: its length, the seqs of its non-high entries (the
/// eviction candidates, oldest first) and the overflow report so far.
pub(super) struct OutboxIndex {
    pub(super) len: usize,
    pub(super) low: BTreeSet<u64>,
    pub(super) overflow: OverflowReport,
}

/// Scans the outbox (bounded by the cap) and reads the overflow report from `meta`.
pub(super) fn load_index(
    outbox: &sled::Tree,
    meta: &sled::Tree,
    outbox_cap: usize,
) -> Result<OutboxIndex, StoreError> {
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
    overflow.outbox_max_alerts = outbox_cap as u64;
    Ok(OutboxIndex { len, low, overflow })
}

impl Store {
    /// Admits a batch of new outbox entries, given as `(high, alert ts_ms)` in batch order (0:
    /// no alert time): returns, per entry, whether it enters the outbox, and how many entries
    /// left or could not enter. A batch larger than the whole outbox keeps its oldest non-high
    /// entries, then its oldest high ones, out (their callers still store them), counted as
    /// drops; room is then made for the rest ([`Store::make_room`]). The caller inserts the
    /// admitted entries and adds them to `outbox_len`.
    pub(super) fn admit(&self, batch: &[(bool, u64)]) -> Result<(Vec<bool>, u64), StoreError> {
        let mut queued = vec![true; batch.len()];
        let excess = batch.len().saturating_sub(self.outbox_cap);
        if excess > 0 {
            let mut report = OverflowReport::default();
            let order = (0..batch.len())
                .filter(|&i| !batch[i].0)
                .chain((0..batch.len()).filter(|&i| batch[i].0))
                .take(excess);
            for i in order {
                queued[i] = false;
                report.count(batch[i].0, batch[i].1);
            }
            self.note_overflow(&report)?;
        }
        let made_room = if batch.len() > excess {
            self.make_room(batch.len() - excess)?
        } else {
            0
        };
        Ok((queued, excess as u64 + made_room))
    }

    /// Makes the outbox hold at most `cap - incoming` entries: the oldest entry that is not
    /// `high` goes first, then the oldest `high` one. ([`Store::admit`] never asks for more
    /// room than the cap: the excess of a larger batch stays out of the outbox.)
    pub(super) fn make_room(&self, incoming: usize) -> Result<u64, StoreError> {
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
            let entry: Option<OutboxEntry> = serde_json::from_slice(&v).ok();
            let high = entry.as_ref().is_some_and(|e| e.high);
            let ts = entry
                .and_then(|e| serde_json::from_str::<serde_json::Value>(&e.payload).ok())
                .and_then(|a| a["ts_ms"].as_u64());
            report.count(high, ts.unwrap_or(0));
        }
        self.note_overflow(&report)?;
        Ok(report.dropped_total)
    }

    /// Adds alerts that left (or never entered) the full outbox to the persisted report.
    pub(super) fn note_overflow(&self, report: &OverflowReport) -> Result<(), StoreError> {
        if report.dropped_total == 0 {
            return Ok(());
        }
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
        Ok(())
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
}

#[cfg(test)]
mod tests {
    use super::super::tests::alert;
    use super::*;
    use crate::records::Alert;

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

    /// A batch larger than the whole outbox (an alert storm scored in one go) leaves the
    /// outbox at its cap: the batch's oldest non-high alerts stay out, then its oldest high
    /// ones, all counted; the history keeps every alert, and the counts survive a restart.
    #[test]
    fn a_batch_larger_than_the_outbox_keeps_it_at_its_cap() {
        let dir = tempfile::tempdir().expect("tmp");
        let s = Store::open(dir.path(), 1 << 20, 5).expect("open");
        s.append_alert(&alert(0, "medium"), "t").expect("a");
        let batch: Vec<_> = (1..=15)
            .map(|n| alert(n, if n % 3 == 0 { "high" } else { "medium" }))
            .collect();
        let rows: Vec<_> = batch.iter().map(|a| (a, "t".to_string())).collect();
        // 10 of the batch never enter the outbox, and id-0 leaves it.
        assert_eq!(s.append_alerts(&rows).expect("batch"), 11);
        assert_eq!(s.outbox_len(), 5);
        // The five high ones (3, 6, 9, 12, 15) outrank the ten medium ones.
        assert_eq!(outbox_ids(&s), ["id-3", "id-6", "id-9", "id-12", "id-15"]);
        let o = s.overflow();
        assert_eq!(
            (o.dropped_total, o.dropped_high, o.dropped_other),
            (11, 0, 11)
        );
        assert_eq!(o.last_dropped_alert_ts_ms, 1014, "id-14, the newest medium");
        assert_eq!(s.alerts(0, 100).expect("alerts").len(), 16);
        // Larger still: high ones go too, oldest first.
        let batch: Vec<_> = (20..27).map(|n| alert(n, "high")).collect();
        let rows: Vec<_> = batch.iter().map(|a| (a, "t".to_string())).collect();
        assert_eq!(s.append_alerts(&rows).expect("batch"), 7);
        assert_eq!(
            outbox_ids(&s),
            ["id-22", "id-23", "id-24", "id-25", "id-26"]
        );
        drop(s);
        let s = Store::open(dir.path(), 1 << 20, 5).expect("reopen");
        assert_eq!(s.outbox_len(), 5);
        let o = s.overflow();
        assert_eq!(
            (o.dropped_total, o.dropped_high, o.dropped_other),
            (18, 7, 11)
        );
        assert_eq!(s.alerts(0, 100).expect("alerts").len(), 23);
    }
}
