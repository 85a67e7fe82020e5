//! Retention settings (`[history]` in the config).

use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryConfig {
    /// History older than this is dropped (a bucket goes when all of it is older).
    pub max_age: Duration,
    /// Disk use of the whole database (history, outbox, sled's own files) kept under this.
    pub max_disk_bytes: u64,
    /// Width of one bucket (one sled tree per kind).
    pub bucket: Duration,
    /// How often the pipeline writes a flow and score summary.
    pub summary_interval: Duration,
    /// Source hosts listed in each flow summary (by bytes).
    pub top_hosts: usize,
    /// How often the daemon runs [`History::enforce`].
    pub check_interval: Duration,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        HistoryConfig {
            max_age: Duration::from_secs(7 * 24 * 3600),
            max_disk_bytes: 256 << 20,
            bucket: Duration::from_secs(3600),
            summary_interval: Duration::from_secs(60),
            top_hosts: 20,
            check_interval: Duration::from_secs(30),
        }
    }
}
