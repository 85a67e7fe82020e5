//! `netwarden run`: wires sources, pipeline and sinks, and shuts them down in order.
//!
//! ```text
//!  UDP socket ──(listener task)──► bounded queue ──► pipeline thread ──► store (sled, flushed)
//!                                   full: dropped,     decode, features,     │ wake
//!                                   counted            score, alert          ▼
//!                                                                     MQTT task ◄─ outbox
//! ```
//! With `[[snmp.targets]]`, one poller task per target sends rate samples through a bounded
//! queue (full: dropped, counted) to the series thread, which stores each in sled's `series`
//! tree and hands it to the series pipeline; its alerts take the same store-then-publish path.
//!
//! The HTTP API and dashboard (sinks/http) read the store, the counters and two boards the
//! pipeline threads publish: per-exporter counters and recent scores ([`LiveBoard`]), once a
//! second for flows, per batch for series.
//!
//! On SIGINT/SIGTERM the listener stops, the pipeline drains what was queued and scores it, the
//! MQTT task gets two seconds to empty the outbox, and the final counters are written.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::{broadcast, Notify};

use crate::config::Config;
use crate::metrics::{Metrics, MetricsSnapshot};
use crate::models::ModelInfo;
use crate::models::{Bundle, BundleError};
use crate::pipeline::alerting::Alert;
use crate::pipeline::live::LiveBoard;
use crate::pipeline::series::RateSample;
use crate::pipeline::Pipeline;
use crate::shutdown::Shutdown;
use crate::sinks::http::{self, ExporterBoard};
use crate::sinks::mqtt;
use crate::sinks::store::{Store, StoreError};
use crate::sources::capture;
use crate::sources::netflow::listener::{self, ListenError};
use crate::sources::netflow::ExporterStats;
use crate::sources::snmp::{self, StatusBoard, TargetStatus};
use crate::sources::FlowInput;

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("flow model {source_name}: {error}")]
    Bundle {
        source_name: String,
        error: BundleError,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Listen(#[from] ListenError),
    #[error(transparent)]
    Capture(#[from] capture::live::CaptureError),
    #[error("cannot start the pipeline thread: {0}")]
    Thread(std::io::Error),
    #[error("cannot install signal handlers: {0}")]
    Signal(std::io::Error),
    #[error(transparent)]
    Http(#[from] http::HttpError),
}

/// Loads the configured flow bundle, or the built-in one.
pub fn load_flow_bundle(
    path: Option<&Path>,
    batch_size: usize,
    trust: &crate::models::Trust,
) -> Result<Bundle, DaemonError> {
    match path {
        Some(dir) => {
            Bundle::load_dir(dir, batch_size, trust).map_err(|error| DaemonError::Bundle {
                source_name: dir.display().to_string(),
                error,
            })
        }
        None => Bundle::builtin(batch_size).map_err(|error| DaemonError::Bundle {
            source_name: crate::models::bundle::describe_builtin(),
            error,
        }),
    }
}

/// The counters written to `stats.json` and sent in the MQTT heartbeat.
#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    pub ts_ms: u64,
    pub site: String,
    pub device: String,
    pub model: String,
    pub netflow_listen: String,
    pub netflow_recv_buffer_bytes: usize,
    pub outbox_len: usize,
    pub metrics: MetricsSnapshot,
    pub netflow_totals: ExporterStats,
    pub exporters: std::collections::BTreeMap<String, ExporterStats>,
    /// Per SNMP target: state (`ok`, `timeout`, `auth_error`, ...), last error, poll counts.
    pub snmp_targets: std::collections::BTreeMap<String, TargetStatus>,
    /// History buckets, live and disk bytes, buckets dropped by retention.
    pub history: crate::sinks::history::HistoryStats,
}

/// Runs until SIGINT or SIGTERM.
pub async fn run(cfg: Config) -> Result<(), DaemonError> {
    let bundle = load_flow_bundle(
        cfg.detector.flow_model.as_deref(),
        cfg.detector.batch_size,
        &cfg.trust,
    )?;
    tracing::info!(model = %bundle.manifest.name, version = %bundle.manifest.version,
        source = %bundle.source, signature = %bundle.signature, "Flow model loaded");
    let model = format!("{} {}", bundle.manifest.name, bundle.manifest.version);
    let mut models = vec![ModelInfo::from_manifest(
        crate::pipeline::FLOW_DETECTOR,
        &bundle.manifest,
        &bundle.source,
        &bundle.signature,
        "active",
    )];
    let store = Arc::new(Store::open_with(
        &cfg.data_dir,
        cfg.store.cache_bytes,
        cfg.store.outbox_max_alerts,
        cfg.history.clone(),
    )?);
    let (socket, granted) = listener::bind(cfg.netflow.listen, cfg.netflow.recv_buffer_bytes)?;
    let kernel_drops = listener::KernelDrops::of(&socket);
    // Opened before anything runs, so a missing CAP_NET_RAW stops start-up with its remedy.
    let live_capture = match &cfg.capture.interface {
        Some(iface) => {
            let (c, granted) = capture::live::open(iface, cfg.capture.recv_buffer_bytes)?;
            if granted < cfg.capture.recv_buffer_bytes {
                tracing::warn!(iface = %iface, requested = cfg.capture.recv_buffer_bytes, granted,
                    "Kernel granted a smaller capture receive buffer; bursts may drop. Raise net.core.rmem_max");
            }
            Some(c)
        }
        None => None,
    };
    let listen = socket
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    if granted < cfg.netflow.recv_buffer_bytes {
        tracing::warn!(
            requested = cfg.netflow.recv_buffer_bytes,
            granted,
            "Kernel granted a smaller NetFlow receive buffer; bursts may drop. Raise net.core.rmem_max"
        );
    }
    tracing::info!(listen = %listen, model = %model, data_dir = %cfg.data_dir.display(),
        mqtt = cfg.mqtt.as_ref().map(|m| m.describe()).unwrap_or_else(|| "off".into()),
        outbox = store.outbox_len(), "netwarden started");

    let metrics = Arc::new(Metrics::default());
    let (shutdown_tx, _) = broadcast::channel(1);
    let wake = Arc::new(Notify::new());
    let latest_stats = Arc::new(Mutex::new(String::from("{}")));

    let snmp_board = StatusBoard::default();
    let live = LiveBoard::default();
    let exporters = ExporterBoard::default();
    // Bound before anything starts, so a busy port fails the start with a clear error.
    let http_listener = match cfg.http.listen {
        Some(addr) => Some(http::bind(addr).await?),
        None => None,
    };
    let alert_prefix = match &cfg.mqtt {
        Some(m) => m.prefix.clone(),
        None => crate::records::topic::default_prefix(&cfg.site, &cfg.device),
    };
    let alerts = AlertSink {
        store: store.clone(),
        metrics: metrics.clone(),
        wake: wake.clone(),
        prefix: alert_prefix,
    };
    let snmp_tasks = start_snmp(
        &cfg,
        alerts.clone(),
        snmp_board.clone(),
        live.clone(),
        &shutdown_tx,
    )?;
    match &snmp_tasks {
        Some(t) => models.push(t.model.clone()),
        None => {
            if let Some(info) = idle_series_info(&cfg) {
                models.push(info);
            }
        }
    }

    let (queue_tx, queue_rx) = sync_channel::<FlowInput>(cfg.netflow.queue_datagrams);
    let pipeline = Pipeline::new(
        bundle,
        &cfg.site,
        &cfg.device,
        cfg.alerting.dedupe_window,
        cfg.netflow.max_exporters,
        metrics.clone(),
    );
    let ctx = PipelineCtx {
        store: store.clone(),
        metrics: metrics.clone(),
        alerts,
        snmp_board: snmp_board.clone(),
        live: live.clone(),
        exporters: exporters.clone(),
        latest_stats: latest_stats.clone(),
        kernel_drops,
        stats_path: cfg.data_dir.join("stats.json"),
        stats_base: Stats {
            ts_ms: 0,
            site: cfg.site.clone(),
            device: cfg.device.clone(),
            model,
            netflow_listen: listen,
            netflow_recv_buffer_bytes: granted,
            outbox_len: 0,
            metrics: MetricsSnapshot::default(),
            netflow_totals: ExporterStats::default(),
            exporters: Default::default(),
            snmp_targets: Default::default(),
            history: Default::default(),
        },
        summary_interval_ms: cfg.history.summary_interval.as_millis() as u64,
        top_hosts: cfg.history.top_hosts,
    };
    let worker = std::thread::Builder::new()
        .name("pipeline".into())
        .stack_size(8 << 20)
        .spawn(move || pipeline_thread(pipeline, queue_rx, ctx))
        .map_err(DaemonError::Thread)?;

    let retention_stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let retention = {
        let (store, metrics, stop) = (store.clone(), metrics.clone(), retention_stop.clone());
        let every = cfg.history.check_interval;
        std::thread::Builder::new()
            .name("retention".into())
            .spawn(move || retention_thread(&store, &metrics, every, &stop))
            .map_err(DaemonError::Thread)?
    };
    let capture_stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let capture_thread = match live_capture {
        Some(c) => Some(c.spawn(
            cfg.capture.timeouts,
            queue_tx.clone(),
            metrics.clone(),
            capture_stop.clone(),
        )?),
        None => None,
    };
    if let Some(path) = &cfg.capture.pcap {
        // Ends by itself after the file; its sender then leaves the queue.
        capture::pcap::spawn(
            path.clone(),
            cfg.capture.timeouts,
            queue_tx.clone(),
            metrics.clone(),
        )
        .map_err(DaemonError::Thread)?;
    }

    let http_task = http_listener.map(|l| {
        let addr = l.local_addr().map(|a| a.to_string()).unwrap_or_default();
        tracing::info!(listen = %addr, auth = cfg.http.token.is_some(), "HTTP API and dashboard listening");
        let state = http::AppState {
            store: store.clone(),
            metrics: metrics.clone(),
            live: live.clone(),
            exporters: exporters.clone(),
            snmp_board: snmp_board.clone(),
            models: Arc::new(models.clone()),
            scorer: http::detect::Scorer::new(http::detect::ModelSources {
                flow_model: cfg.detector.flow_model.clone(),
                series_model: cfg.detector.series_model.clone(),
                trust: cfg.trust.clone(),
            }),
            token: cfg.http.token.clone(),
            started: Instant::now(),
            site: cfg.site.clone(),
            device: cfg.device.clone(),
            netflow_queue_capacity: cfg.netflow.queue_datagrams,
            series_queue: snmp_tasks.as_ref().map(|t| t.queue.clone()),
        };
        tokio::spawn(http::serve(l, state, Shutdown::new(shutdown_tx.subscribe())))
    });
    let recv = tokio::spawn(listener::run(
        socket,
        queue_tx,
        metrics.clone(),
        Shutdown::new(shutdown_tx.subscribe()),
    ));
    let mqtt_task = cfg.mqtt.clone().map(|m| {
        let latest = latest_stats.clone();
        let heartbeat: Arc<dyn Fn() -> String + Send + Sync> =
            Arc::new(move || latest.lock().map(|s| s.clone()).unwrap_or_default());
        tokio::spawn(mqtt::run(
            m,
            store.clone(),
            wake.clone(),
            metrics.clone(),
            heartbeat,
            Shutdown::new(shutdown_tx.subscribe()),
        ))
    });

    wait_for_signal().await?;
    tracing::info!("Shutting down");
    let _ = shutdown_tx.send(());
    // The sources drop their queue senders when they return (the capture after flushing its
    // open flows); the pipeline then drains and exits.
    let _ = recv.await;
    capture_stop.store(true, Ordering::Relaxed);
    if let Some(t) = capture_thread {
        let _ = tokio::task::spawn_blocking(move || t.join()).await;
    }
    let _ = tokio::task::spawn_blocking(move || worker.join()).await;
    if let Some(t) = snmp_tasks {
        for p in t.pollers {
            let _ = p.await;
        }
        // The pollers held the queue's senders; the series thread drains it and exits.
        let series = t.series;
        let _ = tokio::task::spawn_blocking(move || series.join()).await;
    }
    if let Some(t) = http_task {
        let _ = t.await;
    }
    if let Some(t) = mqtt_task {
        let _ = t.await;
    }
    retention_stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = tokio::task::spawn_blocking(move || retention.join()).await;
    store.flush()?;
    tracing::info!(outbox = store.outbox_len(), "netwarden stopped");
    Ok(())
}

async fn wait_for_signal() -> Result<(), DaemonError> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).map_err(DaemonError::Signal)?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    Ok(())
}

