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
        let lines = Arc::new(Mutex::new(Vec::new()));
        let out = proc.child.stdout.take().context("mosquitto_sub stdout")?;
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
        let dir = tempdir::Dir::new("netwarden")?;
        let data_dir = dir.path().join("data");
        let port = free_udp_port()?;
        let netflow: SocketAddr = ([127, 0, 0, 1], port).into();
        let log = std::fs::File::create(dir.path().join("netwarden.log"))?;
        let proc = Proc::spawn(
            "netwarden",
            Command::new(netwarden_bin()?)
                .arg("run")
                .args(["--netflow-listen", &netflow.to_string()])
                .arg("--data-dir")
                .arg(&data_dir)
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
