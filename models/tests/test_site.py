"""Site models (issue 18, central side): `site-train` turns a site's samples (the gateway's
`samples export` CSV) into a signed bundle whose threshold comes from held-out site rows, and
`site-loop` runs it for a list of sites (publishing is covered by tests/e2e/site_models.rs)."""

import json

import numpy as np
import pytest

from conftest import FEATURES, synthetic_rows
from netwarden_models.bundle import signing
from netwarden_models.cli import main
from netwarden_models.features import FEATURE_NAMES_V2
from netwarden_models.site import samples as site_samples
from netwarden_models.site.train import DEFAULT_FLEET_BUNDLE, DEFAULT_FLEET_BUNDLE_V2


def v2_tail(feats, rng):
    """flow-v2's nine conversation and service values for a benign flow-v1 row."""
    answered = float(rng.random() < 0.9)
    rp = float(rng.integers(1, 20)) * answered
    rb = rp * float(rng.integers(60, 1400))
    share = feats[1] / (feats[1] + rb) if feats[1] + rb else 1.0
    conv = float(rng.integers(1, 6))
    return [answered, rp, rb, share, answered * (feats[4] == 0), 0.0, conv,
            (1.0 - answered) / conv, float(rng.random() < 0.05)]


def write_samples(path, n, seed=5, identity=False, schema="flow-v1", tagged=True, mix=0):
    """A CSV laid out as `netwarden samples export` writes it (`tagged=False`: as it did
    before rows carried their schema); `mix` more rows of flow-v1 under flow-v2 columns, as
    `--schema all` writes after a switch."""
    rows = synthetic_rows(n + mix, seed)
    rng = np.random.default_rng(seed)
    names = FEATURE_NAMES_V2 if schema == "flow-v2" else FEATURES
    with path.open("w") as f:
        ident_cols = ",src_addr,dst_addr,src_port,dst_port,protocol" if identity else ""
        lead = "ts_ms,schema" if tagged else "ts_ms"
        f.write(lead + ident_cols + "," + ",".join(names) + ",score\n")
        for i, (ident, feats) in enumerate(rows):
            row_schema = "flow-v1" if i >= n else schema
            if row_schema == "flow-v2":
                feats = feats + v2_tail(feats, rng)
            elif schema == "flow-v2":
                feats = feats + [""] * 9
            cols = [str(ident[8])] + ([row_schema] if tagged else [])
            if identity:
                cols += [str(ident[2]), str(ident[3]), str(ident[4]), str(ident[5]), str(ident[6])]
            cols += [str(v) for v in feats] + ["0.0123"]
            f.write(",".join(cols) + "\n")
    return path


@pytest.fixture
def key(tmp_path):
    assert main(["keygen", "--out", str(tmp_path / "k" / "fleet"), "--quiet"]) == 0
    return tmp_path / "k" / "fleet.key"


def test_samples_csv_is_read_with_and_without_identity_and_bad_rows_are_named(tmp_path):
    a = site_samples.read(write_samples(tmp_path / "a.csv", 20))
    b = site_samples.read(write_samples(tmp_path / "b.csv", 20, identity=True))
    assert a.raw.shape == (20, 8) and np.array_equal(a.raw, b.raw)
    assert np.array_equal(a.ts_ms, b.ts_ms) and np.all(a.score == 0.0123)
    # Files from before rows carried their schema are flow-v1.
    old = site_samples.read(write_samples(tmp_path / "old.csv", 20, tagged=False))
    assert old.schema == "flow-v1" and np.array_equal(old.raw, a.raw)
    bad = tmp_path / "bad.csv"
    bad.write_text("ts_ms,schema," + ",".join(FEATURES) + ",score\n1,2,3\n")
    with pytest.raises(site_samples.SamplesError, match=r"bad.csv:2: 3 columns, expected 11"):
        site_samples.read(bad)
    bad.write_text("ts_ms,x,score\n")
    with pytest.raises(site_samples.SamplesError, match="not the gateway's samples layout"):
        site_samples.read(bad)
    bad.write_text("ts_ms," + ",".join(FEATURES) + ",score\n1," + ",".join(["nan"] * 8) + ",0\n")
    with pytest.raises(site_samples.SamplesError, match="not finite"):
        site_samples.read(bad)


