//! The SNMP source against a real net-snmp `snmpd`: rates polled over v2c and v3 (authPriv,
//! SHA/AES) from an agent inside a network namespace match the bytes the test sent through the
//! namespace's veth; an agent restart (new engineID, interfaces re-created with fresh counters
//! and new ifIndexes) gives unknown steps, not a spike; wrong credentials give clear errors.
//!
//! net-snmp caches interface counters for about 3 s (its ifTable/ifXTable cache), so a poll
//! sees counters up to 3 s old. The tests poll every 4 s (longer than the cache) and accept
//! the bytes in the steps that end up to one cache period plus one interval after the traffic.
//!
//! The last test runs the whole series path: stored normal history, `netwarden calibrate` on it,
//! a restart that warms the windows from the store, and a burst that the series detector (`series_ae`) reports over MQTT.
//!
//! Needs root (network namespaces) and the `snmpd` and `snmp` packages (scripts/test.sh).

use std::time::Duration;

use netwarden::records::RateSample;
use netwarden::sinks::store::Store;
use netwarden_e2e::{
    free_udp_port, gateway_in, gateway_with_config, netwarden_bin, repo_root, tempdir, wait_for,
    Gateway, Mosquitto, Netns, Snmpd, Subscriber, SNMP_AUTH_PASSWORD, SNMP_COMMUNITY,
    SNMP_PRIV_PASSWORD, SNMP_USER, SNMP_V3_MATRIX,
};

/// net-snmp's interface counter cache (observed: counters move in 3 s steps).
const AGENT_CACHE_MS: u64 = 3_000;

fn now_ms() -> u64 {
    netwarden::now_ms()
}

fn v2c_target(name: &str, addr: &str, iface: &str, interval: u64) -> String {
    format!(
        r#"
[[snmp.targets]]
name = "{name}"
address = "{addr}"
community = "{SNMP_COMMUNITY}"
interfaces = ["{iface}"]
interval_secs = {interval}
timeout_ms = 400
retries = 1
"#
    )
}

fn v3_target(name: &str, addr: &str, iface: &str, interval: u64) -> String {
    format!(
        r#"
[[snmp.targets]]
name = "{name}"
address = "{addr}"
version = "3"
user = "{SNMP_USER}"
auth_protocol = "sha"
auth_password = "{SNMP_AUTH_PASSWORD}"
priv_protocol = "aes"
priv_password = "{SNMP_PRIV_PASSWORD}"
interfaces = ["{iface}"]
interval_secs = {interval}
timeout_ms = 400
retries = 1
"#
    )
}

/// The per-target status in stats.json.
fn target(gw: &Gateway, name: &str) -> Option<serde_json::Value> {
    let s = gw.stats().ok()?;
    let t = s["snmp_targets"][name].clone();
    (!t.is_null()).then_some(t)
}

/// Waits until every target in `names` has a good poll at or after `since_ms` and at least
/// `min_ok` good polls in all.
fn wait_polled(gw: &Gateway, names: &[&str], since_ms: u64, min_ok: u64) -> anyhow::Result<()> {
    wait_for(Duration::from_secs(40), "SNMP polls", || {
        names
            .iter()
            .all(|n| {
                target(gw, n).is_some_and(|t| {
                    t["last_ok_ms"].as_u64().unwrap_or(0) >= since_ms
                        && t["polls_ok"].as_u64().unwrap_or(0) >= min_ok
                })
            })
            .then_some(())
    })
    .map_err(|e| {
        anyhow::anyhow!(
            "{e}\nstats: {}\nlog:\n{}",
            gw.stats()
                .map(|s| s["snmp_targets"].to_string())
                .unwrap_or_default(),
            gw.log()
        )
    })
}

/// Stops the gateway and reads one interface's series from its store.
fn stop_and_read(
    mut gw: Gateway,
    series: &[(&str, &str)],
) -> anyhow::Result<(serde_json::Value, Vec<Vec<RateSample>>)> {
    let stats = gw.stats()?;
    assert!(
        gw.proc.terminate(Duration::from_secs(10)),
        "netwarden did not stop on SIGTERM"
    );
    let store = Store::open(&gw.data_dir, 1 << 20, 10)?;
    let mut out = Vec::new();
    for (t, i) in series {
        out.push(store.series(t, i, 0, u64::MAX)?);
    }
    Ok((stats, out))
}

