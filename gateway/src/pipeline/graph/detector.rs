//! The graph pipeline: every flow record becomes an edge of the [`EndpointTable`] (in arrival
//! order, the order the features were exported in for training), its row waits in a batch, the
//! batch is scored in tract ([`GraphScorer`]), and edges whose pattern is not benign become
//! de-duplicated alerts that name both endpoints, their roles and the pattern
//! ([`super::alerting`]).
//!
//! The learning period ([`crate::pipeline::learning`]) works here as for the flow detector:
//! while it runs, edges alert only far beyond the shipped threshold; at its end the threshold is
//! fitted with SPOT on this site's edges, grouped by the host that opened the connection. The
//! learner sees the edge's surprise `-ln P(benign)` ([`surprise`]), not the probability: a
//! score bounded by 1 has no tail for SPOT to fit, and `10x` the shipped threshold would be
//! out of reach. A fitted threshold never goes below the shipped one (the classifier's own
//! boundary).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use netwarden_firmware::FlowRecord;

use super::alerting::{EdgeAlerter, EdgeFinding};
use super::edge::INPUT_WIDTH;
use super::table::{EndpointTable, Initiator, TableStats};
use crate::metrics::Metrics;
use crate::models::graph_scorer::{GraphBundle, GraphScorer};
use crate::pipeline::learning::Learner;
use crate::records::{Alert, FlowOrigin, ModelRef, GRAPH_DETECTOR};

/// An edge as the graph model judged it (kept for `netwarden eval`).
#[derive(Debug, Clone, Copy)]
pub struct ScoredEdge {
    pub flow: FlowRecord,
    pub initiator: Initiator,
    /// `1 - P(benign)`.
    pub score: f32,
    /// The most probable class (index into the bundle's classes).
    pub class: usize,
    pub anomalous: bool,
}

#[derive(Debug)]
struct Pending {
    origin: FlowOrigin,
    flow: FlowRecord,
    initiator: Initiator,
}

/// Edges in, alerts out.
#[derive(Debug)]
pub struct GraphPipeline {
    table: EndpointTable,
    scorer: GraphScorer,
    alerter: EdgeAlerter,
    metrics: Arc<Metrics>,
    pending: Vec<Pending>,
    rows: Vec<f32>,
    probs: Vec<f32>,
    now_ms: fn() -> u64,
    scored: Option<Vec<ScoredEdge>>,
    /// Model runs, for the benchmark and eval.
    pub runs: u64,
    evictions_reported: u64,
    learner: Option<Learner<IpAddr>>,
    learning_changed: bool,
    /// The bundle's threshold (the floor of a learnt one).
    shipped: f32,
}

/// The learner's score of an edge: `-ln P(benign)`, 0 for a surely benign edge, unbounded.
pub fn surprise(p_benign: f32) -> f32 {
    -p_benign.clamp(1e-7, 1.0).ln()
}

/// The edge score (`1 - P(benign)`) of a surprise.
pub fn score_of_surprise(s: f32) -> f32 {
    1.0 - (-s).exp()
}

impl GraphPipeline {
    pub fn new(
        bundle: GraphBundle,
        endpoints: usize,
        site: &str,
        device: &str,
        dedupe: Duration,
        metrics: Arc<Metrics>,
    ) -> Self {
        let model = ModelRef {
            name: bundle.manifest.name.clone(),
            version: bundle.manifest.version.clone(),
        };
        let batch = bundle.scorer.batch_size();
        let bundle_threshold = bundle.scorer.threshold;
        GraphPipeline {
            table: EndpointTable::new(endpoints),
            alerter: EdgeAlerter::new(site, device, GRAPH_DETECTOR, model, dedupe),
            scorer: bundle.scorer,
            metrics,
            pending: Vec::with_capacity(batch),
            rows: Vec::with_capacity(batch * INPUT_WIDTH),
            probs: Vec::with_capacity(batch * 16),
            now_ms: crate::now_ms,
            scored: None,
            runs: 0,
            evictions_reported: 0,
            learner: None,
            learning_changed: false,
            shipped: bundle_threshold,
        }
    }

    /// The shipped threshold as a surprise (what a [`Learner`] for this pipeline starts from).
    pub fn shipped_surprise(&self) -> f32 {
        surprise(1.0 - self.shipped)
    }

    /// Learns the threshold on this site's edges; a learner that has already finished
    /// (resumed after a restart) applies its fitted threshold at once.
    pub fn with_learning(mut self, learner: Learner<IpAddr>) -> Self {
        if let Some(f) = &learner.status().fitted {
            self.scorer.threshold = self.fitted_threshold(f.threshold);
        }
        self.learner = Some(learner);
        self
    }

    /// The edge threshold a fitted surprise gives: never below the shipped one, the
    /// classifier's own boundary (`P(benign)` under one half). Learning raises the threshold
    /// where this site's benign edges look unusual to the model; it does not flag edges the
    /// model itself calls benign.
    fn fitted_threshold(&self, fitted_surprise: f32) -> f32 {
        score_of_surprise(fitted_surprise).max(self.shipped)
    }

    /// Where learning stands (`None`: this pipeline does not learn).
    pub fn learning(&self) -> Option<&Learner<IpAddr>> {
        self.learner.as_ref()
    }

