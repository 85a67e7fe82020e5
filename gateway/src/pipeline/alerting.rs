//! From anomalous flows to alerts: incidents, severity, explanation.
//!
//! A port scan is a thousand anomalous flows; an operator wants one alert that says so, within
//! a second, not a thousand. Each anomalous flow is oriented (the host that opened the
//! connection is the initiator, whichever direction the record describes: [`super::orient`]),
//! given a pattern from its initiator's window features, and fed to the
//! [`IncidentTracker`](super::incidents): the first evidence of an incident raises an alert at
//! once, later evidence updates it (same `incident.id`) only when it grew or changed, and is
//! otherwise counted in `alerts_suppressed_dedupe` and the next alert's
//! `suppressed_since_last`. [`Dedupe`] keeps interface-series alerts to one per interface per
//! window.
//!
//! An alert's [`Subject`] says what it is about: a flow (`"kind": "flow"`) or an interface
//! (`"kind": "interface"`), so one subscriber can handle both detectors.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::Duration;

use netwarden_firmware::{FlowRecord, Severity, Verdict};

use super::incidents::{Emit, Evidence, IncidentTracker, Pattern, TrackerConfig};
use super::orient::{orient, Oriented};
use crate::models::flow_scorer::{FlowRow, ROW};
use crate::records::{Alert, Contribution, FlowOrigin, FlowSubject, ModelRef, Subject};

/// One anomalous flow as the detector saw it.
#[derive(Debug, Clone, Copy)]
pub struct Finding<'a> {
    pub exporter: &'a FlowOrigin,
    pub flow: &'a FlowRecord,
    /// The raw row: `flow-v1` in its first 8 values (with `flow-v2` after them).
    pub raw: &'a FlowRow,
    pub verdict: &'a Verdict<ROW>,
    /// The model's feature names (`flow-v1` or `flow-v2`), in row order.
    pub names: &'static [&'static str],
    pub severity: Severity,
    pub threshold: f32,
}

#[derive(Debug, Clone, Copy)]
struct Last {
    event_ms: u64,
    severity: Severity,
    suppressed: u64,
}

/// One alert per key per `window` of event time; a higher severity breaks through. Memory is
/// bounded: past `max_keys` keys, those older than the window are forgotten (all, if needed).
#[derive(Debug)]
pub struct Dedupe<K> {
    window_ms: u64,
    last: HashMap<K, Last>,
    max_keys: usize,
}

impl<K: Hash + Eq + Clone> Dedupe<K> {
    pub fn new(window: Duration, max_keys: usize) -> Self {
        Dedupe {
            window_ms: window.as_millis() as u64,
            last: HashMap::new(),
            max_keys: max_keys.max(1),
        }
    }

    /// `Some(suppressed since the key's last alert)` when an alert should go out now, `None`
    /// when this finding is folded into the last one (and counted for the next).
    pub fn admit(&mut self, key: &K, event_ms: u64, severity: Severity) -> Option<u64> {
        if let Some(last) = self.last.get_mut(key) {
            let within = event_ms.saturating_sub(last.event_ms) < self.window_ms;
            if within && severity <= last.severity {
                last.suppressed += 1;
                return None;
            }
        }
        if self.last.len() >= self.max_keys && !self.last.contains_key(key) {
            let horizon = event_ms.saturating_sub(self.window_ms);
            self.last.retain(|_, l| l.event_ms >= horizon);
            if self.last.len() >= self.max_keys {
                self.last.clear();
            }
        }
        let suppressed = self.last.get(key).map_or(0, |l| l.suppressed);
        self.last.insert(
            key.clone(),
            Last {
                event_ms,
                severity,
                suppressed: 0,
            },
        );
        Some(suppressed)
    }
}

/// What every incident alert shares, whichever detector raised it: the site, device,
/// detector and model it names, and the [`IncidentTracker`] that decides when evidence is worth
/// an alert. The flow detector's [`Alerter`] and the graph detector's edge alerter both build
/// on it; each adds only its own subject, explanation and summary.
#[derive(Debug)]
pub struct IncidentAlerts {
    site: String,
    device: String,
    detector: &'static str,
    model: ModelRef,
    incidents: IncidentTracker,
}