/// Pollers and the series thread, when SNMP targets are configured.
struct SnmpTasks {
    pollers: Vec<tokio::task::JoinHandle<()>>,
    series: std::thread::JoinHandle<()>,
    /// The series queue, for its depth on `/metrics` (weak: it must not keep the queue open).
    queue: tokio::sync::mpsc::WeakSender<RateSample>,
    model: ModelInfo,
}

/// The series model as `/models` shows it when no SNMP target feeds it (it is loaded only
/// for `/detect`, on first use): from its manifest, without loading the model.
fn idle_series_info(cfg: &Config) -> Option<ModelInfo> {
    let (text, source, signature) = match &cfg.detector.series_model {
        Some(dir) => (
            std::fs::read_to_string(dir.join("manifest.json")).ok()?,
            dir.display().to_string(),
            crate::models::SignatureStatus::NotChecked,
        ),
        None => (
            crate::models::bundle::BUILTIN_SERIES_MANIFEST.to_string(),
            "built-in series-lstm bundle".to_string(),
            crate::models::SignatureStatus::Builtin,
        ),
    };
    let m: crate::models::Manifest = serde_json::from_str(&text).ok()?;
    Some(ModelInfo::from_manifest(
        crate::pipeline::series::SERIES_DETECTOR,
        &m,
        &source,
        &signature,
        "idle",
    ))
}

