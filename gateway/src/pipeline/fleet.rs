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

use netwarden_firmware::features::FLOW_WIDTH;
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
    scaled: Vec<[f32; FLOW_WIDTH]>,
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
            outputs: Vec::with_capacity(batch * FLOW_WIDTH),
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
                    .zip(slot.outputs.chunks(FLOW_WIDTH))
                    .zip(&self.active_scores)
                {
                    let scaled = slot.other.scaler().scale(&p.raw);
                    let v = Verdict::<FLOW_WIDTH>::judge(&scaled, out, threshold, high);
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
    }
}
