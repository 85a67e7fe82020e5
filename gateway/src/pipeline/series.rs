//! Interface series: SNMP rate samples -> `series-v1` windows (firmware core) -> series
//! autoencoder scores -> interface alerts.
//!
//! The SNMP source hands on one [`RateSample`] per interface per poll step (the contract is
//! in [`crate::records::rate`]); the series pipeline owns everything after that.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use netwarden_firmware::series::{
    judge_window, Direction, SeriesParams, SeriesWindow, Step, SERIES_FEATURES, SERIES_WIDTH,
    WINDOW_STEPS,
};
use netwarden_firmware::{Severity, Verdict};
use serde::Serialize;

use crate::metrics::Metrics;
use crate::models::series_scorer::SeriesAe;
use crate::models::SeriesBundle;
use crate::pipeline::alerting::Dedupe;
use crate::records::{
    Alert, Contribution, InterfaceSubject, ModelRef, RateSample, Subject, SERIES_DETECTOR,
};

/// Interfaces tracked at most by default (about 2 KiB each).
pub const DEFAULT_MAX_INTERFACES: usize = 4096;

/// Default de-duplication: one alert per interface per 30 minutes unless severity escalates.
/// Polls are minutes apart and a window slides one step at a time, so an anomaly stays in
/// view for up to 50 steps; 60 s (the flow default) would alert on every poll.
pub const DEFAULT_SERIES_DEDUPE: Duration = Duration::from_secs(30 * 60);

/// How the series pipeline behaves besides its model.
#[derive(Debug, Clone)]
pub struct SeriesOptions {
    pub params: SeriesParams,
    pub dedupe: Duration,
    pub max_interfaces: usize,
}

impl Default for SeriesOptions {
    fn default() -> Self {
        SeriesOptions {
            params: SeriesParams::DEFAULT,
            dedupe: DEFAULT_SERIES_DEDUPE,
            max_interfaces: DEFAULT_MAX_INTERFACES,
        }
    }
}

/// The series pipeline's counters (for stats.json / the heartbeat).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SeriesCounters {
    /// Rate samples handed to `ingest`.
    pub series_samples: u64,
    /// Samples with an unknown rate (not fed into any window).
    pub series_unknown_steps: u64,
    /// Samples not later than their interface's previous known one (dropped).
    pub series_out_of_order_steps: u64,
    /// Interfaces restarted (windows emptied) after too many unknown steps or a time gap.
    pub series_restarts: u64,
    /// Interfaces forgotten to make room (the one polled least recently).
    pub series_interface_evictions: u64,
    pub series_windows_scored: u64,
    pub series_windows_anomalous: u64,
    pub series_alerts_raised: u64,
    /// Anomalous windows folded into an alert already raised for the same interface.
    pub series_alerts_suppressed_dedupe: u64,
    /// Model runs and their total time.
    pub series_inference_runs: u64,
    pub series_inference_micros_total: u64,
    /// Model runs that failed; their windows were not scored.
    pub series_inference_errors: u64,
}

type IfaceKey = (String, u32);

#[derive(Debug)]
struct Iface {
    if_name: String,
    window: Box<SeriesWindow<WINDOW_STEPS>>,
    /// Poll times of the window's rows, oldest first (same length as the window).
    row_ts: VecDeque<u64>,
    segment: u32,
    last_seen_ms: u64,
}

/// Window scores held for the history between two `take_scores` calls at most.
pub const MAX_PENDING_SCORES: usize = 4096;

/// A window due for scoring in this call.
#[derive(Debug)]
struct Due {
    key: IfaceKey,
    ts_ms: u64,
}

/// Rate samples -> per-interface `series-v1` windows -> batched autoencoder scores -> alerts.
///
/// Pure logic apart from the model: no I/O and no clock reads (alert time comes from the
/// injected clock), so the SNMP source's task can own it and tests can drive it.
#[derive(Debug)]
pub struct SeriesPipeline {
    detector: SeriesAe,
    params: SeriesParams,
    ifaces: HashMap<IfaceKey, Iface>,
    max_interfaces: usize,
    dedupe: Dedupe<IfaceKey>,
    site: String,
    device: String,
    model: ModelRef,
    counters: SeriesCounters,
    due: Vec<Due>,
    scaled: Vec<f32>,
    outputs: Vec<f32>,
    now_ms: fn() -> u64,
    metrics: Option<(Arc<Metrics>, SeriesCounters)>,
    /// One score per window scored, for the history (drained by [`Self::take_scores`]).
    scores: Vec<crate::records::ScoreSummary>,
    info: crate::models::ModelInfo,
    /// The learning period (grouped by interface), when the threshold is learnt on this site.
    learner: Option<super::learning::Learner<String>>,
    learning_changed: bool,
}

