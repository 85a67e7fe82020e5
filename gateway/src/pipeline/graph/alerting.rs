//! Graph alerts: one per incident, where an incident is an attacker host, a target host, a
//! pattern and a protocol (a SYN flood and a UDP flood of the same server are two incidents). The first edge raises an alert at once; later edges of the incident within the
//! de-duplication window (flow time) are folded in and counted (`edges`,
//! `suppressed_since_last` of the incident's next alert), with [`Dedupe`], the flow detector's
//! rule.
//!
//! Roles: for a scan, brute force or flood the attacker opened the connections; for a reverse
//! shell or an exfiltration the compromised host dials out to the attacker's listener, so the
//! attacker is the side that did *not* open it. Either way the alert's `attacker` is never the
//! victim, and `initiator` says who opened the connection.

use std::net::IpAddr;
use std::time::Duration;

use netwarden_firmware::{FlowRecord, Severity};

use super::table::Initiator;
use crate::pipeline::alerting::Dedupe;
use crate::records::{Alert, EdgeSubject, FlowOrigin, FlowSubject, ModelRef, Subject};

/// Patterns whose attacker is the endpoint that was connected to.
const ATTACKER_LISTENS: [&str; 2] = ["reverse_shell", "exfiltration"];

/// Scores from which an alert is `high`.
const HIGH_SCORE: f32 = 0.99;

/// One anomalous edge.
#[derive(Debug, Clone, Copy)]
pub struct EdgeFinding<'a> {
    pub origin: &'a FlowOrigin,
    pub flow: &'a FlowRecord,
    pub initiator: Initiator,
    pub pattern: &'a str,
    pub probability: f32,
    pub score: f32,
    pub threshold: f32,
}

/// Whether the edge's source is the attacker, given who opened the connection and the pattern.
pub fn src_is_attacker(initiator: Initiator, pattern: &str) -> bool {
    let attacker_initiated = !ATTACKER_LISTENS.contains(&pattern);
    (initiator == Initiator::Src) == attacker_initiated
}

#[derive(Debug)]
pub struct EdgeAlerter {
    site: String,
    device: String,
    detector: &'static str,
    model: ModelRef,
    dedupe: Dedupe<(IpAddr, IpAddr, String, u8)>,
}

fn proto_name(p: u8) -> String {
    match p {
        1 => "icmp".into(),
        6 => "tcp".into(),
        17 => "udp".into(),
        58 => "icmpv6".into(),
        p => format!("proto {p}"),
    }
}

impl EdgeAlerter {
    pub fn new(
        site: &str,
        device: &str,
        detector: &'static str,
        model: ModelRef,
        window: Duration,
    ) -> Self {
        EdgeAlerter {
            site: site.into(),
            device: device.into(),
            detector,
            model,
            dedupe: Dedupe::new(window, 65_536),
        }
    }

