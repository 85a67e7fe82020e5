//! Fleet model delivery against a real mosquitto, with gateways scoring replayed NetFlow
//! (softflowd-v5-benign.pcap, over and over) while bundles arrive (docs/fleet.md):
//! - a good bundle is shadowed and promoted on two gateways, every record scored exactly once
//!   across the swap; then eight broken ones are each refused with the check that failed while
//!   the good one keeps scoring; the broker's ACL lets only the central publisher write model
//!   topics;
//! - an alert-flooding model is rejected in shadow; one that turns bad after promotion is rolled
//!   back; a gateway that was offline during the push gets the model when it starts; a restart
//!   during shadowing starts the shadow again and the model is then promoted.

use std::net::{SocketAddr, UdpSocket};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use netwarden::models::fleet::wire::{self, Scope};
use netwarden_e2e::fleet::{
    fixture_model, fleet_cli, make_bundle, mosquitto_pub, shipped_model, states, v5_big_flow,
    Signer,
};
use netwarden_e2e::{
    capture_payloads, fixture, gateway_in, repo_root, tempdir, wait_for, Broker, Gateway, Mosquitto,
};

const WAIT: Duration = Duration::from_secs(90);

// Shadow periods of 0 s (event time) and 300 records keep the test quick; the run-time limit
// is loose (20x) because debug builds share two cores with the rest of the test command (the
// 4x default is unit-tested in models/fleet/shadow.rs).

fn config(port: u16, device: &str, keys: &[&str], fleet: &str, base: &V1Base) -> String {
    let keys: Vec<String> = keys.iter().map(|k| format!("{k:?}")).collect();
    format!(
        "site = \"lab\"\ndevice = \"{device}\"\n[mqtt]\nurl = \"mqtt://127.0.0.1:{port}\"\n\
         [bundles]\ntrusted_keys = [{}]\n[fleet]\nenabled = true\nshadow_secs = 0\n\
         assembly_timeout_secs = 3\nlatency_factor = 20\n{fleet}\n\
         [netflow]\nshards = 2\n[detector]\nflow_model = {:?}\n",
        keys.join(", "),
        base.path.display().to_string()
    )
}

/// The gateways run the `flow-v1` bundle (`models/bundles/flow-ae`, built in until issue 18),
/// signed here with a trusted test key (a gateway that trusts keys loads only signed bundles):
/// the bundles pushed are made from it (`make_bundle`), and the fleet swaps in only a
/// candidate of the active model's schema.
struct V1Base {
    _dir: tempdir::Dir,
    path: std::path::PathBuf,
}

fn v1_base(signer: &Signer) -> anyhow::Result<V1Base> {
    let dir = tempdir::Dir::new("fleet-v1")?;
    let text = std::fs::read_to_string(repo_root().join("models/bundles/flow-ae/manifest.json"))?;
    let m: serde_json::Value = serde_json::from_str(&text)?;
    let version = m["version"].as_str().context("version")?.to_string();
    let path = make_bundle(
        &dir.path().join("flow-ae"),
        &shipped_model()?,
        &version,
        signer,
        |_| {},
    )?;
    Ok(V1Base { _dir: dir, path })
}

