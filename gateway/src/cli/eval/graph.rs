//! The temporal graph detector in `netwarden eval`: the daemon's [`GraphPipeline`] (endpoint
//! table, batched tract scoring, incident alerts) over a path's records, fresh per path.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::metrics::Metrics;
use crate::models::graph_scorer::GraphBundle;
use crate::models::{LoadError, Trust};
use crate::pipeline::graph::{column_names, GraphPipeline, DEFAULT_ENDPOINTS};
use crate::pipeline::ScoredFlow;
use crate::records::{Alert, GRAPH_DETECTOR};

use super::detectors::{Detector, DetectorRun, EvalAlert};
use super::replay::PathInput;

#[derive(Debug, Clone)]
pub struct GraphDetector {
    /// A `graph_tgat` bundle directory; `None`: the built-in one.
    pub model: Option<PathBuf>,
    pub batch_size: usize,
    pub trust: Trust,
    pub dedupe: Duration,
}

impl GraphDetector {
    pub fn load(&self) -> Result<GraphBundle, LoadError> {
        let names = column_names();
        let b = match &self.model {
            Some(dir) => GraphBundle::load_dir(dir, &names, self.batch_size, &self.trust),
            None => GraphBundle::builtin(&names, self.batch_size),
        };
        b.map_err(|error| LoadError {
            what: "graph model",
            source_name: self
                .model
                .as_ref()
                .map_or_else(|| "built-in".into(), |p| p.display().to_string()),
            error,
        })
    }
}

impl Detector for GraphDetector {
    fn name(&self) -> &'static str {
        GRAPH_DETECTOR
    }

    fn run(&mut self, input: &PathInput) -> Result<DetectorRun, LoadError> {
        let bundle = self.load()?;
        let model = format!("{} {}", bundle.manifest.name, bundle.manifest.version);
        let threshold = bundle.manifest.threshold.value;
        let mut pipeline = GraphPipeline::new(
            bundle,
            DEFAULT_ENDPOINTS,
            "eval",
            "eval",
            self.dedupe,
            Arc::new(Metrics::default()),
        )
        .with_clock(|| 0)
        .keep_scores();
        let mut alerts = Vec::new();
        for a in &input.arrivals {
            let mut raised = |alert: Alert| alerts.push(EvalAlert::from_alert(&alert, a.at_ms));
            pipeline.ingest_records(&a.origin, &a.records, &mut raised);
            pipeline.flush(&mut raised);
        }
        let scores = pipeline
            .take_scores()
            .into_iter()
            .map(|e| ScoredFlow {
                flow: e.flow,
                error: e.score,
                anomalous: e.anomalous,
            })
            .collect();
        Ok(DetectorRun {
            model,
            threshold: Some(threshold),
            alerts,
            scores,
            learning: None,
        })
    }
}
