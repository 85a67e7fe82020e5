//! Harness for netwarden's end-to-end tests and benches: starts real peers (mosquitto,
//! mosquitto_sub, nfcapd, the `netwarden` binary) on loopback ports, replays capture files of
//! export datagrams over UDP, and cleans everything up on drop.
//!
//! Every peer binds 127.0.0.1 only, and every replay is bounded by the capture's length.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use netwarden_firmware::wire::{udp_datagram, LinkType};

pub mod fleet;

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A fixture under tests/data.
pub fn fixture(rel: &str) -> PathBuf {
    repo_root().join("tests/data").join(rel)
}

/// The `netwarden` binary: `$NETWARDEN_BIN`, else the workspace's debug build.
pub fn netwarden_bin() -> anyhow::Result<PathBuf> {
    if let Some(p) = std::env::var_os("NETWARDEN_BIN") {
        return Ok(PathBuf::from(p));
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"));
    let bin = target.join("debug/netwarden");
    if !bin.is_file() {
        bail!(
            "{} not found: run `cargo build -p netwarden` first (or set NETWARDEN_BIN)",
            bin.display()
        );
    }
    Ok(bin)
}

/// Whether an external tool is installed; tests that need one fail with a clear message.
pub fn require(tool: &str) -> anyhow::Result<()> {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|d| d.join(tool).is_file()))
        .unwrap_or(false);
    if !found {
        bail!("{tool} is not installed; run scripts/test.sh (it installs the test peers)");
    }
    Ok(())
}

pub fn free_tcp_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

pub fn free_udp_port() -> anyhow::Result<u16> {
    Ok(UdpSocket::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Reads `mosquitto_sub -v` output (`topic payload` per line) on a thread into a shared list.
pub fn collect_topic_lines(out: std::process::ChildStdout) -> Arc<Mutex<Vec<(String, String)>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if let Some((t, p)) = line.split_once(' ') {
                if let Ok(mut l) = sink.lock() {
                    l.push((t.to_string(), p.to_string()));
                }
            }
        }
    });
    lines
}

