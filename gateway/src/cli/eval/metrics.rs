//! The arithmetic of `netwarden eval`, with no I/O: which phase a flow or an alert belongs to,
//! flow-level ROC-AUC and confusion-matrix rates, false alerts per hour.
//!
//! A rate whose denominator is zero (no malicious flows, no benign time, ...) is `None`, shown
//! as `n/a`: a NaN in a report reads as a bug, and a made-up 0 or 1 reads as a result.

use std::net::IpAddr;

use super::labels::{Label, Phase};

/// A flow's time span, first to last packet (epoch ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub first_ms: u64,
    pub last_ms: u64,
}

/// Does a flow belong to `phase` in time? Yes when `[first_ms, last_ms]` overlaps the phase
/// widened by `slack_ms` on both sides: flow times come from exporters (NetFlow v9 headers
/// carry whole seconds, so softflowd's v9 times are up to a second early). This is the rule
/// the lab's own per-flow labels use (tests/lab/flowlabels.py, 1 s slack).
pub fn in_phase(span: Span, phase: &Phase, slack_ms: u64) -> bool {
    span.first_ms <= phase.end_ms.saturating_add(slack_ms)
        && span.last_ms.max(span.first_ms) >= phase.start_ms.saturating_sub(slack_ms)
}

/// The index of the first malicious phase in which a flow between `a` and `b` is malicious:
/// the flow overlaps the phase and an attacker is one of its endpoints. `None`: benign.
pub fn malicious_phase(
    phases: &[Phase],
    a: IpAddr,
    b: IpAddr,
    span: Span,
    slack_ms: u64,
) -> Option<usize> {
    phases.iter().position(|p| {
        p.label == Label::Malicious
            && in_phase(span, p, slack_ms)
            && (p.attackers.contains(&a) || p.attackers.contains(&b))
    })
}

/// What an alert says about the phases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertClass {
    /// It names an attacker of this phase as the source, during the phase: a detection.
    Attacker(usize),
    /// It names a victim of this phase as the source, during the phase: the attack was noticed
    /// but blamed on the wrong host (usually the victim's replies). Neither a detection nor a
    /// false alert.
    Victim(usize),
    /// Neither: a false alert.
    False,
}

/// Classifies an alert by its source host and its flow's time. Attacker matches win over
/// victim matches (a host can be both in overlapping phases).
pub fn classify_alert(phases: &[Phase], src: IpAddr, span: Span, slack_ms: u64) -> AlertClass {
    let during = |p: &&Phase| p.label == Label::Malicious && in_phase(span, p, slack_ms);
    if let Some(i) = phases
        .iter()
        .position(|p| during(&p) && p.attackers.contains(&src))
    {
        return AlertClass::Attacker(i);
    }
    if let Some(i) = phases
        .iter()
        .position(|p| during(&p) && p.victims.contains(&src))
    {
        return AlertClass::Victim(i);
    }
    AlertClass::False
}

/// Classifies an incident alert: like [`classify_alert`] on its initiator, except that an
/// incident a victim opened towards its phase's attacker (a reverse shell, an exfiltration
/// upload: the victim connects out) names the attacker as its target, and counts as a detection.
pub fn classify_incident(
    phases: &[Phase],
    initiator: IpAddr,
    target: Option<IpAddr>,
    span: Span,
    slack_ms: u64,
) -> AlertClass {
    if let Some(t) = target {
        if let Some(i) = phases.iter().position(|p| {
            p.label == Label::Malicious
                && in_phase(span, p, slack_ms)
                && p.attackers.contains(&t)
                && p.victims.contains(&initiator)
        }) {
            return AlertClass::Attacker(i);
        }
    }
    classify_alert(phases, initiator, span, slack_ms)
}

/// Total length of the union of half-open intervals `[start, end)`, in ms.
pub fn covered_ms(intervals: &[(u64, u64)]) -> u64 {
    let mut v: Vec<(u64, u64)> = intervals.iter().copied().filter(|(s, e)| e > s).collect();
    v.sort_unstable();
    let mut total = 0u64;
    let mut current: Option<(u64, u64)> = None;
    for (s, e) in v {
        match current {
            Some((cs, ce)) if s <= ce => current = Some((cs, ce.max(e))),
            Some((cs, ce)) => {
                total += ce - cs;
                current = Some((s, e));
            }
            None => current = Some((s, e)),
        }
    }
    if let Some((cs, ce)) = current {
        total += ce - cs;
    }
    total
}

/// `count` per hour of `ms`; `None` for no time at all.
pub fn per_hour(count: u64, ms: u64) -> Option<f64> {
    (ms > 0).then(|| count as f64 * 3_600_000.0 / ms as f64)
}