/// Spawns one poller per `[[snmp.targets]]` entry and the series thread they feed.
fn start_snmp(
    cfg: &Config,
    alerts: AlertSink,
    board: StatusBoard,
    live: LiveBoard,
    shutdown_tx: &broadcast::Sender<()>,
) -> Result<Option<SnmpTasks>, DaemonError> {
    if cfg.snmp.targets.is_empty() {
        return Ok(None);
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<RateSample>(cfg.snmp.queue_samples);
    let retention = cfg.snmp.series_retention;
    let sink = alerts.clone();
    let mut pipeline =
        crate::pipeline::series::from_config(cfg, alerts.metrics.clone()).map_err(|error| {
            DaemonError::Bundle {
                source_name: cfg
                    .detector
                    .series_model
                    .as_ref()
                    .map(|d| format!("series model {}", d.display()))
                    .unwrap_or_else(|| "built-in series model".into()),
                error,
            }
        })?;
    warm_series(cfg, &alerts.store, &mut pipeline);
    let model = pipeline.model_info().clone();
    let pipeline = Some(pipeline);
    let series = std::thread::Builder::new()
        .name("series".into())
        .spawn(move || series_thread(rx, sink, retention, pipeline, live))
        .map_err(DaemonError::Thread)?;
    let pollers = cfg
        .snmp
        .targets
        .iter()
        .map(|t| {
            tokio::spawn(snmp::run_target(
                t.clone(),
                tx.clone(),
                alerts.metrics.clone(),
                board.clone(),
                Shutdown::new(shutdown_tx.subscribe()),
            ))
        })
        .collect();
    Ok(Some(SnmpTasks {
        pollers,
        series,
        queue: tx.downgrade(),
        model,
    }))
}

/// Feeds each configured target's recent stored samples into the series windows, so that a
/// restart does not blind the series detector for 55 polls. Only history recent enough to
/// continue without a gap is read; older rows would be dropped by the gap rule anyway.
fn warm_series(
    cfg: &Config,
    store: &Store,
    pipeline: &mut crate::pipeline::series::SeriesPipeline,
) {
    use netwarden_firmware::series::WINDOW_STEPS;
    let now = crate::now_ms();
    let mut history = Vec::new();
    let names = match store.series_names() {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(error = %e, "Cannot read stored rate samples; series windows start empty");
            return;
        }
    };
    for t in &cfg.snmp.targets {
        // The window plus the rolling steps, at the longest step a poll may take.
        let span = t.max_gap() * (WINDOW_STEPS as u32 + 8);
        let from = now.saturating_sub(span.as_millis() as u64);
        for (target, if_name) in names.iter().filter(|(target, _)| *target == t.name) {
            match store.series(target, if_name, from, u64::MAX) {
                Ok(s) => history.extend(s),
                Err(e) => {
                    tracing::warn!(error = %e, target, if_name, "Cannot read stored rate samples")
                }
            }
        }
    }
    if history.is_empty() {
        return;
    }
    history.sort_by_key(|s| s.ts_ms);
    let ready = pipeline.warm(&history);
    tracing::info!(
        samples = history.len(),
        windows_ready = ready,
        "Series windows warmed from stored rate samples"
    );
}

