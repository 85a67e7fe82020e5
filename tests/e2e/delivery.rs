//! Store and forward against a real mosquitto: alerts flow while the broker is killed (SIGKILL)
//! and restarted, and while the gateway itself is killed with SIGKILL and restarted on the same
//! data directory. A persistent-session subscriber (`mosquitto_sub -c`, QoS 1) must end up with
//! every alert id the gateway stored (`netwarden alerts --json`) exactly once after
//! de-duplication by id, none missing, none unknown, and in order per topic.
//!
//! Short by default (4 broker kills, 3 gateway kills). The long mode of docs/delivery.md:
//!   NETWARDEN_DELIVERY_LONG=1 cargo test -p netwarden-e2e --test delivery -- --nocapture
//! (50 broker kills, 20 gateway kills); `NETWARDEN_DELIVERY_BROKER_KILLS` and
//! `NETWARDEN_DELIVERY_GATEWAY_KILLS` set the counts directly. The result is printed as one
//! `delivery-result {json}` line.
//!
//! `full_outbox_reports_its_drops_over_mqtt`: a full outbox while the broker is away drops the
//! oldest alerts (counted, logged) and publishes the retained `status/outbox` report.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use netwarden_e2e::{
    collect_topic_lines, free_udp_port, netwarden_bin, require, tempdir, v5_alert_datagram,
    wait_for, Broker, Proc,
};

const TOPIC: &str = "netwarden/dlv/gw/alerts/#";

fn env_count(name: &str, long: u32, short: u32) -> u32 {
    if let Some(n) = std::env::var(name).ok().and_then(|v| v.parse().ok()) {
        return n;
    }
    if std::env::var_os("NETWARDEN_DELIVERY_LONG").is_some() {
        long
    } else {
        short
    }
}

/// `netwarden run` on a fixed NetFlow port and data directory, restartable after SIGKILL.
struct Gw {
    dir: PathBuf,
    netflow: SocketAddr,
    mqtt: String,
    proc: Option<Proc>,
    starts: u32,
}

impl Gw {
    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn up(&mut self) -> anyhow::Result<()> {
        let _ = std::fs::remove_file(self.data().join("stats.json"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("netwarden.log"))?;
        let proc = Proc::spawn(
            "netwarden",
            Command::new(netwarden_bin()?)
                .arg("run")
                .args(["--learn", "off"])
                .args(["--netflow-listen", &self.netflow.to_string()])
                .args(["--http-listen", "127.0.0.1:0"])
                .arg("--data-dir")
                .arg(self.data())
                .args(["--mqtt", &self.mqtt, "--site", "dlv", "--device", "gw"])
                // The trace lines per PUBACK and per alert leaving the outbox explain a failure.
                .env("NETWARDEN_LOG", "info,netwarden::sinks::mqtt=trace")
                .stdout(Stdio::null())
                .stderr(log),
        )?;
        self.proc = Some(proc);
        self.starts += 1;
        let stats = self.data().join("stats.json");
        wait_for(Duration::from_secs(60), "netwarden to start", || {
            stats.exists().then_some(())
        })
        .with_context(|| self.log())?;
        Ok(())
    }

    fn kill9(&mut self) {
        if let Some(mut p) = self.proc.take() {
            let _ = p.child.kill();
            let _ = p.child.wait();
        }
    }

    fn stop(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.terminate(Duration::from_secs(10));
        }
    }

    fn stats(&self) -> Option<serde_json::Value> {
        let text = std::fs::read_to_string(self.data().join("stats.json")).ok()?;
        serde_json::from_str(&text).ok()
    }

    fn full_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("netwarden.log")).unwrap_or_default()
    }

    fn log(&self) -> String {
        let log = self.full_log();
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    }
}

/// `mosquitto_sub -c` (persistent session, QoS 1): it reconnects by itself after the broker
/// comes back, and the broker keeps its subscription and queued messages across restarts.
struct Sub {
    lines: Arc<Mutex<Vec<(String, String)>>>,
    _proc: Proc,
}

impl Sub {
    fn start(port: u16) -> anyhow::Result<Sub> {
        require("mosquitto_sub")?;
        let id = format!("delivery-sub-{}", std::process::id());
        let mut proc = Proc::spawn(
            "mosquitto_sub",
            Command::new("mosquitto_sub")
                .args(["-h", "127.0.0.1", "-p", &port.to_string()])
                .args(["-c", "-i", &id, "-q", "1", "-v", "-t", TOPIC])
                .stdout(Stdio::piped())
                .stderr(Stdio::null()),
        )?;
        let out = proc.child.stdout.take().context("mosquitto_sub stdout")?;
        let lines = collect_topic_lines(out);
        Ok(Sub { lines, _proc: proc })
    }

