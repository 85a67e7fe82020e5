//! Exporter health against real peers: softflowd's v9 exports replayed into `netwarden run`,
//! alerts read back from a real mosquitto. One exporter goes silent and comes back; another
//! loses every fourth datagram, then sends cleanly. Each raises an `exporter_health` incident
//! and its recovery is an update of the same incident (docs/mqtt.md "Exporter alerts").

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use netwarden_e2e::{capture_payloads, fixture, wait_for, Gateway, Mosquitto, Subscriber};
use serde_json::Value;

/// Sends `payloads` paced (two datagrams every 100 ms), leaving out those `drop` picks.
fn send(
    payloads: &[Vec<u8>],
    sock: &UdpSocket,
    to: SocketAddr,
    drop: impl Fn(usize) -> bool,
) -> anyhow::Result<()> {
    for (i, p) in payloads.iter().enumerate() {
        if !drop(i) {
            sock.send_to(p, to)?;
        }
        if i % 2 == 1 {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    Ok(())
}

/// Exporter alerts about `exporter` with `condition`, in arrival order.
fn alerts(sub: &Subscriber, exporter: &str, condition: &str) -> Vec<Value> {
    sub.messages()
        .into_iter()
        .filter(|(t, _)| t.contains("/alerts/"))
        .filter_map(|(_, p)| serde_json::from_str::<Value>(&p).ok())
        .filter(|a| {
            a["detector"] == "exporter_health"
                && a["subject"]["exporter"] == exporter
                && a["subject"]["condition"] == condition
        })
        .collect()
}

/// Waits for the `n`th alert (1-based) about `exporter` and `condition`.
fn nth(sub: &Subscriber, exporter: &str, condition: &str, n: usize) -> anyhow::Result<Value> {
    wait_for(
        Duration::from_secs(10),
        &format!("{condition} alert {n} for {exporter}"),
        || alerts(sub, exporter, condition).get(n - 1).cloned(),
    )
}

fn check_pair(open: &Value, recovered: &Value, condition: &str, severity: &str) {
    assert_eq!(open["subject"]["kind"], "exporter", "{open}");
    assert_eq!(open["subject"]["state"], "open", "{open}");
    assert_eq!(open["severity"], severity, "{open}");
    assert_eq!(open["incident"]["update"], 0, "{open}");
    assert_eq!(open["incident"]["id"], open["id"], "{open}");
    assert_eq!(
        open["incident"]["pattern"],
        format!("exporter_{condition}"),
        "{open}"
    );
    assert_eq!(recovered["subject"]["state"], "recovered", "{recovered}");
    assert_eq!(recovered["incident"]["id"], open["id"], "{recovered}");
    assert_eq!(recovered["incident"]["update"], 1, "{recovered}");
    assert_ne!(recovered["id"], open["id"], "{recovered}");
}

#[test]
fn silent_and_lossy_exporters_raise_incidents_that_clear_on_recovery() -> anyhow::Result<()> {
    let broker = Mosquitto::start()?;
    let sub = Subscriber::start(broker.port, "netwarden/e2e/gw/#")?;
    let mqtt = format!("mqtt://127.0.0.1:{}", broker.port);
    let dir = netwarden_e2e::tempdir::Dir::new("exporter-health")?;
    let config = dir.path().join("netwarden.toml");
    std::fs::write(
        &config,
        "[netflow]\nexporter_silence_secs = 2\nexporter_loss_ratio = 0.05\nexporter_loss_window_secs = 2\n",
    )?;
    let config = config.to_string_lossy().to_string();
    let gw = Gateway::start(&[
        "--config", &config, "--mqtt", &mqtt, "--site", "e2e", "--device", "gw",
    ])?;
    let quiet = capture_payloads(&fixture("netflow/softflowd-v9-benign.pcap"))?;
    let busy = capture_payloads(&fixture("netflow/softflowd-v9-scan-mixed.pcap"))?;
    let s = UdpSocket::bind("127.0.0.1:0")?;
    let l = UdpSocket::bind("127.0.0.1:0")?;
    let (s_name, l_name) = (s.local_addr()?.to_string(), l.local_addr()?.to_string());

    // `s` sends once and stops; `l` loses every fourth datagram for about 4 s meanwhile.
    for p in &quiet {
        s.send_to(p, gw.netflow)?;
    }
    send(&busy, &l, gw.netflow, |i| i % 4 == 3)?;
    let silent = nth(&sub, &s_name, "silent", 1)?;
    let lossy = nth(&sub, &l_name, "sequence_loss", 1)?;
    let ratio = lossy["subject"]["loss_ratio"].as_f64().unwrap_or(0.0);
    assert!((0.15..=0.35).contains(&ratio), "{lossy}");
    assert!(
        lossy["subject"]["expected"].as_u64().unwrap_or(0) >= 20,
        "{lossy}"
    );

    // Both recover: `s` sends again, `l` sends its capture again without loss.
    for p in &quiet {
        s.send_to(p, gw.netflow)?;
    }
    send(&busy, &l, gw.netflow, |_| false)?;
    let back = nth(&sub, &s_name, "silent", 2)?;
    check_pair(&silent, &back, "silent", "high");
    assert!(
        back["subject"]["silent_ms"].as_u64().unwrap_or(0) >= 2000,
        "{back}"
    );
    let clean = nth(&sub, &l_name, "sequence_loss", 2)?;
    check_pair(&lossy, &clean, "sequence_loss", "medium");

    // The counters the watch read are the ones stats.json shows.
    let stats = gw.stats()?;
    assert!(
        stats["exporters"][&l_name]["sequence_missing"]
            .as_u64()
            .unwrap_or(0)
            >= 15,
        "{stats}"
    );
    Ok(())
}
