//! The hot path beside netflow_parser alone, datagram by datagram: what the differential test
//! (`gateway/tests/netflow_hot_path.rs`) and the `netflow_hot_path` fuzz target run.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use netwarden_firmware::FlowRecord;

use super::{ExporterDomain, NetflowDecoder};
use crate::records::ExporterStats;

/// Two decoders fed the same datagrams: one with the hot path, one without.
#[derive(Debug)]
pub struct Differential {
    hot: NetflowDecoder,
    reference: NetflowDecoder,
    a: Vec<(ExporterDomain, FlowRecord)>,
    b: Vec<(ExporterDomain, FlowRecord)>,
    /// Records compared so far.
    pub records: u64,
}

impl Differential {
    pub fn new(max_exporters: usize) -> Self {
        Differential {
            hot: NetflowDecoder::new(max_exporters),
            reference: NetflowDecoder::new(max_exporters).without_hot_path(),
            a: Vec::new(),
            b: Vec::new(),
            records: 0,
        }
    }

    /// Decodes `data` with both; an `Err` says where they first disagree.
    pub fn feed(&mut self, from: SocketAddr, data: &[u8]) -> Result<(), String> {
        self.a.clear();
        self.b.clear();
        let sa = self.hot.decode(from, data, &mut self.a);
        let sb = self.reference.decode(from, data, &mut self.b);
        if sa != sb {
            return Err(format!("summaries differ: hot {sa:?}, reference {sb:?}"));
        }
        if let Some(i) =
            (0..self.a.len().max(self.b.len())).find(|&i| self.a.get(i) != self.b.get(i))
        {
            return Err(format!(
                "record {i} of {} differs: hot {:?}, reference {:?}",
                self.b.len(),
                self.a.get(i),
                self.b.get(i)
            ));
        }
        let stats = |d: &NetflowDecoder| -> BTreeMap<String, ExporterStats> {
            d.stats().map(|(k, v)| (k, v.clone())).collect()
        };
        let (ha, hb) = (stats(&self.hot), stats(&self.reference));
        if ha != hb {
            return Err(format!(
                "exporter counters differ: hot {ha:?}, reference {hb:?}"
            ));
        }
        self.records += self.a.len() as u64;
        Ok(())
    }

    /// Datagrams the hot path decoded (the rest went through netflow_parser in both).
    pub fn hot_path_datagrams(&self) -> u64 {
        self.hot.hot_path_datagrams()
    }
}
