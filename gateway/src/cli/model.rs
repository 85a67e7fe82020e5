//! `netwarden model check`: loads a bundle as the daemon would (signature, hash, schema, tract,
//! golden vectors), prints what it holds, and times a few batch sizes.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::models::{AnyBundle, PublicKey, SeriesBundle, Trust};

#[derive(Debug, clap::Args)]
pub struct ModelArgs {
    #[command(subcommand)]
    pub command: ModelCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum ModelCommand {
    /// Load a bundle as the daemon would (signature, hash, schema, tract, golden vectors) and
    /// time it.
    Check {
        bundle: PathBuf,
        /// A trusted ed25519 public key (a .pub file or its base64 text); repeatable. With a
        /// key the bundle must carry a manifest.sig that verifies against one of them.
        #[arg(long, value_name = "PUB")]
        key: Vec<String>,
    },
    /// Delivered models: active, previous, on disk, state, last refusal (a stopped
    /// gateway's --data-dir, or a running one's --http API).
    List {
        #[command(flatten)]
        data: super::args::DataDirArgs,
        #[command(flatten)]
        http: super::model_http::HttpArgs,
        #[arg(long)]
        json: bool,
    },
    /// Make a delivered flow version (or `configured`) the active one: at once with --http,
    /// else from the next start.
    Activate {
        version: String,
        #[command(flatten)]
        data: super::args::DataDirArgs,
        #[command(flatten)]
        http: super::model_http::HttpArgs,
    },
    /// Go back to the flow version that ran before the active one (or the configured model).
    Rollback {
        #[command(flatten)]
        data: super::args::DataDirArgs,
        #[command(flatten)]
        http: super::model_http::HttpArgs,
    },
}

pub fn execute(args: ModelArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        ModelCommand::Check { bundle, key } => {
            let keys = key
                .iter()
                .map(|k| PublicKey::from_arg(k))
                .collect::<Result<Vec<_>, _>>()
                .context("--key")?;
            check(&bundle, &Trust::keys(keys))
        }
        ModelCommand::List { http, .. } if http.http.is_some() => super::model_http::list(&http),
        ModelCommand::List { data, json, .. } => super::model_ledger::list(&data.data_dir, json),
        ModelCommand::Activate { version, http, .. } if http.http.is_some() => {
            super::model_http::activate(&http, &version)
        }
        ModelCommand::Activate { version, data, .. } => {
            super::model_ledger::activate(&data.data_dir, &version)
        }
        ModelCommand::Rollback { http, .. } if http.http.is_some() => {
            super::model_http::rollback(&http)
        }
        ModelCommand::Rollback { data, .. } => super::model_ledger::rollback(&data.data_dir),
    }
}

fn check(dir: &Path, trust: &Trust) -> anyhow::Result<ExitCode> {
    if super::model_graph::is_graph_bundle(dir) {
        return super::model_graph::check(dir, trust);
    }
    let started = Instant::now();
    let any = AnyBundle::load_dir(
        dir,
        512,
        &crate::models::series_scorer::DEFAULT_BATCHES,
        trust,
    )
    .with_context(|| format!("bundle {} refused", dir.display()))?;
    let load = started.elapsed();
    println!("{}: {}", dir.display(), any.signature());
    let mut bundle = match any {
        AnyBundle::Flow(b) => b,
        AnyBundle::Series(b) => return check_series(b, dir, load),
    };
    let m = &bundle.manifest;
    println!(
        "{}: {} {} ({}), schema {}, threshold {} ({})",
        dir.display(),
        m.name,
        m.version,
        m.kind,
        m.features.schema,
        m.threshold.value,
        m.threshold.method
    );
    print_checks(m, load);
    let zero = [[0.0f32; crate::models::flow_scorer::ROW]];
    for rows in [1usize, 512] {
        let batch: Vec<_> = zero.iter().cycle().take(rows).copied().collect();
        let mut out = Vec::new();
        let per = seconds_per_run(200, || {
            out.clear();
            bundle.detector.run_scaled(&batch, &mut out)
        })?;
        println!(
            "batch {rows:>4}: {:>8.1} us per run, {:>6.0} ns per row",
            per * 1e6,
            per * 1e9 / rows as f64
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn check_series(mut bundle: SeriesBundle, dir: &Path, load: Duration) -> anyhow::Result<ExitCode> {
    let m = &bundle.manifest;
    println!(
        "{}: {} {} ({}, variant {}, {}), schema {}, window {}, threshold {} ({}{})",
        dir.display(),
        m.name,
        m.version,
        m.kind,
        m.model.variant.as_deref().unwrap_or("-"),
        m.model.precision,
        m.features.schema,
        bundle.detector.window(),
        m.threshold.value,
        m.threshold.method,
        m.threshold
            .quantile
            .map(|q| format!(", quantile {q}"))
            .unwrap_or_default()
    );
    println!(
        "ok: sha256, schema, tract load+optimise (batches {:?}, chunks of {} when many are due), {} golden windows within {}",
        bundle.detector.batch_sizes(),
        bundle.detector.chunk_size(),
        m.golden.inputs.len(),
        m.golden.tolerance
    );
    println!(
        "load + optimise + golden check: {:.1} ms",
        load.as_secs_f64() * 1e3
    );
    for line in super::model_quant::lines(m.quantization.as_ref()) {
        println!("{line}");
    }
    let golden: Vec<f32> = m.golden.inputs.iter().flatten().copied().collect();
    let mut one = Vec::new();
    bundle.detector.scale_rows(
        golden
            .chunks_exact(8)
            .take(bundle.detector.window())
            .map(|c| {
                let mut r = [0.0f32; 8];
                r.copy_from_slice(c);
                r
            })
            .collect::<Vec<_>>()
            .iter(),
        &mut one,
    );
    for b in bundle.detector.batch_sizes() {
        let batch: Vec<f32> = one.iter().copied().cycle().take(b * one.len()).collect();
        let mut out = Vec::new();
        bundle.detector.run_scaled(&batch, &mut out)?;
        let per = seconds_per_run((2000 / b).clamp(20, 500), || {
            out.clear();
            bundle.detector.run_scaled(&batch, &mut out)
        })?;
        println!(
            "batch {b:>4}: {:>9.1} us per run, {:>8.1} us per window",
            per * 1e6,
            per * 1e6 / b as f64
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Mean wall time of `iters` calls of `run`, in seconds.
fn seconds_per_run<E>(iters: usize, mut run: impl FnMut() -> Result<(), E>) -> Result<f64, E> {
    let t = Instant::now();
    for _ in 0..iters {
        run()?;
    }
    Ok(t.elapsed().as_secs_f64() / iters as f64)
}

/// The lines `model check` prints for every bundle kind once its checks passed.
pub(super) fn print_checks(m: &crate::models::Manifest, load: Duration) {
    println!(
        "ok: sha256, schema, tract load+optimise, {} golden vectors within {}",
        m.golden.inputs.len(),
        m.golden.tolerance
    );
    println!(
        "load + optimise + golden check: {:.1} ms",
        load.as_secs_f64() * 1e3
    );
    for line in super::model_quant::lines(m.quantization.as_ref()) {
        println!("{line}");
    }
}
