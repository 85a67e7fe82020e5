//! The reservoir's buckets in sled (tree `samples`, key: bucket start as big-endian u64, value:
//! `records::samples::encode` bytes). Writing a bucket replaces it; only the newest
//! `max_buckets` are kept, so the tree stays bounded.

use super::{Store, StoreError};

const TREE: &str = "samples";

impl Store {
    /// Stores (or replaces) one bucket, then drops the oldest beyond `max_buckets`.
    pub fn put_sample_bucket(
        &self,
        start_ms: u64,
        rows: &[u8],
        max_buckets: usize,
    ) -> Result<(), StoreError> {
        let tree = self.db.open_tree(TREE)?;
        tree.insert(start_ms.to_be_bytes(), rows)?;
        while tree.len() > max_buckets.max(1) {
            match tree.pop_min()? {
                Some(_) => {}
                None => break,
            }
        }
        Ok(())
    }

    /// Every stored bucket, oldest first: (start ms, encoded rows).
    pub fn sample_buckets(&self) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let tree = self.db.open_tree(TREE)?;
        tree.iter()
            .map(|kv| {
                let (k, v) = kv?;
                let start = <[u8; 8]>::try_from(k.as_ref()).map_or(0, u64::from_be_bytes);
                Ok((start, v.to_vec()))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_replaced_and_only_the_newest_kept() {
        let dir = tempfile::tempdir().expect("tmp");
        let s = Store::open(dir.path(), 1 << 20, 100).expect("open");
        s.put_sample_bucket(3_600_000, b"a", 2).expect("put");
        s.put_sample_bucket(3_600_000, b"ab", 2).expect("replace");
        s.put_sample_bucket(0, b"old", 2).expect("put");
        s.put_sample_bucket(7_200_000, b"new", 2).expect("put");
        assert_eq!(
            s.sample_buckets().expect("list"),
            vec![(3_600_000, b"ab".to_vec()), (7_200_000, b"new".to_vec())]
        );
    }
}
