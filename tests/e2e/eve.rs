//! Suricata EVE end to end: the daemon follows an `eve.json` that real Suricata engines wrote
//! (tests/data/eve/, versions 6.0.10, 7.0.0-beta1 and 8.0.7, plus the hand-made DHCP records)
//! while the test rotates it by rename and by copytruncate, stops and restarts the daemon and
//! rotates the file while it is down; every line must be read exactly once. Suricata's alerts
//! arrive on a real mosquitto on the alert topics, the DHCP window results on theirs; the unix
//! socket inputs (stream and dgram) and the de-duplication with netwarden's own flow alert are
//! checked too.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::Context;
use netwarden_e2e::{
    fixture, free_udp_port, netwarden_bin, tempdir, v5_alert_datagram, wait_for, Mosquitto, Proc,
    Subscriber,
};

const SAMPLES: &[&str] = &[
    "eve/suricata-6.0.10.json",
    "eve/suricata-7.0.0-beta1.json",
    "eve/suricata-8.0.7.json",
    "eve/suricata-6-ssh-tls.json",
    "eve/malformed.json",
    "eve/handmade.json",
];

fn sample_lines() -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    for s in SAMPLES {
        let text = std::fs::read_to_string(fixture(s))?;
        out.extend(text.lines().map(str::to_string));
    }
    Ok(out)
}

fn append(path: &Path, lines: &[String]) -> anyhow::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    for l in lines {
        f.write_all(l.as_bytes())?;
        f.write_all(b"\n")?;
    }
    Ok(())
}

struct Daemon {
    proc: Proc,
    data: PathBuf,
}

