"""Synthetic interface rates for training and evaluating the series models.

There is no real branch-office SNMP history yet, so the default series bundle is trained on
rates made here. They are *synthetic*: a plausible office pattern, not measured traffic.

What is modelled (all seeded, so the same arguments give the same file):
- a few routers, each with interfaces of different sizes (a WAN uplink, a LAN trunk, guest
  Wi-Fi, a VoIP VLAN) and their own in/out balance;
- a diurnal profile (night floor, morning ramp, lunch dip, evening tail) and a weekly one
  (weekends at a fraction of weekdays), with the profile shifted a little per interface;
- multiplicative noise that is correlated in time (AR(1) in log space) plus rare short benign
  spikes (a software update, a backup), so "normal" is not a clean sine;
- 10 s poll steps, single lost polls (empty rate: unknown, as the SNMP source reports them)
  and rare longer outages that make the gateway restart the interface's series.

For evaluation, the last ``eval_days`` may carry injected anomalies, written to a labels CSV
(``target,if_name,kind,start_ms,end_ms``, inclusive) so that windows can be labelled:
- ``burst``: inbound flood, in_bps x5..x20 for 3..20 steps;
- ``drop``: both directions fall to ~1 % for 10..40 steps during office hours;
- ``exfil``: outbound ramps up to x8..x25 over 20..60 steps (an exfiltration-sized upload).
Training uses only rows before the evaluation period (see series_data.split_by_time).

Output: ``ts_ms,target,if_index,if_name,in_bps,out_bps`` (the rates CSV that
``netwarden features --series`` reads), rows ordered by time, then target, then interface.
"""

from __future__ import annotations

import csv
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

STEP_MS = 10_000
# Monday 2026-01-05 00:00:00 UTC: the series starts on a week boundary.
START_MS = 1_767_571_200_000
RATES_HEADER = ("ts_ms", "target", "if_index", "if_name", "in_bps", "out_bps")
LABELS_HEADER = ("target", "if_name", "kind", "start_ms", "end_ms")
ANOMALY_KINDS = ("burst", "drop", "exfil")


@dataclass(frozen=True)
class Interface:
    target: str
    if_index: int
    if_name: str
    peak_in_bps: float  # typical weekday-afternoon inbound rate
    out_ratio: float  # outbound / inbound at peak
    night_floor: float  # fraction of peak at night
    noise: float  # log-space noise sd


INTERFACES: tuple[Interface, ...] = (
    Interface("branch-a", 1, "wan0", 60e6, 0.25, 0.04, 0.18),
    Interface("branch-a", 2, "lan0", 300e6, 0.9, 0.02, 0.25),
    Interface("branch-a", 5, "guest0", 15e6, 0.15, 0.01, 0.35),
    Interface("branch-b", 1, "wan0", 12e6, 0.35, 0.06, 0.20),
    Interface("branch-b", 3, "lan0", 80e6, 0.7, 0.03, 0.25),
    Interface("branch-b", 7, "voip0", 2e6, 1.0, 0.005, 0.30),
)


@dataclass(frozen=True)
class Anomaly:
    target: str
    if_name: str
    kind: str
    start_ms: int
    end_ms: int  # inclusive: the last affected step


def diurnal(hour: np.ndarray, shift: float) -> np.ndarray:
    """Weekday activity in [0, 1] by fractional hour: ramp 7-9, lunch dip, tail after 18."""
    h = (hour - shift) % 24.0
    morning = 1.0 / (1.0 + np.exp(-(h - 8.0) * 2.2))
    evening = 1.0 / (1.0 + np.exp((h - 18.0) * 1.6))
    lunch = 1.0 - 0.25 * np.exp(-((h - 12.5) ** 2) / 0.5)
    return morning * evening * lunch


