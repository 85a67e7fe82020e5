//! The learning period through the real binary: `netwarden run` replays a capture with a short
//! `--learn` period, logs the fit, saves it in sled (surviving a SIGKILL), applies it again on
//! the next start, `netwarden learn` reports it and `netwarden learn --restart` forgets it.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use netwarden::models::flow_scorer::FlowSet;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_netwarden"))
}

fn capture() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/pcap/scan-mixed.pcap")
}

/// Runs the daemon on `data` with `args` until a log line contains `want` (60 s at most),
/// lets it run `linger` more, then SIGKILLs it; returns its log lines.
fn run_until(data: &Path, args: &[&str], want: &str, linger: Duration) -> Vec<String> {
    run_then(data, args, want, linger, false)
}

/// [`run_until`], stopping it with SIGTERM (a clean shutdown) when `term`.
fn run_then(data: &Path, args: &[&str], want: &str, linger: Duration, term: bool) -> Vec<String> {
    let mut child = bin()
        .args([
            "run",
            "--netflow-listen",
            "127.0.0.1:0",
            "--http-listen",
            "off",
        ])
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .env("NETWARDEN_LOG", "info")
        .env("NETWARDEN_LOG_FORMAT", "json")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn netwarden");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(l) => {
                let done = l.contains(want);
                lines.push(l);
                if done {
                    std::thread::sleep(linger);
                    break;
                }
            }
            Err(_) => break,
        }
    }
    if term {
        let pid = child.id().to_string();
        let ok = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(ok.is_ok_and(|s| s.success()), "kill -TERM {pid}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while child.try_wait().expect("try_wait").is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    child.kill().ok();
    child.wait().expect("wait");
    reader.join().expect("reader");
    lines.extend(rx.try_iter());
    assert!(
        lines.iter().any(|l| l.contains(want)),
        "no {want:?} in {lines:#?}"
    );
    lines
}

fn learn_json(data: &Path) -> serde_json::Value {
    let out = bin()
        .args(["learn", "--json", "--data-dir"])
        .arg(data)
        .output()
        .expect("learn");
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice(&out.stdout).expect("json")
}

#[test]
fn a_learnt_threshold_survives_sigkill_is_reused_and_a_restart_forgets_it() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    let pcap = capture();
    let pcap = pcap.to_str().expect("path");
    // The capture spans 24 s of event time; learning ends inside it (at 8 s at the latest: 4x the period, as the meter emits most flows at the end of the file).
    run_until(
        &data,
        &["--pcap", pcap, "--learn", "2s"],
        "Learning period over",
        Duration::from_millis(2_500),
    );
    let saved = learn_json(&data);
    let l = &saved[0];
    assert_eq!(l["detector"], "flow_ae");
    assert_eq!(l["phase"], "done");
    assert_eq!(l["period_ms"], 2_000);
    let fitted = &l["fitted"];
    let threshold = fitted["threshold"].as_f64().expect("threshold");
    assert!(threshold > 0.0, "{saved}");
    assert!(l["scored"].as_u64().expect("scored") > 0, "{saved}");
    assert!(
        ["spot", "max"].contains(&fitted["method"].as_str().expect("method")),
        "{saved}"
    );

    // The next start applies it, whatever the configured period.
    let lines = run_until(
        &data,
        &["--learn", "24h"],
        "Using the flow threshold learnt on this site",
        Duration::ZERO,
    );
    assert!(
        lines.iter().all(|l| !l.contains("Learning this site")),
        "{lines:#?}"
    );

    let out = bin()
        .args(["learn", "--restart", "--data-dir"])
        .arg(&data)
        .output()
        .expect("restart");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(learn_json(&data), serde_json::json!([]));
    run_until(
        &data,
        &["--learn", "1h"],
        "Learning this site",
        Duration::ZERO,
    );
}