/// The detector's own parts of an incident alert.
#[derive(Debug)]
pub struct AlertBody {
    pub score: f32,
    pub threshold: f32,
    pub subject: Subject,
    pub top_features: Vec<Contribution>,
    pub summary: String,
}

impl IncidentAlerts {
    /// Incidents end after `window` of event time without evidence.
    pub fn new(
        site: &str,
        device: &str,
        detector: &'static str,
        model: ModelRef,
        window: Duration,
    ) -> Self {
        IncidentAlerts {
            site: site.to_string(),
            device: device.to_string(),
            detector,
            model,
            incidents: IncidentTracker::new(TrackerConfig::with_idle(window)),
        }
    }

    pub fn set_model(&mut self, model: ModelRef) {
        self.model = model;
    }

    /// Incidents open now.
    pub fn open_incidents(&self) -> usize {
        self.incidents.open_count()
    }

    /// Feeds `ev` to the tracker: `Some((alert id, emit))` when an alert should go out, `None`
    /// when the evidence is folded into its incident. `id` is called only for an alert that is
    /// raised: a scan makes thousands of anomalous flows per alert, and a v7 UUID costs a
    /// getrandom call. The alert that opens an incident carries the incident's id.
    pub fn observe(
        &mut self,
        ev: &Evidence,
        mut id: impl FnMut() -> String,
    ) -> Option<(String, Emit)> {
        let mut opened = None;
        let emit = self.incidents.observe(ev, || {
            let s = id();
            opened = Some(s.clone());
            s
        })?;
        Some((opened.unwrap_or_else(&mut id), emit))
    }

    /// The alert for `emit`.
    pub fn alert(&self, id: String, now_ms: u64, emit: Emit, body: AlertBody) -> Alert {
        Alert {
            id,
            ts_ms: now_ms,
            ts: humantime::format_rfc3339_millis(
                std::time::UNIX_EPOCH + Duration::from_millis(now_ms),
            )
            .to_string(),
            site: self.site.clone(),
            device: self.device.clone(),
            detector: self.detector.to_string(),
            model: self.model.clone(),
            severity: emit.severity.as_str().to_string(),
            score: body.score,
            threshold: body.threshold,
            subject: body.subject,
            top_features: body.top_features,
            suppressed_since_last: emit.folded_since_last,
            rule: None,
            summary: body.summary,
            incident: Some(emit.incident),
        }
    }
}

/// A protocol's name in summaries: `tcp`, `udp`, `icmp`, `icmpv6` or `proto N`.
pub fn proto_name(p: u8) -> String {
    match p {
        1 => "icmp".to_string(),
        6 => "tcp".to_string(),
        17 => "udp".to_string(),
        58 => "icmpv6".to_string(),
        p => format!("proto {p}"),
    }
}

/// The start of every incident alert's summary: severity, pattern, initiator -> target, the
/// incident's counts and duration, its id and update, e.g. `high port_scan 10.0.0.1 ->
/// 10.0.0.99: 12 flows, 3 ports (22,80,443), 5 s (incident X, update 2)`.
pub fn incident_headline(emit: &Emit) -> String {
    use std::fmt::Write as _;
    let inc = &emit.incident;
    let mut s = String::with_capacity(160);
    // Writing to a String cannot fail.
    let _ = write!(
        s,
        "{} {} {} -> {}: {} flows, {} ports (",
        emit.severity,
        inc.pattern,
        inc.initiator,
        inc.target.as_deref().unwrap_or("many hosts"),
        inc.flows,
        inc.ports_distinct,
    );
    for (i, p) in inc.ports.iter().enumerate() {
        let _ = write!(s, "{}{p}", if i == 0 { "" } else { "," });
    }
    if inc.ports_distinct as usize > inc.ports.len() {
        s.push_str(",...");
    }
    let _ = write!(
        s,
        "), {} s (incident {}, ",
        inc.last_ms.saturating_sub(inc.first_ms).div_ceil(1000),
        inc.id
    );
    match inc.update {
        0 => s.push_str("opened)"),
        n => {
            let _ = write!(s, "update {n})");
        }
    }
    s
}

