"""The ``site-loop`` command: the central loop over a list of sites (docs/fleet.md).

For each site of SITES_TOML: fetch its samples (``http`` + ``token_file``: the gateway's
``GET /samples``; ``mqtt_device``: ``netwarden samples fetch`` over the broker; or ``samples``: a
file already fetched), train a site model (``site-train`` with the file's ``[train]`` table),
then ``netwarden fleet publish BUNDLE --site NAME`` (or ``--device``). One site failing does not
stop the others; OUT/loop.json lists what happened to each, with hardware and seconds.

    netwarden = "/usr/bin/netwarden"          # default: $NETWARDEN_BIN, target/, PATH
    sign_key = "keys/fleet.key"
    out = "site-models"
    [broker]
    mqtt = "mqtts://broker:8883"
    username = "central"
    password_file = "central.pass"
    ca_file = "ca.pem"
    [train]
    epochs = 200
    [[sites]]
    name = "hq"
    http = "http://10.0.0.1:8080"
    token_file = "hq.token"
    [[sites]]
    name = "branch"
    mqtt_device = "r1"                        # ask gateway branch/r1 over MQTT
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
import tomllib
import urllib.request
from pathlib import Path

from .. import gateway
from ..log import say

TRAIN_KEYS = {"mode", "scratch_rows", "holdout", "risk", "epochs", "batch_size", "lr",
              "patience", "device", "threads", "quantize", "fleet_bundle"}
SITE_KEYS = {"name", "http", "token_file", "mqtt_device", "samples", "publish_device", "prefix"}
TOP_KEYS = {"netwarden", "sign_key", "out", "broker", "train", "sites"}
BROKER_KEYS = {"mqtt", "username", "password_file", "ca_file", "topic", "chunk_bytes"}
HTTP_TIMEOUT_S = 60


class SiteLoopError(ValueError):
    """Some sites failed (each one's error is in loop.json)."""


def _check_keys(table: dict, allowed: set[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ValueError(f"{where}: unknown keys {', '.join(unknown)} "
                         f"(allowed: {', '.join(sorted(allowed))})")


def load_sites(path: Path) -> dict:
    cfg = tomllib.loads(path.read_text())
    _check_keys(cfg, TOP_KEYS, str(path))
    _check_keys(cfg.get("broker", {}), BROKER_KEYS, f"{path} [broker]")
    _check_keys(cfg.get("train", {}), TRAIN_KEYS, f"{path} [train]")
    sites = cfg.get("sites", [])
    if not sites:
        raise ValueError(f"{path}: no [[sites]]")
    for i, s in enumerate(sites):
        _check_keys(s, SITE_KEYS, f"{path} sites[{i}]")
        if not s.get("name"):
            raise ValueError(f"{path} sites[{i}]: no name")
        ways = [k for k in ("http", "mqtt_device", "samples") if k in s]
        if len(ways) != 1:
            raise ValueError(f"{path} site {s['name']}: give exactly one of http, mqtt_device, "
                             f"samples (got {ways or 'none'})")
        if "http" in s and "token_file" not in s:
            raise ValueError(f"{path} site {s['name']}: http needs token_file")
    if any("mqtt_device" in s for s in sites) and "mqtt" not in cfg.get("broker", {}):
        raise ValueError(f"{path}: mqtt_device needs [broker] mqtt")
    return cfg


def _rel(base: Path, p: str | None) -> str | None:
    return None if p is None else str((base / p).resolve()) if not Path(p).is_absolute() else p


def broker_args(broker: dict, base: Path) -> list[str]:
    out = ["--mqtt", broker["mqtt"]]
    if "username" in broker:
        out += ["--username", broker["username"]]
    for k in ("password_file", "ca_file"):
        if k in broker:
            out += [f"--{k.replace('_', '-')}", _rel(base, broker[k])]
    if "topic" in broker:
        out += ["--topic", broker["topic"]]
    return out


def fetch_http(url: str, token_file: str, out: Path) -> int:
    token = Path(token_file).read_text().strip()
    req = urllib.request.Request(url.rstrip("/") + "/samples",
                                 headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT_S) as r:
        body = r.read()
    out.write_bytes(body)
    return body.count(b"\n") - 1


def run_cli(binary: str, argv: list[str], timeout: float = 600) -> str:
    p = subprocess.run([binary, *argv], capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError(f"netwarden {' '.join(argv[:2])} failed ({p.returncode}): "
                           f"{(p.stderr or p.stdout).strip()[-800:]}")
    return p.stdout + p.stderr


def site_loop(args) -> dict:
    from .train import site_train

    path = Path(args.sites)
    base = path.resolve().parent
    cfg = load_sites(path)
    binary = _rel(base, cfg.get("netwarden")) or str(gateway.require_binary())
    out = Path(args.out or _rel(base, cfg.get("out", "site-models")))
    out.mkdir(parents=True, exist_ok=True)
    broker = cfg.get("broker", {})
    train = cfg.get("train", {})
    report = {"sites": []}
    failed = 0
    for site in cfg["sites"]:
        name = site["name"]
        if args.only and name not in args.only:
            continue
        entry: dict = {"site": name}
        t0 = time.monotonic()
        try:
            d = out / name
            d.mkdir(parents=True, exist_ok=True)
            samples = d / "samples.csv"
            if "http" in site:
                entry["rows_fetched"] = fetch_http(site["http"], _rel(base, site["token_file"]),
                                                   samples)
                entry["fetched_by"] = "http"
            elif "mqtt_device" in site:
                argv = ["samples", "fetch", *broker_args(broker, base), "--site", name,
                        "--device", site["mqtt_device"], "--out", str(samples)]
                if "prefix" in site:
                    argv += ["--prefix", site["prefix"]]
                entry["fetch_log"] = run_cli(binary, argv).strip()
                entry["fetched_by"] = "mqtt"
            else:
                samples = Path(_rel(base, site["samples"]))
                entry["fetched_by"] = "file"
            entry["fetch_s"] = round(time.monotonic() - t0, 3)
            targs = argparse.Namespace(
                samples=str(samples), out=str(d / "bundle"), work=str(d / "work"), site=name,
                fleet_bundle=_rel(base, train.get("fleet_bundle")) or None,
                mode=train.get("mode", "auto"), scratch_rows=train.get("scratch_rows", 20000),
                holdout=train.get("holdout", 0.25), risk=train.get("risk", 1e-4),
                epochs=train.get("epochs"), batch_size=train.get("batch_size"),
                lr=train.get("lr"), patience=train.get("patience"),
                device=args.device or train.get("device", "auto"),
                threads=train.get("threads", 1), quantize=train.get("quantize", False),
                version=None, sign_key=_rel(base, cfg.get("sign_key")),
                no_gateway_check=False, seed=args.seed, quiet=args.quiet)
            # No fleet bundle: site_train takes the default of the samples' schema.
            entry["train"] = site_train(targs)
            if not args.no_publish:
                if "mqtt" not in broker:
                    raise ValueError(f"{path}: publishing needs [broker] mqtt")
                scope = ["--site", name]
                if "publish_device" in site:
                    scope += ["--device", site["publish_device"]]
                argv = ["fleet", "publish", str(d / "bundle"), *broker_args(broker, base), *scope]
                if "chunk_bytes" in broker:
                    argv += ["--chunk-bytes", str(broker["chunk_bytes"])]
                entry["published"] = run_cli(binary, argv).strip()
            entry["ok"] = True
        except Exception as e:  # one site's failure is reported, the others go on
            entry["ok"] = False
            entry["error"] = f"{type(e).__name__}: {e}"
            failed += 1
        entry["seconds"] = round(time.monotonic() - t0, 3)
        say(args.quiet, f"site {name}: " + ("ok" if entry["ok"] else entry["error"])
            + f" ({entry['seconds']:.1f} s)")
        report["sites"].append(entry)
    (out / "loop.json").write_text(json.dumps(report, indent=2) + "\n")
    if failed:
        raise SiteLoopError(f"{failed} of {len(report['sites'])} sites failed (see {out}/loop.json)")
    return report
