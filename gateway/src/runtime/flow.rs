//! The flow thread: pops what the flow sources queued (records the NetFlow shards decoded, the
//! packet meter's and EVE's records, ARP events), hands the records to the flow pipeline, and
//! passes what comes out to the sinks: alerts to the [`AlertSink`], summaries to the history,
//! recent scores to the dashboard's [`ScoreBoard`], counters to `stats.json` (every shard's
//! exporter counters summed).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use netwarden_firmware::FlowRecord;

use super::Stats;
use crate::metrics::Metrics;
use crate::pipeline::arp::ArpDetector;
use crate::pipeline::FlowPipeline;
use crate::records::scoreboard::ScoreBoard;
use crate::records::{
    Alert, ExporterBoard, ExporterStats, FlowInput, FlowOrigin, FlowSummary, ScoreSummary,
    StatusBoard,
};
use crate::sinks::alert_sink::AlertSink;
use crate::sinks::store::Store;
use crate::sources::netflow::listener::KernelDrops;
use crate::sources::netflow::templates::TemplateBook;
use crate::sources::netflow::{ExporterDomain, NetflowDecoder};

/// The NetFlow decoder and the flow pipeline, wired: what the flow thread runs, and what the
/// offline commands (`demo`) and tests run on captured datagrams.
#[derive(Debug)]
pub struct FlowStage {
    pub decoder: NetflowDecoder,
    pub pipeline: FlowPipeline,
    /// The ARP rules, for what capture sources' ARP meters queue (none: ARP is ignored).
    pub arp: Option<ArpDetector>,
    /// The temporal graph detector, when enabled (`detector.graph`): every record also goes
    /// in as an edge.
    pub graph: Option<crate::pipeline::graph::GraphPipeline>,
    /// Silent and lossy exporters (`kind: exporter` alerts), checked once a second.
    pub exporter_watch: Option<crate::pipeline::exporters::ExporterWatch>,
    decoded: Vec<(ExporterDomain, FlowRecord)>,
}

impl FlowStage {
    pub fn new(decoder: NetflowDecoder, pipeline: FlowPipeline) -> FlowStage {
        FlowStage {
            decoder,
            pipeline,
            arp: None,
            graph: None,
            exporter_watch: None,
            decoded: Vec::with_capacity(1024),
        }
    }

    /// Applies the ARP rules to the capture sources' ARP events.
    pub fn with_arp(mut self, arp: ArpDetector) -> FlowStage {
        self.arp = Some(arp);
        self
    }

    /// Watches the exporters' silence and sequence loss.
    pub fn with_exporter_watch(mut self, w: crate::pipeline::exporters::ExporterWatch) -> Self {
        self.exporter_watch = Some(w);
        self
    }

    /// Adds the temporal graph detector.
    pub fn with_graph(mut self, graph: crate::pipeline::graph::GraphPipeline) -> FlowStage {
        self.graph = Some(graph);
        self
    }

    /// Decodes a datagram, or takes the meter's records, and featurises them; the pipeline
    /// scores when a batch fills.
    pub fn ingest(&mut self, input: FlowInput, alerts: &mut impl FnMut(Alert)) {
        match input {
            FlowInput::Datagram(d) => self.ingest_datagram(d.from, &d.payload, alerts),
            FlowInput::Exported(records) => {
                for (exporter, flow) in records {
                    let origin = FlowOrigin::Exporter(exporter);
                    if let Some(g) = self.graph.as_mut() {
                        g.ingest_records(&origin, std::slice::from_ref(&flow), alerts);
                    }
                    self.pipeline.ingest_record(origin, flow, alerts);
                }
            }
            FlowInput::Records { origin, records } => {
                self.pipeline.ingest_records(&origin, &records, alerts);
                if let Some(g) = self.graph.as_mut() {
                    g.ingest_records(&origin, &records, alerts);
                }
            }
            FlowInput::Arp { origin, events } => {
                if let Some(arp) = &mut self.arp {
                    arp.ingest(&origin, &events, alerts);
                }
            }
        }
    }

