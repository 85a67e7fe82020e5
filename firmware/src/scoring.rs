//! Scaling, reconstruction error, severity and explanation: the arithmetic between a raw feature
//! vector and a verdict. The formulas are the bundle contract (`docs/bundle-format.md`); the
//! Python trainer implements the same ones and the golden vectors in every manifest pin them.

/// Below this a feature's training range counts as constant and is replaced by 1.0, so that a
/// feature that never moved in training still produces a (large) error when it moves.
pub const MIN_RANGE: f64 = 1e-6;

/// Per-feature `log1p` + min/max scaling, `N` features.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scaler<const N: usize> {
    log1p: [bool; N],
    min: [f64; N],
    range: [f64; N],
}

impl<const N: usize> Scaler<N> {
    pub fn new(log1p: [bool; N], min: [f64; N], max: [f64; N]) -> Self {
        let mut range = [1.0; N];
        for i in 0..N {
            let r = max[i] - min[i];
            range[i] = if r.is_finite() && r >= MIN_RANGE {
                r
            } else {
                1.0
            };
        }
        Scaler { log1p, min, range }
    }

    /// Scales one raw vector. No clipping: out-of-range input must be able to look anomalous.
    pub fn scale(&self, raw: &[f32; N]) -> [f32; N] {
        let mut out = [0.0; N];
        for i in 0..N {
            let x = raw[i] as f64;
            let v = if self.log1p[i] {
                log1p(if x > 0.0 { x } else { 0.0 })
            } else {
                x
            };
            out[i] = ((v - self.min[i]) / self.range[i]) as f32;
        }
        out
    }
}

/// `ln(1 + x)` for the scaler. Features are counts, sizes and durations: 0 or at least 1 nearly
/// always. There `ln(1 + x)` equals `log1p(x)` to within an ulp of f64 (1 + x is exact for
/// integers up to 2^53, and rounds by at most half an ulp above), far below the f32 the model
/// sees, and `ln` is several times faster than `log1p` (glibc's `__log1p_fma` was 17 % of the
/// pipeline bench's samples, issue 20, docs/performance.md); below 1 the exact `log1p` stays.
/// The bundle's golden vectors check the result at load.
#[inline]
fn log1p(x: f64) -> f64 {
    if x == 0.0 {
        0.0
    } else if x >= 1.0 {
        ln(1.0 + x)
    } else {
        log1p_exact(x)
    }
}

#[inline]
fn ln(x: f64) -> f64 {
    #[cfg(feature = "std")]
    {
        x.ln()
    }
    #[cfg(not(feature = "std"))]
    {
        libm::log(x)
    }
}

/// The platform's `log1p` where there is one (glibc's is several times faster than the portable
/// one), libm's on bare metal.
#[inline]
fn log1p_exact(x: f64) -> f64 {
    #[cfg(feature = "std")]
    {
        x.ln_1p()
    }
    #[cfg(not(feature = "std"))]
    {
        libm::log1p(x)
    }
}

/// Alert severity. `Medium` is over the threshold, `High` over `high_ratio` times it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Medium,
    High,
}

impl Severity {
    pub const fn as_str(self) -> &'static str {
        match self {
            Severity::Medium => "medium",
            Severity::High => "high",
        }
    }
}

impl core::fmt::Display for Severity {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the detector concluded about one vector.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Verdict<const N: usize> {
    /// Mean squared reconstruction error over the scaled features.
    pub error: f32,
    /// `None` when `error <= threshold`.
    pub severity: Option<Severity>,
    /// Per-feature squared error; their mean is `error`.
    pub contributions: [f32; N],
}

impl<const N: usize> Verdict<N> {
    /// Judges a reconstruction against a threshold.
    pub fn judge(scaled: &[f32; N], output: &[f32], threshold: f32, high_ratio: f32) -> Self {
        Self::judge_first(scaled, N, output, threshold, high_ratio)
    }

