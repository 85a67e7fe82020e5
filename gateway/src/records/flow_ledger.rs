//! Which detector alerted on which flow lately, shared by every alert path (the alert sink
//! consults it), so that when netwarden's flow detector and Suricata both fire on one flow the
//! operator gets one alert, not two (docs/eve.md). Keyed on the 5-tuple with its endpoints in
//! canonical order (either direction is the same flow). Bounded; no clock of its own.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::records::FlowSubject;

type Key = (String, u16, String, u16, u8);

/// Entries kept at most; past that the oldest half is forgotten.
const MAX_ENTRIES: usize = 65_536;

#[derive(Debug, Clone, Default)]
pub struct FlowLedger {
    inner: Arc<Mutex<HashMap<Key, (String, u64)>>>,
}

fn key(f: &FlowSubject) -> Key {
    let a = (f.src_addr.clone(), f.src_port);
    let b = (f.dst_addr.clone(), f.dst_port);
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    (lo.0, lo.1, hi.0, hi.1, f.protocol)
}

impl FlowLedger {
    /// Records that `detector` alerted on `flow` at `ts_ms`; returns the other detector that
    /// already alerted on it within `window_ms` (then this alert is a duplicate), if any.
    pub fn check_and_record(
        &self,
        flow: &FlowSubject,
        detector: &str,
        ts_ms: u64,
        window_ms: u64,
    ) -> Option<String> {
        let Ok(mut map) = self.inner.lock() else {
            return None;
        };
        let k = key(flow);
        if let Some((other, at)) = map.get(&k) {
            if other != detector && ts_ms.abs_diff(*at) <= window_ms {
                return Some(other.clone());
            }
        }
        if map.len() >= MAX_ENTRIES {
            let mut ts: Vec<u64> = map.values().map(|v| v.1).collect();
            ts.sort_unstable();
            let cut = ts[ts.len() / 2];
            map.retain(|_, v| v.1 > cut);
        }
        map.insert(k, (detector.to_string(), ts_ms));
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow(reverse: bool) -> FlowSubject {
        let (a, b) = (
            ("10.0.0.1".to_string(), 40000),
            ("10.0.0.2".to_string(), 22),
        );
        let (s, d) = if reverse { (b, a) } else { (a, b) };
        FlowSubject {
            exporter: "x".into(),
            src_addr: s.0,
            src_port: s.1,
            dst_addr: d.0,
            dst_port: d.1,
            protocol: 6,
            flow_first_ms: 0,
            flow_last_ms: 0,
        }
    }

    #[test]
    fn second_detector_on_the_same_flow_is_a_duplicate() {
        let l = FlowLedger::default();
        assert_eq!(
            l.check_and_record(&flow(false), "flow_ae", 1_000, 60_000),
            None
        );
        assert_eq!(
            l.check_and_record(&flow(false), "flow_ae", 2_000, 60_000),
            None,
            "same detector: its own dedupe decides"
        );
        assert_eq!(
            l.check_and_record(&flow(true), "suricata", 3_000, 60_000)
                .as_deref(),
            Some("flow_ae")
        );
        assert_eq!(
            l.check_and_record(&flow(true), "suricata", 200_000, 60_000),
            None,
            "outside the window"
        );
    }
}