    /// True once after learning finished (so the caller saves the fitted state).
    pub fn take_learning_changed(&mut self) -> bool {
        std::mem::take(&mut self.learning_changed)
    }

    /// The edge score over which an edge is anomalous now: while learning, the learner's (far
    /// above the shipped one), else the bundle's or the fitted one.
    pub fn threshold(&self) -> f32 {
        match &self.learner {
            Some(l) if l.learning() => score_of_surprise(l.threshold()),
            _ => self.scorer.threshold,
        }
    }

    /// Uses `clock` for alert timestamps (tests, replays).
    pub fn with_clock(mut self, clock: fn() -> u64) -> Self {
        self.now_ms = clock;
        self
    }

    /// Keeps every scored edge (offline evaluation only).
    pub fn keep_scores(mut self) -> Self {
        self.scored = Some(Vec::new());
        self
    }

    pub fn take_scores(&mut self) -> Vec<ScoredEdge> {
        self.scored.as_mut().map(std::mem::take).unwrap_or_default()
    }

    pub fn classes(&self) -> &[String] {
        &self.scorer.classes
    }

    pub fn stats(&self) -> TableStats {
        self.table.stats()
    }

    /// Adds the records as edges; scores whenever a batch fills.
    pub fn ingest_records(
        &mut self,
        origin: &FlowOrigin,
        records: &[FlowRecord],
        alerts: &mut impl FnMut(Alert),
    ) {
        for r in records {
            // The row is gathered straight into the batch.
            let at = self.rows.len();
            self.rows.resize(at + INPUT_WIDTH, 0.0);
            let row: &mut [f32; INPUT_WIDTH] = (&mut self.rows[at..])
                .try_into()
                .expect("INPUT_WIDTH values were just added");
            let initiator = self.table.observe(r, row);
            self.pending.push(Pending {
                origin: origin.clone(),
                flow: *r,
                initiator,
            });
            if self.pending.len() >= self.scorer.batch_size() {
                self.flush(alerts);
            }
        }
    }

    /// Scores every waiting edge.
    pub fn flush(&mut self, alerts: &mut impl FnMut(Alert)) {
        if self.pending.is_empty() {
            return;
        }
        self.probs.clear();
        let started = Instant::now();
        let result = self.scorer.run(&self.rows, &mut self.probs);
        let m = &self.metrics;
        m.add(&m.graph_inference_runs, 1);
        m.add(
            &m.graph_inference_micros_total,
            started.elapsed().as_micros() as u64,
        );
        self.runs += 1;
        let ev = self.table.stats().evictions;
        m.add(&m.graph_endpoint_evictions, ev - self.evictions_reported);
        self.evictions_reported = ev;
        if let Err(e) = result {
            m.add(&m.graph_inference_errors, 1);
            tracing::error!(error = %e, rows = self.pending.len(), "Graph model failed; batch not scored");
            self.pending.clear();
            self.rows.clear();
            return;
        }
        m.add(&m.graph_edges_scored, self.pending.len() as u64);
        let classes = self.scorer.classes.len();
        let mut threshold = self.threshold();
        let now_ms = (self.now_ms)();
        for (p, probs) in self.pending.iter().zip(self.probs.chunks(classes)) {
            let score = 1.0 - probs[0];
            if let Some(l) = self.learner.as_mut().filter(|l| l.learning()) {
                let opener = match self.table.opened_by(&p.flow) {
                    Initiator::Src => p.flow.src_addr,
                    Initiator::Dst => p.flow.dst_addr,
                };
                if let Some(f) = l.observe(&opener, p.flow.last_ms, surprise(probs[0])) {
                    tracing::info!(
                        surprise = f.threshold,
                        method = %f.method,
                        samples = f.samples,
                        excluded = ?f.excluded,
                        "Learning period over; graph edge threshold fitted"
                    );
                    let fitted = score_of_surprise(f.threshold).max(self.shipped);
                    self.scorer.threshold = fitted;
                    threshold = fitted;
                    self.learning_changed = true;
                }
            }
            // The pattern: the most probable class other than benign.
            let class = (1..classes)
                .max_by(|&a, &b| probs[a].total_cmp(&probs[b]))
                .unwrap_or(0);
            let anomalous = score > threshold;
            if let Some(s) = self.scored.as_mut() {
                s.push(ScoredEdge {
                    flow: p.flow,
                    initiator: p.initiator,
                    score,
                    class: if anomalous { class } else { 0 },
                    anomalous,
                });
            }
            if !anomalous {
                continue;
            }
            m.add(&m.graph_edges_anomalous, 1);
            let finding = EdgeFinding {
                origin: &p.origin,
                flow: &p.flow,
                initiator: self.table.opened_by(&p.flow),
                pattern: &self.scorer.classes[class],
                probability: probs[class],
                score,
                threshold,
            };
            let id = || uuid::Uuid::now_v7().to_string();
            match self.alerter.consider(&finding, id, now_ms) {
                Some(alert) => {
                    m.add(&m.alerts_raised, 1);
                    alerts(alert);
                }
                None => m.add(&m.alerts_suppressed_dedupe, 1),
            }
        }
        self.pending.clear();
        self.rows.clear();
    }
}