/// Replays the benign capture to every address in `to` until stopped (at most 5 minutes).
struct Traffic {
    stop: Arc<AtomicBool>,
    to: Arc<Mutex<Vec<SocketAddr>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Traffic {
    fn start(to: Vec<SocketAddr>) -> anyhow::Result<Traffic> {
        let payloads = capture_payloads(&fixture("netflow/softflowd-v5-benign.pcap"))?;
        let stop = Arc::new(AtomicBool::new(false));
        let to = Arc::new(Mutex::new(to));
        let (s, t) = (stop.clone(), to.clone());
        let socket = UdpSocket::bind("127.0.0.1:0")?;
        let thread = std::thread::spawn(move || {
            let started = Instant::now();
            let mut round = 0u32;
            while !s.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(300) {
                let targets = t.lock().map(|v| v.clone()).unwrap_or_default();
                // Each round a minute later in event time (the v5 header's export seconds), so
                // the 10 s host windows see the capture's traffic, not its copies piled up.
                round += 1;
                for addr in targets {
                    for p in &payloads {
                        let mut p = p.clone();
                        if p.len() >= 12 {
                            let secs = u32::from_be_bytes([p[8], p[9], p[10], p[11]]);
                            p[8..12].copy_from_slice(&secs.wrapping_add(round * 60).to_be_bytes());
                        }
                        let _ = socket.send_to(&p, addr);
                    }
                }
                std::thread::sleep(Duration::from_millis(700));
            }
        });
        Ok(Traffic {
            stop,
            to,
            thread: Some(thread),
        })
    }

    fn add(&self, addr: SocketAddr) {
        if let Ok(mut v) = self.to.lock() {
            v.push(addr);
        }
    }

    fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Traffic {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Waits until `device`'s flow state satisfies `ok`; fails with the last state and log.
fn wait_state(
    port: u16,
    auth: &[&str],
    gw: &Gateway,
    device: &str,
    what: &str,
    ok: impl Fn(&serde_json::Value) -> bool,
) -> anyhow::Result<serde_json::Value> {
    let last = Mutex::new(serde_json::Value::Null);
    wait_for(WAIT, &format!("{device}: {what}"), || {
        let s = states(port, auth).ok()?.remove(device)?;
        let flow = s["detectors"]["flow"].clone();
        if let Ok(mut l) = last.lock() {
            *l = flow.clone();
        }
        ok(&flow).then_some(flow)
    })
    .with_context(|| {
        format!(
            "last state: {}\nlog tail: {}",
            last.lock().map(|l| l.to_string()).unwrap_or_default(),
            tail(&gw.log())
        )
    })
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(25)..].join("\n")
}

fn active_is(v: &str) -> impl Fn(&serde_json::Value) -> bool + '_ {
    move |s| s["active"] == v && s["state"] == "active"
}

fn refused(version: &str, check: &str) -> impl Fn(&serde_json::Value) -> bool {
    let (version, check) = (version.to_string(), check.to_string());
    move |s| {
        s["last_refusal"]["version"] == version.as_str()
            && s["last_refusal"]["check"] == check.as_str()
    }
}

/// Publishes a bundle with `netwarden fleet publish` (4 KiB chunks: the shipped model is 15 KB).
fn publish(
    port: u16,
    dir: &std::path::Path,
    scope: &[&str],
    auth: &[&str],
) -> anyhow::Result<String> {
    let url = format!("mqtt://127.0.0.1:{port}");
    let path = dir.to_str().context("path")?;
    let mut args = vec![
        "publish",
        path,
        "--mqtt",
        url.as_str(),
        "--chunk-bytes",
        "4096",
    ];
    args.extend_from_slice(scope);
    args.extend_from_slice(auth);
    fleet_cli(&args)
}

/// Publishes a bundle's set with mosquitto_pub, leaving out chunks `skip` (what the CLI
/// never does: a truncated set, or a client the ACL refuses).
fn publish_raw(
    port: u16,
    dir: &std::path::Path,
    scope: &Scope,
    skip: &[usize],
    auth: Option<(&str, &str)>,
) -> anyhow::Result<()> {
    let manifest = std::fs::read_to_string(dir.join("manifest.json"))?;
    let sig = std::fs::read_to_string(dir.join("manifest.sig"))?;
    let model = std::fs::read(dir.join("model.onnx"))?;
    let (set, chunks) = wire::split("flow", manifest, sig, &model, 4096, 100, 0)?;
    let base = wire::set_base("netwarden/fleet", "flow", scope);
    for (i, c) in chunks.iter().enumerate() {
        if !skip.contains(&i) {
            mosquitto_pub(port, &wire::chunk_topic(&base, i), c, auth)?;
        }
    }
    mosquitto_pub(port, &wire::manifest_topic(&base), &set.encode(), auth)
}

fn flow_counters(gw: &Gateway) -> anyhow::Result<(u64, u64, u64)> {
    let s = gw.stats()?;
    Ok((
        s["netflow_totals"]["records"].as_u64().unwrap_or(0),
        s["metrics"]["flows_scored"].as_u64().unwrap_or(0),
        s["metrics"]["fleet_shadow_scored"].as_u64().unwrap_or(0),
    ))
}

/// Waits for the input to stop moving, then for every decoded record to be scored once.
fn assert_each_record_scored_once(gw: &Gateway) -> anyhow::Result<(u64, u64)> {
    let (records, scored, shadow) =
        wait_for(Duration::from_secs(20), "records == flows_scored", || {
            let c = flow_counters(gw).ok()?;
            (c.0 > 0 && c.0 == c.1).then_some(c)
        })
        .with_context(|| format!("counters {:?}", flow_counters(gw).ok()))?;
    assert_eq!(records, scored, "every decoded record scored exactly once");
    Ok((records, shadow))
}

#[test]
fn good_bundle_promoted_on_two_gateways_broken_ones_refused_acl_enforced() -> anyhow::Result<()> {
    // The broker: gateways connect anonymously and may only read model topics; `central`
    // (password) writes them (docs/fleet.md, "Broker ACL").
    let auth_dir = tempdir::Dir::new("fleet-acl")?;
    let passwd = auth_dir.path().join("passwd");
    let acl = auth_dir.path().join("acl");
    let made = Command::new("mosquitto_passwd")
        .args(["-b", "-c"])
        .arg(&passwd)
        .args(["central", "s3cret"])
        .status()?;
    if !made.success() {
        bail!("mosquitto_passwd failed");
    }
    std::fs::write(
        &acl,
        "topic read netwarden/fleet/#\ntopic readwrite netwarden/lab/#\n\n\
         user central\ntopic readwrite netwarden/fleet/#\ntopic read netwarden/+/+/models/state\n",
    )?;
    {
        use std::os::unix::fs::PermissionsExt;
        for p in [&passwd, &acl] {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o644))?;
        }
        std::fs::set_permissions(auth_dir.path(), std::fs::Permissions::from_mode(0o755))?;
    }
    let broker = Broker::start(&format!(
        "allow_anonymous true\npersistence false\npassword_file {}\nacl_file {}\n",
        passwd.display(),
        acl.display()
    ))?;
    let port = broker.port;
    let pass_file = auth_dir.path().join("central.pass");
    std::fs::write(&pass_file, "s3cret\n")?;
    let pass = pass_file.to_str().context("path")?.to_string();
    let central = ["--username", "central", "--password-file", pass.as_str()];

    // Two keys trusted (rotation); the good bundle is signed with the second.
    let (old_key, new_key, rogue) = (Signer::new()?, Signer::new()?, Signer::new()?);
    let base = v1_base(&old_key)?;
    let keys = [old_key.public.as_str(), new_key.public.as_str()];
    let gw1 = gateway_in(
        tempdir::Dir::new("fleet-gw1")?,
        &config(
            port,
            "gw1",
            &keys,
            "min_records = 300\nwatch_secs = 0",
            &base,
        ),
        &[],
    )?;
    let gw2 = gateway_in(
        tempdir::Dir::new("fleet-gw2")?,
        &config(
            port,
            "gw2",
            &keys,
            "min_records = 300\nwatch_secs = 0",
            &base,
        ),
        &[],
    )?;
    let mut traffic = Traffic::start(vec![gw1.netflow, gw2.netflow])?;
    let bundles = tempdir::Dir::new("fleet-bundles")?;
    let b = |name: &str| bundles.path().join(name);
    let shipped = shipped_model()?;

    // ACL: an anonymous client's model set never reaches the gateways.
    let good = make_bundle(&b("good"), &shipped, "2026.12.1.1", &new_key, |_| {})?;
    publish_raw(port, &good, &Scope::All, &[], None)?;
    std::thread::sleep(Duration::from_secs(3));
    let s = states(port, &central)?;
    for d in ["gw1", "gw2"] {
        let flow = &s
            .get(d)
            .with_context(|| format!("no state from {d}: {s:?}"))?["detectors"]["flow"];
        assert!(
            flow.is_null() || flow["history"].as_array().is_some_and(|h| h.is_empty()),
            "{d} got a set from an anonymous publisher: {flow}"
        );
    }
    // The broker refuses the anonymous writer's set; the central publisher's goes through.
    let out = publish(port, &good, &["--all"], &central)?;
    assert!(out.contains("4 chunks of 4096"), "{out}");
    for (gw, d) in [(&gw1, "gw1"), (&gw2, "gw2")] {
        let s = wait_state(
            port,
            &central,
            gw,
            d,
            "2026.12.1.1 promoted",
            active_is("2026.12.1.1"),
        )?;
        let states: Vec<&str> = s["history"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["state"].as_str())
            .collect();
        assert_eq!(
            states.get(..4),
            Some(["received", "verified", "shadowing", "active"].as_slice()),
            "{s}"
        );
        assert!(gw.log().contains("Fleet model state"), "logged");
    }

    // Each broken bundle is refused, naming the check; the good model keeps scoring.
    let tampered = make_bundle(&b("tampered"), &shipped, "2026.12.1.2", &new_key, |_| {})?;
    let mut model = shipped.clone();
    let n = model.len();
    model[n - 3] ^= 0x01;
    std::fs::write(tampered.join("model.onnx"), &model)?;
    let cases = vec![
        (tampered, "2026.12.1.2", "sha256"),
        (
            make_bundle(&b("rogue"), &shipped, "2026.12.1.3", &rogue, |_| {})?,
            "2026.12.1.3",
            "signature",
        ),
        (
            make_bundle(&b("older"), &shipped, "2026.11.30.1", &new_key, |_| {})?,
            "2026.11.30.1",
            "version",
        ),
        (
            make_bundle(&b("same"), &shipped, "2026.12.1.1", &old_key, |m| {
                m["threshold"]["value"] = 0.5.into()
            })?,
            "2026.12.1.1",
            "version",
        ),
        (
            make_bundle(
                &b("wide"),
                &fixture_model("wide.onnx")?,
                "2026.12.1.4",
                &new_key,
                |_| {},
            )?,
            "2026.12.1.4",
            "shapes",
        ),
        (
            make_bundle(&b("schema"), &shipped, "2026.12.1.5", &new_key, |m| {
                m["features"]["schema"] = "flow-v2".into()
            })?,
            "2026.12.1.5",
            "schema",
        ),
        (
            make_bundle(
                &b("nan"),
                &fixture_model("nan.onnx")?,
                "2026.12.1.6",
                &new_key,
                |_| {},
            )?,
            "2026.12.1.6",
            "finite",
        ),
        (
            make_bundle(&b("expired"), &shipped, "2026.12.1.8", &new_key, |m| {
                m["expires_utc"] = "2026-01-01T00:00:00Z".into()
            })?,
            "2026.12.1.8",
            "expiry",
        ),
    ];
    for (dir, version, check) in &cases {
        publish(port, dir, &["--site", "lab"], &central)?;
        for (gw, d) in [(&gw1, "gw1"), (&gw2, "gw2")] {
            let s = wait_state(
                port,
                &central,
                gw,
                d,
                &format!("{version} refused by {check}"),
                refused(version, check),
            )?;
            assert_eq!(
                s["active"], "2026.12.1.1",
                "{d} still runs the good model: {s}"
            );
        }
    }
    // A truncated set (the last chunk never published) is refused after the assembly timeout.
    let truncated = make_bundle(&b("truncated"), &shipped, "2026.12.1.7", &new_key, |_| {})?;
    publish_raw(
        port,
        &truncated,
        &Scope::Site("lab".into()),
        &[3],
        Some(("central", "s3cret")),
    )?;
    for (gw, d) in [(&gw1, "gw1"), (&gw2, "gw2")] {
        let s = wait_state(
            port,
            &central,
            gw,
            d,
            "truncated set refused",
            refused("2026.12.1.7", "chunks"),
        )?;
        let reason = s["last_refusal"]["reason"].as_str().unwrap_or("");
        assert!(reason.contains("3 of 4 chunks, missing 3"), "{reason}");
        assert_eq!(s["active"], "2026.12.1.1");
    }

    // stats.json (and the MQTT heartbeat) names the model that alerts now.
    wait_for(
        Duration::from_secs(5),
        "stats.json to name the new model",
        || (gw1.stats().ok()?["model"] == "flow-ae 2026.12.1.1").then_some(()),
    )?;

    // The central team's table.
    let url = format!("mqtt://127.0.0.1:{port}");
    let mut args = vec!["status", "--mqtt", url.as_str(), "--wait", "0.6"];
    args.extend_from_slice(&central);
    let table = fleet_cli(&args)?;
    for d in ["gw1", "gw2"] {
        let line = table.lines().find(|l| l.contains(d)).unwrap_or_default();
        assert!(
            line.contains("2026.12.1.1") && line.contains("chunks: incomplete"),
            "{table}"
        );
    }

    // Traffic stops: every decoded record was scored once, by one alerting model, across the
    // swap; the candidate scored beside it.
    traffic.stop();
    for gw in [&gw1, &gw2] {
        let (records, shadow) = assert_each_record_scored_once(gw)?;
        let m = gw.stats()?["metrics"].clone();
        assert!(shadow >= 300, "shadow scored {shadow} of {records}");
        assert_eq!(m["fleet_promotions"], 1, "{m}");
        assert_eq!(m["fleet_rollbacks"], 0, "{m}");
        assert!(m["fleet_sets_refused"].as_u64() >= Some(8), "{m}");
        assert!(records > 796 * 3, "traffic flowed: {records}");
    }
    // The promoted bundle and its predecessor's absence: on disk under its version.
    assert!(gw1
        .data_dir
        .join("fleet/bundles/flow/2026.12.1.1/model.onnx")
        .is_file());
    Ok(())
}

