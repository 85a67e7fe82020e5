//! The pipeline: flow records -> `flow-v1` or `flow-v2` vectors (the bundle's feature set) ->
//! batched autoencoder scores -> de-duplicated alerts. It runs on one dedicated thread and does no network I/O. It never
//! decodes: the runtime's flow thread owns the NetFlow decoder and hands it the records; alerts
//! go to a callback (the runtime's alert sink stores them durably and wakes the MQTT publisher).
//!
//! Batching: records are featurised as they are decoded (order matters for the host windows)
//! and scored in batches of up to `batch_size`, flushed when the batch is full or when the input
//! queue is momentarily empty, so a quiet network still gets sub-millisecond latency.
//!
//! With a `flow-v2` bundle a record's vector is ready only when its reverse direction arrives
//! or its wait ends (`netwarden_firmware::features_v2`); the arrival clock is the wall clock, or
//! the replay's ([`FlowPipeline::set_arrival`]). Each flush first emits the records whose wait
//! is over; [`FlowPipeline::finish`] emits the rest at the end of input.

pub mod alerting;
pub mod arp;
pub mod config;
pub mod eve;
pub mod exporters;
pub mod fleet;
pub mod graph;
pub mod incidents;
pub mod learning;
pub mod orient;
pub mod reservoir;
pub mod series;
pub mod summary;

use std::sync::Arc;
use std::time::Instant;

use netwarden_firmware::features::HostWindows;
use netwarden_firmware::features_v2::{FlowV2, FlowV2Stats, DEFAULT_PAIR_WAIT_MS};
use netwarden_firmware::{FlowRecord, Verdict};

use crate::metrics::Metrics;
use crate::models::flow_scorer::{row_of, FlowAe, FlowRow, FlowSet, ROW};
use crate::models::Bundle;
use crate::records::scoreboard::ScoreTally;
use crate::records::{Alert, FlowOrigin, ModelRef, FLOW_DETECTOR};
use alerting::{Alerter, Finding};
use learning::Learner;
use std::net::IpAddr;

/// Source hosts tracked for window features (a power of two; about 170 bytes each). Built on
/// the stack before boxing in debug builds, so kept well under a test thread's 2 MiB stack.
pub const HOST_WINDOWS: usize = 4096;

/// `flow-v2` records waiting for their reverse direction (about 150 bytes each).
pub const PAIR_SLOTS: usize = 2048;

/// `flow-v2` services (initiator, target, port, protocol) with a window (about 32 bytes each).
pub const SERVICE_SLOTS: usize = 4096;

/// The `flow-v2` state the pipeline and `netwarden features` keep beside the host windows.
pub type PairState<T> = FlowV2<T, PAIR_SLOTS, SERVICE_SLOTS>;

/// A flow as the detector scored it; kept only when asked for ([`FlowPipeline::keep_scores`]), by
/// `netwarden eval`, which needs every score, not only the alerts.
#[derive(Debug, Clone, Copy)]
pub struct ScoredFlow {
    pub flow: FlowRecord,
    pub error: f32,
    pub anomalous: bool,
}

#[derive(Debug)]
struct Pending {
    exporter: FlowOrigin,
    flow: FlowRecord,
    raw: FlowRow,
    scaled: FlowRow,
}