/// How often old samples are pruned from the `series` tree.
const SERIES_PRUNE_EVERY: Duration = Duration::from_secs(600);

/// Stores every rate sample, then hands it to the series pipeline. A plain thread: sled calls
/// block, and the series detector is CPU work.
fn series_thread(
    mut rx: tokio::sync::mpsc::Receiver<RateSample>,
    alerts: AlertSink,
    retention: Duration,
    mut pipeline: Option<crate::pipeline::series::SeriesPipeline>,
    live: LiveBoard,
) {
    let mut last_prune: Option<Instant> = None;
    let mut last_error_log: Option<Instant> = None;
    let mut batch: Vec<RateSample> = Vec::with_capacity(SERIES_BATCH);
    while let Some(first) = rx.blocking_recv() {
        // Whatever else is queued (a poll of every interface) is scored in one model run.
        batch.clear();
        batch.push(first);
        while batch.len() < SERIES_BATCH {
            match rx.try_recv() {
                Ok(s) => batch.push(s),
                Err(_) => break,
            }
        }
        for sample in &batch {
            store_sample(&alerts, sample, &mut last_error_log);
        }
        live.publish_rates(&batch);
        if let Some(p) = pipeline.as_mut() {
            let raised = p.ingest_many(&batch);
            let scores = p.take_scores();
            live.publish_series(&scores);
            alerts.on_alerts(&raised);
            for score in scores {
                if let Err(e) = alerts.store.history().append_score(&score) {
                    alerts.metrics.add(&alerts.metrics.history_store_errors, 1);
                    tracing::debug!(error = %e, "Cannot store a series score");
                }
            }
        }
        if last_prune.is_none_or(|t| t.elapsed() >= SERIES_PRUNE_EVERY) {
            let before = crate::now_ms().saturating_sub(retention.as_millis() as u64);
            match alerts.store.prune_series(before) {
                Ok(n) if n > 0 => tracing::debug!(removed = n, "Pruned old rate samples"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "Cannot prune old rate samples"),
            }
            last_prune = Some(Instant::now());
        }
    }
}

