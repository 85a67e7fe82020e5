"""Calling the gateway binary: its feature export (the only feature code) and its bundle check.

The binary is found as: ``$NETWARDEN_BIN``, else ``target/release/netwarden``, else
``target/debug/netwarden`` (relative to the repository root), else ``netwarden`` on ``PATH``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


class GatewayError(RuntimeError):
    pass


def find_binary() -> Path | None:
    env = os.environ.get("NETWARDEN_BIN")
    if env:
        return Path(env) if Path(env).exists() else None
    for p in (ROOT / "target" / "release" / "netwarden", ROOT / "target" / "debug" / "netwarden"):
        if p.exists():
            return p
    found = shutil.which("netwarden")
    return Path(found) if found else None


def require_binary() -> Path:
    p = find_binary()
    if p is None:
        raise GatewayError(
            "no netwarden binary: set NETWARDEN_BIN, or build one (cargo build -p netwarden), "
            "or put netwarden on PATH" + (f" (NETWARDEN_BIN={os.environ['NETWARDEN_BIN']} "
                                          "does not exist)" if os.environ.get("NETWARDEN_BIN") else ""))
    return p


def _run(argv: list[str], timeout: float) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise GatewayError(f"{' '.join(argv)}: timed out after {timeout:.0f}s") from e


def export_features(out_csv: str | Path, *, netflow_pcaps=(), series_rates: str | Path | None = None,
                    timeout: float = 600, feature_set: str | None = None,
                    learn_until: int | None = None) -> Path:
    """``netwarden features`` into ``out_csv`` (flow-v1, or ``feature_set``, from pcaps, or
    series-v1 from rates)."""
    binary = require_binary()
    argv = [str(binary), "features", "--out", str(out_csv)]
    if feature_set is not None:
        argv += ["--set", feature_set]
    if learn_until is not None:
        argv += ["--learn-until", str(int(learn_until))]
    for p in netflow_pcaps:
        argv += ["--netflow-pcap", str(p)]
    if series_rates is not None:
        argv += ["--series", str(series_rates)]
    r = _run(argv, timeout)
    if r.returncode != 0:
        raise GatewayError(f"{' '.join(argv)} failed ({r.returncode}): {r.stderr.strip()}")
    return Path(out_csv)


def supports_key_flag(binary: Path) -> bool:
    """Whether this build's ``model check`` takes ``--key`` (signature verification)."""
    r = _run([str(binary), "model", "check", "--help"], 60)
    return "--key" in r.stdout


def model_check(bundle: str | Path, *, key: str | None = None, timeout: float = 300) -> str:
    """Run ``netwarden model check BUNDLE [--key PUB]``; returns its output, raises on failure.

    With ``key`` and a binary that predates ``--key``, the signature is not checked by the
    gateway here (the caller verifies it in Python); the returned text says so.
    """
    binary = require_binary()
    argv = [str(binary), "model", "check", str(bundle)]
    note = ""
    if key is not None:
        if supports_key_flag(binary):
            argv += ["--key", str(key)]
        else:
            note = f"\n(note: {binary} has no `model check --key`; signature checked in Python only)"
    r = _run(argv, timeout)
    out = (r.stdout + r.stderr).strip()
    if r.returncode != 0:
        raise GatewayError(f"`netwarden model check {bundle}` failed ({r.returncode}):\n{out}")
    return out + note
