//! The learning period's state in sled (tree `learning`), so a restart resumes it: per
//! detector its [`LearningStatus`] (JSON, key `status/<detector>`) and the scores it keeps
//! (opaque bytes the pipeline encodes, key `samples/<detector>`), and for a `flow-v2` flow model
//! the services learnt (its novelty filter, key `novelty/<detector>`). `netwarden learn
//! --restart` clears the tree.

use crate::records::learning::LearningStatus;

use super::{Store, StoreError};

const TREE: &str = "learning";

impl Store {
    /// Saves one detector's state (status and samples in one batch, then flushed).
    pub fn save_learning(&self, status: &LearningStatus, samples: &[u8]) -> Result<(), StoreError> {
        self.save_learning_with(status, samples, None)
    }

    /// [`Store::save_learning`], with the `flow-v2` novelty filter in the same batch when given.
    pub fn save_learning_with(
        &self,
        status: &LearningStatus,
        samples: &[u8],
        novelty: Option<&[u8]>,
    ) -> Result<(), StoreError> {
        let tree = self.db.open_tree(TREE)?;
        let mut batch = sled::Batch::default();
        batch.insert(
            format!("status/{}", status.detector).as_bytes(),
            serde_json::to_vec(status)?,
        );
        batch.insert(format!("samples/{}", status.detector).as_bytes(), samples);
        if let Some(n) = novelty {
            batch.insert(format!("novelty/{}", status.detector).as_bytes(), n);
        }
        tree.apply_batch(batch)?;
        tree.flush()?;
        Ok(())
    }

    /// One detector's saved state, if any.
    pub fn load_learning(
        &self,
        detector: &str,
    ) -> Result<Option<(LearningStatus, Vec<u8>)>, StoreError> {
        let tree = self.db.open_tree(TREE)?;
        let Some(status) = tree.get(format!("status/{detector}").as_bytes())? else {
            return Ok(None);
        };
        let status: LearningStatus = serde_json::from_slice(&status)?;
        let samples = tree
            .get(format!("samples/{detector}").as_bytes())?
            .map(|v| v.to_vec())
            .unwrap_or_default();
        Ok(Some((status, samples)))
    }

    /// One detector's saved `flow-v2` novelty filter, if any.
    pub fn load_novelty(&self, detector: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let tree = self.db.open_tree(TREE)?;
        Ok(tree
            .get(format!("novelty/{detector}").as_bytes())?
            .map(|v| v.to_vec()))
    }

    /// Every detector's saved state.
    pub fn learning_statuses(&self) -> Result<Vec<LearningStatus>, StoreError> {
        let tree = self.db.open_tree(TREE)?;
        tree.scan_prefix(b"status/")
            .map(|kv| Ok(serde_json::from_slice(&kv?.1)?))
            .collect()
    }

    /// Forgets what every detector learnt: the next start learns again.
    pub fn reset_learning(&self) -> Result<(), StoreError> {
        let tree = self.db.open_tree(TREE)?;
        tree.clear()?;
        tree.flush()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(phase: &str) -> LearningStatus {
        LearningStatus {
            detector: "flow_ae".into(),
            phase: phase.into(),
            period_ms: 60_000,
            start_ms: Some(1_000),
            seen_until_ms: 31_000,
            scored: 42,
            shipped_threshold: 0.02,
            alert_ratio: 10.0,
            fitted: None,
            model: String::new(),
        }
    }

    #[test]
    fn learning_state_survives_a_reopen_and_a_restart_clears_it() {
        let dir = tempfile::tempdir().expect("tmp");
        {
            let s = Store::open(dir.path(), 1 << 20, 100).expect("open");
            assert!(s.load_learning("flow_ae").expect("load").is_none());
            s.save_learning(&status("learning"), &[1, 2, 3])
                .expect("save");
        }
        let s = Store::open(dir.path(), 1 << 20, 100).expect("reopen");
        let (st, samples) = s.load_learning("flow_ae").expect("load").expect("saved");
        assert_eq!((st, samples), (status("learning"), vec![1, 2, 3]));
        assert_eq!(s.learning_statuses().expect("all").len(), 1);
        assert!(s.load_novelty("flow_ae").expect("novelty").is_none());
        s.save_learning_with(&status("done"), &[], Some(&[9; 16]))
            .expect("save with novelty");
        drop(s);
        let s = Store::open(dir.path(), 1 << 20, 100).expect("reopen");
        assert_eq!(
            s.load_novelty("flow_ae").expect("novelty"),
            Some(vec![9; 16])
        );
        s.reset_learning().expect("reset");
        assert!(s.load_learning("flow_ae").expect("load").is_none());
        assert!(s.load_novelty("flow_ae").expect("novelty").is_none());
    }
}