/// Samples handed to the series pipeline at once at most.
const SERIES_BATCH: usize = 256;

fn store_sample(alerts: &AlertSink, sample: &RateSample, last_error_log: &mut Option<Instant>) {
    if let Err(e) = alerts.store.append_sample(sample) {
        alerts
            .metrics
            .snmp_series_store_errors
            .fetch_add(1, Ordering::Relaxed);
        if last_error_log.is_none_or(|t| t.elapsed() >= PROBLEM_LOG_EVERY) {
            tracing::error!(error = %e, target_name = %sample.target, "Cannot store rate sample");
            *last_error_log = Some(Instant::now());
        }
    }
}

/// Stores an alert durably, then wakes the MQTT task: the one path every detector's alerts take.
#[derive(Clone)]
struct AlertSink {
    store: Arc<Store>,
    metrics: Arc<Metrics>,
    wake: Arc<Notify>,
    prefix: String,
}

struct PipelineCtx {
    store: Arc<Store>,
    metrics: Arc<Metrics>,
    alerts: AlertSink,
    snmp_board: StatusBoard,
    live: LiveBoard,
    exporters: ExporterBoard,
    latest_stats: Arc<Mutex<String>>,
    kernel_drops: Option<listener::KernelDrops>,
    stats_path: PathBuf,
    stats_base: Stats,
    summary_interval_ms: u64,
    top_hosts: usize,
}