/// ROC-AUC of `score` as a ranking of `positive`: the probability that a random positive
/// scores higher than a random negative, ties counted as one half (Mann-Whitney U with
/// average ranks). `None` when either class is empty. NaN scores rank above everything, as a
/// model that returns NaN would be over any threshold.
pub fn roc_auc(scored: &[(f32, bool)]) -> Option<f64> {
    let positives = scored.iter().filter(|(_, p)| *p).count();
    let negatives = scored.len() - positives;
    if positives == 0 || negatives == 0 {
        return None;
    }
    let mut sorted: Vec<(f32, bool)> = scored.to_vec();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Sum of the (1-based, tie-averaged) ranks of the positives.
    let mut rank_sum = 0.0f64;
    let mut i = 0;
    while i < sorted.len() {
        let mut j = i + 1;
        while j < sorted.len() && sorted[j].0.total_cmp(&sorted[i].0).is_eq() {
            j += 1;
        }
        // Ranks i+1 ..= j share their mean.
        let mean_rank = (i + 1 + j) as f64 / 2.0;
        let pos_here = sorted[i..j].iter().filter(|(_, p)| *p).count();
        rank_sum += mean_rank * pos_here as f64;
        i = j;
    }
    let (p, n) = (positives as f64, negatives as f64);
    Some((rank_sum - p * (p + 1.0) / 2.0) / (p * n))
}

/// Flow-level outcomes of thresholded scores.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Confusion {
    pub tp: u64,
    pub fp: u64,
    pub tn: u64,
    #[serde(rename = "fn")]
    pub fn_: u64,
}

fn ratio(num: u64, den: u64) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

impl Confusion {
    pub fn add(&mut self, predicted: bool, actual: bool) {
        match (predicted, actual) {
            (true, true) => self.tp += 1,
            (true, false) => self.fp += 1,
            (false, false) => self.tn += 1,
            (false, true) => self.fn_ += 1,
        }
    }

    /// Of the flows over the threshold, the share that were malicious.
    pub fn precision(&self) -> Option<f64> {
        ratio(self.tp, self.tp + self.fp)
    }

    /// Of the malicious flows, the share over the threshold.
    pub fn recall(&self) -> Option<f64> {
        ratio(self.tp, self.tp + self.fn_)
    }

    /// Harmonic mean of precision and recall; `None` when either is, or both are 0.
    pub fn f1(&self) -> Option<f64> {
        let (p, r) = (self.precision()?, self.recall()?);
        (p + r > 0.0).then(|| 2.0 * p * r / (p + r))
    }

