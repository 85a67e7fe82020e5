//! The ARP rules as an eval detector: the capture path's notable ARP events (metered by the
//! firmware's ARP meter in [`super::replay`], as the capture sources do) through the daemon's
//! own [`ArpDetector`]. NetFlow carries no ARP, so it runs on the capture path only.

use std::net::IpAddr;
use std::sync::Arc;

use crate::metrics::Metrics;
use crate::models::LoadError;
use crate::pipeline::arp::{ArpDetector, ArpRules};
use crate::records::{Alert, ArpSubject, FlowOrigin, ARP_DETECTOR};

use super::detectors::{Detector, DetectorRun, EvalAlert};
use super::replay::{PathInput, PathKind};

#[derive(Debug, Clone)]
pub struct ArpRulesDetector {
    pub rules: ArpRules,
}

impl Detector for ArpRulesDetector {
    fn name(&self) -> &'static str {
        ARP_DETECTOR
    }

    fn paths(&self) -> &'static [PathKind] {
        &[PathKind::Capture]
    }

    fn run(&mut self, input: &PathInput) -> Result<DetectorRun, LoadError> {
        let r = &self.rules;
        let model = format!(
            "arp-rules 1 (stale after {} s, {} unsolicited/min, {} IPs per MAC, {} allow-listed)",
            r.stale_after.as_secs(),
            r.unsolicited_per_min,
            r.max_ips_per_mac,
            r.allow_macs.len() + r.allow_ips.len()
        );
        let mut rules = ArpDetector::new(
            self.rules.clone(),
            "eval",
            "eval",
            Arc::new(Metrics::default()),
        )
        .with_clock(|| 0);
        let name = input
            .file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let origin = FlowOrigin::Meter(format!("pcap:{name}").into());
        let mut alerts = Vec::new();
        for e in &input.arp {
            rules.ingest(&origin, std::slice::from_ref(e), &mut |a| {
                alerts.push(EvalAlert::from_alert(&a, e.ts_ms))
            });
        }
        Ok(DetectorRun {
            model,
            threshold: None,
            alerts,
            scores: Vec::new(),
            learning: None,
        })
    }
}

/// An ARP alert as eval judges it: the attacker's own address as the source (none known: it
/// blames nobody, a false alert), its first target as the destination, and the packet that
/// raised it as the span (the incident's first packet may lie phases earlier).
pub fn eval_alert(a: &Alert, s: &ArpSubject, raised_ms: u64) -> EvalAlert {
    let ip = |s: &str| s.parse::<IpAddr>().ok();
    EvalAlert {
        src: s.attacker_ip.as_deref().and_then(ip),
        dst: s.targets.first().and_then(|t| ip(t)),
        flow_first_ms: s.last_ms,
        flow_last_ms: s.last_ms,
        raised_ms,
        severity: a.severity.clone(),
        score: a.score,
        summary: a.summary.clone(),
        incident: None,
        update: 0,
    }
}
