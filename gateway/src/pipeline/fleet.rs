//! Shadow, swap, watch and roll back, on the scoring thread (docs/fleet.md).
//!
//! A verified candidate ([`Candidate`]) scores every batch the active model scores, beside it,
//! without alerting. When its shadow period (event time) ends with finite outputs, a run time
//! within a factor of the active model's and an anomaly rate that is no explosion against the
//! active model's on the same flows, the two swap places: between two batches, on this thread,
//! so every record is scored by exactly one alerting model. The old model then keeps scoring
//! beside the new one for the watch period; NaN/inf or an anomaly rate far beyond the old
//! model's swaps them back (rollback). The figures go out as [`Outcome`]s.

use std::time::{Duration, Instant};

use crate::models::flow_scorer::{FlowRow, ROW};
use netwarden_firmware::Verdict;

use super::FlowPipeline;
use crate::models::fleet::{Candidate, Judgement, Outcome, Policy, Trial};
use crate::models::flow_scorer::FlowAe;
use crate::records::ModelRef;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// `other` is the candidate; the active model alerts.
    Shadow,
    /// `other` is the model that was active before; the promoted one alerts.
    Watch,
}

/// The second model on the thread and how it is doing.
#[derive(Debug)]
pub(super) struct Slot {
    phase: Phase,
    version: String,
    other: FlowAe,
    other_model: ModelRef,
    trial: Trial,
    reported: f64,
    scaled: Vec<FlowRow>,
    outputs: Vec<f32>,
}

impl FlowPipeline {
    /// Sets the shadow and watch rules.
    pub fn with_fleet_policy(mut self, policy: Policy) -> Self {
        self.fleet_policy = policy;
        self
    }

    /// Starts shadowing `c` (replacing any candidate still shadowing; a watch in progress is
    /// settled first: the promoted model stays).
    pub fn offer_candidate(&mut self, c: Candidate) {
        // The pipeline computes one feature set (pairing runs only for `flow-v2`), so a model
        // of the other set cannot shadow or replace the active one.
        if c.bundle.detector.set() != self.detector.set() {
            self.fleet_outcomes.push(Outcome::Rejected {
                reason: format!(
                    "its feature set {} is not the active model's {} (restart with it configured)",
                    c.bundle.detector.set().schema(),
                    self.detector.set().schema()
                ),
                version: c.version,
                figures: Trial::default(),
            });
            return;
        }
        let immediate = c.immediate;
        if let Some(old) = self.fleet.take() {
            let outcome = match old.phase {
                Phase::Watch => Outcome::Settled {
                    version: old.version,
                    figures: old.trial,
                },
                Phase::Shadow => Outcome::Rejected {
                    version: old.version,
                    reason: format!("superseded by {} before its shadow period ended", c.version),
                    figures: old.trial,
                },
            };
            self.fleet_outcomes.push(outcome);
        }
        if immediate {
            let m = &c.bundle.manifest;
            let model = ModelRef {
                name: m.name.clone(),
                version: m.version.clone(),
            };
            self.detector = c.bundle.detector;
            self.model_name = format!("{} {}", model.name, model.version);
            self.alerter.set_model(model.clone());
            self.alerter_model = model;
            self.fleet_outcomes
                .push(Outcome::Activated { version: c.version });
            return;
        }
        let m = &c.bundle.manifest;
        let batch = c.bundle.detector.batch_size();
        self.fleet_outcomes.push(Outcome::Shadowing {
            version: c.version.clone(),
        });
        self.fleet = Some(Slot {
            phase: Phase::Shadow,
            other_model: ModelRef {
                name: m.name.clone(),
                version: m.version.clone(),
            },
            version: c.version,
            other: c.bundle.detector,
            trial: Trial::default(),
            reported: 0.0,
            scaled: Vec::with_capacity(batch),
            outputs: Vec::with_capacity(batch * ROW),
        });
    }

    /// `name version` of the model that alerts now (changes with a swap).
    pub fn model_name(&self) -> &str {
        &self.model_name
    }

    /// What happened to candidates since the last call.
    pub fn take_fleet_outcomes(&mut self) -> Vec<Outcome> {
        std::mem::take(&mut self.fleet_outcomes)
    }

