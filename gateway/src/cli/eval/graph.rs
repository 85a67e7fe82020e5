//! The temporal graph detector in `netwarden eval`: the daemon's [`GraphPipeline`] (endpoint
//! table, batched tract scoring, incident alerts) over a path's records, fresh per path.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::metrics::Metrics;
use crate::models::graph_scorer::GraphBundle;
use crate::models::{LoadError, Trust};
use crate::pipeline::graph::detector::surprise;
use crate::pipeline::graph::{column_names, GraphPipeline, Initiator, DEFAULT_ENDPOINTS};
use crate::pipeline::learning::{Learner, LearningConfig};
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
    /// Learn the edge threshold for this span of event time from this start (epoch ms) first
    /// (`None`: the bundle's), as the flow detector does.
    pub learn: Option<(u64, Duration)>,
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

impl GraphDetector {
    fn pipeline(&self, bundle: GraphBundle) -> GraphPipeline {
        GraphPipeline::new(
            bundle,
            DEFAULT_ENDPOINTS,
            "eval",
            "eval",
            self.dedupe,
            Arc::new(Metrics::default()),
        )
        .with_clock(|| 0)
        .keep_scores()
    }

    /// The learning period over `[start_ms, start_ms + period)`, by the flow detector's rules
    /// (`FlowAeDetector::learn_window`): a first pass scores the whole path, the window's edges
    /// are learnt in event-time order, grouped by the host that opened the connection.
    fn learn_window(
        &self,
        input: &PathInput,
        start_ms: u64,
        period: Duration,
    ) -> Result<Learner<IpAddr>, LoadError> {
        let mut pipeline = self.pipeline(self.load()?);
        let shipped = pipeline.shipped_surprise();
        for a in &input.arrivals {
            pipeline.ingest_records(&a.origin, &a.records, &mut |_| {});
            pipeline.flush(&mut |_| {});
        }
        let end = start_ms.saturating_add(period.as_millis() as u64);
        let mut window: Vec<_> = pipeline
            .take_scores()
            .into_iter()
            .filter(|s| (start_ms..end).contains(&s.flow.last_ms))
            .collect();
        window.sort_by_key(|s| s.flow.last_ms);
        let cfg = LearningConfig {
            min_samples: 0,
            ..LearningConfig::with_period(period)
        };
        let mut learner = Learner::new(GRAPH_DETECTOR, cfg, shipped).starting_at(start_ms);
        for s in &window {
            let opener = match s.initiator {
                Initiator::Src => s.flow.src_addr,
                Initiator::Dst => s.flow.dst_addr,
            };
            learner.observe(&opener, s.flow.last_ms, surprise(1.0 - s.score));
        }
        learner.finish();
        Ok(learner)
    }
}

impl Detector for GraphDetector {
    fn name(&self) -> &'static str {
        GRAPH_DETECTOR
    }

    fn run(&mut self, input: &PathInput) -> Result<DetectorRun, LoadError> {
        let learner = match self.learn {
            Some((start_ms, period)) => Some(self.learn_window(input, start_ms, period)?),
            None => None,
        };
        let bundle = self.load()?;
        let model = format!("{} {}", bundle.manifest.name, bundle.manifest.version);
        let mut pipeline = self.pipeline(bundle);
        if let Some(l) = learner {
            pipeline = pipeline.with_learning(l);
        }
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
            threshold: Some(pipeline.threshold()),
            alerts,
            scores,
            learning: pipeline.learning().map(|l| l.status().clone()),
        })
    }
}