    /// Decodes one NetFlow datagram and featurises its records.
    pub fn ingest_datagram(
        &mut self,
        from: SocketAddr,
        payload: &[u8],
        alerts: &mut impl FnMut(Alert),
    ) {
        self.decoded.clear();
        self.decoder.decode(from, payload, &mut self.decoded);
        for (src, flow) in self.decoded.drain(..) {
            let origin = FlowOrigin::Exporter(src.exporter);
            if let Some(g) = self.graph.as_mut() {
                g.ingest_records(&origin, std::slice::from_ref(&flow), alerts);
            }
            self.pipeline.ingest_record(origin, flow, alerts);
        }
    }

    /// Scores everything waiting.
    pub fn flush(&mut self, alerts: &mut impl FnMut(Alert)) {
        self.pipeline.flush(alerts);
        if let Some(g) = self.graph.as_mut() {
            g.flush(alerts);
        }
    }
}

/// What the flow thread writes to, besides the alert sink.
pub(super) struct FlowSinks {
    pub store: Arc<Store>,
    pub metrics: Arc<Metrics>,
    pub alerts: AlertSink,
    pub snmp_board: StatusBoard,
    pub scoreboard: ScoreBoard,
    pub exporters: ExporterBoard,
    /// Each NetFlow shard's exporter counters (an exporter never moves between shards; the
    /// board is their union).
    pub shard_exporters: ShardSlots,
    /// Datagrams each shard received (stats.json `netflow_shard_datagrams`).
    pub shard_datagrams: Arc<Vec<std::sync::atomic::AtomicU64>>,
    pub latest_stats: Arc<Mutex<String>>,
    /// Every shard socket's kernel drop counter.
    pub kernel_drops: Vec<KernelDrops>,
    /// Records the NetFlow shards queued that this thread has not taken yet.
    pub shard_in_flight: Arc<std::sync::atomic::AtomicUsize>,
    /// The NetFlow template book the shards share; its changes are saved each second.
    pub templates: Option<Arc<TemplateBook>>,
    pub stats_path: PathBuf,
    pub stats_base: Stats,
    pub summary_interval_ms: u64,
    pub top_hosts: usize,
    /// Fleet model delivery (candidates in, outcomes to the ledger), when on.
    pub fleet: Option<super::fleet::FleetHooks>,
    pub learning: super::learning::LearningSaver,
}

/// Where each NetFlow shard leaves its exporter counters once a second.
pub(super) type ShardSlots = Arc<Vec<Mutex<BTreeMap<String, ExporterStats>>>>;

/// Upper bound on queue items ingested between two flushes, so alerts are not held back by a
/// queue that never quite empties.
const MAX_DRAIN: usize = 2048;

/// Alerts stored per group commit at most: enough to make an alert storm cheap, few enough that
/// one sled transaction stays small (a storm of 4,000 hosts in one transaction raised peak RSS
/// by about 20 MB).
const GROUP_COMMIT_MAX: usize = 256;

/// Decode problems are logged at most this often (they are always counted).
pub(super) const PROBLEM_LOG_EVERY: Duration = Duration::from_secs(10);