    /// The version a candidate is shadowing or being watched under, if any.
    pub fn fleet_phase(&self) -> Option<(&str, &'static str)> {
        self.fleet.as_ref().map(|s| {
            (
                s.version.as_str(),
                match s.phase {
                    Phase::Shadow => "shadowing",
                    Phase::Watch => "watching",
                },
            )
        })
    }

    /// Scores the batch just scored by the active model (`pending`, with its errors and flags
    /// in `self.active_scores`) with the second model, then judges. Called by `flush` before
    /// the batch is cleared.
    pub(super) fn fleet_batch(&mut self, active_time: Duration) {
        let Some(slot) = self.fleet.as_mut() else {
            return;
        };
        slot.scaled.clear();
        slot.scaled.extend(
            self.pending
                .iter()
                .map(|p| slot.other.scaler().scale(&p.raw)),
        );
        slot.outputs.clear();
        let started = Instant::now();
        let result = slot.other.run_scaled(&slot.scaled, &mut slot.outputs);
        let other_time = started.elapsed().as_micros() as u64;
        let active_time = active_time.as_micros() as u64;
        let m = &self.metrics;
        m.add(&m.fleet_shadow_scored, self.pending.len() as u64);
        let judgement = match result {
            Err(e) => Judgement::Failed(format!("the model failed to run: {e}")),
            Ok(()) => {
                let (threshold, high) = (slot.other.threshold, slot.other.high_ratio);
                for ((p, out), &(active_error, active_anomalous)) in self
                    .pending
                    .iter()
                    .zip(slot.outputs.chunks(slot.other.width()))
                    .zip(&self.active_scores)
                {
                    let scaled = slot.other.scaler().scale(&p.raw);
                    let width = slot.other.width();
                    let v = Verdict::judge_first(&scaled, width, out, threshold, high);
                    let other_anomalous = v.severity.is_some();
                    let ev = p.flow.last_ms;
                    match slot.phase {
                        Phase::Shadow => {
                            slot.trial
                                .observe(ev, active_anomalous, v.error, other_anomalous)
                        }
                        Phase::Watch => {
                            slot.trial
                                .observe(ev, other_anomalous, active_error, active_anomalous)
                        }
                    }
                }
                match slot.phase {
                    Phase::Shadow => slot.trial.observe_batch(active_time, other_time),
                    Phase::Watch => slot.trial.observe_batch(other_time, active_time),
                }
                let period = match slot.phase {
                    Phase::Shadow => self.fleet_policy.shadow,
                    Phase::Watch => self.fleet_policy.watch,
                };
                slot.trial.judge(&self.fleet_policy, period)
            }
        };
        self.fleet_judged(judgement);
    }

    fn fleet_judged(&mut self, judgement: Judgement) {
        let Some(slot) = self.fleet.as_mut() else {
            return;
        };
        match (judgement, slot.phase) {
            (Judgement::Running, phase) => {
                let period = match phase {
                    Phase::Shadow => self.fleet_policy.shadow,
                    Phase::Watch => self.fleet_policy.watch,
                };
                let share = (slot.trial.elapsed_ms() as f64 / period.as_millis().max(1) as f64)
                    .min(slot.trial.records as f64 / self.fleet_policy.min_records.max(1) as f64)
                    .min(1.0);
                if share - slot.reported >= 0.1 {
                    slot.reported = share;
                    self.fleet_outcomes.push(Outcome::Progress {
                        version: slot.version.clone(),
                        share,
                    });
                }
            }
            (Judgement::Passed, Phase::Shadow) => {
                let figures = std::mem::take(&mut slot.trial);
                slot.phase = Phase::Watch;
                slot.reported = 0.0;
                let version = slot.version.clone();
                self.swap_models();
                self.metrics.add(&self.metrics.fleet_promotions, 1);
                self.fleet_outcomes
                    .push(Outcome::Promoted { version, figures });
            }
            (Judgement::Failed(reason), Phase::Shadow) => {
                let Some(slot) = self.fleet.take() else {
                    return;
                };
                self.fleet_outcomes.push(Outcome::Rejected {
                    version: slot.version,
                    reason,
                    figures: slot.trial,
                });
            }
            (Judgement::Failed(reason), Phase::Watch) => {
                self.swap_models();
                self.metrics.add(&self.metrics.fleet_rollbacks, 1);
                let Some(slot) = self.fleet.take() else {
                    return;
                };
                self.fleet_outcomes.push(Outcome::RolledBack {
                    version: slot.version,
                    reason,
                    figures: slot.trial,
                });
            }
            (Judgement::Passed, Phase::Watch) => {
                let Some(slot) = self.fleet.take() else {
                    return;
                };
                self.fleet_outcomes.push(Outcome::Settled {
                    version: slot.version,
                    figures: slot.trial,
                });
            }
        }
    }

