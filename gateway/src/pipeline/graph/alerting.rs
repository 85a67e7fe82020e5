//! Graph alerts go through the incident tracker ([`crate::pipeline::incidents`]), like the flow
//! detector's: one incident per (initiator host, target host, pattern), where the initiator is
//! the host that opened the connection (whichever direction the record describes). The first
//! edge opens it with an alert at once; later edges are folded in, and the incident's alert is
//! updated (same `incident.id`, counts, ports and duration) only when it grew 4x, escalated,
//! resumed after a pause, or every 5 minutes. The alert itself is built by
//! [`IncidentAlerts`], the flow detector's construction; this file adds the edge subject and
//! the summary.
//!
//! Roles: for a scan, brute force or flood the attacker opened the connections; for a reverse
//! shell or an exfiltration the compromised host dials out to the attacker's listener, so the
//! attacker is the side that did *not* open it. Either way the subject's `attacker` is never
//! the victim, and `initiator` says who opened the connection; the incident's `initiator` is
//! always the host that opened it (the compromised host, for a reverse shell).

use std::time::Duration;

use netwarden_firmware::{FlowRecord, Severity};

use super::table::Initiator;
use crate::pipeline::alerting::{incident_headline, proto_name, AlertBody, IncidentAlerts};
use crate::pipeline::incidents::{Evidence, Pattern};
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

/// The incident pattern of a class of the pattern head.
pub fn incident_pattern(class: &str) -> Pattern {
    match class {
        "scan" => Pattern::PortScan,
        "flood" => Pattern::Flood,
        "brute_force" => Pattern::BruteForce,
        "reverse_shell" => Pattern::ReverseShell,
        "exfiltration" => Pattern::Exfiltration,
        _ => Pattern::UnusualFlow,
    }
}

#[derive(Debug)]
pub struct EdgeAlerter {
    alerts: IncidentAlerts,
}

impl EdgeAlerter {
    /// Incidents end after `window` of event time without evidence.
    pub fn new(
        site: &str,
        device: &str,
        detector: &'static str,
        model: ModelRef,
        window: Duration,
    ) -> Self {
        EdgeAlerter {
            alerts: IncidentAlerts::new(site, device, detector, model, window),
        }
    }

    /// Incidents open now.
    pub fn open_incidents(&self) -> usize {
        self.alerts.open_incidents()
    }