#[test]
fn flood_rejected_in_shadow_bad_after_promotion_rolled_back_offline_and_restart(
) -> anyhow::Result<()> {
    let broker = Mosquitto::start()?;
    let port = broker.port;
    let key = Signer::new()?;
    let base = v1_base(&key)?;
    let keys = [key.public.as_str()];
    let gw1 = gateway_in(
        tempdir::Dir::new("fleet-r1")?,
        &config(
            port,
            "r1",
            &keys,
            "min_records = 300\nwatch_secs = 100000000",
            &base,
        ),
        &[],
    )?;
    let mut traffic = Traffic::start(vec![gw1.netflow])?;
    let bundles = tempdir::Dir::new("fleet-bundles2")?;
    let b = |name: &str| bundles.path().join(name);

    // A model that finds every flow anomalous is rejected in shadow, with the figures.
    let flood = make_bundle(
        &b("flood"),
        &fixture_model("flood.onnx")?,
        "2026.12.2.1",
        &key,
        |_| {},
    )?;
    publish(port, &flood, &["--all"], &[])?;
    let s = wait_state(
        port,
        &[],
        &gw1,
        "r1",
        "flood rejected in shadow",
        refused("2026.12.2.1", "shadow"),
    )?;
    let reason = s["last_refusal"]["reason"].as_str().unwrap_or("");
    assert!(reason.contains("anomaly rate 100.00%"), "{reason}");
    assert!(s["active"].is_null(), "the shipped model still runs: {s}");
    let m = wait_for(
        Duration::from_secs(5),
        "stats.json to count the shadow",
        || {
            let m = gw1.stats().ok()?["metrics"].clone();
            (m["fleet_shadow_scored"].as_u64() >= Some(300)).then_some(m)
        },
    )?;
    assert_eq!(m["fleet_promotions"], 0, "{m}");

    // A model that is fine on this traffic passes and is promoted; a 4 GB flow then makes it
    // output NaN, and the watch rolls it back.
    let late = make_bundle(
        &b("late"),
        &fixture_model("late-nan.onnx")?,
        "2026.12.3.1",
        &key,
        |_| {},
    )?;
    publish(port, &late, &["--all"], &[])?;
    wait_state(
        port,
        &[],
        &gw1,
        "r1",
        "late-nan promoted",
        active_is("2026.12.3.1"),
    )?;
    let sock = UdpSocket::bind("127.0.0.1:0")?;
    for seq in 0..3 {
        sock.send_to(&v5_big_flow(4_000_000_000, 900_000 + seq), gw1.netflow)?;
    }
    let s = wait_state(port, &[], &gw1, "r1", "late-nan rolled back", |s| {
        s["state"] == "rolled_back"
    })?;
    assert_eq!(s["last_refusal"]["check"], "watch", "{s}");
    let reason = s["last_refusal"]["reason"].as_str().unwrap_or("");
    assert!(reason.contains("NaN or infinite"), "{reason}");
    assert!(s["active"].is_null(), "back to the shipped model: {s}");
    // stats.json is written once a second.
    let m = wait_for(
        Duration::from_secs(5),
        "stats.json to count the rollback",
        || {
            let m = gw1.stats().ok()?["metrics"].clone();
            (m["fleet_rollbacks"].as_u64() >= Some(1)).then_some(m)
        },
    )?;
    assert_eq!(
        (
            m["fleet_promotions"].as_u64(),
            m["fleet_rollbacks"].as_u64()
        ),
        (Some(1), Some(1)),
        "{m}"
    );

    // A gateway that was offline during the push gets the retained set when it comes up.
    let gw2 = gateway_in(
        tempdir::Dir::new("fleet-r2")?,
        &config(
            port,
            "r2",
            &keys,
            "min_records = 300\nwatch_secs = 0",
            &base,
        ),
        &[],
    )?;
    traffic.add(gw2.netflow);
    wait_state(
        port,
        &[],
        &gw2,
        "r2",
        "late-nan promoted on the late gateway",
        active_is("2026.12.3.1"),
    )?;

    // A restart during shadowing: the shadow starts again and the model is promoted.
    Command::new("mosquitto_pub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-r",
            "-n",
            "-t",
            "netwarden/fleet/models/flow/all/manifest",
        ])
        .status()?;
    let forever = config(
        port,
        "r3",
        &keys,
        "min_records = 1000000000\nwatch_secs = 0",
        &base,
    );
    let gw3 = gateway_in(tempdir::Dir::new("fleet-r3")?, &forever, &[])?;
    traffic.add(gw3.netflow);
    let good = make_bundle(&b("good"), &shipped_model()?, "2026.12.4.1", &key, |_| {})?;
    publish(port, &good, &["--site", "lab", "--device", "r3"], &[])?;
    wait_state(port, &[], &gw3, "r3", "shadowing 2026.12.4.1", |s| {
        s["state"] == "shadowing" && s["version"] == "2026.12.4.1"
    })?;
    let dir = gw3.stop_keeping_dir();
    let gw3 = gateway_in(
        dir,
        &config(
            port,
            "r3",
            &keys,
            "min_records = 300\nwatch_secs = 0",
            &base,
        ),
        &[],
    )?;
    traffic.add(gw3.netflow);
    let s = wait_state(
        port,
        &[],
        &gw3,
        "r3",
        "promoted after the restart",
        active_is("2026.12.4.1"),
    )?;
    assert!(
        gw3.log()
            .contains("Shadowing of a delivered flow model starts again"),
        "{}",
        tail(&gw3.log())
    );
    let shadowing = s["history"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["state"] == "shadowing")
        .count();
    assert_eq!(
        shadowing, 2,
        "shadowed once before and once after the restart: {s}"
    );

    traffic.stop();
    for gw in [&gw1, &gw2, &gw3] {
        assert_each_record_scored_once(gw)?;
    }
    Ok(())
}

