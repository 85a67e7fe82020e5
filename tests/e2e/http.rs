//! The HTTP API and the dashboard end to end: a gateway fed a NetFlow scan capture and polling
//! a real snmpd (its interface history pre-filled so the series model scores from the first poll),
//! queried over HTTP, and its dashboard loaded in headless Chromium (Debian's package), which
//! must draw the plots and the alert; screenshots go to target/test-output/.

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use netwarden::records::RateSample;
use netwarden::sinks::store::Store;
use netwarden_e2e::{
    capture_payloads, fixture, free_tcp_port, free_udp_port, gateway_in, netwarden_bin, replay,
    require, tempdir, wait_for, Snmpd, SNMP_COMMUNITY,
};

const SCANNER: &str = "10.213.0.1";

/// A minimal HTTP/1.1 client (one request per connection): status, headers, body.
fn http(
    port: u16,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &[u8],
) -> anyhow::Result<(u16, String, Vec<u8>)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )?;
    s.write_all(body)?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| anyhow::anyhow!("no header end"))?;
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let status: u16 = head.split(' ').nth(1).unwrap_or("0").parse()?;
    let mut body = raw[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    Ok((status, head, body))
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let n = usize::from_str_radix(String::from_utf8_lossy(&b[..eol]).trim(), 16).unwrap_or(0);
        if n == 0 || b.len() < eol + 2 + n {
            break;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + n]);
        b = &b[(eol + 4 + n).min(b.len())..];
    }
    out
}

fn get_json(port: u16, path: &str, token: Option<&str>) -> anyhow::Result<serde_json::Value> {
    let (status, _, body) = http(port, "GET", path, token, b"")?;
    anyhow::ensure!(
        status == 200,
        "{path}: {status} {}",
        String::from_utf8_lossy(&body)
    );
    Ok(serde_json::from_slice(&body)?)
}

