//! Exporter health: an exporter that went silent, or whose sequence numbers say it is losing
//! export datagrams, is an incident (`subject.kind: exporter`, docs/mqtt.md "Exporter alerts").
//!
//! The watch reads the per-exporter counters the NetFlow decoder keeps (`records::ExporterStats`,
//! the same numbers `stats.json` shows), once a second, and does no I/O: the caller passes the
//! clock, the ids and the snapshot, and gets alerts back through a callback, like every other
//! detector's. Two conditions, each its own incident per exporter:
//! - **silent**: the exporter's datagram counter has not moved for `silence` (it had sent at
//!   least one datagram since the gateway started). It recovers with its next datagram.
//! - **sequence_loss**: over the last `loss_window`, the units the sequence numbers say never
//!   arrived (datagrams for v9, records for v5 and IPFIX: `sequence_missing`) are more than
//!   `loss_ratio` of those expected (arrived + missing), with at least [`MIN_EXPECTED`] units
//!   expected. It recovers when a whole window with enough traffic stays under half the ratio
//!   (hysteresis, so a ratio hovering at the limit does not flap), or, silently, when the
//!   exporter's counters are reset (never: they only grow).
//!
//! The opening alert has `incident.update` 0 and `incident.id` equal to its own `id`; the
//! recovery is one more alert with the same `incident.id`, the next `update` and
//! `subject.state: "recovered"`, after which the incident is closed (a new silence opens a new
//! one). Memory is bounded by the decoder's own exporter cap (`netflow.max_exporters`);
//! exporters counted together as `other` are not watched (their silence means nothing).

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use crate::records::{Alert, ExporterStats, ExporterSubject, Incident, ModelRef, Subject};

/// Detector name of exporter alerts.
pub const EXPORTER_DETECTOR: &str = "exporter_health";

/// Units (datagrams or records) a window must expect before its loss ratio is judged: three
/// lost of five is noise, not a trend.
pub const MIN_EXPECTED: u64 = 20;

/// The label the decoder gives exporters beyond its cap (never watched).
const OTHER: &str = "other";

/// What the watch looks for; `None` turns a condition off.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WatchConfig {
    pub silence: Option<Duration>,
    pub loss_ratio: Option<f64>,
    pub loss_window: Duration,
}

impl Default for WatchConfig {
    fn default() -> Self {
        WatchConfig {
            silence: Some(Duration::from_secs(300)),
            loss_ratio: Some(0.05),
            loss_window: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Condition {
    Silent,
    Loss,
}

impl Condition {
    fn as_str(self) -> &'static str {
        match self {
            Condition::Silent => "silent",
            Condition::Loss => "sequence_loss",
        }
    }

    fn pattern(self) -> &'static str {
        match self {
            Condition::Silent => "exporter_silent",
            Condition::Loss => "exporter_sequence_loss",
        }
    }

    fn severity(self) -> &'static str {
        match self {
            // A silent exporter blinds every detector behind it; loss only thins the evidence.
            Condition::Silent => "high",
            Condition::Loss => "medium",
        }
    }
}

#[derive(Debug, Clone)]
struct Open {
    id: String,
    update: u32,
    first_ms: u64,
    max_score: f32,
}

/// One counter snapshot: when, units arrived so far, units missing so far.
#[derive(Debug, Clone, Copy)]
struct Sample {
    ms: u64,
    arrived: u64,
    missing: u64,
}

#[derive(Debug)]
struct Watched {
    datagrams: u64,
    /// When the datagram counter last moved (or the exporter was first seen).
    moved_ms: u64,
    samples: VecDeque<Sample>,
    silent: Option<Open>,
    lossy: Option<Open>,
}

/// What an alert says about the exporter, besides its condition.
#[derive(Debug, Clone, Copy, Default)]
struct Reading {
    silent_ms: u64,
    loss_ratio: f64,
    missing: u64,
    expected: u64,
}

/// Watches every exporter the decoder counts.
#[derive(Debug)]
pub struct ExporterWatch {
    cfg: WatchConfig,
    site: String,
    device: String,
    exporters: HashMap<String, Watched>,
}

