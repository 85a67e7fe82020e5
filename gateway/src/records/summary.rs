//! The history's summary rows: what the flow pipeline saw per interval and the scores of each
//! detector, written by the runtime to the store and read back by the HTTP API and the CLI.

use serde::{Deserialize, Serialize};

/// One source host in a flow summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostSummary {
    pub addr: String,
    pub flows: u64,
    pub packets: u64,
    pub bytes: u64,
    pub anomalous: u64,
    pub max_error: f32,
}

/// What the flow pipeline saw in one summary interval (wall clock, `[ts_ms - window_ms, ts_ms)`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowSummary {
    pub ts_ms: u64,
    pub window_ms: u64,
    pub flows: u64,
    pub packets: u64,
    pub bytes: u64,
    pub anomalous: u64,
    /// Distinct source hosts (those beyond the tracking cap counted in `hosts_untracked`).
    pub hosts: u64,
    pub hosts_untracked: u64,
    /// The busiest sources by bytes, at most `history.top_hosts`.
    pub top_sources: Vec<HostSummary>,
}

/// Scores of one detector over an interval (flows) or one scored window (an interface).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreSummary {
    pub ts_ms: u64,
    pub detector: String,
    pub model: String,
    /// `flows` for the flow detector, `target/if_name` for an interface.
    pub subject: String,
    pub count: u64,
    pub anomalous: u64,
    pub mean_error: f32,
    pub max_error: f32,
    pub threshold: f32,
}
