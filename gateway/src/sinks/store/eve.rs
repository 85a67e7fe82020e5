//! What the EVE source keeps in the store: file positions (`eve_positions`: path -> inode,
//! fingerprint, offset) and window results (`eve_windows`: key `window end ms (BE) ++ seq`,
//! value the result's JSON), the latter also queued in the outbox when they are published.
//! Results and their outbox entries go in one transaction, flushed before returning, so a
//! result is never published without being stored.

use std::sync::atomic::Ordering;

use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;

use super::{OutboxEntry, Store, StoreError};

/// Window results kept at most (oldest removed first).
const MAX_WINDOW_ROWS: usize = 200_000;

/// A window result to store: its JSON, the end of its window, and the MQTT topic when it is
/// published.
#[derive(Debug, Clone)]
pub struct WindowRow {
    pub json: String,
    pub window_end_ms: u64,
    pub topic: Option<String>,
}

impl Store {
    /// The tree of EVE file positions.
    pub fn eve_positions(&self) -> Result<sled::Tree, StoreError> {
        Ok(self.db.open_tree("eve_positions")?)
    }

    /// Stores window results (and queues the published ones), durably. Returns how many
    /// entries had to leave (or could not enter) the full outbox: like alerts, a batch with
    /// more published results than the whole outbox keeps its first ones out of it (they stay
    /// stored), and older non-high entries leave to make room for the rest.
    pub fn append_window_results(&self, rows: &[WindowRow]) -> Result<u64, StoreError> {
        if rows.is_empty() {
            return Ok(0);
        }
        let tree = self.db.open_tree("eve_windows")?;
        // Published results enter the outbox as non-high entries with no alert time, under the
        // same rule as alerts: a batch larger than the outbox keeps its first ones out.
        let published = rows.iter().filter(|r| r.topic.is_some()).count();
        let (admitted, dropped) = self.admit(&vec![(false, 0); published])?;
        let mut admitted = admitted.into_iter();
        let mut prepared = Vec::with_capacity(rows.len());
        for r in rows {
            let seq = self.db.generate_id()?;
            let mut key = r.window_end_ms.to_be_bytes().to_vec();
            key.extend_from_slice(&seq.to_be_bytes());
            let topic = r
                .topic
                .as_ref()
                .filter(|_| admitted.next().unwrap_or(false));
            let entry = match topic {
                Some(topic) => Some(serde_json::to_vec(&OutboxEntry {
                    topic: topic.clone(),
                    payload: r.json.clone(),
                    high: false,
                })?),
                None => None,
            };
            prepared.push((key, seq, r.json.as_bytes(), entry));
        }
        (&tree, &self.outbox)
            .transaction(|(w, o)| {
                for (key, seq, json, entry) in &prepared {
                    w.insert(key.as_slice(), *json)?;
                    if let Some(e) = entry {
                        o.insert(&seq.to_be_bytes()[..], e.as_slice())?;
                    }
                }
                Ok::<_, ConflictableTransactionError<()>>(())
            })
            .map_err(|e| match e {
                TransactionError::Storage(s) => StoreError::Sled(s),
                TransactionError::Abort(()) => {
                    StoreError::Sled(sled::Error::Unsupported("transaction aborted".into()))
                }
            })?;
        let queued = prepared.iter().filter(|p| p.3.is_some()).count();
        self.outbox_len.fetch_add(queued, Ordering::Relaxed);
        if let Ok(mut low) = self.low.lock() {
            low.extend(prepared.iter().filter(|p| p.3.is_some()).map(|p| p.1));
        }
        while tree.len() > MAX_WINDOW_ROWS {
            if tree.pop_min()?.is_none() {
                break;
            }
        }
        self.db.flush()?;
        Ok(dropped)
    }

    /// Stored window results whose window ended at or after `since_ms`, oldest first.
    pub fn window_results(&self, since_ms: u64, limit: usize) -> Result<Vec<String>, StoreError> {
        let tree = self.db.open_tree("eve_windows")?;
        let mut out = Vec::new();
        for kv in tree.range(since_ms.to_be_bytes().to_vec()..).take(limit) {
            let (_, v) = kv?;
            out.push(String::from_utf8_lossy(&v).into_owned());
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_are_stored_and_published_ones_queued() {
        let d = tempfile::tempdir().expect("dir");
        let s = Store::open(d.path(), 1 << 20, 100).expect("store");
        s.append_window_results(&[
            WindowRow {
                json: r#"{"view":"dhcp","key":"1"}"#.into(),
                window_end_ms: 2_000,
                topic: Some("netwarden/s/d/eve/windows/dhcp".into()),
            },
            WindowRow {
                json: r#"{"view":"dhcp","key":"2"}"#.into(),
                window_end_ms: 1_000,
                topic: None,
            },
        ])
        .expect("append");
        assert_eq!(s.window_results(0, 10).expect("read").len(), 2);
        assert_eq!(s.window_results(1_500, 10).expect("read").len(), 1);
        assert_eq!(s.outbox_len(), 1);
        let queued = s.outbox_from(0, 10).expect("outbox");
        assert_eq!(queued[0].1.topic, "netwarden/s/d/eve/windows/dhcp");
    }

    #[test]
    fn more_published_results_than_the_outbox_holds_keep_it_at_its_cap() {
        let d = tempfile::tempdir().expect("dir");
        let s = Store::open(d.path(), 1 << 20, 3).expect("store");
        let row = |i: u64| WindowRow {
            json: format!(r#"{{"view":"dns","key":"{i}"}}"#),
            window_end_ms: 1_000 * i,
            topic: Some("netwarden/s/d/eve/windows/dns".into()),
        };
        assert_eq!(s.append_window_results(&[row(1)]).expect("append"), 0);
        // Five more into an outbox of three holding one: two of the batch stay out, and the
        // older entry leaves for the other three.
        let dropped = s
            .append_window_results(&(2..7).map(row).collect::<Vec<_>>())
            .expect("append");
        assert_eq!(dropped, 3);
        assert_eq!(s.outbox_len(), 3);
        let queued = s.outbox_from(0, 10).expect("outbox");
        let keys: Vec<&str> = queued.iter().map(|(_, e)| e.payload.as_str()).collect();
        assert!(keys[0].contains(r#""key":"4""#), "{keys:?}");
        assert!(keys[2].contains(r#""key":"6""#), "{keys:?}");
        assert_eq!(s.overflow().dropped_total, 3);
        assert_eq!(s.overflow().dropped_other, 3);
        // Every result is still stored.
        assert_eq!(s.window_results(0, 10).expect("read").len(), 6);
    }
}