fn octets(s: &RateSample) -> f64 {
    s.in_bps.unwrap_or(0.0) * s.step_ms as f64 / 8_000.0
}

#[test]
fn polled_rates_match_the_bytes_sent_over_v2c_and_v3() -> anyhow::Result<()> {
    const INTERVAL: u64 = 4;
    let ns = Netns::create()?;
    let snmpd = Snmpd::start(Some(&ns), ns.ns_addr, 1161)?;
    let addr = snmpd.addr.to_string();
    let dir = tempdir::Dir::new("snmp-rates")?;
    let config = format!(
        "[snmp]\n{}{}",
        v2c_target("ns-v2c", &addr, &ns.ns_if, INTERVAL),
        v3_target("ns-v3", &addr, &ns.ns_if, INTERVAL)
    );
    let gw = gateway_with_config(&dir, &config, &[])?;
    // Two good polls each: a baseline and one step.
    wait_polled(&gw, &["ns-v2c", "ns-v3"], 0, 2)?;

    let t0 = now_ms();
    let sent = ns.send_udp(3_000, 1_000)?;
    let t1 = now_ms();
    // Every byte is visible once a poll comes after the agent's cache expired past t1.
    let deadline = t1 + AGENT_CACHE_MS + INTERVAL * 1000 + 1_000;
    wait_polled(&gw, &["ns-v2c", "ns-v3"], t1 + AGENT_CACHE_MS + 500, 0)?;
    let (stats, series) = stop_and_read(gw, &[("ns-v2c", &ns.ns_if), ("ns-v3", &ns.ns_if)])?;

    for (name, samples) in ["ns-v2c", "ns-v3"].iter().zip(&series) {
        assert!(
            samples.iter().any(|s| s.ts_ms <= t0) && samples.iter().any(|s| s.ts_ms > t0),
            "{name}: a step before the traffic and one after: {samples:?}"
        );
        assert!(
            samples
                .iter()
                .all(|s| s.in_bps.is_some() && s.out_bps.is_some()),
            "{name}: no step should be unknown: {samples:?}"
        );
        let during: f64 = samples
            .iter()
            .filter(|s| s.ts_ms > t0 && s.ts_ms <= deadline)
            .map(octets)
            .sum();
        // The polls themselves cross the veth (a few hundred bytes per step).
        let tolerance = sent as f64 * 0.01 + 4_000.0;
        assert!(
            (during - sent as f64).abs() <= tolerance,
            "{name}: polled {during:.0} octets between {t0} and {deadline}, sent {sent}: {samples:?}"
        );
        for s in samples
            .iter()
            .filter(|s| s.ts_ms <= t0 || s.ts_ms > deadline)
        {
            assert!(
                octets(s) < 2_000.0,
                "{name}: traffic counted outside its steps: {s:?} (sent {t0}..{t1})"
            );
        }
        assert!(samples.iter().all(|s| s.if_name == ns.ns_if));
    }
    let m = &stats["metrics"];
    assert_eq!(m["snmp_polls_failed"].as_u64(), Some(0), "{stats}");
    assert_eq!(
        m["snmp_samples_dropped_queue_full"].as_u64(),
        Some(0),
        "{stats}"
    );
    assert_eq!(
        stats["snmp_targets"]["ns-v3"]["security"],
        "v3 authPriv user \"nwuser\""
    );
    assert_eq!(
        stats["snmp_targets"]["ns-v2c"]["hc_interfaces"].as_u64(),
        Some(1)
    );
    drop(snmpd);
    Ok(())
}

