//! The learning period: for `period` of event time after the first record, a detector scores
//! everything but alerts only far beyond the shipped threshold (`alert_ratio` times it), and
//! keeps its own scores. At the end it fits its threshold from them with SPOT ([`spot`]), and
//! from then on judges against that.
//!
//! Records arrive in the exporter's expiry order, not by time: the period starts at the first
//! record's event time and ends when the latest event time seen is `period` plus a grace (a
//! tenth of it, at most 10 min) past it, for records still on their way; a record that comes
//! later with an earlier time is judged by the fitted threshold. With fewer than
//! `min_samples` scores (500) by then, learning goes on, up to 4x the period.
//!
//! Robust to an attack inside the window: scores are kept per group (the flow's source host,
//! the interface), and groups whose median score is far above the groups' typical median (more
//! than 3 robust standard deviations and at least 4x, in log space) are left out of the fit,
//! at most half of the groups. A scanner's thousand probes therefore do not raise the
//! threshold over its own scores. Memory is bounded: at most `max_samples` scores are kept,
//! a uniform reservoir sample of all of them.

pub mod config;
pub mod spot;

use std::collections::HashMap;
use std::fmt::Display;
use std::hash::Hash;
use std::time::Duration;

use crate::records::learning::{Fitted, LearningStatus, SpotFigures};

/// How a detector learns.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LearningConfig {
    pub period: Duration,
    /// While learning, alerts need this many times the shipped threshold.
    pub alert_ratio: f32,
    /// SPOT risk (probability that a normal score exceeds the fitted threshold) and level.
    pub q: f64,
    pub level: f64,
    pub max_samples: usize,
    /// Scores wanted before the period may end; with fewer it runs on, up to 4x its length.
    pub min_samples: usize,
}

impl LearningConfig {
    pub fn with_period(period: Duration) -> Self {
        LearningConfig {
            period,
            alert_ratio: 10.0,
            q: 1e-4,
            level: 0.98,
            max_samples: 50_000,
            min_samples: 500,
        }
    }
}

const MIN_GROUP_SAMPLES: usize = 5;

/// How long past the period's end records are still awaited: exporters send a record when its
/// flow ends, so the latest event time runs ahead of records still to come. A tenth of the
/// period, at most 10 minutes.
fn grace_ms(period_ms: u64) -> u64 {
    (period_ms / 10).min(600_000)
}
const LISTED_EXCLUDED: usize = 16;

/// One detector's learner, keyed by group `G`.
#[derive(Debug)]
pub struct Learner<G> {
    cfg: LearningConfig,
    status: LearningStatus,
    samples: Vec<(G, f32)>,
    rng: u64,
    window_end_ms: u64,
}

impl<G: Hash + Eq + Clone + Display> Learner<G> {
    /// A fresh learning period for `detector`, whose model shipped with `shipped`.
    pub fn new(detector: &str, cfg: LearningConfig, shipped: f32) -> Self {
        Learner {
            cfg,
            status: LearningStatus {
                detector: detector.to_string(),
                phase: "learning".into(),
                period_ms: cfg.period.as_millis() as u64,
                start_ms: None,
                seen_until_ms: 0,
                scored: 0,
                shipped_threshold: shipped,
                alert_ratio: cfg.alert_ratio,
                fitted: None,
                model: String::new(),
            },
            samples: Vec::new(),
            rng: 0x9E37_79B9_7F4A_7C15,
            window_end_ms: 0,
        }
    }

    /// Resumes from a saved status and samples (a restart during, or after, learning).
    pub fn resume(cfg: LearningConfig, status: LearningStatus, samples: Vec<(G, f32)>) -> Self {
        Learner {
            cfg,
            status,
            samples,
            rng: 0x9E37_79B9_7F4A_7C15,
            window_end_ms: 0,
        }
    }

    /// Starts the window at `start_ms` instead of the first record's event time (offline
    /// replays, whose records come in an exporter's expiry order from the first one on).
    pub fn starting_at(mut self, start_ms: u64) -> Self {
        self.status.start_ms = Some(start_ms);
        self
    }

    /// Ties the learner to the model whose scores it takes. Scores, and a threshold fitted on
    /// them, mean nothing for another model: when `model` is not the one learnt for (a fleet
    /// promotion or rollback, or a saved state from before one), learning starts over with
    /// `shipped`, that model's own threshold. True when it started over. A state saved before
    /// models were recorded is taken to be the active model's.
    pub fn bind_model(&mut self, model: &str, shipped: f32) -> bool {
        if self.status.model == model {
            return false;
        }
        if self.status.model.is_empty() {
            self.status.model = model.to_string();
            return false;
        }
        let detector = std::mem::take(&mut self.status.detector);
        *self = Learner::new(&detector, self.cfg, shipped);
        self.status.model = model.to_string();
        true
    }

