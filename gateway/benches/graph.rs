//! The temporal graph detector on one core: the endpoint table alone (edge in, row gathered),
//! the whole graph pipeline (table, batches of 512 in tract, alerting) with the built-in
//! `graph-tgat` bundle, and the resident memory of a table tracking 100,000 endpoints.
//! Synthetic edges (`pipeline::graph::synth`): 20 % from 300 "servers" to clients, the rest
//! between 250,000 random `IP:port` endpoints, so the table fills and evicts as on a busy network.
//!
//! A fourth case runs tract alone on rows the table gathered, so the model's share of the
//! pipeline is measured, not guessed. Each case prints wall time and the thread's CPU time
//! (`/proc/thread-self/schedstat`): on a shared machine the CPU figure is the steadier one.
//!
//! `cargo bench -p netwarden --bench graph` (figures in docs/performance.md). With
//! `GRAPH_BUNDLE=DIR` the pipeline and tract cases run that bundle instead of the built-in one
//! (to compare a candidate model without rebuilding).

use std::sync::Arc;
use std::time::{Duration, Instant};

use netwarden::metrics::Metrics;
use netwarden::models::graph_scorer::GraphBundle;
use netwarden::models::Trust;
use netwarden::pipeline::graph::{column_names, synth, EndpointTable, GraphPipeline, INPUT_WIDTH};
use netwarden::records::FlowOrigin;

const EDGES: usize = 400_000;
const ENDPOINTS: usize = 100_000;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// CPU time this thread has run, from the scheduler's accounting (0 where unavailable).
fn cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Wall and CPU time of one case.
struct Clock {
    wall: Instant,
    cpu: u64,
}

impl Clock {
    fn start() -> Clock {
        Clock {
            wall: Instant::now(),
            cpu: cpu_ns(),
        }
    }
}

fn rate(what: &str, n: usize, c: &Clock) {
    let t = c.wall.elapsed().as_secs_f64();
    let cpu = cpu_ns().saturating_sub(c.cpu) as f64 / 1e9;
    println!(
        "{what:<46} {n:>9} edges in {t:>7.3} s = {:>10.0} edges/s (CPU {cpu:.3} s = {:>10.0} edges/s, {:.2} us/edge)",
        n as f64 / t,
        n as f64 / cpu,
        cpu * 1e6 / n as f64
    );
}

/// The built-in bundle, or the one `GRAPH_BUNDLE` names.
fn load_bundle(names: &[String], batch: usize) -> GraphBundle {
    match std::env::var_os("GRAPH_BUNDLE") {
        Some(dir) => GraphBundle::load_dir(dir.as_ref(), names, batch, &Trust::none())
            .expect("GRAPH_BUNDLE loads"),
        None => GraphBundle::builtin(names, batch).expect("built-in graph bundle"),
    }
}

fn main() {
    let data = synth::edges(EDGES, 0x9e37_79b9_7f4a_7c15);

    // 1. The table alone, and its memory with ENDPOINTS tracked.
    let before = rss_kib();
    let mut table = EndpointTable::new(ENDPOINTS);
    let mut row = Box::new([0f32; INPUT_WIDTH]);
    let mut sink = 0f32;
    let clock = Clock::start();
    for r in &data {
        table.observe(r, &mut row);
        sink += row[INPUT_WIDTH - 1];
    }
    rate("endpoint table: observe + gather a row", data.len(), &clock);
    let after = rss_kib();
    let s = table.stats();
    println!(
        "  {} endpoints tracked (capacity {ENDPOINTS}), {} evicted; RSS +{:.1} MiB for the table ({:.0} bytes per endpoint) [{sink}]",
        s.endpoints,
        s.evictions,
        after.saturating_sub(before) as f64 / 1024.0,
        after.saturating_sub(before) as f64 * 1024.0 / s.endpoints.max(1) as f64
    );
    drop(table);

    // 2. The whole pipeline with the built-in model, batches of 512.
    let names = column_names();
    let bundle = load_bundle(&names, 512);
    println!(
        "  model: {} {} ({})",
        bundle.manifest.name, bundle.manifest.version, bundle.source
    );
    let mut p = GraphPipeline::new(
        bundle,
        ENDPOINTS,
        "bench",
        "bench",
        Duration::from_secs(60),
        Arc::new(Metrics::default()),
    )
    .with_clock(|| 0);
    let origin = FlowOrigin::Meter("bench".into());
    let mut alerts = 0usize;
    let clock = Clock::start();
    for chunk in data.chunks(512) {
        p.ingest_records(&origin, chunk, &mut |_| alerts += 1);
    }
    p.flush(&mut |_| alerts += 1);
    rate(
        "graph pipeline: table + tract (batch 512) + alerts",
        data.len(),
        &clock,
    );
    println!(
        "  {} model runs, {alerts} alerts raised; peak RSS now {:.1} MiB",
        p.runs,
        rss_kib() as f64 / 1024.0
    );
    drop(p);

    // 3. tract alone: the rows of the first TRACT_ROWS edges as the table gathered them,
    // scored in batches of 512, TRACT_PASSES times.
    const TRACT_ROWS: usize = 25_600;
    const TRACT_PASSES: usize = 4;
    let mut table = EndpointTable::new(ENDPOINTS);
    let mut rows = vec![0f32; TRACT_ROWS * INPUT_WIDTH];
    for (r, out) in data.iter().zip(rows.chunks_exact_mut(INPUT_WIDTH)) {
        let out: &mut [f32; INPUT_WIDTH] = out.try_into().expect("row width");
        table.observe(r, out);
    }
    let mut scorer = load_bundle(&names, 512).scorer;
    let mut probs = Vec::with_capacity(TRACT_ROWS * scorer.classes.len());
    let clock = Clock::start();
    for _ in 0..TRACT_PASSES {
        probs.clear();
        scorer.run(&rows, &mut probs).expect("tract runs");
    }
    rate(
        "tract alone: GraphScorer::run, batches of 512",
        TRACT_ROWS * TRACT_PASSES,
        &clock,
    );
    println!("  [{}]", probs.iter().sum::<f32>());
}