#[test]
fn agent_restart_with_reset_counters_is_unknown_not_a_spike() -> anyhow::Result<()> {
    const INTERVAL: u64 = 2;
    let ns = Netns::create()?;
    let mut snmpd = Snmpd::start(Some(&ns), ns.ns_addr, 1161)?;
    let addr = snmpd.addr.to_string();
    let dir = tempdir::Dir::new("snmp-restart")?;
    let config = format!(
        "[snmp]\n{}{}",
        v2c_target("r-v2c", &addr, &ns.ns_if, INTERVAL),
        v3_target("r-v3", &addr, &ns.ns_if, INTERVAL)
    );
    let gw = gateway_with_config(&dir, &config, &[])?;
    wait_polled(&gw, &["r-v2c", "r-v3"], 0, 2)?;
    // Counters well away from zero, so a reset read as a wrap or a plain difference would be
    // a huge spike.
    let mut sent = ns.send_udp(2_000, 1_000)?;
    wait_polled(&gw, &["r-v2c", "r-v3"], now_ms() + AGENT_CACHE_MS, 0)?;

    // "Reboot": the agent restarts with a new engineID, the interface comes back with counters
    // from zero under a new ifIndex.
    let restart_ms = now_ms();
    snmpd.stop();
    ns.recreate_link()?;
    snmpd.restart(2)?;
    sent += ns.send_udp(500, 500)?;
    let after_ms = now_ms();
    wait_polled(
        &gw,
        &["r-v2c", "r-v3"],
        after_ms + AGENT_CACHE_MS + 2 * INTERVAL * 1000,
        0,
    )?;
    let (stats, series) = stop_and_read(gw, &[("r-v2c", &ns.ns_if), ("r-v3", &ns.ns_if)])?;

    for (name, samples) in ["r-v2c", "r-v3"].iter().zip(&series) {
        for s in samples {
            assert!(
                octets(s) <= sent as f64 + 10_000.0,
                "{name}: spike of {:.0} octets (sent {sent} in all): {s:?}",
                octets(s)
            );
        }
        let unknown = samples
            .iter()
            .filter(|s| s.ts_ms > restart_ms && s.in_bps.is_none())
            .count();
        assert!(
            unknown >= 1,
            "{name}: the restart step must be unknown: {samples:?}"
        );
        let before: Vec<_> = samples.iter().filter(|s| s.ts_ms < restart_ms).collect();
        let after: Vec<_> = samples
            .iter()
            .filter(|s| s.ts_ms > after_ms && s.in_bps.is_some())
            .collect();
        assert!(
            !before.is_empty() && !after.is_empty(),
            "{name}: {samples:?}"
        );
        // The series follows the interface by name across its new ifIndex.
        assert_ne!(
            before[0].if_index,
            after[after.len() - 1].if_index,
            "{name}: {samples:?}"
        );
        assert_eq!(stats["snmp_targets"][name]["state"], "ok", "{stats}");
    }
    let m = &stats["metrics"];
    assert!(m["snmp_agent_restarts"].as_u64() >= Some(1), "{stats}");
    assert!(
        m["snmp_interfaces_renumbered"].as_u64() >= Some(1),
        "{stats}"
    );
    // The v3 session found the new engine: by a rediscovery on the engine-ID mismatch, or by a
    // rebuild after a request timed out while the agent was down.
    let recovered = m["snmp_engine_rediscoveries"].as_u64().unwrap_or(0)
        + m["snmp_session_rebuilds"].as_u64().unwrap_or(0);
    assert!(recovered >= 1, "{stats}");
    Ok(())
}

