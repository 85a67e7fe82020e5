//! Recent scores for the dashboard and `/metrics`: what the detectors saw in the last hour, at
//! a finer grain than the history's per-minute summaries ([`crate::sinks::history`]).
//!
//! The flow pipeline scores up to millions of records a second, so nothing here is touched per
//! record under a lock: the pipeline thread keeps a plain [`ScoreTally`] (counts, the maximum and
//! mean error, an error histogram: no hashing, no allocation) and hands it to the shared
//! [`ScoreBoard`] once a second, one lock per second. Series windows are few (one per interface
//! per poll) and are published per batch. Top talkers and stored scores come from the history.
//!
//! Memory is bounded: an hour of per-second flow points, the latest rates and window error of
//! at most [`MAX_SERIES`] interfaces.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;

/// Histogram bins per decade of reconstruction error.
pub const BINS_PER_DECADE: usize = 10;
/// The histogram covers errors from 10^LOG_MIN to 10^LOG_MAX (out-of-range errors land in the
/// first or last bin).
pub const LOG_MIN: i32 = -6;
pub const LOG_MAX: i32 = 2;
pub const HIST_BINS: usize = (LOG_MAX - LOG_MIN) as usize * BINS_PER_DECADE;

/// Per-second flow points kept (one hour).
pub const FLOW_POINTS: usize = 3600;
/// Interfaces whose latest rates and error are kept.
pub const MAX_SERIES: usize = 2048;

/// Lower edges of bins 1.. (bin 0 takes everything below the first), computed once.
fn edges() -> &'static [f32; HIST_BINS - 1] {
    static EDGES: std::sync::OnceLock<[f32; HIST_BINS - 1]> = std::sync::OnceLock::new();
    EDGES.get_or_init(|| std::array::from_fn(|i| bin_lower(i + 1) as f32))
}

/// The histogram bin of `error`: a binary search over the edges (no logarithm on the hot
/// path).
#[inline]
pub fn bin_of(error: f32) -> usize {
    if error.is_nan() || error <= 0.0 {
        return 0;
    }
    edges().partition_point(|&e| e <= error)
}

/// The lower edge of bin `i`.
pub fn bin_lower(i: usize) -> f64 {
    10f64.powf(LOG_MIN as f64 + i as f64 / BINS_PER_DECADE as f64)
}

/// What the flow pipeline scored since the last hand-over; owned by the pipeline thread.
#[derive(Debug)]
pub struct ScoreTally {
    pub flows: u64,
    pub anomalous: u64,
    pub max_error: f32,
    pub sum_error: f64,
    pub hist: Box<[u64; HIST_BINS]>,
}

impl Default for ScoreTally {
    fn default() -> Self {
        ScoreTally {
            flows: 0,
            anomalous: 0,
            max_error: 0.0,
            sum_error: 0.0,
            hist: Box::new([0; HIST_BINS]),
        }
    }
}

impl ScoreTally {
    /// One scored flow: a few adds and a log10, no hashing, no locks.
    #[inline]
    pub fn record(&mut self, error: f32, anomalous: bool) {
        self.flows += 1;
        self.anomalous += u64::from(anomalous);
        if error.is_finite() {
            self.max_error = self.max_error.max(error);
            self.sum_error += f64::from(error);
        }
        self.hist[bin_of(error)] += 1;
    }

    /// Hands the tally over and starts a new one.
    pub fn take(&mut self) -> ScoreTally {
        std::mem::take(self)
    }
}

/// An interface's latest rates: (ts_ms, in_bps, out_bps).
pub type LatestRates = (u64, Option<f64>, Option<f64>);

/// An interface, its latest rates and its latest window error.
pub type InterfaceNow = ((String, String), Option<LatestRates>, Option<f32>);

/// One second of flow scoring.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct FlowPoint {
    pub ts_ms: u64,
    pub flows: u64,
    pub anomalous: u64,
    pub max_error: f32,
    pub mean_error: f32,
}

#[derive(Debug, Default)]
struct State {
    flow: VecDeque<FlowPoint>,
    flow_hist: Vec<u64>,
    series_hist: Vec<u64>,
    /// Latest rates and latest window error per (target, if_name).
    ifaces: HashMap<(String, String), (Option<LatestRates>, Option<f32>)>,
}

/// The shared board: written by the pipeline threads, read by the HTTP handlers.
#[derive(Debug, Clone, Default)]
pub struct ScoreBoard {
    state: Arc<Mutex<State>>,
}

impl ScoreBoard {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind; keep serving it.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds one second's tally (`now_ms` is when it was handed over).
    pub fn publish_flow(&self, now_ms: u64, t: ScoreTally) {
        let mut s = self.lock();
        if t.flows > 0 {
            if s.flow.len() >= FLOW_POINTS {
                s.flow.pop_front();
            }
            s.flow.push_back(FlowPoint {
                ts_ms: now_ms,
                flows: t.flows,
                anomalous: t.anomalous,
                max_error: t.max_error,
                mean_error: (t.sum_error / t.flows as f64) as f32,
            });
        }
        if s.flow_hist.len() != HIST_BINS {
            s.flow_hist = vec![0; HIST_BINS];
        }
        for (a, b) in s.flow_hist.iter_mut().zip(t.hist.iter()) {
            *a += b;
        }
    }