    fn messages(&self) -> Vec<(String, String)> {
        self.lines.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

/// Sends a datagram of fresh source hosts (one alert each) every `period` until stopped.
fn alert_source(
    to: SocketAddr,
    hosts_per_datagram: u16,
    period: Duration,
    stop: Arc<AtomicBool>,
    hosts_sent: Arc<AtomicU64>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let Ok(sock) = UdpSocket::bind("127.0.0.1:0") else {
            return;
        };
        let mut next_host = 1u32;
        let mut seq = 0u32;
        // Bounded: at most 16M hosts, and the test stops it.
        while !stop.load(Ordering::Relaxed) && next_host < (1 << 24) - 1000 {
            let d = v5_alert_datagram(next_host, hosts_per_datagram, seq);
            // While the gateway is down this fails or goes nowhere; those hosts raise nothing.
            let _ = sock.send_to(&d, to);
            next_host += u32::from(hosts_per_datagram);
            seq = seq.wrapping_add(u32::from(hosts_per_datagram));
            hosts_sent.fetch_add(u64::from(hosts_per_datagram), Ordering::Relaxed);
            std::thread::sleep(period);
        }
    })
}

fn stored_alerts(data: &Path) -> anyhow::Result<Vec<serde_json::Value>> {
    let out = Command::new(netwarden_bin()?)
        .args(["alerts", "--json", "--limit", "100000000", "--data-dir"])
        .arg(data)
        .output()?;
    if !out.status.success() {
        bail!(
            "netwarden alerts failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| Ok(serde_json::from_str(l)?))
        .collect()
}

/// Jittered pause in `lo..hi` ms (a cheap LCG: different kill timings each cycle).
fn pause(state: &mut u64, lo: u64, hi: u64) {
    *state = state
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let ms = lo + (*state >> 33) % (hi - lo).max(1);
    std::thread::sleep(Duration::from_millis(ms));
}

#[test]
fn broker_and_gateway_kills_lose_no_alert() -> anyhow::Result<()> {
    let broker_kills = env_count("NETWARDEN_DELIVERY_BROKER_KILLS", 50, 4);
    let gateway_kills = env_count("NETWARDEN_DELIVERY_GATEWAY_KILLS", 20, 3);
    let started = Instant::now();
    // Persistence with a save after every change: the subscriber's session and the messages
    // queued for it survive the broker's SIGKILL. No limit on messages in flight to the
    // subscriber, so the broker writes each one out at once instead of queueing it in memory
    // (mosquitto acknowledges a QoS 1 publish before it saves or forwards it; what it holds in
    // memory when SIGKILLed is lost by the broker, after the gateway was told it arrived).
    let mut broker = Broker::start(
        "allow_anonymous true\npersistence true\npersistence_location {dir}/\n\
         autosave_interval 1\nautosave_on_changes true\nmax_queued_messages 0\n\
         max_inflight_messages 0\n\
         log_dest stderr\nlog_type error\nlog_type warning\n",
    )?;
    let sub = Sub::start(broker.port)?;
    // The subscription must be in the broker's save before its first kill.
    std::thread::sleep(Duration::from_millis(1500));

    let dir = tempdir::Dir::new("delivery")?;
    let mut gw = Gw {
        dir: dir.path().to_path_buf(),
        netflow: ([127, 0, 0, 1], free_udp_port()?).into(),
        mqtt: format!("mqtt://127.0.0.1:{}", broker.port),
        proc: None,
        starts: 0,
    };
    gw.up()?;

    let stop = Arc::new(AtomicBool::new(false));
    let hosts_sent = Arc::new(AtomicU64::new(0));
    let source = alert_source(
        gw.netflow,
        5,
        Duration::from_millis(40),
        stop.clone(),
        hosts_sent.clone(),
    );

    let cycles = broker_kills.max(gateway_kills);
    let mut rng = 0x5eed_u64 ^ u64::from(std::process::id());
    let (mut bk, mut gk) = (0u32, 0u32);
    let mut broker_kill_ms: Vec<u64> = Vec::new();
    for i in 0..cycles {
        pause(&mut rng, 300, 1200);
        // Spread the gateway kills over the cycles; some land while the broker is down.
        let kill_gw = gk < gateway_kills
            && (u64::from(i) * u64::from(gateway_kills)) / u64::from(cycles) >= u64::from(gk);
        let mut gw_done = !kill_gw;
        if bk < broker_kills {
            broker_kill_ms.push(now_ms());
            broker.kill();
            bk += 1;
            pause(&mut rng, 100, 900);
            if !gw_done && i % 2 == 1 {
                // The gateway dies while the broker is down, too.
                gw.kill9();
                gk += 1;
                gw.up()?;
                gw_done = true;
            }
            broker.up()?;
        }
        if !gw_done {
            pause(&mut rng, 100, 600);
            gw.kill9();
            gk += 1;
            gw.up()?;
        }
    }
    pause(&mut rng, 500, 1000);
    stop.store(true, Ordering::Relaxed);
    let _ = source.join();

    // Everything stored must drain: outbox empty and the subscriber's count steady.
    wait_for(Duration::from_secs(120), "the outbox to drain", || {
        let s = gw.stats()?;
        (s["outbox_len"].as_u64()? == 0).then_some(())
    })
    .with_context(|| format!("stats: {:?}\nlog:\n{}", gw.stats(), gw.log()))?;
    let mut last = usize::MAX;
    wait_for(Duration::from_secs(60), "the subscriber to settle", || {
        let n = sub.messages().len();
        let steady = n == last;
        last = n;
        std::thread::sleep(Duration::from_millis(1500));
        steady.then_some(())
    })?;
    let final_stats = gw.stats().unwrap_or_default();
    gw.stop();

    let stored = stored_alerts(&gw.data())?;
    let stored_ids: HashSet<String> = stored
        .iter()
        .filter_map(|a| a["id"].as_str().map(str::to_string))
        .collect();
    let received = sub.messages();
    let mut counts: HashMap<String, u32> = HashMap::new();
    let mut first_order: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (topic, payload) in &received {
        let v: serde_json::Value = serde_json::from_str(payload)
            .with_context(|| format!("not JSON on {topic}: {payload}"))?;
        let id = v["id"].as_str().context("alert without id")?.to_string();
        let n = counts.entry(id.clone()).or_default();
        *n += 1;
        if *n == 1 {
            first_order.entry(topic.clone()).or_default().push(id);
        }
    }
    let received_ids: HashSet<String> = counts.keys().cloned().collect();
    let missing: Vec<&String> = stored_ids.difference(&received_ids).collect();
    let unknown: Vec<&String> = received_ids.difference(&stored_ids).collect();
    // Every stored alert must arrive. mosquitto acknowledges a QoS 1 publish before it saves
    // or forwards it, so a broker SIGKILL right after a PUBACK loses the message in the broker;
    // the gateway holds acknowledged alerts (mqtt.ack_hold_secs) and sends them again after a
    // broken connection. For a failure, say for each missing id whether and when it left the
    // outbox, and how far the nearest broker SIGKILL was from that.
    let log = gw.full_log();
    let left: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("left the outbox"))
        .collect();
    let explained: Vec<String> = missing
        .iter()
        .take(10)
        .map(|id| {
            match left
                .iter()
                .find(|l| l.contains(id.as_str()))
                .and_then(|l| log_time_ms(l))
            {
                Some(t) => {
                    let nearest = broker_kill_ms
                        .iter()
                        .map(|k| i128::from(*k) - i128::from(t))
                        .min_by_key(|d| d.abs());
                    format!(
                        "{id}: left the outbox at {t} ms, nearest broker kill {nearest:?} ms later"
                    )
                }
                None => format!("{id}: never left the outbox"),
            }
        })
        .collect();
    let duplicates: u64 = counts.values().map(|n| u64::from(n - 1)).sum();
    // UUIDv7 ids grow with time, and the outbox publishes in the order alerts were raised.
    let mut out_of_order = 0;
    for ids in first_order.values() {
        out_of_order += ids.windows(2).filter(|w| w[0] > w[1]).count();
    }
    let result = serde_json::json!({
        "broker_kills": bk,
        "gateway_kills": gk,
        "gateway_starts": gw.starts,
        "broker_starts": broker.starts,
        "hosts_sent": hosts_sent.load(Ordering::Relaxed),
        "alerts_stored": stored_ids.len(),
        "alerts_received_unique": received_ids.len(),
        "messages_received": received.len(),
        "duplicates": duplicates,
        "missing": missing.len(),
        "unknown": unknown.len(),
        "out_of_order_first_deliveries": out_of_order,
        "topics": first_order.iter().map(|(t, ids)| (t.clone(), ids.len())).collect::<BTreeMap<_, _>>(),
        "last_run_mqtt_connects": final_stats["metrics"]["mqtt_connects"],
        "seconds": started.elapsed().as_secs(),
    });
    println!("delivery-result {result}");
    if let Ok(path) = std::env::var("NETWARDEN_DELIVERY_REPORT") {
        std::fs::write(path, format!("{result}\n"))?;
    }
    assert_eq!(bk, broker_kills, "broker kills done");
    assert_eq!(gk, gateway_kills, "gateway kills done");
    assert!(stored_ids.len() > 100, "alerts must have flowed: {result}");
    assert!(
        missing.is_empty(),
        "alerts stored but never delivered: {explained:#?} ({result})\nlog:\n{}",
        gw.log()
    );
    assert!(unknown.is_empty(), "delivered but not stored: {unknown:?}");
    assert_eq!(
        out_of_order, 0,
        "first deliveries out of order per topic: {result}"
    );
    Ok(())
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Epoch ms of a tracing log line's leading `YYYY-MM-DDTHH:MM:SS.ffffffZ` (ANSI codes allowed).
fn log_time_ms(line: &str) -> Option<u64> {
    let start = line.find("20")?;
    let ts = line.get(start..start + 23)?;
    let num = |a: usize, b: usize| ts.get(a..b)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (h, mi, sec, ms) = (num(11, 13)?, num(14, 16)?, num(17, 19)?, num(20, 23)?);
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if mo > 2 { mo - 3 } else { mo + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(((days * 24 + h) * 60 + mi) * 60_000 + sec * 1000 + ms).ok()
}

#[test]
fn log_times_parse() {
    assert_eq!(
        log_time_ms("\u{1b}[2m2026-11-23T09:32:51.581841Z\u{1b}[0m x"),
        Some(1_795_426_371_581)
    );
}

/// A full outbox while the broker is away: the oldest alerts leave it, the drop is counted, and
/// once the broker is back the retained `status/outbox` report and the newest alerts arrive.
#[test]
fn full_outbox_reports_its_drops_over_mqtt() -> anyhow::Result<()> {
    let mut broker = Broker::start("allow_anonymous true\n")?;
    broker.kill();
    // Each datagram's 5 alerts reach the outbox as one batch, in datagram order: the built-in
    // flow-v2 model would otherwise hold records up to its pairing wait (500 ms) and score
    // several datagrams' together. (A batch larger than the outbox keeps it at its cap too:
    // the store's unit test a_batch_larger_than_the_outbox_keeps_it_at_its_cap.)
    let config = format!(
        "site = \"ovf\"\ndevice = \"gw\"\n[mqtt]\nurl = \"mqtt://127.0.0.1:{}\"\n[store]\noutbox_max_alerts = 5\n[detector]\npair_wait = \"0ms\"\n",
        broker.port
    );
    let gw = netwarden_e2e::gateway_in(tempdir::Dir::new("overflow")?, &config, &[])?;
    let sock = UdpSocket::bind("127.0.0.1:0")?;
    for k in 0..4u32 {
        sock.send_to(&v5_alert_datagram(1 + 5 * k, 5, 5 * k), gw.netflow)?;
        std::thread::sleep(Duration::from_millis(100));
    }
    let stats = wait_for(Duration::from_secs(20), "20 alerts, 15 dropped", || {
        let s = gw.stats().ok()?;
        (s["metrics"]["alerts_raised"].as_u64()? == 20).then_some(s)
    })?;
    assert_eq!(stats["metrics"]["outbox_dropped_full"], 15, "{stats}");
    assert_eq!(stats["outbox_len"], 5, "{stats}");

    broker.up()?;
    let sub = netwarden_e2e::Subscriber::start(broker.port, "netwarden/ovf/gw/#")?;
    let report = wait_for(
        Duration::from_secs(30),
        "the retained outbox report",
        || {
            sub.messages()
                .into_iter()
                .find(|(t, _)| t == "netwarden/ovf/gw/status/outbox")
        },
    )
    .with_context(|| gw.log())?;
    let r: serde_json::Value = serde_json::from_str(&report.1)?;
    assert_eq!(r["dropped_total"], 15, "{r}");
    assert_eq!(
        r["dropped_high"].as_u64().unwrap_or(0) + r["dropped_other"].as_u64().unwrap_or(0),
        15
    );
    assert_eq!(r["outbox_max_alerts"], 5, "{r}");
    let alerts = wait_for(Duration::from_secs(30), "the 5 alerts kept", || {
        let a: Vec<String> = sub
            .messages()
            .into_iter()
            .filter(|(t, _)| t.starts_with("netwarden/ovf/gw/alerts/"))
            .map(|(_, p)| p)
            .collect();
        (a.len() >= 5).then_some(a)
    })?;
    // All alerts are high here, so the oldest went: the 5 kept are the last datagram's hosts.
    let mut kept: Vec<String> = alerts
        .iter()
        .map(|p| {
            let v: serde_json::Value = serde_json::from_str(p).unwrap_or_default();
            v["subject"]["src_addr"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    kept.sort();
    kept.dedup();
    assert_eq!(
        kept,
        [
            "10.0.0.16",
            "10.0.0.17",
            "10.0.0.18",
            "10.0.0.19",
            "10.0.0.20"
        ]
    );
    assert!(gw.log().contains("Outbox full"), "the drop is logged");
    Ok(())
}
