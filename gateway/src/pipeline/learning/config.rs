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

/// `[samples]`: the reservoir of feature rows kept for central training.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSamples {
    /// Keep a reservoir at all (default true).
    pub enabled: Option<bool>,
    /// Rows kept per bucket of event time (default 500).
    pub per_bucket: Option<usize>,
    /// Bucket length, e.g. "1h" (default).
    pub bucket: Option<String>,
    /// Buckets kept (default 168: a week of hours).
    pub max_buckets: Option<usize>,
    /// Keep addresses, ports and protocol in the rows (default false).
    pub identity: Option<bool>,
}

impl RawSamples {
    /// The checked section (`None`: no reservoir); every problem goes to `problem`.
    pub fn validate(
        &self,
        problem: &mut impl FnMut(&str, String),
    ) -> Option<crate::pipeline::reservoir::ReservoirConfig> {
        let mut cfg = crate::pipeline::reservoir::ReservoirConfig::default();
        if let Some(n) = self.per_bucket {
            if !(1..=100_000).contains(&n) {
                problem(
                    "samples.per_bucket",
                    format!("{n} is not within 1..=100000"),
                );
            }
            cfg.per_bucket = n;
        }
        if let Some(n) = self.max_buckets {
            if !(1..=100_000).contains(&n) {
                problem(
                    "samples.max_buckets",
                    format!("{n} is not within 1..=100000"),
                );
            }
            cfg.max_buckets = n;
        }
        if let Some(b) = &self.bucket {
            match humantime::parse_duration(b) {
                Ok(d) if d >= Duration::from_secs(60) => cfg.bucket = d,
                Ok(_) => problem("samples.bucket", format!("{b:?} is shorter than a minute")),
                Err(e) => problem("samples.bucket", format!("{b:?} is not a duration: {e}")),
            }
        }
        cfg.identity = self.identity.unwrap_or(false);
        self.enabled.unwrap_or(true).then_some(cfg)
    }
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

    #[test]
    fn samples_defaults_and_problems() {
        let mut problems = Vec::new();
        let mut p = |k: &str, m: String| problems.push(format!("{k}: {m}"));
        let d = RawSamples::default()
            .validate(&mut p)
            .expect("on by default");
        assert_eq!((d.per_bucket, d.max_buckets, d.identity), (500, 168, false));
        let off = RawSamples {
            enabled: Some(false),
            ..Default::default()
        };
        assert_eq!(off.validate(&mut p), None);
        let bad = RawSamples {
            per_bucket: Some(0),
            max_buckets: Some(0),
            bucket: Some("5s".into()),
            ..Default::default()
        };
        bad.validate(&mut p);
        assert_eq!(problems.len(), 3, "{problems:?}");
    }
}
