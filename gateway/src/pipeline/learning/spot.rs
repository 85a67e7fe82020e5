//! SPOT's calibration step: an extreme-value threshold (Siffer, Fouque, Termier, Largouët,
//! "Anomaly Detection in Streams with Extreme Value Theory", KDD 2017), ported from
//! `models/netwarden_models/evaluate/spot.py` (same method, same defaults, same fallbacks).
//!
//! Peaks over threshold: above a high initial threshold `t` (the `level` quantile of the
//! scores, 0.98 by default) the excesses `Y = X - t` follow a generalised Pareto distribution
//! GPD(gamma, sigma). With `n` scores, `N_t` of them peaks, the score exceeded with probability
//! `q` (the risk) is `z_q = t + sigma / gamma * ((q n / N_t)^-gamma - 1)` (`t - sigma ln(q n /
//! N_t)` when gamma = 0). The GPD is fitted by maximum likelihood with Grimshaw's trick: the
//! stationary points are the roots of `u(x) v(x) = 1`, searched on `(-1/max Y, 0)` and
//! `(0, 2 (mean Y - min Y) / (mean Y min Y))` by a log-spaced grid and bisection; the
//! exponential tail (gamma = 0, sigma = mean Y) is always a candidate; the best likelihood among
//! candidates with |gamma| <= [`MAX_SHAPE`] wins.

use serde::{Deserialize, Serialize};

const EPS: f64 = 1e-8;

/// Largest shape |gamma| accepted (finite variance). Unlike the Python reference, which takes
/// any root: with tens of peaks, many of them tied, Grimshaw's maximum likelihood finds shapes
/// of 1.6-1.9 with a tiny scale (seen on the lab runs' benign lead-ins), whose 1e-4 quantile is
/// 20-80x the largest score. The exponential tail is always a candidate.
pub const MAX_SHAPE: f64 = 0.5;

/// A fitted SPOT threshold.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SpotFit {
    pub q: f64,
    pub level: f64,
    /// The initial threshold (the `level` quantile).
    pub t: f64,
    pub gamma: f64,
    pub sigma: f64,
    pub n: u64,
    pub peaks: u64,
    /// The threshold: exceeded with probability `q`.
    pub z: f64,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SpotError {
    #[error("q and level must be in (0, 1), got {q} and {level}")]
    Parameters { q: f64, level: f64 },
    #[error(
        "SPOT needs at least 10 peaks above the {level} quantile; got {peaks} from {n} scores"
    )]
    TooFewPeaks { level: f64, peaks: usize, n: usize },
}

