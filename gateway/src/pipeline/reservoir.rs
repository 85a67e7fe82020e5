//! A bounded, time-stratified reservoir of feature rows for central training (issue 18): per
//! bucket of event time (an hour by default) a uniform sample of at most `per_bucket` scored
//! flow records (reservoir sampling, algorithm R), so a busy hour cannot crowd out a quiet
//! one. Identity columns (addresses, ports, protocol) are dropped unless configured. The
//! runtime stores closed buckets (and the open one now and then) in sled, which keeps the
//! newest `max_buckets`; `netwarden samples export` and `GET /samples` read them.
//!
//! Records arrive in the exporter's expiry order: a record whose bucket is older than the open
//! one joins the open one (its time is kept), a newer one closes it.
//!
//! Rows carry the active flow model's feature set ([`FlowSet`]); a bucket holds one. A
//! record of another schema (the gateway restarted with a model of the other set) closes the
//! open bucket and starts a new one, stored under its own key, so schemas never mix in a bucket.

use std::time::Duration;

use netwarden_firmware::FlowRecord;

use crate::records::samples::{Identity, SampleRow, MAX_WIDTH};
use crate::records::FlowSet;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReservoirConfig {
    pub bucket: Duration,
    pub per_bucket: usize,
    /// Buckets kept in the store (the newest).
    pub max_buckets: usize,
    /// Keep addresses, ports and protocol in the rows.
    pub identity: bool,
}

impl Default for ReservoirConfig {
    fn default() -> Self {
        ReservoirConfig {
            bucket: Duration::from_secs(3600),
            per_bucket: 500,
            max_buckets: 168,
            identity: false,
        }
    }
}

/// One bucket's sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Bucket {
    pub start_ms: u64,
    /// The feature set of every row.
    pub schema: FlowSet,
    /// Records offered to this bucket (the sample holds at most `per_bucket` of them).
    pub seen: u64,
    pub rows: Vec<SampleRow>,
}

#[derive(Debug)]
pub struct Reservoir {
    cfg: ReservoirConfig,
    open: Option<Bucket>,
    closed: Vec<Bucket>,
    rng: u64,
}

impl Reservoir {
    pub fn new(cfg: ReservoirConfig) -> Self {
        Reservoir {
            cfg,
            open: None,
            closed: Vec::new(),
            rng: 0x2545_F491_4F6C_DD1D,
        }
    }

    pub fn config(&self) -> &ReservoirConfig {
        &self.cfg
    }

    /// Offers one scored record: its `schema`'s features (`raw`, at least its width).
    pub fn observe(&mut self, flow: &FlowRecord, schema: FlowSet, raw: &[f32], score: f32) {
        let width = (self.cfg.bucket.as_millis() as u64).max(1);
        let start = flow.last_ms / width * width;
        match &self.open {
            Some(b) if start > b.start_ms || b.schema != schema => {
                if let Some(b) = self.open.take() {
                    self.closed.push(b);
                }
            }
            _ => {}
        }
        let per_bucket = self.cfg.per_bucket.max(1);
        let b = self.open.get_or_insert_with(|| Bucket {
            start_ms: start,
            schema,
            seen: 0,
            rows: Vec::with_capacity(per_bucket.min(1024)),
        });
        b.seen += 1;
        let slot = if b.rows.len() < per_bucket {
            Some(b.rows.len())
        } else {
            self.rng ^= self.rng << 13;
            self.rng ^= self.rng >> 7;
            self.rng ^= self.rng << 17;
            let j = (self.rng % b.seen) as usize;
            (j < per_bucket).then_some(j)
        };
        let Some(slot) = slot else {
            return;
        };
        let mut features = [0.0; MAX_WIDTH];
        let n = schema.width().min(raw.len());
        features[..n].copy_from_slice(&raw[..n]);
        let row = SampleRow {
            ts_ms: flow.last_ms,
            schema,
            identity: self.cfg.identity.then_some(Identity {
                src: flow.src_addr,
                dst: flow.dst_addr,
                src_port: flow.src_port,
                dst_port: flow.dst_port,
                protocol: flow.protocol,
            }),
            features,
            score,
        };
        if slot == b.rows.len() {
            b.rows.push(row);
        } else {
            b.rows[slot] = row;
        }
    }