/// The reservoir: a clean stop stores the open bucket; `netwarden samples export` writes it as
/// CSV without identity columns, a uniform sample of at most `per_bucket` (500) rows per hour,
/// in the built-in model's feature set (`flow-v2`).
#[test]
fn samples_are_kept_bounded_and_exported_as_csv() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    let pcap = capture();
    let pcap = pcap.to_str().expect("path");
    run_then(
        &data,
        &["--pcap", pcap, "--learn", "off"],
        "Pcap replay finished",
        Duration::from_millis(1_500),
        true,
    );
    let out = bin()
        .args(["samples", "export", "--out", "-", "--data-dir"])
        .arg(&data)
        .output()
        .expect("export");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let mut lines = text.lines();
    let set = FlowSet::V2;
    let header = format!("ts_ms,schema,{},score", set.names().join(","));
    assert_eq!(lines.next(), Some(header.as_str()));
    let rows: Vec<Vec<f64>> = lines
        .map(|l| {
            let (ts, rest) = l.split_once(",flow-v2,").expect("flow-v2 rows");
            std::iter::once(ts)
                .chain(rest.split(','))
                .map(|v| v.parse().expect("number"))
                .collect()
        })
        .collect();
    // 2,446 records in 24 s: one bucket of 500 (two, if the hour turned inside the capture).
    assert!(
        rows.len() == 500 || rows.len() == 1000,
        "{} rows",
        rows.len()
    );
    let width = set.width() + 2; // time, features, score
    assert!(rows.iter().all(|r| r.len() == width && r[width - 1] >= 0.0));
    assert!(
        rows.windows(2).all(|w| w[0][0] <= w[1][0]),
        "sorted by time"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{} flow-v2 rows", rows.len())),
        "{stderr}"
    );
}

/// `flow-v2`'s novelty (the services each host used while learning) is saved with the learning
/// state: after a SIGKILL the next start restores it rather than calling every service novel.
#[test]
fn flow_v2_services_learnt_survive_sigkill() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    let pcap = capture();
    let v2 = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/bundles/flow-ae-v2");
    let v2 = v2.to_str().expect("path");
    run_until(
        &data,
        &[
            "--pcap",
            pcap.to_str().expect("path"),
            "--learn",
            "2s",
            "--flow-model",
            v2,
        ],
        "Learning period over",
        Duration::from_millis(2_500),
    );
    let lines = run_until(
        &data,
        &["--learn", "2s", "--flow-model", v2],
        "Restored the flow-v2 services learnt on this site",
        Duration::ZERO,
    );
    let restored = lines
        .iter()
        .find(|l| l.contains("Restored the flow-v2 services"))
        .and_then(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .expect("a JSON log line");
    let services = restored["fields"]["services"].as_u64().unwrap_or(0);
    assert!(services > 0, "{restored}");
}

/// With a `flow-v2` model the reservoir keeps `flow-v2` rows; after a restart with the
/// `flow-v1` model (`models/bundles/flow-ae`) the export carries the active (`flow-v1`) rows
/// only, and `--schema` picks.
#[test]
fn samples_carry_the_active_models_schema_and_never_mix() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    let pcap = capture();
    let pcap = pcap.to_str().expect("path");
    let v2 = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/bundles/flow-ae-v2");
    let v2 = v2.to_str().expect("path");
    let export = |schema: &str| {
        let out = bin()
            .args([
                "samples",
                "export",
                "--out",
                "-",
                "--schema",
                schema,
                "--data-dir",
            ])
            .arg(&data)
            .output()
            .expect("export");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        (
            out.status.success(),
            text,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let args = ["--pcap", pcap, "--learn", "off"];
    let replayed = "Pcap replay finished";
    let linger = Duration::from_millis(1_500);
    run_then(
        &data,
        &[&args[..], &["--flow-model", v2]].concat(),
        replayed,
        linger,
        true,
    );
    let (ok, text, err) = export("active");
    assert!(ok, "{err}");
    let header = text.lines().next().unwrap_or("");
    assert!(header.starts_with("ts_ms,schema,") && header.ends_with(",svc_novel,score"));
    assert!(text
        .lines()
        .skip(1)
        .all(|l| l.split(',').nth(1) == Some("flow-v2")));
    assert!(err.contains("flow-v2 rows"), "{err}");
    // The same hour, now with the flow-v1 model: new rows, the old kept apart.
    let v1 = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/bundles/flow-ae");
    let v1 = v1.to_str().expect("path");
    run_then(
        &data,
        &[&args[..], &["--flow-model", v1]].concat(),
        replayed,
        linger,
        true,
    );
    let (ok, text, err) = export("active");
    assert!(ok, "{err}");
    assert!(text
        .lines()
        .skip(1)
        .all(|l| l.split(',').nth(1) == Some("flow-v1")));
    assert!(err.contains("of another schema left out"), "{err}");
    let (_, v2_rows, _) = export("flow-v2");
    assert!(
        v2_rows.lines().count() > 1,
        "the flow-v2 rows are still stored"
    );
    let (ok, _, err) = export("flow-v9");
    assert!(!ok && err.contains("flow-v9"), "{err}");
}
