//! The central site-model loop end to end (issue 18; docs/fleet.md, "Site models"), against a
//! real mosquitto: a fresh gateway learns on replayed lab NetFlow (tests/data/lab/small, a 60 s
//! learning period of event time), its learning state shows on the retained
//! `<prefix>/models/state`; `python -m netwarden_models site-loop` asks it for its samples over
//! MQTT (`netwarden samples fetch`: chunked, checksummed, acknowledged), fine-tunes the fleet
//! model on them (a few epochs), signs the bundle and `fleet publish --site`es it (the samples
//! over MQTT are checked byte for byte against `GET /samples`); the gateway
//! shadows it on the same traffic replayed later in event time and promotes it.

use std::net::UdpSocket;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use netwarden_e2e::fleet::states;
use netwarden_e2e::{capture_payloads, fixture, gateway_in, repo_root, tempdir, wait_for, Broker};

/// The lab run replayed `round` times 400 s later in event time: v9 headers carry the export
/// time (unix seconds at bytes 8..12) and flow times relative to it.
fn shifted(payloads: &[Vec<u8>], round: u32) -> Vec<Vec<u8>> {
    payloads
        .iter()
        .map(|p| {
            let mut p = p.clone();
            if p.len() >= 12 {
                let secs = u32::from_be_bytes([p[8], p[9], p[10], p[11]]);
                p[8..12].copy_from_slice(&secs.wrapping_add(round * 400).to_be_bytes());
            }
            p
        })
        .collect()
}