    pub fn status(&self) -> &LearningStatus {
        &self.status
    }

    /// The scores kept so far (for saving).
    pub fn samples(&self) -> &[(G, f32)] {
        &self.samples
    }

    pub fn learning(&self) -> bool {
        self.status.fitted.is_none()
    }

    /// The threshold to judge against now.
    pub fn threshold(&self) -> f32 {
        match &self.status.fitted {
            Some(f) => f.threshold,
            None => self.status.shipped_threshold * self.cfg.alert_ratio,
        }
    }

    /// Takes one score (kept when its event time is inside the window); `Some` when this
    /// record ended the period (the fit is in the status).
    pub fn observe(&mut self, group: &G, event_ms: u64, score: f32) -> Option<&Fitted> {
        if !self.learning() {
            return None;
        }
        let start = *self.status.start_ms.get_or_insert(event_ms);
        self.status.seen_until_ms = self.status.seen_until_ms.max(event_ms);
        let period = self.status.period_ms;
        let grace = grace_ms(period);
        let watermark = self.status.seen_until_ms;
        let longest = start.saturating_add(period.saturating_mul(4));
        let enough = self.samples.len() >= self.cfg.min_samples;
        // The window: `period` from the start, stretched (up to 4x) while scores are too few.
        let end = if enough {
            start.saturating_add(period)
        } else {
            watermark
                .saturating_add(1)
                .max(start.saturating_add(period))
                .min(longest)
        };
        self.window_end_ms = self.window_end_ms.max(end);
        let over = if enough {
            watermark >= start.saturating_add(period).saturating_add(grace)
        } else {
            watermark >= longest.saturating_add(grace)
        };
        if over {
            self.finish();
            return self.status.fitted.as_ref();
        }
        self.status.scored += 1;
        if !score.is_finite() || event_ms >= self.window_end_ms {
            return None;
        }
        if self.samples.len() < self.cfg.max_samples {
            self.samples.push((group.clone(), score));
        } else {
            // Reservoir sampling (algorithm R) with a small xorshift generator.
            self.rng ^= self.rng << 13;
            self.rng ^= self.rng >> 7;
            self.rng ^= self.rng << 17;
            let j = (self.rng % self.status.scored) as usize;
            if j < self.samples.len() {
                self.samples[j] = (group.clone(), score);
            }
        }
        None
    }

    /// Ends the period now and fits the threshold.
    pub fn finish(&mut self) {
        if !self.learning() {
            return;
        }
        let excluded = outlier_groups(&self.samples);
        let kept: Vec<f64> = self
            .samples
            .iter()
            .filter(|(g, _)| !excluded.contains_key(g))
            .map(|&(_, s)| f64::from(s))
            .collect();
        let excluded_samples = self.samples.len() as u64 - kept.len() as u64;
        let (threshold, method, spot) = match spot::fit(&kept, self.cfg.q, self.cfg.level) {
            Ok(f) if f.z.is_finite() && f.z > 0.0 => (
                f.z as f32,
                "spot",
                Some(SpotFigures {
                    q: f.q,
                    level: f.level,
                    t: f.t,
                    gamma: f.gamma,
                    sigma: f.sigma,
                    peaks: f.peaks,
                }),
            ),
            _ => match kept
                .iter()
                .copied()
                .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))))
            {
                Some(max) if max > 0.0 => ((max * 1.5) as f32, "max", None),
                _ => (self.status.shipped_threshold, "shipped", None),
            },
        };
        let mut names: Vec<String> = excluded.keys().map(ToString::to_string).collect();
        names.sort();
        names.truncate(LISTED_EXCLUDED);
        self.status.phase = "done".into();
        self.status.fitted = Some(Fitted {
            threshold,
            method: method.into(),
            samples: kept.len() as u64,
            excluded_samples,
            excluded: names,
            spot,
            at_ms: self.status.seen_until_ms,
            window_end_ms: self.window_end_ms.max(self.status.start_ms.unwrap_or(0)),
        });
        self.samples = Vec::new();
    }
}