fn output_dir() -> anyhow::Result<PathBuf> {
    let dir = netwarden_e2e::repo_root().join("target/test-output");
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Headless Chromium with the flags that work here, a fresh profile, bounded in time.
fn chromium(args: &[&str]) -> anyhow::Result<std::process::Output> {
    let profile = tempdir::Dir::new("http-chromium")?;
    let out = Command::new("timeout")
        .arg("90")
        .arg("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .output()?;
    Ok(out)
}

/// Steady samples every `step_ms` for the last `n` steps, ending now.
fn prefill(
    store: &Store,
    target: &str,
    if_index: u32,
    if_name: &str,
    n: u64,
    step_ms: u64,
) -> anyhow::Result<()> {
    let now = netwarden::now_ms();
    for i in (1..=n).rev() {
        let wobble = 1.0 + 0.2 * ((i as f64) * 0.7).sin();
        store.append_sample(&RateSample {
            target: target.into(),
            if_index,
            if_name: if_name.into(),
            ts_ms: now - i * step_ms,
            step_ms,
            in_bps: Some(8_000.0 * wobble),
            out_bps: Some(8_000.0 * wobble),
        })?;
    }
    store.flush()?;
    Ok(())
}

#[test]
fn api_and_dashboard_show_the_scan_alert_and_the_interface_plots() -> anyhow::Result<()> {
    require("chromium")?;
    let snmpd = Snmpd::start(None, std::net::Ipv4Addr::LOCALHOST, free_udp_port()?)?;
    let dir = tempdir::Dir::new("http-e2e")?;
    {
        let store = Store::open(&dir.path().join("data"), 1 << 20, 100)?;
        prefill(&store, "edge", 1, "lo", 70, 1000)?;
    }
    let port = free_tcp_port()?;
    let config = format!(
        "[http]\nlisten = \"127.0.0.1:{port}\"\n\n[history]\nsummary_interval = \"1s\"\n\n[[snmp.targets]]\nname = \"edge\"\naddress = \"{}\"\ncommunity = \"{SNMP_COMMUNITY}\"\ninterfaces = [\"lo\"]\ninterval_secs = 1\ntimeout_ms = 200\nretries = 1\n",
        snmpd.addr
    );
    let gw = gateway_in(dir, &config, &["--site", "e2e", "--device", "gw"])?;

    // The API answers before any traffic.
    let health = get_json(port, "/health", None)?;
    assert_eq!(health["status"], "ok");
    assert_eq!(health["auth"], false);
    let models = get_json(port, "/models", None)?;
    let detectors: Vec<_> = models["models"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| m["detector"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(detectors, ["flow_ae", "series_ae"], "{models}");
    assert_eq!(models["models"][0]["signature"], "built in");
    assert!(models["models"][0]["threshold"]
        .as_f64()
        .is_some_and(|t| t > 0.0));
    assert_eq!(models["models"][1]["state"], "active");

    // The scan.
    let payloads = capture_payloads(&fixture("netflow/softflowd-v9-scan-mixed.pcap"))?;
    let sock = UdpSocket::bind("127.0.0.1:0")?;
    replay(&payloads, &sock, gw.netflow, 8, Duration::from_millis(2))?;
    let exporter = sock.local_addr()?.to_string();
    let alerts = wait_for(Duration::from_secs(30), "the scan alert on /alerts", || {
        let a = get_json(port, "/alerts?detector=flow_ae", None).ok()?;
        a["alerts"]
            .as_array()?
            .iter()
            .any(|x| x.to_string().contains(SCANNER))
            .then_some(a)
    })
    .map_err(|e| anyhow::anyhow!("{e}\nlog:\n{}", gw.log()))?;
    let first = &alerts["alerts"][0];
    assert!(
        first["score"].as_f64() > first["threshold"].as_f64(),
        "{first}"
    );

    // Filters and paging. The gateway may still be raising alerts from the replay, so the
    // pages are compared with the whole list only when that list was the same before and
    // after them (a new alert in between shifts every page by one).
    let all_alerts = || -> anyhow::Result<Vec<serde_json::Value>> {
        Ok(get_json(port, "/alerts?limit=1000", None)?["alerts"]
            .as_array()
            .cloned()
            .unwrap_or_default())
    };
    let mut checked = false;
    for _ in 0..50 {
        let all = all_alerts()?;
        let page = get_json(port, "/alerts?limit=1", None)?;
        assert_eq!(page["alerts"].as_array().map(Vec::len), Some(1));
        let page2 = match page["next_cursor"].as_str() {
            Some(next) => Some(get_json(
                port,
                &format!("/alerts?limit=1&cursor={next}"),
                None,
            )?),
            None => None,
        };
        if all_alerts()? != all {
            std::thread::sleep(Duration::from_millis(200));
            continue;
        }
        assert_eq!(page["alerts"][0]["id"], all[0]["id"], "newest first");
        if all.len() > 1 {
            let page2 = page2.expect("a full page has a cursor");
            assert_eq!(
                page2["alerts"][0]["id"], all[1]["id"],
                "newest first, resumed at the cursor"
            );
        }
        checked = true;
        break;
    }
    assert!(checked, "the alert list kept changing for 10 s");
    let none = get_json(
        port,
        "/alerts?since=2h&detector=series_ae&severity=high",
        None,
    )?;
    assert!(none["alerts"].as_array().is_some_and(|a| a
        .iter()
        .all(|x| x["detector"] == "series_ae" && x["severity"] == "high")));
    // `series_lstm`, the series detector's name before issue 14, filters as `series_ae`.
    let old = get_json(
        port,
        "/alerts?since=2h&detector=series_lstm&severity=high",
        None,
    )?;
    assert_eq!(old["alerts"], none["alerts"], "{old}");
    let (status, _, body) = http(port, "GET", "/alerts?severity=urgent", None, b"")?;
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    let e: serde_json::Value = serde_json::from_slice(&body)?;
    assert_eq!(e["error"]["code"], "bad_query");

    // /metrics: Prometheus text with the exporter's counters and the latency histogram.
    // (Per-exporter counters are published by the pipeline once a second.)
    let records = format!("netwarden_exporter_records_total{{exporter=\"{exporter}\"}} ");
    let (head, text) = wait_for(
        Duration::from_secs(10),
        "exporter counters on /metrics",
        || {
            let (status, head, body) = http(port, "GET", "/metrics", None, b"").ok()?;
            let text = String::from_utf8(body).ok()?;
            let seen = text
                .lines()
                .any(|l| l.starts_with(&records) && !l.ends_with(" 0"));
            (status == 200 && seen).then_some((head, text))
        },
    )?;
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    assert!(
        text.contains("netwarden_exporter_template_misses_total{"),
        "{text}"
    );
    assert!(
        text.contains("netwarden_flow_inference_seconds_bucket{le=\"+Inf\"}"),
        "{text}"
    );
    assert!(text.contains("netwarden_mqtt_connected 0"));
    assert!(text.contains("netwarden_outbox_alerts "));
    assert!(text.contains("netwarden_netflow_queue_depth "));
    assert!(
        text.contains("netwarden_snmp_target_up{target=\"edge\""),
        "{text}"
    );

    // /detect: scores, and clear 400s. The built-in flow model reads flow-v2 rows (17 values):
    // a DNS-like answered exchange, and an outlier.
    let row = "[2, 150, 1, 75, 0, 3, 2, 2, 1, 1, 90, 0.6, 0, 0, 2, 0, 0]";
    let outlier = "[1e6, 1e9, 0, 1e3, 500, 400, 300, 0, 0, 0, 0, 1, 0, 0, 500, 1, 1]";
    let (status, _, body) = http(
        port,
        "POST",
        "/detect",
        None,
        format!(r#"{{"detector":"flow_ae","flows":[{row},{outlier}]}}"#).as_bytes(),
    )?;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let d: serde_json::Value = serde_json::from_slice(&body)?;
    assert_eq!(d["results"].as_array().map(Vec::len), Some(2));
    for r in d["results"].as_array().into_iter().flatten() {
        assert!(
            r["is_anomaly"].is_boolean()
                && r["error"].is_number()
                && r["threshold"].is_number()
                && r["severity"].is_string(),
            "{r}"
        );
    }
    assert_eq!(d["results"][1]["is_anomaly"], true, "{d}");
    for (body, code) in [
        (
            r#"{"detector":"flow_ae","flows":[[1,2,3]]}"#.to_string(),
            "wrong_shape",
        ),
        (
            r#"{"detector":"flow_ae","flows":[[1,2,3,4,5,6,7,NaN]]}"#.to_string(),
            "bad_json",
        ),
        (
            r#"{"detector":"isolation_forest","flows":[]}"#.to_string(),
            "unknown_detector",
        ),
        // flow-v1 rows to the built-in flow-v2 model: refused, naming what it reads.
        (
            format!(
                r#"{{"detector":"flow_ae","flows":[[{}]]}}"#,
                ["1"; 8].join(",")
            ),
            "wrong_schema",
        ),
    ] {
        let (status, _, b) = http(port, "POST", "/detect", None, body.as_bytes())?;
        assert_eq!(status, 400, "{body}");
        let e: serde_json::Value = serde_json::from_slice(&b)?;
        assert_eq!(e["error"]["code"], code, "{e}");
        if code == "wrong_schema" {
            let m = e["error"]["message"].as_str().unwrap_or("");
            assert!(m.contains("reads flow-v2 rows (17 values"), "{e}");
        }
    }
    let (status, _, _) = http(port, "POST", "/detect", None, &vec![b' '; 2 << 20])?;
    assert_eq!(status, 413);
    // A series window, under the detector's current name and its old one (`series_lstm`).
    let window = vec!["[8000,8000,12,3,0,0,0,0]"; 50].join(",");
    let mut series_replies = Vec::new();
    for name in ["series_ae", "series_lstm"] {
        let body = format!(r#"{{"detector":"{name}","sequence":[{window}]}}"#);
        let (status, _, b) = http(port, "POST", "/detect", None, body.as_bytes())?;
        assert_eq!(status, 200, "{name}: {}", String::from_utf8_lossy(&b));
        let d: serde_json::Value = serde_json::from_slice(&b)?;
        assert_eq!(d["detector"], "series_ae", "{d}");
        assert_eq!(d["results"].as_array().map(Vec::len), Some(1), "{d}");
        series_replies.push(d);
    }
    assert_eq!(series_replies[0], series_replies[1]);

    // The series: the pre-filled window plus live polls of snmpd give scores.
    let q = "/history/interface?target=edge&if_name=lo&since=10m";
    let iface = wait_for(Duration::from_secs(30), "series scores for edge lo", || {
        let v = get_json(port, q, None).ok()?;
        (v["scores"].as_array()?.len() >= 2).then_some(v)
    })
    .map_err(|e| anyhow::anyhow!("{e}\nlog:\n{}\nsnmpd:\n{}", gw.log(), snmpd.log()))?;
    assert!(
        iface["samples"].as_array().is_some_and(|s| s.len() > 70),
        "{iface}"
    );
    assert!(iface["threshold"].as_f64().is_some());
    let flows = get_json(port, "/history/flows?since=5m", None)?;
    assert!(
        flows["points"].as_array().is_some_and(|p| !p.is_empty()),
        "{flows}"
    );
    assert!(
        flows["top_talkers"].to_string().contains(SCANNER),
        "{flows}"
    );

    // The dashboard in a real browser: the interface view (default) and the NetFlow view.
    let out_dir = output_dir()?;
    for (query, shot) in [
        ("", "dashboard.png"),
        ("?source=flows", "dashboard-flows.png"),
    ] {
        let url = format!("http://127.0.0.1:{port}/{query}");
        let dom = chromium(&["--virtual-time-budget=10000", "--dump-dom", &url])?;
        let html = String::from_utf8_lossy(&dom.stdout);
        assert!(
            html.contains("data-loaded="),
            "{url}: the page never finished a refresh:\n{}\n{}",
            html,
            String::from_utf8_lossy(&dom.stderr)
        );
        for svg in ["traffic-svg", "error-svg", "dist-svg"] {
            let start = html.find(&format!("id=\"{svg}\"")).expect("svg present");
            let part = &html[start
                ..html[start..]
                    .find("</svg>")
                    .map_or(html.len(), |e| start + e)];
            assert!(
                part.contains("class=\"series\"") || part.contains("class=\"bar\""),
                "{url}: {svg} has no data drawn: {part}"
            );
            if svg != "traffic-svg" {
                assert!(
                    part.contains("class=\"threshold\""),
                    "{url}: {svg} has no threshold line"
                );
            }
        }
        assert!(
            html.contains("class=\"alert\"") && html.contains(SCANNER),
            "{url}: alert row missing"
        );
        let path = out_dir.join(shot);
        let _ = std::fs::remove_file(&path);
        let shot_out = chromium(&[
            "--virtual-time-budget=10000",
            "--window-size=1400,1500",
            &format!("--screenshot={}", path.display()),
            &url,
        ])?;
        let png = std::fs::read(&path)
            .map_err(|e| anyhow::anyhow!("{e}: {}", String::from_utf8_lossy(&shot_out.stderr)))?;
        assert!(
            png.starts_with(b"\x89PNG") && png.len() > 20_000,
            "{shot}: {} bytes",
            png.len()
        );
    }
    Ok(())
}

#[test]
fn token_is_required_when_set_and_exposed_without_one_refuses_to_start() -> anyhow::Result<()> {
    // Exposed, no token: a clear configuration error, nothing started.
    let out = Command::new(netwarden_bin()?)
        .args([
            "run",
            "--http-listen",
            "0.0.0.0:0",
            "--netflow-listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(std::env::temp_dir().join("netwarden-http-refused"))
        .env_remove("NETWARDEN_HTTP_TOKEN")
        .output()?;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("refusing to serve the API unauthenticated"),
        "{err}"
    );

    // With a token: 401 without it, 200 with it; /health and the page stay open.
    let dir = tempdir::Dir::new("http-token")?;
    let token = "e2e-token-0123456789abcdef";
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{token}\n"))?;
    let port = free_tcp_port()?;
    let config = format!(
        "[http]\nlisten = \"127.0.0.1:{port}\"\ntoken_file = \"{}\"\n",
        token_file.display()
    );
    let gw = gateway_in(dir, &config, &[])?;
    let (status, head, _) = http(port, "GET", "/alerts", None, b"")?;
    assert_eq!(status, 401);
    assert!(
        head.to_ascii_lowercase()
            .contains("www-authenticate: bearer"),
        "{head}"
    );
    assert_eq!(
        http(port, "GET", "/metrics", Some("wrong-token-0123456789"), b"")?.0,
        401
    );
    assert_eq!(http(port, "GET", "/metrics", Some(token), b"")?.0, 200);
    assert_eq!(http(port, "GET", "/health", None, b"")?.0, 200);
    assert_eq!(http(port, "GET", "/", None, b"")?.0, 200);
    // The feature samples for central training: behind the token, CSV (issue 18).
    assert_eq!(http(port, "GET", "/samples", None, b"")?.0, 401);
    let (status, _, body) = http(port, "GET", "/samples", Some(token), b"")?;
    assert_eq!(status, 200);
    assert!(
        body.starts_with(b"ts_ms,schema,bidirectional_packets,"),
        "{body:?}"
    );
    let (status, _, body) = http(port, "GET", "/samples?schema=flow-v9", Some(token), b"")?;
    assert_eq!(status, 400, "{body:?}");
    assert!(String::from_utf8_lossy(&body).contains("flow-v9"));
    // Learning is off in the harness: /health lists no learning period.
    assert_eq!(
        get_json(port, "/health", None)?["learning"],
        serde_json::json!([])
    );
    assert!(!gw.log().contains(token), "the token must never be logged");
    Ok(())
}
