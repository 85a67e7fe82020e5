//! The pipeline: datagram -> flow records -> `flow-v1` vectors -> batched autoencoder scores ->
//! de-duplicated alerts. It runs on one dedicated thread and does no network I/O; alerts go to a
//! callback (the daemon stores them durably and wakes the MQTT publisher).
//!
//! Batching: records are featurised as they are decoded (order matters for the host windows)
//! and scored in batches of up to `batch_size`, flushed when the batch is full or when the input
//! queue is momentarily empty, so a quiet network still gets sub-millisecond latency.

pub mod alerting;
pub mod detector;
pub mod live;
pub mod series;
pub mod series_detector;
pub mod summary;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use netwarden_firmware::features::{FlowFeatures, HostWindows, FLOW_WIDTH};
use netwarden_firmware::{FlowRecord, Verdict};

use crate::metrics::Metrics;
use crate::models::Bundle;
use crate::sources::netflow::{NetflowDecoder, Source};
use alerting::{Alert, Alerter, Finding, ModelRef};
use detector::FlowAe;

/// Source hosts tracked for window features (a power of two; about 170 bytes each). Built on
/// the stack before boxing in debug builds, so kept well under a test thread's 2 MiB stack.
pub const HOST_WINDOWS: usize = 4096;

/// Name of the flow detector in alerts and metrics.
pub const FLOW_DETECTOR: &str = "flow_ae";

/// Where a flow record came from; alerts name it (`subject.exporter`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlowOrigin {
    /// A NetFlow/IPFIX exporter (address and port).
    Exporter(SocketAddr),
    /// The packet meter: `capture:IFACE` for a live interface, `pcap:FILE` for a replay.
    Meter(Arc<str>),
}

impl std::fmt::Display for FlowOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FlowOrigin::Exporter(a) => a.fmt(f),
            FlowOrigin::Meter(name) => f.write_str(name),
        }
    }
}

#[derive(Debug)]
struct Pending {
    exporter: FlowOrigin,
    flow: FlowRecord,
    raw: FlowFeatures,
    scaled: [f32; FLOW_WIDTH],
}

/// Everything between a datagram and an alert.
#[derive(Debug)]
pub struct Pipeline {
    pub decoder: NetflowDecoder,
    windows: Box<HostWindows<HOST_WINDOWS>>,
    detector: FlowAe,
    alerter: Alerter,
    metrics: Arc<Metrics>,
    decoded: Vec<(Source, FlowRecord)>,
    pending: Vec<Pending>,
    scaled: Vec<[f32; FLOW_WIDTH]>,
    outputs: Vec<f32>,
    evictions_reported: u64,
    now_ms: fn() -> u64,
    /// Flows and scores of the current summary interval (for the history).
    tally: summary::FlowTally,
    model_name: String,
    /// Scores since the last hand-over to the dashboard's [`live::LiveBoard`].
    pub live: live::LiveTally,
}

impl Pipeline {
    pub fn new(
        bundle: Bundle,
        site: &str,
        device: &str,
        dedupe: std::time::Duration,
        max_exporters: usize,
        metrics: Arc<Metrics>,
    ) -> Self {
        let model = ModelRef {
            name: bundle.manifest.name.clone(),
            version: bundle.manifest.version.clone(),
        };
        let model_name = format!("{} {}", model.name, model.version);
        let batch = bundle.detector.batch_size();
        Pipeline {
            decoder: NetflowDecoder::new(max_exporters),
            windows: Box::default(),
            detector: bundle.detector,
            alerter: Alerter::new(site, device, FLOW_DETECTOR, model, dedupe),
            metrics,
            decoded: Vec::with_capacity(1024),
            pending: Vec::with_capacity(batch),
            scaled: Vec::with_capacity(batch),
            outputs: Vec::with_capacity(batch * FLOW_WIDTH),
            evictions_reported: 0,
            now_ms: crate::now_ms,
            tally: summary::FlowTally::new(crate::now_ms()),
            model_name,
            live: live::LiveTally::default(),
        }
    }

    /// Uses `clock` for alert timestamps (tests, demo replays).
    pub fn with_clock(mut self, clock: fn() -> u64) -> Self {
        self.now_ms = clock;
        self.tally = summary::FlowTally::new(clock());
        self
    }

    /// Decodes and featurises one datagram; scores when a batch fills.
    pub fn ingest(&mut self, exporter: SocketAddr, payload: &[u8], alerts: &mut impl FnMut(Alert)) {
        self.decoded.clear();
        self.decoder.decode(exporter, payload, &mut self.decoded);
        let mut decoded = std::mem::take(&mut self.decoded);
        for (src, flow) in decoded.drain(..) {
            self.push(FlowOrigin::Exporter(src.exporter), flow, alerts);
        }
        self.decoded = decoded;
    }

    /// Closes the summary interval when `interval_ms` has passed since it began: the flow and
    /// score summaries for the history, `top` busiest sources listed.
    pub fn take_summary(
        &mut self,
        interval_ms: u64,
        top: usize,
    ) -> Option<(
        crate::sinks::history::FlowSummary,
        crate::sinks::history::ScoreSummary,
    )> {
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

    /// Featurises flow records that did not come from NetFlow (the packet meter's
    /// `BiFlow::records()`), exactly as decoded NetFlow records are; scores when a batch fills.
    pub fn ingest_records(
        &mut self,
        origin: &FlowOrigin,
        records: &[FlowRecord],
        alerts: &mut impl FnMut(Alert),
    ) {
        for flow in records {
            self.push(origin.clone(), *flow, alerts);
        }
    }

    fn push(&mut self, exporter: FlowOrigin, flow: FlowRecord, alerts: &mut impl FnMut(Alert)) {
        let raw = self.windows.observe(&flow);
        let scaled = self.detector.scaler().scale(&raw);
        self.pending.push(Pending {
            exporter,
            flow,
            raw,
            scaled,
        });
        if self.pending.len() >= self.detector.batch_size() {
            self.flush(alerts);
        }
    }

    /// Scores everything waiting.
    pub fn flush(&mut self, alerts: &mut impl FnMut(Alert)) {
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
        let (threshold, high) = (self.detector.threshold, self.detector.high_ratio);
        let now_ms = (self.now_ms)();
        for (p, out) in self.pending.iter().zip(self.outputs.chunks(FLOW_WIDTH)) {
            let verdict = Verdict::<FLOW_WIDTH>::judge(&p.scaled, out, threshold, high);
            self.tally
                .observe(&p.flow, verdict.error, verdict.severity.is_some());
            self.live.record(verdict.error, verdict.severity.is_some());
            let Some(severity) = verdict.severity else {
                continue;
            };
            m.add(&m.flows_anomalous, 1);
            let finding = Finding {
                exporter: &p.exporter,
                flow: &p.flow,
                raw: &p.raw,
                verdict: &verdict,
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
        self.pending.clear();
        let ev = self.windows.stats().evictions;
        m.add(&m.host_window_evictions, ev - self.evictions_reported);
        self.evictions_reported = ev;
    }
}
