//! In-process throughput of the hot path on one core, stage by stage, over the real exporter
//! fixtures (no sockets): decode only; decode + flow-v1 features; the whole pipeline (decode,
//! features, scaling, tract inference in batches of 512, verdicts, alerting); the whole pipeline
//! again, scored after every datagram as the daemon does when it keeps up.
//!
//! `cargo bench -p netwarden --bench pipeline` (prints records/s; figures in docs/performance.md).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use netwarden::metrics::Metrics;
use netwarden::models::Bundle;
use netwarden::pipeline::{FlowPipeline, HOST_WINDOWS};
use netwarden::runtime::flow::FlowStage;
use netwarden::sources::netflow::export_pcap::read_datagrams;
use netwarden::sources::netflow::NetflowDecoder;
use netwarden_firmware::features::HostWindows;

const FIXTURES: [&str; 3] = [
    "softflowd-v9-scan-mixed.pcap",
    "softflowd-ipfix-scan-mixed.pcap",
    "softflowd-v5-scan-mixed.pcap",
];
const ROUNDS: usize = 200;

/// The bundle the whole-pipeline stages score with; `--plans 16,512` keeps only those compiled
/// batch shapes (16 and 512 were the only ones before issue 20).
fn bundle(plans: &Option<Vec<usize>>) -> Bundle {
    let mut b = Bundle::builtin(512).expect("bundle");
    if let Some(keep) = plans {
        b.detector.retain_batches(keep);
    }
    b
}

/// The whole flow stage (decode, features, scoring, alerting) on the shipped bundle, and the
/// metrics it counts into.
fn flow_stage(plans: &Option<Vec<usize>>) -> (Arc<Metrics>, FlowStage) {
    let metrics = Arc::new(Metrics::default());
    let pipeline = FlowPipeline::new(
        bundle(plans),
        "b",
        "b",
        Duration::from_secs(60),
        metrics.clone(),
    );
    (metrics, FlowStage::new(NetflowDecoder::new(16), pipeline))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let plans: Option<Vec<usize>> = args
        .iter()
        .position(|a| a == "--plans")
        .and_then(|i| args.get(i + 1))
        .map(|v| v.split(',').filter_map(|n| n.parse().ok()).collect());
    // `--stage NAME`: only the stages whose name contains NAME.
    let stage = args
        .iter()
        .position(|a| a == "--stage")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let only = args
        .iter()
        .enumerate()
        .find(|(i, a)| {
            !a.starts_with('-')
                && (*i == 0 || !["--plans", "--stage"].contains(&args[i - 1].as_str()))
        })
        .map(|(_, a)| a.clone());
    let run = |name: &str| stage.as_deref().is_none_or(|s| name.contains(s));
    eprintln!(
        "flow scorer shapes: {:?}",
        bundle(&plans).detector.batches()
    );
    for name in FIXTURES {
        if only.as_deref().is_some_and(|o| !name.contains(o)) {
            continue;
        }
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/data/netflow")
            .join(name);
        let (datagrams, _) = read_datagrams(&path, None).expect("fixture");

        if run("decode") {
            let (records, t) = time(|| {
                let mut dec = NetflowDecoder::new(16);
                let mut out = Vec::with_capacity(64);
                let mut n = 0;
                for _ in 0..ROUNDS {
                    for d in &datagrams {
                        out.clear();
                        dec.decode(d.src, &d.payload, &mut out);
                        n += out.len();
                    }
                }
                n
            });
            report(name, "decode", records, t);
        }

        if run("features") {
            let (records, t) = time(|| {
                let mut dec = NetflowDecoder::new(16);
                let mut windows: Box<HostWindows<HOST_WINDOWS>> = Box::default();
                let mut out = Vec::with_capacity(64);
                let mut n = 0;
                let mut sink = 0.0f32;
                for _ in 0..ROUNDS {
                    for d in &datagrams {
                        out.clear();
                        dec.decode(d.src, &d.payload, &mut out);
                        for (_, r) in &out {
                            sink += windows.observe(r)[5];
                            n += 1;
                        }
                    }
                }
                std::hint::black_box(sink);
                n
            });
            report(name, "decode+features", records, t);
        }

        if run("batched") {
            let (metrics, mut p) = flow_stage(&plans);
            let (_, t) = time(|| {
                let mut alerts = 0usize;
                for _ in 0..ROUNDS {
                    for d in &datagrams {
                        p.ingest_datagram(d.src, &d.payload, &mut |_| alerts += 1);
                    }
                }
                p.flush(&mut |_| alerts += 1);
                alerts
            });
            let s = metrics.snapshot();
            report(name, "all, batches of 512", s.flows_scored as usize, t);
            inference(&s);
        }

        // As the daemon runs when it keeps up: it scores what one receive batch gave, often a
        // single datagram (20-30 records), not 512 records at a time.
        if run("datagram") {
            let (metrics, mut p) = flow_stage(&plans);
            let (_, t) = time(|| {
                let mut alerts = 0usize;
                for _ in 0..ROUNDS {
                    for d in &datagrams {
                        p.ingest_datagram(d.src, &d.payload, &mut |_| alerts += 1);
                        p.flush(&mut |_| alerts += 1);
                    }
                }
                alerts
            });
            let s = metrics.snapshot();
            report(
                name,
                "all, scored every datagram",
                s.flows_scored as usize,
                t,
            );
            inference(&s);
        }
    }
}

fn inference(s: &netwarden::metrics::MetricsSnapshot) {
    eprintln!(
        "    inference: {} runs, {:.1} us per run, {:.0} ns per flow",
        s.inference_runs,
        s.inference_micros_total as f64 / s.inference_runs.max(1) as f64,
        s.inference_micros_total as f64 * 1e3 / s.flows_scored.max(1) as f64
    );
}

fn time<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let v = f();
    (v, start.elapsed())
}

fn report(name: &str, stage: &str, records: usize, t: Duration) {
    println!(
        "{name:<34} {stage:<30} {records:>9} records in {:>7.3} s = {:>10.0} records/s",
        t.as_secs_f64(),
        records as f64 / t.as_secs_f64()
    );
}
