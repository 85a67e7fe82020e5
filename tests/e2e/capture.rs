//! Packet capture against real peers: two network namespaces joined by a veth pair, bounded
//! traffic between them (HTTP with `python3 -m http.server` and curl, pings, an `nmap -sS`
//! scan), `netwarden run --capture` metering live on one veth end while tcpdump records the same
//! frames. softflowd then meters tcpdump's capture (`-r`), exports NetFlow v9 to a UDP socket of
//! this test, and the packets and bytes per 5-tuple must match what netwarden metered live,
//! exactly. `netwarden features --pcap` over the same capture must agree too.
//!
//! Why exact is possible here: both meters see the same frames (one veth end, both capture
//! sockets opened before any traffic, each with a receive queue large enough for the scan's
//! burst); both count IP bytes (IPv4 total length); and the traffic lasts far less than any timeout
//! (netwarden idle 120 s; softflowd's shortest, tcp.rst, 120 s), so neither splits a flow and
//! each flushes everything at the end. What is NOT compared: flow start/end times (live frames
//! are timestamped by each capture socket separately) and how flows are oriented (softflowd
//! exports unidirectional records, which is why the comparison is per directed 5-tuple), and
//! ICMP ports (see [`key`]).
//!
//! Needs root (`ip netns`, raw sockets). Namespaces and interfaces are named `capture*` and
//! removed on drop.

use std::collections::BTreeMap;
use std::net::UdpSocket;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use netwarden::sources::netflow::NetflowDecoder;
use netwarden_e2e::{
    is_root, netns_command, netns_exec_ok, netwarden_bin, remove_netns, require, run_ok, tempdir,
    wait_for, Proc,
};

const IP_A: &str = "10.219.7.1";
const IP_B: &str = "10.219.7.2";

/// (src, dst, src port, dst port, protocol) -> (packets, bytes).
type Tuples = BTreeMap<(String, String, u16, u16, u8), (u64, u64)>;

/// The comparison key. softflowd 1.1.0's NetFlow v9 records carry ports 0 for ICMP, so an echo
/// request and the echo reply in the same direction land in one record there, while the meter
/// keys ICMP by `type * 256 + code` (a separate flow per message type, NFStream-style). ICMP is
/// therefore compared per (src, dst) with ports cleared; packets and bytes still match exactly.
fn key(
    src: String,
    dst: String,
    sport: u16,
    dport: u16,
    proto: u8,
) -> (String, String, u16, u16, u8) {
    if proto == 1 {
        (src, dst, 0, 0, proto)
    } else {
        (src, dst, sport, dport, proto)
    }
}

/// Raises `net.core.rmem_max` (global) for the capture socket's 8 MiB receive queue, as
/// docs/operations.md advises, and puts the old value back on drop. A debug build meters a
/// burst (nmap sends 1,000 SYNs in a few ms) slower than it arrives; with the default 208 KiB
/// queue the kernel would drop frames that tcpdump (another socket) still records.
struct RmemMax(Option<String>);

impl RmemMax {
    fn raise(to: u64) -> RmemMax {
        let path = "/proc/sys/net/core/rmem_max";
        let old = std::fs::read_to_string(path).ok();
        if old
            .as_deref()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .is_some_and(|v| v < to)
        {
            let _ = std::fs::write(path, to.to_string());
            return RmemMax(old);
        }
        RmemMax(None)
    }
}

impl Drop for RmemMax {
    fn drop(&mut self) {
        if let Some(old) = &self.0 {
            let _ = std::fs::write("/proc/sys/net/core/rmem_max", old.trim());
        }
    }
}

/// Two namespaces `capture-<pid>-a/b` joined by veth `capture<pid>a/b`, removed on drop.
struct NsPair {
    a: String,
    b: String,
    va: String,
}