def interface_rates(iface: Interface, n_steps: int, rng: np.random.Generator,
                    start_ms: int = START_MS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ts_ms, in_bps, out_bps) for one interface, no unknown steps, no anomalies."""
    ts = start_ms + STEP_MS * np.arange(n_steps, dtype=np.int64)
    secs = ts // 1000
    hour = (secs % 86_400) / 3600.0
    dow = (secs // 86_400 + 3) % 7  # 1970-01-01 was a Thursday; 0 = Monday
    shift = rng.uniform(-0.7, 0.7)
    activity = diurnal(hour, shift)
    weekend = np.isin(dow, (5, 6))
    activity = np.where(weekend, activity * rng.uniform(0.12, 0.3), activity)
    # Fridays wind down early.
    activity = np.where(dow == 4, activity * (1.0 - 0.3 * (hour > 15)), activity)
    level = iface.night_floor + (1.0 - iface.night_floor) * activity

    def ar1(sd: float) -> np.ndarray:
        phi = 0.97
        e = rng.normal(0.0, sd * math.sqrt(1 - phi * phi), n_steps)
        out = np.empty(n_steps)
        acc = rng.normal(0.0, sd)
        for i in range(n_steps):  # ~100k steps per interface per week: fast enough
            acc = phi * acc + e[i]
            out[i] = acc
        return out

    slow_in, slow_out = ar1(iface.noise), ar1(iface.noise)
    fast_in = rng.normal(0.0, iface.noise * 0.6, n_steps)
    fast_out = rng.normal(0.0, iface.noise * 0.6, n_steps)
    in_bps = iface.peak_in_bps * level * np.exp(slow_in + fast_in)
    out_level = level ** 0.8  # uploads (sync, VoIP) flatten the profile a little
    out_bps = iface.peak_in_bps * iface.out_ratio * out_level * np.exp(slow_out + fast_out)
    # Rare benign spikes: a few per week, 1-6 steps, x2..x4 in one direction.
    for _ in range(rng.poisson(n_steps / 8640 * 0.6)):
        s = int(rng.integers(0, n_steps))
        e = min(n_steps, s + int(rng.integers(1, 7)))
        f = rng.uniform(2.0, 4.0)
        if rng.random() < 0.7:
            in_bps[s:e] *= f
        else:
            out_bps[s:e] *= f
    return ts, in_bps, out_bps


def inject(kind: str, in_bps: np.ndarray, out_bps: np.ndarray, s: int, length: int,
           rng: np.random.Generator) -> None:
    """Apply one anomaly in place over steps s .. s+length-1."""
    e = s + length
    if kind == "burst":
        in_bps[s:e] *= rng.uniform(5.0, 20.0)
    elif kind == "drop":
        in_bps[s:e] *= 0.01
        out_bps[s:e] *= 0.01
    elif kind == "exfil":
        top = rng.uniform(8.0, 25.0)
        out_bps[s:e] *= np.linspace(1.5, top, length)
    else:
        raise ValueError(f"unknown anomaly kind {kind!r}")


def _anomaly_length(kind: str, rng: np.random.Generator) -> int:
    lo, hi = {"burst": (3, 21), "drop": (10, 41), "exfil": (20, 61)}[kind]
    return int(rng.integers(lo, hi))


def generate(days: float = 14.0, seed: int = 11, eval_days: float = 0.0,
             anomalies_per_kind: int = 3, unknown_rate: float = 0.002,
             interfaces: tuple[Interface, ...] = INTERFACES):
    """Rates for every interface: (rows, anomalies).

    rows: list of (ts_ms, target, if_index, if_name, in_bps | None, out_bps | None) in output
    order. Anomalies are only injected into the last ``eval_days`` and never overlap a lost
    poll or each other on one interface.
    """
    if days <= 0 or eval_days < 0 or eval_days >= days:
        raise ValueError(f"need days > eval_days >= 0, got days={days}, eval_days={eval_days}")
    rng = np.random.default_rng(seed)
    n_steps = int(round(days * 86_400_000 / STEP_MS))
    eval_start = n_steps - int(round(eval_days * 86_400_000 / STEP_MS))
    per_iface = []
    anomalies: list[Anomaly] = []
    for iface in interfaces:
        ts, rin, rout = interface_rates(iface, n_steps, rng)
        unknown = rng.random(n_steps) < unknown_rate
        # A longer outage (12..40 steps) about every 5 days: the series restarts after it.
        for _ in range(rng.poisson(days / 5.0)):
            s = int(rng.integers(0, max(1, eval_start - 40)))
            unknown[s : s + int(rng.integers(12, 41))] = True
        if eval_days > 0 and anomalies_per_kind > 0:
            busy = np.zeros(n_steps, dtype=bool)
            secs = ts // 1000
            hour = (secs % 86_400) // 3600
            weekday = ((secs // 86_400 + 3) % 7) < 5
            for kind in ANOMALY_KINDS:
                placed = 0
                for _ in range(200):
                    if placed == anomalies_per_kind:
                        break
                    length = _anomaly_length(kind, rng)
                    s = int(rng.integers(eval_start + 60, n_steps - length))
                    # Drops matter when there is traffic to drop: office hours on weekdays.
                    if kind == "drop" and not (weekday[s] and 9 <= hour[s] < 17):
                        continue
                    if busy[max(0, s - 60) : s + length + 60].any():
                        continue
                    busy[s : s + length] = True
                    inject(kind, rin, rout, s, length, rng)
                    unknown[s : s + length] = False
                    anomalies.append(Anomaly(iface.target, iface.if_name, kind,
                                             int(ts[s]), int(ts[s + length - 1])))
                    placed += 1
        per_iface.append((iface, ts, rin, rout, unknown))

    rows = []
    for i in range(n_steps):
        for iface, ts, rin, rout, unknown in per_iface:
            if unknown[i]:
                rows.append((int(ts[i]), iface.target, iface.if_index, iface.if_name, None, None))
            else:
                rows.append((int(ts[i]), iface.target, iface.if_index, iface.if_name,
                             float(rin[i]), float(rout[i])))
    return rows, anomalies, int(START_MS + eval_start * STEP_MS)


def write_rates_csv(path: str | Path, rows) -> None:
    with Path(path).open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(RATES_HEADER)
        for ts, target, idx, name, rin, rout in rows:
            w.writerow((ts, target, idx, name,
                        "" if rin is None else f"{rin:.1f}", "" if rout is None else f"{rout:.1f}"))


def write_labels_csv(path: str | Path, anomalies: list[Anomaly]) -> None:
    with Path(path).open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(LABELS_HEADER)
        for a in anomalies:
            w.writerow((a.target, a.if_name, a.kind, a.start_ms, a.end_ms))


def read_labels_csv(path: str | Path) -> list[Anomaly]:
    with Path(path).open(newline="", encoding="utf-8") as f:
        r = csv.reader(f)
        header = next(r, None)
        if header is None or tuple(h.strip() for h in header) != LABELS_HEADER:
            raise ValueError(f"{path}: expected header {','.join(LABELS_HEADER)}")
        return [Anomaly(t, n, k, int(s), int(e)) for t, n, k, s, e in r]


def cmd_synth(args) -> int:
    """The ``synth-series-rates`` command: prints the evaluation start (ms) on stdout."""
    rows, anomalies, eval_start = generate(days=args.days, seed=args.seed, eval_days=args.eval_days,
                                           anomalies_per_kind=args.anomalies_per_kind)
    write_rates_csv(args.out, rows)
    if args.labels:
        write_labels_csv(args.labels, anomalies)
    if not args.quiet:
        print(f"wrote {args.out}: {len(rows)} samples, {len(anomalies)} injected anomalies",
              file=sys.stderr)
    print(eval_start)
    return 0
