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
use crate::pipeline::learning::{Learner, LearningConfig};
use crate::pipeline::orient::orient;
use crate::pipeline::{FlowPipeline, ScoredFlow};
use crate::records::learning::LearningStatus;
use crate::records::{Alert, FLOW_DETECTOR};

use super::replay::{PathInput, PathKind};

/// An alert as eval judges it: who it names, which flow, when the daemon would have raised it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EvalAlert {
    /// The host the alert blames: its incident's initiator, or the flow's source (`None`: not a
    /// flow alert, or not an address).
    pub src: Option<IpAddr>,
    pub dst: Option<IpAddr>,
    pub flow_first_ms: u64,
    pub flow_last_ms: u64,
    /// Event time at which the records that raised it arrived.
    pub raised_ms: u64,
    pub severity: String,
    pub score: f32,
    pub summary: String,
    /// The incident it opens or updates, and which update (0: it opens it).
    pub incident: Option<String>,
    pub update: u32,
}

impl EvalAlert {
    pub fn from_alert(a: &Alert, raised_ms: u64) -> EvalAlert {
        let flow = a.subject.flow();
        let ip = |s: &str| s.parse::<IpAddr>().ok();
        if let Some(arp) = a.subject.arp() {
            return super::arp::eval_alert(a, arp, raised_ms);
        }
        let inc = a.incident.as_ref();
        EvalAlert {
            src: match inc {
                Some(i) => ip(&i.initiator),
                None => flow.and_then(|f| ip(&f.src_addr)),
            },
            dst: match inc {
                Some(i) => i.target.as_deref().and_then(ip),
                None => flow.and_then(|f| ip(&f.dst_addr)),
            },
            flow_first_ms: flow.map_or(raised_ms, |f| f.flow_first_ms),
            flow_last_ms: flow.map_or(raised_ms, |f| f.flow_last_ms),
            raised_ms,
            severity: a.severity.clone(),
            score: a.score,
            summary: a.summary.clone(),
            incident: inc.map(|i| i.id.clone()),
            update: inc.map_or(0, |i| i.update),
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
    /// The learning period's state at the end of the replay, when the detector learnt.
    pub learning: Option<LearningStatus>,
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
    /// Learn the threshold for this span of event time from this start (epoch ms) first
    /// (`None`: the bundle's).
    pub learn: Option<(u64, Duration)>,
    /// `flow-v2`: the wait for a record's reverse direction (`[detector] pair_wait`).
    pub pair_wait: Duration,
}

impl FlowAeDetector {
    /// Loads the bundle as the daemon would (to fail early and name it in the report).
    pub fn load(&self) -> Result<Bundle, LoadError> {
        load_flow_bundle(self.model.as_deref(), self.batch_size, &self.trust)
    }

    fn pipeline(&self, bundle: Bundle) -> FlowPipeline {
        let p = FlowPipeline::new(
            bundle,
            "eval",
            "eval",
            self.dedupe,
            Arc::new(Metrics::default()),
        )
        .with_clock(|| 0)
        .keep_scores()
        .with_pair_wait(self.pair_wait);
        // `flow-v2` novelty: the services used in the learning window are known.
        match self.learn {
            Some((start_ms, period)) => {
                p.with_novelty_until(start_ms.saturating_add(period.as_millis() as u64))
            }
            None => p,
        }
    }

    /// The learning period over `[start_ms, start_ms + period)`, fitted on every record of the
    /// path that ended in it. A first pass scores the whole path and the window's scores are
    /// learnt in event-time order: an exporter sends a record only when its flow expires (in
    /// the lab's softflowd exports a lead-in's long flows come after the attacks' short ones),
    /// and the daemon waits for them for a tenth of its period (24 h by default, so 2.4 h at
    /// most 10 min), which a replay of a short lead-in cannot imitate record for record.
    fn learn_window(
        &self,
        input: &PathInput,
        start_ms: u64,
        period: Duration,
    ) -> Result<Learner<IpAddr>, LoadError> {
        let bundle = self.load()?;
        let shipped = bundle.manifest.threshold.value;
        let mut pipeline = self.pipeline(bundle);
        for a in &input.arrivals {
            pipeline.set_arrival(a.at_ms);
            pipeline.ingest_records(&a.origin, &a.records, &mut |_| {});
            pipeline.flush(&mut |_| {});
        }
        pipeline.finish(&mut |_| {});
        let end = start_ms.saturating_add(period.as_millis() as u64);
        let mut window: Vec<ScoredFlow> = pipeline
            .take_scores()
            .into_iter()
            .filter(|s| (start_ms..end).contains(&s.flow.last_ms))
            .collect();
        window.sort_by_key(|s| s.flow.last_ms);
        let cfg = LearningConfig {
            min_samples: 0,
            ..LearningConfig::with_period(period)
        };
        let mut learner = Learner::new(FLOW_DETECTOR, cfg, shipped).starting_at(start_ms);
        for s in &window {
            learner.observe(&orient(&s.flow).initiator, s.flow.last_ms, s.error);
        }
        learner.finish();
        Ok(learner)
    }
}

impl Detector for FlowAeDetector {
    fn name(&self) -> &'static str {
        FLOW_DETECTOR
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
            pipeline.set_arrival(a.at_ms);
            pipeline.ingest_records(&a.origin, &a.records, &mut raised);
            // The daemon scores as soon as its queue is empty; offline, after every arrival.
            pipeline.flush(&mut raised);
        }
        if let Some(last) = input.arrivals.last() {
            // `flow-v2` records still waiting for their reverse: emitted at the end of input.
            pipeline
                .finish(&mut |alert: Alert| alerts.push(EvalAlert::from_alert(&alert, last.at_ms)));
        }
        let learning = pipeline.learning().map(|l| l.status().clone());
        Ok(DetectorRun {
            model,
            threshold: Some(pipeline.threshold()),
            alerts,
            scores: pipeline.take_scores(),
            learning,
        })
    }
}