impl NsPair {
    fn create() -> anyhow::Result<NsPair> {
        let pid = std::process::id() % 100_000;
        let pair = NsPair {
            a: format!("capture-{pid}-a"),
            b: format!("capture-{pid}-b"),
            va: format!("capture{pid}a"),
        };
        let vb = format!("capture{pid}b");
        for ns in [&pair.a, &pair.b] {
            let _ = run_ok("ip", &["netns", "del", ns]);
            run_ok("ip", &["netns", "add", ns])?;
        }
        // From here on Drop removes both namespaces (and the veth pair with them).
        run_ok(
            "ip",
            &[
                "link", "add", &pair.va, "netns", &pair.a, "type", "veth", "peer", "name", &vb,
                "netns", &pair.b,
            ],
        )?;
        for (ns, dev, addr) in [(&pair.a, &pair.va, IP_A), (&pair.b, &vb, IP_B)] {
            // IPv4 only: no router solicitations or ND in the captures.
            pair.exec_ok(ns, &["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"])?;
            pair.exec_ok(
                ns,
                &["sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1"],
            )?;
            pair.exec_ok(
                ns,
                &["ip", "addr", "add", &format!("{addr}/24"), "dev", dev],
            )?;
            pair.exec_ok(ns, &["ip", "link", "set", "lo", "up"])?;
            pair.exec_ok(ns, &["ip", "link", "set", dev, "up"])?;
            // Wire-sized frames, as on a real link (both meters would agree on GSO frames too).
            let _ = pair
                .cmd(
                    ns,
                    &[
                        "ethtool", "-K", dev, "tso", "off", "gso", "off", "gro", "off",
                    ],
                )
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        Ok(pair)
    }

    fn cmd(&self, ns: &str, argv: &[&str]) -> Command {
        netns_command(ns, argv)
    }

    fn exec_ok(&self, ns: &str, argv: &[&str]) -> anyhow::Result<String> {
        netns_exec_ok(ns, argv)
    }
}

impl Drop for NsPair {
    fn drop(&mut self) {
        for ns in [&self.a, &self.b] {
            // Anything still running inside (servers) goes first.
            remove_netns(ns);
        }
    }
}

/// Collects a child's stderr lines (tcpdump and netwarden say they are ready there).
fn stderr_lines(proc: &mut Proc) -> Arc<Mutex<Vec<String>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    if let Some(err) = proc.child.stderr.take() {
        let sink = lines.clone();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
                if let Ok(mut l) = sink.lock() {
                    l.push(line);
                }
            }
        });
    }
    lines
}

fn wait_line(lines: &Arc<Mutex<Vec<String>>>, what: &str, needle: &str) -> anyhow::Result<()> {
    wait_for(Duration::from_secs(20), what, || {
        lines
            .lock()
            .ok()?
            .iter()
            .any(|l| l.contains(needle))
            .then_some(())
    })
}