/// `netwarden model ...` with `args`; its output, or an error with it.
fn model_cli(args: &[&str]) -> anyhow::Result<String> {
    netwarden_e2e::output_ok(
        Command::new(netwarden_e2e::netwarden_bin()?)
            .arg("model")
            .args(args)
            .env_remove("NETWARDEN_HTTP_TOKEN"),
        &format!("netwarden model {}", args.join(" ")),
    )
}

#[test]
fn operator_rolls_back_and_activates_over_http_and_offline() -> anyhow::Result<()> {
    let broker = Mosquitto::start()?;
    let port = broker.port;
    let key = Signer::new()?;
    let base = v1_base(&key)?;
    let keys = [key.public.as_str()];
    let dir = tempdir::Dir::new("fleet-op")?;
    let token = dir.path().join("token");
    std::fs::write(&token, "fleet-test-token-0123456789abcdef\n")?;
    let http_port = netwarden_e2e::free_tcp_port()?;
    let http = format!("http://127.0.0.1:{http_port}");
    let extra = format!(
        "min_records = 300\nwatch_secs = 0\n[http]\nlisten = \"127.0.0.1:{http_port}\"\ntoken_file = \"{}\"",
        token.display()
    );
    let gw = gateway_in(dir, &config(port, "op", &keys, &extra, &base), &[])?;
    let mut traffic = Traffic::start(vec![gw.netflow])?;
    let bundles = tempdir::Dir::new("fleet-bundles3")?;
    // A canary of 0% leaves this gateway out: nothing happens.
    let b = make_bundle(
        &bundles.path().join("canary"),
        &shipped_model()?,
        "2026.12.4.9",
        &key,
        |_| {},
    )?;
    let out = publish(port, &b, &["--all", "--canary", "0"], &[])?;
    assert!(out.contains("canary 0%"), "{out}");
    wait_for(Duration::from_secs(10), "the canary to be skipped", || {
        gw.log().contains("not in; ignored").then_some(())
    })?;
    let s = states(port, &[])?;
    assert!(s["op"]["detectors"]["flow"].is_null(), "{s:?}");
    for v in ["2026.12.5.1", "2026.12.5.2"] {
        let b = make_bundle(&bundles.path().join(v), &shipped_model()?, v, &key, |_| {})?;
        publish(port, &b, &["--all"], &[])?;
        wait_state(port, &[], &gw, "op", &format!("{v} promoted"), active_is(v))?;
    }
    let tok = token.to_str().context("path")?;
    // Without the token the API refuses; with it, a rollback swaps at once.
    let err = model_cli(&["rollback", "--http", &http]).expect_err("no token");
    assert!(err.to_string().contains("401"), "{err}");
    let out = model_cli(&["rollback", "--http", &http, "--token-file", tok])?;
    assert!(out.contains("rolling back to 2026.12.5.1"), "{out}");
    wait_state(port, &[], &gw, "op", "rolled back by the operator", |s| {
        s["active"] == "2026.12.5.1"
            && s["history"]
                .as_array()
                .and_then(|h| h.last())
                .is_some_and(|e| e["reason"] == "activated by the operator")
    })?;
    let listed = model_cli(&["list", "--http", &http, "--token-file", tok])?;
    assert!(
        listed.contains("2026.12.5.2") && listed.contains("\"on_disk\""),
        "{listed}"
    );
    // The dashboard's model panel shows the delivered models (headless Chromium, as
    // tests/e2e/http.rs loads the dashboard).
    netwarden_e2e::require("chromium")?;
    let profile = tempdir::Dir::new("fleet-chromium")?;
    let url = format!("{http}/?source=flows#token=fleet-test-token-0123456789abcdef");
    let dom = Command::new("timeout")
        .args([
            "90",
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
        ])
        .args([
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(["--virtual-time-budget=10000", "--dump-dom", &url])
        .output()?;
    let html = String::from_utf8_lossy(&dom.stdout);
    assert!(
        html.contains("Delivered models") && html.contains("<td>2026.12.5.1</td>"),
        "model panel missing:\n{html}"
    );
    model_cli(&[
        "activate",
        "configured",
        "--http",
        &http,
        "--token-file",
        tok,
    ])?;
    wait_state(port, &[], &gw, "op", "configured model active", |s| {
        s["active"].is_null() && s["state"] == "active"
    })?;
    traffic.stop();
    assert_each_record_scored_once(&gw)?;

    // Offline, on the stopped gateway's data directory: list, activate; the start loads it.
    let dir = gw.stop_keeping_dir();
    let data = dir.path().join("data");
    let data = data.to_str().context("path")?;
    let listed = model_cli(&["list", "--data-dir", data])?;
    assert!(
        listed.contains("2026.12.5.1") && listed.contains("2026.12.5.2"),
        "{listed}"
    );
    model_cli(&["activate", "2026.12.5.2", "--data-dir", data])?;
    let err = model_cli(&["activate", "2027.1.1", "--data-dir", data]).expect_err("not on disk");
    assert!(err.to_string().contains("not on disk"), "{err}");
    let gw = gateway_in(dir, &config(port, "op", &keys, &extra, &base), &[])?;
    wait_for(
        Duration::from_secs(10),
        "the delivered model loaded at start",
        || {
            gw.log()
                .contains("Delivered flow model is active version=2026.12.5.2")
                .then_some(())
        },
    )
    .with_context(|| tail(&gw.log()))?;
    Ok(())
}
