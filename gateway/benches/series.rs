//! Per-window latency of every series bundle found, in tract, at batch 1 and batched, plus the
//! whole series pipeline (features, scaling, batched model runs, verdicts) for 32 interfaces polled
//! together. Bundles: `models/bundles/series-*`, `gateway/tests/data/series-tiny`, and any
//! directories given as arguments.
//!
//! `cargo bench -p netwarden --bench series [-- DIR...]`; the onnxruntime side of the
//! comparison is `tests/bench/series_ort.py` (figures and method in docs/performance.md).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use netwarden::models::{SeriesBundle, Trust};
use netwarden::pipeline::series::{SeriesOptions, SeriesPipeline};
use netwarden::records::RateSample;

const BATCHES: [usize; 4] = [1, 8, 32, 64];

fn bundles() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root.join("models/bundles"))
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("series-"))
                })
                .collect()
        })
        .unwrap_or_default();
    dirs.sort();
    dirs.push(root.join("gateway/tests/data/series-tiny"));
    dirs.extend(
        std::env::args()
            .skip(1)
            .filter(|a| !a.starts_with('-'))
            .map(PathBuf::from),
    );
    dirs
}

/// Runs `f` for at least `min` (after one warm-up call); returns seconds per call.
fn per_call(min: Duration, mut f: impl FnMut()) -> f64 {
    f();
    let started = Instant::now();
    let mut n = 0u32;
    while started.elapsed() < min || n < 5 {
        f();
        n += 1;
    }
    started.elapsed().as_secs_f64() / n as f64
}

fn main() {
    let min = Duration::from_millis(
        std::env::var("SERIES_BENCH_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1500),
    );
    for dir in bundles() {
        let loaded = Instant::now();
        let mut b = match SeriesBundle::load_dir(&dir, &BATCHES, &Trust::none()) {
            Ok(b) => b,
            Err(e) => {
                println!("{}: refused: {e}", dir.display());
                continue;
            }
        };
        let load_ms = loaded.elapsed().as_secs_f64() * 1e3;
        let m = &b.manifest;
        println!(
            "{} ({} {}, variant {}, {}): load+optimise {} plans + golden {load_ms:.0} ms",
            dir.display(),
            m.name,
            m.version,
            m.model.variant.as_deref().unwrap_or("-"),
            m.model.precision,
            BATCHES.len()
        );
        let raw: Vec<f32> = m.golden.inputs[0].clone();
        let mut one = Vec::new();
        for row in raw.chunks_exact(8) {
            let mut r = [0.0f32; 8];
            r.copy_from_slice(row);
            one.extend_from_slice(&b.detector.scaler().scale(&r));
        }
        let mut out = Vec::new();
        for batch in BATCHES {
            let input: Vec<f32> = one
                .iter()
                .copied()
                .cycle()
                .take(batch * one.len())
                .collect();
            let t = per_call(min, || {
                out.clear();
                if let Err(e) = b.detector.run_scaled(&input, &mut out) {
                    panic!("run failed: {e}");
                }
            });
            println!(
                "  tract batch {batch:>3}: {:>9.1} us per run  {:>8.1} us per window",
                t * 1e6,
                t * 1e6 / batch as f64
            );
        }
        println!(
            "  plan used for chunks of many windows (fastest per window at load): batch {}",
            b.detector.chunk_size()
        );
        pipeline_step(&dir, min);
    }
}

/// One poll of 32 interfaces through `SeriesPipeline::ingest_many`, windows warm.
fn pipeline_step(dir: &Path, min: Duration) {
    const IFACES: u32 = 32;
    let Ok(bundle) = SeriesBundle::load_dir(dir, &[1, 8, 32], &Trust::none()) else {
        return;
    };
    let mut p = SeriesPipeline::new(bundle, "bench", "bench", SeriesOptions::default());
    let mut ts = 1_794_787_200_000u64;
    let poll = |ts: u64| -> Vec<RateSample> {
        (0..IFACES)
            .map(|i| RateSample {
                target: "r1".into(),
                if_index: i,
                if_name: format!("if{i}"),
                ts_ms: ts,
                step_ms: 300_000,
                in_bps: Some(1e6 * (1.0 + i as f64) * (1.0 + 0.1 * ((ts / 300_000) % 7) as f64)),
                out_bps: Some(4e5 * (1.0 + i as f64)),
            })
            .collect()
    };
    for _ in 0..60 {
        ts += 300_000;
        let s = poll(ts);
        p.ingest_many(&s);
    }
    let t = per_call(min, || {
        ts += 300_000;
        let s = poll(ts);
        p.ingest_many(&s);
    });
    println!(
        "  pipeline: one poll of {IFACES} interfaces (32 windows scored) {:>9.1} us, {:>8.1} us per interface",
        t * 1e6,
        t * 1e6 / IFACES as f64
    );
}
