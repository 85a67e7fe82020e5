//! `netwarden fleet collect --mqtt URL --out DIR`: the central end of the fleet. Subscribes to
//! every site's alerts and EVE window results (QoS 1, a persistent session under a fixed
//! client id, so the broker keeps what arrives while the collector is down) and writes them as
//! rolling JSON-lines files that Spark's file source reads as a stream (docs/fleet-analytics.md).
//!
//! At least once: a message is acknowledged to the broker only after its line is written and
//! the file synced; a crash before that makes the broker send it again (the alert's `id` is
//! kept, so readers drop the repeat). Spark must never see a file still being written, so lines
//! go to `DIR/.inflight/` and a file is renamed into `DIR/<kind>/` when it rolls (by lines or
//! age) or the collector stops; files left in `.inflight/` by a crash are moved on the next
//! start (cut after their last complete line).
//!
//! Each line is the message's JSON object with `_topic` and `_received_ms` added.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use rumqttc::{Client, Event, MqttOptions, Packet, QoS};

/// `netwarden fleet collect` (a variant of `cli::fleet::FleetCommand`).
#[derive(Debug, Args)]
pub struct CollectArgs {
    /// Broker, e.g. mqtt://broker.example:1883.
    #[arg(long, value_name = "URL")]
    pub mqtt: String,
    /// Output directory: `alerts/`, `windows/`, `other/` hold the finished files.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Topic filters (repeatable) [default: netwarden/+/+/alerts/#, netwarden/+/+/eve/windows/#].
    #[arg(long = "topic", value_name = "FILTER")]
    pub topics: Vec<String>,
    /// MQTT client id; the broker keeps this session's messages while the collector is down.
    #[arg(long, default_value = "netwarden-fleet-collect")]
    pub client_id: String,
    /// A file is finished after this many lines.
    #[arg(long, default_value_t = 10_000)]
    pub roll_lines: usize,
    /// ... or this many seconds after its first line.
    #[arg(long, default_value_t = 60)]
    pub roll_secs: u64,
    /// Stop after this many seconds (tests); default: until SIGINT/SIGTERM.
    #[arg(long)]
    pub duration_secs: Option<u64>,
}

/// Which folder a topic's messages go to.
pub fn kind_of(topic: &str) -> &'static str {
    if topic.contains("/alerts/") {
        "alerts"
    } else if topic.contains("/eve/windows/") {
        "windows"
    } else {
        "other"
    }
}

/// The line written for a message: its JSON object plus `_topic` and `_received_ms` (a payload
/// that is not a JSON object is kept as text in `_raw`).
pub fn line_for(topic: &str, payload: &[u8], received_ms: u64) -> String {
    let mut obj = match serde_json::from_slice::<serde_json::Value>(payload) {
        Ok(serde_json::Value::Object(m)) => m,
        _ => {
            let mut m = serde_json::Map::new();
            m.insert(
                "_raw".into(),
                String::from_utf8_lossy(payload).into_owned().into(),
            );
            m
        }
    };
    obj.insert("_topic".into(), topic.into());
    obj.insert("_received_ms".into(), received_ms.into());
    serde_json::Value::Object(obj).to_string()
}

#[derive(Debug)]
struct Part {
    tmp: PathBuf,
    out: BufWriter<File>,
    lines: usize,
    opened: Instant,
}

/// Rolling JSON-lines files per kind; see the module comment.
#[derive(Debug)]
pub struct RollingWriter {
    dir: PathBuf,
    roll_lines: usize,
    roll_age: Duration,
    parts: BTreeMap<&'static str, Part>,
    seq: u64,
}