/// Everything between a datagram and an alert.
#[derive(Debug)]
pub struct FlowPipeline {
    windows: Box<HostWindows<HOST_WINDOWS>>,
    /// Pairing, service windows and novelty; only with a `flow-v2` bundle.
    pairs: Option<Box<PairState<FlowOrigin>>>,
    /// The replay's arrival clock (`None`: the wall clock).
    arrival_ms: Option<u64>,
    pair_stats_reported: FlowV2Stats,
    detector: FlowAe,
    alerter: Alerter,
    metrics: Arc<Metrics>,
    pending: Vec<Pending>,
    scaled: Vec<FlowRow>,
    outputs: Vec<f32>,
    evictions_reported: u64,
    now_ms: fn() -> u64,
    /// Flows and scores of the current summary interval (for the history).
    tally: summary::FlowTally,
    model_name: String,
    /// Scores since the last hand-over to the dashboard's
    /// [`ScoreBoard`](crate::records::scoreboard::ScoreBoard).
    pub scores: ScoreTally,
    /// Every scored flow, when kept.
    scored: Option<Vec<ScoredFlow>>,
    /// The model the alerts name (changes with a fleet swap).
    alerter_model: ModelRef,
    /// Error and verdict of each record of the batch being flushed, for the fleet shadow.
    active_scores: Vec<(f32, bool)>,
    /// A fleet candidate shadowing, or the previous model watching ([`fleet`]).
    fleet: Option<fleet::Slot>,
    fleet_policy: crate::models::fleet::Policy,
    fleet_outcomes: Vec<crate::models::fleet::Outcome>,
    /// The learning period, when the detector learns its threshold on this site.
    learner: Option<Learner<IpAddr>>,
    /// Set when the learner's state changed in a way worth saving (it finished).
    learning_changed: bool,
    /// Feature rows kept for central training.
    reservoir: Option<reservoir::Reservoir>,
    /// `flow-v2` novelty waits for the learning period's first record to know its end.
    novelty_pending: bool,
}

impl FlowPipeline {
    pub fn new(
        bundle: Bundle,
        site: &str,
        device: &str,
        dedupe: std::time::Duration,
        metrics: Arc<Metrics>,
    ) -> Self {
        let model = ModelRef {
            name: bundle.manifest.name.clone(),
            version: bundle.manifest.version.clone(),
        };
        let model_name = format!("{} {}", model.name, model.version);
        let batch = bundle.detector.batch_size();
        let pairs = (bundle.detector.set() == FlowSet::V2)
            .then(|| Box::new(PairState::new(DEFAULT_PAIR_WAIT_MS)));
        FlowPipeline {
            windows: Box::default(),
            pairs,
            arrival_ms: None,
            pair_stats_reported: FlowV2Stats::default(),
            detector: bundle.detector,
            alerter: Alerter::new(site, device, FLOW_DETECTOR, model.clone(), dedupe),
            alerter_model: model,
            active_scores: Vec::with_capacity(batch),
            fleet: None,
            fleet_policy: crate::models::fleet::Policy::default(),
            fleet_outcomes: Vec::new(),
            metrics,
            pending: Vec::with_capacity(batch),
            scaled: Vec::with_capacity(batch),
            outputs: Vec::with_capacity(batch * ROW),
            evictions_reported: 0,
            now_ms: crate::now_ms,
            tally: summary::FlowTally::new(crate::now_ms()),
            model_name,
            scores: ScoreTally::default(),
            scored: None,
            learner: None,
            learning_changed: false,
            reservoir: None,
            novelty_pending: false,
        }
    }

    /// Keeps a time-stratified sample of feature rows ([`reservoir`]).
    pub fn with_reservoir(mut self, cfg: reservoir::ReservoirConfig) -> Self {
        self.reservoir = Some(reservoir::Reservoir::new(cfg));
        self
    }

    /// The reservoir, for the runtime to store its buckets.
    pub fn reservoir_mut(&mut self) -> Option<&mut reservoir::Reservoir> {
        self.reservoir.as_mut()
    }

    /// Learns the threshold on this site's traffic ([`learning`]); a learner that has already
    /// finished (resumed after a restart) applies its fitted threshold at once.
    pub fn with_learning(mut self, mut learner: Learner<IpAddr>) -> Self {
        if learner.bind_model(&self.model_name, self.detector.threshold) {
            tracing::info!(model = %self.model_name, "The active model is not the one learnt for; learning it afresh");
            self.learning_changed = true;
        }
        if let Some(f) = &learner.status().fitted {
            self.detector.threshold = f.threshold;
        }
        // `flow-v2` novelty learns the services seen during the period. A learner resumed after
        // its period has novelty on only once its saved filter is restored
        // ([`FlowPipeline::restore_novelty`]); without one it stays off (0).
        if learner.learning() {
            self.novelty_from(learner.status());
            self.novelty_pending = self
                .pairs
                .as_ref()
                .is_some_and(|p| p.learn_until().is_none());
        }
        self.learner = Some(learner);
        self
    }

