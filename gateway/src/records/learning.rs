//! Where a detector's learning period stands, and what it fitted: persisted in sled so a
//! restart resumes it, and shown on `/health` and the dashboard.

use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

/// Every learning detector's latest status, published by the pipeline threads for `/health`.
pub type LearningBoard = Arc<Mutex<Vec<LearningStatus>>>;

/// Replaces `status`'s entry on the board (by detector).
pub fn publish(board: &LearningBoard, status: &LearningStatus) {
    if let Ok(mut b) = board.lock() {
        match b.iter_mut().find(|s| s.detector == status.detector) {
            Some(s) => s.clone_from(status),
            None => b.push(status.clone()),
        }
    }
}

/// One detector's learning state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LearningStatus {
    pub detector: String,
    /// `learning` or `done`.
    pub phase: String,
    /// The configured span of event time to learn for.
    pub period_ms: u64,
    /// Event time of the first record learnt from (`None`: nothing seen yet).
    pub start_ms: Option<u64>,
    /// The latest event time seen while learning.
    pub seen_until_ms: u64,
    /// Scores taken while learning.
    pub scored: u64,
    /// The threshold the model shipped with.
    pub shipped_threshold: f32,
    /// While learning only alerts this many times over the shipped threshold are raised.
    pub alert_ratio: f32,
    pub fitted: Option<Fitted>,
    /// The model (`name version`) whose scores were learnt from and whose threshold was
    /// fitted; empty in states saved before it was recorded (taken as the active model).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub model: String,
}

impl LearningStatus {
    /// Share of the period done, 0 to 1.
    pub fn progress(&self) -> f64 {
        match (self.phase.as_str(), self.start_ms) {
            ("done", _) => 1.0,
            (_, None) => 0.0,
            (_, Some(s)) => (self.seen_until_ms.saturating_sub(s) as f64
                / self.period_ms.max(1) as f64)
                .min(1.0),
        }
    }
}

/// The threshold fitted at the end of the learning period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fitted {
    pub threshold: f32,
    /// `spot` (extreme-value fit), `max` (too few scores for SPOT: 1.5x the largest) or
    /// `shipped` (nothing to learn from).
    pub method: String,
    /// Scores the fit used, and those left out because their source looked anomalous.
    pub samples: u64,
    pub excluded_samples: u64,
    /// The sources left out (at most 16 listed).
    pub excluded: Vec<String>,
    /// SPOT's parameters when `method` is `spot`: risk q, level, initial threshold t, GPD
    /// shape gamma and scale sigma, peaks.
    pub spot: Option<SpotFigures>,
    /// Latest event time seen when learning ended.
    pub at_ms: u64,
    /// End of the learning window (event time): scores of records that ended before it were
    /// learnt from.
    #[serde(default)]
    pub window_end_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SpotFigures {
    pub q: f64,
    pub level: f64,
    pub t: f64,
    pub gamma: f64,
    pub sigma: f64,
    pub peaks: u64,
}