    /// An alert when the edge opens an incident or changes it enough to tell, `None` when it
    /// is folded in. `id` is called only for an alert that is raised.
    pub fn consider(
        &mut self,
        f: &EdgeFinding<'_>,
        id: impl FnMut() -> String,
        now_ms: u64,
    ) -> Option<Alert> {
        let r = f.flow;
        let (opener, opener_port, receiver, receiver_port) = match f.initiator {
            Initiator::Src => (r.src_addr, r.src_port, r.dst_addr, r.dst_port),
            Initiator::Dst => (r.dst_addr, r.dst_port, r.src_addr, r.src_port),
        };
        let severity = if f.score >= HIGH_SCORE {
            Severity::High
        } else {
            Severity::Medium
        };
        let ev = Evidence {
            initiator: opener,
            target: Some(receiver),
            pattern: incident_pattern(f.pattern),
            first_ms: r.first_ms,
            last_ms: r.last_ms,
            severity,
            score: f.score,
            port: Some(receiver_port),
            packets: r.packets,
            bytes: r.bytes,
        };
        let (alert_id, emit) = self.alerts.observe(&ev, id)?;
        let attacker_opened = !ATTACKER_LISTENS.contains(&f.pattern);
        let (a_port, t_port) = if attacker_opened {
            (opener_port, receiver_port)
        } else {
            (receiver_port, opener_port)
        };
        // The incident already spells both hosts (initiator = opener, target = receiver):
        // reuse those strings rather than format the addresses again (a spoofed flood opens an
        // incident, and so builds an alert, on nearly every edge).
        let opener_s = emit.incident.initiator.clone();
        let receiver_s = emit
            .incident
            .target
            .clone()
            .unwrap_or_else(|| receiver.to_string());
        let (a_s, t_s) = if attacker_opened {
            (opener_s, receiver_s)
        } else {
            (receiver_s, opener_s)
        };
        let attacker = format!("{a_s}:{a_port}");
        let target = format!("{t_s}:{t_port}");
        let opened = if attacker_opened {
            format!("{attacker} opened it")
        } else {
            format!("{target} dialled out to it")
        };
        let edges = emit.folded_since_last + 1;
        let summary = format!(
            "{}; latest edge: attacker {attacker} -> target {target}/{proto} ({opened}), \
             P({pattern}) {p:.3}; {edges} edge(s) since the incident's last alert",
            incident_headline(&emit),
            pattern = f.pattern,
            proto = proto_name(r.protocol),
            p = f.probability,
        );
        let body = AlertBody {
            score: f.score,
            threshold: f.threshold,
            subject: Subject::Edge(EdgeSubject {
                flow: FlowSubject {
                    exporter: f.origin.to_string(),
                    src_addr: a_s,
                    dst_addr: t_s,
                    src_port: a_port,
                    dst_port: t_port,
                    protocol: r.protocol,
                    flow_first_ms: r.first_ms,
                    flow_last_ms: r.last_ms,
                },
                attacker,
                target,
                initiator: if attacker_opened {
                    "attacker"
                } else {
                    "target"
                }
                .into(),
                pattern: f.pattern.into(),
                probability: f.probability,
                edges,
            }),
            top_features: Vec::new(),
            summary,
        };
        Some(self.alerts.alert(alert_id, now_ms, emit, body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

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
        // The incident: the web server opened the connection to the listener.
        let inc = alert.incident.as_ref().expect("incident");
        assert_eq!(
            (
                inc.id.as_str(),
                inc.update,
                inc.pattern.as_str(),
                inc.initiator.as_str(),
                inc.target.as_deref(),
                inc.ports.as_slice()
            ),
            (
                "id",
                0,
                "reverse_shell",
                "10.0.0.10",
                Some("10.0.0.66"),
                &[4444u16][..]
            )
        );
        // The reply record (attacker -> web, the web server still the initiator) folds in.
        let back = rec([10, 0, 0, 66], 4444, [10, 0, 0, 10], 51000, 1000);
        let f2 = EdgeFinding {
            flow: &back,
            initiator: Initiator::Dst,
            ..f
        };
        assert!(a.consider(&f2, || "id2".into(), 0).is_none());
        assert_eq!(a.open_incidents(), 1);
        // A minute and more without evidence ends it: the next edge opens a new incident.
        let later = rec([10, 0, 0, 10], 51002, [10, 0, 0, 66], 4444, 70_000);
        let f3 = EdgeFinding { flow: &later, ..f };
        let again = a.consider(&f3, || "id3".into(), 0).expect("new incident");
        let inc = again.incident.expect("incident");
        assert_eq!((inc.id.as_str(), inc.update, inc.flows), ("id3", 0, 1));
    }

    #[test]
    fn a_brute_force_is_one_incident_updated_with_counts_not_re_raised() {
        let mut a = alerter();
        let origin = FlowOrigin::Exporter("127.0.0.1:9".parse().expect("addr"));
        let mut alerts = Vec::new();
        // 20 SSH sessions of 10.0.0.66 against 10.0.0.30, 100 ms apart; each session's reply
        // record (server -> client) comes too.
        for n in 0..20u16 {
            let t = 1_000 + u64::from(n) * 100;
            let ask = rec([10, 0, 0, 66], 40_000 + n, [10, 0, 0, 30], 22, t);
            let answer = rec([10, 0, 0, 30], 22, [10, 0, 0, 66], 40_000 + n, t);
            for (r, initiator) in [(&ask, Initiator::Src), (&answer, Initiator::Dst)] {
                let f = EdgeFinding {
                    origin: &origin,
                    flow: r,
                    initiator,
                    pattern: "brute_force",
                    probability: 0.9,
                    score: 0.95,
                    threshold: 0.5,
                };
                alerts.extend(a.consider(&f, || format!("id{n}"), 0));
            }
        }
        // Opened, then updates at 4 and 16 edges: three alerts for 40 edges, one incident.
        let counts: Vec<(u32, u64, u64)> = alerts
            .iter()
            .map(|al| {
                let i = al.incident.as_ref().expect("incident");
                (i.update, i.flows, al.subject.edge().expect("edge").edges)
            })
            .collect();
        assert_eq!(counts, [(0, 1, 1), (1, 4, 3), (2, 16, 12)]);
        for al in &alerts {
            let i = al.incident.as_ref().expect("incident");
            assert_eq!(i.id, "id0");
            assert_eq!(
                (
                    i.initiator.as_str(),
                    i.target.as_deref(),
                    i.pattern.as_str()
                ),
                ("10.0.0.66", Some("10.0.0.30"), "brute_force")
            );
            assert_eq!(i.ports, [22]);
            let e = al.subject.edge().expect("edge");
            assert!(e.attacker.starts_with("10.0.0.66:"), "{e:?}");
            assert_eq!(
                (e.target.as_str(), e.initiator.as_str()),
                ("10.0.0.30:22", "attacker")
            );
        }
        let last = alerts.last().expect("alerts");
        assert_eq!(last.incident.as_ref().map(|i| i.last_ms), Some(1_700));
        assert!(last.summary.starts_with(
            "medium brute_force 10.0.0.66 -> 10.0.0.30: 16 flows, 1 ports (22), 1 s (incident id0, update 2); latest edge: attacker 10.0.0.66:"
        ), "{}", last.summary);
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
        let inc = alert.incident.as_ref().expect("incident");
        assert_eq!(
            (inc.initiator.as_str(), inc.pattern.as_str()),
            ("10.0.0.66", "port_scan")
        );
        assert_eq!(alert.severity, "high");
    }
}