#[test]
fn wrong_credentials_give_a_clear_error_and_the_daemon_keeps_running() -> anyhow::Result<()> {
    let port = free_udp_port()?;
    let snmpd = Snmpd::start(None, std::net::Ipv4Addr::LOCALHOST, port)?;
    let addr = snmpd.addr.to_string();
    let v3 = |name: &str, user: &str, auth: &str, privacy: &str| {
        format!(
            r#"
[[snmp.targets]]
name = "{name}"
address = "{addr}"
version = "3"
user = "{user}"
auth_protocol = "sha"
auth_password = "{auth}"
priv_protocol = "aes"
priv_password = "{privacy}"
interval_secs = 1
timeout_ms = 200
retries = 0
"#
        )
    };
    let config = format!(
        "[snmp]\n{}{}{}{}\n[[snmp.targets]]\nname = \"bad-community\"\naddress = \"{addr}\"\n\
         community = \"not-{SNMP_COMMUNITY}\"\ninterval_secs = 1\ntimeout_ms = 200\nretries = 0\n",
        v3("bad-auth", SNMP_USER, "wrong-auth-pass", SNMP_PRIV_PASSWORD),
        v3("bad-priv", SNMP_USER, SNMP_AUTH_PASSWORD, "wrong-priv-pass"),
        v3(
            "bad-user",
            "nobody-here",
            SNMP_AUTH_PASSWORD,
            SNMP_PRIV_PASSWORD
        ),
        v3("good", SNMP_USER, SNMP_AUTH_PASSWORD, SNMP_PRIV_PASSWORD),
    );
    let dir = tempdir::Dir::new("snmp-creds")?;
    let mut gw = gateway_with_config(&dir, &config, &[])?;
    let names = ["bad-auth", "bad-priv", "bad-user", "bad-community", "good"];
    let stats = wait_for(Duration::from_secs(20), "every target to report", || {
        let s = gw.stats().ok()?;
        names
            .iter()
            .all(|n| {
                let t = &s["snmp_targets"][n];
                t["polls_ok"].as_u64().unwrap_or(0) + t["polls_failed"].as_u64().unwrap_or(0) >= 2
            })
            .then_some(s)
    })
    .map_err(|e| anyhow::anyhow!("{e}\nlog:\n{}", gw.log()))?;
    let t = &stats["snmp_targets"];
    // net-snmp drops a request it cannot decrypt without a Report (snmpget times out too).
    assert_eq!(t["bad-priv"]["state"], "timeout", "{t}");
    let err = t["bad-priv"]["last_error"].as_str().unwrap_or_default();
    assert!(err.contains("wrong privacy password"), "{err}");
    for n in ["bad-auth", "bad-user"] {
        assert_eq!(t[n]["state"], "auth_error", "{n}: {t}");
        let err = t[n]["last_error"].as_str().unwrap_or_default();
        assert!(
            err.contains("authentication") && err.contains("failed for user"),
            "{n}: {err}"
        );
    }
    assert_eq!(t["bad-community"]["state"], "timeout", "{t}");
    let err = t["bad-community"]["last_error"]
        .as_str()
        .unwrap_or_default();
    assert!(err.contains("wrong community"), "{err}");
    assert_eq!(t["good"]["state"], "ok", "{t}");
    assert!(
        stats["metrics"]["snmp_auth_errors"].as_u64() >= Some(2),
        "{stats}"
    );
    assert!(
        gw.proc.is_running(),
        "a refused target must not stop the daemon"
    );
    assert!(
        gw.log().contains("SNMP target refuses our credentials"),
        "{}",
        gw.log()
    );
    Ok(())
}

#[test]
fn v3_auth_and_privacy_protocols_interoperate_with_net_snmp() -> anyhow::Result<()> {
    let port = free_udp_port()?;
    let snmpd = Snmpd::start(None, std::net::Ipv4Addr::LOCALHOST, port)?;
    let addr = snmpd.addr.to_string();
    let ours = |p: &str| p.to_ascii_lowercase().replace('-', "");
    let mut config = String::from("[snmp]\n");
    for (user, auth, privacy) in SNMP_V3_MATRIX {
        config.push_str(&format!(
            "[[snmp.targets]]\nname = \"{user}\"\naddress = \"{addr}\"\nversion = \"3\"\n\
             user = \"{user}\"\nauth_protocol = \"{}\"\nauth_password = \"{SNMP_AUTH_PASSWORD}\"\n\
             interval_secs = 1\ntimeout_ms = 300\nretries = 0\n",
            ours(auth)
        ));
        if let Some(p) = privacy {
            config.push_str(&format!(
                "priv_protocol = \"{}\"\npriv_password = \"{SNMP_PRIV_PASSWORD}\"\n",
                ours(p)
            ));
        }
    }
    let dir = tempdir::Dir::new("snmp-matrix")?;
    let gw = gateway_with_config(&dir, &config, &[])?;
    let users: Vec<&str> = SNMP_V3_MATRIX.iter().map(|(u, _, _)| *u).collect();
    wait_polled(&gw, &users, 0, 2)?;
    let stats = gw.stats()?;
    for (user, _, privacy) in SNMP_V3_MATRIX {
        let t = &stats["snmp_targets"][user];
        assert_eq!(t["state"], "ok", "{user}: {t}");
        let level = if privacy.is_some() {
            "authPriv"
        } else {
            "authNoPriv"
        };
        assert_eq!(t["security"], format!("v3 {level} user \"{user}\""), "{t}");
        assert!(t["interfaces"].as_u64() >= Some(1), "{t}");
    }
    Ok(())
}

