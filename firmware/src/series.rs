//! The `series-v1` feature schema: per-interface traffic rates turned into windows of 50 steps
//! for the LSTM autoencoder.
//!
//! Each poll step of an interface (an SNMP rate sample) becomes one 8-value row: the step's
//! `in_bps` and `out_bps`, the `hour` and `day_of_week` of its timestamp, and the mean and
//! population standard deviation of in and out bps over the last [`ROLLING_STEPS`] known steps,
//! the current one included. The detector scores the last [`WINDOW_STEPS`] rows as one window.
//! Training reads the same rows from `netwarden features --series`, so this file is the only
//! definition of them.
//!
//! Unknown steps (a rate of `None`: agent restart, counter discontinuity, failed poll) are
//! never filled in, because the window must hold only measured values:
//! - an unknown step is skipped: it adds no row and leaves the rolling stats and the window as
//!   they were, so a single lost poll does not cost 56 steps of warm-up;
//! - more than [`SeriesParams::max_unknown_steps`] unknown steps in a row restart the
//!   interface: rolling stats and window are emptied and a new *segment* begins, since rows on
//!   both sides of a long gap are not consecutive any more;
//! - a known step more than [`SeriesParams::max_gap_ms`] after the previous known one (when
//!   that is set) restarts it too (a source that emits nothing for missed polls);
//! - a step not later than the previous known one is dropped (counted), never reordered.
//!
//! A row exists only once the rolling stats cover [`ROLLING_STEPS`] known steps of the current
//! segment, so the first 5 known steps after a (re)start produce no row and a window is
//! complete after `5 + 50` known steps.
//!
//! Time features use the step's `ts_ms` in UTC plus a configurable offset (whole seconds):
//! `hour` in 0..=23, `day_of_week` 0 = Monday .. 6 = Sunday.

use heapless::HistoryBuf;

use crate::scoring::{severity, Verdict};

/// Schema name recorded in model manifests.
pub const SERIES_SCHEMA: &str = "series-v1";

/// Feature names, in row order. Changing this is a schema change (new [`SERIES_SCHEMA`]).
pub const SERIES_FEATURES: [&str; 8] = [
    "in_bps",
    "out_bps",
    "hour",
    "day_of_week",
    "in_bps_ma",
    "out_bps_ma",
    "in_bps_std",
    "out_bps_std",
];

/// Number of features in a `series-v1` row.
pub const SERIES_WIDTH: usize = SERIES_FEATURES.len();

/// Steps in a scored window.
pub const WINDOW_STEPS: usize = 50;

/// Known steps behind the rolling mean and standard deviation.
pub const ROLLING_STEPS: usize = 6;

/// One step's raw (unscaled) features in [`SERIES_FEATURES`] order.
pub type SeriesRow = [f32; SERIES_WIDTH];

/// Which features describe the inbound and outbound direction (for alert explanations).
pub const IN_FEATURES: [usize; 3] = [0, 4, 6];
pub const OUT_FEATURES: [usize; 3] = [1, 5, 7];

/// How a series treats time and gaps. Training and serving must use the same values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeriesParams {
    /// Added to UTC before taking hour and day of week (a site's local time), seconds.
    pub utc_offset_s: i32,
    /// Consecutive unknown steps tolerated; one more restarts the interface.
    pub max_unknown_steps: u16,
    /// A known step this long after the previous known step restarts the interface; 0: never.
    pub max_gap_ms: u64,
}

impl SeriesParams {
    pub const DEFAULT: SeriesParams = SeriesParams {
        utc_offset_s: 0,
        max_unknown_steps: 2,
        max_gap_ms: 0,
    };
}