    /// [`Verdict::judge`] on the first `width` features only (a `flow-v1` model scored on the
    /// first 8 values of a wider `flow-v2` row); the rest contribute 0.
    pub fn judge_first(
        scaled: &[f32; N],
        width: usize,
        output: &[f32],
        threshold: f32,
        high_ratio: f32,
    ) -> Self {
        let width = width.min(N);
        let mut contributions = [0.0f32; N];
        let mut sum = 0.0f64;
        for i in 0..width {
            let o = output.get(i).copied().unwrap_or(f32::NAN);
            let d = scaled[i] - o;
            contributions[i] = d * d;
            sum += (d * d) as f64;
        }
        let error = if width == 0 {
            0.0
        } else {
            (sum / width as f64) as f32
        };
        Verdict {
            error,
            severity: severity(error, threshold, high_ratio),
            contributions,
        }
    }

    /// Feature indices by contribution, largest first (ties: lower index first).
    pub fn ranked(&self) -> [usize; N] {
        let mut idx = [0usize; N];
        for (i, slot) in idx.iter_mut().enumerate() {
            *slot = i;
        }
        // Insertion sort: N is tiny and this stays allocation-free.
        for i in 1..N {
            let mut j = i;
            while j > 0 && self.contributions[idx[j]] > self.contributions[idx[j - 1]] {
                idx.swap(j, j - 1);
                j -= 1;
            }
        }
        idx
    }
}

/// `None` at or under the threshold; NaN errors count as anomalous (high): a model that cannot
/// reconstruct a vector at all should be looked at, not silently passed.
pub fn severity(error: f32, threshold: f32, high_ratio: f32) -> Option<Severity> {
    if error.is_nan() || error > high_ratio * threshold {
        Some(Severity::High)
    } else if error > threshold {
        Some(Severity::Medium)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaling_follows_the_contract() {
        let s = Scaler::new(
            [true, false, false],
            [0.0, 2.0, 5.0],
            [libm::log1p(9.0), 4.0, 5.0],
        );
        let out = s.scale(&[9.0, 3.0, 7.0]);
        assert!((out[0] - 1.0).abs() < 1e-6);
        assert!((out[1] - 0.5).abs() < 1e-6);
        // Constant in training: range 1.0, so 7 - 5 = 2, not clipped.
        assert!((out[2] - 2.0).abs() < 1e-6);
        // Negative raw values are clamped at 0 before log1p.
        assert_eq!(s.scale(&[-3.0, 2.0, 5.0])[0], 0.0);
    }

    #[test]
    fn fast_log1p_matches_log1p_at_f32_precision() {
        // Counts, sizes and estimates as the features carry them, and fractions below 1.
        let mut x = 0.0f64;
        while x < 1e12 {
            for v in [x, x + 0.5, x * 1.37 + 0.001] {
                let (fast, exact) = (log1p(v), libm::log1p(v));
                assert!(
                    (fast - exact).abs() <= exact.abs() * 4.0 * f64::EPSILON,
                    "{v}: {fast} vs {exact}"
                );
                assert_eq!(fast as f32, exact as f32, "{v}");
            }
            x = if x < 2000.0 { x + 1.0 } else { x * 1.01 };
        }
    }

    #[test]
    fn severity_bands() {
        assert_eq!(severity(0.5, 1.0, 2.0), None);
        assert_eq!(severity(1.0, 1.0, 2.0), None);
        assert_eq!(severity(1.5, 1.0, 2.0), Some(Severity::Medium));
        assert_eq!(severity(2.5, 1.0, 2.0), Some(Severity::High));
        assert_eq!(severity(f32::NAN, 1.0, 2.0), Some(Severity::High));
    }

    #[test]
    fn verdict_error_is_mean_of_contributions_and_ranks_them() {
        let v = Verdict::<3>::judge(&[1.0, 0.0, 0.5], &[0.0, 0.0, 0.0], 0.1, 2.0);
        assert!((v.error - (1.0 + 0.25) / 3.0).abs() < 1e-6);
        assert_eq!(v.ranked(), [0, 2, 1]);
        assert_eq!(v.severity, Some(Severity::High));
        // A short output row is a NaN error, not a panic.
        let short = Verdict::<3>::judge(&[1.0, 0.0, 0.5], &[0.0], 0.1, 2.0);
        assert!(short.error.is_nan());
    }
}
