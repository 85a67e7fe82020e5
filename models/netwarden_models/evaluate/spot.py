"""SPOT: an extreme-value threshold (Siffer, Fouque, Termier, Largouët, "Anomaly Detection in
Streams with Extreme Value Theory", KDD 2017), in numpy.

Peaks-over-threshold: above a high initial threshold ``t`` (the ``level`` quantile of the
calibration scores, 0.98 by default), the excesses ``Y = X - t`` follow a generalised Pareto
distribution GPD(gamma, sigma) (Pickands-Balkema-de Haan). With ``n`` calibration scores, ``N_t``
of them peaks, the score exceeded with probability ``q`` (the *risk*) is

    z_q = t + sigma / gamma * ((q * n / N_t) ** -gamma - 1)     (gamma != 0)
    z_q = t - sigma * log(q * n / N_t)                           (gamma == 0)

The GPD is fitted by maximum likelihood with Grimshaw's trick, as in the paper: the likelihood's
stationary points are the roots ``x*`` of ``u(x) v(x) = 1`` with

    u(x) = mean(1 / (1 + x Y)),   v(x) = 1 + mean(log(1 + x Y)),
    gamma = v(x*) - 1,            sigma = gamma / x*,

searched on ``(-1/max(Y), 0)`` and ``(0, 2 (mean(Y) - min(Y)) / (mean(Y) min(Y)))``. The paper
finds roots with L-BFGS-B from a few starting points; here a log-spaced grid brackets sign
changes and bisection refines them (no scipy). The exponential case (gamma = 0,
sigma = mean(Y)) is always a candidate; the candidate with the largest log-likelihood wins.

``Spot.fit`` is the calibration step (what the bundle's threshold uses: a fixed value);
``Spot.run`` is the streaming algorithm: an alarm above ``z_q`` (not learned from), a new peak
between ``t`` and ``z_q`` (added, GPD refitted, ``z_q`` updated), else only ``n`` grows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

EPS = 1e-8


def _u_v(x: float, y: np.ndarray) -> float:
    s = 1.0 + x * y
    return float(np.mean(1.0 / s) * (1.0 + np.mean(np.log(s))) - 1.0)


def _roots(y: np.ndarray, lo: float, hi: float, points: int = 200) -> list[float]:
    """Roots of u(x) v(x) - 1 in (lo, hi): sign changes on a grid, refined by bisection."""
    if not hi > lo:
        return []
    if lo < 0 < hi:
        raise ValueError("search one side of 0 at a time")
    # Log-spaced towards 0 (where the interesting roots are), on the side's sign.
    sign = -1.0 if hi <= 0 else 1.0
    a, b = sorted((abs(lo), abs(hi)))
    a = max(a, b * 1e-9)
    grid = sign * np.geomspace(a, b, points)
    grid.sort()
    vals = np.array([_u_v(x, y) for x in grid])
    out = []
    for i in range(len(grid) - 1):
        f0, f1 = vals[i], vals[i + 1]
        if not (np.isfinite(f0) and np.isfinite(f1)) or f0 * f1 > 0:
            continue
        x0, x1 = grid[i], grid[i + 1]
        for _ in range(80):
            mid = 0.5 * (x0 + x1)
            fm = _u_v(mid, y)
            if f0 * fm <= 0:
                x1 = mid
            else:
                x0, f0 = mid, fm
        out.append(0.5 * (x0 + x1))
    return out


def gpd_log_likelihood(y: np.ndarray, gamma: float, sigma: float) -> float:
    y = np.asarray(y, dtype=np.float64)
    if sigma <= 0:
        return -math.inf
    if abs(gamma) < 1e-12:
        return float(-len(y) * math.log(sigma) - y.sum() / sigma)
    z = 1.0 + gamma * y / sigma
    if np.any(z <= 0):
        return -math.inf
    return float(-len(y) * math.log(sigma) - (1.0 + 1.0 / gamma) * np.log(z).sum())


def fit_gpd(peaks) -> tuple[float, float, float]:
    """(gamma, sigma, log-likelihood) of a GPD fitted to positive excesses (Grimshaw)."""
    y = np.asarray(peaks, dtype=np.float64)
    if y.size == 0 or np.any(y <= 0):
        raise ValueError("GPD fit needs at least one peak, all > 0")
    ymin, ymax, ymean = float(y.min()), float(y.max()), float(y.mean())
    candidates = [(0.0, ymean)]  # exponential tail
    lo_neg = -1.0 / ymax + EPS
    hi_pos = 2.0 * (ymean - ymin) / (ymean * ymin) if ymin > 0 else 0.0
    for x in _roots(y, lo_neg, -EPS) + _roots(y, EPS, hi_pos):
        gamma = float(np.mean(np.log1p(x * y)))
        if abs(x) > 0 and abs(gamma) > 1e-12:
            candidates.append((gamma, float(gamma / x)))
    best = max(candidates, key=lambda c: gpd_log_likelihood(y, c[0], c[1]))
    return best[0], best[1], gpd_log_likelihood(y, best[0], best[1])


def spot_quantile(t: float, gamma: float, sigma: float, q: float, n: int, n_peaks: int) -> float:
    r = q * n / n_peaks
    if abs(gamma) < 1e-12:
        return float(t - sigma * math.log(r))
    return float(t + sigma / gamma * (r ** (-gamma) - 1.0))


@dataclass
class Spot:
    """SPOT with risk ``q`` and initial threshold at the ``level`` quantile of the calibration."""

    q: float = 1e-3
    level: float = 0.98
    t: float = float("nan")
    z: float = float("nan")
    gamma: float = float("nan")
    sigma: float = float("nan")
    n: int = 0
    peaks: list[float] = field(default_factory=list)

    def fit(self, calibration) -> "Spot":
        x = np.asarray(calibration, dtype=np.float64)
        if not 0.0 < self.q < 1.0 or not 0.0 < self.level < 1.0:
            raise ValueError(f"q and level must be in (0, 1), got {self.q}, {self.level}")
        self.t = float(np.quantile(x, self.level))
        self.peaks = [float(v) for v in x[x > self.t] - self.t]
        if len(self.peaks) < 10:
            raise ValueError(f"SPOT needs at least 10 peaks above the {self.level} quantile; "
                             f"got {len(self.peaks)} from {len(x)} scores")
        self.n = int(len(x))
        self._refit()
        return self

    def _refit(self) -> None:
        self.gamma, self.sigma, _ = fit_gpd(self.peaks)
        self.z = spot_quantile(self.t, self.gamma, self.sigma, self.q, self.n, len(self.peaks))

    def run(self, stream) -> tuple[np.ndarray, np.ndarray]:
        """Streaming SPOT over ``stream``: (alarm flags, threshold in force at each step)."""
        x = np.asarray(stream, dtype=np.float64)
        alarms = np.zeros(len(x), dtype=bool)
        zs = np.empty(len(x))
        for i, v in enumerate(x):
            zs[i] = self.z
            if v > self.z:
                alarms[i] = True
                continue
            self.n += 1
            if v > self.t:
                self.peaks.append(float(v - self.t))
                self._refit()
        return alarms, zs

    def summary(self) -> dict:
        return {"q": self.q, "level": self.level, "initial_threshold": self.t,
                "gamma": self.gamma, "sigma": self.sigma, "n": self.n,
                "peaks": len(self.peaks), "z_q": self.z}