fn start(dir: &Path, config: &Path, mqtt_port: u16, round: u32) -> anyhow::Result<Daemon> {
    let data = dir.join("data");
    let _ = std::fs::remove_file(data.join("stats.json"));
    let log = std::fs::File::create(dir.join(format!("netwarden-{round}.log")))?;
    let proc = Proc::spawn(
        "netwarden",
        Command::new(netwarden_bin()?)
            .arg("run")
            .arg("--config")
            .arg(config)
            .args([
                "--netflow-listen",
                &format!("127.0.0.1:{}", free_udp_port()?),
            ])
            .args(["--http-listen", "off"])
            // These tests expect flow alerts at once, not after a learning period.
            .args(["--learn", "off"])
            .args(["--mqtt", &format!("mqtt://127.0.0.1:{mqtt_port}")])
            .arg("--data-dir")
            .arg(&data)
            .env("NETWARDEN_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log),
    )?;
    let d = Daemon { proc, data };
    wait_for(Duration::from_secs(30), "netwarden to start", || {
        d.metric("eve_lines")
    })?;
    Ok(d)
}

impl Daemon {
    fn metric(&self, name: &str) -> Option<u64> {
        let text = std::fs::read_to_string(self.data.join("stats.json")).ok()?;
        let v: serde_json::Value = serde_json::from_str(&text).ok()?;
        v["metrics"][name].as_u64()
    }

    fn wait_lines(&self, n: u64, dir: &Path) -> anyhow::Result<()> {
        wait_for(
            Duration::from_secs(30),
            &format!("{n} EVE lines read"),
            || (self.metric("eve_lines")? >= n).then_some(()),
        )
        .with_context(|| log_of(dir))?;
        std::thread::sleep(Duration::from_millis(300));
        let got = self.metric("eve_lines").unwrap_or(0);
        anyhow::ensure!(
            got == n,
            "read {got} lines, {n} written (twice?)\n{}",
            log_of(dir)
        );
        Ok(())
    }

    /// SIGTERM; returns the final counters.
    fn stop(mut self) -> anyhow::Result<serde_json::Value> {
        anyhow::ensure!(
            self.proc.terminate(Duration::from_secs(15)),
            "no clean exit"
        );
        let text = std::fs::read_to_string(self.data.join("stats.json"))?;
        Ok(serde_json::from_str::<serde_json::Value>(&text)?["metrics"].clone())
    }
}

fn log_of(dir: &Path) -> String {
    let mut s = String::new();
    for r in 0..3 {
        if let Ok(t) = std::fs::read_to_string(dir.join(format!("netwarden-{r}.log"))) {
            s.push_str(&t);
        }
    }
    s
}

#[test]
fn real_suricata_output_followed_through_rotations_and_a_restart() -> anyhow::Result<()> {
    let broker = Mosquitto::start()?;
    let sub = Subscriber::start(broker.port, "netwarden/#")?;
    let dir = tempdir::Dir::new("eve")?;
    let eve = dir.path().join("eve.json");
    let config = dir.path().join("netwarden.toml");
    std::fs::write(
        &config,
        format!(
            r#"site = "branch1"
device = "r1"
[eve]
files = [{{ path = "{}" }}]
poll_interval_ms = 50
[[eve.filters]]
event_type = "dns"
action = "drop"
field = "dns.rrname"
values = ["*.in-addr.arpa"]
[[eve.windows]]
name = "dhcp"
event_type = "dhcp"
key = "dhcp.id"
max = ["src_ip", "dhcp.hostname", "dhcp.client_ip", "dhcp.requested_ip"]
publish = true
"#,
            eve.display()
        ),
    )?;
    let lines = sample_lines()?;
    let n = lines.len();
    let cut = |k: usize| k * n / 8;
    // Written before the daemon starts: read from the start.
    append(&eve, &lines[..cut(1)])?;
    let d = start(dir.path(), &config, broker.port, 0)?;
    d.wait_lines(cut(1) as u64, dir.path())?;
    // Rename rotation while writing: the old file still gets lines after the rename (Suricata
    // reopens only on its signal), the new one starts.
    append(&eve, &lines[cut(1)..cut(2)])?;
    std::fs::rename(&eve, dir.path().join("eve.json.1"))?;
    append(&dir.path().join("eve.json.1"), &lines[cut(2)..cut(3)])?;
    append(&eve, &lines[cut(3)..cut(4)])?;
    d.wait_lines(cut(4) as u64, dir.path())?;
    // copytruncate (what is unread at the copy is only in the copy, so the test lets the
    // daemon catch up first: copytruncate's own race, not ours).
    std::fs::copy(&eve, dir.path().join("eve.json.2"))?;
    std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&eve)?;
    append(&eve, &lines[cut(4)..cut(5)])?;
    d.wait_lines(cut(5) as u64, dir.path())?;
    let first = d.stop()?;
    // While stopped: lines appended, then a rename rotation and a new file.
    append(&eve, &lines[cut(5)..cut(6)])?;
    std::fs::rename(&eve, dir.path().join("eve.json.3"))?;
    append(&eve, &lines[cut(6)..cut(7)])?;
    let d = start(dir.path(), &config, broker.port, 1)?;
    append(&eve, &lines[cut(7)..])?;
    let before = first["eve_lines"].as_u64().unwrap_or(0);
    d.wait_lines(n as u64 - before, dir.path())?;
    std::thread::sleep(Duration::from_secs(2)); // let the MQTT task publish
    let second = d.stop()?;
    let total = |k: &str| first[k].as_u64().unwrap_or(0) + second[k].as_u64().unwrap_or(0);
    assert_eq!(total("eve_lines"), n as u64, "every line read exactly once");
    // The two torn writes of 6.0.10 and the malformed file's lines, per reason.
    assert_eq!(total("eve_skipped_not_json"), 4);
    assert_eq!(
        total("eve_skipped_unknown_type"),
        3,
        "2 diameter + 1 made up"
    );
    assert_eq!(total("eve_skipped_not_object"), 1);
    assert_eq!(total("eve_skipped_missing_field"), 1);
    assert!(total("eve_rotations") >= 3, "{first} {second}");
    assert!(
        total("eve_filtered") >= 1,
        "reverse-DNS lookups dropped by the filter"
    );
    assert_eq!(total("eve_window_late"), 2);
    assert!(total("eve_flow_records") > 0);

    let msgs = sub.messages();
    let alerts: Vec<serde_json::Value> = msgs
        .iter()
        .filter(|(t, _)| t.starts_with("netwarden/branch1/r1/alerts/"))
        .map(|(_, p)| serde_json::from_str(p))
        .collect::<Result<_, _>>()?;
    // One message per stored alert (QoS 1 repeats share an id): netwarden's own on the EVE
    // flows and Suricata's, less those folded into the other detector's alert on the same flow.
    let ids: BTreeSet<&str> = alerts.iter().filter_map(|a| a["id"].as_str()).collect();
    assert_eq!(
        ids.len() as u64,
        total("eve_alerts_forwarded") + total("alerts_raised") - total("eve_alerts_deduplicated")
    );
    assert!(alerts.iter().any(|a| a["detector"] == "suricata"));
    // EVE flow records are one more flow source: netwarden's flow detector scores them.
    let own = alerts
        .iter()
        .filter(|a| a["detector"] == "flow_ae")
        .filter(|a| {
            a["subject"]["exporter"]
                .as_str()
                .is_some_and(|e| e.starts_with("suricata:"))
        })
        .count();
    assert!(own > 0, "no flow_ae alert on an EVE flow");
    let signatures: BTreeSet<&str> = alerts
        .iter()
        .filter_map(|a| a["rule"]["signature"].as_str())
        .collect();
    for s in [
        "SURICATA Diameter empty message",
        "Suspicious Long DNS Query",
        "Suspicious XSS Pattern",
        "ET SCAN Potential SSH Scan",
    ] {
        assert!(signatures.contains(s), "{s} missing from {signatures:?}");
    }
    let scan = alerts
        .iter()
        .find(|a| a["rule"]["signature"] == "ET SCAN Potential SSH Scan")
        .context("scan alert")?;
    assert_eq!(scan["severity"], "medium");
    assert_eq!(scan["detector"], "suricata");
    assert_eq!(
        scan["rule"]["community_id"],
        "1:LQU9qZlK+B5F3KDmev6m5PMibrg="
    );

    let windows: Vec<serde_json::Value> = msgs
        .iter()
        .filter(|(t, _)| t == "netwarden/branch1/r1/eve/windows/dhcp")
        .map(|(_, p)| serde_json::from_str(p))
        .collect::<Result<_, _>>()?;
    let complete: BTreeMap<String, &serde_json::Value> = windows
        .iter()
        .filter(|w| w["complete"] == true)
        .map(|w| (w["key"].as_str().unwrap_or_default().to_string(), w))
        .collect();
    assert_eq!(complete.len(), 3, "{windows:#?}");
    let tx1 = complete
        .get(&0x5a1c01.to_string())
        .context("transaction 1")?;
    assert_eq!(tx1["count"], 2);
    assert_eq!(tx1["max"]["dhcp.hostname"], "ws-accounts-01");
    assert_eq!(tx1["window_start"], "2026-03-02T10:00:00.000Z");
    assert_eq!(tx1["site"], "branch1");
    Ok(())
}

