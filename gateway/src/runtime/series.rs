//! SNMP wiring: one poller task per target (sources/snmp) feeds a bounded queue; the series
//! thread hands each batch to the series pipeline, then to the sinks: rate samples and scores
//! to the store, alerts to the [`AlertSink`], rates and scores to the dashboard's [`ScoreBoard`].

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use netwarden_firmware::series::SeriesParams;
use tokio::sync::broadcast;

use super::flow::PROBLEM_LOG_EVERY;
use super::RuntimeError;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::models::{ModelInfo, ModelSources};
use crate::pipeline::series::{SeriesOptions, SeriesPipeline, DEFAULT_MAX_INTERFACES};
use crate::records::scoreboard::ScoreBoard;
use crate::records::{RateSample, StatusBoard};
use crate::shutdown::Shutdown;
use crate::sinks::alert_sink::AlertSink;
use crate::sinks::store::Store;
use crate::sources::snmp;

/// Pollers and the series thread, when SNMP targets are configured.
pub(super) struct SnmpTasks {
    pub pollers: Vec<tokio::task::JoinHandle<()>>,
    pub series: std::thread::JoinHandle<()>,
    /// The series queue, for its depth on `/metrics` (weak: it must not keep the queue open).
    pub queue: tokio::sync::mpsc::WeakSender<RateSample>,
    pub model: ModelInfo,
}

/// The series pipeline's options `netwarden run` uses.
pub fn series_options(cfg: &Config) -> SeriesOptions {
    // A known step this long after the previous one means the daemon (or the target) was
    // away: the window restarts instead of stitching old rows to new ones.
    let longest = cfg
        .snmp
        .targets
        .iter()
        .map(|t| t.max_gap())
        .max()
        .unwrap_or(Duration::ZERO);
    let max_gap = longest * (u32::from(SeriesParams::DEFAULT.max_unknown_steps) + 2);
    SeriesOptions {
        params: SeriesParams {
            utc_offset_s: cfg.detector.series_utc_offset_secs,
            max_gap_ms: max_gap.as_millis() as u64,
            ..SeriesParams::DEFAULT
        },
        dedupe: cfg.detector.series_dedupe,
        max_interfaces: DEFAULT_MAX_INTERFACES,
    }
}

/// The series pipeline `netwarden run` feeds: the configured bundle
/// (`detector.series_model` / `--series-model`), else the built-in one.
pub fn series_pipeline(
    cfg: &Config,
    metrics: Arc<Metrics>,
) -> Result<SeriesPipeline, crate::models::LoadError> {
    let bundle = model_sources(cfg).load_series()?;
    tracing::info!(model = %bundle.manifest.name, version = %bundle.manifest.version,
        signature = %bundle.signature, threshold = bundle.manifest.threshold.value,
        source = %bundle.source, "Series model loaded");
    Ok(
        SeriesPipeline::new(bundle, &cfg.site, &cfg.device, series_options(cfg))
            .with_metrics(metrics),
    )
}

/// Where the detectors' bundles come from, as configured.
pub fn model_sources(cfg: &Config) -> ModelSources {
    ModelSources {
        flow_model: cfg.detector.flow_model.clone(),
        series_model: cfg.detector.series_model.clone(),
        trust: cfg.trust.clone(),
    }
}

/// Spawns one poller per `[[snmp.targets]]` entry and the series thread they feed.
pub(super) fn start_snmp(
    cfg: &Config,
    alerts: AlertSink,
    board: StatusBoard,
    scoreboard: ScoreBoard,
    shutdown_tx: &broadcast::Sender<()>,
    learning: crate::records::learning::LearningBoard,
) -> Result<Option<SnmpTasks>, RuntimeError> {
    if cfg.snmp.targets.is_empty() {
        return Ok(None);
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<RateSample>(cfg.snmp.queue_samples);
    let retention = cfg.snmp.series_retention;
    let mut pipeline = series_pipeline(cfg, alerts.metrics.clone())?;
    let shipped = pipeline.detector().threshold;
    if let Some(l) = super::learning::series_learner(&alerts.store, &cfg.learning, shipped) {
        pipeline = pipeline.with_learning(l);
    }
    warm_series(cfg, &alerts.store, &mut pipeline);
    let model = pipeline.model_info().clone();
    let sink = alerts.clone();
    let series = std::thread::Builder::new()
        .name("series".into())
        .spawn(move || series_thread(rx, sink, retention, pipeline, scoreboard, learning))
        .map_err(RuntimeError::Thread)?;
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
fn warm_series(cfg: &Config, store: &Store, pipeline: &mut SeriesPipeline) {
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

/// Samples handed to the series pipeline at once at most.
const SERIES_BATCH: usize = 256;

/// Hands every batch of rate samples to the series pipeline, then stores the samples, scores
/// and alerts. A plain thread: sled calls block, and the series detector is CPU work. Runs
/// until every poller has dropped its queue sender (they do on shutdown).
fn series_thread(
    mut rx: tokio::sync::mpsc::Receiver<RateSample>,
    alerts: AlertSink,
    retention: Duration,
    mut pipeline: SeriesPipeline,
    scoreboard: ScoreBoard,
    learning: crate::records::learning::LearningBoard,
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
        let raised = pipeline.ingest_many(&batch);
        super::learning::save_series(&mut pipeline, &alerts.store, &learning);
        let scores = pipeline.take_scores();
        for sample in &batch {
            store_sample(&alerts, sample, &mut last_error_log);
        }
        scoreboard.publish_rates(&batch);
        scoreboard.publish_series(&scores);
        alerts.on_alerts(&raised);
        for score in scores {
            if let Err(e) = alerts.store.history().append_score(&score) {
                alerts.metrics.add(&alerts.metrics.history_store_errors, 1);
                tracing::debug!(error = %e, "Cannot store a series score");
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
