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

    /// Stores window results (and queues the published ones), durably.
    pub fn append_window_results(&self, rows: &[WindowRow]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let tree = self.db.open_tree("eve_windows")?;
        let published = rows.iter().filter(|r| r.topic.is_some()).count();
        if published > 0 {
            self.make_room(published)?;
        }
        let mut prepared = Vec::with_capacity(rows.len());
        for r in rows {
            let seq = self.db.generate_id()?;
            let mut key = r.window_end_ms.to_be_bytes().to_vec();
            key.extend_from_slice(&seq.to_be_bytes());
            let entry = match &r.topic {
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
        self.outbox_len.fetch_add(published, Ordering::Relaxed);
        if let Ok(mut low) = self.low.lock() {
            low.extend(prepared.iter().filter(|p| p.3.is_some()).map(|p| p.1));
        }
        while tree.len() > MAX_WINDOW_ROWS {
            if tree.pop_min()?.is_none() {
                break;
            }
        }
        self.db.flush()?;
        Ok(())
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
}
