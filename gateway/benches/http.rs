//! HTTP API figures (docs/performance.md, "HTTP"): the real axum server on 127.0.0.1 with a
//! real sled store, boards filled as 100 exporters and 1,000 SNMP interfaces would fill them,
//! queried over TCP by a plain HTTP/1.1 client.
//!
//! - `/metrics` scrape latency (median, p99) and size;
//! - the dashboard's first load: the page, its script and every API response its first
//!   refresh requests, in bytes on the wire (headers included);
//! - `/detect` latency for one flow, 100 flows and one series window;
//! - what the dashboard adds per scored flow on the NetFlow hot path (`ScoreTally::record`).
//!
//! Run: `cargo bench -p netwarden --bench http`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use netwarden::metrics::Metrics;
use netwarden::models::{ModelInfo, SignatureStatus};
use netwarden::records::scoreboard::{ScoreBoard, ScoreTally};
use netwarden::records::ExporterStats;
use netwarden::records::RateSample;
use netwarden::records::{Alert, FlowSubject, ModelRef, Subject};
use netwarden::records::{FlowSummary, HostSummary, ScoreSummary};
use netwarden::sinks::http::{self, detect, AppState};
use netwarden::sinks::store::Store;

const EXPORTERS: usize = 100;
const INTERFACES: usize = 1000;

fn request(port: u16, method: &str, path: &str, body: &str) -> (u16, usize, Vec<u8>) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_nodelay(true).expect("nodelay");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAccept-Encoding: identity\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("write");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read");
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("head") + 4;
    let status = String::from_utf8_lossy(&raw[9..12]).parse().unwrap_or(0);
    (status, raw.len(), raw[split..].to_vec())
}

fn time(n: usize, mut f: impl FnMut()) -> (Duration, Duration) {
    let mut t: Vec<Duration> = (0..n)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed()
        })
        .collect();
    t.sort();
    (t[n / 2], t[n * 99 / 100])
}

fn alert(i: u64, now: u64) -> Alert {
    Alert {
        id: format!("bench-{i}"),
        ts_ms: now - 1000 * i,
        ts: String::new(),
        site: "bench".into(),
        device: "bench".into(),
        detector: "flow_ae".into(),
        model: ModelRef {
            name: "flow-ae".into(),
            version: "1".into(),
        },
        severity: if i.is_multiple_of(3) { "high" } else { "medium" }.into(),
        score: 0.5,
        threshold: 0.0174,
        subject: Subject::Flow(FlowSubject {
            exporter: "10.0.0.1:2055".into(),
            src_addr: format!("10.1.{}.{}", i / 250, i % 250),
            dst_addr: "10.2.0.1".into(),
            src_port: 40_000,
            dst_port: 22,
            protocol: 6,
            flow_first_ms: 0,
            flow_last_ms: 0,
        }),
        top_features: vec![],
        suppressed_since_last: 12,
        rule: None,
        summary: "high port scan from 10.1.0.1: 412 distinct destination ports in 60 s, reconstruction error 0.5, 28.7x the threshold".into(),
        incident: None,
    }
}

