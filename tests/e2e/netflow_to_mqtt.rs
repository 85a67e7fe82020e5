//! One packet's whole path against real peers: exporter captures (softflowd v5/v9/IPFIX and
//! pmacct nfprobe v9/IPFIX) replayed over UDP into `netwarden run`, alerts read back from a real
//! mosquitto with `mosquitto_sub`, record counts compared with nfdump's nfcapd.

use std::net::UdpSocket;
use std::process::Command;
use std::time::Duration;

use netwarden_e2e::{
    capture_payloads, fixture, netwarden_bin, nfcapd_records, replay, wait_for, Gateway, Mosquitto,
    Subscriber,
};

const SCAN_FIXTURES: [&str; 5] = [
    "netflow/softflowd-v5-scan-mixed.pcap",
    "netflow/softflowd-v9-scan-mixed.pcap",
    "netflow/softflowd-ipfix-scan-mixed.pcap",
    "netflow/pmacct-v9-scan-mixed.pcap",
    "netflow/pmacct-ipfix-scan-mixed.pcap",
];

/// The scanner in the fixtures' namespaces (tests/data/README.md).
const SCANNER: &str = "10.213.0.1";
const TARGET: &str = "10.213.0.2";

#[test]
fn scan_from_every_exporter_raises_an_mqtt_alert_and_counts_match_nfcapd() -> anyhow::Result<()> {
    let broker = Mosquitto::start()?;
    let sub = Subscriber::start(broker.port, "netwarden/e2e/gw/#")?;
    let mqtt = format!("mqtt://127.0.0.1:{}", broker.port);
    let gw = Gateway::start(&["--mqtt", &mqtt, "--site", "e2e", "--device", "gw"])?;

    // Retained status says online.
    wait_for(Duration::from_secs(10), "retained online status", || {
        sub.messages()
            .into_iter()
            .find(|(t, p)| t == "netwarden/e2e/gw/status" && p.contains("\"online\""))
    })?;

    // Each fixture from its own socket: five exporters at once, each with its own templates.
    let mut expected = Vec::new();
    let mut total = 0;
    for f in SCAN_FIXTURES {
        let payloads = capture_payloads(&fixture(f))?;
        let reference = nfcapd_records(&payloads)?;
        let sock = UdpSocket::bind("127.0.0.1:0")?;
        replay(&payloads, &sock, gw.netflow, 8, Duration::from_millis(2))?;
        expected.push((f, sock.local_addr()?.to_string(), reference));
        total += reference;
    }
    let stats = gw.wait_records(total, Duration::from_secs(30))?;
    for (f, exporter, reference) in &expected {
        let ex = &stats["exporters"][exporter];
        assert_eq!(
            ex["records"].as_u64(),
            Some(*reference),
            "{f}: netwarden vs nfcapd records ({ex})"
        );
        assert_eq!(ex["decode_errors_malformed"].as_u64(), Some(0), "{f}: {ex}");
        assert_eq!(ex["template_misses"].as_u64(), Some(0), "{f}: {ex}");
        assert_eq!(ex["sequence_missing"].as_u64(), Some(0), "{f}: {ex}");
    }
    assert_eq!(
        stats["metrics"]["netflow_datagrams_dropped_queue_full"].as_u64(),
        Some(0)
    );

    // The scan raised an alert with every documented field, delivered over MQTT QoS 1.
    let (topic, payload) = wait_for(Duration::from_secs(15), "a scan alert on MQTT", || {
        sub.messages()
            .into_iter()
            .find(|(t, p)| t.starts_with("netwarden/e2e/gw/alerts/") && p.contains(SCANNER))
    })
    .map_err(|e| anyhow::anyhow!("{e}\nlog:\n{}", gw.log()))?;
    let alert: serde_json::Value = serde_json::from_str(&payload)?;
    let severity = alert["severity"].as_str().unwrap_or_default();
    assert_eq!(topic, format!("netwarden/e2e/gw/alerts/{severity}"));
    assert!(["high", "medium"].contains(&severity), "{alert}");
    assert_eq!(alert["site"], "e2e");
    assert_eq!(alert["device"], "gw");
    assert_eq!(alert["detector"], "flow_ae");
    assert!(
        alert["id"].as_str().is_some_and(|id| id.len() == 36),
        "{alert}"
    );
    assert!(
        alert["ts_ms"].as_u64().is_some() && alert["ts"].as_str().is_some(),
        "{alert}"
    );
    assert!(
        alert["model"]["name"].as_str().is_some() && alert["model"]["version"].as_str().is_some(),
        "{alert}"
    );
    let (score, threshold) = (
        alert["score"].as_f64().unwrap_or(0.0),
        alert["threshold"].as_f64().unwrap_or(f64::NAN),
    );
    assert!(score > threshold && threshold > 0.0, "{alert}");
    if severity == "high" {
        assert!(score > 2.0 * threshold, "{alert}");
    }
    let subject = &alert["subject"];
    assert_eq!(subject["kind"], "flow", "{alert}");
    assert!(
        subject["exporter"]
            .as_str()
            .is_some_and(|e| e.starts_with("127.0.0.1:")),
        "{alert}"
    );
    let pair = [
        subject["src_addr"].as_str().unwrap_or(""),
        subject["dst_addr"].as_str().unwrap_or(""),
    ];
    assert!(pair.contains(&SCANNER) && pair.contains(&TARGET), "{alert}");
    assert_eq!(subject["protocol"], 6, "{alert}");
    let top = alert["top_features"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        !top.is_empty()
            && top
                .iter()
                .all(|c| c["feature"].is_string() && c["share"].is_number()),
        "{alert}"
    );

    // Stored first, then published: the outbox drains after the PUBACK and the ack hold
    // (mqtt.ack_hold_secs, 5 s), and the history lists it.
    wait_for(Duration::from_secs(20), "the outbox to drain", || {
        (gw.stats().ok()?["outbox_len"].as_u64()? == 0).then_some(())
    })?;
    let mut gw = gw;
    assert!(
        gw.proc.terminate(Duration::from_secs(10)),
        "netwarden did not stop on SIGTERM"
    );
    wait_for(Duration::from_secs(5), "retained offline status", || {
        sub.messages()
            .into_iter()
            .find(|(t, p)| t == "netwarden/e2e/gw/status" && p.contains("\"offline\""))
    })?;
    let listed = Command::new(netwarden_bin()?)
        .arg("alerts")
        .arg("--data-dir")
        .arg(&gw.data_dir)
        .arg("--json")
        .output()?;
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed.contains(alert["id"].as_str().unwrap_or("?")),
        "netwarden alerts does not list {}",
        alert["id"]
    );
    Ok(())
}

