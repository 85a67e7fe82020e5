//! `[store]` and `[history]`: the sled cache, the outbox cap, and how much history is kept
//! (docs/operations.md, "History and retention").

use std::time::Duration;

use serde::Deserialize;

use crate::sinks::history::HistoryConfig;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStore {
    pub cache_bytes: Option<u64>,
    pub outbox_max_alerts: Option<usize>,
}

#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// sled page cache; sled's own default (1 GiB) is far too much for a router.
    pub cache_bytes: u64,
    /// Alerts kept in the outbox while the broker is unreachable; see docs/operations.md.
    pub outbox_max_alerts: usize,
}

impl RawStore {
    /// The checked section; every problem goes to `problem`.
    pub fn validate(&self, problem: &mut impl FnMut(&str, String)) -> StoreConfig {
        let outbox_max_alerts = match self.outbox_max_alerts {
            Some(0) => {
                problem("store.outbox_max_alerts", "must be at least 1".to_string());
                100_000
            }
            v => v.unwrap_or(100_000),
        };
        StoreConfig {
            cache_bytes: self.cache_bytes.unwrap_or(8 << 20),
            outbox_max_alerts,
        }
    }
}

/// `[history]`: how much history sled keeps (docs/operations.md, "History and retention").
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHistory {
    /// Oldest history kept, e.g. "7d" (humantime).
    pub max_age: Option<String>,
    /// Disk use of the data directory's database kept under this many MiB.
    pub max_disk_mb: Option<u64>,
    /// Width of one time bucket (one sled tree per kind), e.g. "1h".
    pub bucket: Option<String>,
    /// How often the flow and score summaries are written, e.g. "1m".
    pub summary_interval: Option<String>,
    /// Busiest source hosts listed in each flow summary.
    pub top_hosts: Option<usize>,
    /// How often retention runs, e.g. "30s".
    pub check_interval: Option<String>,
}

impl RawHistory {
    pub fn validate(&self, problem: &mut impl FnMut(&str, String)) -> HistoryConfig {
        let d = HistoryConfig::default();
        let mut duration = |key: &str, v: &Option<String>, default: Duration, min: Duration| match v
            .as_deref()
            .map(humantime::parse_duration)
        {
            None => default,
            Some(Ok(x)) if x >= min => x,
            Some(Ok(_)) => {
                problem(
                    key,
                    format!("must be at least {}", humantime::format_duration(min)),
                );
                default
            }
            Some(Err(e)) => {
                problem(key, format!("not a duration like \"7d\" or \"1h\": {e}"));
                default
            }
        };
        let max_age = duration(
            "history.max_age",
            &self.max_age,
            d.max_age,
            Duration::from_secs(60),
        );
        let bucket = duration(
            "history.bucket",
            &self.bucket,
            d.bucket,
            Duration::from_secs(1),
        );
        let summary_interval = duration(
            "history.summary_interval",
            &self.summary_interval,
            d.summary_interval,
            Duration::from_secs(1),
        );
        let check_interval = duration(
            "history.check_interval",
            &self.check_interval,
            d.check_interval,
            Duration::from_secs(1),
        );
        if bucket > max_age {
            problem(
                "history.bucket",
                "must not be longer than history.max_age (retention drops whole buckets)"
                    .to_string(),
            );
        }
        let max_disk_bytes = match self.max_disk_mb {
            None => d.max_disk_bytes,
            Some(mb) if mb >= 4 => mb << 20,
            Some(_) => {
                problem("history.max_disk_mb", "must be at least 4".to_string());
                d.max_disk_bytes
            }
        };
        HistoryConfig {
            max_age,
            max_disk_bytes,
            bucket,
            summary_interval,
            top_hosts: self.top_hosts.unwrap_or(d.top_hosts),
            check_interval,
        }
    }
}