/// The steady load of the series test: `ping` at about 40 requests/s of 972 bytes in, and as
/// many replies out.
const PING_PER_SEC: u32 = 40;
const PING_SIZE: u32 = 972;

/// net-snmp reloads its interface cache on a 3 s timer, so each poll reads counters 0 to 3 s
/// old: a steady load shows as step rates between about 0.25x and 1.75x of the real rate at a
/// 4 s interval. The stored normal below has exactly that character (the test's stand-in for
/// the weeks the daemon would have polled), with the staleness drawn from a seeded generator.
struct Staleness(u64);

impl Staleness {
    fn next_ms(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % AGENT_CACHE_MS
    }
}

/// Appends steady-load samples at `interval_ms` after `from_ms` (exclusive) up to now.
fn store_normal(
    store: &Store,
    iface: (&str, u32, &str),
    (in_bps, out_bps): (f64, f64),
    interval_ms: u64,
    from_ms: u64,
    stale: &mut Staleness,
) -> anyhow::Result<u64> {
    let (target, if_index, if_name) = iface;
    let mut ts = from_ms + interval_ms;
    let mut prev = stale.next_ms();
    let mut last = from_ms;
    while ts <= now_ms() {
        let cur = stale.next_ms();
        let seen = (interval_ms + prev - cur) as f64 / interval_ms as f64;
        store.append_sample(&RateSample {
            target: target.to_string(),
            if_index,
            if_name: if_name.to_string(),
            ts_ms: ts,
            step_ms: interval_ms,
            in_bps: Some(in_bps * seen),
            out_bps: Some(out_bps * seen),
        })?;
        prev = cur;
        last = ts;
        ts += interval_ms;
    }
    store.flush()?;
    Ok(last)
}

/// The inside interface's (rx, tx) octet counters, read straight from the kernel.
fn kernel_octets(ns: &Netns) -> anyhow::Result<(u64, u64)> {
    let read = |what: &str| -> anyhow::Result<u64> {
        let out = ns
            .command(&[
                "cat",
                &format!("/sys/class/net/{}/statistics/{what}", ns.ns_if),
            ])
            .output()?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().parse()?)
    };
    Ok((read("rx_bytes")?, read("tx_bytes")?))
}