#[test]
fn broken_exporters_are_counted_and_do_not_disturb_a_healthy_one() -> anyhow::Result<()> {
    let gw = Gateway::start(&[])?;
    let good = capture_payloads(&fixture("netflow/softflowd-v9-benign.pcap"))?;
    let ipfix = capture_payloads(&fixture("netflow/softflowd-ipfix-benign.pcap"))?;
    let bad = UdpSocket::bind("127.0.0.1:0")?;
    let orphan = UdpSocket::bind("127.0.0.1:0")?;
    let healthy = UdpSocket::bind("127.0.0.1:0")?;
    // Interleave: truncated copies and garbage from one exporter, IPFIX data without its
    // templates from another, the complete export from the third.
    for (i, p) in good.iter().enumerate() {
        bad.send_to(&p[..p.len() / 2], gw.netflow)?;
        bad.send_to(b"\x00\x63 this is not netflow at all", gw.netflow)?;
        if let Some(d) = ipfix.get(i + 1) {
            orphan.send_to(d, gw.netflow)?;
        }
        healthy.send_to(p, gw.netflow)?;
        std::thread::sleep(Duration::from_millis(2));
    }
    let healthy_records = nfcapd_records(&good)?;
    let stats = wait_for(
        Duration::from_secs(20),
        "the healthy exporter's records",
        || {
            let s = gw.stats().ok()?;
            let datagrams = |u: &UdpSocket| {
                s["exporters"][u.local_addr().ok()?.to_string()]["datagrams"].as_u64()
            };
            // Flow shards publish their counters each second on their own: wait until the
            // broken exporters' datagrams are all counted too, wherever they landed.
            (s["exporters"][healthy.local_addr().ok()?.to_string()]["records"].as_u64()?
                >= healthy_records
                && datagrams(&bad)? >= 2 * good.len() as u64
                && datagrams(&orphan)? >= good.len().min(ipfix.len().saturating_sub(1)) as u64)
                .then_some(s)
        },
    )?;
    let ex = |s: &UdpSocket| {
        stats["exporters"][s.local_addr().map(|a| a.to_string()).unwrap_or_default()].clone()
    };
    let (b, o, h) = (ex(&bad), ex(&orphan), ex(&healthy));
    assert_eq!(h["records"].as_u64(), Some(healthy_records), "healthy: {h}");
    assert_eq!(
        h["decode_errors_truncated"].as_u64(),
        Some(0),
        "healthy: {h}"
    );
    assert_eq!(
        h["decode_errors_unsupported_version"].as_u64(),
        Some(0),
        "healthy: {h}"
    );
    let bad_errors = b["decode_errors_truncated"].as_u64().unwrap_or(0)
        + b["decode_errors_malformed"].as_u64().unwrap_or(0)
        + b["decode_errors_unsupported_version"].as_u64().unwrap_or(0);
    assert!(
        b["decode_errors_unsupported_version"].as_u64() >= Some(good.len() as u64),
        "bad: {b}"
    );
    assert!(bad_errors >= good.len() as u64, "bad: {b}");
    assert!(o["template_misses"].as_u64() > Some(0), "orphan: {o}");
    let mut gw = gw;
    assert!(gw.proc.is_running(), "netwarden died:\n{}", gw.log());
    Ok(())
}