/// Turns findings into incident alerts; pure logic, the caller supplies ids and clock.
#[derive(Debug)]
pub struct Alerter {
    alerts: IncidentAlerts,
}

const TOP_FEATURES: usize = 3;

/// Window counts from which a flow's source looks like a scan, sweep, flood or repeated
/// connections (10 s window of `flow-v1`).
const SCAN_PORTS: f32 = 16.0;
const SWEEP_ADDRS: f32 = 16.0;
const FLOOD_FLOWS: f32 = 64.0;
const REPEAT_FLOWS: f32 = 32.0;
const LARGE_BYTES: u64 = 1_000_000;

impl Alerter {
    /// Incidents end after `window` of event time without evidence.
    pub fn new(
        site: &str,
        device: &str,
        detector: &'static str,
        model: ModelRef,
        window: Duration,
    ) -> Self {
        Alerter {
            alerts: IncidentAlerts::new(site, device, detector, model, window),
        }
    }

    pub fn set_model(&mut self, model: ModelRef) {
        self.alerts.set_model(model);
    }

    /// An alert for `f` when it opens an incident or changes one enough to tell (see
    /// [`super::incidents`]), `None` when it is folded into its incident. `id` is called only
    /// for an alert that is raised: a scan makes thousands of anomalous flows per alert, and a
    /// v7 UUID costs a getrandom call.
    pub fn consider(
        &mut self,
        f: &Finding<'_>,
        mut id: impl FnMut() -> String,
        now_ms: u64,
    ) -> Option<Alert> {
        let o = orient(f.flow);
        let pattern = classify(f, &o);
        let ev = Evidence {
            initiator: o.initiator,
            target: (pattern != Pattern::HostSweep).then_some(o.target),
            pattern,
            first_ms: f.flow.first_ms,
            last_ms: f.flow.last_ms,
            severity: f.severity,
            score: f.verdict.error,
            port: Some(o.service_port),
            packets: f.flow.packets,
            bytes: f.flow.bytes,
        };
        let (alert_id, emit) = self.alerts.observe(&ev, &mut id)?;
        Some(self.build(f, alert_id, now_ms, emit))
    }

    fn build(&self, f: &Finding<'_>, id: String, now_ms: u64, emit: Emit) -> Alert {
        let total: f32 = f.verdict.contributions.iter().sum();
        let top_features: Vec<Contribution> = f
            .verdict
            .ranked()
            .iter()
            .filter(|&&i| i < f.names.len())
            .take(TOP_FEATURES)
            .map(|&i| Contribution {
                feature: f.names[i].to_string(),
                value: f.raw[i],
                share: if total > 0.0 {
                    f.verdict.contributions[i] / total
                } else {
                    0.0
                },
            })
            .collect();
        let r = f.flow;
        let ratio = if f.threshold > 0.0 {
            f.verdict.error / f.threshold
        } else {
            f32::INFINITY
        };
        // Counts (and the window's distinct-count estimates) as integers: "12", not "12.000341".
        let top = top_features
            .iter()
            .map(|c| format!("{}={}", c.feature, c.value.round() as i64))
            .collect::<Vec<_>>()
            .join(", ");
        let summary = format!(
            "{}; latest {}:{} -> {}:{}/{}: reconstruction error {:.4} is {:.1}x the threshold; most unusual: {}",
            incident_headline(&emit),
            r.src_addr,
            r.src_port,
            r.dst_addr,
            r.dst_port,
            proto_name(r.protocol),
            f.verdict.error,
            ratio,
            top
        );
        let body = AlertBody {
            score: f.verdict.error,
            threshold: f.threshold,
            subject: Subject::Flow(FlowSubject {
                exporter: f.exporter.to_string(),
                src_addr: r.src_addr.to_string(),
                dst_addr: r.dst_addr.to_string(),
                src_port: r.src_port,
                dst_port: r.dst_port,
                protocol: r.protocol,
                flow_first_ms: r.first_ms,
                flow_last_ms: r.last_ms,
            }),
            top_features,
            summary,
        };
        self.alerts.alert(id, now_ms, emit, body)
    }
}