    /// `flow-v2` novelty: services used before the end of the learning period are known.
    fn novelty_from(&mut self, status: &crate::records::learning::LearningStatus) {
        if let (Some(p), Some(start)) = (self.pairs.as_mut(), status.start_ms) {
            p.set_learn_until(Some(start.saturating_add(status.period_ms)));
        }
    }

    /// Restores the `flow-v2` services learnt before a restart (bytes that
    /// [`FlowPipeline::novelty_state`] gave) and turns novelty on for the learner's period;
    /// returns how many are learnt now. `None` (nothing changed) without a `flow-v2` model, a
    /// learner that has started, or with bytes of the wrong size.
    pub fn restore_novelty(&mut self, bytes: &[u8]) -> Option<u32> {
        let status = self.learner.as_ref()?.status().clone();
        status.start_ms?;
        let p = self.pairs.as_mut()?;
        if !p.restore_novelty(bytes) {
            return None;
        }
        self.novelty_from(&status);
        self.pairs.as_ref().map(|p| p.novelty_learnt())
    }

    /// The `flow-v2` novelty filter to save with the learning state (`None`: no `flow-v2`
    /// model, or novelty not learning).
    pub fn novelty_state(&self) -> Option<Vec<u8>> {
        let p = self.pairs.as_ref().filter(|p| p.learn_until().is_some())?;
        let mut out = [0u8; netwarden_firmware::features_v2::NOVELTY_BYTES];
        p.save_novelty(&mut out);
        Some(out.to_vec())
    }

    /// `flow-v2`: records wait this long (arrival time) for their reverse direction
    /// (`[detector] pair_wait`). No effect on a `flow-v1` bundle.
    pub fn with_pair_wait(mut self, wait: std::time::Duration) -> Self {
        if let Some(p) = self.pairs.as_mut() {
            p.set_wait_ms(wait.as_millis().min(u64::MAX as u128) as u64);
        }
        self
    }

    /// `flow-v2` novelty learnt until `until_ms` of event time, whatever the threshold does
    /// (`netwarden eval` with a learning lead-in). No effect on a `flow-v1` bundle.
    pub fn with_novelty_until(mut self, until_ms: u64) -> Self {
        if let Some(p) = self.pairs.as_mut() {
            p.set_learn_until(Some(until_ms));
        }
        self
    }

    /// The replay clock: records ingested from now on arrived at `at_ms` (eval's and
    /// `features`' datagram times). Without it the `flow-v2` wait runs on the wall clock.
    pub fn set_arrival(&mut self, at_ms: u64) {
        self.arrival_ms = Some(at_ms);
    }

    /// The feature set the model reads.
    pub fn feature_set(&self) -> FlowSet {
        self.detector.set()
    }

    fn arrival(&self) -> u64 {
        self.arrival_ms.unwrap_or_else(crate::now_ms)
    }

    /// Where learning stands (`None`: this pipeline does not learn).
    pub fn learning(&self) -> Option<&Learner<IpAddr>> {
        self.learner.as_ref()
    }

    /// True once after learning finished (so the caller saves the fitted state).
    pub fn take_learning_changed(&mut self) -> bool {
        std::mem::take(&mut self.learning_changed)
    }

    /// The threshold flows are judged against now: while learning, the learner's (far above the
    /// shipped one), else the bundle's or the fitted one.
    pub fn threshold(&self) -> f32 {
        match &self.learner {
            Some(l) if l.learning() => l.threshold(),
            _ => self.detector.threshold,
        }
    }

    /// Keeps every scored flow for [`FlowPipeline::take_scores`] (offline evaluation; the daemon
    /// never does: it would grow without bound).
    pub fn keep_scores(mut self) -> Self {
        self.scored = Some(Vec::new());
        self
    }

