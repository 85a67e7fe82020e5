//! NetFlow v9/IPFIX templates kept across restarts (`netflow_templates`: key as the template
//! book names it, value when it was last announced and netflow_parser's encoding). The
//! book (`sources/netflow/templates.rs`) decides what is kept and what expired; this only
//! reads and writes its rows.

use super::{Store, StoreError};

impl Store {
    /// Every kept template row.
    pub fn load_templates(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let tree = self.db.open_tree("netflow_templates")?;
        let mut rows = Vec::new();
        for row in tree.iter() {
            let (k, v) = row?;
            // A key that is not text is no key the book wrote: it is dropped by the book too.
            rows.push((String::from_utf8_lossy(&k).into_owned(), v.to_vec()));
        }
        Ok(rows)
    }

    /// Writes (`Some`) and deletes (`None`) template rows in one batch, flushed.
    pub fn save_templates(&self, changes: &[(String, Option<Vec<u8>>)]) -> Result<(), StoreError> {
        if changes.is_empty() {
            return Ok(());
        }
        let tree = self.db.open_tree("netflow_templates")?;
        let mut batch = sled::Batch::default();
        for (k, v) in changes {
            match v {
                Some(v) => batch.insert(k.as_bytes(), v.as_slice()),
                None => batch.remove(k.as_bytes()),
            }
        }
        tree.apply_batch(batch)?;
        tree.flush()?;
        Ok(())
    }
}
