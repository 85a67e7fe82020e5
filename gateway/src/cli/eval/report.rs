//! What `netwarden eval` reports, as JSON (`--json`, for scripts) or as aligned tables.
//! Rates that cannot be computed are `null` in JSON and `n/a` in the tables.

use std::fmt::Write as _;

use serde::Serialize;

use super::detectors::EvalAlert;
use super::metrics::Confusion;
use super::replay::InputStats;

/// False alerts listed per path and detector at most (the count is always complete).
pub const FALSE_ALERT_SAMPLES: usize = 20;

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub dir: String,
    /// `params.json` as written by the lab (`null` when absent).
    pub params: Option<serde_json::Value>,
    /// How far outside a phase a flow may lie and still belong to it.
    pub slack_ms: u64,
    /// First start and last end in `labels.csv`.
    pub labelled_start_ms: u64,
    pub labelled_end_ms: u64,
    /// Hours of traffic the false-alert rate is per: `labelled_end_ms - labelled_start_ms`.
    pub benign_hours: f64,
    pub phases: usize,
    pub attack_phases: usize,
    pub results: Vec<PathResult>,
    pub targets: Targets,
}

#[derive(Debug, Clone, Serialize)]
pub struct PathResult {
    pub path: &'static str,
    pub file: String,
    pub input: InputStats,
    pub detector: &'static str,
    pub model: String,
    pub threshold: Option<f32>,
    /// The learning period, when the detector learnt its threshold on the run's lead-in:
    /// flows and alerts before its end are left out of every figure below.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub learning: Option<crate::records::learning::LearningStatus>,
    pub phases: Vec<PhaseOutcome>,
    pub detected_phases: usize,
    pub attack_phases: usize,
    pub alerts: AlertCounts,
    pub false_alerts_per_hour: Option<f64>,
    pub flows: FlowMetrics,
    /// The first [`FALSE_ALERT_SAMPLES`] false alerts, to see what cried wolf.
    pub false_alert_samples: Vec<EvalAlert>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PhaseOutcome {
    pub phase: String,
    pub kind: String,
    pub attackers: Vec<String>,
    pub victims: Vec<String>,
    pub start_ms: u64,
    pub end_ms: u64,
    pub detected: bool,
    /// Alerts naming an attacker of this phase as the source.
    pub alerts: u64,
    /// Alerts naming a victim of this phase as the source (during it).
    pub victim_alerts: u64,
    /// From the phase's start to the start of the first detecting alert's flow (s).
    pub first_alert_flow_s: Option<f64>,
    /// From the phase's start to when the daemon would have raised that alert (s): what the
    /// operator waits, export and meter timeouts included.
    pub first_alert_raised_s: Option<f64>,
    /// Flows labelled malicious for this phase, and those over the threshold.
    pub malicious_flows: u64,
    pub flagged_flows: u64,
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct AlertCounts {
    pub total: u64,
    /// Of `total`, alerts that update an incident opened earlier (not new alarms: an update
    /// that names an attacker counts as a detection, one that matches nothing is not counted
    /// as false).
    pub updates: u64,
    /// Naming an attacker during its phase.
    pub attacker: u64,
    /// Naming a victim during its phase (misattributed; not counted as false).
    pub victim: u64,
    /// Matching no phase by source and time.
    #[serde(rename = "false")]
    pub false_: u64,
    /// Updates of incidents matching no phase (in `updates`, not in `false`), so that
    /// `total = attacker + victim + false + false_updates`.
    pub false_updates: u64,
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct FlowMetrics {
    pub scored: u64,
    pub malicious: u64,
    pub benign: u64,
    pub over_threshold: u64,
    pub confusion: Confusion,
    pub roc_auc: Option<f64>,
    pub precision: Option<f64>,
    pub recall: Option<f64>,
    pub f1: Option<f64>,
    pub fpr: Option<f64>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Targets {
    pub min_phases: Option<usize>,
    pub max_false_per_hour: Option<f64>,
    /// Every path/detector that misses a target, in words; empty: all met.
    pub failures: Vec<String>,
    pub met: bool,
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "n/a".to_string(), |x| format!("{x:.digits$}"))
}

fn secs(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_string(), |x| format!("{x:.1}s"))
}

fn ips(v: &[String]) -> String {
    if v.is_empty() {
        "-".into()
    } else {
        v.join(";")
    }
}

/// Columns padded to their widest cell; `right[i]` right-aligns column `i` (numbers).
pub fn table(header: &[&str], right: &[bool], rows: &[Vec<String>]) -> String {
    let mut width: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in width.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let head: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&head).chain(rows) {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(&width).enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            let pad = w.saturating_sub(cell.chars().count());
            if right.get(i).copied().unwrap_or(false) {
                line.push_str(&" ".repeat(pad));
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.push_str(&" ".repeat(pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The human report.
pub fn human(r: &Report) -> String {
    let mut out = String::new();
    let seed = r
        .params
        .as_ref()
        .and_then(|p| p.get("seed"))
        .map(|s| format!(", seed {s}"))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "netwarden eval {}{seed}: {} phases ({} attacks) over {:.3} h of labelled traffic; a flow belongs to a phase when it overlaps it ±{:.1} s",
        r.dir,
        r.phases,
        r.attack_phases,
        r.benign_hours,
        r.slack_ms as f64 / 1000.0
    );
    for p in &r.results {
        let _ = writeln!(
            out,
            "\n{} / {} ({}, threshold {})\n  input: {}",
            p.path,
            p.detector,
            p.model,
            p.threshold
                .map_or_else(|| "none".into(), |t| format!("{t:.6}")),
            p.input.detail
        );
        if let Some(l) = &p.learning {
            if let Some(f) = &l.fitted {
                let _ = writeln!(
                    out,
                    "  learnt for {:.0} s of event time: threshold {:.6} ({}, {} samples, {} left out{}); figures below are after it",
                    f.window_end_ms.saturating_sub(l.start_ms.unwrap_or(0)) as f64 / 1000.0,
                    f.threshold,
                    f.method,
                    f.samples,
                    f.excluded_samples,
                    if f.excluded.is_empty() {
                        String::new()
                    } else {
                        format!(" from {}", f.excluded.join(" "))
                    }
                );
            }
        }
        let rows: Vec<Vec<String>> = p
            .phases
            .iter()
            .map(|ph| {
                vec![
                    ph.phase.clone(),
                    ph.kind.clone(),
                    ips(&ph.attackers),
                    ips(&ph.victims),
                    if ph.detected { "yes" } else { "NO" }.into(),
                    ph.alerts.to_string(),
                    ph.victim_alerts.to_string(),
                    secs(ph.first_alert_flow_s),
                    secs(ph.first_alert_raised_s),
                    format!("{}/{}", ph.flagged_flows, ph.malicious_flows),
                ]
            })
            .collect();
        let t = table(
            &[
                "phase",
                "kind",
                "attacker",
                "victim",
                "detected",
                "alerts",
                "victim-named",
                "1st alert: flow",
                "raised",
                "flows flagged",
            ],
            &[
                false, false, false, false, false, true, true, true, true, true,
            ],
            &rows,
        );
        for line in t.lines() {
            let _ = writeln!(out, "  {line}");
        }
        let a = &p.alerts;
        let _ = writeln!(
            out,
            "  alerts: {} ({} incident updates; {} name an attacker, {} a victim, {} false = {} per hour)",
            a.total,
            a.updates,
            a.attacker,
            a.victim,
            a.false_,
            opt(p.false_alerts_per_hour, 1)
        );
        let f = &p.flows;
        let _ = writeln!(
            out,
            "  flows: {} scored ({} malicious, {} benign), {} over the threshold: ROC-AUC {}, precision {}, recall {}, F1 {}, FPR {}",
            f.scored,
            f.malicious,
            f.benign,
            f.over_threshold,
            opt(f.roc_auc, 3),
            opt(f.precision, 3),
            opt(f.recall, 3),
            opt(f.f1, 3),
            opt(f.fpr, 3)
        );
    }
    let _ = writeln!(out, "\nsummary");
    let rows: Vec<Vec<String>> = r
        .results
        .iter()
        .map(|p| {
            vec![
                p.path.to_string(),
                p.detector.to_string(),
                format!("{}/{}", p.detected_phases, p.attack_phases),
                p.alerts.attacker.to_string(),
                p.alerts.victim.to_string(),
                p.alerts.false_.to_string(),
                opt(p.false_alerts_per_hour, 1),
                opt(p.flows.roc_auc, 3),
                opt(p.flows.precision, 3),
                opt(p.flows.recall, 3),
                opt(p.flows.f1, 3),
                opt(p.flows.fpr, 3),
            ]
        })
        .collect();
    let t = table(
        &[
            "path",
            "detector",
            "phases",
            "true alerts",
            "victim-named",
            "false",
            "false/h",
            "ROC-AUC",
            "precision",
            "recall",
            "F1",
            "FPR",
        ],
        &[
            false, false, true, true, true, true, true, true, true, true, true, true,
        ],
        &rows,
    );
    for line in t.lines() {
        let _ = writeln!(out, "  {line}");
    }
    let t = &r.targets;
    if t.min_phases.is_some() || t.max_false_per_hour.is_some() {
        if t.met {
            let _ = writeln!(out, "\ntargets met");
        } else {
            let _ = writeln!(out, "\ntargets NOT met:");
            for f in &t.failures {
                let _ = writeln!(out, "  {f}");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns() {
        let t = table(
            &["a", "num"],
            &[false, true],
            &[
                vec!["long name".into(), "1".into()],
                vec!["x".into(), "1234".into()],
            ],
        );
        assert_eq!(t, "a           num\nlong name     1\nx          1234\n");
    }

    #[test]
    fn missing_rates_print_as_na() {
        assert_eq!(opt(None, 3), "n/a");
        assert_eq!(opt(Some(0.12345), 3), "0.123");
        let f = FlowMetrics::default();
        let json = serde_json::to_value(f).expect("json");
        assert!(json["roc_auc"].is_null());
        assert_eq!(json["confusion"]["fn"], 0);
    }
}
