//! Suricata `alert` events -> netwarden [`Alert`]s on the same topics as netwarden's own.
//!
//! - **id**: a UUID (version 8, RFC 9562) from the SHA-256 of the event's identity (site,
//!   device, engine, flow id, gid:sid:rev, timestamp, 5-tuple): the same event read twice (a restart between
//!   storing and saving the position) gets the same id, so subscribers drop the repeat.
//! - **severity**: Suricata's 1 -> `high`, 2 -> `medium`, 3 and 4 -> `low`.
//! - **rule**: gid, signature id, rev, signature, category, action and `community_id` kept.
//! - Suricata fires a signature per matching packet: repeats of one signature on one flow
//!   within `dedupe_window` are folded into the first alert (counted, and reported as
//!   `suppressed_since_last` in the next one). A higher severity breaks through.
//! - **time**: `ts_ms` is when netwarden raised it, as for its own detectors (an EVE replay of
//!   old traffic would otherwise land in history buckets retention has already dropped); the
//!   event's time is the subject's `flow_first_ms`/`flow_last_ms`.

use std::collections::HashMap;

use sha2::{Digest, Sha256};

use crate::records::eve::{AlertInfo, EveEvent};
use crate::records::{Alert, FlowSubject, ModelRef, RuleRef, Subject};

/// Detector name of forwarded Suricata alerts (`detector` in alerts and metrics).
pub const SURICATA_DETECTOR: &str = "suricata";

/// Repeats remembered at most; past this the oldest half is forgotten.
const MAX_KEYS: usize = 65_536;

#[derive(Debug)]
pub struct EveAlerter {
    site: String,
    device: String,
    /// Names the source in `subject.exporter` (`suricata:<path>`).
    origin: String,
    dedupe_ms: u64,
    /// (flow id or 5-tuple, sid) -> (last raised ms, severity, folded since).
    seen: HashMap<(String, u64), (u64, u8, u64)>,
}

pub fn severity_name(s: u8) -> &'static str {
    match s {
        1 => "high",
        2 => "medium",
        _ => "low",
    }
}

/// A version-8 UUID from `bytes`' SHA-256.
pub fn stable_id(bytes: &[u8]) -> String {
    let h = Sha256::digest(bytes);
    let mut b = [0u8; 16];
    b.copy_from_slice(&h[..16]);
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    uuid::Uuid::from_bytes(b).to_string()
}

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

impl EveAlerter {
    pub fn new(site: &str, device: &str, origin: &str, dedupe_ms: u64) -> EveAlerter {
        EveAlerter {
            site: site.to_string(),
            device: device.to_string(),
            origin: origin.to_string(),
            dedupe_ms,
            seen: HashMap::new(),
        }
    }

    /// The alert for `e`, or `None` when it is not an alert or repeats one raised lately.
    /// `now_ms` is the alert's time (`ts_ms`, its history bucket); the event's own time is the
    /// subject's `flow_first_ms`/`flow_last_ms`.
    pub fn on_event(&mut self, e: &EveEvent, a: &AlertInfo, now_ms: u64) -> Option<Alert> {
        let flow_key = match e.flow_id {
            Some(id) => id.to_string(),
            None => format!(
                "{}:{}-{}:{}/{}",
                opt(e.src_ip),
                opt(e.src_port),
                opt(e.dest_ip),
                opt(e.dest_port),
                e.protocol_number()
            ),
        };
        let key = (flow_key, a.signature_id);
        let mut folded = 0;
        if let Some((last, sev, n)) = self.seen.get_mut(&key) {
            let within = e.ts_ms.abs_diff(*last) <= self.dedupe_ms;
            if within && a.severity >= *sev {
                *n += 1;
                return None;
            }
            folded = *n;
        }
        if self.seen.len() >= MAX_KEYS {
            let mut ts: Vec<u64> = self.seen.values().map(|v| v.0).collect();
            ts.sort_unstable();
            let cut = ts[ts.len() / 2];
            self.seen.retain(|_, v| v.0 > cut);
        }
        self.seen.insert(key, (e.ts_ms, a.severity, 0));
        Some(self.alert(e, a, folded, now_ms))
    }

    fn alert(&self, e: &EveEvent, a: &AlertInfo, folded: u64, now_ms: u64) -> Alert {
        let identity = format!(
            "suricata|{}|{}|{}|{}:{}:{}|{}|{}|{}|{}|{}|{}",
            self.site,
            self.device,
            opt(e.flow_id),
            a.gid,
            a.signature_id,
            a.rev,
            e.ts_ms,
            opt(e.src_ip),
            opt(e.src_port),
            opt(e.dest_ip),
            opt(e.dest_port),
            e.protocol_number()
        );
        let severity = severity_name(a.severity);
        let summary = format!(
            "{severity} Suricata [{}:{}:{}] {} ({}) {}:{} -> {}:{}/{}",
            a.gid,
            a.signature_id,
            a.rev,
            a.signature,
            if a.category.is_empty() {
                "no category"
            } else {
                &a.category
            },
            opt(e.src_ip),
            opt(e.src_port),
            opt(e.dest_ip),
            opt(e.dest_port),
            e.proto.as_deref().unwrap_or("?"),
        );
        Alert {
            id: stable_id(identity.as_bytes()),
            ts_ms: now_ms,
            ts: humantime::format_rfc3339_millis(
                std::time::UNIX_EPOCH + std::time::Duration::from_millis(now_ms),
            )
            .to_string(),
            site: self.site.clone(),
            device: self.device.clone(),
            detector: SURICATA_DETECTOR.to_string(),
            model: ModelRef {
                name: "suricata-rules".into(),
                version: format!("{}:{}:{}", a.gid, a.signature_id, a.rev),
            },
            severity: severity.to_string(),
            // A signature match is certain; score/threshold keep the field types of the schema.
            score: f32::from(5 - a.severity.clamp(1, 4)),
            threshold: 0.0,
            subject: Subject::Flow(FlowSubject {
                exporter: self.origin.clone(),
                src_addr: opt(e.src_ip),
                dst_addr: opt(e.dest_ip),
                src_port: e.src_port.unwrap_or(0),
                dst_port: e.dest_port.unwrap_or(0),
                protocol: e.protocol_number(),
                flow_first_ms: e.ts_ms,
                flow_last_ms: e.ts_ms,
            }),
            top_features: Vec::new(),
            suppressed_since_last: folded,
            summary,
            incident: None,
            rule: Some(RuleRef {
                engine: "suricata".into(),
                gid: a.gid,
                signature_id: a.signature_id,
                rev: a.rev,
                signature: a.signature.clone(),
                category: a.category.clone(),
                engine_severity: a.severity,
                action: a.action.clone(),
                community_id: e.community_id.clone(),
            }),
        }
    }
}
