//! `netwarden eval DIR`: replays a lab run (tests/lab, docs/evaluation.md) through the daemon's
//! own code, offline and in event time, and measures what an operator would feel: which attack
//! phases raised an alert naming the attacker, how soon, how many alerts blamed the victim,
//! how many were false (per hour), and how well every flow's score separates malicious from
//! benign flows.
//!
//! - [`labels`]: `labels.csv` and `params.json`;
//! - [`replay`]: the NetFlow export paths and the capture path, as the pipeline receives them;
//! - [`detectors`]: every configured detector (today the flow autoencoder);
//! - [`metrics`]: the arithmetic (phase matching, ROC-AUC, rates), pure and unit-tested;
//! - [`report`]: tables and JSON.
//!
//! Exit status: 0 when the given targets are met (or none were given), 1 when not, 2 when the
//! directory cannot be evaluated (a missing file, bad labels, a broken capture or bundle).

pub mod arp;
pub mod detectors;
pub mod graph;
pub mod labels;
pub mod metrics;
pub mod replay;
pub mod report;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use netwarden_firmware::meter::NFSTREAM_COLUMNS;

use crate::config::{Config, Overrides};
use detectors::{Detector, DetectorRun, EvalAlert, FlowAeDetector};
use labels::{Label, Phase};
use metrics::{AlertClass, Confusion};
use replay::{PathInput, PathKind};
use report::{AlertCounts, FlowMetrics, PathResult, PhaseOutcome, Report, Targets};

