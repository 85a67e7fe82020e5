//! Flow and score summaries for the history: what the flow pipeline saw per interval (wall
//! clock), with the busiest source hosts. Fixed cost per flow (a hash-map update); the host map
//! is capped, hosts beyond it are counted, not tracked.

use std::collections::HashMap;
use std::net::IpAddr;

use netwarden_firmware::FlowRecord;

use crate::records::{FlowSummary, HostSummary, ScoreSummary};

/// Source hosts tracked per interval at most.
const MAX_HOSTS: usize = 8192;

#[derive(Debug, Default, Clone, Copy)]
struct HostTally {
    flows: u64,
    packets: u64,
    bytes: u64,
    anomalous: u64,
    max_error: f32,
}

/// Accumulates one interval.
#[derive(Debug)]
pub struct FlowTally {
    start_ms: u64,
    hosts: HashMap<IpAddr, HostTally>,
    untracked: u64,
    total: HostTally,
    error_sum: f64,
}

impl FlowTally {
    pub fn new(start_ms: u64) -> FlowTally {
        FlowTally {
            start_ms,
            hosts: HashMap::new(),
            untracked: 0,
            total: HostTally::default(),
            error_sum: 0.0,
        }
    }

    pub fn start_ms(&self) -> u64 {
        self.start_ms
    }

    pub fn observe(&mut self, flow: &FlowRecord, error: f32, anomalous: bool) {
        let add = |t: &mut HostTally| {
            t.flows += 1;
            t.packets += flow.packets;
            t.bytes += flow.bytes;
            t.anomalous += u64::from(anomalous);
            if error > t.max_error {
                t.max_error = error;
            }
        };
        add(&mut self.total);
        if error.is_finite() {
            self.error_sum += f64::from(error);
        }
        let tracked = self.hosts.len() < MAX_HOSTS || self.hosts.contains_key(&flow.src_addr);
        if tracked {
            add(self.hosts.entry(flow.src_addr).or_default());
        } else {
            self.untracked += 1;
        }
    }

    /// Closes the interval at `now_ms` and starts the next one. `top` hosts by bytes.
    pub fn finish(
        &mut self,
        now_ms: u64,
        top: usize,
        detector: &str,
        model: &str,
        threshold: f32,
    ) -> (FlowSummary, ScoreSummary) {
        let mut hosts: Vec<(IpAddr, HostTally)> = self.hosts.drain().collect();
        let n_hosts = hosts.len() as u64;
        hosts.sort_by(|a, b| b.1.bytes.cmp(&a.1.bytes).then(a.0.cmp(&b.0)));
        hosts.truncate(top);
        let t = self.total;
        let flows = FlowSummary {
            ts_ms: now_ms,
            window_ms: now_ms.saturating_sub(self.start_ms),
            flows: t.flows,
            packets: t.packets,
            bytes: t.bytes,
            anomalous: t.anomalous,
            hosts: n_hosts,
            hosts_untracked: self.untracked,
            top_sources: hosts
                .into_iter()
                .map(|(addr, h)| HostSummary {
                    addr: addr.to_string(),
                    flows: h.flows,
                    packets: h.packets,
                    bytes: h.bytes,
                    anomalous: h.anomalous,
                    max_error: h.max_error,
                })
                .collect(),
        };
        let scores = ScoreSummary {
            ts_ms: now_ms,
            detector: detector.to_string(),
            model: model.to_string(),
            subject: "flows".to_string(),
            count: t.flows,
            anomalous: t.anomalous,
            mean_error: if t.flows > 0 {
                (self.error_sum / t.flows as f64) as f32
            } else {
                0.0
            },
            max_error: t.max_error,
            threshold,
        };
        *self = FlowTally::new(now_ms);
        (flows, scores)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow(src: [u8; 4], bytes: u64) -> FlowRecord {
        FlowRecord {
            src_addr: IpAddr::from(src),
            bytes,
            packets: 2,
            ..FlowRecord::default()
        }
    }

    #[test]
    fn summary_totals_top_hosts_and_scores() {
        let mut t = FlowTally::new(1_000);
        t.observe(&flow([10, 0, 0, 1], 100), 0.1, false);
        t.observe(&flow([10, 0, 0, 2], 5_000), 0.9, true);
        t.observe(&flow([10, 0, 0, 1], 300), 0.2, false);
        let (f, s) = t.finish(61_000, 1, "flow_ae", "m 1", 0.5);
        assert_eq!(
            (f.flows, f.bytes, f.packets, f.anomalous, f.hosts),
            (3, 5_400, 6, 1, 2)
        );
        assert_eq!(f.window_ms, 60_000);
        assert_eq!(f.top_sources.len(), 1);
        assert_eq!(f.top_sources[0].addr, "10.0.0.2");
        assert_eq!((s.count, s.anomalous), (3, 1));
        assert!((s.mean_error - 0.4).abs() < 1e-6);
        assert_eq!(s.max_error, 0.9);
        assert_eq!(t.start_ms(), 61_000);
        let (empty, _) = t.finish(121_000, 5, "flow_ae", "m 1", 0.5);
        assert_eq!((empty.flows, empty.hosts), (0, 0));
    }
}