/// `key=value` fields of netwarden's `netwarden::flows` debug lines, summed per directed
/// 5-tuple (each flow gives its src->dst and, when it saw any, its dst->src direction).
fn netwarden_tuples(log: &[String]) -> anyhow::Result<Tuples> {
    let mut out = Tuples::new();
    for line in log.iter().filter(|l| l.contains("netwarden::flows")) {
        let clean: String = strip_ansi(line);
        let kv: BTreeMap<&str, &str> = clean
            .split_whitespace()
            .filter_map(|t| t.split_once('='))
            .collect();
        let get = |k: &str| {
            kv.get(k)
                .copied()
                .with_context(|| format!("{k} in {clean}"))
        };
        let num = |k: &str| -> anyhow::Result<u64> { Ok(get(k)?.parse()?) };
        let (src, dst) = (get("src")?.to_string(), get("dst")?.to_string());
        let (sport, dport) = (num("sport")? as u16, num("dport")? as u16);
        let proto = num("proto")? as u8;
        let e = out
            .entry(key(src.clone(), dst.clone(), sport, dport, proto))
            .or_default();
        e.0 += num("s2d_packets")?;
        e.1 += num("s2d_bytes")?;
        if num("d2s_packets")? > 0 {
            let e = out.entry(key(dst, src, dport, sport, proto)).or_default();
            e.0 += num("d2s_packets")?;
            e.1 += num("d2s_bytes")?;
        }
    }
    Ok(out)
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// softflowd meters `pcap` (`-r`, `-a`: pcap timestamps) and exports NetFlow v9 to a socket of
/// ours; the export is decoded with netwarden's decoder (itself checked against nfcapd in
/// netflow_to_mqtt.rs). softflowd 1.1.0 waits on its control socket after the file: once its
/// packet count (processed + ignored) reaches the `frames` tcpdump wrote, `softflowctl
/// shutdown` makes it flush every flow and exit. A count that stopped moving is not enough: on a
/// loaded machine softflowd can sit unscheduled between two polls while still reading the file.
fn softflowd_tuples(pcap: &Path, dir: &Path, frames: u64) -> anyhow::Result<(Tuples, String)> {
    let sock = UdpSocket::bind("127.0.0.1:0")?;
    sock.set_read_timeout(Some(Duration::from_millis(200)))?;
    let port = sock.local_addr()?.port();
    let ctl = dir.join("softflowd.ctl");
    let log = std::fs::File::create(dir.join("softflowd.log"))?;
    let mut sf = Proc::spawn(
        "softflowd",
        Command::new("timeout")
            .arg("120")
            .arg("softflowd")
            .args(["-d", "-a", "-v", "9", "-n", &format!("127.0.0.1:{port}")])
            .arg("-r")
            .arg(pcap)
            .arg("-c")
            .arg(&ctl)
            .arg("-p")
            .arg(dir.join("softflowd.pid"))
            .stdout(Stdio::null())
            .stderr(log),
    )?;
    let mut datagrams: Vec<(std::net::SocketAddr, Vec<u8>)> = Vec::new();
    let mut buf = vec![0u8; 65_536];
    let mut recv = |datagrams: &mut Vec<_>| {
        while let Ok((n, from)) = sock.recv_from(&mut buf) {
            datagrams.push((from, buf[..n].to_vec()));
        }
    };
    let started = Instant::now();
    let mut stats = String::new();
    while sf.is_running() && started.elapsed() < Duration::from_secs(60) {
        recv(&mut datagrams);
        if !ctl.exists() {
            continue;
        }
        let out = Command::new("softflowctl")
            .arg("-c")
            .arg(&ctl)
            .arg("statistics")
            .output()?;
        stats = String::from_utf8_lossy(&out.stdout).into_owned();
        let count = |prefix: &str| {
            stats
                .lines()
                .find_map(|l| l.strip_prefix(prefix))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        };
        let read = count("Packets processed: ").zip(count("Ignored packets: "));
        if read.is_some_and(|(p, i)| p + i >= frames) {
            let _ = Command::new("softflowctl")
                .arg("-c")
                .arg(&ctl)
                .arg("shutdown")
                .output();
            break;
        }
    }
    wait_for(Duration::from_secs(20), "softflowd to exit", || {
        (!sf.is_running()).then_some(())
    })?;
    // The last export datagrams may still be in the socket.
    let quiet = Instant::now();
    while quiet.elapsed() < Duration::from_millis(500) {
        recv(&mut datagrams);
    }
    ensure!(!datagrams.is_empty(), "softflowd exported nothing: {stats}");
    let mut decoder = NetflowDecoder::new(16);
    let mut recs = Vec::new();
    for (from, payload) in &datagrams {
        decoder.decode(*from, payload, &mut recs);
    }
    let mut out = Tuples::new();
    for (_, r) in &recs {
        let e = out
            .entry(key(
                r.src_addr.to_string(),
                r.dst_addr.to_string(),
                r.src_port,
                r.dst_port,
                r.protocol,
            ))
            .or_default();
        e.0 += r.packets;
        e.1 += r.bytes;
    }
    Ok((out, stats))
}

/// `netwarden features --pcap` rows summed per directed 5-tuple (the CSV carries each
/// record's own packets and bytes as its first two features).
fn features_tuples(pcap: &Path) -> anyhow::Result<(Tuples, String)> {
    let out = Command::new(netwarden_bin()?)
        .args(["features", "--out", "-", "--pcap"])
        .arg(pcap)
        .output()?;
    let summary = String::from_utf8_lossy(&out.stderr).into_owned();
    ensure!(out.status.success(), "features --pcap failed: {summary}");
    let text = String::from_utf8(out.stdout)?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .with_context(|| format!("column {name} in {header:?}"))
    };
    let (src, dst, sp, dp, pr) = (
        col("src_addr")?,
        col("dst_addr")?,
        col("src_port")?,
        col("dst_port")?,
        col("protocol")?,
    );
    // flow-v1 names the record's own counts after NFStream's columns.
    let (pk, by) = (col("bidirectional_packets")?, col("bidirectional_bytes")?);
    let mut tuples = Tuples::new();
    for line in lines {
        let f: Vec<&str> = line.split(',').collect();
        let e = tuples
            .entry(key(
                f[src].to_string(),
                f[dst].to_string(),
                f[sp].parse()?,
                f[dp].parse()?,
                f[pr].parse()?,
            ))
            .or_default();
        e.0 += f[pk].parse::<f64>()? as u64;
        e.1 += f[by].parse::<f64>()? as u64;
    }
    Ok((tuples, summary))
}

fn diff(a_name: &str, a: &Tuples, b_name: &str, b: &Tuples) -> Vec<String> {
    let mut out = Vec::new();
    for (k, va) in a {
        match b.get(k) {
            Some(vb) if vb == va => {}
            other => out.push(format!("{k:?}: {a_name} {va:?}, {b_name} {other:?}")),
        }
    }
    for (k, vb) in b {
        if !a.contains_key(k) {
            out.push(format!("{k:?}: {a_name} none, {b_name} {vb:?}"));
        }
    }
    out
}

