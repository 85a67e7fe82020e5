//! `netwarden fleet collect` end to end: two sites (two `netwarden run` with their own EVE
//! files of real Suricata output) publish to one mosquitto; the collector writes every alert
//! and DHCP window result to rolling JSON-lines files, at least once across a collector
//! restart (its persistent session keeps what arrives meanwhile), ids kept.
//!
//! With `NW_FLEET_FIXTURE=DIR` the collected files are copied there: that is how
//! `tests/data/fleet/collected/` (the Spark job's test input, analytics/tests/) was made.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::Context;
use netwarden_e2e::{fixture, free_udp_port, netwarden_bin, tempdir, wait_for, Broker, Proc};

fn append(path: &Path, files: &[&str]) -> anyhow::Result<usize> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    let mut n = 0;
    for s in files {
        let text = std::fs::read_to_string(fixture(s))?;
        for l in text.lines() {
            f.write_all(l.as_bytes())?;
            f.write_all(b"\n")?;
            n += 1;
        }
    }
    Ok(n)
}

fn site(dir: &Path, name: &str, port: u16, samples: &[&str]) -> anyhow::Result<(Proc, PathBuf)> {
    let d = dir.join(name);
    std::fs::create_dir_all(&d)?;
    let eve = d.join("eve.json");
    append(&eve, samples)?;
    let config = d.join("netwarden.toml");
    std::fs::write(
        &config,
        format!(
            "site = \"{name}\"\ndevice = \"gw1\"\n[eve]\nfiles = [{{ path = \"{}\" }}]\npoll_interval_ms = 50\n[[eve.windows]]\nname = \"dhcp\"\nevent_type = \"dhcp\"\nkey = \"dhcp.id\"\nmax = [\"src_ip\", \"dhcp.hostname\", \"dhcp.client_ip\", \"dhcp.requested_ip\"]\npublish = true\n",
            eve.display()
        ),
    )?;
    let data = d.join("data");
    let proc = Proc::spawn(
        "netwarden",
        Command::new(netwarden_bin()?)
            .arg("run")
            .arg("--config")
            .arg(&config)
            .args([
                "--netflow-listen",
                &format!("127.0.0.1:{}", free_udp_port()?),
            ])
            .args(["--http-listen", "off"])
            // These tests expect flow alerts at once, not after a learning period.
            .args(["--learn", "off"])
            .args(["--mqtt", &format!("mqtt://127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(&data)
            .env("NETWARDEN_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(d.join("netwarden.log"))?),
    )?;
    Ok((proc, data))
}

fn collector(out: &Path, port: u16, log: &Path) -> anyhow::Result<Proc> {
    Proc::spawn(
        "fleet collect",
        Command::new(netwarden_bin()?)
            .args([
                "fleet",
                "collect",
                "--mqtt",
                &format!("mqtt://127.0.0.1:{port}"),
            ])
            .arg("--out")
            .arg(out)
            .args(["--roll-secs", "1", "--client-id", "fleet-e2e"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log)?),
    )
}

fn collected(out: &Path, kind: &str) -> anyhow::Result<Vec<serde_json::Value>> {
    let mut rows = Vec::new();
    let Ok(dir) = std::fs::read_dir(out.join(kind)) else {
        return Ok(rows);
    };
    for e in dir {
        for l in std::fs::read_to_string(e?.path())?.lines() {
            rows.push(serde_json::from_str(l)?);
        }
    }
    Ok(rows)
}

fn metric(data: &Path, name: &str) -> Option<u64> {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(data.join("stats.json")).ok()?).ok()?;
    v["metrics"][name].as_u64()
}

#[test]
fn two_sites_collected_at_least_once_across_a_collector_restart() -> anyhow::Result<()> {
    // The broker keeps the collector's session (and its queued QoS 1 messages) in memory.
    let broker =
        Broker::start("allow_anonymous true\npersistence false\nmax_queued_messages 100000\n")?;
    let dir = tempdir::Dir::new("fleet")?;
    let out = dir.path().join("collected");
    // The collector subscribes first (its session must exist before the sites publish).
    let mut c = collector(&out, broker.port, &dir.path().join("collect-0.log"))?;
    std::thread::sleep(Duration::from_secs(1));
    c.terminate(Duration::from_secs(10));
    // Sites publish while the collector is down: the broker queues for its session.
    let (mut hq, hq_data) = site(
        dir.path(),
        "hq",
        broker.port,
        &[
            "eve/suricata-7.0.0-beta1.json",
            "eve/suricata-8.0.7.json",
            "eve/suricata-6-ssh-tls.json",
            "eve/handmade.json",
        ],
    )?;
    let (mut br, br_data) = site(
        dir.path(),
        "branch2",
        broker.port,
        &["eve/suricata-8.0.7.json", "eve/handmade.json"],
    )?;
    for data in [&hq_data, &br_data] {
        wait_for(
            Duration::from_secs(30),
            "the site to read its EVE file",
            || (metric(data, "eve_events")? > 0 && metric(data, "mqtt_acked")? > 0).then_some(()),
        )?;
    }
    std::thread::sleep(Duration::from_secs(2));
    let mut c = collector(&out, broker.port, &dir.path().join("collect-1.log"))?;
    // Every alert the sites stored (netwarden's own and Suricata's, less those folded into
    // another detector's alert on the same flow), and the DHCP windows, reach the files.
    let expected = || -> Option<u64> {
        let mut n = 0;
        for d in [&hq_data, &br_data] {
            n += metric(d, "alerts_raised")? + metric(d, "eve_alerts_forwarded")?
                - metric(d, "eve_alerts_deduplicated")?;
        }
        Some(n)
    };
    wait_for(
        Duration::from_secs(30),
        "every stored alert collected",
        || {
            let ids: BTreeSet<String> = collected(&out, "alerts")
                .ok()?
                .iter()
                .filter_map(|a| a["id"].as_str().map(str::to_string))
                .collect();
            let want = expected()?;
            (want > 0 && ids.len() as u64 == want && collected(&out, "windows").ok()?.len() >= 6)
                .then_some(())
        },
    )
    .with_context(|| {
        let all = collected(&out, "alerts").unwrap_or_default();
        let per: Vec<String> = all
            .iter()
            .map(|a| format!("{} {} {}", a["site"], a["detector"], a["id"]))
            .collect();
        format!(
            "collected {} alert lines, expected {:?} ids, {} windows\n{}",
            all.len(),
            expected(),
            collected(&out, "windows").map(|w| w.len()).unwrap_or(0),
            per.join("\n")
        )
    })?;
    hq.terminate(Duration::from_secs(15));
    br.terminate(Duration::from_secs(15));
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        c.terminate(Duration::from_secs(10)),
        "collector did not stop cleanly"
    );

    let alerts = collected(&out, "alerts")?;
    let windows = collected(&out, "windows")?;
    let ids: BTreeSet<&str> = alerts.iter().filter_map(|a| a["id"].as_str()).collect();
    let stored = expected().context("final stats")?;
    assert_eq!(ids.len() as u64, stored, "every alert of both sites, by id");
    let per_site: BTreeMap<&str, usize> = alerts.iter().fold(BTreeMap::new(), |mut m, a| {
        *m.entry(a["site"].as_str().unwrap_or("?")).or_default() += 1;
        m
    });
    assert!(
        per_site.contains_key("hq") && per_site.contains_key("branch2"),
        "{per_site:?}"
    );
    assert!(alerts.iter().all(
        |a| a["_topic"].as_str().is_some_and(|t| t.starts_with(&format!(
            "netwarden/{}/gw1/alerts/",
            a["site"].as_str().unwrap_or("")
        )))
    ));
    let dhcp: BTreeSet<(String, String)> = windows
        .iter()
        .filter(|w| w["complete"] == true)
        .map(|w| {
            (
                w["site"].as_str().unwrap_or("").into(),
                w["key"].as_str().unwrap_or("").into(),
            )
        })
        .collect();
    assert_eq!(dhcp.len(), 6, "3 closed DHCP windows per site: {dhcp:?}");
    assert!(
        !out.join(".inflight").read_dir()?.any(|_| true),
        "a clean stop leaves nothing in flight"
    );
    if let Some(keep) = std::env::var_os("NW_FLEET_FIXTURE") {
        let keep = PathBuf::from(keep);
        for kind in ["alerts", "windows"] {
            std::fs::create_dir_all(keep.join(kind))?;
            for e in std::fs::read_dir(out.join(kind))? {
                let p = e?.path();
                std::fs::copy(&p, keep.join(kind).join(p.file_name().context("name")?))?;
            }
        }
    }
    Ok(())
}