/// Polls `f` every 50 ms until it returns `Some`, or fails after `timeout` saying `what`.
pub fn wait_for<T>(
    timeout: Duration,
    what: &str,
    mut f: impl FnMut() -> Option<T>,
) -> anyhow::Result<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return Ok(v);
        }
        if start.elapsed() > timeout {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A child process killed (SIGTERM, then SIGKILL) on drop.
#[derive(Debug)]
pub struct Proc {
    pub child: Child,
    pub name: String,
}

impl Proc {
    pub fn spawn(name: &str, cmd: &mut Command) -> anyhow::Result<Proc> {
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start {name}"))?;
        Ok(Proc {
            child,
            name: name.to_string(),
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM and wait up to `grace`; then SIGKILL. Returns whether it exited on its own.
    pub fn terminate(&mut self, grace: Duration) -> bool {
        if let Ok(Some(_)) = self.child.try_wait() {
            return true;
        }
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status();
        let start = Instant::now();
        while start.elapsed() < grace {
            if let Ok(Some(_)) = self.child.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        false
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.terminate(Duration::from_secs(3));
    }
}

/// A mosquitto broker on a free loopback port with its own config.
#[derive(Debug)]
pub struct Mosquitto {
    pub port: u16,
    _dir: tempdir::Dir,
    _proc: Proc,
}

impl Mosquitto {
    pub fn start() -> anyhow::Result<Mosquitto> {
        require("mosquitto")?;
        let dir = tempdir::Dir::new("mosquitto")?;
        let port = free_tcp_port()?;
        let conf = dir.path().join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"),
        )?;
        let proc = Proc::spawn(
            "mosquitto",
            Command::new("mosquitto")
                .arg("-c")
                .arg(&conf)
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        )?;
        wait_for(Duration::from_secs(10), "mosquitto to listen", || {
            TcpStream::connect(("127.0.0.1", port)).ok()
        })?;
        Ok(Mosquitto {
            port,
            _dir: dir,
            _proc: proc,
        })
    }
}

/// `mosquitto_sub -v` collecting `(topic, payload)` lines.
#[derive(Debug)]
pub struct Subscriber {
    lines: Arc<Mutex<Vec<(String, String)>>>,
    _proc: Proc,
}

impl Subscriber {
    pub fn start(port: u16, topic: &str) -> anyhow::Result<Subscriber> {
        require("mosquitto_sub")?;
        let mut proc = Proc::spawn(
            "mosquitto_sub",
            Command::new("mosquitto_sub")
                .args([
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &port.to_string(),
                    "-q",
                    "1",
                    "-v",
                    "-t",
                    topic,
                ])
                .stdout(Stdio::piped())
                .stderr(Stdio::null()),
        )?;
        let out = proc.child.stdout.take().context("mosquitto_sub stdout")?;
        let lines = collect_topic_lines(out);
        // mosquitto_sub has no "subscribed" signal; give it a moment to send SUBSCRIBE.
        std::thread::sleep(Duration::from_millis(300));
        Ok(Subscriber { lines, _proc: proc })
    }

    pub fn messages(&self) -> Vec<(String, String)> {
        self.lines.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

/// A running `netwarden run`.
#[derive(Debug)]
pub struct Gateway {
    pub netflow: SocketAddr,
    pub data_dir: PathBuf,
    pub proc: Proc,
    _dir: tempdir::Dir,
}

impl Gateway {
    /// Starts netwarden on a free port with `extra` flags; waits until its first stats.json.
    pub fn start(extra: &[&str]) -> anyhow::Result<Gateway> {
        Gateway::start_in(tempdir::Dir::new("netwarden")?, extra)
    }

    /// Like [`Gateway::start`], with state in `dir/data` (which the test may have prepared).
    pub fn start_in(dir: tempdir::Dir, extra: &[&str]) -> anyhow::Result<Gateway> {
        let data_dir = dir.path().join("data");
        let port = free_udp_port()?;
        let netflow: SocketAddr = ([127, 0, 0, 1], port).into();
        let log = std::fs::File::create(dir.path().join("netwarden.log"))?;
        // The HTTP API defaults to 127.0.0.1:8080, which parallel tests would fight over:
        // unless the test chose an address (flag or `[http]` in its config), take a free port.
        let config_sets_http = extra
            .iter()
            .position(|a| *a == "--config")
            .and_then(|i| extra.get(i + 1))
            .and_then(|p| std::fs::read_to_string(p).ok())
            .is_some_and(|c| c.contains("[http]"));
        let http: &[&str] = if extra.contains(&"--http-listen") || config_sets_http {
            &[]
        } else {
            &["--http-listen", "127.0.0.1:0"]
        };
        // Tests judge with the shipped thresholds unless they ask for a learning period.
        let config_learns = extra
            .iter()
            .position(|a| *a == "--config")
            .and_then(|i| extra.get(i + 1))
            .and_then(|p| std::fs::read_to_string(p).ok())
            .is_some_and(|c| c.contains("[learning]"));
        let learn: &[&str] = if extra.contains(&"--learn") || config_learns {
            &[]
        } else {
            &["--learn", "off"]
        };
        let proc = Proc::spawn(
            "netwarden",
            Command::new(netwarden_bin()?)
                .arg("run")
                .args(learn)
                .args(["--netflow-listen", &netflow.to_string()])
                .arg("--data-dir")
                .arg(&data_dir)
                .args(http)
                .args(extra)
                .env("NETWARDEN_LOG", "info")
                .stdout(Stdio::null())
                .stderr(log),
        )?;
        let gw = Gateway {
            netflow,
            data_dir,
            proc,
            _dir: dir,
        };
        wait_for(
            Duration::from_secs(30),
            "netwarden to start (stats.json)",
            || gw.stats().ok(),
        )?;
        Ok(gw)
    }

    pub fn stats(&self) -> anyhow::Result<serde_json::Value> {
        let text = std::fs::read_to_string(self.data_dir.join("stats.json"))?;
        Ok(serde_json::from_str(&text)?)
    }

    /// Stops the daemon (SIGTERM) and hands back its directory, state kept, for a restart
    /// with [`gateway_in`].
    pub fn stop_keeping_dir(self) -> tempdir::Dir {
        let Gateway { mut proc, _dir, .. } = self;
        proc.terminate(Duration::from_secs(10));
        _dir
    }

    /// The daemon's log so far (for assertion messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("netwarden.log")).unwrap_or_default()
    }

    /// Waits until stats.json shows `records` decoded in total (or fails with the stats).
    pub fn wait_records(
        &self,
        records: u64,
        timeout: Duration,
    ) -> anyhow::Result<serde_json::Value> {
        wait_for(timeout, &format!("{records} records decoded"), || {
            let s = self.stats().ok()?;
            (s["netflow_totals"]["records"].as_u64()? >= records).then_some(s)
        })
        .with_context(|| {
            format!(
                "last stats: {}",
                self.stats().map(|s| s.to_string()).unwrap_or_default()
            )
        })
    }
}

/// UDP payloads of a capture file, in order.
pub fn capture_payloads(path: &Path) -> anyhow::Result<Vec<Vec<u8>>> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut reader = pcap_file::pcap::PcapReader::new(file)
        .with_context(|| format!("{} is not a pcap", path.display()))?;
    let link = LinkType::from_pcap(u32::from(reader.header().datalink))
        .context("unsupported link type")?;
    let mut out = Vec::new();
    while let Some(p) = reader.next_packet() {
        let p = p?;
        if let Ok(d) = udp_datagram(link, &p.data) {
            out.push(d.payload.to_vec());
        }
    }
    Ok(out)
}

/// Sends datagrams from one socket (one exporter), pausing `gap` every `every` datagrams.
pub fn replay(
    payloads: &[Vec<u8>],
    from: &UdpSocket,
    to: SocketAddr,
    every: usize,
    gap: Duration,
) -> anyhow::Result<()> {
    for (i, p) in payloads.iter().enumerate() {
        from.send_to(p, to)?;
        if every > 0 && (i + 1) % every == 0 {
            std::thread::sleep(gap);
        }
    }
    Ok(())
}

/// Flow records nfdump's nfcapd decodes from the same datagrams (reference decoder).
pub fn nfcapd_records(payloads: &[Vec<u8>]) -> anyhow::Result<u64> {
    require("nfcapd")?;
    require("nfdump")?;
    let dir = tempdir::Dir::new("nfcapd")?;
    let port = free_udp_port()?;
    let mut proc = Proc::spawn(
        "nfcapd",
        Command::new("nfcapd")
            .arg("-w")
            .arg(dir.path())
            .args(["-b", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )?;
    std::thread::sleep(Duration::from_millis(500));
    let sock = UdpSocket::bind("127.0.0.1:0")?;
    replay(
        payloads,
        &sock,
        ([127, 0, 0, 1], port).into(),
        8,
        Duration::from_millis(2),
    )?;
    std::thread::sleep(Duration::from_millis(500));
    // nfcapd writes its file on SIGTERM.
    if !proc.terminate(Duration::from_secs(10)) {
        bail!("nfcapd did not stop on SIGTERM");
    }
    let out = Command::new("nfdump")
        .arg("-R")
        .arg(dir.path())
        .arg("-I")
        .output()?;
    if !out.status.success() {
        bail!("nfdump failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    // `-I` prints the collected statistics, among them a line "Flows: N".
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("Flows:")
                .and_then(|v| v.trim().parse().ok())
        })
        .with_context(|| format!("no Flows: line in nfdump -I output:\n{text}"))
}

/// A tiny self-deleting temporary directory (keeps the harness dependency-free).
pub mod tempdir {
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicU64, Ordering};

    static NEXT: AtomicU64 = AtomicU64::new(0);

    #[derive(Debug)]
    pub struct Dir(PathBuf);

    impl Dir {
        pub fn new(prefix: &str) -> std::io::Result<Dir> {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let p = std::env::temp_dir().join(format!("nw-{prefix}-{}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p)?;
            Ok(Dir(p))
        }

        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            if std::env::var_os("NW_KEEP_TMP").is_none() {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }
}

/// A network namespace joined to the root namespace by a veth pair with a private /30, removed
/// (with its veth) on drop, even when the test panics. Needs root (`ip netns`).
#[derive(Debug)]
pub struct Netns {
    pub name: String,
    /// The veth end in the root namespace, and the one inside the namespace.
    pub host_if: String,
    pub ns_if: String,
    pub host_addr: std::net::Ipv4Addr,
    pub ns_addr: std::net::Ipv4Addr,
}

static NETNS_SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

fn ip(args: &[&str]) -> anyhow::Result<()> {
    run_ok("ip", args)
}

/// Runs `prog args` to completion; an error (with its stderr) unless it exited 0.
pub fn run_ok(prog: &str, args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new(prog)
        .args(args)
        .output()
        .with_context(|| format!("cannot run {prog}"))?;
    if !out.status.success() {
        bail!(
            "{prog} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Runs `cmd` to completion; its stdout then stderr, or an error naming `what` with them.
pub fn output_ok(cmd: &mut Command, what: &str) -> anyhow::Result<String> {
    let out = cmd.output().with_context(|| format!("cannot run {what}"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() {
        bail!("{what}: {text}");
    }
    Ok(text)
}

/// Whether the tests run as root (namespaces, raw capture).
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// `argv` to run inside namespace `ns` (`ip netns exec`).
pub fn netns_command(ns: &str, argv: &[&str]) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns]).args(argv);
    c
}

/// Runs `argv` inside namespace `ns` to completion; its stdout, or an error with its stderr.
pub fn netns_exec_ok(ns: &str, argv: &[&str]) -> anyhow::Result<String> {
    let out = netns_command(ns, argv).output()?;
    if !out.status.success() {
        bail!(
            "in {ns}: {}: {}",
            argv.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Kills whatever still runs inside namespace `name` (servers, attack tools) and deletes it;
/// for Drop impls, so errors are ignored.
pub fn remove_netns(name: &str) {
    if let Ok(out) = Command::new("ip").args(["netns", "pids", name]).output() {
        for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            let _ = Command::new("kill").args(["-9", pid]).status();
        }
    }
    let _ = ip(&["netns", "del", name]);
}

impl Netns {
    /// Creates `nw<pid>-<n>` with veth `nw<pid>h<n>` (root) / `nw<pid>n<n>` (inside), IPv6 off
    /// on both ends so router solicitations do not move the counters.
    pub fn create() -> anyhow::Result<Netns> {
        require("ip")?;
        let n = NETNS_SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let pid = std::process::id() % 100_000;
        let octet = ((pid * 7 + n * 13) % 250) as u8;
        let ns = Netns {
            name: format!("nw{pid}-{n}"),
            host_if: format!("nw{pid}h{n}"),
            ns_if: format!("nw{pid}n{n}"),
            host_addr: std::net::Ipv4Addr::new(10, 214, octet, 1),
            ns_addr: std::net::Ipv4Addr::new(10, 214, octet, 2),
        };
        let _ = ip(&["netns", "del", &ns.name]);
        ip(&["netns", "add", &ns.name])?;
        // From here on Drop cleans up.
        ns.exec_ok(&["ip", "link", "set", "lo", "up"])?;
        ns.add_link()?;
        Ok(ns)
    }

    fn add_link(&self) -> anyhow::Result<()> {
        ip(&[
            "link",
            "add",
            &self.host_if,
            "type",
            "veth",
            "peer",
            "name",
            &self.ns_if,
            "netns",
            &self.name,
        ])?;
        let _ = Command::new("sysctl")
            .args([
                "-qw",
                &format!("net.ipv6.conf.{}.disable_ipv6=1", self.host_if),
            ])
            .status();
        self.exec_ok(&[
            "sysctl",
            "-qw",
            &format!("net.ipv6.conf.{}.disable_ipv6=1", self.ns_if),
        ])?;
        ip(&[
            "addr",
            "add",
            &format!("{}/30", self.host_addr),
            "dev",
            &self.host_if,
        ])?;
        ip(&["link", "set", &self.host_if, "up"])?;
        self.exec_ok(&[
            "ip",
            "addr",
            "add",
            &format!("{}/30", self.ns_addr),
            "dev",
            &self.ns_if,
        ])?;
        self.exec_ok(&["ip", "link", "set", &self.ns_if, "up"])?;
        Ok(())
    }

    /// Deletes and re-creates the veth pair: the interface inside keeps its name but gets a
    /// new ifIndex and counters from zero (what a router reboot looks like).
    pub fn recreate_link(&self) -> anyhow::Result<()> {
        ip(&["link", "del", &self.host_if])?;
        self.add_link()
    }

    /// `ip netns exec <ns> <argv...>` as a Command to add to.
    pub fn command(&self, argv: &[&str]) -> Command {
        netns_command(&self.name, argv)
    }

    fn exec_ok(&self, argv: &[&str]) -> anyhow::Result<()> {
        netns_exec_ok(&self.name, argv).map(drop)
    }

    /// Sends `count` UDP datagrams of `payload` bytes from the root namespace to the discard
    /// port inside, pausing 1 ms every 50. Returns the L2 octets the inside interface receives
    /// for them (Ethernet 14 + IPv4 20 + UDP 8 + payload each).
    pub fn send_udp(&self, count: usize, payload: usize) -> anyhow::Result<u64> {
        let sock = UdpSocket::bind((self.host_addr, 0))?;
        let buf = vec![0x5au8; payload];
        for i in 0..count {
            sock.send_to(&buf, (self.ns_addr, 9))?;
            if (i + 1) % 50 == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        Ok(count as u64 * (payload as u64 + 42))
    }

    /// Starts `ping` from the root namespace to the inside address: `per_sec` echo requests of
    /// `size` bytes per second, each answered, so both directions of the inside interface carry
    /// a steady load. Bounded by `count` and `deadline_s`; killed on drop.
    pub fn ping_load(
        &self,
        per_sec: u32,
        size: u32,
        count: u32,
        deadline_s: u32,
    ) -> anyhow::Result<Proc> {
        require("ping")?;
        let interval = format!("{:.3}", 1.0 / f64::from(per_sec.max(1)));
        Proc::spawn(
            "ping",
            Command::new("ping")
                .args(["-q", "-n", "-i", &interval, "-s", &size.to_string()])
                .args(["-c", &count.to_string(), "-w", &deadline_s.to_string()])
                .args(["-I", &self.host_if])
                .arg(self.ns_addr.to_string())
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        )
    }

    /// The inside interface's ifIndex (what the agent inside reports).
    pub fn ns_if_index(&self) -> anyhow::Result<u32> {
        let out = self
            .command(&["cat", &format!("/sys/class/net/{}/ifindex", self.ns_if)])
            .output()?;
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .context("ifindex")
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = ip(&["link", "del", &self.host_if]);
        let _ = ip(&["netns", "del", &self.name]);
    }
}

/// net-snmp's snmpd on `addr` (optionally inside a namespace) with its own config: community
/// `nwtest` and the SNMPv3 authPriv user `nwuser` (SHA/AES, passwords below), a persistent
/// directory in its temporary directory, MIB loading off (Debian ships no IF-MIB anyway).
#[derive(Debug)]
pub struct Snmpd {
    pub addr: SocketAddr,
    dir: tempdir::Dir,
    proc: Option<Proc>,
    netns: Option<String>,
}

pub const SNMP_COMMUNITY: &str = "nwtest";
pub const SNMP_USER: &str = "nwuser";
pub const SNMP_AUTH_PASSWORD: &str = "nw-auth-pass";
pub const SNMP_PRIV_PASSWORD: &str = "nw-priv-pass";
/// Further SNMPv3 users of [`Snmpd`]: (user, net-snmp auth protocol, privacy protocol or none
/// for authNoPriv), all with the passwords above.
pub const SNMP_V3_MATRIX: &[(&str, &str, Option<&str>)] = &[
    ("nw-md5-des", "MD5", Some("DES")),
    ("nw-sha224-auth", "SHA-224", None),
    ("nw-sha256-aes", "SHA-256", Some("AES")),
    ("nw-sha384-aes192", "SHA-384", Some("AES-192")),
    ("nw-sha512-aes256", "SHA-512", Some("AES-256")),
    ("nw-sha-aes256", "SHA", Some("AES-256")),
];

impl Snmpd {
    /// Starts snmpd on `ip:port` (inside `netns` when given) and waits until it answers.
    pub fn start(
        netns: Option<&Netns>,
        ip: std::net::Ipv4Addr,
        port: u16,
    ) -> anyhow::Result<Snmpd> {
        require("snmpd")?;
        require("snmpget")?;
        let dir = tempdir::Dir::new("snmpd")?;
        let mut d = Snmpd {
            addr: (ip, port).into(),
            dir,
            proc: None,
            netns: netns.map(|n| n.name.clone()),
        };
        d.launch(1)?;
        Ok(d)
    }

    fn launch(&mut self, generation: u32) -> anyhow::Result<()> {
        let conf = self.dir.path().join("snmpd.conf");
        // A distinct engineID per generation: a restart with a new one is an engine change.
        std::fs::write(
            &conf,
            format!(
                "rocommunity {SNMP_COMMUNITY} default\n\
                 createUser {SNMP_USER} SHA \"{SNMP_AUTH_PASSWORD}\" AES \"{SNMP_PRIV_PASSWORD}\"\n\
                 rouser {SNMP_USER} priv\n\
                 {}\
                 engineID nwtest-{}-{generation}\n",
                SNMP_V3_MATRIX
                    .iter()
                    .map(|(user, auth, privacy)| match privacy {
                        Some(p) => format!(
                            "createUser {user} {auth} \"{SNMP_AUTH_PASSWORD}\" {p} \"{SNMP_PRIV_PASSWORD}\"\n\
                             rouser {user} priv\n"
                        ),
                        None => format!(
                            "createUser {user} {auth} \"{SNMP_AUTH_PASSWORD}\"\nrouser {user} auth\n"
                        ),
                    })
                    .collect::<String>(),
                std::process::id()
            ),
        )?;
        let persist = self.dir.path().join("persist");
        let _ = std::fs::remove_dir_all(&persist);
        std::fs::create_dir_all(&persist)?;
        let log = std::fs::File::create(self.dir.path().join(format!("snmpd-{generation}.log")))?;
        let argv = [
            "snmpd",
            "-f",
            "-Lo",
            "-C",
            "-r",
            "-c",
            conf.to_str().context("temp path is not UTF-8")?,
            &format!("udp:{}", self.addr),
        ];
        let mut cmd = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).args(argv);
                c
            }
            None => {
                let mut c = Command::new(argv[0]);
                c.args(&argv[1..]);
                c
            }
        };
        cmd.env("SNMP_PERSISTENT_DIR", &persist)
            .env("MIBS", "")
            .env("MIBDIRS", self.dir.path())
            .stdout(log.try_clone()?)
            .stderr(log);
        self.proc = Some(Proc::spawn("snmpd", &mut cmd)?);
        let addr = self.addr.to_string();
        wait_for(Duration::from_secs(10), "snmpd to answer", || {
            let out = Command::new("snmpget")
                .args(["-v2c", "-c", SNMP_COMMUNITY, "-r0", "-t0.3", "-On", &addr])
                .arg("1.3.6.1.2.1.1.3.0")
                .env("MIBS", "")
                .env("MIBDIRS", self.dir.path())
                .output()
                .ok()?;
            out.status.success().then_some(())
        })
        .with_context(|| format!("snmpd log: {}", self.log()))
    }

    /// Stops snmpd (SIGTERM).
    pub fn stop(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.terminate(Duration::from_secs(5));
        }
    }

    /// Starts it again with a new engineID and an empty persistent directory.
    pub fn restart(&mut self, generation: u32) -> anyhow::Result<()> {
        self.stop();
        self.launch(generation)
    }

    pub fn log(&self) -> String {
        let mut out = String::new();
        for g in 1..10 {
            if let Ok(s) = std::fs::read_to_string(self.dir.path().join(format!("snmpd-{g}.log"))) {
                out.push_str(&s);
            }
        }
        out
    }
}

impl Drop for Snmpd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Writes `config` to `dir/netwarden.toml` and starts `netwarden run --config` on it with its
/// state in `dir/data` (which the test may have prepared); the gateway owns `dir` from then on.
pub fn gateway_in(dir: tempdir::Dir, config: &str, extra: &[&str]) -> anyhow::Result<Gateway> {
    let path = dir.path().join("netwarden.toml");
    std::fs::write(&path, config)?;
    let path = path.to_str().context("temp path is not UTF-8")?.to_string();
    let mut args = vec!["--config", path.as_str()];
    args.extend_from_slice(extra);
    Gateway::start_in(dir, &args)
}

/// Writes `config` to a file in `dir` and starts `netwarden run --config` on it.
pub fn gateway_with_config(
    dir: &tempdir::Dir,
    config: &str,
    extra: &[&str],
) -> anyhow::Result<Gateway> {
    let path = dir.path().join("netwarden.toml");
    std::fs::write(&path, config)?;
    let path = path.to_str().context("temp path is not UTF-8")?.to_string();
    let mut args = vec!["--config", path.as_str()];
    args.extend_from_slice(extra);
    Gateway::start(&args)
}

/// A mosquitto that a test can kill (SIGKILL) and start again on the same port and
/// configuration (e.g. with persistence, so persistent subscriber sessions survive).
#[derive(Debug)]
pub struct Broker {
    pub port: u16,
    pub dir: tempdir::Dir,
    conf: PathBuf,
    proc: Option<Proc>,
    pub starts: u32,
}

impl Broker {
    /// Starts mosquitto with `listener PORT 127.0.0.1` followed by `config` (which may use
    /// `{dir}` for the broker's own directory).
    pub fn start(config: &str) -> anyhow::Result<Broker> {
        require("mosquitto")?;
        let dir = tempdir::Dir::new("broker")?;
        let port = free_tcp_port()?;
        // mosquitto started as root drops to the `mosquitto` user: let it write its
        // persistence file here.
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777))?;
        }
        let conf = dir.path().join("mosquitto.conf");
        let body = config.replace("{dir}", &dir.path().display().to_string());
        std::fs::write(&conf, format!("listener {port} 127.0.0.1\n{body}\n"))?;
        let mut b = Broker {
            port,
            dir,
            conf,
            proc: None,
            starts: 0,
        };
        b.up()?;
        Ok(b)
    }

    /// Starts it again (after [`Broker::kill`]); waits until it listens.
    pub fn up(&mut self) -> anyhow::Result<()> {
        if self.proc.is_some() {
            return Ok(());
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("mosquitto.log"))?;
        let proc = Proc::spawn(
            "mosquitto",
            Command::new("mosquitto")
                .arg("-c")
                .arg(&self.conf)
                .stdout(Stdio::null())
                .stderr(log),
        )?;
        self.proc = Some(proc);
        self.starts += 1;
        let port = self.port;
        wait_for(Duration::from_secs(10), "mosquitto to listen", || {
            TcpStream::connect(("127.0.0.1", port)).ok()
        })
        .with_context(|| self.log())?;
        Ok(())
    }

    /// SIGKILL, no goodbye to anyone.
    pub fn kill(&mut self) {
        if let Some(mut p) = self.proc.take() {
            let _ = p.child.kill();
            let _ = p.child.wait();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("mosquitto.log")).unwrap_or_default()
    }
}

/// One NetFlow v5 datagram with `hosts` flows, one from each source host `first_host..`
/// (10.x.y.z), each a short burst of tiny SYN-heavy packets to a distinct port: the built-in
/// model finds every one anomalous, so each host raises one alert.
pub fn v5_alert_datagram(first_host: u32, hosts: u16, seq: u32) -> Vec<u8> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as u32)
        .unwrap_or(0);
    let up: u32 = 100_000_000;
    let mut d = Vec::with_capacity(24 + 48 * hosts as usize);
    d.extend_from_slice(&5u16.to_be_bytes());
    d.extend_from_slice(&hosts.to_be_bytes());
    d.extend_from_slice(&up.to_be_bytes());
    d.extend_from_slice(&now.to_be_bytes());
    d.extend_from_slice(&0u32.to_be_bytes());
    d.extend_from_slice(&seq.to_be_bytes());
    d.extend_from_slice(&[0; 4]);
    for k in 0..hosts as u32 {
        let host = first_host + k;
        d.extend_from_slice(&[10, (host >> 16) as u8, (host >> 8) as u8, host as u8]);
        d.extend_from_slice(&[192, 168, (host >> 8) as u8, host as u8]);
        d.extend_from_slice(&[0; 8]);
        d.extend_from_slice(&(1 + host % 20).to_be_bytes());
        d.extend_from_slice(&(64 + 100 * (host % 20)).to_be_bytes());
        d.extend_from_slice(&(up - 5_000).to_be_bytes());
        d.extend_from_slice(&(up - 100).to_be_bytes());
        d.extend_from_slice(&(1024 + (host % 50_000) as u16).to_be_bytes());
        d.extend_from_slice(&[0, 80 + (host % 3) as u8]);
        d.extend_from_slice(&[0, 0x1b, 6, 0]);
        d.extend_from_slice(&[0; 8]);
    }
    d
}
