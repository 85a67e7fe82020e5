//! The rules on event streams made by the firmware's ARP meter from synthetic frames.

use super::*;
use netwarden_firmware::meter::arp::{ethernet_arp, ArpConfig, ArpMeter};
use netwarden_firmware::wire::LinkType;

const WEB: Mac = [2, 0x77, 0, 0, 0, 0x0a];
const CL3: Mac = [2, 0x77, 0, 0, 0, 0x67];
const ATK: Mac = [2, 0x77, 0, 0, 0, 0x42];
const BCAST: Mac = [0xff; 6];

fn ip(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 77, 0, last)
}

/// Meters frames and runs the rules on the notable events, as the capture path does.
struct Lab {
    meter: Box<ArpMeter<256>>,
    rules: ArpDetector,
    alerts: Vec<Alert>,
    metrics: Arc<Metrics>,
}

impl Lab {
    fn new(rules: ArpRules) -> Lab {
        let metrics = Arc::new(Metrics::default());
        Lab {
            meter: Box::new(ArpMeter::new(ArpConfig::DEFAULT)),
            rules: ArpDetector::new(rules, "s", "d", metrics.clone()).with_clock(|| 7),
            alerts: Vec::new(),
            metrics,
        }
    }

    fn frame(&mut self, ts: u64, f: [u8; 42]) {
        let e = self
            .meter
            .observe(LinkType::Ethernet, ts, &f)
            .expect("an ARP frame");
        if e.notable() {
            let origin = FlowOrigin::Meter("capture:test".into());
            self.rules
                .ingest(&origin, &[e], &mut |a| self.alerts.push(a));
        }
    }

    /// `from` asks for `asked`, which answers.
    fn exchange(&mut self, ts: u64, from: (Mac, Ipv4Addr), asked: (Mac, Ipv4Addr)) {
        self.frame(
            ts,
            ethernet_arp(from.0, BCAST, ArpOp::Request, from, ([0; 6], asked.1)),
        );
        self.frame(
            ts + 1,
            ethernet_arp(asked.0, from.0, ArpOp::Reply, asked, from),
        );
    }

    fn subjects(&self) -> Vec<&ArpSubject> {
        self.alerts.iter().filter_map(|a| a.subject.arp()).collect()
    }
}

/// arpspoof -t cl3 -r web: "web is-at ATK" to cl3 and "cl3 is-at ATK" to web every 2 s, then
/// the true bindings re-announced from the attacker's NIC on exit.
fn arpspoof(lab: &mut Lab, start: u64, seconds: u64) {
    lab.exchange(start, (ATK, ip(66)), (CL3, ip(103)));
    for i in 0..seconds / 2 {
        let t = start + 1000 + i * 2000;
        lab.frame(
            t,
            ethernet_arp(ATK, CL3, ArpOp::Reply, (ATK, ip(10)), (CL3, ip(103))),
        );
        lab.frame(
            t,
            ethernet_arp(ATK, WEB, ArpOp::Reply, (ATK, ip(103)), (WEB, ip(10))),
        );
    }
    for i in 0..5 {
        let t = start + seconds * 1000 + i * 1000;
        lab.frame(
            t,
            ethernet_arp(ATK, CL3, ArpOp::Reply, (WEB, ip(10)), (CL3, ip(103))),
        );
        lab.frame(
            t,
            ethernet_arp(ATK, WEB, ArpOp::Reply, (CL3, ip(103)), (WEB, ip(10))),
        );
    }
}

fn benign(lab: &mut Lab, start: u64, minutes: u64) {
    for m in 0..minutes {
        let t = start + m * 60_000;
        lab.exchange(t, (CL3, ip(103)), (WEB, ip(10)));
        lab.exchange(t + 20_000, (WEB, ip(10)), (CL3, ip(103)));
        lab.exchange(t + 30_000, (ATK, ip(66)), (WEB, ip(10)));
    }
}

#[test]
fn arpspoof_is_caught_and_blamed_on_the_attacker() {
    let mut lab = Lab::new(ArpRules::default());
    benign(&mut lab, 0, 5);
    assert!(lab.alerts.is_empty(), "benign ARP: {:?}", lab.alerts);
    arpspoof(&mut lab, 300_000, 30);
    benign(&mut lab, 340_000, 5);
    let subjects = lab.subjects();
    let rules: Vec<&str> = subjects.iter().map(|s| s.rule.as_str()).collect();
    assert_eq!(
        rules,
        ["binding_flip", "unsolicited_replies"],
        "{:#?}",
        lab.alerts
    );
    for s in &subjects {
        assert_eq!(s.attacker_mac, "02:77:00:00:00:42");
        assert_eq!(s.attacker_ip.as_deref(), Some("10.77.0.66"));
        assert_eq!(s.interface, "capture:test");
    }
    let flip = subjects[0];
    assert_eq!(flip.impersonated, ["10.77.0.10"]);
    assert_eq!(flip.previous_macs, ["02:77:00:00:00:0a"]);
    assert_eq!(flip.targets, ["10.77.0.103"]);
    let rate = subjects[1];
    assert_eq!(rate.impersonated, ["10.77.0.10", "10.77.0.103"]);
    assert_eq!(rate.targets, ["10.77.0.103", "10.77.0.10"]);
    assert_eq!(lab.alerts[0].severity, "high");
    assert_eq!(lab.alerts[0].ts_ms, 7, "stamped by the detector's clock");
    let m = lab.metrics.snapshot();
    assert_eq!(m.arp_flips, 2, "{m:?}");
    assert!(m.arp_flips_restored >= 2, "the clean-up restores: {m:?}");
    assert!(m.arp_alerts_suppressed_dedupe > 0, "{m:?}");
}

