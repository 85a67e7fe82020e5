//! `netwarden model check` for a temporal graph bundle (`graph_tgat`): loaded as the daemon
//! loads it (signature, hash, the gateway's `graph-v1` columns, tract, golden vectors), then
//! timed per batch.

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;

use crate::models::graph_scorer::{GraphBundle, KIND_GRAPH};
use crate::models::Trust;
use crate::pipeline::graph::column_names;

/// Whether the directory's manifest names the graph kind (unreadable: not ours to judge).
pub fn is_graph_bundle(dir: &Path) -> bool {
    std::fs::read(dir.join("manifest.json"))
        .ok()
        .and_then(|raw| serde_json::from_slice::<serde_json::Value>(&raw).ok())
        .is_some_and(|v| v.get("kind").and_then(|k| k.as_str()) == Some(KIND_GRAPH))
}

pub fn check(dir: &Path, trust: &Trust) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let names = column_names();
    let mut b = GraphBundle::load_dir(dir, &names, 512, trust)
        .with_context(|| format!("bundle {} refused", dir.display()))?;
    let load = started.elapsed();
    let m = &b.manifest;
    println!("{}: {}", dir.display(), b.signature);
    println!(
        "{}: {} {} ({}, {}), schema {} ({} columns), classes {}, threshold {} ({})",
        dir.display(),
        m.name,
        m.version,
        m.kind,
        m.model.precision,
        m.features.schema,
        names.len(),
        b.scorer.classes.join(","),
        m.threshold.value,
        m.threshold.method
    );
    super::model::print_checks(m, load);
    let row: Vec<f32> = m.golden.inputs[0].clone();
    for rows in [1usize, 512] {
        let batch: Vec<f32> = row.iter().copied().cycle().take(rows * row.len()).collect();
        let mut out = Vec::new();
        let runs = 50;
        let t = Instant::now();
        for _ in 0..runs {
            out.clear();
            b.scorer.run(&batch, &mut out)?;
        }
        let per = t.elapsed().as_secs_f64() / runs as f64;
        println!(
            "batch {rows:>4}: {:>8.1} us per run, {:>6.0} ns per row",
            per * 1e6,
            per * 1e9 / rows as f64
        );
    }
    Ok(ExitCode::SUCCESS)
}