impl SeriesPipeline {
    pub fn new(bundle: SeriesBundle, site: &str, device: &str, options: SeriesOptions) -> Self {
        let info = crate::models::ModelInfo::from_manifest(
            SERIES_DETECTOR,
            &bundle.manifest,
            &bundle.source,
            &bundle.signature,
            "active",
        );
        let model = ModelRef {
            name: bundle.manifest.name.clone(),
            version: bundle.manifest.version.clone(),
        };
        SeriesPipeline {
            detector: bundle.detector,
            params: options.params,
            ifaces: HashMap::new(),
            max_interfaces: options.max_interfaces.max(1),
            dedupe: Dedupe::new(options.dedupe, options.max_interfaces.max(1)),
            site: site.to_string(),
            device: device.to_string(),
            model,
            counters: SeriesCounters::default(),
            due: Vec::new(),
            scaled: Vec::new(),
            outputs: Vec::new(),
            now_ms: crate::now_ms,
            metrics: None,
            scores: Vec::new(),
            info,
            learner: None,
            learning_changed: false,
        }
    }

    /// Learns the window threshold on this site ([`super::learning`]): the series detector
    /// calibrates itself; a finished learner applies its threshold at once.
    pub fn with_learning(mut self, learner: super::learning::Learner<String>) -> Self {
        if let Some(f) = &learner.status().fitted {
            self.detector.threshold = f.threshold;
        }
        self.learner = Some(learner);
        self
    }

    pub fn learning(&self) -> Option<&super::learning::Learner<String>> {
        self.learner.as_ref()
    }

    /// True once after learning finished.
    pub fn take_learning_changed(&mut self) -> bool {
        std::mem::take(&mut self.learning_changed)
    }

