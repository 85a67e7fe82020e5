//! The temporal graph detector in the daemon (`detector.graph`): loaded once at start-up
//! (a configured `graph_tgat` bundle, or the built-in one), fed by the flow thread's
//! [`super::flow::FlowStage`] with every record of every flow source (NetFlow and capture).

use std::sync::Arc;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::models::graph_scorer::GraphBundle;
use crate::models::{LoadError, ModelInfo, Trust};
use crate::pipeline::graph::{column_names, GraphPipeline};
use crate::records::GRAPH_DETECTOR;

/// The graph pipeline and its `/models` entry, or `None` when the detector is off.
pub fn load(
    cfg: &Config,
    trust: &Trust,
    metrics: Arc<Metrics>,
) -> Result<Option<(GraphPipeline, ModelInfo)>, LoadError> {
    let d = &cfg.detector;
    if !d.graph {
        return Ok(None);
    }
    let names = column_names();
    let bundle = match &d.graph_model {
        Some(dir) => GraphBundle::load_dir(dir, &names, d.batch_size, trust),
        None => GraphBundle::builtin(&names, d.batch_size),
    }
    .map_err(|error| LoadError {
        what: "graph model",
        source_name: d
            .graph_model
            .as_ref()
            .map_or_else(|| "built-in".into(), |p| p.display().to_string()),
        error,
    })?;
    tracing::info!(model = %bundle.manifest.name, version = %bundle.manifest.version,
        source = %bundle.source, signature = %bundle.signature, endpoints = d.graph_endpoints,
        "Graph model loaded");
    let info = ModelInfo::from_manifest(
        GRAPH_DETECTOR,
        &bundle.manifest,
        &bundle.source,
        &bundle.signature,
        "active",
    );
    let p = GraphPipeline::new(
        bundle,
        d.graph_endpoints,
        &cfg.site,
        &cfg.device,
        cfg.alerting.dedupe_window,
        metrics,
    );
    Ok(Some((p, info)))
}