/// `netwarden eval` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct EvalArgs {
    /// A lab run directory: capture.pcap, netflow-ipfix.pcap, netflow-v9.pcap, labels.csv,
    /// params.json.
    pub dir: PathBuf,
    /// JSON on standard output instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Target: at least this many attack phases detected on every path, by any detector
    /// (exit 1 if not).
    #[arg(long, value_name = "N")]
    pub min_phases: Option<usize>,
    /// Target: at most this many false alerts per hour on every path, all detectors together
    /// (exit 1 if not).
    #[arg(long, value_name = "X")]
    pub max_false_per_hour: Option<f64>,
    /// Which paths to replay [default: all three].
    #[arg(long, value_enum, value_delimiter = ',', num_args = 1..)]
    pub paths: Vec<PathKind>,
    /// A flow model bundle replacing the configured (or built-in) one.
    #[arg(long, value_name = "DIR")]
    pub flow_model: Option<PathBuf>,
    /// A temporal graph bundle (`graph_tgat`) replacing the built-in one.
    #[arg(long, value_name = "DIR")]
    pub graph_model: Option<PathBuf>,
    /// Leave the temporal graph detector out.
    #[arg(long)]
    pub no_graph: bool,
    /// The daemon's configuration (detector, alerting and capture settings are used).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// How far (ms) outside a phase a flow may lie and still belong to it: exporters' times
    /// are coarse (NetFlow v9 headers carry whole seconds). The lab's per-flow labels use 1 s.
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    pub slack_ms: u64,
    /// Also write the capture path's metered flows with NFStream's columns (src_ip, dst_ip,
    /// then the numeric columns) to this CSV, for the seed baseline (models/).
    #[arg(long, value_name = "FILE")]
    pub write_nfstream: Option<PathBuf>,
    /// Learn each detector's threshold on the run's benign lead-in (from the first label to
    /// the first attack, less the slack) before judging; figures cover what follows it.
    #[arg(long, conflicts_with = "learn")]
    pub learn_lead_in: bool,
    /// Learn each detector's threshold for this span of event time first (e.g. 3m).
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub learn: Option<std::time::Duration>,
    /// Judge only what follows the benign lead-in, with the bundle's own threshold (a site
    /// model trained on the lead-in's samples: `--flow-model BUNDLE --after-lead-in`).
    #[arg(long, conflicts_with_all = ["learn", "learn_lead_in"])]
    pub after_lead_in: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("{0} is not a directory")]
    NotADir(PathBuf),
    #[error("{path} is missing (a lab run has {wanted})")]
    Missing { path: PathBuf, wanted: String },
    #[error(transparent)]
    Labels(#[from] labels::LabelsError),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Replay(#[from] replay::ReplayError),
    #[error(transparent)]
    Bundle(#[from] crate::models::LoadError),
    #[error("cannot write {path}: {error}")]
    Write {
        path: PathBuf,
        error: std::io::Error,
    },
}

/// Runs `netwarden eval`, prints the report, returns the exit status. Errors are printed here,
/// because they exit 2, not 1; the `Err` of the signature is never used.
pub fn execute(args: EvalArgs) -> anyhow::Result<ExitCode> {
    Ok(report_and_exit(&args))
}

fn report_and_exit(args: &EvalArgs) -> ExitCode {
    match run(args) {
        Ok(report) => {
            let text = if args.json {
                serde_json::to_string_pretty(&report)
                    .map(|s| s + "\n")
                    .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}\n"))
            } else {
                report::human(&report)
            };
            let mut out = std::io::stdout().lock();
            if out.write_all(text.as_bytes()).and(out.flush()).is_err() {
                return ExitCode::from(2);
            }
            if report.targets.met {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("netwarden eval: {e}");
            ExitCode::from(2)
        }
    }
}

/// Evaluates the directory; the report, or why it could not be made.
pub fn run(args: &EvalArgs) -> Result<Report, EvalError> {
    let dir = &args.dir;
    if !dir.is_dir() {
        return Err(EvalError::NotADir(dir.clone()));
    }
    let mut paths = if args.paths.is_empty() {
        PathKind::ALL.to_vec()
    } else {
        args.paths.clone()
    };
    paths.sort();
    paths.dedup();
    let layout = "capture.pcap, netflow-ipfix.pcap, netflow-v9.pcap, labels.csv, params.json";
    for name in std::iter::once("labels.csv").chain(paths.iter().map(|p| p.file())) {
        let path = dir.join(name);
        if !path.is_file() {
            return Err(EvalError::Missing {
                path,
                wanted: layout.into(),
            });
        }
    }
    let phases = labels::read_labels(&dir.join("labels.csv"))?;
    let params = labels::read_params(&dir.join("params.json"))?;
    let cfg = Config::load(args.config.as_deref(), &Overrides::default())?;
    let flow_ae = FlowAeDetector {
        model: args
            .flow_model
            .clone()
            .or_else(|| cfg.detector.flow_model.clone()),
        batch_size: cfg.detector.batch_size,
        trust: cfg.trust.clone(),
        dedupe: cfg.alerting.dedupe_window,
        learn: learn_period(args, &phases),
        pair_wait: cfg.detector.pair_wait,
    };
    // Refuse a broken bundle before reading any capture.
    flow_ae.load()?;
    let mut detectors: Vec<Box<dyn Detector>> = vec![
        Box::new(flow_ae),
        Box::new(arp::ArpRulesDetector {
            rules: cfg.arp.rules.clone(),
        }),
    ];
    if !args.no_graph {
        let graph = graph::GraphDetector {
            model: args.graph_model.clone(),
            batch_size: cfg.detector.batch_size,
            trust: cfg.trust.clone(),
            dedupe: cfg.alerting.dedupe_window,
            learn: learn_period(args, &phases),
        };
        graph.load()?;
        detectors.push(Box::new(graph));
    }

    let start = phases.iter().map(|p| p.start_ms).min().unwrap_or(0);
    let end = phases.iter().map(|p| p.end_ms).max().unwrap_or(0);
    let labelled_ms = end.saturating_sub(start);
    let judge_from_ms = args
        .after_lead_in
        .then(|| lead_in_end(args, &phases))
        .flatten();
    let mut results = Vec::new();
    for kind in paths {
        let keep = kind == PathKind::Capture && args.write_nfstream.is_some();
        let input = replay::read_path(dir, kind, cfg.capture.timeouts, cfg.arp.meter, keep)?;
        let mut scored_by: Vec<(&'static str, DetectorRun)> = Vec::new();
        for d in detectors.iter_mut() {
            if !d.paths().contains(&kind) {
                continue;
            }
            let run = d.run(&input)?;
            results.push(evaluate(
                &phases,
                &input,
                d.name(),
                &run,
                args.slack_ms,
                labelled_ms,
                judge_from_ms,
            ));
            if keep && !run.scores.is_empty() {
                scored_by.push((d.name(), run));
            }
        }
        if let (true, Some(out)) = (keep, &args.write_nfstream) {
            write_nfstream(out, &input, &scored_by)?;
        }
    }
    let targets = targets(&results, args.min_phases, args.max_false_per_hour);
    Ok(Report {
        dir: dir.display().to_string(),
        params,
        slack_ms: args.slack_ms,
        labelled_start_ms: start,
        labelled_end_ms: end,
        benign_hours: labelled_ms as f64 / 3_600_000.0,
        phases: phases.len(),
        attack_phases: phases
            .iter()
            .filter(|p| p.label == Label::Malicious)
            .count(),
        results,
        targets,
    })
}

/// The learning window `--learn` or `--learn-lead-in` asks for: from the first label on.
fn learn_period(args: &EvalArgs, phases: &[Phase]) -> Option<(u64, std::time::Duration)> {
    let start = phases.iter().map(|p| p.start_ms).min()?;
    if !args.learn_lead_in {
        return args.learn.map(|d| (start, d));
    }
    let attack = phases
        .iter()
        .filter(|p| p.label == Label::Malicious)
        .map(|p| p.start_ms)
        .min()?;
    let ms = attack.saturating_sub(args.slack_ms).saturating_sub(start);
    Some((start, std::time::Duration::from_millis(ms)))
}

/// Where `--after-lead-in` starts judging: the end of the window `--learn-lead-in` learns.
fn lead_in_end(args: &EvalArgs, phases: &[Phase]) -> Option<u64> {
    let (start, span) = learn_period(
        &EvalArgs {
            learn_lead_in: true,
            ..args.clone()
        },
        phases,
    )?;
    Some(start.saturating_add(span.as_millis() as u64))
}

/// Scores one detector's run on one path against the labels (only from `judge_from_ms` on
/// when given, as after a learning period).
pub fn evaluate(
    phases: &[Phase],
    input: &PathInput,
    detector: &'static str,
    run: &DetectorRun,
    slack_ms: u64,
    labelled_ms: u64,
    judge_from_ms: Option<u64>,
) -> PathResult {
    let mut outcomes: Vec<PhaseOutcome> = phases
        .iter()
        .map(|p| PhaseOutcome {
            phase: p.phase.clone(),
            kind: p.kind.clone(),
            attackers: p.attackers.iter().map(|a| a.to_string()).collect(),
            victims: p.victims.iter().map(|a| a.to_string()).collect(),
            start_ms: p.start_ms,
            end_ms: p.end_ms,
            detected: false,
            alerts: 0,
            victim_alerts: 0,
            first_alert_flow_s: None,
            first_alert_raised_s: None,
            malicious_flows: 0,
            flagged_flows: 0,
        })
        .collect();
    // After a learning period only what follows it counts.
    let learnt_ms = run
        .learning
        .as_ref()
        .and_then(|l| l.fitted.as_ref())
        .map(|f| f.window_end_ms)
        .or(judge_from_ms);
    let after = |t: u64| learnt_ms.is_none_or(|end| t >= end);
    let start_ms = phases.iter().map(|p| p.start_ms).min().unwrap_or(0);
    let labelled_ms = match learnt_ms {
        Some(end) => labelled_ms.saturating_sub(end.saturating_sub(start_ms)),
        None => labelled_ms,
    };
    let mut counts = AlertCounts::default();
    let mut false_samples: Vec<EvalAlert> = Vec::new();
    for a in run.alerts.iter().filter(|a| after(a.flow_last_ms)) {
        counts.total += 1;
        counts.updates += u64::from(a.update > 0);
        let class = a.src.map_or(AlertClass::False, |src| {
            let span = metrics::Span {
                first_ms: a.flow_first_ms,
                last_ms: a.flow_last_ms,
            };
            match a.incident {
                Some(_) => metrics::classify_incident(phases, src, a.dst, span, slack_ms),
                None => metrics::classify_alert(phases, src, span, slack_ms),
            }
        });
        match class {
            AlertClass::Attacker(i) => {
                counts.attacker += 1;
                let o = &mut outcomes[i];
                o.alerts += 1;
                o.detected = true;
                let since = |t: u64| t.saturating_sub(phases[i].start_ms) as f64 / 1000.0;
                // Alerts come in the order they were raised: the first is the earliest.
                if o.first_alert_raised_s.is_none() {
                    o.first_alert_raised_s = Some(since(a.raised_ms));
                    o.first_alert_flow_s = Some(since(a.flow_first_ms));
                }
            }
            AlertClass::Victim(i) => {
                counts.victim += 1;
                outcomes[i].victim_alerts += 1;
            }
            AlertClass::False if a.update > 0 => counts.false_updates += 1,
            AlertClass::False => {
                counts.false_ += 1;
                if false_samples.len() < report::FALSE_ALERT_SAMPLES {
                    false_samples.push(a.clone());
                }
            }
        }
    }
    let mut confusion = Confusion::default();
    let mut ranked = Vec::with_capacity(run.scores.len());
    for s in run.scores.iter().filter(|s| after(s.flow.last_ms)) {
        let f = &s.flow;
        let span = metrics::Span {
            first_ms: f.first_ms,
            last_ms: f.last_ms,
        };
        let phase = metrics::malicious_phase(phases, f.src_addr, f.dst_addr, span, slack_ms);
        if let Some(i) = phase {
            outcomes[i].malicious_flows += 1;
            outcomes[i].flagged_flows += u64::from(s.anomalous);
        }
        confusion.add(s.anomalous, phase.is_some());
        ranked.push((s.error, phase.is_some()));
    }
    let flows = FlowMetrics {
        scored: confusion.tp + confusion.fn_ + confusion.tn + confusion.fp,
        malicious: confusion.tp + confusion.fn_,
        benign: confusion.tn + confusion.fp,
        over_threshold: confusion.tp + confusion.fp,
        confusion,
        roc_auc: metrics::roc_auc(&ranked),
        precision: confusion.precision(),
        recall: confusion.recall(),
        f1: confusion.f1(),
        fpr: confusion.fpr(),
    };
    let attack: Vec<PhaseOutcome> = phases
        .iter()
        .zip(outcomes)
        .filter(|(p, _)| p.label == Label::Malicious)
        .map(|(_, o)| o)
        .collect();
    PathResult {
        path: input.kind.name(),
        file: input.file.display().to_string(),
        input: input.stats.clone(),
        detector,
        model: run.model.clone(),
        threshold: run.threshold,
        learning: run.learning.clone(),
        detected_phases: attack.iter().filter(|o| o.detected).count(),
        attack_phases: attack.len(),
        phases: attack,
        alerts: counts,
        false_alerts_per_hour: metrics::per_hour(counts.false_, labelled_ms),
        flows,
        false_alert_samples: false_samples,
    }
}

/// The targets hold per path for all detectors together, as the daemon runs them all: a phase
/// counts as detected when any detector caught it, and the false alerts of every detector add
/// up (the ARP rules alone detect only ARP spoofing, and should not fail `--min-phases`).
fn targets(
    results: &[PathResult],
    min_phases: Option<usize>,
    max_false_per_hour: Option<f64>,
) -> Targets {
    let mut failures = Vec::new();
    let mut paths: Vec<&str> = results.iter().map(|r| r.path).collect();
    paths.dedup();
    for path in paths {
        let on_path: Vec<&PathResult> = results.iter().filter(|r| r.path == path).collect();
        let names = on_path
            .iter()
            .map(|r| r.detector)
            .collect::<Vec<_>>()
            .join(" + ");
        if let Some(n) = min_phases {
            let mut detected: Vec<&str> = on_path
                .iter()
                .flat_map(|r| r.phases.iter().filter(|o| o.detected))
                .map(|o| o.phase.as_str())
                .collect();
            detected.sort_unstable();
            detected.dedup();
            let attack = on_path.first().map_or(0, |r| r.attack_phases);
            if detected.len() < n {
                failures.push(format!(
                    "{path} / {names}: {} of {attack} attack phases detected, --min-phases {n}",
                    detected.len()
                ));
            }
        }
        if let Some(x) = max_false_per_hour {
            let count: u64 = on_path.iter().map(|r| r.alerts.false_).sum();
            let rate = on_path
                .iter()
                .filter_map(|r| r.false_alerts_per_hour)
                .reduce(|a, b| a + b);
            let ok = match rate {
                Some(rate) => rate <= x,
                None => count == 0,
            };
            if !ok {
                failures.push(format!(
                    "{path} / {names}: {count} false alerts ({} per hour), --max-false-per-hour {x}",
                    rate.map_or_else(|| "n/a".into(), |v| format!("{v:.1}"))
                ));
            }
        }
    }
    Targets {
        min_phases,
        max_false_per_hour,
        met: failures.is_empty(),
        failures,
    }
}

/// `--write-nfstream`: the metered bidirectional flows of the capture path, one per line, with
/// each scoring detector's verdict on the flow (`<detector>_error`: the larger error of its one
/// or two records; `<detector>_anomalous`: 1 when either record was over the threshold), so
/// the seed baseline can be compared on exactly the same flows.
fn write_nfstream(
    path: &Path,
    input: &PathInput,
    scored_by: &[(&'static str, DetectorRun)],
) -> Result<(), EvalError> {
    use std::collections::HashMap;
    use std::fmt::Write as _;
    type Key = (std::net::IpAddr, std::net::IpAddr, u16, u16, u8, u64, u64);
    let key = |r: &netwarden_firmware::FlowRecord| -> Key {
        (
            r.src_addr, r.dst_addr, r.src_port, r.dst_port, r.protocol, r.first_ms, r.last_ms,
        )
    };
    let verdicts: Vec<HashMap<Key, (f32, bool)>> = scored_by
        .iter()
        .map(|(_, run)| {
            run.scores
                .iter()
                .map(|s| (key(&s.flow), (s.error, s.anomalous)))
                .collect()
        })
        .collect();
    let werr = |error| EvalError::Write {
        path: path.to_path_buf(),
        error,
    };
    let file = std::fs::File::create(path).map_err(werr)?;
    let mut out = std::io::BufWriter::new(file);
    let mut line = String::from("src_ip,dst_ip");
    for c in NFSTREAM_COLUMNS {
        line.push(',');
        line.push_str(c);
    }
    for (name, _) in scored_by {
        let _ = write!(line, ",{name}_error,{name}_anomalous");
    }
    writeln!(out, "{line}").map_err(werr)?;
    for f in &input.biflows {
        line.clear();
        let _ = write!(line, "{},{}", f.src_addr, f.dst_addr);
        for v in f.nfstream_values() {
            let _ = write!(line, ",{v}");
        }
        let (fwd, rev) = f.records();
        for v in &verdicts {
            let mut error = None::<f32>;
            let mut anomalous = false;
            for r in std::iter::once(fwd).chain(rev) {
                if let Some(&(e, a)) = v.get(&key(&r)) {
                    error = Some(error.map_or(e, |x| x.max(e)));
                    anomalous |= a;
                }
            }
            match error {
                Some(e) => {
                    let _ = write!(line, ",{e},{}", u8::from(anomalous));
                }
                // Not scored (a model failure): empty cells, never a made-up score.
                None => line.push_str(",,"),
            }
        }
        writeln!(out, "{line}").map_err(werr)?;
    }
    out.flush().map_err(werr)
}
