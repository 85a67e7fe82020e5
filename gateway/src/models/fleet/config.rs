//! `[fleet]`: model delivery over MQTT (docs/fleet.md). Off unless `enabled`; it needs `[mqtt]`
//! and at least one `[bundles] trusted_keys` entry.

use std::time::Duration;

use serde::Deserialize;

use super::shadow::Policy;

/// The topic root the central publisher writes to when `fleet.topic` is not set.
pub const DEFAULT_TOPIC: &str = "netwarden/fleet";

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFleet {
    pub enabled: Option<bool>,
    /// Topic root of the model sets (default `netwarden/fleet`).
    pub topic: Option<String>,
    /// Event-time seconds a candidate shadows the active model (default 300).
    pub shadow_secs: Option<u64>,
    /// Event-time seconds the old model keeps scoring beside a promoted one (default 300).
    pub watch_secs: Option<u64>,
    /// Records to score before a shadow or watch period may end (default 200).
    pub min_records: Option<u64>,
    /// The candidate's run time may be at most this many times the active model's (default 4).
    pub latency_factor: Option<f64>,
    /// The candidate's anomaly rate may be at most this many times the active model's, itself
    /// counted as at least 1% (default 5).
    pub rate_factor: Option<f64>,
    /// Seconds a set may stay incomplete before it is refused (default 60).
    pub assembly_timeout_secs: Option<u64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FleetConfig {
    pub topic: String,
    pub policy: Policy,
    pub assembly_timeout: Duration,
}

impl RawFleet {
    /// `None` when off; every problem goes to `problem`.
    pub fn validate(&self, problem: &mut impl FnMut(&str, String)) -> Option<FleetConfig> {
        if !self.enabled.unwrap_or(false) {
            return None;
        }
        let mut ok = true;
        let topic = self
            .topic
            .clone()
            .unwrap_or_else(|| DEFAULT_TOPIC.to_string());
        if topic.is_empty() || topic.contains(['+', '#']) || topic.ends_with('/') {
            problem(
                "fleet.topic",
                format!("{topic:?} must be a plain topic without wildcards or a trailing slash"),
            );
            ok = false;
        }
        let d = Policy::default();
        let mut factor = |key: &str, v: Option<f64>, default: f64| match v {
            Some(f) if !(f.is_finite() && f >= 1.0) => {
                problem(key, format!("{f} must be a number of at least 1"));
                ok = false;
                default
            }
            Some(f) => f,
            None => default,
        };
        let latency_factor = factor(
            "fleet.latency_factor",
            self.latency_factor,
            d.latency_factor,
        );
        let rate_factor = factor("fleet.rate_factor", self.rate_factor, d.rate_factor);
        let secs = |v: Option<u64>, dflt: Duration| v.map_or(dflt, Duration::from_secs);
        let cfg = FleetConfig {
            topic,
            policy: Policy {
                shadow: secs(self.shadow_secs, d.shadow),
                watch: secs(self.watch_secs, d.watch),
                min_records: self.min_records.unwrap_or(d.min_records),
                latency_factor,
                rate_factor,
                rate_floor: d.rate_floor,
            },
            assembly_timeout: secs(self.assembly_timeout_secs, Duration::from_secs(60)),
        };
        ok.then_some(cfg)
    }
}