def test_site_train_fine_tunes_the_fleet_model_and_thresholds_on_held_out_rows(tmp_path, key):
    csv_path = write_samples(tmp_path / "samples.csv", 400)
    out = tmp_path / "bundle"
    rc = main(["site-train", "--samples", str(csv_path), "--out", str(out), "--site", "hq",
               "--epochs", "3", "--version", "2027.1.1.5", "--sign-key", str(key), "--quiet"])
    assert rc == 0
    m = json.loads((out / "manifest.json").read_text())
    fleet = json.loads((DEFAULT_FLEET_BUNDLE / "manifest.json").read_text())
    assert m["name"] == "flow-ae-site-hq" and m["version"] == "2027.1.1.5"
    # Fine-tuning keeps the fleet model's scaling (its weights expect it).
    assert m["features"]["scaling"] == fleet["features"]["scaling"]
    # 100 held-out rows give 2 peaks over the 0.98 quantile: the gateway's 1.5x-the-largest rule.
    thr = m["threshold"]
    assert thr["source"] == "test" and thr["n"] == 100 and thr["method"] == "heldout_max_x1.5"
    site = json.loads((tmp_path / "bundle.work" / "site.json").read_text())
    assert site["mode"] == "finetune" and site["from"] == f"{fleet['name']} {fleet['version']}"
    assert site["split"] == {"train": 270, "val": 30, "test": 100}
    assert site["hardware"]["torch"] and site["seconds"]["total_s"] > 0
    # Held out means held out: the largest error of those rows, x1.5, is the threshold.
    run = json.loads((tmp_path / "bundle.work" / "run" / "run.json").read_text())
    assert run["training"]["samples"] == 270 and run["training"]["epochs"] <= 3
    pub = (tmp_path / "k" / "fleet.pub").read_text().strip()
    assert signing.verify_bundle_signature(out, [pub]) == 0


def test_site_train_from_scratch_fits_the_sites_scaling_and_uses_spot_with_enough_rows(tmp_path):
    csv_path = write_samples(tmp_path / "samples.csv", 1200, seed=9)
    out = tmp_path / "bundle"
    assert main(["site-train", "--samples", str(csv_path), "--out", str(out), "--mode", "scratch",
                 "--holdout", "0.5", "--epochs", "2", "--no-gateway-check", "--quiet"]) == 0
    m = json.loads((out / "manifest.json").read_text())
    fleet = json.loads((DEFAULT_FLEET_BUNDLE / "manifest.json").read_text())
    assert m["features"]["scaling"] != fleet["features"]["scaling"]
    assert m["threshold"]["method"] == "spot" and m["threshold"]["n"] == 600
    assert m["threshold"]["value"] > 0


def test_site_train_refuses_too_few_rows(tmp_path, capsys):
    csv_path = write_samples(tmp_path / "samples.csv", 10)
    assert main(["site-train", "--samples", str(csv_path), "--out", str(tmp_path / "b"),
                 "--no-gateway-check", "--quiet"]) == 2
    assert "10 rows; a site model needs at least 50" in capsys.readouterr().err


def test_site_loop_trains_each_site_and_reports_the_ones_that_fail(tmp_path, key, capsys):
    write_samples(tmp_path / "hq.csv", 200)
    (tmp_path / "sites.toml").write_text(
        f'sign_key = "{key}"\nout = "runs"\n[train]\nepochs = 2\n'
        '[[sites]]\nname = "hq"\nsamples = "hq.csv"\n'
        '[[sites]]\nname = "gone"\nsamples = "missing.csv"\n')
    assert main(["site-loop", "--sites", str(tmp_path / "sites.toml"), "--no-publish",
                 "--quiet"]) == 2
    assert "1 of 2 sites failed" in capsys.readouterr().err
    report = json.loads((tmp_path / "runs" / "loop.json").read_text())
    hq, gone = report["sites"]
    assert hq["ok"] and hq["train"]["rows"] == 200 and (tmp_path / "runs/hq/bundle/manifest.sig").exists()
    assert not gone["ok"] and "missing.csv" in gone["error"]
    (tmp_path / "bad.toml").write_text('[[sites]]\nname = "x"\nhttp = "http://127.0.0.1:1"\n')
    assert main(["site-loop", "--sites", str(tmp_path / "bad.toml"), "--quiet"]) == 2
    assert "http needs token_file" in capsys.readouterr().err


def test_samples_parquet_round_trips_and_site_train_reads_it(tmp_path):
    pytest.importorskip("pyarrow")
    csv_path = write_samples(tmp_path / "s.csv", 120, identity=True)
    pq = tmp_path / "s.parquet"
    assert main(["samples-parquet", str(csv_path), "--out", str(pq), "--quiet"]) == 0
    a, b = site_samples.read(csv_path), site_samples.read(pq)
    assert np.array_equal(a.raw, b.raw) and np.array_equal(a.ts_ms, b.ts_ms)
    assert np.array_equal(a.score, b.score)
    v2 = write_samples(tmp_path / "v2.csv", 60, schema="flow-v2")
    assert main(["samples-parquet", str(v2), "--out", str(pq), "--quiet"]) == 0
    a, b = site_samples.read(v2), site_samples.read(pq)
    assert a.schema == b.schema == "flow-v2" and a.raw.shape == (60, 17)
    assert np.array_equal(a.raw, b.raw)