    /// Also adds the counters to the process-wide [`Metrics`] (stats.json, heartbeat) after
    /// every `ingest`.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some((metrics, self.counters));
        self
    }

    fn report(&mut self) {
        let Some((m, last)) = &mut self.metrics else {
            return;
        };
        let c = self.counters;
        for (counter, now, before) in [
            (
                &m.series_unknown_steps,
                c.series_unknown_steps,
                last.series_unknown_steps,
            ),
            (
                &m.series_out_of_order_steps,
                c.series_out_of_order_steps,
                last.series_out_of_order_steps,
            ),
            (&m.series_restarts, c.series_restarts, last.series_restarts),
            (
                &m.series_interface_evictions,
                c.series_interface_evictions,
                last.series_interface_evictions,
            ),
            (
                &m.series_windows_scored,
                c.series_windows_scored,
                last.series_windows_scored,
            ),
            (
                &m.series_windows_anomalous,
                c.series_windows_anomalous,
                last.series_windows_anomalous,
            ),
            (
                &m.series_alerts_raised,
                c.series_alerts_raised,
                last.series_alerts_raised,
            ),
            (
                &m.series_alerts_suppressed_dedupe,
                c.series_alerts_suppressed_dedupe,
                last.series_alerts_suppressed_dedupe,
            ),
            (
                &m.series_inference_runs,
                c.series_inference_runs,
                last.series_inference_runs,
            ),
            (
                &m.series_inference_micros_total,
                c.series_inference_micros_total,
                last.series_inference_micros_total,
            ),
            (
                &m.series_inference_errors,
                c.series_inference_errors,
                last.series_inference_errors,
            ),
        ] {
            if now > before {
                m.add(counter, now - before);
            }
        }
        *last = c;
    }

    /// Uses `clock` for alert timestamps (tests, replays).
    pub fn with_clock(mut self, clock: fn() -> u64) -> Self {
        self.now_ms = clock;
        self
    }

    pub fn counters(&self) -> SeriesCounters {
        self.counters
    }

    /// Interfaces currently tracked.
    pub fn interfaces(&self) -> usize {
        self.ifaces.len()
    }

    pub fn detector(&self) -> &SeriesAe {
        &self.detector
    }

    /// Feeds stored history (oldest first) into the windows without scoring it, so that a
    /// restarted daemon scores its first live poll instead of waiting 55 steps. Returns the
    /// number of windows that are full afterwards.
    pub fn warm(&mut self, history: &[RateSample]) -> usize {
        self.due.clear();
        for s in history {
            self.step(s);
        }
        self.due.clear();
        self.report();
        self.ifaces
            .values()
            .filter(|i| i.row_ts.len() == WINDOW_STEPS)
            .count()
    }

    /// One poll step of one interface; the alerts it raised (usually none).
    pub fn ingest(&mut self, sample: &RateSample) -> Vec<Alert> {
        self.ingest_many(std::slice::from_ref(sample))
    }

    /// Several samples (typically one poll of every interface of a target): windows that
    /// become due are scored together, in as few model runs as the plans allow.
    pub fn ingest_many(&mut self, samples: &[RateSample]) -> Vec<Alert> {
        self.due.clear();
        for s in samples {
            self.step(s);
        }
        let alerts = self.score_due();
        self.report();
        alerts
    }

    /// The model as `/models` shows it.
    pub fn model_info(&self) -> &crate::models::ModelInfo {
        &self.info
    }

    fn step(&mut self, s: &RateSample) {
        self.counters.series_samples += 1;
        let key = (s.target.clone(), s.if_index);
        if !self.ifaces.contains_key(&key) && self.ifaces.len() >= self.max_interfaces {
            self.evict_stalest();
        }
        let iface = self.ifaces.entry(key).or_insert_with_key(|_| Iface {
            if_name: String::new(),
            window: Box::default(),
            row_ts: VecDeque::with_capacity(WINDOW_STEPS),
            segment: 0,
            last_seen_ms: 0,
        });
        if iface.if_name != s.if_name {
            iface.if_name.clone_from(&s.if_name);
        }
        iface.last_seen_ms = iface.last_seen_ms.max(s.ts_ms);
        let step = iface
            .window
            .push(s.ts_ms, s.in_bps, s.out_bps, &self.params);
        if iface.window.segment() != iface.segment {
            iface.segment = iface.window.segment();
            iface.row_ts.clear();
            self.counters.series_restarts += 1;
        }
        match step {
            Step::Unknown { .. } => self.counters.series_unknown_steps += 1,
            Step::OutOfOrder => self.counters.series_out_of_order_steps += 1,
            Step::WarmingUp => {}
            Step::Row { window_full, .. } => {
                if iface.row_ts.len() == WINDOW_STEPS {
                    iface.row_ts.pop_front();
                }
                iface.row_ts.push_back(s.ts_ms);
                if window_full {
                    // An interface polled twice in one batch is scored once, on its latest
                    // window: the earlier one is gone from the sliding buffer.
                    let key = (s.target.clone(), s.if_index);
                    match self.due.iter_mut().find(|d| d.key == key) {
                        Some(d) => d.ts_ms = s.ts_ms,
                        None => self.due.push(Due {
                            key,
                            ts_ms: s.ts_ms,
                        }),
                    }
                }
            }
        }
    }

    fn evict_stalest(&mut self) {
        let stalest = self
            .ifaces
            .iter()
            .min_by_key(|(_, i)| i.last_seen_ms)
            .map(|(k, _)| k.clone());
        if let Some(k) = stalest {
            self.ifaces.remove(&k);
            self.due.retain(|d| d.key != k);
            self.counters.series_interface_evictions += 1;
        }
    }

    /// The window scores since the last call (at most [`MAX_PENDING_SCORES`]).
    pub fn take_scores(&mut self) -> Vec<crate::records::ScoreSummary> {
        std::mem::take(&mut self.scores)
    }

    fn score_due(&mut self) -> Vec<Alert> {
        if self.due.is_empty() {
            return Vec::new();
        }
        self.scaled.clear();
        for d in &self.due {
            if let Some(i) = self.ifaces.get(&d.key) {
                self.detector.scale_rows(i.window.rows(), &mut self.scaled);
            }
        }
        self.outputs.clear();
        let started = Instant::now();
        let result = self.detector.run_scaled(&self.scaled, &mut self.outputs);
        let elapsed = started.elapsed();
        self.counters.series_inference_runs += 1;
        self.counters.series_inference_micros_total += elapsed.as_micros() as u64;
        if let Some((m, _)) = &self.metrics {
            m.series_inference_latency.observe(elapsed);
        }
        if let Err(e) = result {
            self.counters.series_inference_errors += 1;
            tracing::error!(error = %e, windows = self.due.len(), "Series model failed; windows not scored");
            return Vec::new();
        }
        let per = self.detector.window_len();
        let high = self.detector.high_ratio;
        let mut threshold = match &self.learner {
            Some(l) if l.learning() => l.threshold(),
            _ => self.detector.threshold,
        };
        let due = std::mem::take(&mut self.due);
        let mut alerts = Vec::new();
        for (n, d) in due.iter().enumerate() {
            let range = n * per..(n + 1) * per;
            let (Some(scaled), Some(out)) =
                (self.scaled.get(range.clone()), self.outputs.get(range))
            else {
                continue;
            };
            self.counters.series_windows_scored += 1;
            let verdict = judge_window(scaled, out, threshold, high);
            if let Some(l) = self.learner.as_mut() {
                let group = format!("{}/{}", d.key.0, d.key.1);
                if let Some(f) = l.observe(&group, d.ts_ms, verdict.error) {
                    tracing::info!(threshold = f.threshold, method = %f.method,
                        samples = f.samples, "Learning period over; series threshold fitted");
                    self.detector.threshold = f.threshold;
                    threshold = f.threshold;
                    self.learning_changed = true;
                }
            }
            if self.scores.len() < MAX_PENDING_SCORES {
                let name = self.ifaces.get(&d.key).map(|i| i.if_name.as_str());
                self.scores.push(crate::records::ScoreSummary {
                    ts_ms: d.ts_ms,
                    detector: SERIES_DETECTOR.to_string(),
                    model: format!("{} {}", self.model.name, self.model.version),
                    subject: format!("{}/{}", d.key.0, name.unwrap_or("?")),
                    count: 1,
                    anomalous: u64::from(verdict.severity.is_some()),
                    mean_error: verdict.error,
                    max_error: verdict.error,
                    threshold,
                });
            }
            let Some(severity) = verdict.severity else {
                continue;
            };
            self.counters.series_windows_anomalous += 1;
            match self.dedupe.admit(&d.key, d.ts_ms, severity) {
                Some(suppressed) => {
                    if let Some(a) = self.build(d, &verdict, severity, suppressed) {
                        self.counters.series_alerts_raised += 1;
                        alerts.push(a);
                    }
                }
                None => self.counters.series_alerts_suppressed_dedupe += 1,
            }
        }
        self.due = due;
        self.due.clear();
        alerts
    }

    fn build(
        &self,
        d: &Due,
        verdict: &Verdict<SERIES_WIDTH>,
        severity: Severity,
        suppressed: u64,
    ) -> Option<Alert> {
        let iface = self.ifaces.get(&d.key)?;
        let last = iface.window.rows().last().copied()?;
        let total: f32 = verdict.contributions.iter().sum();
        let top_features: Vec<Contribution> = verdict
            .ranked()
            .iter()
            .take(3)
            .map(|&i| Contribution {
                feature: SERIES_FEATURES[i].to_string(),
                value: last[i],
                share: if total > 0.0 {
                    verdict.contributions[i] / total
                } else {
                    0.0
                },
            })
            .collect();
        let direction = Direction::of(&verdict.contributions);
        let threshold = self.detector.threshold;
        let ratio = if threshold > 0.0 {
            verdict.error / threshold
        } else {
            f32::INFINITY
        };
        let top = top_features
            .iter()
            .map(|c| format!("{}={}", c.feature, c.value))
            .collect::<Vec<_>>()
            .join(", ");
        let summary = format!(
            "{severity} {} {} (ifIndex {}) {direction}: traffic over the last {} steps has reconstruction error {:.4}, {:.1}x the threshold; most unusual now: {top}",
            d.key.0, iface.if_name, d.key.1, iface.row_ts.len(), verdict.error, ratio
        );
        let now_ms = (self.now_ms)();
        Some(Alert {
            id: uuid::Uuid::now_v7().to_string(),
            ts_ms: now_ms,
            ts: humantime::format_rfc3339_millis(
                std::time::UNIX_EPOCH + Duration::from_millis(now_ms),
            )
            .to_string(),
            site: self.site.clone(),
            device: self.device.clone(),
            detector: SERIES_DETECTOR.to_string(),
            model: self.model.clone(),
            severity: severity.as_str().to_string(),
            score: verdict.error,
            threshold,
            subject: Subject::Interface(InterfaceSubject {
                target: d.key.0.clone(),
                if_index: d.key.1,
                if_name: iface.if_name.clone(),
                direction: direction.as_str().to_string(),
                window_first_ms: iface.row_ts.front().copied().unwrap_or(d.ts_ms),
                window_last_ms: d.ts_ms,
            }),
            top_features,
            suppressed_since_last: suppressed,
            rule: None,
            summary,
            incident: None,
        })
    }
}
