//! `[learning]`: how long a fresh appliance learns its site before judging with its own
//! thresholds (docs/configuration.md).

use std::time::Duration;

use serde::Deserialize;

use super::LearningConfig;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLearning {
    /// Span of event time to learn for, e.g. "24h"; "off" (or "0s") never learns.
    pub period: Option<String>,
    /// While learning, alerts need this many times the shipped threshold (default 10).
    pub alert_ratio: Option<f32>,
    /// SPOT risk: the share of normal scores expected over the fitted threshold (default 1e-4).
    pub risk: Option<f64>,
}

/// `None`: learning is off.
pub type LearningSettings = Option<LearningConfig>;

/// Parses a period: a humantime span, or `off`.
pub fn parse_period(s: &str) -> Result<Option<Duration>, String> {
    if s.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let d = humantime::parse_duration(s).map_err(|e| format!("{s:?} is not a duration: {e}"))?;
    Ok((!d.is_zero()).then_some(d))
}

impl RawLearning {
    /// The checked section; every problem goes to `problem`.
    pub fn validate(&self, problem: &mut impl FnMut(&str, String)) -> LearningSettings {
        let period = match parse_period(self.period.as_deref().unwrap_or("24h")) {
            Ok(p) => p,
            Err(e) => {
                problem("learning.period", e);
                None
            }
        };
        let mut cfg = LearningConfig::with_period(period?);
        if let Some(r) = self.alert_ratio {
            if !(r.is_finite() && r >= 1.0) {
                problem("learning.alert_ratio", format!("{r} must be at least 1"));
            }
            cfg.alert_ratio = r;
        }
        if let Some(q) = self.risk {
            if !(q > 0.0 && q < 0.02) {
                problem(
                    "learning.risk",
                    format!("{q} must be above 0 and below 0.02"),
                );
            }
            cfg.q = q;
        }
        Some(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_off_and_every_problem() {
        let mut problems = Vec::new();
        let mut p = |k: &str, m: String| problems.push(format!("{k}: {m}"));
        let d = RawLearning::default()
            .validate(&mut p)
            .expect("on by default");
        assert_eq!(d.period, Duration::from_secs(86_400));
        let off = RawLearning {
            period: Some("off".into()),
            ..Default::default()
        };
        assert_eq!(off.validate(&mut p), None);
        let bad = RawLearning {
            period: Some("1h".into()),
            alert_ratio: Some(0.5),
            risk: Some(0.5),
        };
        bad.validate(&mut p);
        let bad = RawLearning {
            period: Some("soon".into()),
            ..Default::default()
        };
        assert_eq!(bad.validate(&mut p), None);
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[2].starts_with("learning.period"), "{problems:?}");
    }
}