impl Default for SeriesParams {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// What one step did to a series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Step {
    /// The step had an unknown rate; nothing was added. `restarted` when this unknown step
    /// was one too many and the series started over.
    Unknown { restarted: bool },
    /// The step's time was not after the previous known step's; dropped.
    OutOfOrder,
    /// Known, but the rolling stats are not yet over [`ROLLING_STEPS`] steps; no row.
    WarmingUp,
    /// A row was appended to the window; `window_full` when the window now holds
    /// [`WINDOW_STEPS`] rows and can be scored.
    Row { row: SeriesRow, window_full: bool },
}

/// Counters of what a series skipped or restarted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeriesStats {
    pub unknown_steps: u64,
    pub out_of_order_steps: u64,
    /// Restarts caused by too many unknown steps in a row or a time gap.
    pub restarts: u64,
    /// Rows produced.
    pub rows: u64,
}

/// One interface's rolling stats and window of the last `W` rows (fixed memory, no
/// allocation: about `W * 32 + 150` bytes).
#[derive(Debug, Clone)]
pub struct SeriesWindow<const W: usize = WINDOW_STEPS> {
    recent: HistoryBuf<(f64, f64), ROLLING_STEPS>,
    rows: HistoryBuf<SeriesRow, W>,
    last_known_ms: Option<u64>,
    unknown_run: u16,
    segment: u32,
    stats: SeriesStats,
}

impl<const W: usize> Default for SeriesWindow<W> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const W: usize> SeriesWindow<W> {
    pub const fn new() -> Self {
        SeriesWindow {
            recent: HistoryBuf::new(),
            rows: HistoryBuf::new(),
            last_known_ms: None,
            unknown_run: 0,
            segment: 0,
            stats: SeriesStats {
                unknown_steps: 0,
                out_of_order_steps: 0,
                restarts: 0,
                rows: 0,
            },
        }
    }

    pub fn stats(&self) -> SeriesStats {
        self.stats
    }

    /// Restarts so far: rows with the same segment are consecutive known steps.
    pub fn segment(&self) -> u32 {
        self.segment
    }

    /// Rows in the window (at most `W`).
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn is_full(&self) -> bool {
        self.rows.is_full()
    }

    /// The window's rows, oldest first.
    pub fn rows(&self) -> impl Iterator<Item = &SeriesRow> + '_ {
        self.rows.oldest_ordered()
    }

    /// Feeds one step. `in_bps`/`out_bps` of `None` (or not finite, or negative) make the step
    /// unknown: both directions are needed for a row.
    pub fn push(
        &mut self,
        ts_ms: u64,
        in_bps: Option<f64>,
        out_bps: Option<f64>,
        params: &SeriesParams,
    ) -> Step {
        let known = |v: Option<f64>| v.filter(|x| x.is_finite() && *x >= 0.0);
        let (Some(rin), Some(rout)) = (known(in_bps), known(out_bps)) else {
            self.stats.unknown_steps += 1;
            self.unknown_run = self.unknown_run.saturating_add(1);
            let restarted = self.unknown_run == params.max_unknown_steps.saturating_add(1);
            if restarted {
                self.restart();
            }
            return Step::Unknown { restarted };
        };
        if let Some(last) = self.last_known_ms {
            if ts_ms <= last {
                self.stats.out_of_order_steps += 1;
                return Step::OutOfOrder;
            }
            if params.max_gap_ms > 0 && ts_ms - last > params.max_gap_ms {
                self.restart();
            }
        }
        self.unknown_run = 0;
        self.last_known_ms = Some(ts_ms);
        self.recent.write((rin, rout));
        if !self.recent.is_full() {
            return Step::WarmingUp;
        }
        let (hour, dow) = hour_and_weekday(ts_ms, params.utc_offset_s);
        let (mean_in, std_in) = mean_std(self.recent.as_slice().iter().map(|p| p.0));
        let (mean_out, std_out) = mean_std(self.recent.as_slice().iter().map(|p| p.1));
        let row = [
            rin as f32,
            rout as f32,
            hour as f32,
            dow as f32,
            mean_in as f32,
            mean_out as f32,
            std_in as f32,
            std_out as f32,
        ];
        self.rows.write(row);
        self.stats.rows += 1;
        Step::Row {
            row,
            window_full: self.rows.is_full(),
        }
    }

    /// Empties rolling stats and window and starts a new segment (counted).
    fn restart(&mut self) {
        self.recent.clear();
        self.rows.clear();
        self.last_known_ms = None;
        self.segment = self.segment.wrapping_add(1);
        self.stats.restarts += 1;
    }
}