impl RollingWriter {
    /// Opens `dir`, first finishing files a crash left in `.inflight/`.
    pub fn open(dir: &Path, roll_lines: usize, roll_age: Duration) -> anyhow::Result<Self> {
        let inflight = dir.join(".inflight");
        std::fs::create_dir_all(&inflight)
            .with_context(|| format!("cannot create {}", inflight.display()))?;
        for entry in std::fs::read_dir(&inflight)? {
            let p = entry?.path();
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            let kind = ["alerts", "windows", "other"]
                .into_iter()
                .find(|k| name.starts_with(&format!("{k}-")))
                .unwrap_or("other");
            let mut text = Vec::new();
            File::open(&p)?.read_to_end(&mut text)?;
            let keep = text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            if keep > 0 {
                let f = std::fs::OpenOptions::new().write(true).open(&p)?;
                f.set_len(keep as u64)?;
                f.sync_all()?;
                let dest = dir.join(kind);
                std::fs::create_dir_all(&dest)?;
                std::fs::rename(&p, dest.join(name))?;
            } else {
                std::fs::remove_file(&p)?;
            }
        }
        Ok(RollingWriter {
            dir: dir.to_path_buf(),
            roll_lines: roll_lines.max(1),
            roll_age,
            parts: BTreeMap::new(),
            seq: 0,
        })
    }

    /// Appends a line (not yet synced).
    pub fn write(&mut self, kind: &'static str, line: &str) -> anyhow::Result<()> {
        if !self.parts.contains_key(kind) {
            self.seq += 1;
            let name = format!(
                "{kind}-{}-{}-{}.jsonl",
                crate::now_ms(),
                std::process::id(),
                self.seq
            );
            let tmp = self.dir.join(".inflight").join(name);
            let out = BufWriter::new(File::create(&tmp)?);
            self.parts.insert(
                kind,
                Part {
                    tmp,
                    out,
                    lines: 0,
                    opened: Instant::now(),
                },
            );
        }
        let part = self.parts.get_mut(kind).context("part")?;
        part.out.write_all(line.as_bytes())?;
        part.out.write_all(b"\n")?;
        part.lines += 1;
        Ok(())
    }

    /// Makes every written line durable; finishes the files that are due (or all with `all`).
    pub fn sync(&mut self, all: bool) -> anyhow::Result<()> {
        let mut due = Vec::new();
        for (kind, part) in &mut self.parts {
            part.out.flush()?;
            part.out.get_ref().sync_data()?;
            if all || part.lines >= self.roll_lines || part.opened.elapsed() >= self.roll_age {
                due.push(*kind);
            }
        }
        for kind in due {
            if let Some(part) = self.parts.remove(kind) {
                let dest = self.dir.join(kind);
                std::fs::create_dir_all(&dest)?;
                let name = part.tmp.file_name().context("name")?.to_owned();
                drop(part.out);
                std::fs::rename(&part.tmp, dest.join(name))?;
            }
        }
        Ok(())
    }
}