impl ExporterWatch {
    pub fn new(cfg: WatchConfig, site: &str, device: &str) -> Self {
        ExporterWatch {
            cfg,
            site: site.to_string(),
            device: device.to_string(),
            exporters: HashMap::new(),
        }
    }

    /// Incidents open now (silent and lossy ones together).
    pub fn open_count(&self) -> usize {
        self.exporters
            .values()
            .map(|w| usize::from(w.silent.is_some()) + usize::from(w.lossy.is_some()))
            .sum()
    }

    /// Takes one snapshot of the decoder's per-exporter counters at `now_ms` (wall clock: an
    /// exporter's silence is real time, not flow time) and raises or clears incidents.
    pub fn tick<'a, S: AsRef<str>>(
        &mut self,
        now_ms: u64,
        stats: impl IntoIterator<Item = (S, &'a ExporterStats)>,
        id: &mut impl FnMut() -> String,
        alerts: &mut impl FnMut(Alert),
    ) {
        for (name, s) in stats {
            let name = name.as_ref();
            if name == OTHER || s.datagrams == 0 {
                continue;
            }
            let w = self
                .exporters
                .entry(name.to_string())
                .or_insert_with(|| Watched {
                    datagrams: s.datagrams,
                    moved_ms: now_ms,
                    samples: VecDeque::new(),
                    silent: None,
                    lossy: None,
                });
            let ctx = Ctx {
                cfg: &self.cfg,
                site: &self.site,
                device: &self.device,
                exporter: name,
                now_ms,
            };
            ctx.silence(w, s, id, alerts);
            ctx.loss(w, s, id, alerts);
        }
    }
}

/// What one exporter's check needs besides its state.
struct Ctx<'a> {
    cfg: &'a WatchConfig,
    site: &'a str,
    device: &'a str,
    exporter: &'a str,
    now_ms: u64,
}

