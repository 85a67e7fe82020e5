//! `netwarden run`: wires sources -> pipelines -> sinks, and owns start-up and shutdown order.
//! Only `main.rs` and `cli/` use it; the layers below never call each other.
//!
//! ```text
//!  UDP socket per shard ──recvmmsg──► shard thread: decode ──┐
//!  (SO_REUSEPORT)                     (full queue: it waits)   ▼
//!  capture / pcap / EVE thread ──────────────────────► bounded queue ──► flow thread ──► store (sled, flushed)
//!                                   (full: dropped, counted)   pipeline: features,   │ wake
//!                                                               score, alert          ▼
//!                                                                           MQTT task ◄─ outbox
//! ```
//! With `[[snmp.targets]]`, one poller task per target sends rate samples through a bounded
//! queue (full: dropped, counted) to the series thread, which hands them to the series
//! pipeline and then stores the samples, scores and alerts (same store-then-publish path).
//!
//! - [`flow`]: the flow thread (flow pipeline + its sinks), [`FlowStage`](flow::FlowStage);
//! - `shard`: a NetFlow shard's thread (batched receive and decode; `[netflow] shards`);
//! - [`series`]: the SNMP pollers and the series thread;
//! - [`retention`]: the history retention thread.
//!
//! The HTTP API and dashboard (sinks/http) read the store, the counters and two boards the
//! pipeline threads publish: per-exporter counters and recent scores ([`ScoreBoard`]), once a
//! second for flows, per batch for series.
//!
//! Shutdown is one broadcast ([`Shutdown`]): on SIGINT/SIGTERM every task and thread sees it.
//! The sources stop and drop their queue senders; the flow and series threads then drain what
//! was queued, score it and exit (the flow thread writes the final stats.json); the MQTT task
//! gets two seconds to empty the outbox, publishes `offline` and disconnects; the store is
//! flushed last.

pub mod eve;
mod fleet;
pub mod flow;
pub mod graph;
mod learning;
mod retention;
pub mod series;
mod shard;

use std::sync::mpsc::sync_channel;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::Serialize;
use tokio::sync::{broadcast, Notify};

