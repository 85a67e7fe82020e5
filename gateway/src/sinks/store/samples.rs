//! The reservoir's buckets in sled (tree `samples`, key: bucket start as big-endian u64, then for
//! a `flow-v2` bucket one byte 2, so a schema change inside an hour keeps both; value:
//! `records::samples::encode` bytes). Writing a bucket replaces it; only the newest
//! `max_buckets` are kept, so the tree stays bounded. Tree `samples_meta` key `schema` holds
//! the active flow model's schema, the rows a CSV carries by default.

use crate::records::samples::SchemaPick;
use crate::records::FlowSet;

use super::{Store, StoreError};

const TREE: &str = "samples";
const META: &str = "samples_meta";

fn bucket_key(start_ms: u64, schema: FlowSet) -> Vec<u8> {
    let mut k = start_ms.to_be_bytes().to_vec();
    if schema != FlowSet::V1 {
        k.push(2);
    }
    k
}

impl Store {
    /// Stores (or replaces) one bucket, then drops the oldest beyond `max_buckets`.
    pub fn put_sample_bucket(
        &self,
        start_ms: u64,
        schema: FlowSet,
        rows: &[u8],
        max_buckets: usize,
    ) -> Result<(), StoreError> {
        let tree = self.db.open_tree(TREE)?;
        tree.insert(bucket_key(start_ms, schema), rows)?;
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
                let start = k.first_chunk::<8>().map_or(0, |b| u64::from_be_bytes(*b));
                Ok((start, v.to_vec()))
            })
            .collect()
    }

    /// Records the active flow model's schema (the rows the reservoir keeps from now on).
    pub fn set_samples_schema(&self, schema: FlowSet) -> Result<(), StoreError> {
        let tree = self.db.open_tree(META)?;
        if tree.get(b"schema")?.as_deref() != Some(schema.schema().as_bytes()) {
            tree.insert(b"schema", schema.schema().as_bytes())?;
        }
        Ok(())
    }

    /// The stored rows as CSV ([`crate::records::samples::csv`]); `SchemaPick::Active(None)`
    /// is the active model's schema as recorded.
    pub fn samples_csv(
        &self,
        pick: SchemaPick,
    ) -> Result<(String, crate::records::samples::CsvStats), StoreError> {
        let pick = match pick {
            SchemaPick::Active(None) => SchemaPick::Active(self.samples_schema()?),
            p => p,
        };
        Ok(crate::records::samples::csv(&self.sample_buckets()?, pick))
    }

    /// The schema [`Store::set_samples_schema`] recorded last (`None`: never, or unknown).
    pub fn samples_schema(&self) -> Result<Option<FlowSet>, StoreError> {
        let tree = self.db.open_tree(META)?;
        Ok(tree
            .get(b"schema")?
            .and_then(|v| std::str::from_utf8(&v).ok().and_then(FlowSet::from_schema)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_replaced_and_only_the_newest_kept() {
        let dir = tempfile::tempdir().expect("tmp");
        let s = Store::open(dir.path(), 1 << 20, 100).expect("open");
        let v1 = FlowSet::V1;
        s.put_sample_bucket(3_600_000, v1, b"a", 2).expect("put");
        s.put_sample_bucket(3_600_000, v1, b"ab", 2)
            .expect("replace");
        s.put_sample_bucket(0, v1, b"old", 2).expect("put");
        s.put_sample_bucket(7_200_000, v1, b"new", 2).expect("put");
        assert_eq!(
            s.sample_buckets().expect("list"),
            vec![(3_600_000, b"ab".to_vec()), (7_200_000, b"new".to_vec())]
        );
        // A flow-v2 bucket of the same hour is kept beside the flow-v1 one, after it.
        s.put_sample_bucket(7_200_000, FlowSet::V2, b"v2", 3)
            .expect("put");
        assert_eq!(
            s.sample_buckets().expect("list"),
            vec![
                (3_600_000, b"ab".to_vec()),
                (7_200_000, b"new".to_vec()),
                (7_200_000, b"v2".to_vec())
            ]
        );
        assert_eq!(s.samples_schema().expect("meta"), None);
        s.set_samples_schema(FlowSet::V2).expect("set");
        assert_eq!(s.samples_schema().expect("meta"), Some(FlowSet::V2));
    }
}