/// The samples as bytes for the store: per sample a tag (4 or 6), the address, the score
/// (f32, little endian).
pub fn encode_samples(samples: &[(std::net::IpAddr, f32)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(samples.len() * 9);
    for (ip, s) in samples {
        match ip {
            std::net::IpAddr::V4(a) => {
                out.push(4);
                out.extend_from_slice(&a.octets());
            }
            std::net::IpAddr::V6(a) => {
                out.push(6);
                out.extend_from_slice(&a.octets());
            }
        }
        out.extend_from_slice(&s.to_le_bytes());
    }
    out
}

/// Reads [`encode_samples`]' bytes; stops at the first malformed entry (what came before is
/// kept: a damaged tail costs samples, never the learning state).
pub fn decode_samples(mut bytes: &[u8]) -> Vec<(std::net::IpAddr, f32)> {
    let mut out = Vec::with_capacity(bytes.len() / 9);
    while let Some((&tag, rest)) = bytes.split_first() {
        let len = match tag {
            4 => 4,
            6 => 16,
            _ => break,
        };
        if rest.len() < len + 4 {
            break;
        }
        let ip = match tag {
            4 => std::net::IpAddr::from(<[u8; 4]>::try_from(&rest[..4]).unwrap_or_default()),
            _ => std::net::IpAddr::from(<[u8; 16]>::try_from(&rest[..16]).unwrap_or_default()),
        };
        let score = f32::from_le_bytes(rest[len..len + 4].try_into().unwrap_or_default());
        out.push((ip, score));
        bytes = &rest[len + 4..];
    }
    out
}

/// Groups whose median score is far above the typical group's (see the module doc).
fn outlier_groups<G: Hash + Eq + Clone>(samples: &[(G, f32)]) -> HashMap<G, f64> {
    let mut by: HashMap<&G, Vec<f32>> = HashMap::new();
    for (g, s) in samples {
        by.entry(g).or_default().push(*s);
    }
    let mut medians: Vec<(&G, f64)> = by
        .into_iter()
        .filter(|(_, v)| v.len() >= MIN_GROUP_SAMPLES)
        .map(|(g, mut v)| {
            v.sort_by(f32::total_cmp);
            (g, f64::from(v[v.len() / 2]).max(1e-12).ln())
        })
        .collect();
    if medians.len() < 3 {
        return HashMap::new();
    }
    let mut logs: Vec<f64> = medians.iter().map(|m| m.1).collect();
    logs.sort_by(f64::total_cmp);
    let m = logs[logs.len() / 2];
    let mut dev: Vec<f64> = logs.iter().map(|l| (l - m).abs()).collect();
    dev.sort_by(f64::total_cmp);
    let mad = dev[dev.len() / 2] * 1.4826;
    let cut = m + (3.0 * mad).max(4f64.ln());
    medians.sort_by(|a, b| b.1.total_cmp(&a.1));
    let most = (medians.len() - 1) / 2;
    medians
        .into_iter()
        .take(most)
        .filter(|(_, l)| *l > cut)
        .map(|(g, l)| (g.clone(), l.exp()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn learner(period_s: u64) -> Learner<u32> {
        Learner::new(
            "flow_ae",
            LearningConfig::with_period(Duration::from_secs(period_s)),
            0.02,
        )
    }

    /// Deterministic exponential-ish scores around `scale`.
    fn score(i: u64, scale: f32) -> f32 {
        let u = ((i.wrapping_mul(2654435761) % 10_007) as f32 + 0.5) / 10_007.0;
        -u.ln() * scale
    }

    #[test]
    fn another_model_learns_afresh_and_an_unrecorded_one_is_the_active_one() {
        let mut l = learner(60);
        assert!(
            !l.bind_model("flow-ae 1", 0.02),
            "a fresh learner takes the model"
        );
        for i in 0..5_000u64 {
            l.observe(&((i % 20) as u32), 1_000_000 + i * 12, score(i, 0.001));
        }
        l.observe(&1, 1_070_000, 0.5).expect("period over");
        assert!(!l.learning());
        assert!(
            !l.bind_model("flow-ae 1", 0.02),
            "same model: the fit stays"
        );
        assert!(!l.learning());
        // A promoted model: its own threshold while it is learnt afresh.
        assert!(l.bind_model("flow-ae 2", 0.05));
        assert!(l.learning());
        assert!(l.samples().is_empty() && l.status().fitted.is_none());
        assert_eq!(l.status().model, "flow-ae 2");
        assert_eq!(l.status().detector, "flow_ae");
        assert!(
            (l.threshold() - 0.5).abs() < 1e-6,
            "10x the new shipped threshold"
        );
        // A state saved before models were recorded belongs to whatever is active.
        let mut old = learner(60);
        old.status.model.clear();
        assert!(!old.bind_model("flow-ae 7", 0.02));
        assert_eq!(old.status().model, "flow-ae 7");
    }

    #[test]
    fn learns_for_the_period_of_event_time_then_fits() {
        let mut l = learner(60);
        assert!(
            (l.threshold() - 0.2).abs() < 1e-6,
            "10x the shipped threshold while learning"
        );
        // 20 hosts, 5,000 scores over 59 s, out of order within each second.
        for i in 0..5_000u64 {
            let t = 1_000_000 + ((i * 59_000 / 5_000) ^ 7);
            assert!(l.observe(&((i % 20) as u32), t, score(i, 0.001)).is_none());
        }
        assert!(l.learning());
        assert!(
            (l.status().progress() - 0.98).abs() < 0.02,
            "{:?}",
            l.status()
        );
        let fitted = l.observe(&1, 1_066_100, 0.5).expect("period over").clone();
        assert_eq!(fitted.method, "spot");
        // Exp(0.001) at risk 1e-4: about 0.001 * ln(1e4) = 0.0092.
        assert!(
            fitted.threshold > 0.006 && fitted.threshold < 0.014,
            "{fitted:?}"
        );
        assert!(fitted.excluded.is_empty(), "{fitted:?}");
        assert_eq!(l.threshold(), fitted.threshold);
        assert_eq!(l.status().phase, "done");
        assert!(l.observe(&1, 2_000_000, 9.0).is_none(), "learning is over");
    }

    #[test]
    fn an_attack_inside_the_window_is_left_out_of_the_fit() {
        let mut l = learner(60);
        for i in 0..5_000u64 {
            l.observe(&((i % 20) as u32), 1_000 + i * 10, score(i, 0.001));
        }
        // Host 66 scans: 2,000 probes, each scored 50x the benign scale.
        for i in 0..2_000u64 {
            l.observe(&66, 20_000 + i, score(i, 0.05));
        }
        l.finish();
        let f = l.status().fitted.clone().expect("fitted");
        assert_eq!(f.excluded, ["66"]);
        assert_eq!(f.excluded_samples, 2_000);
        assert!(
            f.threshold < 0.014,
            "the scan did not lift the threshold: {f:?}"
        );
    }

    #[test]
    fn few_scores_learn_longer_then_fall_back_to_the_largest() {
        let mut l = learner(60);
        for i in 0..100u64 {
            l.observe(&1, i * 1_000, 0.01 + i as f32 * 1e-5);
        }
        assert!(l.learning(), "100 scores: learning goes on past the period");
        assert!(
            l.observe(&1, 246_000, 0.0).is_some(),
            "4x the period and the grace: done"
        );
        let f = l.status().fitted.clone().expect("fitted");
        // 100 scores give only 2 peaks over the 0.98 quantile: 1.5x the largest.
        assert_eq!(f.method, "max", "{f:?}");
        assert!((f.threshold - 0.01099 * 1.5).abs() < 1e-5, "{f:?}");
        assert_eq!(f.samples, 100);
    }

    #[test]
    fn samples_round_trip_and_a_damaged_tail_is_dropped() {
        let v = vec![
            ("10.0.0.1".parse().expect("ip"), 0.5f32),
            ("fe80::1".parse().expect("ip"), 1.5),
        ];
        let mut bytes = encode_samples(&v);
        assert_eq!(decode_samples(&bytes), v);
        bytes.truncate(bytes.len() - 1);
        assert_eq!(decode_samples(&bytes), v[..1]);
        bytes[0] = 9;
        assert!(decode_samples(&bytes).is_empty());
    }

    #[test]
    fn nothing_seen_keeps_the_shipped_threshold_and_samples_are_bounded() {
        let mut l = learner(60);
        l.finish();
        assert_eq!(
            l.status().fitted.as_ref().expect("fitted").method,
            "shipped"
        );
        assert_eq!(l.threshold(), 0.02);
        let mut cfg = LearningConfig::with_period(Duration::from_secs(60));
        cfg.max_samples = 100;
        let mut l: Learner<u32> = Learner::new("flow_ae", cfg, 0.02);
        for i in 0..10_000u64 {
            l.observe(&0, i, 1.0);
        }
        assert_eq!(l.samples().len(), 100);
        assert_eq!(l.status().scored, 10_000);
    }
}