    /// An alert for the edge, or `None` when it is folded into its incident's last alert.
    pub fn consider(
        &mut self,
        f: &EdgeFinding<'_>,
        id: impl FnOnce() -> String,
        now_ms: u64,
    ) -> Option<Alert> {
        let r = f.flow;
        let fwd = src_is_attacker(f.initiator, f.pattern);
        let (a_ip, a_port, t_ip, t_port) = if fwd {
            (r.src_addr, r.src_port, r.dst_addr, r.dst_port)
        } else {
            (r.dst_addr, r.dst_port, r.src_addr, r.src_port)
        };
        let severity = if f.score >= HIGH_SCORE {
            Severity::High
        } else {
            Severity::Medium
        };
        let key = (a_ip, t_ip, f.pattern.to_string(), r.protocol);
        let suppressed = self.dedupe.admit(&key, r.last_ms, severity)?;
        let attacker = format!("{a_ip}:{a_port}");
        let target = format!("{t_ip}:{t_port}");
        let initiator_role = if (f.initiator == Initiator::Src) == fwd {
            "attacker"
        } else {
            "target"
        };
        let opened = if initiator_role == "attacker" {
            format!("{attacker} opened it")
        } else {
            format!("{target} dialled out to it")
        };
        let summary = format!(
            "{severity} {pattern}: attacker {attacker} -> target {target}/{proto} ({opened}); \
             P({pattern}) {p:.3}, {n} edge(s) of this incident since its last alert",
            pattern = f.pattern,
            proto = proto_name(r.protocol),
            p = f.probability,
            n = suppressed + 1,
        );
        Some(Alert {
            id: id(),
            ts_ms: now_ms,
            ts: humantime::format_rfc3339_millis(
                std::time::UNIX_EPOCH + Duration::from_millis(now_ms),
            )
            .to_string(),
            site: self.site.clone(),
            device: self.device.clone(),
            detector: self.detector.to_string(),
            model: self.model.clone(),
            severity: severity.as_str().to_string(),
            score: f.score,
            threshold: f.threshold,
            subject: Subject::Edge(EdgeSubject {
                flow: FlowSubject {
                    exporter: f.origin.to_string(),
                    src_addr: a_ip.to_string(),
                    dst_addr: t_ip.to_string(),
                    src_port: a_port,
                    dst_port: t_port,
                    protocol: r.protocol,
                    flow_first_ms: r.first_ms,
                    flow_last_ms: r.last_ms,
                },
                attacker,
                target,
                initiator: initiator_role.into(),
                pattern: f.pattern.into(),
                probability: f.probability,
                edges: suppressed + 1,
            }),
            top_features: Vec::new(),
            suppressed_since_last: suppressed,
            summary,
            incident: None,
            rule: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(src: [u8; 4], sp: u16, dst: [u8; 4], dp: u16, ms: u64) -> FlowRecord {
        let mut r = FlowRecord::empty();
        r.src_addr = IpAddr::from(src);
        r.dst_addr = IpAddr::from(dst);
        r.src_port = sp;
        r.dst_port = dp;
        r.protocol = 6;
        r.first_ms = ms;
        r.last_ms = ms;
        r
    }

    fn alerter() -> EdgeAlerter {
        let model = ModelRef {
            name: "graph-tgat".into(),
            version: "t".into(),
        };
        EdgeAlerter::new("s", "d", "graph_tgat", model, Duration::from_secs(60))
    }

    #[test]
    fn a_reverse_shell_blames_the_listener_not_the_host_that_dialled_out() {
        let mut a = alerter();
        let origin = FlowOrigin::Meter("pcap:t".into());
        // The compromised web server 10.0.0.10 dials out to 10.0.0.66:4444.
        let out = rec([10, 0, 0, 10], 51000, [10, 0, 0, 66], 4444, 1000);
        let f = EdgeFinding {
            origin: &origin,
            flow: &out,
            initiator: Initiator::Src,
            pattern: "reverse_shell",
            probability: 0.97,
            score: 0.98,
            threshold: 0.5,
        };
        let alert = a
            .consider(&f, || "id".into(), 0)
            .expect("first edge alerts");
        let e = alert.subject.edge().expect("edge subject");
        assert_eq!(e.attacker, "10.0.0.66:4444");
        assert_eq!(e.target, "10.0.0.10:51000");
        assert_eq!(e.initiator, "target");
        assert_eq!(
            alert.subject.flow().map(|f| f.src_addr.as_str()),
            Some("10.0.0.66")
        );
        // The reply record (attacker -> web, the web server still the initiator) folds in.
        let back = rec([10, 0, 0, 66], 4444, [10, 0, 0, 10], 51000, 1000);
        let f2 = EdgeFinding {
            flow: &back,
            initiator: Initiator::Dst,
            ..f
        };
        assert!(a.consider(&f2, || "id2".into(), 0).is_none());
        // After the window, the next edge reports what was folded.
        let later = rec([10, 0, 0, 10], 51002, [10, 0, 0, 66], 4444, 70_000);
        let f3 = EdgeFinding { flow: &later, ..f };
        let again = a.consider(&f3, || "id3".into(), 0).expect("new window");
        assert_eq!(again.suppressed_since_last, 1);
        assert_eq!(again.subject.edge().map(|e| e.edges), Some(2));
    }

    #[test]
    fn a_scan_reply_still_names_the_scanner_as_attacker() {
        let mut a = alerter();
        let origin = FlowOrigin::Meter("pcap:t".into());
        // The victim's RST back to the scanner: source is the victim, the scanner initiated.
        let rst = rec([10, 0, 0, 20], 443, [10, 0, 0, 66], 61000, 5);
        let f = EdgeFinding {
            origin: &origin,
            flow: &rst,
            initiator: Initiator::Dst,
            pattern: "scan",
            probability: 0.999,
            score: 0.999,
            threshold: 0.5,
        };
        let alert = a.consider(&f, || "id".into(), 0).expect("alert");
        let e = alert.subject.edge().expect("edge");
        assert_eq!(
            (e.attacker.as_str(), e.initiator.as_str()),
            ("10.0.0.66:61000", "attacker")
        );
        assert_eq!(alert.severity, "high");
    }
}
