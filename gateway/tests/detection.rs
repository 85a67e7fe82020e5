//! The built-in flow model on the real exporter fixtures (tests/data/netflow): the scan in each
//! scan-mixed capture raises a high alert naming the scanner, whichever exporter and NetFlow
//! version carried it, and outranks anything in the benign captures.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use netwarden::metrics::Metrics;
use netwarden::models::Bundle;
use netwarden::pipeline::FlowPipeline;
use netwarden::records::Alert;
use netwarden::runtime::flow::FlowStage;
use netwarden::sources::netflow::export_pcap::read_datagrams;
use netwarden::sources::netflow::NetflowDecoder;
use rstest::rstest;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data/netflow")
        .join(name)
}

fn replay(name: &str) -> (Vec<Alert>, Arc<Metrics>) {
    let (datagrams, _) = read_datagrams(&fixture(name), None).expect("fixture");
    let metrics = Arc::new(Metrics::default());
    let bundle = Bundle::builtin(512).expect("built-in bundle");
    let pipeline = FlowPipeline::new(bundle, "t", "t", Duration::from_secs(60), metrics.clone())
        .with_clock(|| 0);
    let mut p = FlowStage::new(NetflowDecoder::new(16), pipeline);
    let mut alerts = Vec::new();
    for d in &datagrams {
        p.ingest_datagram(d.src, &d.payload, &mut |a| alerts.push(a));
    }
    p.flush(&mut |a| alerts.push(a));
    (alerts, metrics)
}

#[rstest]
#[case("softflowd-v5-scan-mixed.pcap")]
#[case("softflowd-v9-scan-mixed.pcap")]
#[case("softflowd-ipfix-scan-mixed.pcap")]
#[case("pmacct-v9-scan-mixed.pcap")]
#[case("pmacct-ipfix-scan-mixed.pcap")]
fn scan_raises_a_high_alert_for_the_scanner(#[case] name: &str) {
    let (alerts, m) = replay(name);
    let scanner = alerts
        .iter()
        .find(|a| {
            a.subject.flow().is_some_and(|f| f.src_addr == "10.213.0.1") && a.severity == "high"
        })
        .unwrap_or_else(|| panic!("{name}: no high alert from the scanner in {alerts:#?}"));
    let flow = scanner.subject.flow().expect("a flow alert");
    assert_eq!(flow.dst_addr, "10.213.0.2");
    assert!(scanner.score > 2.0 * scanner.threshold);
    // Incidents: a thousand-port scan is one incident (opened, then updated at 4, 16, 64, 256
    // and 1,024 flows), not a thousand alerts, and it names the scanner.
    let inc = scanner.incident.as_ref().expect("incident");
    let about_scan: Vec<_> = alerts
        .iter()
        .filter_map(|a| a.incident.as_ref().filter(|i| i.id == inc.id))
        .collect();
    assert!(about_scan.len() <= 8, "{name}: {about_scan:#?}");
    let last = about_scan.last().expect("alerts");
    assert_eq!(
        (last.initiator.as_str(), last.pattern.as_str()),
        ("10.213.0.1", "port_scan")
    );
    assert!(last.ports_distinct >= 900, "{name}: {last:?}");
    let opened = alerts
        .iter()
        .filter(|a| a.incident.as_ref().is_some_and(|i| i.update == 0))
        .count();
    assert!(opened <= 10, "{name}: {opened} incidents");
    let s = m.snapshot();
    assert!(s.flows_anomalous > 1000, "{name}: {s:?}");
    assert_eq!(s.inference_errors, 0);
}

/// With the seed's rule (threshold = 95th percentile of the training error, high above 2x)
/// about 5% of benign flows exceed the threshold and the heaviest transfers reach ~2.4x, so
/// benign traffic does raise a few alerts. What must hold: they stay a handful (de-duplicated
/// per host), and the scan outranks every benign alert by a wide margin.
#[rstest]
#[case("softflowd-v5")]
#[case("softflowd-v9")]
#[case("softflowd-ipfix")]
#[case("pmacct-v9")]
#[case("pmacct-ipfix")]
fn scan_outranks_benign_traffic_and_benign_noise_stays_small(#[case] exporter: &str) {
    let (benign, m) = replay(&format!("{exporter}-benign.pcap"));
    let s = m.snapshot();
    eprintln!(
        "{exporter} benign: {} of {} flows over threshold, {} alerts",
        s.flows_anomalous,
        s.flows_scored,
        benign.len()
    );
    assert!(
        s.flows_anomalous * 100 <= s.flows_scored * 8,
        "{exporter}: {s:?}"
    );
    let opened = benign
        .iter()
        .filter(|a| a.incident.as_ref().is_some_and(|i| i.update == 0))
        .count();
    assert!(opened <= 6, "{exporter}: {benign:#?}");
    let worst_benign = benign.iter().map(|a| a.score).fold(0.0f32, f32::max);
    let (scan, _) = replay(&format!("{exporter}-scan-mixed.pcap"));
    let scanner = scan
        .iter()
        .filter(|a| a.subject.flow().is_some_and(|f| f.src_addr == "10.213.0.1"))
        .map(|a| a.score)
        .fold(0.0f32, f32::max);
    assert!(
        scanner > 2.0 * worst_benign,
        "{exporter}: scan {scanner} vs worst benign {worst_benign}"
    );
}