/// Runs until every flow source has dropped its queue sender (they do on shutdown), then
/// scores what was left and writes the final stats.
pub(super) fn flow_thread(mut stage: FlowStage, rx: Receiver<FlowInput>, mut ctx: FlowSinks) {
    let mut last_stats = Instant::now();
    let mut problems = ProblemLog::default();
    // Alerts raised while draining the queue are stored together (one group commit) before
    // the next datagrams are read; none is published before it is stored.
    let mut raised: Vec<Alert> = Vec::new();
    loop {
        match rx.recv_timeout(Duration::from_millis(250)) {
            Ok(input) => {
                ctx.taken(&input);
                stage.ingest(input, &mut |a| raised.push(a));
                let mut n = 1;
                while n < MAX_DRAIN {
                    match rx.try_recv() {
                        Ok(input) => {
                            ctx.taken(&input);
                            stage.ingest(input, &mut |a| raised.push(a))
                        }
                        Err(_) => break,
                    }
                    if raised.len() >= GROUP_COMMIT_MAX {
                        ctx.alerts.on_alerts(&raised);
                        raised.clear();
                    }
                    n += 1;
                }
                stage.flush(&mut |a| raised.push(a));
                ctx.alerts.on_alerts(&raised);
                raised.clear();
            }
            Err(RecvTimeoutError::Timeout) => {
                // A quiet queue: `flow-v2` records whose wait for their reverse is over.
                stage.flush(&mut |a| raised.push(a));
                ctx.alerts.on_alerts(&raised);
                raised.clear();
            }
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if let Some(f) = &ctx.fleet {
            f.poll(&mut stage.pipeline);
        }
        if let Some((flows, scores)) = stage
            .pipeline
            .take_summary(ctx.summary_interval_ms, ctx.top_hosts)
        {
            ctx.store_summary(&flows, &scores);
        }
        if last_stats.elapsed() >= Duration::from_secs(1) {
            ctx.learning.tick(&mut stage.pipeline, &ctx.store, false);
            ctx.learning
                .tick_graph(stage.graph.as_mut(), &ctx.store, false);
            ctx.publish(&mut stage);
            problems.check_drops(&ctx.metrics);
            last_stats = Instant::now();
        }
    }
    stage.pipeline.finish(&mut |a| raised.push(a));
    stage.flush(&mut |a| raised.push(a));
    ctx.alerts.on_alerts(&raised);
    if let Some((flows, scores)) = stage.pipeline.take_summary(0, ctx.top_hosts) {
        ctx.store_summary(&flows, &scores);
    }
    ctx.learning.tick(&mut stage.pipeline, &ctx.store, true);
    ctx.learning
        .tick_graph(stage.graph.as_mut(), &ctx.store, true);
    ctx.publish(&mut stage);
}

impl FlowSinks {
    /// A shard's records left the queue: it may hand over more.
    fn taken(&self, input: &FlowInput) {
        if let FlowInput::Exported(r) = input {
            self.shard_in_flight.fetch_sub(r.len(), Ordering::AcqRel);
        }
    }

    fn store_summary(&self, flows: &FlowSummary, scores: &ScoreSummary) {
        let h = self.store.history();
        if let Err(e) = h
            .append_flow_summary(flows)
            .and_then(|()| h.append_score(scores))
        {
            self.metrics.add(&self.metrics.history_store_errors, 1);
            tracing::warn!(error = %e, "Cannot store the flow summary");
        }
    }

    /// Hands the last second's scores to the dashboard board and the exporter counters to
    /// `/metrics`, then writes stats.json.
    fn publish(&self, stage: &mut FlowStage) {
        self.scoreboard
            .publish_flow(crate::now_ms(), stage.pipeline.scores.take());
        // Datagrams given to this thread's own decoder (offline tools; the daemon's shards
        // decode on their own threads) count with the shards'.
        let mut all: BTreeMap<String, ExporterStats> =
            stage.decoder.stats().map(|(k, v)| (k, v.clone())).collect();
        for slot in self.shard_exporters.iter() {
            if let Ok(slot) = slot.lock() {
                for (k, v) in slot.iter() {
                    all.entry(k.clone()).or_default().add(v);
                }
            }
        }
        let mut totals = ExporterStats::default();
        all.values().for_each(|v| totals.add(v));
        self.watch_exporters(stage, &all);
        if let Ok(mut board) = self.exporters.lock() {
            *board = all;
        }
        if let Some(book) = &self.templates {
            if let Err(e) = self.store.save_templates(&book.take_changes()) {
                tracing::warn!(error = %e, "Cannot save the NetFlow templates");
            }
            copy_template_counters(book, &self.metrics);
        }
        self.write_stats(totals, stage.pipeline.model_name());
    }

    /// Raises or clears exporter incidents from this second's exporter counters.
    fn watch_exporters(&self, stage: &mut FlowStage, exporters: &BTreeMap<String, ExporterStats>) {
        if let Some(w) = stage.exporter_watch.as_mut() {
            let mut raised = Vec::new();
            let id = &mut || uuid::Uuid::now_v7().to_string();
            w.tick(crate::now_ms(), exporters, id, &mut |a| raised.push(a));
            self.alerts.on_alerts(&raised);
        }
    }

    fn write_stats(&self, totals: ExporterStats, model: &str) {
        let mut s = self.stats_base.clone();
        s.ts_ms = crate::now_ms();
        // The model that alerts now (a fleet swap changes it).
        model.clone_into(&mut s.model);
        s.outbox_len = self.store.outbox_len();
        s.history = self.store.history().stats();
        self.metrics
            .alerts_outside_history
            .store(self.store.alerts_outside_history(), Ordering::Relaxed);
        if !self.kernel_drops.is_empty() {
            let drops: u64 = self.kernel_drops.iter().filter_map(|k| k.read()).sum();
            self.metrics
                .netflow_datagrams_dropped_kernel
                .store(drops, Ordering::Relaxed);
        }
        s.metrics = self.metrics.snapshot();
        s.netflow_totals = totals;
        s.netflow_shard_datagrams = self
            .shard_datagrams
            .iter()
            .map(|n| n.load(Ordering::Relaxed))
            .collect();
        if let Ok(board) = self.exporters.lock() {
            s.exporters.clone_from(&board);
        }
        if let Ok(board) = self.snmp_board.lock() {
            s.snmp_targets.clone_from(&board);
        }
        let Ok(json) = serde_json::to_string_pretty(&s) else {
            return;
        };
        if let Ok(mut latest) = self.latest_stats.lock() {
            latest.clone_from(&json);
        }
        let tmp = self.stats_path.with_extension("json.tmp");
        if std::fs::write(&tmp, json.as_bytes())
            .and_then(|()| std::fs::rename(&tmp, &self.stats_path))
            .is_err()
        {
            tracing::debug!(path = %self.stats_path.display(), "Cannot write stats file");
        }
    }
}

/// The template book's counters onto the process counters.
pub(super) fn copy_template_counters(book: &TemplateBook, metrics: &Metrics) {
    let (c, m) = (&book.counters, metrics);
    for (from, to) in [
        (&c.restored, &m.netflow_templates_restored),
        (&c.expired, &m.netflow_templates_expired),
        (&c.refused, &m.netflow_templates_refused),
        (&c.read_through, &m.netflow_templates_read_through),
    ] {
        to.store(from.load(Ordering::Relaxed), Ordering::Relaxed);
    }
}

/// Rate-limited warnings about exporters whose error counters moved.
#[derive(Default)]
pub(super) struct ProblemLog {
    seen: std::collections::HashMap<String, u64>,
    last: Option<Instant>,
    /// Queue-full and kernel drops at the last warning.
    drops_seen: (u64, u64),
    last_drops: Option<Instant>,
}

impl ProblemLog {
    /// Warns (at most every 10 s) when datagrams were dropped: the pipeline fell behind.
    pub(super) fn check_drops(&mut self, metrics: &Metrics) {
        if self
            .last_drops
            .is_some_and(|t| t.elapsed() < PROBLEM_LOG_EVERY)
        {
            return;
        }
        let now = (
            metrics
                .netflow_datagrams_dropped_queue_full
                .load(Ordering::Relaxed),
            metrics
                .netflow_datagrams_dropped_kernel
                .load(Ordering::Relaxed),
        );
        if now != self.drops_seen {
            tracing::warn!(
                queue_full = now.0 - self.drops_seen.0.min(now.0),
                kernel = now.1 - self.drops_seen.1.min(now.1),
                queue_full_total = now.0,
                kernel_total = now.1,
                "NetFlow datagrams dropped: input is faster than the pipeline scores (counted in stats.json)"
            );
            self.drops_seen = now;
            self.last_drops = Some(Instant::now());
        }
    }

    pub(super) fn check(&mut self, decoder: &NetflowDecoder) {
        if self.last.is_some_and(|t| t.elapsed() < PROBLEM_LOG_EVERY) {
            return;
        }
        let mut moved = Vec::new();
        for (exporter, s) in decoder.stats() {
            let problems = s.decode_errors() + s.template_misses + s.sequence_missing;
            let before = self.seen.insert(exporter.clone(), problems).unwrap_or(0);
            if problems > before {
                moved.push(format!(
                    "{exporter}: {} decode errors, {} template misses, {} missing by sequence",
                    s.decode_errors(),
                    s.template_misses,
                    s.sequence_missing
                ));
            }
        }
        if !moved.is_empty() {
            moved.truncate(5);
            tracing::warn!(exporters = %moved.join("; "), "NetFlow input problems (counted in stats.json)");
            self.last = Some(Instant::now());
        }
    }
}