#[test]
fn unix_sockets_and_one_alert_per_flow_across_detectors() -> anyhow::Result<()> {
    let broker = Mosquitto::start()?;
    let sub = Subscriber::start(broker.port, "netwarden/#")?;
    let dir = tempdir::Dir::new("eve-sock")?;
    let (stream, dgram) = (dir.path().join("s.sock"), dir.path().join("d.sock"));
    let eve = dir.path().join("eve.json");
    let config = dir.path().join("netwarden.toml");
    std::fs::write(
        &config,
        format!(
            "site = \"b2\"\ndevice = \"r1\"\n[eve]\nfiles = [{{ path = \"{}\" }}]\npoll_interval_ms = 50\nsockets = [{{ path = \"{}\" }}, {{ path = \"{}\", kind = \"dgram\" }}]\n",
            eve.display(),
            stream.display(),
            dgram.display()
        ),
    )?;
    append(&eve, &[])?;
    let d = start(dir.path(), &config, broker.port, 0)?;
    let v8: Vec<String> = std::fs::read_to_string(fixture("eve/suricata-8.0.7.json"))?
        .lines()
        .map(str::to_string)
        .collect();
    {
        let mut s = std::os::unix::net::UnixStream::connect(&stream)?;
        for l in &v8 {
            s.write_all(l.as_bytes())?;
            s.write_all(b"\n")?;
        }
    }
    let sock = std::os::unix::net::UnixDatagram::unbound()?;
    for l in &v8 {
        sock.send_to(l.as_bytes(), &dgram)?;
    }
    wait_for(Duration::from_secs(20), "16 socket lines", || {
        (d.metric("eve_events")? >= 16).then_some(())
    })
    .with_context(|| log_of(dir.path()))?;

    // netwarden's flow detector alerts on 10.0.0.1:1025 -> 192.168.0.1:81/TCP ...
    let nf = UdpSocket::bind("127.0.0.1:0")?;
    let port = std::fs::read_to_string(d.data.join("stats.json"))?;
    let listen: serde_json::Value = serde_json::from_str(&port)?;
    let to = listen["netflow_listen"]
        .as_str()
        .context("listen")?
        .to_string();
    nf.send_to(&v5_alert_datagram(1, 1, 0), &to)?;
    wait_for(Duration::from_secs(20), "netwarden's own alert", || {
        (d.metric("alerts_raised")? >= 1).then_some(())
    })
    .with_context(|| log_of(dir.path()))?;
    // ... and Suricata on the same flow, seen from the other end: one alert, not two.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?;
    // `YYYY-MM-DDTHH:MM:SS` (UTC), EVE's form without the fraction and zone.
    let ts = netwarden::sources::eve::time::format_ms(now.as_secs() * 1000)[..19].to_string();
    append(
        &eve,
        &[format!(
            r#"{{"timestamp":"{ts}.000000+0000","flow_id":77,"event_type":"alert","src_ip":"192.168.0.1","src_port":81,"dest_ip":"10.0.0.1","dest_port":1025,"proto":"TCP","alert":{{"action":"allowed","gid":1,"signature_id":2100498,"rev":7,"signature":"GPL ATTACK_RESPONSE id check returned root","category":"Potentially Bad Traffic","severity":2}}}}"#
        )],
    )?;
    wait_for(Duration::from_secs(20), "the Suricata alert folded", || {
        (d.metric("eve_alerts_deduplicated")? >= 1).then_some(())
    })
    .with_context(|| log_of(dir.path()))?;
    std::thread::sleep(Duration::from_secs(1));
    let m = d.stop()?;
    assert_eq!(m["eve_skipped_not_json"], 0);
    // The datagram copies repeat the stream's two alerts (same flow and signature): folded.
    assert_eq!(
        m["eve_alerts_forwarded"], 3,
        "2 from the sockets, 1 from the file"
    );
    let msgs = sub.messages();
    let on_flow: Vec<&(String, String)> = msgs
        .iter()
        .filter(|(t, p)| {
            t.contains("/alerts/")
                && (p.contains("\"dst_port\":81") || p.contains("\"src_port\":81"))
        })
        .collect();
    let ids: BTreeSet<String> = on_flow
        .iter()
        .filter_map(|(_, p)| serde_json::from_str::<serde_json::Value>(p).ok())
        .filter_map(|a| a["id"].as_str().map(str::to_string))
        .collect();
    assert_eq!(ids.len(), 1, "one alert for the flow: {on_flow:#?}");
    Ok(())
}
