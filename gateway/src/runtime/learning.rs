//! Wires the learning period (`pipeline/learning`): resumes it from the store at start, saves
//! it while it runs (every minute, when it ends, at shutdown) and shows it on `/health`; and
//! stores the reservoir's buckets (`pipeline/reservoir`): closed ones at once, the open one
//! every minute and at shutdown.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::pipeline::graph::GraphPipeline;
use crate::pipeline::learning::config::LearningSettings;
use crate::pipeline::learning::{decode_samples, encode_samples, Learner, LearningConfig};
use crate::pipeline::series::SeriesPipeline;
use crate::pipeline::FlowPipeline;
use crate::records::learning::{self, LearningBoard};
use crate::records::{FLOW_DETECTOR, GRAPH_DETECTOR, SERIES_DETECTOR};
use crate::sinks::store::Store;

/// How often the scores kept while learning are saved.
const SAVE_EVERY: Duration = Duration::from_secs(60);

/// The flow detector's learner: the saved one (a fitted threshold always applies; an
/// unfinished period resumes while learning is configured), or a fresh one when learning is
/// on and nothing was saved, or none.
pub(super) fn flow_learner(
    store: &Store,
    settings: &LearningSettings,
    shipped: f32,
) -> Option<Learner<IpAddr>> {
    ip_learner(FLOW_DETECTOR, store, settings, shipped)
}

/// The graph detector's learner, by the flow learner's rules (`[learning]` covers both); its
/// scores are edge surprises, grouped by the host that opened the connection.
pub(super) fn graph_learner(
    store: &Store,
    settings: &LearningSettings,
    shipped: f32,
) -> Option<Learner<IpAddr>> {
    ip_learner(GRAPH_DETECTOR, store, settings, shipped)
}

fn ip_learner(
    detector: &str,
    store: &Store,
    settings: &LearningSettings,
    shipped: f32,
) -> Option<Learner<IpAddr>> {
    let saved = match store.load_learning(detector) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "Cannot read the saved learning state; learning afresh");
            None
        }
    };
    match (saved, settings) {
        (Some((status, _)), _) if status.fitted.is_some() => {
            let cfg = settings.unwrap_or_else(|| LearningConfig::with_period(Duration::ZERO));
            let threshold = status.fitted.as_ref().map(|f| f.threshold);
            if detector == FLOW_DETECTOR {
                tracing::info!(threshold, "Using the flow threshold learnt on this site");
            } else {
                tracing::info!(
                    detector,
                    threshold,
                    "Using the threshold learnt on this site"
                );
            }
            Some(Learner::resume(cfg, status, Vec::new()))
        }
        (Some((status, bytes)), Some(cfg)) => {
            let samples = decode_samples(&bytes);
            tracing::info!(
                detector,
                progress = status.progress(),
                samples = samples.len(),
                "Resuming the learning period"
            );
            Some(Learner::resume(*cfg, status, samples))
        }
        (_, Some(cfg)) => {
            tracing::info!(detector, period = ?cfg.period, alert_ratio = cfg.alert_ratio, "Learning this site");
            Some(Learner::new(detector, *cfg, shipped))
        }
        (_, None) => None,
    }
}

/// Gives a `flow-v2` flow pipeline back the services it learnt before a restart (its novelty
/// filter, saved with the learning state).
pub(super) fn restore_novelty(pipeline: &mut FlowPipeline, store: &Store) {
    let saved = match store.load_novelty(FLOW_DETECTOR) {
        Ok(Some(b)) => b,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!(error = %e, "Cannot read the saved flow-v2 novelty; services learnt afresh");
            return;
        }
    };
    match pipeline.restore_novelty(&saved) {
        Some(services) => tracing::info!(
            services,
            "Restored the flow-v2 services learnt on this site"
        ),
        None if pipeline.feature_set() == crate::models::flow_scorer::FlowSet::V2 => {
            tracing::warn!(
                bytes = saved.len(),
                "Saved flow-v2 novelty not used (learning restarted, or damaged)"
            );
        }
        None => {}
    }
}

