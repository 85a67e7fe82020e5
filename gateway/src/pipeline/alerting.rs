//! From anomalous flows to alerts: de-duplication per source host, severity, explanation.
//!
//! A port scan is a thousand anomalous flows; an operator wants one alert that says so, within
//! a second, not a thousand. The first anomalous flow from a source host raises an alert at once;
//! further anomalous flows from that host within `dedupe_window` (event time) are counted in
//! `alerts_suppressed_dedupe` and in the next alert's `suppressed_since_last`. The same rule,
//! [`Dedupe`], keeps interface-series alerts to one per interface per window.
//!
//! An alert's [`Subject`] says what it is about: a flow (`"kind": "flow"`) or an interface
//! (`"kind": "interface"`), so one subscriber can handle both detectors.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::time::Duration;

use netwarden_firmware::features::{FlowFeatures, FLOW_FEATURES};
use netwarden_firmware::{FlowRecord, Severity, Verdict};

use crate::records::{Alert, Contribution, FlowOrigin, FlowSubject, ModelRef, Subject};

/// One anomalous flow as the detector saw it.
#[derive(Debug, Clone, Copy)]
pub struct Finding<'a> {
    pub exporter: &'a FlowOrigin,
    pub flow: &'a FlowRecord,
    pub raw: &'a FlowFeatures,
    pub verdict: &'a Verdict<{ FLOW_FEATURES.len() }>,
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

/// Turns findings into alerts; pure logic, the caller supplies ids and clock.
#[derive(Debug)]
pub struct Alerter {
    site: String,
    device: String,
    detector: &'static str,
    model: ModelRef,
    dedupe: Dedupe<IpAddr>,
}

const TOP_FEATURES: usize = 3;

impl Alerter {
    pub fn new(
        site: &str,
        device: &str,
        detector: &'static str,
        model: ModelRef,
        window: Duration,
    ) -> Self {
        Alerter {
            site: site.to_string(),
            device: device.to_string(),
            detector,
            model,
            dedupe: Dedupe::new(window, 65_536),
        }
    }

    pub fn set_model(&mut self, model: ModelRef) {
        self.model = model;
    }

    /// An alert for `f`, or `None` when it is folded into a recent alert for the same host.
    /// A higher severity than the last alert's breaks through the de-duplication. `id` is only
    /// called for an alert that is raised: a scan makes thousands of anomalous flows per alert,
    /// and a v7 UUID costs a getrandom call.
    pub fn consider(
        &mut self,
        f: &Finding<'_>,
        id: impl FnOnce() -> String,
        now_ms: u64,
    ) -> Option<Alert> {
        let suppressed = self
            .dedupe
            .admit(&f.flow.src_addr, f.flow.last_ms, f.severity)?;
        Some(self.build(f, id(), now_ms, suppressed))
    }

    fn build(&self, f: &Finding<'_>, id: String, now_ms: u64, suppressed: u64) -> Alert {
        let total: f32 = f.verdict.contributions.iter().sum();
        let top_features: Vec<Contribution> = f
            .verdict
            .ranked()
            .iter()
            .take(TOP_FEATURES)
            .map(|&i| Contribution {
                feature: FLOW_FEATURES[i].to_string(),
                value: f.raw[i],
                share: if total > 0.0 {
                    f.verdict.contributions[i] / total
                } else {
                    0.0
                },
            })
            .collect();
        let r = f.flow;
        let proto = match r.protocol {
            1 => "icmp".to_string(),
            6 => "tcp".to_string(),
            17 => "udp".to_string(),
            58 => "icmpv6".to_string(),
            p => format!("proto {p}"),
        };
        let ratio = if f.threshold > 0.0 {
            f.verdict.error / f.threshold
        } else {
            f32::INFINITY
        };
        let top = top_features
            .iter()
            .map(|c| format!("{}={}", c.feature, c.value))
            .collect::<Vec<_>>()
            .join(", ");
        let summary = format!(
            "{} {}:{} -> {}:{}/{}: reconstruction error {:.4} is {:.1}x the threshold; most unusual: {}",
            f.severity, r.src_addr, r.src_port, r.dst_addr, r.dst_port, proto, f.verdict.error, ratio, top
        );
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
            severity: f.severity.as_str().to_string(),
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
            suppressed_since_last: suppressed,
            rule: None,
            summary,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::InterfaceSubject;
    use std::net::Ipv4Addr;

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
        let raw = [1.0, 44.0, 0.0, 44.0, 1.0, 900.0, 800.0, 1.0];
        let verdict = Verdict::judge(
            &[0.0, 0.0, 0.0, 0.0, 1.0, 3.0, 2.0, 0.0],
            &[0.0; 8],
            0.01,
            2.0,
        );
        let f = Finding {
            exporter: &FlowOrigin::Exporter("127.0.0.1:9".parse().expect("addr")),
            flow: fl,
            raw: &raw,
            verdict: &verdict,
            severity: sev,
            threshold: 0.01,
        };
        a.consider(&f, || format!("id{n}"), 1_000)
    }

    #[test]
    fn one_alert_per_host_per_window_and_suppressed_are_reported() {
        let mut a = alerter();
        let first = consider(&mut a, &flow(1, 0), Severity::High, 0).expect("first alert");
        assert_eq!(first.top_features[0].feature, "src_flows_window");
        assert_eq!(
            first.top_features[1].feature,
            "src_distinct_dst_ports_window"
        );
        assert!((first.top_features.iter().map(|c| c.share).sum::<f32>() - 1.0).abs() < 1e-5);
        assert!(
            first
                .summary
                .starts_with("high 10.0.0.1:1234 -> 10.0.0.99:22/tcp"),
            "{}",
            first.summary
        );
        for i in 1..10 {
            assert!(consider(&mut a, &flow(1, i * 1000), Severity::High, 0).is_none());
        }
        // Another host is not suppressed.
        assert!(consider(&mut a, &flow(2, 5_000), Severity::Medium, 1).is_some());
        // After the window, host 1 alerts again and reports what was folded.
        let again = consider(&mut a, &flow(1, 70_000), Severity::High, 2).expect("after window");
        assert_eq!(again.suppressed_since_last, 9);
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
    fn escalation_breaks_through() {
        let mut a = alerter();
        assert!(consider(&mut a, &flow(1, 0), Severity::Medium, 0).is_some());
        assert!(consider(&mut a, &flow(1, 10), Severity::Medium, 1).is_none());
        assert!(consider(&mut a, &flow(1, 20), Severity::High, 2).is_some());
    }
}