def test_flow_v2_samples_train_a_flow_v2_site_model_from_the_flow_v2_fleet_bundle(tmp_path, key):
    csv_path = write_samples(tmp_path / "v2.csv", 300, schema="flow-v2")
    rows = site_samples.read(csv_path)
    assert rows.schema == "flow-v2" and rows.raw.shape == (300, 17)
    out = tmp_path / "bundle"
    assert main(["site-train", "--samples", str(csv_path), "--out", str(out), "--site", "hq",
                 "--epochs", "2", "--sign-key", str(key), "--quiet"]) == 0
    m = json.loads((out / "manifest.json").read_text())
    fleet = json.loads((DEFAULT_FLEET_BUNDLE_V2 / "manifest.json").read_text())
    assert m["kind"] == "flow_ae" and m["features"]["schema"] == "flow-v2"
    assert m["features"]["names"] == list(FEATURE_NAMES_V2) and m["model"]["input_width"] == 17
    assert m["features"]["scaling"] == fleet["features"]["scaling"]
    site = json.loads((tmp_path / "bundle.work" / "site.json").read_text())
    assert site["schema"] == "flow-v2" and site["from"] == f"{fleet['name']} {fleet['version']}"
    # A flow-v1 fleet bundle cannot be fine-tuned on flow-v2 rows.
    assert main(["site-train", "--samples", str(csv_path), "--out", str(tmp_path / "b2"),
                 "--fleet-bundle", str(DEFAULT_FLEET_BUNDLE), "--mode", "finetune",
                 "--no-gateway-check", "--quiet"]) == 2


def test_site_train_refuses_samples_that_mix_feature_sets(tmp_path, capsys):
    csv_path = write_samples(tmp_path / "mixed.csv", 120, schema="flow-v2", mix=30)
    assert main(["site-train", "--samples", str(csv_path), "--out", str(tmp_path / "b"),
                 "--no-gateway-check", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "the samples mix flow-v1 (30 rows) and flow-v2 (120 rows)" in err, err
    assert "--schema flow-v2" in err


def test_site_loop_fetches_over_http_with_the_token(tmp_path, key):
    """The loop's HTTP fetch against a stand-in for the gateway's `GET /samples` (the real one
    is checked byte for byte in tests/e2e/site_models.rs)."""
    import http.server
    import threading

    body = write_samples(tmp_path / "served.csv", 150).read_bytes()
    seen = []

    class Api(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            seen.append((self.path, self.headers.get("Authorization")))
            ok = self.headers.get("Authorization") == "Bearer s3cret-token-0123456789"
            self.send_response(200 if ok and self.path == "/samples" else 401)
            self.send_header("Content-Length", str(len(body) if ok else 0))
            self.end_headers()
            if ok:
                self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Api)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        (tmp_path / "good.token").write_text("s3cret-token-0123456789\n")
        (tmp_path / "bad.token").write_text("wrong\n")
        (tmp_path / "sites.toml").write_text(
            f'sign_key = "{key}"\nout = "runs"\n[train]\nepochs = 2\n'
            f'[[sites]]\nname = "hq"\nhttp = "{url}"\ntoken_file = "good.token"\n'
            f'[[sites]]\nname = "denied"\nhttp = "{url}/"\ntoken_file = "bad.token"\n')
        assert main(["site-loop", "--sites", str(tmp_path / "sites.toml"), "--no-publish",
                     "--quiet"]) == 2
    finally:
        server.shutdown()
    hq, denied = json.loads((tmp_path / "runs" / "loop.json").read_text())["sites"]
    assert hq["ok"] and hq["fetched_by"] == "http" and hq["rows_fetched"] == 150
    assert (tmp_path / "runs" / "hq" / "samples.csv").read_bytes() == body
    assert not denied["ok"] and "401" in denied["error"]
    assert seen[0] == ("/samples", "Bearer s3cret-token-0123456789")


def test_site_train_quantize_hook_ships_what_the_export_stage_chooses(tmp_path):
    csv_path = write_samples(tmp_path / "samples.csv", 300, seed=3)
    out = tmp_path / "bundle"
    assert main(["site-train", "--samples", str(csv_path), "--out", str(out), "--epochs", "2",
                 "--quantize", "--no-gateway-check", "--quiet"]) == 0
    chosen = json.loads((tmp_path / "bundle.work" / "run" / "quantize.json").read_text())["chosen"]
    m = json.loads((out / "manifest.json").read_text())
    assert m["model"]["precision"] == chosen and m["quantization"]["measured"]
