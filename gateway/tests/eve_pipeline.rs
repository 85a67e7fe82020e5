//! The EVE pipeline on real Suricata output (tests/data/eve/): filters, event-time windows,
//! alert forwarding and flow records, fed by the EVE source's parser.

use std::time::Duration;

use netwarden::pipeline::eve::alerts::{EveAlerter, SURICATA_DETECTOR};
use netwarden::pipeline::eve::config::{validate_rules, EveRules, Net, RawFilter, WindowSpec};
use netwarden::pipeline::eve::filter::passes;
use netwarden::pipeline::eve::{EveOutput, EveStage, Windows};
use netwarden::records::eve::{AlertInfo, Detail, EveEvent};
use netwarden::records::Alert;
use netwarden::sources::eve::parse_line;

// ---- alerts ----
fn alerts_of(name: &str) -> Vec<(EveEvent, AlertInfo)> {
    let text = std::fs::read_to_string(format!(
        "{}/../tests/data/eve/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("sample");
    text.lines()
        .filter_map(|l| parse_line(l.as_bytes(), 1 << 20).ok())
        .filter_map(|e| match e.detail.clone() {
            Detail::Alert(a) => Some((e, a)),
            _ => None,
        })
        .collect()
}

#[test]
fn suricata_7_repeats_fold_per_flow_and_ids_are_stable() {
    let events = alerts_of("suricata-7.0.0-beta1.json");
    let mut a = EveAlerter::new("s", "d", "suricata:eve.json", 60_000);
    let raised: Vec<Alert> = events
        .iter()
        .filter_map(|(e, i)| a.on_event(e, i, 1_800_000_000_000))
        .collect();
    let flows: std::collections::HashSet<_> = events.iter().map(|(e, _)| e.flow_id).collect();
    assert_eq!(
        raised.len(),
        flows.len(),
        "one alert per flow and signature"
    );
    assert!(raised.len() < events.len());
    let first = &raised[0];
    assert_eq!(first.severity, "low");
    assert_eq!(first.detector, SURICATA_DETECTOR);
    let rule = first.rule.as_ref().expect("rule");
    assert_eq!(rule.signature, "SURICATA Diameter empty message");
    // Read again (a restart before the position was saved): same ids.
    let mut b = EveAlerter::new("s", "d", "suricata:eve.json", 60_000);
    let again: Vec<Alert> = events
        .iter()
        .filter_map(|(e, i)| b.on_event(e, i, 1_800_000_000_000))
        .collect();
    assert_eq!(
        raised.iter().map(|a| &a.id).collect::<Vec<_>>(),
        again.iter().map(|a| &a.id).collect::<Vec<_>>()
    );
    assert_eq!(
        uuid::Uuid::parse_str(&first.id)
            .expect("uuid")
            .get_version_num(),
        8
    );
}

#[test]
fn severity_and_community_id() {
    let events = alerts_of("handmade.json");
    let (e, i) = &events[0];
    let alert = EveAlerter::new("s", "d", "x", 60_000)
        .on_event(e, i, 1_800_000_000_000)
        .expect("alert");
    assert_eq!(alert.severity, "medium");
    let rule = alert.rule.expect("rule");
    assert_eq!(rule.category, "Attempted Information Leak");
    assert_eq!(
        rule.community_id.as_deref(),
        Some("1:LQU9qZlK+B5F3KDmev6m5PMibrg=")
    );
    let f = alert.subject.flow().expect("flow");
    assert_eq!((f.dst_port, f.protocol), (22, 6));
}

// ---- filter ----
fn ev(s: &str) -> EveEvent {
    parse_line(s.as_bytes(), 1 << 20).expect("event")
}

fn rules(filters: &[(&str, &str, &str, &[&str])]) -> EveRules {
    let raw: Vec<RawFilter> = filters
        .iter()
        .map(|(t, a, f, v)| RawFilter {
            event_type: t.to_string(),
            action: a.to_string(),
            field: f.to_string(),
            values: v.iter().map(|s| s.to_string()).collect(),
        })
        .collect();
    let mut problems = Vec::new();
    let r = validate_rules(&[], &[], &raw, &[], None, None, None, &mut |k, m| {
        problems.push(format!("{k}: {m}"))
    });
    assert!(problems.is_empty(), "{problems:?}");
    r
}

const DNS: &str = r#"{"timestamp":"2026-03-02T10:00:00Z","event_type":"dns","src_ip":"10.0.0.5","dest_ip":"10.0.0.53","dns":{"type":"query","id":1,"rrname":"updates.example.com","rrtype":"A"}}"#;
const FLOW: &str = r#"{"timestamp":"2026-03-02T10:00:00Z","event_type":"flow","src_ip":"10.0.0.5","dest_ip":"10.0.0.53","proto":"UDP","flow":{"pkts_toserver":1}}"#;

#[test]
fn drop_by_suffix_keep_by_value_and_excluded_sources() {
    let r = rules(&[("dns", "drop", "dns.rrname", &["*.example.com"])]);
    assert!(!passes(&r, &ev(DNS)));
    assert!(passes(&r, &ev(FLOW)), "the rule is for dns only");
    let r = rules(&[("dns", "keep", "dns.rrtype", &["AAAA"])]);
    assert!(!passes(&r, &ev(DNS)));
    let r = rules(&[("dns", "keep", "dns.rrtype", &["A", "AAAA"])]);
    assert!(passes(&r, &ev(DNS)));
    let mut r = rules(&[]);
    r.exclude_sources
        .push(Net::parse("10.0.0.0/24").expect("net"));
    assert!(!passes(&r, &ev(FLOW)));
    let mut r = rules(&[]);
    r.event_types = vec!["dns".into()];
    assert!(passes(&r, &ev(DNS)) && !passes(&r, &ev(FLOW)));
}

// ---- mod ----
#[test]
fn suricata_8_flow_becomes_two_records() {
    let text = std::fs::read_to_string(format!(
        "{}/../tests/data/eve/suricata-8.0.7.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("sample");
    let mut stage = EveStage::new(EveRules::default(), "s", "d", "x");
    let mut out = EveOutput::default();
    for l in text.lines() {
        stage.process(
            &parse_line(l.as_bytes(), 1 << 20).expect("event"),
            1_800_000_000_000,
            &mut out,
        );
    }
    assert_eq!(out.alerts.len(), 2);
    assert_eq!(out.flow_records.len(), 2);
    let (fwd, rev) = (&out.flow_records[0], &out.flow_records[1]);
    assert_eq!((fwd.dst_port, fwd.packets, fwd.bytes), (8000, 6, 461));
    assert_eq!((rev.src_port, rev.packets, rev.bytes), (8000, 6, 1380));
    assert_eq!(fwd.tcp_flags, 0x1b);
    assert_eq!(fwd.protocol, 6);
}

// ---- window ----
fn dhcp_spec() -> WindowSpec {
    WindowSpec {
        name: "dhcp".into(),
        event_type: "dhcp".into(),
        key: "dhcp.id".into(),
        window: Duration::from_secs(1800),
        watermark: Duration::from_secs(300),
        max: vec![
            "src_ip".into(),
            "dhcp.hostname".into(),
            "dhcp.client_ip".into(),
            "dhcp.requested_ip".into(),
        ],
        publish: false,
    }
}

#[test]
fn handmade_dhcp_per_transaction_and_30_min_window() {
    let text = std::fs::read_to_string(format!(
        "{}/../tests/data/eve/handmade.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("sample");
    let mut w = Windows::new(dhcp_spec());
    let (mut out, mut late) = (Vec::new(), 0);
    for line in text.lines() {
        let e = parse_line(line.as_bytes(), 1 << 20).expect("event");
        if !w.observe(&e, &mut out) {
            late += 1;
        }
    }
    // Events reach 10:42; the watermark (10:37) closed the 10:00-10:30 window, so the
    // retransmission of transaction 1 (10:02:14) and the 10:03 request, written after
    // them, are late.
    assert_eq!(late, 2);
    assert_eq!(out.len(), 3, "{out:#?}");
    let first = out
        .iter()
        .find(|r| r.key == 0x5a1c01.to_string())
        .expect("tx 1");
    assert_eq!(first.count, 2, "request and ack");
    assert_eq!(first.window_start, "2026-03-02T10:00:00.000Z");
    assert_eq!(
        first.max["src_ip"], "192.168.10.1",
        "the server's reply is the max"
    );
    assert_eq!(first.max["dhcp.hostname"], "ws-accounts-01");
    assert_eq!(first.max["dhcp.requested_ip"], "192.168.10.50");
    assert_eq!(first.last_ts, "2026-03-02T10:02:12.200Z");
    assert!(first.complete);
    let mut rest = Vec::new();
    w.flush(&mut rest);
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].key, 0x5a1c04.to_string());
    assert!(!rest[0].complete);
}