    /// Buckets closed since the last call (to store).
    pub fn take_closed(&mut self) -> Vec<Bucket> {
        std::mem::take(&mut self.closed)
    }

    /// The open bucket (to store now and then, so a crash loses little).
    pub fn open_bucket(&self) -> Option<&Bucket> {
        self.open.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr};

    const V1: FlowSet = FlowSet::V1;

    fn flow(t: u64) -> FlowRecord {
        FlowRecord {
            src_addr: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            dst_addr: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
            src_port: 40_000,
            dst_port: 443,
            protocol: 6,
            packets: 3,
            bytes: 300,
            first_ms: t,
            last_ms: t,
            tcp_flags: 0x1b,
        }
    }

    #[test]
    fn each_bucket_is_a_bounded_uniform_sample_and_a_busy_hour_does_not_crowd_out_a_quiet_one() {
        let mut r = Reservoir::new(ReservoirConfig {
            bucket: Duration::from_secs(60),
            per_bucket: 100,
            ..ReservoirConfig::default()
        });
        // A busy minute (10,000 records), then a quiet one (10), then a record of the first
        // minute arriving late.
        for i in 0..10_000u64 {
            r.observe(&flow(i * 6), V1, &[i as f32; 8], 0.1);
        }
        for i in 0..10u64 {
            r.observe(&flow(60_000 + i), V1, &[1.0; 8], 0.2);
        }
        r.observe(&flow(59_000), V1, &[2.0; 8], 0.3);
        let closed = r.take_closed();
        assert_eq!(closed.len(), 1);
        let busy = &closed[0];
        assert_eq!(
            (busy.start_ms, busy.seen, busy.rows.len()),
            (0, 10_000, 100)
        );
        // Uniform: the sample spans the minute, not only its start.
        let late = busy.rows.iter().filter(|row| row.ts_ms >= 30_000).count();
        assert!(
            (25..=75).contains(&late),
            "{late} of 100 from the second half"
        );
        assert!(busy.rows.iter().all(|row| row.identity.is_none()));
        let quiet = r.open_bucket().expect("open");
        assert_eq!(
            (quiet.start_ms, quiet.seen, quiet.rows.len()),
            (60_000, 11, 11)
        );
        assert_eq!(
            quiet.rows[10].ts_ms, 59_000,
            "late records join the open bucket"
        );
        assert!(r.take_closed().is_empty());
    }

    #[test]
    fn identity_only_when_configured() {
        let mut r = Reservoir::new(ReservoirConfig {
            identity: true,
            ..ReservoirConfig::default()
        });
        r.observe(&flow(1), V1, &[0.0; 8], 0.0);
        let row = r.open_bucket().expect("open").rows[0];
        assert_eq!(row.identity.expect("identity").dst_port, 443);
    }

    #[test]
    fn a_schema_change_starts_a_new_bucket_rather_than_mixing() {
        let mut r = Reservoir::new(ReservoirConfig::default());
        r.observe(&flow(1_000), V1, &[1.0; 8], 0.1);
        r.observe(&flow(2_000), V1, &[1.0; 8], 0.1);
        // Restarted with a flow-v2 model, same hour.
        r.observe(&flow(3_000), FlowSet::V2, &[2.0; 17], 0.2);
        let closed = r.take_closed();
        assert_eq!(closed.len(), 1);
        assert_eq!((closed[0].schema, closed[0].rows.len()), (V1, 2));
        let open = r.open_bucket().expect("open");
        assert_eq!(
            (open.schema, open.start_ms, open.rows.len()),
            (FlowSet::V2, 0, 1)
        );
        assert_eq!(open.rows[0].values(), &[2.0; 17]);
    }
}