/// Runs history retention every `every` until `stop` (a plain thread: dropping a sled tree
/// and measuring the directory can block, and must not stall the pipeline).
fn retention_thread(
    store: &Store,
    metrics: &Metrics,
    every: Duration,
    stop: &std::sync::atomic::AtomicBool,
) {
    let mut last: Option<Instant> = None;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        if last.is_none_or(|t| t.elapsed() >= every) {
            match store.history().enforce(crate::now_ms()) {
                Ok(r) if r.dropped_age + r.dropped_size > 0 => tracing::info!(
                    dropped_age = r.dropped_age,
                    dropped_size = r.dropped_size,
                    disk_bytes = r.disk_bytes,
                    live_bytes = r.live_bytes,
                    "History retention dropped old buckets"
                ),
                Ok(_) => {}
                Err(e) => {
                    metrics.add(&metrics.history_retention_errors, 1);
                    tracing::warn!(error = %e, "History retention failed");
                }
            }
            last = Some(Instant::now());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

impl AlertSink {
    /// Stores `alerts` durably (one group commit), then wakes the publisher.
    fn on_alerts(&self, alerts: &[Alert]) {
        if alerts.is_empty() {
            return;
        }
        let rows: Vec<(&Alert, String)> = alerts
            .iter()
            .map(|a| {
                (
                    a,
                    crate::records::topic::alert_topic(&self.prefix, &a.severity),
                )
            })
            .collect();
        match self.store.append_alerts(&rows) {
            Ok(dropped) => {
                if dropped > 0 {
                    self.metrics
                        .outbox_dropped_full
                        .fetch_add(dropped, Ordering::Relaxed);
                }
            }
            Err(e) => {
                self.metrics
                    .alerts_store_errors
                    .fetch_add(alerts.len() as u64, Ordering::Relaxed);
                tracing::error!(error = %e, alerts = alerts.len(), first = %alerts[0].id,
                    "Cannot store alerts; they are not published");
                return;
            }
        }
        for alert in alerts {
            tracing::warn!(id = %alert.id, severity = %alert.severity, detector = %alert.detector, "{}", alert.summary);
        }
        self.wake.notify_one();
    }
}

impl PipelineCtx {
    fn store_summary(
        &self,
        flows: &crate::sinks::history::FlowSummary,
        scores: &crate::sinks::history::ScoreSummary,
    ) {
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
    fn publish(&self, pipeline: &mut Pipeline) {
        self.live
            .publish_flow(crate::now_ms(), pipeline.live.take());
        let exporters: std::collections::BTreeMap<String, ExporterStats> = pipeline
            .decoder
            .stats()
            .map(|(k, v)| (k, v.clone()))
            .collect();
        if let Ok(mut board) = self.exporters.lock() {
            *board = exporters;
        }
        self.write_stats(pipeline);
    }

    fn write_stats(&self, pipeline: &Pipeline) {
        let mut s = self.stats_base.clone();
        s.ts_ms = crate::now_ms();
        s.outbox_len = self.store.outbox_len();
        s.history = self.store.history().stats();
        if let Some(n) = self.kernel_drops.and_then(|k| k.read()) {
            self.metrics
                .netflow_datagrams_dropped_kernel
                .store(n, Ordering::Relaxed);
        }
        s.metrics = self.metrics.snapshot();
        s.netflow_totals = pipeline.decoder.totals();
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

/// Upper bound on datagrams ingested between two flushes, so alerts are not held back by a
/// queue that never quite empties.
const MAX_DRAIN: usize = 2048;

/// Alerts stored per group commit at most: enough to make an alert storm cheap, few enough that
/// one sled transaction stays small (a storm of 4,000 hosts in one transaction raised peak RSS
/// by about 20 MB).
const GROUP_COMMIT_MAX: usize = 256;

/// Decode problems are logged at most this often (they are always counted).
const PROBLEM_LOG_EVERY: Duration = Duration::from_secs(10);

/// Rate-limited warnings about exporters whose error counters moved.
#[derive(Default)]
struct ProblemLog {
    seen: std::collections::HashMap<String, u64>,
    last: Option<Instant>,
    /// Queue-full and kernel drops at the last warning.
    drops_seen: (u64, u64),
    last_drops: Option<Instant>,
}

impl ProblemLog {
    /// Warns (at most every 10 s) when datagrams were dropped: the pipeline fell behind.
    fn check_drops(&mut self, metrics: &Metrics) {
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

    fn check(&mut self, pipeline: &Pipeline) {
        if self.last.is_some_and(|t| t.elapsed() < PROBLEM_LOG_EVERY) {
            return;
        }
        let mut moved = Vec::new();
        for (exporter, s) in pipeline.decoder.stats() {
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

fn ingest(pipeline: &mut Pipeline, input: FlowInput, raised: &mut Vec<Alert>) {
    match input {
        FlowInput::Datagram(d) => pipeline.ingest(d.from, &d.payload, &mut |a| raised.push(a)),
        FlowInput::Records { origin, records } => {
            pipeline.ingest_records(&origin, &records, &mut |a| raised.push(a))
        }
    }
}

fn pipeline_thread(mut pipeline: Pipeline, rx: Receiver<FlowInput>, ctx: PipelineCtx) {
    let mut last_stats = Instant::now();
    let mut problems = ProblemLog::default();
    // Alerts raised while draining the queue are stored together (one group commit) before
    // the next datagrams are read; none is published before it is stored.
    let mut raised: Vec<Alert> = Vec::new();
    loop {
        match rx.recv_timeout(Duration::from_millis(250)) {
            Ok(input) => {
                ingest(&mut pipeline, input, &mut raised);
                let mut n = 1;
                while n < MAX_DRAIN {
                    match rx.try_recv() {
                        Ok(input) => ingest(&mut pipeline, input, &mut raised),
                        Err(_) => break,
                    }
                    if raised.len() >= GROUP_COMMIT_MAX {
                        ctx.alerts.on_alerts(&raised);
                        raised.clear();
                    }
                    n += 1;
                }
                pipeline.flush(&mut |a| raised.push(a));
                ctx.metrics
                    .add(&ctx.metrics.netflow_datagrams_processed, n as u64);
                ctx.alerts.on_alerts(&raised);
                raised.clear();
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if let Some((flows, scores)) = pipeline.take_summary(ctx.summary_interval_ms, ctx.top_hosts)
        {
            ctx.store_summary(&flows, &scores);
        }
        if last_stats.elapsed() >= Duration::from_secs(1) {
            ctx.publish(&mut pipeline);
            problems.check(&pipeline);
            problems.check_drops(&ctx.metrics);
            last_stats = Instant::now();
        }
    }
    pipeline.flush(&mut |a| raised.push(a));
    ctx.alerts.on_alerts(&raised);
    if let Some((flows, scores)) = pipeline.take_summary(0, ctx.top_hosts) {
        ctx.store_summary(&flows, &scores);
    }
    ctx.publish(&mut pipeline);
}
