//! `[detector]` and `[alerting]`: which bundles score, how many flows per model run, the
//! series' local time, and de-duplication windows.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDetector {
    pub flow_model: Option<PathBuf>,
    pub batch_size: Option<usize>,
    /// A `series_ae` bundle directory for the SNMP interface series.
    pub series_model: Option<PathBuf>,
    /// Seconds added to UTC for the series' hour and day-of-week features.
    pub series_utc_offset_secs: Option<i32>,
    /// One interface alert per interface per this many seconds of poll time (default 1800).
    pub series_dedupe_window_secs: Option<u64>,
    /// Run the temporal graph detector on every flow (default false; docs/graph-model.md).
    pub graph: Option<bool>,
    /// A `graph_tgat` bundle directory replacing the built-in graph model.
    pub graph_model: Option<PathBuf>,
    /// Endpoints (`IP:port`) the graph keeps, least recently used evicted (default 65536).
    pub graph_endpoints: Option<usize>,
    /// `flow-v2`: how long a record waits for its reverse direction (default "500ms").
    pub pair_wait: Option<String>,
}

#[derive(Debug, Clone)]
pub struct DetectorConfig {
    /// A bundle directory replacing the built-in flow model.
    pub flow_model: Option<PathBuf>,
    /// Flows scored per model run at most.
    pub batch_size: usize,
    /// A `series_ae` bundle for the SNMP interface series; none: the built-in series model.
    pub series_model: Option<PathBuf>,
    /// Added to UTC for the series' hour and day-of-week features (the site's local time).
    pub series_utc_offset_secs: i32,
    /// One interface alert per interface per this much poll time, unless severity escalates.
    pub series_dedupe: Duration,
    /// Whether the temporal graph detector runs.
    pub graph: bool,
    /// A `graph_tgat` bundle; none: the built-in graph model.
    pub graph_model: Option<PathBuf>,
    /// Endpoints the graph tracks at most.
    pub graph_endpoints: usize,
    /// `flow-v2`: how long a record waits for its reverse direction (arrival time).
    pub pair_wait: Duration,
}

/// The default `[detector] pair_wait`.
pub const DEFAULT_PAIR_WAIT: Duration =
    Duration::from_millis(netwarden_firmware::features_v2::DEFAULT_PAIR_WAIT_MS);

/// The longest `pair_wait`: records wait in a table of `PAIR_SLOTS` (2,048), so a longer wait
/// would mostly evict (and delay every unanswered record's alert by as much).
pub const MAX_PAIR_WAIT: Duration = Duration::from_secs(60);

/// Parses a pairing wait: a humantime span (`500ms`, `2s`) from 0 to [`MAX_PAIR_WAIT`].
pub fn parse_pair_wait(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s.trim())
        .map_err(|e| format!("{s:?} is not a duration (e.g. \"500ms\", \"2s\"): {e}"))?;
    if d > MAX_PAIR_WAIT {
        return Err(format!(
            "{s:?} is longer than {}s (the pairing table holds 2048 records)",
            MAX_PAIR_WAIT.as_secs()
        ));
    }
    Ok(d)
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAlerting {
    pub dedupe_window_secs: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct AlertingConfig {
    /// One alert per (detector, source host) per this much event time.
    pub dedupe_window: Duration,
}

impl RawDetector {
    /// The checked section; every problem goes to `problem`.
    pub fn validate(&self, problem: &mut impl FnMut(&str, String)) -> DetectorConfig {
        let batch_size = match self.batch_size {
            Some(0) => {
                problem("detector.batch_size", "must be at least 1".to_string());
                512
            }
            v => v.unwrap_or(512),
        };
        if batch_size > 65_536 {
            problem(
                "detector.batch_size",
                format!("{batch_size} is more than 65536"),
            );
        }
        for (key, dir) in [
            ("detector.flow_model", &self.flow_model),
            ("detector.series_model", &self.series_model),
            ("detector.graph_model", &self.graph_model),
        ] {
            if let Some(dir) = dir {
                if !dir.join("manifest.json").is_file() {
                    problem(key, format!("{} has no manifest.json", dir.display()));
                }
            }
        }
        let series_utc_offset_secs = self.series_utc_offset_secs.unwrap_or(0);
        if series_utc_offset_secs.abs() > 14 * 3600 {
            problem(
                "detector.series_utc_offset_secs",
                format!("{series_utc_offset_secs} is more than 14 hours from UTC"),
            );
        }
        let series_dedupe = self.series_dedupe_window_secs.unwrap_or(1800);
        if series_dedupe == 0 {
            problem(
                "detector.series_dedupe_window_secs",
                "must be at least 1".to_string(),
            );
        }
        let graph_endpoints = self.graph_endpoints.unwrap_or(65_536);
        if !(2..=16_777_216).contains(&graph_endpoints) {
            problem(
                "detector.graph_endpoints",
                format!("{graph_endpoints} is not between 2 and 16777216"),
            );
        }
        let pair_wait = match self.pair_wait.as_deref().map(parse_pair_wait) {
            None => DEFAULT_PAIR_WAIT,
            Some(Ok(d)) => d,
            Some(Err(e)) => {
                problem("detector.pair_wait", e);
                DEFAULT_PAIR_WAIT
            }
        };
        DetectorConfig {
            pair_wait,
            graph: self.graph.unwrap_or(false) || self.graph_model.is_some(),
            graph_model: self.graph_model.clone(),
            graph_endpoints: graph_endpoints.clamp(2, 16_777_216),
            flow_model: self.flow_model.clone(),
            batch_size,
            series_model: self.series_model.clone(),
            series_utc_offset_secs,
            series_dedupe: Duration::from_secs(series_dedupe),
        }
    }
}

impl RawAlerting {
    pub fn validate(&self) -> AlertingConfig {
        AlertingConfig {
            dedupe_window: Duration::from_secs(self.dedupe_window_secs.unwrap_or(60)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(pair_wait: Option<&str>) -> (Duration, Vec<String>) {
        let raw = RawDetector {
            pair_wait: pair_wait.map(str::to_string),
            ..RawDetector::default()
        };
        let mut problems = Vec::new();
        let cfg = raw.validate(&mut |k, m| problems.push(format!("{k}: {m}")));
        (cfg.pair_wait, problems)
    }

    #[test]
    fn pair_wait_defaults_to_500ms_and_nonsense_is_named() {
        assert_eq!(check(None), (Duration::from_millis(500), vec![]));
        assert_eq!(check(Some("2s")), (Duration::from_secs(2), vec![]));
        assert_eq!(check(Some("0ms")), (Duration::ZERO, vec![]));
        for bad in ["soon", "-1s", "", "10m"] {
            let (d, problems) = check(Some(bad));
            assert_eq!(d, DEFAULT_PAIR_WAIT, "{bad}");
            assert_eq!(problems.len(), 1, "{bad}: {problems:?}");
            assert!(
                problems[0].starts_with("detector.pair_wait: "),
                "{problems:?}"
            );
        }
        assert!(check(Some("10m")).1[0].contains("longer than 60s"));
    }
}