use crate::config::Config;
use crate::metrics::{Metrics, MetricsSnapshot};
use crate::models::{LoadError, ModelInfo};
use crate::pipeline::FlowPipeline;
use crate::records::scoreboard::ScoreBoard;
use crate::records::{
    ExporterBoard, ExporterStats, FlowInput, StatusBoard, TargetStatus, FLOW_DETECTOR,
};
use crate::shutdown::Shutdown;
use crate::sinks::alert_sink::AlertSink;
use crate::sinks::history::HistoryStats;
use crate::sinks::http;
use crate::sinks::mqtt;
use crate::sinks::store::{Store, StoreError};
use crate::sources::netflow::listener::{self, ListenError};
use crate::sources::netflow::receive;
use crate::sources::netflow::NetflowDecoder;
use crate::sources::packets;
use flow::{FlowSinks, FlowStage};

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(transparent)]
    Model(#[from] LoadError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Listen(#[from] ListenError),
    #[error(transparent)]
    Capture(#[from] packets::interface::CaptureError),
    #[error("cannot start the pipeline thread: {0}")]
    Thread(std::io::Error),
    #[error("cannot install signal handlers: {0}")]
    Signal(std::io::Error),
    #[error(transparent)]
    Http(#[from] http::HttpError),
    #[error("EVE input: {0}")]
    Eve(String),
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
    /// Datagrams received by each NetFlow shard (`[netflow] shards`).
    pub netflow_shard_datagrams: Vec<u64>,
    pub exporters: std::collections::BTreeMap<String, ExporterStats>,
    /// Per SNMP target: state (`ok`, `timeout`, `auth_error`, ...), last error, poll counts.
    pub snmp_targets: std::collections::BTreeMap<String, TargetStatus>,
    /// History buckets, live and disk bytes, buckets dropped by retention.
    pub history: HistoryStats,
}

/// Runs until SIGINT or SIGTERM.
pub async fn run(cfg: Config) -> Result<(), RuntimeError> {
    let sources = series::model_sources(&cfg);
    let ledger = fleet::open_ledger(&cfg.data_dir, cfg.fleet.is_some());
    let bundle = fleet::flow_bundle(&sources, ledger.as_deref(), cfg.detector.batch_size)?;
    tracing::info!(model = %bundle.manifest.name, version = %bundle.manifest.version,
        source = %bundle.source, signature = %bundle.signature, "Flow model loaded");
    let model = format!("{} {}", bundle.manifest.name, bundle.manifest.version);
    let mut models = vec![ModelInfo::from_manifest(
        FLOW_DETECTOR,
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
    let sockets = receive::bind_shards(
        cfg.netflow.listen,
        cfg.netflow.recv_buffer_bytes,
        cfg.netflow.shards,
        std::time::Duration::from_millis(100),
    )?;
    let granted = sockets.first().map_or(0, |s| s.1);
    let kernel_drops: Vec<_> = sockets
        .iter()
        .filter_map(|(s, _)| listener::KernelDrops::of_std(s))
        .collect();
    // Opened before anything runs, so a missing CAP_NET_RAW stops start-up with its remedy.
    let live_capture = match &cfg.capture.interface {
        Some(iface) => {
            let (c, granted) = packets::interface::open(iface, cfg.capture.recv_buffer_bytes)?;
            if granted < cfg.capture.recv_buffer_bytes {
                tracing::warn!(iface = %iface, requested = cfg.capture.recv_buffer_bytes, granted,
                    "Kernel granted a smaller capture receive buffer; bursts may drop. Raise net.core.rmem_max");
            }
            Some(c)
        }
        None => None,
    };
    let listen = sockets
        .first()
        .and_then(|(s, _)| s.local_addr().ok())
        .map(|a| a.to_string())
        .unwrap_or_default();
    if granted < cfg.netflow.recv_buffer_bytes {
        tracing::warn!(
            requested = cfg.netflow.recv_buffer_bytes,
            granted,
            "Kernel granted a smaller NetFlow receive buffer; bursts may drop. Raise net.core.rmem_max"
        );
    }
    tracing::info!(listen = %listen, shards = sockets.len(), model = %model, data_dir = %cfg.data_dir.display(),
        mqtt = cfg.mqtt.as_ref().map(|m| m.describe()).unwrap_or_else(|| "off".into()),
        outbox = store.outbox_len(), "netwarden started");

    let metrics = Arc::new(Metrics::default());
    let (shutdown_tx, _) = broadcast::channel(1);
    let wake = Arc::new(Notify::new());
    let latest_stats = Arc::new(Mutex::new(String::from("{}")));

    let snmp_board = StatusBoard::default();
    let scoreboard = ScoreBoard::default();
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
    let learning_board = crate::records::learning::LearningBoard::default();
    let mut alerts = AlertSink::new(store.clone(), metrics.clone(), wake.clone(), alert_prefix);
    if !cfg.eve.inputs.is_empty() {
        // One alert per flow when netwarden's flow detector and Suricata both fire (docs/eve.md).
        let window_ms = cfg.eve.rules.dedupe_window.as_millis() as u64;
        alerts = alerts.with_ledger(
            crate::records::flow_ledger::FlowLedger::default(),
            window_ms,
        );
    }
    let snmp_tasks = series::start_snmp(
        &cfg,
        alerts.clone(),
        snmp_board.clone(),
        scoreboard.clone(),
        &shutdown_tx,
        learning_board.clone(),
    )?;
    match &snmp_tasks {
        Some(t) => models.push(t.model.clone()),
        None => {
            if let Some(info) = sources.idle_series_info() {
                models.push(info);
            }
        }
    }

    let (queue_tx, queue_rx) = sync_channel::<FlowInput>(cfg.netflow.queue_datagrams);
    let eve_threads = eve::start(
        &cfg.eve,
        &cfg.site,
        &cfg.device,
        store.clone(),
        alerts.clone(),
        queue_tx.clone(),
        metrics.clone(),
        &shutdown_tx,
    )?;
    let shipped_threshold = bundle.manifest.threshold.value;
    let mut pipeline = FlowPipeline::new(
        bundle,
        &cfg.site,
        &cfg.device,
        cfg.alerting.dedupe_window,
        metrics.clone(),
    )
    .with_pair_wait(cfg.detector.pair_wait);
    if let Some(c) = cfg.samples {
        pipeline = pipeline.with_reservoir(c);
    }
    if let Some(l) = learning::flow_learner(&store, &cfg.learning, shipped_threshold) {
        pipeline = pipeline.with_learning(l);
        learning::restore_novelty(&mut pipeline, &store);
    }
    let fleet_changed = Arc::new(Notify::new());
    let (candidate_tx, candidate_rx) = sync_channel(2);
    let fleet_api = match (&cfg.fleet, &ledger) {
        (Some(_), Some(l)) => Some(Arc::new(http::fleet::FleetApi {
            ledger: l.clone(),
            candidates: candidate_tx.clone(),
            sources: sources.clone(),
            batch_size: cfg.detector.batch_size,
        })),
        _ => None,
    };
    let fleet_hooks = match (&cfg.fleet, &ledger) {
        (Some(f), Some(l)) => {
            pipeline = pipeline.with_fleet_policy(f.policy);
            fleet::resume_shadow(&mut pipeline, &sources, l, cfg.detector.batch_size);
            Some(fleet::FleetHooks {
                ledger: l.clone(),
                changed: fleet_changed.clone(),
                candidates: candidate_rx,
            })
        }
        _ => None,
    };
    let mut stage = FlowStage::new(NetflowDecoder::new(cfg.netflow.max_exporters), pipeline)
        .with_arp(crate::pipeline::arp::ArpDetector::new(
            cfg.arp.rules.clone(),
            &cfg.site,
            &cfg.device,
            metrics.clone(),
        ))
        .with_exporter_watch(exporter_watch(&cfg));
    if let Some((mut g, info)) = graph::load(&cfg, &cfg.trust, metrics.clone())? {
        if let Some(l) = learning::graph_learner(&store, &cfg.learning, g.shipped_surprise()) {
            g = g.with_learning(l);
        }
        stage = stage.with_graph(g);
        models.push(info);
    }
    let templates = template_book(&cfg, &store, &metrics);
    let shard_in_flight = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let shard_exporters: flow::ShardSlots = Arc::new(
        (0..sockets.len())
            .map(|_| Mutex::new(Default::default()))
            .collect(),
    );
    let shard_datagrams = Arc::new(
        (0..sockets.len())
            .map(|_| std::sync::atomic::AtomicU64::new(0))
            .collect::<Vec<_>>(),
    );
    let ctx = FlowSinks {
        store: store.clone(),
        metrics: metrics.clone(),
        alerts,
        snmp_board: snmp_board.clone(),
        scoreboard: scoreboard.clone(),
        exporters: exporters.clone(),
        shard_exporters: shard_exporters.clone(),
        shard_datagrams: shard_datagrams.clone(),
        latest_stats: latest_stats.clone(),
        kernel_drops,
        templates: Some(templates.clone()),
        shard_in_flight: shard_in_flight.clone(),
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
            netflow_shard_datagrams: Vec::new(),
            exporters: Default::default(),
            snmp_targets: Default::default(),
            history: Default::default(),
        },
        summary_interval_ms: cfg.history.summary_interval.as_millis() as u64,
        top_hosts: cfg.history.top_hosts,
        fleet: fleet_hooks,
        learning: learning::LearningSaver::new(learning_board.clone()),
    };
    let worker = std::thread::Builder::new()
        .name("pipeline".into())
        .stack_size(8 << 20)
        .spawn(move || flow::flow_thread(stage, queue_rx, ctx))
        .map_err(RuntimeError::Thread)?;
    let mut shards = Vec::with_capacity(sockets.len());
    for (index, (socket, _)) in sockets.into_iter().enumerate() {
        let s = shard::Shard {
            index,
            socket,
            decoder: NetflowDecoder::with_template_book(
                cfg.netflow.max_exporters,
                templates.clone(),
            ),
            queue: queue_tx.clone(),
            metrics: metrics.clone(),
            exporters: shard_exporters.clone(),
            datagrams: shard_datagrams.clone(),
            in_flight: shard_in_flight.clone(),
            shutdown: Shutdown::new(shutdown_tx.subscribe()),
        };
        shards.push(
            std::thread::Builder::new()
                .name(format!("netflow-shard-{index}"))
                .spawn(move || shard::shard_thread(s))
                .map_err(RuntimeError::Thread)?,
        );
    }

    let retention = {
        let (store, metrics) = (store.clone(), metrics.clone());
        let stop = Shutdown::new(shutdown_tx.subscribe());
        let every = cfg.history.check_interval;
        std::thread::Builder::new()
            .name("retention".into())
            .spawn(move || retention::retention_thread(&store, &metrics, every, stop))
            .map_err(RuntimeError::Thread)?
    };
    let capture_thread = match live_capture {
        Some(c) => Some(c.spawn(
            cfg.capture.timeouts,
            cfg.arp.meter,
            queue_tx.clone(),
            metrics.clone(),
            Shutdown::new(shutdown_tx.subscribe()),
        )?),
        None => None,
    };
    if let Some(path) = &cfg.capture.pcap {
        // Ends by itself after the file; its sender then leaves the queue.
        packets::pcap::spawn(
            path.clone(),
            cfg.capture.timeouts,
            cfg.arp.meter,
            queue_tx.clone(),
            metrics.clone(),
        )
        .map_err(RuntimeError::Thread)?;
    }

    let http_task = http_listener.map(|l| {
        let addr = l.local_addr().map(|a| a.to_string()).unwrap_or_default();
        tracing::info!(listen = %addr, auth = cfg.http.token.is_some(), "HTTP API and dashboard listening");
        let state = http::AppState {
            store: store.clone(),
            metrics: metrics.clone(),
            scoreboard: scoreboard.clone(),
            exporters: exporters.clone(),
            snmp_board: snmp_board.clone(),
            models: Arc::new(models.clone()),
            learning: learning_board.clone(),
            scorer: http::detect::Scorer::new(sources.clone()),
            token: cfg.http.token.clone(),
            started: Instant::now(),
            site: cfg.site.clone(),
            device: cfg.device.clone(),
            netflow_queue_capacity: cfg.netflow.queue_datagrams,
            series_queue: snmp_tasks.as_ref().map(|t| t.queue.clone()),
            fleet: fleet_api.clone(),
        };
        tokio::spawn(http::serve(l, state, Shutdown::new(shutdown_tx.subscribe())))
    });
    // The shards, capture, pcap and EVE threads hold the senders now: the queue closes when
    // they are all gone.
    drop(queue_tx);
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

    let fleet_task = match (&cfg.mqtt, &cfg.fleet, &ledger) {
        (Some(m), Some(f), Some(l)) => Some(tokio::spawn(mqtt::fleet::run(
            m.clone(),
            mqtt::fleet::FleetLink {
                fleet: f.clone(),
                site: cfg.site.clone(),
                device: cfg.device.clone(),
                trust: cfg.trust.clone(),
                ledger: l.clone(),
                candidates: candidate_tx,
                changed: fleet_changed,
                metrics: metrics.clone(),
                batch_size: cfg.detector.batch_size,
                samples: Some(store.clone()),
                learning: Some(learning_board.clone()),
            },
            Shutdown::new(shutdown_tx.subscribe()),
        ))),
        _ => None,
    };

    wait_for_signal().await?;
    tracing::info!("Shutting down");
    let _ = shutdown_tx.send(());
    // The sources return on the signal and drop their queue senders (the capture after
    // flushing its open flows); the flow thread then drains the queue and exits.
    for s in shards {
        let _ = tokio::task::spawn_blocking(move || s.join()).await;
    }
    if let Some(t) = capture_thread {
        let _ = tokio::task::spawn_blocking(move || t.join()).await;
    }
    if let Some(t) = eve_threads {
        // Its last poll is delivered and its positions saved; then its queue sender drops.
        let _ = tokio::task::spawn_blocking(move || {
            let _ = t.main.join();
            for s in t.sockets {
                let _ = s.join();
            }
        })
        .await;
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
    if let Some(t) = fleet_task {
        let _ = t.await;
    }
    let _ = tokio::task::spawn_blocking(move || retention.join()).await;
    store.flush()?;
    tracing::info!(outbox = store.outbox_len(), "netwarden stopped");
    Ok(())
}

/// The NetFlow template book the shards share, with what the store kept
/// (`sources/netflow/templates.rs`); the flow thread saves its changes each second.
fn template_book(
    cfg: &Config,
    store: &Store,
    metrics: &Metrics,
) -> Arc<crate::sources::netflow::templates::TemplateBook> {
    let book = Arc::new(crate::sources::netflow::templates::TemplateBook::new(
        cfg.netflow.template_ttl.as_millis() as u64,
        cfg.netflow.max_templates_per_exporter,
        crate::now_ms,
    ));
    match store.load_templates() {
        Ok(rows) => {
            let restored = book.restore(rows);
            let c = &book.counters;
            tracing::info!(
                restored,
                expired = c.expired.load(std::sync::atomic::Ordering::Relaxed),
                "NetFlow templates restored"
            );
        }
        Err(e) => tracing::warn!(error = %e, "Cannot read the kept NetFlow templates"),
    }
    flow::copy_template_counters(&book, metrics);
    book
}

async fn wait_for_signal() -> Result<(), RuntimeError> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).map_err(RuntimeError::Signal)?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    Ok(())
}

/// The exporter health watch `[netflow]` asks for (docs/mqtt.md "Exporter alerts").
fn exporter_watch(cfg: &Config) -> crate::pipeline::exporters::ExporterWatch {
    let n = &cfg.netflow;
    crate::pipeline::exporters::ExporterWatch::new(
        crate::pipeline::exporters::WatchConfig {
            silence: n.exporter_silence,
            loss_ratio: n.exporter_loss_ratio,
            loss_window: n.exporter_loss_window,
        },
        &cfg.site,
        &cfg.device,
    )
}
