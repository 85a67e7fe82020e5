//! ARP spoofing caught live: a small switched LAN of network namespaces (a bridge in its own
//! namespace, as the attack lab builds it), real `arpspoof` (dsniff) poisoning a client and a
//! server both ways, and `netwarden run --capture br0` in the bridge's namespace. The alerts
//! must arrive over MQTT (a real mosquitto in the same namespace, after the sled store), name
//! the attacker's MAC and own address and the victims, and none may blame a victim. The
//! daemon's ARP counters must show the traffic.
//!
//! Needs root (`ip netns`, raw sockets) and dsniff. Everything is bounded: arpspoof runs under
//! `timeout 12`, pings are counted, the whole test takes about 30 s. Namespaces are named
//! `arpe2e-<pid>-*` and removed on drop, with whatever still runs inside them.

use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{ensure, Context};
use netwarden_e2e::{
    collect_topic_lines, is_root, netns_command, netns_exec_ok, netwarden_bin, remove_netns,
    require, run_ok, tempdir, wait_for, Proc,
};

const NET: &str = "10.221.9";
const WEB: u8 = 10;
const CLIENT: u8 = 103;
const ATK: u8 = 66;

fn ip(last: u8) -> String {
    format!("{NET}.{last}")
}

fn mac(last: u8) -> String {
    format!("02:dd:00:00:00:{last:02x}")
}

/// `<prefix>-sw` holds the bridge; one namespace per host, its `eth0` a port of the bridge.
struct Lan {
    prefix: String,
    hosts: Vec<u8>,
}

impl Lan {
    fn sw(&self) -> String {
        format!("{}-sw", self.prefix)
    }

    fn host(&self, last: u8) -> String {
        format!("{}-h{last}", self.prefix)
    }

    fn create(hosts: &[u8]) -> anyhow::Result<Lan> {
        let lan = Lan {
            prefix: format!("arpe2e-{}", std::process::id() % 100_000),
            hosts: hosts.to_vec(),
        };
        let sw = lan.sw();
        for ns in std::iter::once(sw.clone()).chain(hosts.iter().map(|h| lan.host(*h))) {
            let _ = run_ok("ip", &["netns", "del", &ns]);
            run_ok("ip", &["netns", "add", &ns])?;
        }
        // From here on Drop removes every namespace (and the veths with them).
        let quiet_v6 = [
            "sysctl",
            "-qw",
            "net.ipv6.conf.all.disable_ipv6=1",
            "net.ipv6.conf.default.disable_ipv6=1",
        ];
        lan.exec_ok(&sw, &quiet_v6)?;
        lan.exec_ok(&sw, &["ip", "link", "set", "lo", "up"])?;
        lan.exec_ok(
            &sw,
            &[
                "ip",
                "link",
                "add",
                "br0",
                "type",
                "bridge",
                "stp_state",
                "0",
                "forward_delay",
                "0",
            ],
        )?;
        for &h in hosts {
            let ns = lan.host(h);
            let port = format!("v{h}");
            run_ok(
                "ip",
                &[
                    "link", "add", &port, "netns", &sw, "type", "veth", "peer", "name", "eth0",
                    "netns", &ns,
                ],
            )?;
            lan.exec_ok(&ns, &quiet_v6)?;
            lan.exec_ok(&ns, &["ip", "link", "set", "eth0", "address", &mac(h)])?;
            lan.exec_ok(
                &ns,
                &["ip", "addr", "add", &format!("{}/24", ip(h)), "dev", "eth0"],
            )?;
            lan.exec_ok(&ns, &["ip", "link", "set", "lo", "up"])?;
            lan.exec_ok(&ns, &["ip", "link", "set", "eth0", "up"])?;
            lan.exec_ok(&sw, &["ip", "link", "set", &port, "master", "br0"])?;
            lan.exec_ok(&sw, &["ip", "link", "set", &port, "up"])?;
        }
        lan.exec_ok(&sw, &["ip", "link", "set", "br0", "up"])?;
        Ok(lan)
    }

