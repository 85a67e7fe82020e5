//! The detectors `netwarden eval` replays a path through. Each one consumes a path's
//! [`Arrival`]s with fresh state and returns its alerts and, when it scores flows, every flow's
//! score against its threshold. Today that is the flow autoencoder, run by the daemon's own
//! [`FlowPipeline`]; a graph model, EVE correlation or learned thresholds plug in as further
//! [`Detector`]s.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::metrics::Metrics;
use crate::models::{load_flow_bundle, Bundle, LoadError, Trust};
use crate::pipeline::{FlowPipeline, ScoredFlow};
use crate::records::{Alert, FLOW_DETECTOR};

use super::replay::{PathInput, PathKind};

/// An alert as eval judges it: who it names, which flow, when the daemon would have raised it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EvalAlert {
    /// The source host the alert names (`None`: not a flow alert, or not an address).
    pub src: Option<IpAddr>,
    pub dst: Option<IpAddr>,
    pub flow_first_ms: u64,
    pub flow_last_ms: u64,
    /// Event time at which the records that raised it arrived.
    pub raised_ms: u64,
    pub severity: String,
    pub score: f32,
    pub summary: String,
}

impl EvalAlert {
    pub fn from_alert(a: &Alert, raised_ms: u64) -> EvalAlert {
        let flow = a.subject.flow();
        let ip = |s: &str| s.parse::<IpAddr>().ok();
        if let Some(arp) = a.subject.arp() {
            return super::arp::eval_alert(a, arp, raised_ms);
        }
        EvalAlert {
            src: flow.and_then(|f| ip(&f.src_addr)),
            dst: flow.and_then(|f| ip(&f.dst_addr)),
            flow_first_ms: flow.map_or(raised_ms, |f| f.flow_first_ms),
            flow_last_ms: flow.map_or(raised_ms, |f| f.flow_last_ms),
            raised_ms,
            severity: a.severity.clone(),
            score: a.score,
            summary: a.summary.clone(),
        }
    }
}

/// What one detector made of one path.
#[derive(Debug, Default)]
pub struct DetectorRun {
    /// Model name and version (or what else identifies the detector's state).
    pub model: String,
    /// The score above which a flow counts as anomalous (`None`: the detector has no per-flow
    /// score).
    pub threshold: Option<f32>,
    pub alerts: Vec<EvalAlert>,
    /// Every scored flow (empty for a detector without per-flow scores).
    pub scores: Vec<ScoredFlow>,
}

/// A detector that can replay a path from scratch.
pub trait Detector {
    /// Its name in alerts and in the report.
    fn name(&self) -> &'static str;
    /// The paths it can see anything on.
    fn paths(&self) -> &'static [PathKind] {
        &PathKind::ALL
    }
    fn run(&mut self, input: &PathInput) -> Result<DetectorRun, LoadError>;
}

/// The flow autoencoder, through the daemon's pipeline: features (host windows), batched
/// scoring, de-duplicated alerting.
#[derive(Debug, Clone)]
pub struct FlowAeDetector {
    /// A bundle directory; `None`: the built-in model.
    pub model: Option<PathBuf>,
    pub batch_size: usize,
    pub trust: Trust,
    pub dedupe: Duration,
}

impl FlowAeDetector {
    /// Loads the bundle as the daemon would (to fail early and name it in the report).
    pub fn load(&self) -> Result<Bundle, LoadError> {
        load_flow_bundle(self.model.as_deref(), self.batch_size, &self.trust)
    }
}

impl Detector for FlowAeDetector {
    fn name(&self) -> &'static str {
        FLOW_DETECTOR
    }

    fn run(&mut self, input: &PathInput) -> Result<DetectorRun, LoadError> {
        let bundle = self.load()?;
        let model = format!("{} {}", bundle.manifest.name, bundle.manifest.version);
        let threshold = bundle.manifest.threshold.value;
        let mut pipeline = FlowPipeline::new(
            bundle,
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
            // The daemon scores as soon as its queue is empty; offline, after every arrival.
            pipeline.flush(&mut raised);
        }
        Ok(DetectorRun {
            model,
            threshold: Some(threshold),
            alerts,
            scores: pipeline.take_scores(),
        })
    }
}
