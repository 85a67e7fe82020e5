//! ARP spoofing on the capture path, on the committed lab run `tests/data/lab/small` (its
//! `p17-arp_spoof` phase is real `arpspoof -t cl3 -r web` from dsniff, see tests/lab/run.sh).
//!
//! 1. `run --pcap`'s own replay thread (`sources::packets::pcap::spawn`) meters the capture and
//!    queues ARP events; they go through the daemon's ARP rules. The alerts must fall in the
//!    arp_spoof phase, name the attacker (its MAC and its own address) and the victims, and
//!    nothing may be raised in the benign phases.
//! 2. `netwarden eval` (the binary) reports the phase detected with no false alert.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use netwarden::cli::eval::labels::{read_labels, Label};
use netwarden::metrics::Metrics;
use netwarden::pipeline::arp::{ArpDetector, ArpSettings};
use netwarden::records::{Alert, FlowInput};
use netwarden::sources::packets::{pcap, CaptureTimeouts};

fn lab() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/lab/small")
}

const ATTACKER_MAC: &str = "02:77:00:00:00:42";
const WEB: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 77, 0, 10));

#[test]
fn replayed_capture_alerts_on_the_arp_spoof_phase_only() {
    let settings = ArpSettings::default();
    let metrics = Arc::new(Metrics::default());
    let (tx, rx) = std::sync::mpsc::sync_channel::<FlowInput>(64);
    let replay = pcap::spawn(
        lab().join("capture.pcap"),
        CaptureTimeouts::default(),
        settings.meter,
        tx,
        metrics.clone(),
    )
    .expect("replay thread");
    let mut rules = ArpDetector::new(settings.rules, "lab", "gw", metrics.clone());
    let mut alerts: Vec<Alert> = Vec::new();
    let mut events = 0;
    for input in rx {
        if let FlowInput::Arp { origin, events: e } = input {
            events += e.len();
            rules.ingest(&origin, &e, &mut |a| alerts.push(a));
        }
    }
    replay.join().expect("replay ends");
    let m = metrics.snapshot();
    assert_eq!(
        m.capture_arp_packets, 270,
        "tcpdump -r capture.pcap arp | wc -l"
    );
    assert_eq!(m.capture_arp_events, events as u64);
    assert!(m.capture_arp_bindings_changed >= 2, "{m:?}");

    let phases = read_labels(&lab().join("labels.csv")).expect("labels");
    let spoof = phases
        .iter()
        .find(|p| p.kind == "arp_spoof")
        .expect("an arp_spoof phase");
    assert!(!alerts.is_empty(), "no ARP alert at all");
    for a in &alerts {
        let s = a.subject.arp().expect("an ARP subject");
        // The packet that raised it lies in the spoofing phase (arpspoof's clean-up runs
        // up to 3 s past its end, still inside the phase), never in a benign one.
        let phase = phases
            .iter()
            .find(|p| p.start_ms <= s.last_ms && s.last_ms < p.end_ms)
            .expect("inside the labelled time");
        assert_eq!(phase.phase, spoof.phase, "{a:#?}");
        assert_eq!(phase.label, Label::Malicious);
        assert_eq!(s.attacker_mac, ATTACKER_MAC, "{a:#?}");
        let own: IpAddr = s
            .attacker_ip
            .as_deref()
            .expect("own IP")
            .parse()
            .expect("ip");
        assert_eq!(vec![own], spoof.attackers, "{a:#?}");
        assert_eq!(s.interface, "pcap:capture.pcap");
        // The victims: cl3 (the labelled victim) had its cache poisoned, and web (whose
        // address was taken) too, since arpspoof -r poisons both ways.
        for v in &spoof.victims {
            assert!(s.targets.contains(&v.to_string()), "{a:#?}");
        }
        assert!(s.impersonated.contains(&WEB.to_string()), "{a:#?}");
        assert!(!s.impersonated.contains(&own.to_string()), "{a:#?}");
    }
    let rules_fired: Vec<&str> = alerts
        .iter()
        .filter_map(|a| a.subject.arp().map(|s| s.rule.as_str()))
        .collect();
    assert_eq!(rules_fired, ["binding_flip", "unsolicited_replies"]);
    let flip = alerts[0].subject.arp().expect("arp");
    assert_eq!(flip.previous_macs, ["02:77:00:00:00:0a"], "web's own MAC");
    assert_eq!(alerts[0].severity, "high");
}

#[test]
fn eval_reports_the_phase_detected_without_false_alerts() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_netwarden"))
        .args(["eval", "--json"])
        .arg(lab())
        .args(["--paths", "capture"])
        .env("NETWARDEN_LOG", "warn")
        .output()
        .expect("run netwarden eval");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let arp = report["results"]
        .as_array()
        .expect("results")
        .iter()
        .find(|r| r["detector"] == "arp_rules")
        .expect("arp_rules on the capture path");
    assert_eq!(arp["path"], "capture");
    assert_eq!(arp["detected_phases"], 1);
    assert_eq!(arp["alerts"]["false"], 0, "{arp:#}");
    assert_eq!(arp["alerts"]["victim"], 0, "{arp:#}");
    let phase = arp["phases"]
        .as_array()
        .expect("phases")
        .iter()
        .find(|p| p["detected"] == true)
        .expect("a detected phase");
    assert_eq!(phase["kind"], "arp_spoof");
    assert!(
        phase["first_alert_raised_s"].as_f64().expect("time") < 5.0,
        "{phase:#}"
    );
    // No other detector is handed ARP, and the NetFlow paths are not given to this one.
    assert!(report["results"]
        .as_array()
        .expect("results")
        .iter()
        .all(|r| r["detector"] != "arp_rules" || r["path"] == "capture"));
}