/// The incident pattern one anomalous flow points at. The window features describe the
/// record's source, so they say something about the initiator only when the record is not an
/// answer; an answer is `unusual_flow` and joins whatever its pair's incident is.
pub fn classify(f: &Finding<'_>, o: &Oriented) -> Pattern {
    if f.flow.bytes >= LARGE_BYTES {
        return Pattern::LargeTransfer;
    }
    if o.reply {
        return Pattern::UnusualFlow;
    }
    let [flows, ports, addrs] = [f.raw[5], f.raw[6], f.raw[7]];
    if ports >= SCAN_PORTS {
        Pattern::PortScan
    } else if addrs >= SWEEP_ADDRS {
        Pattern::HostSweep
    } else if flows >= FLOOD_FLOWS && f.flow.packets <= 2 {
        Pattern::Flood
    } else if flows >= REPEAT_FLOWS {
        Pattern::RepeatedConnections
    } else {
        Pattern::UnusualFlow
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::InterfaceSubject;
    use std::net::{IpAddr, Ipv4Addr};

    fn flow(src: u8, last_ms: u64) -> FlowRecord {
        FlowRecord {
            src_addr: IpAddr::V4(Ipv4Addr::new(10, 0, 0, src)),
            dst_addr: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 99)),
            src_port: 1234,
            dst_port: 22,
            protocol: 6,
            packets: 1,
            bytes: 44,
            first_ms: last_ms,
            last_ms,
            tcp_flags: 2,
        }
    }

    fn alerter() -> Alerter {
        Alerter::new(
            "s",
            "d",
            "flow_ae",
            ModelRef {
                name: "m".into(),
                version: "1".into(),
            },
            Duration::from_secs(60),
        )
    }

    fn consider(a: &mut Alerter, fl: &FlowRecord, sev: Severity, n: u32) -> Option<Alert> {
        let raw =
            crate::models::flow_scorer::row_of(&[1.0, 44.0, 0.0, 44.0, 1.0, 900.0, 800.0, 1.0]);
        let scaled = crate::models::flow_scorer::row_of(&[0.0, 0.0, 0.0, 0.0, 1.0, 3.0, 2.0, 0.0]);
        let verdict = Verdict::judge_first(&scaled, 8, &[0.0; 8], 0.01, 2.0);
        let f = Finding {
            exporter: &FlowOrigin::Exporter("127.0.0.1:9".parse().expect("addr")),
            flow: fl,
            raw: &raw,
            verdict: &verdict,
            names: &netwarden_firmware::features::FLOW_FEATURES,
            severity: sev,
            threshold: 0.01,
        };
        a.consider(&f, || format!("id{n}"), 1_000)
    }

    #[test]
    fn one_alert_per_incident_updated_as_it_grows() {
        let mut a = alerter();
        let first = consider(&mut a, &flow(1, 0), Severity::High, 0).expect("first alert");
        assert_eq!(first.top_features[0].feature, "src_flows_window");
        assert_eq!(
            first.top_features[1].feature,
            "src_distinct_dst_ports_window"
        );
        assert!((first.top_features.iter().map(|c| c.share).sum::<f32>() - 1.0).abs() < 1e-5);
        let inc = first.incident.clone().expect("incident");
        assert_eq!((inc.update, inc.pattern.as_str()), (0, "port_scan"));
        assert_eq!(
            (inc.initiator.as_str(), inc.target.as_deref()),
            ("10.0.0.1", Some("10.0.0.99"))
        );
        assert_eq!(inc.id, first.id);
        // Estimated counts are integers in the text.
        assert!(
            first
                .summary
                .starts_with("high port_scan 10.0.0.1 -> 10.0.0.99: 1 flows, 1 ports (22), 0 s"),
            "{}",
            first.summary
        );
        assert!(
            first.summary.ends_with(
                "src_flows_window=900, src_distinct_dst_ports_window=800, tcp_syn_without_ack=1"
            ),
            "{}",
            first.summary
        );
        assert!(consider(&mut a, &flow(1, 1000), Severity::High, 1).is_none());
        assert!(consider(&mut a, &flow(1, 2000), Severity::High, 2).is_none());
        let grew = consider(&mut a, &flow(1, 3000), Severity::High, 3).expect("4 flows");
        let g = grew.incident.expect("incident");
        assert_eq!((g.id.as_str(), g.update, g.flows), (inc.id.as_str(), 1, 4));
        assert_eq!(grew.id, "id3", "each alert has its own id");
        assert_eq!(grew.suppressed_since_last, 2);
        // Another host is another incident.
        let other = consider(&mut a, &flow(2, 5_000), Severity::Medium, 4).expect("other");
        assert_eq!(other.incident.expect("incident").update, 0);
        // After a minute without evidence, host 1 opens a new incident.
        let again = consider(&mut a, &flow(1, 70_000), Severity::High, 5).expect("after idle");
        let i = again.incident.expect("incident");
        assert_eq!((i.id.as_str(), i.update), ("id5", 0));
    }

    #[test]
    fn the_victims_answers_name_the_scanner() {
        let mut a = alerter();
        // The victim's RST/ACK answers arrive first (expiry order) ...
        let mut answer = flow(99, 0);
        answer.src_addr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
        answer.dst_addr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        (answer.src_port, answer.dst_port, answer.tcp_flags) = (22, 1234, 0x14);
        let first = consider(&mut a, &answer, Severity::Medium, 0).expect("opened");
        let inc = first.incident.expect("incident");
        assert_eq!(
            (inc.initiator.as_str(), inc.target.as_deref()),
            ("10.0.0.1", Some("10.0.0.2"))
        );
        assert_eq!(
            (inc.pattern.as_str(), inc.ports.as_slice()),
            ("unusual_flow", &[22u16][..])
        );
        // ... then the scanner's probes upgrade the same incident to a scan.
        let mut probe = flow(1, 10);
        probe.dst_addr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
        let up = consider(&mut a, &probe, Severity::Medium, 1).expect("classified");
        let u = up.incident.expect("incident");
        assert_eq!(
            (u.id.as_str(), u.pattern.as_str(), u.update),
            ("id0", "port_scan", 1)
        );
    }

    #[test]
    fn subject_json_is_tagged_by_kind() {
        let mut a = alerter();
        let alert = consider(&mut a, &flow(1, 0), Severity::High, 0).expect("alert");
        let json = serde_json::to_value(&alert).expect("json");
        assert_eq!(json["subject"]["kind"], "flow");
        assert_eq!(json["subject"]["src_addr"], "10.0.0.1");
        let back: Alert = serde_json::from_value(json).expect("round trip");
        assert_eq!(back, alert);
        let iface = Subject::Interface(InterfaceSubject {
            target: "r1".into(),
            if_index: 3,
            if_name: "ge-0/0/2".into(),
            direction: "in".into(),
            window_first_ms: 1,
            window_last_ms: 2,
        });
        let v = serde_json::to_value(&iface).expect("json");
        assert_eq!(v["kind"], "interface");
        assert_eq!(v["if_name"], "ge-0/0/2");
        assert_eq!(serde_json::from_value::<Subject>(v).expect("back"), iface);
    }

    #[test]
    fn escalation_updates_the_incident() {
        let mut a = alerter();
        assert!(consider(&mut a, &flow(1, 0), Severity::Medium, 0).is_some());
        assert!(consider(&mut a, &flow(1, 10), Severity::Medium, 1).is_none());
        let up = consider(&mut a, &flow(1, 20), Severity::High, 2).expect("escalated");
        assert_eq!(up.severity, "high");
        assert_eq!(up.incident.expect("incident").id, "id0");
    }
}