#[test]
fn burst_far_above_the_learnt_normal_raises_a_series_alert_over_mqtt() -> anyhow::Result<()> {
    const INTERVAL_MS: u64 = 4_000;
    const HISTORY_STEPS: u64 = 300;
    let ns = Netns::create()?;
    let snmpd = Snmpd::start(Some(&ns), ns.ns_addr, 1161)?;
    let broker = Mosquitto::start()?;
    let sub = Subscriber::start(broker.port, "netwarden/e2e/r1/alerts/#")?;
    let if_index = ns.ns_if_index()?;
    let iface = ("branch", if_index, ns.ns_if.as_str());

    // The steady load, bounded (at most 150 s), and its real rate as the kernel counts it.
    let _load = ns.ping_load(PING_PER_SEC, PING_SIZE, PING_PER_SEC * 150, 150)?;
    std::thread::sleep(Duration::from_millis(500));
    let (rx0, tx0) = kernel_octets(&ns)?;
    let t0 = std::time::Instant::now();
    std::thread::sleep(Duration::from_secs(4));
    let (rx1, tx1) = kernel_octets(&ns)?;
    let secs = t0.elapsed().as_secs_f64();
    let level = (
        (rx1 - rx0) as f64 * 8.0 / secs,
        (tx1 - tx0) as f64 * 8.0 / secs,
    );

    // The learnt normal: 20 minutes of that load as the daemon stores it, and the shipped
    // model's threshold recalibrated on it with the operator's command.
    let dir = tempdir::Dir::new("snmp-series")?;
    let data = dir.path().join("data");
    let mut stale = Staleness(7);
    let start = now_ms() - HISTORY_STEPS * INTERVAL_MS;
    let last = {
        let store = Store::open(&data, 1 << 20, 10)?;
        store_normal(&store, iface, level, INTERVAL_MS, start, &mut stale)?
    };
    let calibrated = dir.path().join("series-calibrated");
    let out = std::process::Command::new(netwarden_bin()?)
        .arg("calibrate")
        .arg("--series-model")
        .arg(repo_root().join("models/bundles/series-ae"))
        .arg("--data-dir")
        .arg(&data)
        .arg("--out")
        .arg(&calibrated)
        .output()?;
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "calibrate: {said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("threshold"), "{said}");
    // The history reaches up to the start, as it would after a short stop.
    {
        let store = Store::open(&data, 1 << 20, 10)?;
        store_normal(&store, iface, level, INTERVAL_MS, last, &mut stale)?;
    }

    let config = format!(
        "[detector]\nseries_model = \"{}\"\nseries_dedupe_window_secs = 1\n[snmp]\n{}",
        calibrated.display(),
        v2c_target(
            "branch",
            &snmpd.addr.to_string(),
            &ns.ns_if,
            INTERVAL_MS / 1000
        )
    );
    let mqtt = format!("mqtt://127.0.0.1:{}", broker.port);
    let gw = gateway_in(
        dir,
        &config,
        &["--mqtt", &mqtt, "--site", "e2e", "--device", "r1"],
    )?;
    let scored = |gw: &Gateway| {
        gw.stats()
            .ok()
            .and_then(|s| s["metrics"]["series_windows_scored"].as_u64())
            .unwrap_or(0)
    };
    // Warm windows: the first live steps are scored at once, not after 55 polls.
    wait_for(Duration::from_secs(30), "live windows scored", || {
        (scored(&gw) >= 2).then_some(())
    })
    .map_err(|e| anyhow::anyhow!("{e}\nlog:\n{}", gw.log()))?;
    assert!(gw.log().contains("Series windows warmed"), "{}", gw.log());
    let before_burst = sub.messages();

    // The burst: about 60 Mbit/s into the interface for three steps (bounded: 84 MB).
    let t_burst = now_ms();
    let mut sent = 0;
    for _ in 0..3 {
        let step = std::time::Instant::now();
        sent += ns.send_udp(20_000, 1_400)?;
        std::thread::sleep(Duration::from_millis(INTERVAL_MS).saturating_sub(step.elapsed()));
    }
    let high = |m: &[(String, String)]| {
        m.iter().find_map(|(topic, payload)| {
            let a: serde_json::Value = serde_json::from_str(payload).ok()?;
            (topic.ends_with("/high")
                && a["subject"]["kind"] == "interface"
                && a["subject"]["window_last_ms"].as_u64() >= Some(t_burst))
            .then_some((topic.clone(), a))
        })
    };
    let (topic, a) = wait_for(Duration::from_secs(30), "a high interface alert", || {
        high(&sub.messages())
    })
    .map_err(|e| {
        anyhow::anyhow!(
            "{e}\nmessages: {:#?}\nstats: {}\nlog:\n{}",
            sub.messages(),
            gw.stats()
                .map(|s| s["metrics"].to_string())
                .unwrap_or_default(),
            gw.log()
        )
    })?;
    assert_eq!(topic, "netwarden/e2e/r1/alerts/high", "{a}");
    assert_eq!(a["detector"], "series_ae", "{a}");
    assert_eq!(a["model"]["name"], "series-ae", "{a}");
    assert_eq!(a["subject"]["target"], "branch", "{a}");
    assert_eq!(a["subject"]["if_name"], ns.ns_if.as_str(), "{a}");
    assert_eq!(a["subject"]["if_index"].as_u64(), Some(u64::from(if_index)));
    assert_ne!(a["subject"]["direction"], "out", "the burst came in: {a}");
    let (score, threshold) = (
        a["score"].as_f64().unwrap_or(0.0),
        a["threshold"].as_f64().unwrap_or(f64::MAX),
    );
    assert!(score > 2.0 * threshold, "{a}");
    let top: Vec<&str> = a["top_features"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["feature"].as_str())
        .collect();
    assert!(
        top.first().is_some_and(|f| f.starts_with("in_bps")),
        "the inbound features deviate most: {top:?} {a} (sent {sent} octets)"
    );
    // The steady load before it was normal to the calibrated model: nothing high.
    let high_before: Vec<_> = before_burst
        .iter()
        .filter(|(t, _)| t.ends_with("/high"))
        .collect();
    assert!(
        high_before.is_empty(),
        "high alerts before the burst: {high_before:?}"
    );
    drop(snmpd);
    Ok(())
}