/// The series detector's learner, by the flow learner's rules; its scores are saved as JSON
/// (a few per interface and poll).
pub(super) fn series_learner(
    store: &Store,
    settings: &LearningSettings,
    shipped: f32,
) -> Option<Learner<String>> {
    let saved = store.load_learning(SERIES_DETECTOR).unwrap_or_else(|e| {
        tracing::warn!(error = %e, "Cannot read the saved series learning state");
        None
    });
    // Windows come one per interface and poll: fewer scores are wanted than for flows.
    let cfg = settings.map(|c| LearningConfig {
        min_samples: 100,
        ..c
    });
    match (saved, cfg) {
        (Some((status, _)), _) if status.fitted.is_some() => {
            let cfg = cfg.unwrap_or_else(|| LearningConfig::with_period(Duration::ZERO));
            Some(Learner::resume(cfg, status, Vec::new()))
        }
        (Some((status, bytes)), Some(cfg)) => {
            let samples: Vec<(String, f32)> = serde_json::from_slice(&bytes).unwrap_or_default();
            Some(Learner::resume(cfg, status, samples))
        }
        (_, Some(cfg)) => Some(Learner::new(SERIES_DETECTOR, cfg, shipped)),
        (_, None) => None,
    }
}

/// After each series batch: publishes the series learner's status, saves it while learning
/// (a batch comes once per poll) and when it ends.
pub(super) fn save_series(pipeline: &mut SeriesPipeline, store: &Store, board: &LearningBoard) {
    let changed = pipeline.take_learning_changed();
    let Some(l) = pipeline.learning() else {
        return;
    };
    learning::publish(board, l.status());
    if !(changed || l.learning()) {
        return;
    }
    let bytes = serde_json::to_vec(l.samples()).unwrap_or_default();
    if let Err(e) = store.save_learning(l.status(), &bytes) {
        tracing::warn!(error = %e, "Cannot save the series learning state");
    }
}

/// Publishes the flow learner's status and saves it when due.
#[derive(Debug)]
pub(super) struct LearningSaver {
    pub board: LearningBoard,
    last_save: Instant,
    last_samples: Instant,
    last_graph_save: Instant,
    /// The active model's sample schema is recorded in the store.
    schema_saved: bool,
}

impl LearningSaver {
    pub fn new(board: LearningBoard) -> Self {
        LearningSaver {
            board,
            last_save: Instant::now(),
            last_samples: Instant::now(),
            last_graph_save: Instant::now(),
            schema_saved: false,
        }
    }

    /// The graph detector's learner, by the same rules: published every call, saved when
    /// learning ended, every minute while it runs, and at shutdown (`force`).
    pub fn tick_graph(&mut self, graph: Option<&mut GraphPipeline>, store: &Store, force: bool) {
        let Some(graph) = graph else {
            return;
        };
        let changed = graph.take_learning_changed();
        let Some(l) = graph.learning() else {
            return;
        };
        learning::publish(&self.board, l.status());
        let due = l.learning() && self.last_graph_save.elapsed() >= SAVE_EVERY;
        if !(changed || due || force) {
            return;
        }
        self.last_graph_save = Instant::now();
        if let Err(e) = store.save_learning(l.status(), &encode_samples(l.samples())) {
            tracing::warn!(error = %e, "Cannot save the graph learning state");
        }
    }

    /// Call about once a second; `force` at shutdown.
    pub fn tick(&mut self, pipeline: &mut FlowPipeline, store: &Store, force: bool) {
        self.samples(pipeline, store, force);
        let changed = pipeline.take_learning_changed();
        let Some(l) = pipeline.learning() else {
            return;
        };
        learning::publish(&self.board, l.status());
        let due = l.learning() && self.last_save.elapsed() >= SAVE_EVERY;
        if !(changed || due || force) {
            return;
        }
        self.last_save = Instant::now();
        let novelty = pipeline.novelty_state();
        if let Err(e) =
            store.save_learning_with(l.status(), &encode_samples(l.samples()), novelty.as_deref())
        {
            tracing::warn!(error = %e, "Cannot save the learning state");
        }
    }

    fn samples(&mut self, pipeline: &mut FlowPipeline, store: &Store, force: bool) {
        let schema = pipeline.feature_set();
        let Some(r) = pipeline.reservoir_mut() else {
            return;
        };
        if !self.schema_saved {
            // What `samples export`, `GET /samples` and the MQTT fetch carry by default.
            match store.set_samples_schema(schema) {
                Ok(()) => self.schema_saved = true,
                Err(e) => tracing::warn!(error = %e, "Cannot record the samples' schema"),
            }
        }
        let max = r.config().max_buckets;
        let mut buckets = r.take_closed();
        if force || self.last_samples.elapsed() >= SAVE_EVERY {
            self.last_samples = Instant::now();
            buckets.extend(r.open_bucket().cloned());
        }
        for b in buckets {
            let bytes = crate::records::samples::encode(&b.rows);
            if let Err(e) = store.put_sample_bucket(b.start_ms, b.schema, &bytes, max) {
                tracing::warn!(error = %e, "Cannot store the feature samples");
            }
        }
    }
}