    /// Of the benign flows, the share over the threshold.
    pub fn fpr(&self) -> Option<f64> {
        ratio(self.fp, self.fp + self.tn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phase(label: Label, attacker: &str, victim: &str, start_ms: u64, end_ms: u64) -> Phase {
        Phase {
            line: 2,
            phase: "p".into(),
            kind: "k".into(),
            label,
            attackers: if attacker.is_empty() {
                vec![]
            } else {
                vec![attacker.parse().expect("ip")]
            },
            victims: if victim.is_empty() {
                vec![]
            } else {
                vec![victim.parse().expect("ip")]
            },
            start_ms,
            end_ms,
            notes: String::new(),
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    fn at(first_ms: u64) -> Span {
        Span {
            first_ms,
            last_ms: first_ms,
        }
    }

    #[test]
    fn auc_hand_checked_with_ties() {
        // Positives 0.9, 0.5, 0.5; negatives 0.5, 0.1. Pairs (pos, neg): (0.9,0.5)=1,
        // (0.9,0.1)=1, (0.5,0.5)=0.5 twice, (0.5,0.1)=1 twice: 5 / 6.
        let s = [
            (0.9, true),
            (0.5, true),
            (0.5, true),
            (0.5, false),
            (0.1, false),
        ];
        let auc = roc_auc(&s).expect("both classes");
        assert!((auc - 5.0 / 6.0).abs() < 1e-12, "{auc}");
        // All tied: one half.
        let t = [(0.3, true), (0.3, false), (0.3, false)];
        assert_eq!(roc_auc(&t), Some(0.5));
        // Perfect and inverted rankings.
        assert_eq!(roc_auc(&[(2.0, true), (1.0, false)]), Some(1.0));
        assert_eq!(roc_auc(&[(1.0, true), (2.0, false)]), Some(0.0));
    }

    #[test]
    fn auc_of_one_class_is_not_a_number_but_none() {
        assert_eq!(roc_auc(&[(0.1, false), (0.2, false)]), None);
        assert_eq!(roc_auc(&[(0.1, true)]), None);
        assert_eq!(roc_auc(&[]), None);
    }

    #[test]
    fn nan_scores_rank_highest() {
        let auc = roc_auc(&[(f32::NAN, true), (5.0, false)]).expect("both");
        assert_eq!(auc, 1.0);
    }

    #[test]
    fn confusion_rates_and_empty_denominators() {
        let mut c = Confusion::default();
        for (pred, actual, n) in [
            (true, true, 3),
            (true, false, 1),
            (false, false, 6),
            (false, true, 2),
        ] {
            for _ in 0..n {
                c.add(pred, actual);
            }
        }
        assert_eq!(c.precision(), Some(0.75));
        assert_eq!(c.recall(), Some(0.6));
        let f1 = c.f1().expect("f1");
        assert!((f1 - 2.0 * 0.75 * 0.6 / 1.35).abs() < 1e-12);
        assert_eq!(c.fpr(), Some(1.0 / 7.0));
        let empty = Confusion::default();
        assert_eq!(
            (empty.precision(), empty.recall(), empty.f1(), empty.fpr()),
            (None, None, None, None)
        );
        // Nothing flagged but malicious flows exist: recall 0, precision undefined, F1 n/a.
        let missed = Confusion {
            fn_: 4,
            tn: 3,
            ..Confusion::default()
        };
        assert_eq!(missed.recall(), Some(0.0));
        assert_eq!(missed.precision(), None);
        assert_eq!(missed.f1(), None);
        assert_eq!(missed.fpr(), Some(0.0));
    }

    #[test]
    fn flow_labels_follow_the_attacker_and_the_phase_with_slack() {
        let phases = [
            phase(Label::Benign, "", "", 0, 10_000),
            phase(Label::Malicious, "10.0.0.9", "10.0.0.2", 10_000, 20_000),
        ];
        let (att, vic, other) = (ip("10.0.0.9"), ip("10.0.0.2"), ip("10.0.0.3"));
        assert_eq!(malicious_phase(&phases, att, vic, at(12_000), 0), Some(1));
        // Either direction: the victim's reply is malicious too.
        assert_eq!(malicious_phase(&phases, vic, att, at(12_000), 0), Some(1));
        // Another host during the attack is benign.
        assert_eq!(malicious_phase(&phases, other, vic, at(12_000), 0), None);
        // The attacker before the phase is benign; within the slack it is not.
        assert_eq!(malicious_phase(&phases, att, vic, at(9_000), 0), None);
        assert_eq!(
            malicious_phase(&phases, att, vic, at(9_000), 1_000),
            Some(1)
        );
        assert_eq!(
            malicious_phase(&phases, att, vic, at(21_000), 1_000),
            Some(1)
        );
        assert_eq!(malicious_phase(&phases, att, vic, at(21_001), 1_000), None);
        // A flow that began before the phase and ran into it overlaps it.
        let long = Span {
            first_ms: 2_000,
            last_ms: 10_500,
        };
        assert_eq!(malicious_phase(&phases, att, vic, long, 0), Some(1));
    }

    #[test]
    fn alerts_are_attacker_victim_or_false() {
        let phases = [
            phase(Label::Malicious, "10.0.0.9", "10.0.0.2", 10_000, 20_000),
            phase(Label::Malicious, "10.0.0.7", "10.0.0.9", 30_000, 40_000),
        ];
        assert_eq!(
            classify_alert(&phases, ip("10.0.0.9"), at(15_000), 0),
            AlertClass::Attacker(0)
        );
        assert_eq!(
            classify_alert(&phases, ip("10.0.0.2"), at(15_000), 0),
            AlertClass::Victim(0)
        );
        assert_eq!(
            classify_alert(&phases, ip("10.0.0.9"), at(35_000), 0),
            AlertClass::Victim(1)
        );
        assert_eq!(
            classify_alert(&phases, ip("10.0.0.9"), at(25_000), 0),
            AlertClass::False
        );
        assert_eq!(
            classify_alert(&phases, ip("10.0.0.3"), at(15_000), 0),
            AlertClass::False
        );
    }

    #[test]
    fn an_incident_the_victim_opened_towards_the_attacker_is_a_detection() {
        let phases = [phase(
            Label::Malicious,
            "10.0.0.9",
            "10.0.0.2",
            10_000,
            20_000,
        )];
        let (att, vic) = (ip("10.0.0.9"), ip("10.0.0.2"));
        let c = |i, t| classify_incident(&phases, i, t, at(15_000), 0);
        assert_eq!(c(vic, Some(att)), AlertClass::Attacker(0));
        assert_eq!(c(att, Some(vic)), AlertClass::Attacker(0));
        assert_eq!(c(vic, Some(ip("10.0.0.3"))), AlertClass::Victim(0));
        assert_eq!(c(vic, None), AlertClass::Victim(0));
    }

    #[test]
    fn covered_time_merges_overlaps() {
        assert_eq!(covered_ms(&[]), 0);
        assert_eq!(covered_ms(&[(0, 10), (5, 15), (20, 30), (30, 31)]), 26);
        assert_eq!(covered_ms(&[(10, 5)]), 0);
        assert_eq!(per_hour(3, 1_800_000), Some(6.0));
        assert_eq!(per_hour(3, 0), None);
    }
}
