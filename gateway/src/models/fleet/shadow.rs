//! The figures a candidate model is judged by, beside the model it would replace, on the same
//! records: during the shadow period (the candidate scores without alerting) and the watch
//! period after promotion (the old model scores beside the new one). No I/O, no clock: the
//! period is in event time, the records' own `last_ms`.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// When a candidate passes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    /// Event time a candidate shadows the active model.
    pub shadow: Duration,
    /// Event time the old model keeps scoring beside a promoted one.
    pub watch: Duration,
    /// Records to have scored before a period can end.
    pub min_records: u64,
    /// Candidate run time may be at most this many times the active model's.
    pub latency_factor: f64,
    /// Candidate anomaly rate may be at most this many times the active model's (an active
    /// rate below `rate_floor` counts as `rate_floor`), and never more than halfway from the
    /// active rate to 100%.
    pub rate_factor: f64,
    pub rate_floor: f64,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            shadow: Duration::from_secs(300),
            watch: Duration::from_secs(300),
            min_records: 200,
            latency_factor: 4.0,
            rate_factor: 5.0,
            rate_floor: 0.01,
        }
    }
}

/// Two models on the same records: `base` is the one that alerts, `other` the one beside it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Trial {
    pub records: u64,
    pub base_anomalies: u64,
    pub other_anomalies: u64,
    /// Records whose score from `other` was NaN or infinite.
    pub other_nonfinite: u64,
    pub base_micros: u64,
    pub other_micros: u64,
    pub first_event_ms: Option<u64>,
    pub last_event_ms: u64,
    /// Batches seen; the first one's run times are left out (a fresh tract plan's first run
    /// is slow).
    #[serde(default)]
    pub batches: u64,
}

/// How a trial stands.
#[derive(Debug, Clone, PartialEq)]
pub enum Judgement {
    Running,
    Passed,
    Failed(String),
}

impl Trial {
    pub fn observe_batch(&mut self, base_micros: u64, other_micros: u64) {
        self.batches += 1;
        if self.batches > 1 {
            self.base_micros += base_micros;
            self.other_micros += other_micros;
        }
    }

    pub fn observe(
        &mut self,
        event_ms: u64,
        base_anomalous: bool,
        other_error: f32,
        other_anomalous: bool,
    ) {
        self.records += 1;
        self.first_event_ms.get_or_insert(event_ms);
        self.last_event_ms = self.last_event_ms.max(event_ms);
        self.base_anomalies += u64::from(base_anomalous);
        self.other_anomalies += u64::from(other_anomalous);
        self.other_nonfinite += u64::from(!other_error.is_finite());
    }

    pub fn elapsed_ms(&self) -> u64 {
        self.first_event_ms
            .map_or(0, |f| self.last_event_ms.saturating_sub(f))
    }

    pub fn rate(n: u64, of: u64) -> f64 {
        if of == 0 {
            0.0
        } else {
            n as f64 / of as f64
        }
    }

    /// The judgement after `period` of event time; `other` is the model on trial.
    pub fn judge(&self, policy: &Policy, period: Duration) -> Judgement {
        if self.other_nonfinite > 0 {
            return Judgement::Failed(format!(
                "{} of {} scores were NaN or infinite",
                self.other_nonfinite, self.records
            ));
        }
        let base_rate = Trial::rate(self.base_anomalies, self.records);
        let other_rate = Trial::rate(self.other_anomalies, self.records);
        let limit = (policy.rate_factor * base_rate.max(policy.rate_floor))
            .min(base_rate + (1.0 - base_rate) / 2.0);
        // An explosion fails at once, once there is enough to judge by.
        if self.records >= policy.min_records && other_rate > limit {
            return Judgement::Failed(format!(
                "anomaly rate {:.2}% against {:.2}% for the other model on the same {} flows (limit {:.2}%)",
                other_rate * 100.0,
                base_rate * 100.0,
                self.records,
                limit * 100.0
            ));
        }
        if self.records < policy.min_records || self.elapsed_ms() < period.as_millis() as u64 {
            return Judgement::Running;
        }
        // A little slack: a debug build's first runs and timer resolution.
        let slack = 2_000 + self.records / 10;
        if self.other_micros as f64 > policy.latency_factor * self.base_micros as f64 + slack as f64
        {
            return Judgement::Failed(format!(
                "run time {} µs against {} µs for the other model (limit {}x)",
                self.other_micros, self.base_micros, policy.latency_factor
            ));
        }
        Judgement::Passed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy {
            shadow: Duration::from_secs(10),
            min_records: 10,
            ..Policy::default()
        }
    }

    fn run(trial: &mut Trial, n: u64, other_every: u64, error: f32) {
        for i in 0..n {
            trial.observe(
                1_000 + i * 1_000,
                i % 50 == 0,
                error,
                other_every > 0 && i % other_every == 0,
            );
        }
    }

    #[test]
    fn a_similar_model_passes_after_the_period_of_event_time() {
        let mut t = Trial::default();
        run(&mut t, 5, 50, 0.1);
        assert_eq!(t.judge(&policy(), policy().shadow), Judgement::Running);
        run(&mut t, 20, 50, 0.1);
        t.observe_batch(90_000, 1);
        t.observe_batch(1_000, 1_500);
        assert_eq!(t.judge(&policy(), policy().shadow), Judgement::Passed);
    }

    #[test]
    fn an_anomaly_explosion_fails_with_the_figures() {
        let mut t = Trial::default();
        run(&mut t, 100, 1, 0.9);
        match t.judge(&policy(), policy().shadow) {
            Judgement::Failed(why) => {
                assert!(why.contains("anomaly rate 100.00% against 2.00%"), "{why}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_busy_network_still_catches_a_flood() {
        // The active model flags 30%: five times that is over 100%, so the cap (halfway to
        // 100%, 65%) is what a flooding model hits.
        let mut t = Trial::default();
        for i in 0..100u64 {
            t.observe(i * 1_000, i % 10 < 3, 0.9, true);
        }
        match t.judge(&policy(), policy().shadow) {
            Judgement::Failed(why) => assert!(why.contains("limit 65.00%"), "{why}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn one_nan_fails_at_once() {
        let mut t = Trial::default();
        run(&mut t, 1, 0, f32::NAN);
        assert!(
            matches!(t.judge(&policy(), policy().shadow), Judgement::Failed(w) if w.contains("NaN"))
        );
    }

    #[test]
    fn a_much_slower_model_fails() {
        let mut t = Trial::default();
        run(&mut t, 20, 0, 0.1);
        t.observe_batch(1_000, 1_000);
        t.observe_batch(1_000, 100_000);
        assert!(
            matches!(t.judge(&policy(), policy().shadow), Judgement::Failed(w) if w.contains("run time"))
        );
    }
}