fn main() {
    let dir = std::env::temp_dir().join(format!("netwarden-http-bench-{}", std::process::id()));
    let store = Arc::new(Store::open(&dir, 8 << 20, 100_000).expect("store"));
    let now = netwarden::now_ms();
    let rows: Vec<(Alert, String)> = (0..200).map(|i| (alert(i, now), "t".to_string())).collect();
    let refs: Vec<(&Alert, String)> = rows.iter().map(|(a, t)| (a, t.clone())).collect();
    store.append_alerts(&refs).expect("alerts");

    let scoreboard = ScoreBoard::default();
    // 15 minutes of per-second flow points; five per-minute flow summaries with 50 hosts each.
    for s in 0..900u64 {
        let mut t = ScoreTally::default();
        for h in 0..50u8 {
            t.record(0.001 * f32::from(h + 1), h == 49);
        }
        scoreboard.publish_flow(now - (900 - s) * 1000, t);
    }
    for m in 0..5u64 {
        store
            .history()
            .append_flow_summary(&FlowSummary {
                ts_ms: now - m * 60_000,
                window_ms: 60_000,
                flows: 3000,
                packets: 30_000,
                bytes: 3_000_000,
                anomalous: 60,
                hosts: 50,
                hosts_untracked: 0,
                top_sources: (0..10u64)
                    .map(|h| HostSummary {
                        addr: format!("10.1.0.{h}"),
                        flows: 60,
                        packets: 600,
                        bytes: 60_000 * (h + 1),
                        anomalous: u64::from(h == 9),
                        max_error: 0.01,
                    })
                    .collect(),
            })
            .expect("summary");
    }
    let mut samples = Vec::new();
    let mut scores = Vec::new();
    for i in 0..INTERFACES {
        let (target, if_name) = (format!("sw{}", i / 50), format!("ge-0/0/{}", i % 50));
        samples.push(RateSample {
            target: target.clone(),
            if_index: i as u32,
            if_name: if_name.clone(),
            ts_ms: now,
            step_ms: 60_000,
            in_bps: Some(1e6 + i as f64),
            out_bps: Some(2e6),
        });
        scores.push(ScoreSummary {
            ts_ms: now,
            detector: "series_ae".into(),
            model: "series-ae".into(),
            subject: format!("{target}/{if_name}"),
            count: 1,
            anomalous: 0,
            mean_error: 0.0008,
            max_error: 0.0008,
            threshold: 0.0011,
        });
    }
    scoreboard.publish_rates(&samples);
    scoreboard.publish_series(&scores);
    // The dashboard's interface view reads one interface's stored series and scores: 6 h at
    // 60 s (the scores of every interface share the history's score buckets).
    for k in 0..360u64 {
        let mut s = samples[0].clone();
        s.ts_ms = now - k * 60_000;
        store.append_sample(&s).expect("sample");
        for sc in scores.iter().take(if k < 60 { INTERFACES } else { 1 }) {
            let mut sc = sc.clone();
            sc.ts_ms = now - k * 60_000;
            store.history().append_score(&sc).expect("score");
        }
    }
    let exporters = netwarden::records::ExporterBoard::default();
    {
        let mut e = exporters.lock().expect("lock");
        for i in 0..EXPORTERS {
            e.insert(
                format!("10.0.{}.{}:2055", i / 250, i % 250),
                ExporterStats {
                    datagrams: 1_000_000,
                    records: 30_000_000,
                    template_misses: 3,
                    sequence_missing: 17,
                    v9_datagrams: 1_000_000,
                    ..Default::default()
                },
            );
        }
    }
    let flow: netwarden::models::Manifest =
        serde_json::from_str(netwarden::models::bundle::BUILTIN_MANIFEST).expect("manifest");
    let series: netwarden::models::Manifest =
        serde_json::from_str(netwarden::models::bundle::BUILTIN_SERIES_MANIFEST).expect("manifest");
    let models = vec![
        ModelInfo::from_manifest(
            "flow_ae",
            &flow,
            "built-in",
            &SignatureStatus::Builtin,
            "active",
        ),
        ModelInfo::from_manifest(
            "series_ae",
            &series,
            "built-in",
            &SignatureStatus::Builtin,
            "active",
        ),
    ];
    let state = AppState {
        store: store.clone(),
        metrics: Arc::new(Metrics::default()),
        scoreboard,
        exporters,
        snmp_board: Default::default(),
        models: Arc::new(models),
        learning: Default::default(),
        scorer: detect::Scorer::new(netwarden::models::ModelSources {
            flow_model: None,
            series_model: None,
            trust: Default::default(),
        }),
        token: None,
        started: Instant::now(),
        site: "bench".into(),
        device: "bench".into(),
        netflow_queue_capacity: 8192,
        series_queue: None,
        fleet: None,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let listener = rt
        .block_on(http::bind("127.0.0.1:0".parse().expect("addr")))
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (tx, _) = tokio::sync::broadcast::channel(1);
    rt.spawn(http::serve(
        listener,
        state.clone(),
        netwarden::shutdown::Shutdown::new(tx.subscribe()),
    ));

    println!("HTTP bench: {EXPORTERS} exporters, {INTERFACES} interfaces, 200 stored alerts; 127.0.0.1, one connection per request");

    // /metrics
    let (status, wire, body) = request(port, "GET", "/metrics", "");
    assert_eq!(status, 200);
    let lines = body
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty() && l[0] != b'#')
        .count();
    let (render_med, render_p99) = time(200, || {
        std::hint::black_box(http::prom::render(&http::metrics_view(&state)));
    });
    let (med, p99) = time(200, || {
        request(port, "GET", "/metrics", "");
    });
    println!("/metrics: {wire} bytes, {lines} samples; scrape over HTTP median {:.2} ms, p99 {:.2} ms (view + render alone: median {:.2} ms, p99 {:.2} ms)",
        ms(med), ms(p99), ms(render_med), ms(render_p99));

    // Dashboard first load: what the page's first refresh fetches (interface view, as a
    // gateway with SNMP shows by default, and NetFlow view).
    for (view, extra) in [
        (
            "interface view",
            vec![
                "/history/interface?since=6h&target=sw0&if_name=ge-0%2F0%2F0".to_string(),
                "/history/flows?since=1m".to_string(),
            ],
        ),
        ("NetFlow view", vec!["/history/flows?since=15m".to_string()]),
    ] {
        let mut total = 0;
        let mut parts = Vec::new();
        let mut paths = vec![
            "/".to_string(),
            "/app.js".to_string(),
            "/history/interfaces".to_string(),
            "/health".to_string(),
            "/models".to_string(),
            "/alerts?limit=15".to_string(),
        ];
        paths.extend(extra);
        for p in &paths {
            let (status, wire, _) = request(port, "GET", p, "");
            assert_eq!(status, 200, "{p}");
            total += wire;
            parts.push(format!("{p} {wire}"));
        }
        println!(
            "dashboard first load ({view}): {total} bytes ({:.1} KB) in {} requests: {}",
            total as f64 / 1024.0,
            paths.len(),
            parts.join(", ")
        );
    }

    // /detect
    let row = "[3.0, 180.0, 20.0, 60.0, 1.0, 1.0, 1.0, 0.0]";
    let one = format!(r#"{{"detector":"flow_ae","flows":[{row}]}}"#);
    let hundred = format!(
        r#"{{"detector":"flow_ae","flows":[{}]}}"#,
        vec![row; 100].join(",")
    );
    let srow = "[8000.0, 8000.0, 12.0, 3.0, 0.0, 0.0, 0.0, 0.0]";
    let window = format!(
        r#"{{"detector":"series_ae","sequence":[{}]}}"#,
        vec![srow; 50].join(",")
    );
    for (name, body) in [
        ("1 flow", &one),
        ("100 flows", &hundred),
        ("1 series window", &window),
    ] {
        let (status, _, reply) = request(port, "POST", "/detect", body);
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&reply));
        let (med, p99) = time(200, || {
            request(port, "POST", "/detect", body);
        });
        let (pmed, _) = time(200, || {
            std::hint::black_box(detect::parse_detect(body.as_bytes()).expect("valid"));
        });
        println!("/detect {name}: {} bytes in; median {:.3} ms, p99 {:.3} ms over HTTP (parse alone {:.3} ms; first request also loads the model)",
            body.len(), ms(med), ms(p99), ms(pmed));
    }
    // The dashboard's cost on the NetFlow hot path: one ScoreTally::record per scored flow.
    let mut t = ScoreTally::default();
    let errors: Vec<f32> = (0..4096).map(|i| 1e-4 * (1.0 + (i % 997) as f32)).collect();
    let n = 20_000_000usize;
    let started = Instant::now();
    for i in 0..n {
        let e = errors[i & 4095];
        t.record(std::hint::black_box(e), e > 0.05);
    }
    let per = started.elapsed().as_secs_f64() * 1e9 / n as f64;
    std::hint::black_box(t.take());
    println!("ScoreTally::record (per scored flow, pipeline thread): {per:.1} ns");
    drop(tx);
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