/// Mean and population standard deviation of a short series (two passes: exact enough for
/// rates up to 1e12 bps, which a running sum of squares is not).
fn mean_std(values: impl Iterator<Item = f64> + Clone) -> (f64, f64) {
    let (mut n, mut sum) = (0usize, 0.0f64);
    for v in values.clone() {
        n += 1;
        sum += v;
    }
    if n == 0 {
        return (0.0, 0.0);
    }
    let mean = sum / n as f64;
    let var = values.map(|v| (v - mean) * (v - mean)).sum::<f64>() / n as f64;
    (mean, libm::sqrt(var))
}

/// Hour of day (0..=23) and day of week (0 = Monday) of `ts_ms` shifted by `utc_offset_s`.
pub fn hour_and_weekday(ts_ms: u64, utc_offset_s: i32) -> (u8, u8) {
    let s = (ts_ms / 1000) as i64 + utc_offset_s as i64;
    let day = s.div_euclid(86_400);
    let hour = s.rem_euclid(86_400) / 3600;
    // 1970-01-01 was a Thursday (3 with Monday = 0).
    let dow = (day + 3).rem_euclid(7);
    (hour as u8, dow as u8)
}

/// Which direction an anomalous window is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    In,
    Out,
    Both,
}

impl Direction {
    pub const fn as_str(self) -> &'static str {
        match self {
            Direction::In => "in",
            Direction::Out => "out",
            Direction::Both => "both",
        }
    }

    /// `In` when the inbound features ([`IN_FEATURES`]) carry at least twice the squared error
    /// of the outbound ones, `Out` the other way round, else `Both`.
    pub fn of(contributions: &[f32; SERIES_WIDTH]) -> Direction {
        let sum = |idx: &[usize; 3]| idx.iter().map(|&i| contributions[i]).sum::<f32>();
        let (i, o) = (sum(&IN_FEATURES), sum(&OUT_FEATURES));
        if i >= 2.0 * o {
            Direction::In
        } else if o >= 2.0 * i {
            Direction::Out
        } else {
            Direction::Both
        }
    }
}