    fn cmd(&self, ns: &str, argv: &[&str]) -> Command {
        netns_command(ns, argv)
    }

    fn exec_ok(&self, ns: &str, argv: &[&str]) -> anyhow::Result<String> {
        netns_exec_ok(ns, argv)
    }

    /// `from` pings `to` (bounded), which makes both resolve each other.
    fn ping(&self, from: u8, to: u8) -> anyhow::Result<()> {
        self.exec_ok(
            &self.host(from),
            &["ping", "-c", "2", "-i", "0.2", "-W", "1", &ip(to)],
        )
        .map(drop)
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        let all = std::iter::once(self.sw()).chain(self.hosts.iter().map(|h| self.host(*h)));
        for ns in all.collect::<Vec<_>>() {
            remove_netns(&ns);
        }
    }
}

fn alerts_of(lines: &Arc<Mutex<Vec<(String, String)>>>) -> Vec<serde_json::Value> {
    lines
        .lock()
        .map(|l| l.clone())
        .unwrap_or_default()
        .iter()
        .filter(|(topic, _)| topic.contains("/alerts/"))
        .filter_map(|(_, payload)| serde_json::from_str(payload).ok())
        .collect()
}

#[test]
fn arpspoof_is_alerted_over_mqtt_naming_attacker_and_victims() -> anyhow::Result<()> {
    ensure!(
        is_root(),
        "this test needs root (network namespaces, raw sockets): run scripts/test.sh as root"
    );
    for tool in [
        "ip",
        "ping",
        "arpspoof",
        "mosquitto",
        "mosquitto_sub",
        "timeout",
    ] {
        require(tool)?;
    }
    let dir = tempdir::Dir::new("arp-e2e")?;
    let lan = Lan::create(&[WEB, CLIENT, ATK])?;
    let sw = lan.sw();

    // The broker and the subscriber live in the bridge's namespace with the gateway.
    let conf = dir.path().join("mosquitto.conf");
    std::fs::write(
        &conf,
        "listener 1883 127.0.0.1\nallow_anonymous true\npersistence false\n",
    )?;
    let conf_s = conf.to_string_lossy().into_owned();
    let _broker = Proc::spawn(
        "mosquitto",
        lan.cmd(&sw, &["timeout", "120", "mosquitto", "-c", &conf_s])
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )?;
    wait_for(Duration::from_secs(10), "mosquitto to listen", || {
        lan.exec_ok(&sw, &["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/1883"])
            .ok()
    })?;
    let mut sub = Proc::spawn(
        "mosquitto_sub",
        lan.cmd(
            &sw,
            &[
                "timeout",
                "120",
                "mosquitto_sub",
                "-h",
                "127.0.0.1",
                "-p",
                "1883",
                "-q",
                "1",
                "-v",
                "-t",
                "netwarden/lab/gw/#",
            ],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::null()),
    )?;
    let lines = collect_topic_lines(sub.child.stdout.take().context("mosquitto_sub stdout")?);

    let data_dir = dir.path().join("data");
    let log = std::fs::File::create(dir.path().join("netwarden.log"))?;
    let mut gw = Proc::spawn(
        "netwarden",
        lan.cmd(&sw, &[])
            .arg(netwarden_bin()?)
            .args([
                "run",
                "--netflow-listen",
                "127.0.0.1:0",
                "--http-listen",
                "off",
                "--capture",
                "br0",
                "--mqtt",
                "mqtt://127.0.0.1:1883",
                "--site",
                "lab",
                "--device",
                "gw",
            ])
            .arg("--data-dir")
            .arg(&data_dir)
            .env("NETWARDEN_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(log),
    )?;
    let gw_log = || std::fs::read_to_string(dir.path().join("netwarden.log")).unwrap_or_default();
    wait_for(Duration::from_secs(30), "netwarden to capture", || {
        gw_log().contains("Capture started").then_some(())
    })?;
    wait_for(Duration::from_secs(20), "the online status on MQTT", || {
        lines
            .lock()
            .ok()?
            .iter()
            .any(|(t, _)| t.ends_with("/status"))
            .then_some(())
    })
    .with_context(gw_log)?;

    // Benign: everyone resolves everyone (the attacker too, so its own address is known).
    for (a, b) in [(CLIENT, WEB), (WEB, CLIENT), (ATK, WEB)] {
        lan.ping(a, b)?;
    }
    std::thread::sleep(Duration::from_secs(1));
    ensure!(
        alerts_of(&lines).is_empty(),
        "alerts on benign ARP: {:?}",
        alerts_of(&lines)
    );

    // arpspoof -t client -r web: "web is-at ATK" to the client and "client is-at ATK" to web,
    // every 2 s; on exit (SIGTERM from timeout) it re-announces the true bindings.
    let out = lan
        .cmd(
            &lan.host(ATK),
            &[
                "timeout",
                "-k",
                "5",
                "12",
                "arpspoof",
                "-i",
                "eth0",
                "-t",
                &ip(CLIENT),
                "-r",
                &ip(WEB),
            ],
        )
        .output()?;
    let spoof_log =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    ensure!(
        spoof_log.contains("is-at"),
        "arpspoof sent nothing: {spoof_log}"
    );
    // The victims talk again after the clean-up; nothing new may be blamed on them.
    lan.ping(CLIENT, WEB)?;

    let alerts = wait_for(Duration::from_secs(15), "both ARP alerts on MQTT", || {
        let a = alerts_of(&lines);
        (a.len() >= 2).then_some(a)
    })
    .with_context(gw_log)?;
    let rules: Vec<&str> = alerts
        .iter()
        .filter_map(|a| a["subject"]["rule"].as_str())
        .collect();
    ensure!(
        rules.contains(&"binding_flip") && rules.contains(&"unsolicited_replies"),
        "rules fired: {rules:?}"
    );
    for a in &alerts {
        let s = &a["subject"];
        ensure!(a["detector"] == "arp_rules", "{a}");
        ensure!(s["kind"] == "arp", "{a}");
        ensure!(s["interface"] == "capture:br0", "{a}");
        ensure!(s["attacker_mac"] == mac(ATK).as_str(), "{a}");
        ensure!(s["attacker_ip"] == ip(ATK).as_str(), "{a}");
        let has = |key: &str, v: String| {
            s[key]
                .as_array()
                .is_some_and(|l| l.iter().any(|x| x == v.as_str()))
        };
        ensure!(has("targets", ip(CLIENT)), "the client's cache: {a}");
        ensure!(has("impersonated", ip(WEB)), "web's address: {a}");
        ensure!(!has("impersonated", ip(ATK)), "{a}");
    }
    // Severity is in the topic, as for every alert.
    let topics: Vec<String> = lines
        .lock()
        .map(|l| l.iter().map(|(t, _)| t.clone()).collect())
        .unwrap_or_default();
    ensure!(
        topics.iter().any(|t| t == "netwarden/lab/gw/alerts/high"),
        "{topics:?}"
    );

    ensure!(
        gw.terminate(Duration::from_secs(20)),
        "netwarden did not stop"
    );
    let stats: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(data_dir.join("stats.json"))?)?;
    let m = &stats["metrics"];
    let n = |k: &str| m[k].as_u64().unwrap_or(0);
    ensure!(n("capture_arp_packets") >= 12, "{m}");
    ensure!(n("capture_arp_unsolicited_replies") >= 10, "{m}");
    ensure!(n("capture_arp_bindings_changed") >= 2, "{m}");
    ensure!(n("arp_flips_restored") >= 1, "the clean-up restores: {m}");
    ensure!(n("arp_alerts_raised") as usize == alerts.len(), "{m}");
    // Stored before published: the store holds them too.
    let out = Command::new(netwarden_bin()?)
        .args(["alerts", "--json", "--since", "1h", "--data-dir"])
        .arg(&data_dir)
        .output()?;
    let stored = String::from_utf8_lossy(&out.stdout);
    ensure!(
        stored.matches("\"arp_rules\"").count() == alerts.len(),
        "stored: {stored}"
    );
    Ok(())
}