pub fn collect(a: CollectArgs) -> anyhow::Result<ExitCode> {
    let url = url::Url::parse(&a.mqtt).with_context(|| format!("{:?} is not a URL", a.mqtt))?;
    anyhow::ensure!(
        url.scheme() == "mqtt",
        "only mqtt:// is supported by fleet collect (got {})",
        url.scheme()
    );
    let host = url
        .host_str()
        .context("the MQTT URL has no host")?
        .to_string();
    let port = url.port().unwrap_or(1883);
    let mut opts = MqttOptions::new(&a.client_id, host, port);
    opts.set_clean_session(false)
        .set_manual_acks(true)
        .set_keep_alive(Duration::from_secs(30));
    if !url.username().is_empty() {
        opts.set_credentials(url.username(), url.password().unwrap_or_default());
    }
    let topics = if a.topics.is_empty() {
        vec![
            "netwarden/+/+/alerts/#".to_string(),
            "netwarden/+/+/eve/windows/#".to_string(),
        ]
    } else {
        a.topics.clone()
    };
    let mut writer = RollingWriter::open(&a.out, a.roll_lines, Duration::from_secs(a.roll_secs))?;
    let (client, mut conn) = Client::new(opts, 1024);
    let stop = Arc::new(AtomicBool::new(false));
    install_stop(stop.clone())?;
    let deadline = a
        .duration_secs
        .map(|s| Instant::now() + Duration::from_secs(s));
    let mut pending = Vec::new();
    let (mut written, mut last_sync) = (0u64, Instant::now());
    while !stop.load(Ordering::Relaxed) && deadline.is_none_or(|d| Instant::now() < d) {
        match conn.recv_timeout(Duration::from_millis(200)) {
            Ok(Ok(Event::Incoming(Packet::ConnAck(_)))) => {
                // A resumed session keeps its subscriptions; subscribing again is harmless.
                for t in &topics {
                    client.subscribe(t.as_str(), QoS::AtLeastOnce)?;
                }
                eprintln!(
                    "fleet collect: connected to {}, subscribed to {topics:?}",
                    a.mqtt
                );
            }
            Ok(Ok(Event::Incoming(Packet::Publish(p)))) => {
                let line = line_for(&p.topic, &p.payload, crate::now_ms());
                writer.write(kind_of(&p.topic), &line)?;
                written += 1;
                pending.push(p);
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                eprintln!("fleet collect: connection error: {e}; retrying");
                std::thread::sleep(Duration::from_millis(500));
            }
            Err(_) => {} // timeout
        }
        if pending.len() >= 500 || last_sync.elapsed() >= Duration::from_millis(200) {
            writer.sync(false)?;
            for p in pending.drain(..) {
                client.ack(&p)?;
            }
            last_sync = Instant::now();
        }
    }
    writer.sync(true)?;
    for p in pending.drain(..) {
        let _ = client.ack(&p);
    }
    // Let the acknowledgements go out before disconnecting.
    let until = Instant::now() + Duration::from_millis(500);
    while Instant::now() < until {
        let _ = conn.recv_timeout(Duration::from_millis(50));
    }
    let _ = client.disconnect();
    eprintln!(
        "fleet collect: {written} messages written to {}",
        a.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// SIGINT/SIGTERM set `stop` (a small tokio runtime waits for them on its own thread).
fn install_stop(stop: Arc<AtomicBool>) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            rt.block_on(async move {
                use tokio::signal::unix::{signal, SignalKind};
                let Ok(mut term) = signal(SignalKind::terminate()) else {
                    return;
                };
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
                stop.store(true, Ordering::Relaxed);
            })
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_keep_the_payload_and_add_topic_and_time() {
        let l = line_for("netwarden/s/d/alerts/high", br#"{"id":"x","site":"s"}"#, 5);
        let v: serde_json::Value = serde_json::from_str(&l).expect("json");
        assert_eq!(v["id"], "x");
        assert_eq!(v["_topic"], "netwarden/s/d/alerts/high");
        assert_eq!(v["_received_ms"], 5);
        let raw: serde_json::Value =
            serde_json::from_str(&line_for("t", b"online", 1)).expect("json");
        assert_eq!(raw["_raw"], "online");
        assert_eq!(kind_of("netwarden/s/d/eve/windows/dhcp"), "windows");
    }

    #[test]
    fn files_appear_only_when_finished_and_a_crash_leftover_is_cut_and_moved() {
        let d = tempfile::tempdir().expect("dir");
        let mut w = RollingWriter::open(d.path(), 2, Duration::from_secs(3600)).expect("open");
        w.write("alerts", "{\"a\":1}").expect("write");
        w.sync(false).expect("sync");
        let listed = |k: &str| {
            std::fs::read_dir(d.path().join(k))
                .map(|r| r.count())
                .unwrap_or(0)
        };
        assert_eq!(listed("alerts"), 0, "one line: not finished");
        w.write("alerts", "{\"a\":2}").expect("write");
        w.sync(false).expect("sync");
        assert_eq!(listed("alerts"), 1, "two lines: rolled");
        // A crash leaves a half-written line in .inflight/.
        std::fs::write(
            d.path().join(".inflight/windows-1-1-1.jsonl"),
            "{\"w\":1}\n{\"w\":",
        )
        .expect("leftover");
        drop(w);
        let _w = RollingWriter::open(d.path(), 2, Duration::from_secs(1)).expect("reopen");
        let moved =
            std::fs::read_to_string(d.path().join("windows/windows-1-1-1.jsonl")).expect("moved");
        assert_eq!(moved, "{\"w\":1}\n");
    }
}