impl core::fmt::Display for Direction {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Judges one window's reconstruction: `scaled` and `output` are `steps x SERIES_WIDTH`
/// values, row-major. The error is the mean squared error over the whole window; feature `i`'s
/// contribution is its mean squared error over the steps, so the contributions' mean is the
/// error. A short or NaN output gives a NaN error (judged high), never a panic.
pub fn judge_window(
    scaled: &[f32],
    output: &[f32],
    threshold: f32,
    high_ratio: f32,
) -> Verdict<SERIES_WIDTH> {
    let mut sums = [0.0f64; SERIES_WIDTH];
    let steps = scaled.len() / SERIES_WIDTH;
    for (k, x) in scaled.iter().enumerate().take(steps * SERIES_WIDTH) {
        let o = output.get(k).copied().unwrap_or(f32::NAN);
        let d = (*x - o) as f64;
        sums[k % SERIES_WIDTH] += d * d;
    }
    let mut contributions = [0.0f32; SERIES_WIDTH];
    let mut total = 0.0f64;
    for (c, s) in contributions.iter_mut().zip(sums) {
        let mean = if steps == 0 {
            f64::NAN
        } else {
            s / steps as f64
        };
        *c = mean as f32;
        total += mean;
    }
    let error = (total / SERIES_WIDTH as f64) as f32;
    Verdict {
        error,
        severity: severity(error, threshold, high_ratio),
        contributions,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// 2026-11-16T00:00:00Z, a Monday.
    const MONDAY: u64 = 1_794_787_200_000;
    const P: SeriesParams = SeriesParams::DEFAULT;

    #[test]
    fn calendar_features() {
        assert_eq!(hour_and_weekday(MONDAY, 0), (0, 0));
        assert_eq!(
            hour_and_weekday(MONDAY + 13 * 3_600_000 + 59_999, 0),
            (13, 0)
        );
        assert_eq!(hour_and_weekday(MONDAY + 6 * 86_400_000, 0), (0, 6));
        // Sunday 23:00 UTC is Monday 01:00 at UTC+2 and Sunday 18:00 at UTC-5.
        let sun23 = MONDAY - 3_600_000;
        assert_eq!(hour_and_weekday(sun23, 0), (23, 6));
        assert_eq!(hour_and_weekday(sun23, 7200), (1, 0));
        assert_eq!(hour_and_weekday(sun23, -5 * 3600), (18, 6));
        assert_eq!(hour_and_weekday(0, 0), (0, 3));
        assert_eq!(hour_and_weekday(0, -3600), (23, 2));
    }

    #[test]
    fn rows_start_after_warm_up_and_rolling_stats_are_population_stats() {
        let mut w: SeriesWindow<4> = SeriesWindow::new();
        for k in 1..=5u64 {
            let s = w.push(MONDAY + k * 300_000, Some(k as f64), Some(10.0), &P);
            assert_eq!(s, Step::WarmingUp);
        }
        let Step::Row { row, window_full } =
            w.push(MONDAY + 6 * 300_000 + 3_600_000, Some(6.0), Some(10.0), &P)
        else {
            panic!("expected a row");
        };
        assert!(!window_full);
        // 1..=6: mean 3.5, population variance 35/12.
        assert_eq!(row[0], 6.0);
        assert_eq!(row[2], 1.0);
        assert_eq!(row[3], 0.0);
        assert!((row[4] - 3.5).abs() < 1e-6);
        assert!((row[6] as f64 - (35.0f64 / 12.0).sqrt()).abs() < 1e-6);
        assert_eq!((row[5], row[7]), (10.0, 0.0));
        for k in 7..=9u64 {
            let s = w.push(MONDAY + k * 300_000 + 3_600_000, Some(1.0), Some(1.0), &P);
            assert!(matches!(s, Step::Row { window_full, .. } if window_full == (k == 9)));
        }
        assert_eq!(w.len(), 4);
        assert_eq!(w.rows().next().map(|r| r[0]), Some(6.0));
    }

    #[test]
    fn a_short_gap_is_skipped_a_long_one_restarts() {
        let mut w: SeriesWindow<4> = SeriesWindow::new();
        let mut t = MONDAY;
        let mut step = |w: &mut SeriesWindow<4>, v: Option<f64>| {
            t += 300_000;
            w.push(t, v, Some(1.0), &P)
        };
        for _ in 0..8 {
            step(&mut w, Some(1.0));
        }
        assert_eq!(w.len(), 3);
        assert_eq!(step(&mut w, None), Step::Unknown { restarted: false });
        assert_eq!(step(&mut w, None), Step::Unknown { restarted: false });
        assert!(matches!(step(&mut w, Some(2.0)), Step::Row { .. }));
        assert_eq!(w.len(), 4);
        assert_eq!((w.segment(), w.stats().restarts), (0, 0));
        // Three in a row: one too many.
        step(&mut w, None);
        step(&mut w, None);
        assert_eq!(step(&mut w, None), Step::Unknown { restarted: true });
        assert_eq!(step(&mut w, None), Step::Unknown { restarted: false });
        assert_eq!((w.len(), w.segment(), w.stats().restarts), (0, 1, 1));
        assert_eq!(step(&mut w, Some(1.0)), Step::WarmingUp);
        assert_eq!(w.stats().unknown_steps, 6);
        // Half-known, negative and NaN rates are unknown too.
        assert!(matches!(
            w.push(t + 1, Some(1.0), None, &P),
            Step::Unknown { .. }
        ));
        assert!(matches!(
            w.push(t + 2, Some(-1.0), Some(1.0), &P),
            Step::Unknown { .. }
        ));
        assert!(matches!(
            w.push(t + 3, Some(f64::NAN), Some(1.0), &P),
            Step::Unknown { .. }
        ));
    }

    #[test]
    fn out_of_order_steps_are_dropped_and_time_gaps_restart_when_set() {
        let p = SeriesParams {
            max_gap_ms: 900_000,
            ..P
        };
        let mut w: SeriesWindow<4> = SeriesWindow::new();
        for k in 1..=7u64 {
            w.push(MONDAY + k * 300_000, Some(1.0), Some(1.0), &p);
        }
        assert_eq!(w.len(), 2);
        assert_eq!(
            w.push(MONDAY + 7 * 300_000, Some(1.0), Some(1.0), &p),
            Step::OutOfOrder
        );
        assert_eq!(w.stats().out_of_order_steps, 1);
        assert_eq!(
            w.push(MONDAY + 20 * 300_000, Some(1.0), Some(1.0), &p),
            Step::WarmingUp
        );
        assert_eq!((w.len(), w.segment()), (0, 1));
    }

    #[test]
    fn window_verdict_contributions_and_direction() {
        let scaled = [0.0f32; 2 * SERIES_WIDTH];
        let mut out = [0.0f32; 2 * SERIES_WIDTH];
        out[0] = 1.0; // in_bps, step 0
        out[SERIES_WIDTH + 4] = 1.0; // in_bps_ma, step 1
        out[SERIES_WIDTH + 1] = 0.5; // out_bps, step 1
        let v = judge_window(&scaled, &out, 0.05, 2.0);
        assert!((v.error - 2.25 / 16.0).abs() < 1e-6);
        assert_eq!(v.contributions[0], 0.5);
        assert_eq!(v.contributions[1], 0.125);
        assert_eq!(v.severity, Some(crate::Severity::High));
        assert_eq!(v.ranked()[..3], [0, 4, 1]);
        assert_eq!(Direction::of(&v.contributions), Direction::In);
        let mut c = [0.0; SERIES_WIDTH];
        c[1] = 1.0;
        c[0] = 0.6;
        assert_eq!(Direction::of(&c), Direction::Both);
        c[0] = 0.1;
        assert_eq!(Direction::of(&c), Direction::Out);
        assert!(judge_window(&scaled, &out[..3], 0.05, 2.0).error.is_nan());
    }

    proptest! {
        #[test]
        fn rolling_stats_match_a_direct_computation(
            values in proptest::collection::vec(0.0f64..1e10, 6..40),
        ) {
            let mut w: SeriesWindow<8> = SeriesWindow::new();
            for (k, v) in values.iter().enumerate() {
                let step = w.push(MONDAY + k as u64 * 60_000, Some(*v), Some(v / 2.0), &P);
                if k + 1 < ROLLING_STEPS {
                    prop_assert_eq!(step, Step::WarmingUp);
                    continue;
                }
                let Step::Row { row, .. } = step else {
                    return Err(TestCaseError::fail("no row"));
                };
                let last = &values[k + 1 - ROLLING_STEPS..=k];
                let mean = last.iter().sum::<f64>() / ROLLING_STEPS as f64;
                let var = last.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / ROLLING_STEPS as f64;
                prop_assert!(((row[4] as f64) - mean).abs() <= 1e-6 * mean.max(1.0));
                prop_assert!(((row[6] as f64) - var.sqrt()).abs() <= 1e-5 * mean.max(1.0));
                prop_assert!(((row[5] as f64) - mean / 2.0).abs() <= 1e-6 * mean.max(1.0));
                prop_assert!(row[6] >= 0.0 && row[7] >= 0.0);
            }
            prop_assert!(w.len() <= 8);
        }
    }
}