    /// The active model and the slot's model trade places (between batches).
    fn swap_models(&mut self) {
        let Some(slot) = self.fleet.as_mut() else {
            return;
        };
        std::mem::swap(&mut self.detector, &mut slot.other);
        let now_active = slot.other_model.clone();
        slot.other_model = self.alerter_model.clone();
        self.model_name = format!("{} {}", now_active.name, now_active.version);
        self.alerter.set_model(now_active.clone());
        self.alerter_model = now_active;
        // What was learnt (scores, a fitted threshold) belongs to the model that left.
        let shipped = self.detector.threshold;
        if let Some(l) = self.learner.as_mut() {
            if l.bind_model(&self.model_name, shipped) {
                tracing::info!(model = %self.model_name, "Active model changed; learning this site afresh for it");
                self.learning_changed = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};
    use std::sync::atomic::Ordering;
    use std::sync::Arc;
    use std::time::Duration;

    use netwarden_firmware::FlowRecord;
    use sha2::Digest;

    use super::*;
    use crate::metrics::Metrics;
    use crate::models::manifest::check_flow_manifest;
    use crate::models::{Bundle, SignatureStatus};
    use crate::records::FlowOrigin;

    const LATE_NAN: &[u8] = include_bytes!("../../../tests/data/fleet/late-nan.onnx");
    /// The `flow-v1` bundle (the built-in one before `flow-v2`): the fleet's test models
    /// (`late-nan.onnx` among them) read its 8 values.
    const V1_MANIFEST: &str = include_str!("../../../models/bundles/flow-ae/manifest.json");
    const V1_MODEL: &[u8] = include_bytes!("../../../models/bundles/flow-ae/model.onnx");

    fn policy(watch_secs: u64) -> Policy {
        Policy {
            shadow: Duration::ZERO,
            watch: Duration::from_secs(watch_secs),
            min_records: 100,
            latency_factor: 1_000.0,
            ..Policy::default()
        }
    }

    fn pipeline(watch_secs: u64) -> (FlowPipeline, Arc<Metrics>) {
        let metrics = Arc::new(Metrics::default());
        let bundle = Bundle::from_parts(V1_MANIFEST, V1_MODEL, "t".into(), 64).expect("flow-v1");
        let p = FlowPipeline::new(bundle, "s", "d", Duration::from_secs(60), metrics.clone())
            .with_fleet_policy(policy(watch_secs));
        (p, metrics)
    }

    /// The built-in manifest around another model, without the golden check (a model made
    /// to fail later must still load here).
    fn candidate(model: &'static [u8], version: &str) -> Candidate {
        let mut m: serde_json::Value = serde_json::from_str(V1_MANIFEST).expect("json");
        m["model"]["sha256"] = crate::models::fleet::wire::hex(&sha2::Sha256::digest(model)).into();
        m["version"] = version.into();
        let text = m.to_string();
        let (manifest, scaler, set) = check_flow_manifest(&text, model).expect("manifest");
        let detector = FlowAe::load(model, &manifest, scaler, set, 64).expect("tract");
        Candidate {
            version: version.into(),
            bundle: Bundle {
                manifest,
                source: "test".into(),
                detector,
                signature: SignatureStatus::NotChecked,
            },
            immediate: false,
        }
    }

    fn feed(p: &mut FlowPipeline, n: u64, bytes: u64) {
        let origin = FlowOrigin::Exporter(([127, 0, 0, 1], 2055).into());
        for i in 0..n {
            let flow = FlowRecord {
                src_addr: IpAddr::V4(Ipv4Addr::new(10, 0, (i / 200) as u8, (i % 200) as u8)),
                dst_addr: IpAddr::V4(Ipv4Addr::new(10, 1, 0, 1)),
                src_port: 40_000 + (i % 1000) as u16,
                dst_port: 443,
                protocol: 6,
                packets: 20,
                bytes,
                first_ms: 1_000_000 + i * 100,
                last_ms: 1_000_500 + i * 100,
                tcp_flags: 0x1b,
            };
            p.ingest_record(origin.clone(), flow, &mut |_| {});
        }
        p.flush(&mut |_| {});
    }

    #[test]
    fn a_candidate_is_promoted_between_batches_and_every_record_scored_once() {
        let (mut p, metrics) = pipeline(0);
        feed(&mut p, 70, 4_000);
        p.offer_candidate(candidate(V1_MODEL, "2026.1.1"));
        feed(&mut p, 400, 4_000);
        let outcomes = p.take_fleet_outcomes();
        let kinds: Vec<&str> = outcomes
            .iter()
            .filter_map(|o| match o {
                Outcome::Shadowing { .. } => Some("shadowing"),
                Outcome::Promoted { .. } => Some("promoted"),
                Outcome::Settled { .. } => Some("settled"),
                Outcome::Progress { .. } => None,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(kinds, ["shadowing", "promoted", "settled"]);
        assert_eq!(
            metrics.flows_scored.load(Ordering::Relaxed),
            470,
            "each record once"
        );
        assert!(metrics.fleet_shadow_scored.load(Ordering::Relaxed) >= 200);
        assert_eq!(p.model_name(), "flow-ae 2026.1.1");
        assert!(p.fleet_phase().is_none());
    }

    #[test]
    fn a_model_that_turns_bad_after_promotion_is_rolled_back() {
        let (mut p, metrics) = pipeline(3_600);
        p.offer_candidate(candidate(LATE_NAN, "2026.1.2"));
        feed(&mut p, 200, 4_000);
        assert_eq!(p.model_name(), "flow-ae 2026.1.2");
        assert_eq!(p.fleet_phase(), Some(("2026.1.2", "watching")));
        // About 4 GB: the model's NaN branch.
        feed(&mut p, 1, 4_000_000_000);
        let rolled = p.take_fleet_outcomes().into_iter().find_map(|o| match o {
            Outcome::RolledBack {
                reason, figures, ..
            } => Some((reason, figures)),
            _ => None,
        });
        let (reason, figures) = rolled.expect("rolled back");
        assert!(reason.contains("1 of"), "{reason}");
        assert_eq!(figures.other_nonfinite, 1);
        assert_eq!(
            p.model_name(),
            "flow-ae 2026.11.23.1",
            "the old model alerts again"
        );
        assert_eq!(metrics.fleet_rollbacks.load(Ordering::Relaxed), 1);
        assert_eq!(metrics.flows_scored.load(Ordering::Relaxed), 201);
    }

    #[test]
    fn an_operator_activation_swaps_at_once_and_ends_a_shadow() {
        let (mut p, _) = pipeline(0);
        p.offer_candidate(candidate(LATE_NAN, "2026.1.3"));
        let mut c = candidate(V1_MODEL, "2026.1.4");
        c.immediate = true;
        p.offer_candidate(c);
        let o = p.take_fleet_outcomes();
        assert!(
            matches!(&o[1], Outcome::Rejected { reason, .. } if reason.contains("superseded")),
            "{o:?}"
        );
        assert!(
            matches!(&o[2], Outcome::Activated { version } if version == "2026.1.4"),
            "{o:?}"
        );
        assert_eq!(p.model_name(), "flow-ae 2026.1.4");
        assert!(p.fleet_phase().is_none());
    }

    #[test]
    fn a_candidate_of_the_other_feature_set_is_rejected_at_once() {
        let (mut p, _) = pipeline(0);
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/bundles/flow-ae-v2");
        let bundle =
            Bundle::load_dir(&dir, 64, &crate::models::Trust::none()).expect("flow-v2 bundle");
        p.offer_candidate(Candidate {
            version: "2026.1.9".into(),
            bundle,
            immediate: true,
        });
        match p.take_fleet_outcomes().as_slice() {
            [Outcome::Rejected {
                version, reason, ..
            }] => {
                assert_eq!(version, "2026.1.9");
                assert!(reason.contains("flow-v2"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        assert!(p.fleet_phase().is_none());
        assert!(p.model_name().starts_with("flow-ae "), "{}", p.model_name());
    }
}