#[test]
fn the_second_incident_after_the_dedupe_window_alerts_again_with_the_count() {
    let mut lab = Lab::new(ArpRules::default());
    benign(&mut lab, 0, 2);
    arpspoof(&mut lab, 120_000, 20);
    benign(&mut lab, 150_000, 10);
    arpspoof(&mut lab, 800_000, 20);
    let flips: Vec<&Alert> = lab
        .alerts
        .iter()
        .filter(|a| a.subject.arp().is_some_and(|s| s.rule == "binding_flip"))
        .collect();
    assert_eq!(flips.len(), 2, "{:#?}", lab.alerts);
    assert_eq!(
        flips[1].suppressed_since_last, 1,
        "the second flip of the first incident"
    );
}

#[test]
fn a_stale_binding_may_move_without_an_alert() {
    let mut lab = Lab::new(ArpRules::default());
    let new_nic: Mac = [2, 0x99, 0, 0, 0, 0x0a];
    lab.exchange(0, (CL3, ip(103)), (WEB, ip(10)));
    lab.exchange(700_000, (CL3, ip(103)), (new_nic, ip(10)));
    assert!(lab.alerts.is_empty(), "{:?}", lab.alerts);
    assert_eq!(lab.metrics.snapshot().arp_rebinds, 1);
    // But moving an address its owner claimed a minute ago is a flip.
    lab.exchange(760_000, (CL3, ip(103)), (WEB, ip(10)));
    assert_eq!(lab.subjects().len(), 1);
    assert_eq!(lab.subjects()[0].attacker_mac, "02:77:00:00:00:0a");
}

#[test]
fn allow_listed_failover_is_quiet() {
    let vrrp: Mac = [0, 0, 0x5e, 0, 1, 7];
    let mut lab = Lab::new(ArpRules::default());
    lab.exchange(0, (CL3, ip(103)), (WEB, ip(1)));
    // A VRRP backup takes the virtual router address over with gratuitous replies.
    for i in 0..20 {
        lab.frame(
            1000 + i * 100,
            ethernet_arp(vrrp, BCAST, ArpOp::Reply, (vrrp, ip(1)), (BCAST, ip(1))),
        );
    }
    assert!(lab.alerts.is_empty(), "{:?}", lab.alerts);
    assert_eq!(lab.metrics.snapshot().arp_allowed, 20);
    // An HA pair sharing an address, allow-listed by IP.
    let mut rules = ArpRules::default();
    rules.allow_ips.push(ip(5));
    let mut lab = Lab::new(rules);
    lab.exchange(0, (CL3, ip(103)), (WEB, ip(5)));
    lab.exchange(10_000, (CL3, ip(103)), (ATK, ip(5)));
    assert!(lab.alerts.is_empty(), "{:?}", lab.alerts);
}

#[test]
fn one_mac_claiming_many_addresses() {
    let mut lab = Lab::new(ArpRules::default());
    lab.exchange(0, (ATK, ip(66)), (WEB, ip(10)));
    for (i, last) in [150u8, 151, 152].into_iter().enumerate() {
        // Announcements of addresses nobody held: no flip, but a fourth claim.
        lab.frame(
            10_000 + i as u64 * 20_000,
            ethernet_arp(
                ATK,
                BCAST,
                ArpOp::Request,
                (ATK, ip(last)),
                ([0; 6], ip(last)),
            ),
        );
    }
    let subjects = lab.subjects();
    assert_eq!(subjects.len(), 1, "{:#?}", lab.alerts);
    assert_eq!(subjects[0].rule, "many_ips");
    assert_eq!(
        subjects[0].impersonated,
        ["10.77.0.66", "10.77.0.150", "10.77.0.151", "10.77.0.152"]
    );
    assert_eq!(lab.alerts[0].score, 4.0);
}

#[test]
fn disabled_rules_raise_nothing() {
    let rules = ArpRules {
        enabled: false,
        ..ArpRules::default()
    };
    let mut lab = Lab::new(rules);
    benign(&mut lab, 0, 2);
    arpspoof(&mut lab, 120_000, 20);
    assert!(lab.alerts.is_empty());
}