    /// Adds the window scores of one series batch (`subject` is `target/if_name`).
    pub fn publish_series(&self, scores: &[crate::records::ScoreSummary]) {
        if scores.is_empty() {
            return;
        }
        let mut s = self.lock();
        if s.series_hist.len() != HIST_BINS {
            s.series_hist = vec![0; HIST_BINS];
        }
        for w in scores {
            s.series_hist[bin_of(w.max_error)] += 1;
            let Some((target, if_name)) = w.subject.split_once('/') else {
                continue;
            };
            let key = (target.to_string(), if_name.to_string());
            if !s.ifaces.contains_key(&key) && s.ifaces.len() >= MAX_SERIES {
                continue;
            }
            s.ifaces.entry(key).or_default().1 = Some(w.max_error);
        }
    }

    /// Remembers each interface's latest rates (for `/metrics`).
    pub fn publish_rates(&self, samples: &[crate::records::RateSample]) {
        let mut s = self.lock();
        for x in samples {
            let key = (x.target.clone(), x.if_name.clone());
            if !s.ifaces.contains_key(&key) && s.ifaces.len() >= MAX_SERIES {
                continue;
            }
            s.ifaces.entry(key).or_default().0 = Some((x.ts_ms, x.in_bps, x.out_bps));
        }
    }

    /// Every interface's latest rates and latest window error, sorted by (target, if_name).
    pub fn interfaces(&self) -> Vec<InterfaceNow> {
        let s = self.lock();
        let mut v: Vec<InterfaceNow> = s
            .ifaces
            .iter()
            .map(|(k, (rates, error))| (k.clone(), *rates, *error))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// Flow points with `from_ms <= ts_ms < to_ms`.
    pub fn flow_points(&self, from_ms: u64, to_ms: u64) -> Vec<FlowPoint> {
        let s = self.lock();
        s.flow
            .iter()
            .filter(|p| p.ts_ms >= from_ms && p.ts_ms < to_ms)
            .copied()
            .collect()
    }

    /// Cumulative error histograms since start: (flow, series), [`HIST_BINS`] counts each.
    pub fn histograms(&self) -> (Vec<u64>, Vec<u64>) {
        let s = self.lock();
        let fill = |v: &Vec<u64>| {
            if v.is_empty() {
                vec![0; HIST_BINS]
            } else {
                v.clone()
            }
        };
        (fill(&s.flow_hist), fill(&s.series_hist))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_cover_decades_and_clamp() {
        assert_eq!(bin_of(0.0), 0);
        assert_eq!(bin_of(f32::NAN), 0);
        assert_eq!(bin_of(1e-9), 0);
        assert_eq!(bin_of(1e9), HIST_BINS - 1);
        let i = bin_of(0.0174);
        assert!(bin_lower(i) <= 0.0174 && 0.0174 < bin_lower(i + 1), "{i}");
    }

    #[test]
    fn tallies_become_points_and_histograms() {
        let board = ScoreBoard::default();
        let mut t = ScoreTally::default();
        t.record(0.01, false);
        t.record(0.5, true);
        t.record(0.001, false);
        board.publish_flow(60_000, t.take());
        assert_eq!(t.flows, 0, "take resets");
        let pts = board.flow_points(0, u64::MAX);
        assert_eq!(pts.len(), 1);
        assert_eq!((pts[0].flows, pts[0].anomalous), (3, 1));
        assert!((pts[0].max_error - 0.5).abs() < 1e-6);
        let (flow, series) = board.histograms();
        assert_eq!(flow.iter().sum::<u64>(), 3);
        assert_eq!(series.iter().sum::<u64>(), 0);
        // An empty second adds no point.
        board.publish_flow(61_000, t.take());
        assert_eq!(board.flow_points(0, u64::MAX).len(), 1);
    }

    #[test]
    fn interfaces_join_rates_and_scores() {
        let board = ScoreBoard::default();
        board.publish_rates(&[crate::records::RateSample {
            target: "r1".into(),
            if_index: 1,
            if_name: "eth0".into(),
            ts_ms: 5,
            step_ms: 1,
            in_bps: Some(1.0),
            out_bps: None,
        }]);
        board.publish_series(&[crate::records::ScoreSummary {
            ts_ms: 5,
            detector: "series_ae".into(),
            model: "m".into(),
            subject: "r1/eth0".into(),
            count: 1,
            anomalous: 0,
            mean_error: 0.002,
            max_error: 0.002,
            threshold: 0.001,
        }]);
        let v = board.interfaces();
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].1, Some((5, Some(1.0), None)));
        assert_eq!(v[0].2, Some(0.002));
        assert_eq!(board.histograms().1.iter().sum::<u64>(), 1);
    }
}