impl Ctx<'_> {
    fn silence(
        &self,
        w: &mut Watched,
        s: &ExporterStats,
        id: &mut impl FnMut() -> String,
        alerts: &mut impl FnMut(Alert),
    ) {
        if s.datagrams != w.datagrams {
            w.datagrams = s.datagrams;
            let silent_ms = self.now_ms.saturating_sub(w.moved_ms);
            w.moved_ms = self.now_ms;
            if let Some(open) = w.silent.take() {
                let r = Reading {
                    silent_ms,
                    ..Reading::default()
                };
                alerts(self.alert(Condition::Silent, open, r, true, id()));
            }
            return;
        }
        let Some(limit) = self.cfg.silence else {
            return;
        };
        let silent_ms = self.now_ms.saturating_sub(w.moved_ms);
        if w.silent.is_none() && silent_ms >= limit.as_millis() as u64 {
            let alert_id = id();
            let open = Open {
                id: alert_id.clone(),
                update: 0,
                first_ms: w.moved_ms,
                max_score: silent_ms as f32 / 1000.0,
            };
            let r = Reading {
                silent_ms,
                ..Reading::default()
            };
            alerts(self.alert(Condition::Silent, open.clone(), r, false, alert_id));
            w.silent = Some(open);
        }
    }

    fn loss(
        &self,
        w: &mut Watched,
        s: &ExporterStats,
        id: &mut impl FnMut() -> String,
        alerts: &mut impl FnMut(Alert),
    ) {
        let Some(limit) = self.cfg.loss_ratio else {
            return;
        };
        // v9 sequence numbers count datagrams, v5 and IPFIX ones count records; an address
        // that mixes v9 with the others has no single unit, and is not judged.
        let arrived = match (s.v9_datagrams > 0, s.v5_datagrams + s.ipfix_datagrams > 0) {
            (true, false) => s.v9_datagrams,
            (false, true) => s.records,
            _ => return,
        };
        let now = Sample {
            ms: self.now_ms,
            arrived,
            missing: s.sequence_missing,
        };
        let window_ms = self.cfg.loss_window.as_millis() as u64;
        // Keep the newest sample at least a window old as the baseline.
        while w.samples.len() >= 2 && self.now_ms.saturating_sub(w.samples[1].ms) >= window_ms {
            w.samples.pop_front();
        }
        w.samples.push_back(now);
        let Some(base) = w.samples.front().copied() else {
            return;
        };
        if self.now_ms.saturating_sub(base.ms) < window_ms {
            return; // less than one window of history
        }
        let missing = now.missing.saturating_sub(base.missing);
        let expected = now.arrived.saturating_sub(base.arrived) + missing;
        if expected < MIN_EXPECTED {
            return;
        }
        let ratio = missing as f64 / expected as f64;
        let r = Reading {
            loss_ratio: ratio,
            missing,
            expected,
            ..Reading::default()
        };
        match w.lossy.as_mut() {
            None if ratio > limit => {
                let alert_id = id();
                let open = Open {
                    id: alert_id.clone(),
                    update: 0,
                    first_ms: base.ms,
                    max_score: ratio as f32,
                };
                alerts(self.alert(Condition::Loss, open.clone(), r, false, alert_id));
                w.lossy = Some(open);
            }
            Some(open) if ratio < limit / 2.0 => {
                let open = open.clone();
                w.lossy = None;
                alerts(self.alert(Condition::Loss, open, r, true, id()));
            }
            Some(open) => open.max_score = open.max_score.max(ratio as f32),
            None => {}
        }
    }

    /// The alert opening (`recovered` false) or closing an incident; a recovery is the
    /// incident's next update.
    fn alert(
        &self,
        c: Condition,
        open: Open,
        r: Reading,
        recovered: bool,
        alert_id: String,
    ) -> Alert {
        let update = if recovered {
            open.update + 1
        } else {
            open.update
        };
        let window_secs = self.cfg.loss_window.as_secs();
        let (score, threshold, what) = match c {
            Condition::Silent => (
                r.silent_ms as f32 / 1000.0,
                self.cfg.silence.map_or(0.0, |d| d.as_secs_f32()),
                if recovered {
                    format!(
                        "sends again after {} s of silence",
                        r.silent_ms.div_ceil(1000)
                    )
                } else {
                    format!("silent: no datagram for {} s", r.silent_ms / 1000)
                },
            ),
            Condition::Loss => (
                r.loss_ratio as f32,
                self.cfg.loss_ratio.unwrap_or(0.0) as f32,
                format!(
                    "{}: {} of {} expected ({:.1} %) missing by sequence number in the last {window_secs} s",
                    if recovered { "sequence loss recovered" } else { "losing export data" },
                    r.missing,
                    r.expected,
                    r.loss_ratio * 100.0
                ),
            ),
        };
        let severity = c.severity();
        Alert {
            id: alert_id,
            ts_ms: self.now_ms,
            ts: humantime::format_rfc3339_millis(
                std::time::UNIX_EPOCH + Duration::from_millis(self.now_ms),
            )
            .to_string(),
            site: self.site.to_string(),
            device: self.device.to_string(),
            detector: EXPORTER_DETECTOR.to_string(),
            model: ModelRef {
                name: "exporter-health".into(),
                version: "1".into(),
            },
            severity: severity.to_string(),
            score,
            threshold,
            subject: Subject::Exporter(ExporterSubject {
                exporter: self.exporter.to_string(),
                condition: c.as_str().to_string(),
                state: if recovered { "recovered" } else { "open" }.to_string(),
                silent_ms: r.silent_ms,
                loss_ratio: r.loss_ratio,
                missing: r.missing,
                expected: r.expected,
                window_secs,
            }),
            top_features: Vec::new(),
            suppressed_since_last: 0,
            summary: format!(
                "{severity} exporter {} {what} (incident {}, {})",
                self.exporter,
                open.id,
                if recovered {
                    format!("update {update}, recovered")
                } else {
                    "opened".to_string()
                }
            ),
            incident: Some(Incident {
                id: open.id,
                update,
                pattern: c.pattern().to_string(),
                initiator: self.exporter.to_string(),
                target: None,
                first_ms: open.first_ms,
                last_ms: self.now_ms,
                flows: 0,
                packets: 0,
                bytes: 0,
                ports_distinct: 0,
                ports: Vec::new(),
                max_score: open.max_score.max(score),
            }),
            rule: None,
        }
    }
}

#[cfg(test)]
mod tests;