fn send(socket: &UdpSocket, to: std::net::SocketAddr, payloads: &[Vec<u8>]) {
    for (i, p) in payloads.iter().enumerate() {
        let _ = socket.send_to(p, to);
        if i % 20 == 19 {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

fn python() -> anyhow::Result<std::path::PathBuf> {
    let py = repo_root().join("models/.venv/bin/python");
    if !py.is_file() {
        bail!(
            "{} not found: run models/setup-venv.sh (scripts/test.sh does)",
            py.display()
        );
    }
    Ok(py)
}

fn models_cli(args: &[&str]) -> anyhow::Result<String> {
    netwarden_e2e::output_ok(
        Command::new(python()?)
            .args(["-m", "netwarden_models"])
            .args(args)
            .current_dir(repo_root().join("models"))
            .env("NETWARDEN_BIN", netwarden_e2e::netwarden_bin()?),
        &format!("netwarden_models {}", args.join(" ")),
    )
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// `GET /samples` with the bearer token: the body.
fn get_samples(port: u16, token: &str) -> anyhow::Result<Vec<u8>> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    write!(
        s,
        "GET /samples HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\
         Connection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("no HTTP header end")?;
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    if !head.starts_with("HTTP/1.1 200") {
        bail!("GET /samples: {head}");
    }
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        bail!("chunked response; expected a sized body: {head}");
    }
    Ok(raw[split + 4..].to_vec())
}

fn flow_state(port: u16) -> Option<serde_json::Value> {
    states(port, &[]).ok()?.remove("gw1")
}

#[test]
fn gateway_learns_central_loop_fetches_trains_publishes_and_gateway_promotes() -> anyhow::Result<()>
{
    let started = Instant::now();
    let broker = Broker::start("allow_anonymous true\npersistence false\n")?;
    let port = broker.port;
    let work = tempdir::Dir::new("site-models")?;
    let w = |name: &str| work.path().join(name);
    models_cli(&[
        "keygen",
        "--out",
        &w("keys/fleet").display().to_string(),
        "--quiet",
    ])?;
    let public = std::fs::read_to_string(w("keys/fleet.pub"))?;
    let http_port = netwarden_e2e::free_tcp_port()?;
    let token = "site-models-e2e-token-0123456789";
    std::fs::write(w("http.token"), format!("{token}\n"))?;
    let config = format!(
        "site = \"lab\"\ndevice = \"gw1\"\n[http]\nlisten = \"127.0.0.1:{http_port}\"\n\
         token_file = {:?}\n[mqtt]\nurl = \"mqtt://127.0.0.1:{port}\"\n\
         [bundles]\ntrusted_keys = [{:?}]\n[fleet]\nenabled = true\nshadow_secs = 0\n\
         watch_secs = 0\nmin_records = 300\nlatency_factor = 20\n\
         [learning]\nperiod = \"60s\"\n[samples]\nper_bucket = 2000\nbucket = \"1m\"\nmax_buckets = 8\n",
        w("http.token").display().to_string(),
        public.trim()
    );
    let gw = gateway_in(tempdir::Dir::new("site-gw")?, &config, &[])?;
    let lab = capture_payloads(&fixture("lab/small/netflow-v9.pcap"))?;
    let socket = UdpSocket::bind("127.0.0.1:0")?;

    // 1. Learn: the run once, then again 400 s later, which ends the 60 s period (and closes
    //    the reservoir's buckets, so they are stored).
    send(&socket, gw.netflow, &lab);
    send(&socket, gw.netflow, &shifted(&lab, 1));
    let learnt = wait_for(
        Duration::from_secs(60),
        "learning done on models/state",
        || {
            let s = flow_state(port)?;
            let l = s["learning"]
                .as_array()?
                .iter()
                .find(|l| l["detector"] == "flow_ae")?
                .clone();
            (l["phase"] == "done").then_some(l)
        },
    )
    .with_context(|| format!("state: {:?}\nlog: {}", flow_state(port), tail(&gw.log())))?;
    let fitted = learnt["fitted"]["threshold"].as_f64().unwrap_or(0.0);
    assert!(fitted > 0.0, "a fitted threshold on models/state: {learnt}");
    assert_eq!(learnt["progress"], 1.0, "{learnt}");

    // 2. The samples over MQTT are byte for byte what GET /samples serves (fetched before and
    //    after, in case the gateway stored its open bucket in between).
    let before = get_samples(http_port, token)?;
    let fetched = w("fetched.csv");
    let out = Command::new(netwarden_e2e::netwarden_bin()?)
        .args([
            "samples",
            "fetch",
            "--mqtt",
            &format!("mqtt://127.0.0.1:{port}"),
        ])
        .args([
            "--site",
            "lab",
            "--device",
            "gw1",
            "--chunk-bytes",
            "2048",
            "--window",
            "4",
        ])
        .arg("--out")
        .arg(&fetched)
        .output()?;
    let fetch_line = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "samples fetch: {fetch_line}");
    let after = get_samples(http_port, token)?;
    let over_mqtt = std::fs::read(&fetched)?;
    assert!(
        over_mqtt == before || over_mqtt == after,
        "MQTT {} bytes, HTTP {} / {} bytes; {fetch_line}",
        over_mqtt.len(),
        before.len(),
        after.len()
    );
    assert!(
        over_mqtt.len() > 100_000 && fetch_line.contains("SHA-256 checked"),
        "{fetch_line}"
    );

    // 3. Shadow traffic keeps coming while the central side works.
    let stop = Arc::new(AtomicBool::new(false));
    let traffic = {
        let (stop, to, lab) = (stop.clone(), gw.netflow, lab.clone());
        std::thread::spawn(move || {
            let socket = UdpSocket::bind("127.0.0.1:0").expect("socket");
            let t0 = Instant::now();
            let mut round = 2;
            while !stop.load(Ordering::Relaxed) && t0.elapsed() < Duration::from_secs(240) {
                send(&socket, to, &shifted(&lab, round));
                round += 1;
                std::thread::sleep(Duration::from_secs(3));
            }
        })
    };

    // 4. The central loop: fetch over MQTT, fine-tune, sign, publish to the site.
    std::fs::write(
        w("sites.toml"),
        format!(
            "sign_key = \"keys/fleet.key\"\nout = \"runs\"\n[broker]\n\
             mqtt = \"mqtt://127.0.0.1:{port}\"\nchunk_bytes = 4096\n[train]\nepochs = 5\nmode = \"finetune\"\n\
             device = \"cpu\"\n[[sites]]\nname = \"lab\"\nmqtt_device = \"gw1\"\n"
        ),
    )?;
    let t_loop = Instant::now();
    let loop_out = models_cli(&[
        "site-loop",
        "--sites",
        &w("sites.toml").display().to_string(),
    ]);
    let loop_s = t_loop.elapsed().as_secs_f64();
    let loop_out = loop_out.with_context(|| format!("gateway log: {}", tail(&gw.log())))?;
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(w("runs/loop.json"))?)?;
    let site = &report["sites"][0];
    assert_eq!(site["ok"], true, "{report}\n{loop_out}");
    assert_eq!(site["fetched_by"], "mqtt");
    let fetch_log = site["fetch_log"].as_str().unwrap_or("");
    assert!(fetch_log.contains("SHA-256 checked"), "{fetch_log}");
    let train = &site["train"];
    let rows = train["rows"].as_u64().unwrap_or(0);
    // Every stored row came over, as the CSV the gateway wrote (header + rows).
    let csv = std::fs::read_to_string(w("runs/lab/samples.csv"))?;
    assert_eq!(csv.lines().count() as u64, rows + 1);
    assert!(
        csv.starts_with("ts_ms,schema,bidirectional_packets,"),
        "{csv:.200}"
    );
    assert!(
        rows >= 1000,
        "the reservoir holds the replayed run's rows: {rows}"
    );
    assert_eq!(train["mode"], "finetune");
    assert_eq!(train["threshold"]["source"], "test");
    let version = train["version"].as_str().context("version")?.to_string();
    assert!(site["published"]
        .as_str()
        .is_some_and(|p| p.contains("netwarden/fleet/models/flow/site/lab")));
    let stats = gw.stats()?;
    assert!(
        stats["metrics"]["samples_requests"].as_u64() >= Some(1),
        "{stats}"
    );
    assert!(
        stats["metrics"]["samples_transfers_done"].as_u64() >= Some(1),
        "{stats}"
    );
    assert_eq!(stats["metrics"]["samples_messages_refused"], 0);

    // 5. The gateway verifies, shadows and promotes the site model.
    let state = wait_for(Duration::from_secs(90), "site model promoted", || {
        let s = flow_state(port)?;
        let f = s["detectors"]["flow"].clone();
        (f["active"] == version.as_str() && f["state"] == "active").then_some(f)
    })
    .with_context(|| format!("state: {:?}\nlog: {}", flow_state(port), tail(&gw.log())))?;
    stop.store(true, Ordering::Relaxed);
    let _ = traffic.join();
    let history: Vec<&str> = state["history"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["state"].as_str())
        .collect();
    assert_eq!(
        history.get(..4),
        Some(["received", "verified", "shadowing", "active"].as_slice()),
        "{state}"
    );
    let bundle = Path::new(&*w("runs/lab/bundle")).join("manifest.json");
    let m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(bundle)?)?;
    assert_eq!(m["name"], "flow-ae-site-lab");
    eprintln!(
        "site loop {loop_s:.1} s ({rows} rows, {} epochs on {}), whole test {:.1} s; fetch: {fetch_log}",
        train["epochs"],
        train["device"],
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
