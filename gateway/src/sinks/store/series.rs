//! SNMP rate samples in the `series` tree of each history bucket: one 28-byte record per
//! interface and poll step, keyed by interface name and time.

use super::{Store, StoreError};
use crate::records::RateSample;
use crate::sinks::history::Kind;

impl Store {
    /// Appends one rate sample to the `series` tree (not flushed: losing the last second of
    /// samples in a crash is fine, flushing per sample is not).
    pub fn append_sample(&self, s: &RateSample) -> Result<(), StoreError> {
        let mut v = [0u8; SERIES_VALUE_LEN];
        v[..4].copy_from_slice(&s.if_index.to_be_bytes());
        v[4..12].copy_from_slice(&s.step_ms.to_be_bytes());
        v[12..20].copy_from_slice(&s.in_bps.unwrap_or(f64::NAN).to_be_bytes());
        v[20..28].copy_from_slice(&s.out_bps.unwrap_or(f64::NAN).to_be_bytes());
        let key = series_key(&s.target, &s.if_name, s.ts_ms);
        self.history
            .tree_for(Kind::Series, s.ts_ms)?
            .insert(key.as_slice(), &v[..])?;
        self.history
            .account(Kind::Series, s.ts_ms, key.len() + v.len());
        Ok(())
    }

    /// Samples of one interface with `from_ms <= ts_ms < to_ms`, oldest first.
    pub fn series(
        &self,
        target: &str,
        if_name: &str,
        from_ms: u64,
        to_ms: u64,
    ) -> Result<Vec<RateSample>, StoreError> {
        let mut out = Vec::new();
        if from_ms >= to_ms {
            return Ok(out);
        }
        let range = series_key(target, if_name, from_ms)..series_key(target, if_name, to_ms);
        for tree in self.history.trees_between(Kind::Series, from_ms, to_ms) {
            for kv in tree.range(range.clone()) {
                let (k, v) = kv?;
                out.push(decode_sample(target, if_name, &k, &v)?);
            }
        }
        Ok(out)
    }

    /// Every `(target, if_name)` with stored samples (a skip scan: one seek per series).
    pub fn series_names(&self) -> Result<Vec<(String, String)>, StoreError> {
        let mut names = std::collections::BTreeSet::new();
        for tree in self.history.trees_between(Kind::Series, 0, u64::MAX) {
            names.extend(series_names_in(&tree)?);
        }
        Ok(names.into_iter().collect())
    }

    /// Drops the rate samples older than `before_ms` (whole buckets: a bucket goes when all
    /// of it is older); returns how many buckets.
    pub fn prune_series(&self, before_ms: u64) -> Result<u64, StoreError> {
        Ok(self.history.drop_before(Kind::Series, before_ms)?)
    }
}

fn series_names_in(tree: &sled::Tree) -> Result<Vec<(String, String)>, StoreError> {
    {
        let mut out = Vec::new();
        let mut from: Vec<u8> = Vec::new();
        while let Some((k, _)) = tree.range(from.as_slice()..).next().transpose()? {
            let Some(prefix) = series_prefix(&k) else {
                return Err(StoreError::BadSeriesRecord { len: k.len() });
            };
            let mut parts = prefix[..prefix.len() - 1].splitn(2, |b| *b == 0);
            let target = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
            let name = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
            out.push((target, name));
            from = prefix.to_vec();
            from.extend_from_slice(&[0xFF; 9]);
        }
        Ok(out)
    }
}

const SERIES_VALUE_LEN: usize = 28;

fn series_key(target: &str, if_name: &str, ts_ms: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(target.len() + if_name.len() + 10);
    k.extend_from_slice(target.as_bytes());
    k.push(0);
    k.extend_from_slice(if_name.as_bytes());
    k.push(0);
    k.extend_from_slice(&ts_ms.to_be_bytes());
    k
}

/// `target 0 if_name 0` of a series key.
fn series_prefix(k: &[u8]) -> Option<&[u8]> {
    let n = k.len().checked_sub(8)?;
    let prefix = &k[..n];
    (prefix.last() == Some(&0) && prefix.iter().filter(|b| **b == 0).count() == 2).then_some(prefix)
}

fn decode_sample(
    target: &str,
    if_name: &str,
    k: &[u8],
    v: &[u8],
) -> Result<RateSample, StoreError> {
    let bad = || StoreError::BadSeriesRecord { len: v.len() };
    if v.len() != SERIES_VALUE_LEN || k.len() < 8 {
        return Err(bad());
    }
    let ts_ms = u64::from_be_bytes(k[k.len() - 8..].try_into().map_err(|_| bad())?);
    let if_index = u32::from_be_bytes(v[..4].try_into().map_err(|_| bad())?);
    let step_ms = u64::from_be_bytes(v[4..12].try_into().map_err(|_| bad())?);
    let rate = |b: &[u8]| -> Result<Option<f64>, StoreError> {
        let x = f64::from_be_bytes(b.try_into().map_err(|_| bad())?);
        Ok((!x.is_nan()).then_some(x))
    };
    Ok(RateSample {
        target: target.to_string(),
        if_index,
        if_name: if_name.to_string(),
        ts_ms,
        step_ms,
        in_bps: rate(&v[12..20])?,
        out_bps: rate(&v[20..28])?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sinks::history::HistoryConfig;

    fn sample(target: &str, name: &str, ts_ms: u64, in_bps: Option<f64>) -> RateSample {
        RateSample {
            target: target.into(),
            if_index: 3,
            if_name: name.into(),
            ts_ms,
            step_ms: 10_000,
            in_bps,
            out_bps: Some(1.5),
        }
    }

    #[test]
    fn series_range_query_by_interface_and_time_and_pruning() {
        let dir = tempfile::tempdir().expect("tmp");
        let one_second = HistoryConfig {
            bucket: std::time::Duration::from_secs(1),
            ..HistoryConfig::default()
        };
        let s = Store::open_with(dir.path(), 1 << 20, 3, one_second).expect("open");
        for ts in [1_000, 2_000, 3_000] {
            s.append_sample(&sample("r1", "eth0", ts, Some(ts as f64)))
                .expect("append");
            s.append_sample(&sample("r1", "eth0.1", ts, None))
                .expect("append");
            s.append_sample(&sample("r10", "eth0", ts, Some(1.0)))
                .expect("append");
        }
        let got = s.series("r1", "eth0", 1_500, 3_001).expect("query");
        assert_eq!(
            got,
            [
                sample("r1", "eth0", 2_000, Some(2_000.0)),
                sample("r1", "eth0", 3_000, Some(3_000.0))
            ]
        );
        let unknown = s.series("r1", "eth0.1", 0, u64::MAX).expect("query");
        assert_eq!(unknown.len(), 3);
        assert!(unknown.iter().all(|x| x.in_bps.is_none()));
        assert_eq!(
            s.series_names().expect("names"),
            [
                ("r1".to_string(), "eth0".to_string()),
                ("r1".to_string(), "eth0.1".to_string()),
                ("r10".to_string(), "eth0".to_string())
            ]
        );
        // Whole buckets go: [1000, 2000) and [2000, 3000) end by 3000; [3000, 4000) stays.
        assert_eq!(s.prune_series(3_500).expect("prune"), 2);
        assert_eq!(s.series("r1", "eth0", 0, u64::MAX).expect("q").len(), 1);
        assert_eq!(s.series("r10", "eth0", 0, u64::MAX).expect("q").len(), 1);
    }
}
