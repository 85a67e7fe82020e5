"""The fleet job in local mode on what `netwarden fleet collect` wrote during a real run
(tests/data/fleet/collected/: two sites, real Suricata output, netwarden's own flow alerts; made
by tests/e2e/fleet_collect.rs). Every result is checked against the same aggregation computed
here in plain Python from the input files; then a second run on the same checkpoint adds a
redelivered alert (same id), a late one (behind the watermark) and a new one."""

from __future__ import annotations

import collections
import datetime as dt
import glob
import json
import os
import shutil
import sys
from pathlib import Path

import pytest

pyspark = pytest.importorskip("pyspark")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import fleet_job  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
COLLECTED = ROOT / "tests" / "data" / "fleet" / "collected"
WINDOW_MS = 30 * 60 * 1000


def rows(path: Path) -> list[dict]:
    out = []
    for f in sorted(glob.glob(str(path / "*.json*"))):
        with open(f) as fh:
            out.extend(json.loads(line) for line in fh if line.strip())
    return out


def results(out: Path, name: str) -> list[dict]:
    return rows(out / name)


def latest(rs: list[dict], key) -> dict:
    """The last batch's row per key (update mode: later rows supersede earlier ones)."""
    best: dict = {}
    for r in rs:
        k = key(r)
        if k not in best or r["batch_id"] >= best[k]["batch_id"]:
            best[k] = r
    return best


def window_start(ms: int) -> str:
    s = dt.datetime.fromtimestamp(ms // WINDOW_MS * WINDOW_MS / 1000, tz=dt.timezone.utc)
    return s.strftime("%Y-%m-%dT%H:%M:%S")


def spark_ts(s: str) -> str:
    # Spark writes timestamps in the session time zone (UTC here) as 2026-12-02T13:00:00.000Z.
    return s[:19]


@pytest.fixture(scope="module")
def spark():
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    s = (
        fleet_job.SparkSession.builder.master("local[1]")
        .appName("netwarden-fleet-test")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.memory", "1g")
        .getOrCreate()
    )
    yield s
    s.stop()


def test_fleet_job_on_collected_output_of_a_real_run(spark, tmp_path):
    inp = tmp_path / "in"
    shutil.copytree(COLLECTED, inp)
    out = tmp_path / "out"
    alerts_in = rows(inp / "alerts")
    windows_in = rows(inp / "windows")
    # At least once: the collector may hand Spark an alert twice.
    with open(inp / "alerts" / "redelivered-1.jsonl", "w") as fh:
        fh.write(json.dumps(alerts_in[0]) + "\n")
    args = fleet_job.parse_args(["--in", str(inp), "--out", str(out), "--outlier-min", "5"])
    fleet_job.run(args, spark)

    # Alerts per site, detector, severity and 30-minute window.
    want = collections.Counter(
        (window_start(a["ts_ms"]), a["site"], a["detector"], a["severity"]) for a in alerts_in
    )
    got = latest(
        results(out, "alerts_per_window"),
        lambda r: (spark_ts(r["window_start"]), r["site"], r["detector"], r["severity"]),
    )
    assert {k: v["alerts"] for k, v in got.items()} == dict(want)

    # Top talkers: per window, the source with most alerts (ties by address).
    talk = collections.Counter(
        (window_start(a["ts_ms"]), a["site"], a["subject"]["src_addr"]) for a in alerts_in
    )
    top = latest(
        [r for r in results(out, "top_talkers") if r["rank"] == 1],
        lambda r: spark_ts(r["window_start"]),
    )
    for w, r in top.items():
        best = max(((n, -ord(s[0])) for (ws, _, s), n in talk.items() if ws == w), default=(0, 0))
        assert r["alerts"] == best[0]

    # DHCP per site, transaction id and window: the sites' results merged.
    dhcp = latest(
        results(out, "dhcp_transactions"),
        lambda r: (r["site"], r["transaction_id"], spark_ts(r["window_start"])),
    )
    merged = collections.defaultdict(int)
    for w in windows_in:
        if w["view"] == "dhcp":
            merged[(w["site"], w["key"], window_start(w["window_start_ms"]))] += w["count"]
    assert {k: v["count"] for k, v in dhcp.items()} == dict(merged)
    tx1 = dhcp[("hq", str(0x5A1C01), "2026-03-02T10:00:00")]
    assert tx1["hostname"] == "ws-accounts-01"
    assert tx1["max_src_ip"] == "192.168.10.1"
    assert tx1["requested_ip"] == "192.168.10.50"
    assert sum(1 for k in dhcp if k[0] == "branch2") >= 3

    # Sites departing from the fleet: in each window with both sites, a site with at least
    # 5 alerts and 3x the other's.
    per_site = collections.Counter((window_start(a["ts_ms"]), a["site"]) for a in alerts_in)
    expect = set()
    for (w, s), n in per_site.items():
        others = [m for (w2, s2), m in per_site.items() if w2 == w and s2 != s]
        if others and n >= 5 and n / max(sum(others) / len(others), 1.0) >= 3.0:
            expect.add((w, s))
    flagged = {(spark_ts(r["window_start"]), r["site"]) for r in results(out, "site_outliers")}
    assert flagged == expect
    assert expect, "the collected run has a site that departs from the fleet"

    # Second run, same checkpoint: a redelivery (dropped by id), a late alert (behind the
    # watermark: dropped) and a new one (counted).
    newest = max(alerts_in, key=lambda a: a["ts_ms"])
    late = dict(newest, id="late-1", ts_ms=newest["ts_ms"] - 24 * 3600 * 1000)
    fresh = dict(newest, id="fresh-1")
    with open(inp / "alerts" / "second-batch.jsonl", "w") as fh:
        for a in (newest, late, fresh):
            fh.write(json.dumps(a) + "\n")
    fleet_job.run(args, spark)
    got2 = latest(
        results(out, "alerts_per_window"),
        lambda r: (spark_ts(r["window_start"]), r["site"], r["detector"], r["severity"]),
    )
    k = (window_start(newest["ts_ms"]), newest["site"], newest["detector"], newest["severity"])
    assert got2[k]["alerts"] == want[k] + 1
    late_k = (window_start(late["ts_ms"]),) + k[1:]
    assert late_k not in got2