/// The `level` quantile of sorted `x` with linear interpolation (numpy's default).
pub fn quantile_sorted(x: &[f64], level: f64) -> f64 {
    if x.is_empty() {
        return f64::NAN;
    }
    let pos = level.clamp(0.0, 1.0) * (x.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    x[lo] + (x[hi] - x[lo]) * (pos - lo as f64)
}

/// Fits SPOT on `scores` (any order; non-finite values are ignored).
pub fn fit(scores: &[f64], q: f64, level: f64) -> Result<SpotFit, SpotError> {
    if !(q > 0.0 && q < 1.0 && level > 0.0 && level < 1.0) {
        return Err(SpotError::Parameters { q, level });
    }
    let mut x: Vec<f64> = scores.iter().copied().filter(|v| v.is_finite()).collect();
    x.sort_by(f64::total_cmp);
    let t = quantile_sorted(&x, level);
    let peaks: Vec<f64> = x.iter().filter(|&&v| v > t).map(|v| v - t).collect();
    if peaks.len() < 10 {
        return Err(SpotError::TooFewPeaks {
            level,
            peaks: peaks.len(),
            n: x.len(),
        });
    }
    let (gamma, sigma) = fit_gpd(&peaks);
    let z = quantile(t, gamma, sigma, q, x.len(), peaks.len());
    Ok(SpotFit {
        q,
        level,
        t,
        gamma,
        sigma,
        n: x.len() as u64,
        peaks: peaks.len() as u64,
        z,
    })
}

fn quantile(t: f64, gamma: f64, sigma: f64, q: f64, n: usize, peaks: usize) -> f64 {
    let r = q * n as f64 / peaks as f64;
    if gamma.abs() < 1e-12 {
        t - sigma * r.ln()
    } else {
        t + sigma / gamma * (r.powf(-gamma) - 1.0)
    }
}

fn mean(it: impl Iterator<Item = f64>) -> f64 {
    let (mut s, mut n) = (0.0, 0usize);
    for v in it {
        s += v;
        n += 1;
    }
    s / n.max(1) as f64
}

fn u_v(x: f64, y: &[f64]) -> f64 {
    let u = mean(y.iter().map(|v| 1.0 / (1.0 + x * v)));
    let v = 1.0 + mean(y.iter().map(|v| (1.0 + x * v).ln()));
    u * v - 1.0
}

fn roots(y: &[f64], lo: f64, hi: f64) -> Vec<f64> {
    const POINTS: usize = 200;
    if hi <= lo || (lo < 0.0 && hi > 0.0) {
        return Vec::new();
    }
    let sign = if hi <= 0.0 { -1.0 } else { 1.0 };
    let (a, b) = if lo.abs() < hi.abs() {
        (lo.abs(), hi.abs())
    } else {
        (hi.abs(), lo.abs())
    };
    let a = a.max(b * 1e-9);
    let ratio = (b / a).ln();
    let mut grid: Vec<f64> = (0..POINTS)
        .map(|i| sign * a * (ratio * i as f64 / (POINTS - 1) as f64).exp())
        .collect();
    grid.sort_by(f64::total_cmp);
    let vals: Vec<f64> = grid.iter().map(|&x| u_v(x, y)).collect();
    let mut out = Vec::new();
    for i in 0..POINTS - 1 {
        let (mut f0, f1) = (vals[i], vals[i + 1]);
        if !(f0.is_finite() && f1.is_finite()) || f0 * f1 > 0.0 {
            continue;
        }
        let (mut x0, mut x1) = (grid[i], grid[i + 1]);
        for _ in 0..80 {
            let mid = 0.5 * (x0 + x1);
            let fm = u_v(mid, y);
            if f0 * fm <= 0.0 {
                x1 = mid;
            } else {
                (x0, f0) = (mid, fm);
            }
        }
        out.push(0.5 * (x0 + x1));
    }
    out
}

/// Log-likelihood of a GPD for excesses `y`.
pub fn gpd_log_likelihood(y: &[f64], gamma: f64, sigma: f64) -> f64 {
    if sigma <= 0.0 {
        return f64::NEG_INFINITY;
    }
    let n = y.len() as f64;
    if gamma.abs() < 1e-12 {
        return -n * sigma.ln() - y.iter().sum::<f64>() / sigma;
    }
    let mut s = 0.0;
    for v in y {
        let z = 1.0 + gamma * v / sigma;
        if z <= 0.0 {
            return f64::NEG_INFINITY;
        }
        s += z.ln();
    }
    -n * sigma.ln() - (1.0 + 1.0 / gamma) * s
}

/// (gamma, sigma) of a GPD fitted to positive excesses `y` (Grimshaw).
pub fn fit_gpd(y: &[f64]) -> (f64, f64) {
    let ymin = y.iter().copied().fold(f64::INFINITY, f64::min);
    let ymax = y.iter().copied().fold(0.0, f64::max);
    let ymean = mean(y.iter().copied());
    let mut candidates = vec![(0.0, ymean)];
    let lo_neg = -1.0 / ymax + EPS;
    let hi_pos = if ymin > 0.0 {
        2.0 * (ymean - ymin) / (ymean * ymin)
    } else {
        0.0
    };
    for x in roots(y, lo_neg, -EPS)
        .into_iter()
        .chain(roots(y, EPS, hi_pos))
    {
        let gamma = mean(y.iter().map(|v| (x * v).ln_1p()));
        if x.abs() > 0.0 && gamma.abs() > 1e-12 {
            candidates.push((gamma, gamma / x));
        }
    }
    candidates
        .into_iter()
        .filter(|&(g, _)| g.abs() <= MAX_SHAPE)
        .map(|(g, s)| (g, s, gpd_log_likelihood(y, g, s)))
        .max_by(|a, b| a.2.total_cmp(&b.2))
        .map_or((0.0, ymean), |(g, s, _)| (g, s))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic uniform numbers in (0, 1) (a small LCG), so no test depends on a seed crate.
    fn uniforms(n: usize, mut state: u64) -> Vec<f64> {
        (0..n)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((state >> 11) as f64 + 0.5) / (1u64 << 53) as f64
            })
            .collect()
    }

    #[test]
    fn exponential_scores_give_the_exponential_quantile() {
        // Exp(1): P(X > z) = e^-z, so z_q = -ln q.
        let x: Vec<f64> = uniforms(20_000, 7).iter().map(|u| -u.ln()).collect();
        let f = fit(&x, 1e-3, 0.98).expect("fit");
        assert!((f.z - (1e3f64).ln()).abs() < 0.6, "{f:?}");
        assert!(f.gamma.abs() < 0.2, "{f:?}");
        assert_eq!(f.peaks, 400);
    }

    #[test]
    fn pareto_tail_is_heavy_and_the_quantile_right() {
        // Pareto(alpha = 2): P(X > z) = z^-2, z_q = q^-1/2; the GPD shape is 1/alpha.
        let x: Vec<f64> = uniforms(50_000, 3).iter().map(|u| u.powf(-0.5)).collect();
        let f = fit(&x, 1e-4, 0.98).expect("fit");
        assert!((f.gamma - 0.5).abs() < 0.15, "{f:?}");
        assert!((f.z / 100.0 - 1.0).abs() < 0.35, "{f:?}");
    }

    #[test]
    fn too_few_scores_or_bad_parameters_are_errors() {
        assert!(matches!(
            fit(&[1.0; 100], 1e-3, 0.98),
            Err(SpotError::TooFewPeaks { .. })
        ));
        assert!(matches!(
            fit(&[1.0; 100], 0.0, 0.98),
            Err(SpotError::Parameters { .. })
        ));
    }

    #[test]
    fn quantile_interpolates_like_numpy() {
        let x = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile_sorted(&x, 0.5), 2.5);
        assert_eq!(quantile_sorted(&x, 1.0), 4.0);
    }
}