#[test]
fn live_capture_matches_softflowd_per_5_tuple_and_raises_the_scan_alert() -> anyhow::Result<()> {
    ensure!(
        is_root(),
        "this test needs root (network namespaces, raw sockets): run scripts/test.sh as root"
    );
    for tool in [
        "ip",
        "tcpdump",
        "softflowd",
        "softflowctl",
        "nmap",
        "curl",
        "python3",
        "ping",
    ] {
        require(tool)?;
    }
    let dir = tempdir::Dir::new("capture-e2e")?;
    let www = dir.path().join("www");
    std::fs::create_dir_all(&www)?;
    for (name, size) in [("small", 300usize), ("medium", 40_000), ("large", 600_000)] {
        std::fs::write(www.join(name), vec![b'n'; size])?;
    }
    let pcap = dir.path().join("live.pcap");
    let data_dir = dir.path().join("data");
    let _rmem = RmemMax::raise(16 << 20);
    let ns = NsPair::create()?;

    // tcpdump and netwarden capture on the same veth end; both are ready before any traffic.
    let mut tcpdump = Proc::spawn(
        "tcpdump",
        ns.cmd(
            &ns.a,
            &[
                "tcpdump", "-n", "-U", "-s", "0", "-B", "16384", "-i", &ns.va, "-w",
            ],
        )
        .arg(&pcap)
        .stdout(Stdio::null())
        .stderr(Stdio::piped()),
    )?;
    let tcpdump_err = stderr_lines(&mut tcpdump);
    wait_line(&tcpdump_err, "tcpdump to listen", "listening on")?;
    let mut gw = Proc::spawn(
        "netwarden",
        ns.cmd(&ns.a, &[])
            .arg(netwarden_bin()?)
            .args([
                "run",
                "--learn",
                "off",
                "--netflow-listen",
                "127.0.0.1:0",
                "--http-listen",
                "127.0.0.1:0",
                "--capture",
                &ns.va,
            ])
            .arg("--data-dir")
            .arg(&data_dir)
            .env("NETWARDEN_LOG", "info,netwarden::flows=debug")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
    )?;
    let gw_log = stderr_lines(&mut gw);
    wait_line(&gw_log, "netwarden to capture", "Capture started")?;

    // Bounded traffic, all of it between the two namespaces.
    let www_s = www.to_string_lossy().into_owned();
    let mut server = Proc::spawn(
        "http.server",
        ns.cmd(
            &ns.b,
            &[
                "timeout",
                "120",
                "python3",
                "-m",
                "http.server",
                "8080",
                "--bind",
                IP_B,
                "--directory",
                &www_s,
            ],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null()),
    )?;
    let url = |path: &str| format!("http://{IP_B}:8080/{path}");
    wait_for(Duration::from_secs(20), "the HTTP server", || {
        ns.exec_ok(
            &ns.a,
            &["curl", "-sf", "-o", "/dev/null", "-m", "2", &url("small")],
        )
        .ok()
    })?;
    for path in ["small", "medium", "large", "small", "missing", "medium"] {
        let _ = ns.exec_ok(
            &ns.a,
            &["curl", "-s", "-o", "/dev/null", "-m", "10", &url(path)],
        );
    }
    ns.exec_ok(&ns.a, &["ping", "-c", "4", "-i", "0.2", "-W", "1", IP_B])?;
    ns.exec_ok(
        &ns.b,
        &[
            "ping", "-c", "3", "-i", "0.2", "-s", "1200", "-W", "1", IP_A,
        ],
    )?;
    ns.exec_ok(
        &ns.a,
        &[
            "timeout",
            "90",
            "nmap",
            "-sS",
            "-n",
            "-Pn",
            "-T4",
            "-p",
            "1-1000",
            "--max-retries",
            "1",
            IP_B,
        ],
    )?;
    server.terminate(Duration::from_secs(3));
    std::thread::sleep(Duration::from_millis(500));

    // Stop: netwarden flushes every open flow into its pipeline; tcpdump writes its file.
    ensure!(
        gw.terminate(Duration::from_secs(20)),
        "netwarden did not stop on SIGTERM"
    );
    // tcpdump may still be reading its queue (a loaded machine): SIGTERM ends it without
    // writing what is left, so wait until its file stopped growing for a while.
    let mut last = (0, Instant::now());
    while last.1.elapsed() < Duration::from_millis(1500) {
        let size = std::fs::metadata(&pcap).map(|m| m.len()).unwrap_or(0);
        if size != last.0 {
            last = (size, Instant::now());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    tcpdump.terminate(Duration::from_secs(5));
    // tcpdump must have recorded every frame, or the reference is short.
    let tcpdump_said = wait_for(Duration::from_secs(5), "tcpdump's summary", || {
        let l = tcpdump_err.lock().ok()?;
        l.iter().find(|l| l.contains("dropped by kernel")).cloned()
    })?;
    ensure!(
        tcpdump_said.starts_with("0 "),
        "tcpdump lost frames: {tcpdump_said}"
    );
    let log = gw_log.lock().map(|l| l.clone()).unwrap_or_default();
    let live = netwarden_tuples(&log)?;
    let stats: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(data_dir.join("stats.json"))?)?;
    let m = &stats["metrics"];
    ensure!(
        live.len() > 1000,
        "netwarden metered {} directed 5-tuples (the scan alone is ~2000); stats {m}",
        live.len()
    );
    let live_packets: u64 = live.values().map(|v| v.0).sum();
    ensure!(
        m["capture_packets"].as_u64() == Some(live_packets),
        "stats.json capture_packets {} vs flows logged {live_packets}",
        m["capture_packets"]
    );
    ensure!(
        m["flows_scored"].as_u64() == m["capture_records"].as_u64(),
        "every metered record reaches the model: {m}"
    );

    // softflowd on tcpdump's capture of the same frames.
    let frames = tcpdump_err
        .lock()
        .ok()
        .and_then(|l| {
            l.iter()
                .find_map(|l| l.strip_suffix(" packets captured")?.parse::<u64>().ok())
        })
        .context("tcpdump's summary has no \"N packets captured\"")?;
    let (reference, sf_stats) = softflowd_tuples(&pcap, dir.path(), frames)?;
    let d = diff("netwarden live", &live, "softflowd", &reference);
    ensure!(
        d.is_empty(),
        "{} of {} directed 5-tuples differ (softflowd: {}):\n{}\nsoftflowd statistics:\n{sf_stats}",
        d.len(),
        live.len(),
        reference.len(),
        d.iter().take(20).cloned().collect::<Vec<_>>().join("\n")
    );

    // The pcap path meters the same capture identically.
    let (replayed, summary) = features_tuples(&pcap)?;
    let d = diff("netwarden live", &live, "features --pcap", &replayed);
    ensure!(
        d.is_empty(),
        "{} 5-tuples differ between live and pcap metering ({summary}):\n{}",
        d.len(),
        d.iter().take(20).cloned().collect::<Vec<_>>().join("\n")
    );

    // The metered flows went through the model: the scanner raised an alert.
    let alerts = Command::new(netwarden_bin()?)
        .args(["alerts", "--json", "--data-dir"])
        .arg(&data_dir)
        .output()?;
    let alerts = String::from_utf8_lossy(&alerts.stdout).into_owned();
    let scanner = alerts.lines().find(|l| {
        serde_json::from_str::<serde_json::Value>(l)
            .map(|a| {
                a["subject"]["src_addr"] == IP_A
                    && a["subject"]["exporter"] == format!("capture:{}", ns.va)
            })
            .unwrap_or(false)
    });
    ensure!(
        scanner.is_some(),
        "no alert for the scanner {IP_A} from capture:{}: {alerts}",
        ns.va
    );
    Ok(())
}

#[test]
fn capture_without_cap_net_raw_says_what_is_missing() -> anyhow::Result<()> {
    ensure!(is_root(), "this test needs root to drop CAP_NET_RAW itself");
    require("setpriv")?;
    let dir = tempdir::Dir::new("capture-noperm")?;
    // Root without CAP_NET_RAW in its bounding set: what an unprivileged service user sees.
    let out = Command::new("setpriv")
        .args(["--bounding-set", "-net_raw", "--"])
        .arg(netwarden_bin()?)
        .args(["run", "--netflow-listen", "127.0.0.1:0", "--capture", "lo"])
        .args(["--http-listen", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .env("NO_COLOR", "1")
        .output()?;
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(!out.status.success(), "started without CAP_NET_RAW: {err}");
    for needle in [
        "CAP_NET_RAW",
        "setcap cap_net_raw+ep",
        "capture drop-in",
        "lo",
    ] {
        ensure!(err.contains(needle), "{needle:?} missing from: {err}");
    }
    Ok(())
}