    /// The flows scored since the last call (empty unless [`FlowPipeline::keep_scores`]).
    pub fn take_scores(&mut self) -> Vec<ScoredFlow> {
        self.scored.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// Uses `clock` for alert timestamps (tests, demo replays).
    pub fn with_clock(mut self, clock: fn() -> u64) -> Self {
        self.now_ms = clock;
        self.tally = summary::FlowTally::new(clock());
        self
    }

    /// Closes the summary interval when `interval_ms` has passed since it began: the flow and
    /// score summaries for the history, `top` busiest sources listed.
    pub fn take_summary(
        &mut self,
        interval_ms: u64,
        top: usize,
    ) -> Option<(crate::records::FlowSummary, crate::records::ScoreSummary)> {
        let now_ms = (self.now_ms)();
        if now_ms < self.tally.start_ms().saturating_add(interval_ms) {
            return None;
        }
        Some(self.tally.finish(
            now_ms,
            top,
            FLOW_DETECTOR,
            &self.model_name,
            self.detector.threshold,
        ))
    }

    /// Featurises flow records (decoded NetFlow, or the packet meter's `BiFlow::records()`),
    /// all alike; scores when a batch fills.
    pub fn ingest_records(
        &mut self,
        origin: &FlowOrigin,
        records: &[FlowRecord],
        alerts: &mut impl FnMut(Alert),
    ) {
        for flow in records {
            self.ingest_record(origin.clone(), *flow, alerts);
        }
    }

    /// Featurises one flow record; scores when a batch fills. With `flow-v2` the record may
    /// wait for its reverse direction first.
    pub fn ingest_record(
        &mut self,
        exporter: FlowOrigin,
        flow: FlowRecord,
        alerts: &mut impl FnMut(Alert),
    ) {
        let v1 = self.windows.observe(&flow);
        match self.pairs.as_mut() {
            None => {
                let raw = row_of(&v1);
                let scaled = self.detector.scaler().scale(&raw);
                self.pending.push(Pending {
                    exporter,
                    flow,
                    raw,
                    scaled,
                });
            }
            Some(pairs) => {
                if std::mem::take(&mut self.novelty_pending) {
                    // The period starts at this record (the learner takes the first scored
                    // one's time, at most a pairing wait later): services learnt from here.
                    let period = self.learner.as_ref().map_or(0, |l| l.status().period_ms);
                    pairs.set_learn_until(Some(flow.last_ms.saturating_add(period)));
                }
                let now = self.arrival_ms.unwrap_or_else(crate::now_ms);
                let (pending, scaler) = (&mut self.pending, self.detector.scaler());
                pairs.push(&flow, v1, exporter, now, &mut |r, v, origin| {
                    pending.push(Pending {
                        exporter: origin,
                        flow: *r,
                        raw: *v,
                        scaled: scaler.scale(v),
                    })
                });
            }
        }
        if self.pending.len() >= self.detector.batch_size() {
            self.flush(alerts);
        }
    }

    /// Emits the `flow-v2` records whose wait is over (with `all`, every waiting one).
    fn release_pairs(&mut self, all: bool) {
        let now = self.arrival();
        let Some(pairs) = self.pairs.as_mut() else {
            return;
        };
        let (pending, scaler) = (&mut self.pending, self.detector.scaler());
        let mut out = |r: &FlowRecord, v: &FlowRow, origin: FlowOrigin| {
            pending.push(Pending {
                exporter: origin,
                flow: *r,
                raw: *v,
                scaled: scaler.scale(v),
            })
        };
        if all {
            pairs.drain(&mut out);
        } else {
            pairs.expire(now, &mut out);
        }
    }

    /// End of input: emits every `flow-v2` record still waiting for its reverse, and scores.
    pub fn finish(&mut self, alerts: &mut impl FnMut(Alert)) {
        self.release_pairs(true);
        self.flush(alerts);
    }

    /// Scores everything waiting.
    pub fn flush(&mut self, alerts: &mut impl FnMut(Alert)) {
        self.release_pairs(false);
        if self.pending.is_empty() {
            return;
        }
        self.scaled.clear();
        self.scaled.extend(self.pending.iter().map(|p| p.scaled));
        self.outputs.clear();
        let started = Instant::now();
        let result = self.detector.run_scaled(&self.scaled, &mut self.outputs);
        let elapsed = started.elapsed();
        let m = &self.metrics;
        m.add(&m.inference_runs, 1);
        m.add(&m.inference_micros_total, elapsed.as_micros() as u64);
        m.flow_inference_latency.observe(elapsed);
        if let Err(e) = result {
            m.add(&m.inference_errors, 1);
            tracing::error!(error = %e, rows = self.pending.len(), "Flow model failed; batch not scored");
            self.pending.clear();
            return;
        }
        m.add(&m.flows_scored, self.pending.len() as u64);
        let high = self.detector.high_ratio;
        let mut threshold = self.threshold();
        let now_ms = (self.now_ms)();
        let width = self.detector.width();
        let names = self.detector.set().names();
        let sample_schema = self.feature_set();
        self.active_scores.clear();
        for (p, out) in self.pending.iter().zip(self.outputs.chunks(width)) {
            let verdict = Verdict::judge_first(&p.scaled, width, out, threshold, high);
            self.active_scores
                .push((verdict.error, verdict.severity.is_some()));
            if let Some(r) = self.reservoir.as_mut() {
                r.observe(&p.flow, sample_schema, &p.raw, verdict.error);
            }
            if let Some(l) = self.learner.as_mut() {
                let initiator = orient::orient(&p.flow).initiator;
                if let Some(f) = l.observe(&initiator, p.flow.last_ms, verdict.error) {
                    tracing::info!(
                        threshold = f.threshold,
                        method = %f.method,
                        samples = f.samples,
                        excluded = ?f.excluded,
                        "Learning period over; flow threshold fitted"
                    );
                    self.detector.threshold = f.threshold;
                    threshold = f.threshold;
                    self.learning_changed = true;
                }
            }
            self.tally
                .observe(&p.flow, verdict.error, verdict.severity.is_some());
            self.scores
                .record(verdict.error, verdict.severity.is_some());
            if let Some(scored) = self.scored.as_mut() {
                scored.push(ScoredFlow {
                    flow: p.flow,
                    error: verdict.error,
                    anomalous: verdict.severity.is_some(),
                });
            }
            let Some(severity) = verdict.severity else {
                continue;
            };
            m.add(&m.flows_anomalous, 1);
            let finding = Finding {
                exporter: &p.exporter,
                flow: &p.flow,
                raw: &p.raw,
                verdict: &verdict,
                names,
                severity,
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
        // The second model scores the same batch; a swap happens here, between two batches.
        self.fleet_batch(elapsed);
        self.pending.clear();
        let ev = self.windows.stats().evictions;
        let m = &self.metrics;
        m.add(&m.host_window_evictions, ev - self.evictions_reported);
        self.evictions_reported = ev;
        if let Some(pairs) = self.pairs.as_ref() {
            let (now, was) = (pairs.stats(), self.pair_stats_reported);
            m.add(&m.flow_pairs_paired, now.paired - was.paired);
            m.add(&m.flow_pairs_unpaired, now.unpaired - was.unpaired);
            m.add(
                &m.flow_pair_evictions,
                now.pair_evictions + now.pair_duplicates - was.pair_evictions - was.pair_duplicates,
            );
            m.add(
                &m.flow_service_evictions,
                now.service_evictions - was.service_evictions,
            );
            self.pair_stats_reported = now;
        }
    }

    /// The `flow-v2` pairing counters (`None` with a `flow-v1` bundle).
    pub fn pair_stats(&self) -> Option<FlowV2Stats> {
        self.pairs.as_ref().map(|p| p.stats())
    }
}
