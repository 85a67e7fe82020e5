//! What happens to Suricata EVE events (docs/eve.md): filtered (`filter`), aggregated in
//! event-time windows (`window`), alerts forwarded as netwarden alerts (`alerts`), flow records
//! handed to the flow pipeline as one more flow source. No I/O: `runtime/eve.rs` feeds events
//! in and takes the outputs to the sinks.

pub mod alerts;
pub mod config;
pub mod filter;
pub mod window;

use netwarden_firmware::FlowRecord;

use crate::records::eve::{Detail, EveEvent, FlowInfo};
use crate::records::Alert;

pub use config::EveRules;
pub use window::{WindowResult, Windows};

/// What one event produced.
#[derive(Debug, Default)]
pub struct EveOutput {
    pub alerts: Vec<Alert>,
    pub flow_records: Vec<FlowRecord>,
    pub window_results: Vec<WindowResult>,
    pub filtered: u64,
    pub late: u64,
}

/// The EVE pipeline: rules, window state and the alert converter.
#[derive(Debug)]
pub struct EveStage {
    rules: EveRules,
    windows: Vec<Windows>,
    alerter: alerts::EveAlerter,
}

impl EveStage {
    pub fn new(rules: EveRules, site: &str, device: &str, origin: &str) -> EveStage {
        let windows = rules.windows.iter().cloned().map(Windows::new).collect();
        let alerter =
            alerts::EveAlerter::new(site, device, origin, rules.dedupe_window.as_millis() as u64);
        EveStage {
            rules,
            windows,
            alerter,
        }
    }

    pub fn windows(&self) -> &[Windows] {
        &self.windows
    }

    /// Handles one event, adding what it produced to `out`.
    /// `now_ms`: the gateway clock, the time of alerts raised now.
    pub fn process(&mut self, e: &EveEvent, now_ms: u64, out: &mut EveOutput) {
        if !filter::passes(&self.rules, e) {
            out.filtered += 1;
            return;
        }
        for w in &mut self.windows {
            if !w.observe(e, &mut out.window_results) {
                out.late += 1;
            }
        }
        match &e.detail {
            Detail::Alert(a) if self.rules.alerts => {
                if let Some(alert) = self.alerter.on_event(e, a, now_ms) {
                    out.alerts.push(alert);
                }
            }
            Detail::Flow(f) if self.rules.flows => flow_records(e, f, &mut out.flow_records),
            _ => {}
        }
    }

    /// Open windows at shutdown (marked incomplete).
    pub fn flush(&mut self, out: &mut EveOutput) {
        for w in &mut self.windows {
            w.flush(&mut out.window_results);
        }
    }
}

/// The unidirectional records a NetFlow exporter would send for an EVE flow: client to server,
/// and server to client when it answered. Records without addresses are skipped.
pub fn flow_records(e: &EveEvent, f: &FlowInfo, out: &mut Vec<FlowRecord>) {
    let (Some(src), Some(dst)) = (e.src_ip, e.dest_ip) else {
        return;
    };
    let (sport, dport) = (e.src_port.unwrap_or(0), e.dest_port.unwrap_or(0));
    let protocol = e.protocol_number();
    let (first_ms, last_ms) = if f.start_ms == 0 {
        (e.ts_ms, e.ts_ms)
    } else {
        (f.start_ms, f.end_ms.max(f.start_ms))
    };
    if f.pkts_toserver > 0 {
        out.push(FlowRecord {
            src_addr: src,
            dst_addr: dst,
            src_port: sport,
            dst_port: dport,
            protocol,
            packets: f.pkts_toserver,
            bytes: f.bytes_toserver,
            first_ms,
            last_ms,
            tcp_flags: u16::from(f.tcp_flags_ts),
        });
    }
    if f.pkts_toclient > 0 {
        out.push(FlowRecord {
            src_addr: dst,
            dst_addr: src,
            src_port: dport,
            dst_port: sport,
            protocol,
            packets: f.pkts_toclient,
            bytes: f.bytes_toclient,
            first_ms,
            last_ms,
            tcp_flags: u16::from(f.tcp_flags_tc),
        });
    }
}
