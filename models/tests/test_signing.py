"""ed25519 bundle signing: the file formats the gateway reads (docs/keys.md)."""

import base64
import json
import shutil
import stat
import subprocess

import pytest

from netwarden_models.bundle import signing
from netwarden_models.cli import main


@pytest.fixture
def bundle(tmp_path):
    d = tmp_path / "bundle"
    d.mkdir()
    (d / "manifest.json").write_text(json.dumps({"format": 1, "model": {"sha256": "ab" * 32}},
                                                indent=2) + "\n")
    return d


def test_keygen_writes_pkcs8_0600_and_a_base64_pub(tmp_path, capsys):
    assert main(["keygen", "--out", str(tmp_path / "keys" / "fleet"), "--quiet"]) == 0
    key, pub = tmp_path / "keys" / "fleet.key", tmp_path / "keys" / "fleet.pub"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert key.read_text().startswith("-----BEGIN PRIVATE KEY-----\n")
    text = pub.read_text()
    assert text.endswith("\n") and text.count("\n") == 1 and len(text) == 45
    assert len(base64.b64decode(text.strip(), validate=True)) == 32
    assert capsys.readouterr().out.strip() == text.strip()
    # never overwrites a key by accident
    assert main(["keygen", "--out", str(tmp_path / "keys" / "fleet"), "--quiet"]) == 2


def test_sign_and_verify(tmp_path, bundle):
    key, pub = signing.keygen(tmp_path / "k")
    assert main(["sign", "--key", str(key), str(bundle), "--quiet"]) == 0
    sig = (bundle / "manifest.sig").read_text()
    assert sig.endswith("\n") and sig.count("\n") == 1
    assert len(base64.b64decode(sig.strip(), validate=True)) == 64
    # by file and by the base64 string itself; a list of trusted keys (rotation)
    assert signing.verify_bundle_signature(bundle, [pub]) == 0
    other, other_pub = signing.keygen(tmp_path / "other")
    b64 = pub.read_text().strip()
    assert signing.verify_bundle_signature(bundle, [other_pub, b64]) == 1
    with pytest.raises(signing.SigningError, match="does not verify"):
        signing.verify_bundle_signature(bundle, [other_pub])


def test_any_change_to_the_manifest_breaks_the_signature(tmp_path, bundle):
    key, pub = signing.keygen(tmp_path / "k")
    signing.sign_bundle(bundle, key)
    m = bundle / "manifest.json"
    m.write_bytes(m.read_bytes().replace(b"ab", b"ac", 1))
    with pytest.raises(signing.SigningError, match="does not verify"):
        signing.verify_bundle_signature(bundle, [pub])
    (bundle / "manifest.sig").unlink()
    with pytest.raises(signing.SigningError, match="unsigned"):
        signing.verify_bundle_signature(bundle, [pub])


def test_bad_keys_are_refused(tmp_path, bundle):
    (tmp_path / "x.key").write_text("not a key")
    with pytest.raises(signing.SigningError, match="PKCS#8"):
        signing.sign_bundle(bundle, tmp_path / "x.key")
    with pytest.raises(signing.SigningError, match="expected 32"):
        signing.load_public_key(base64.b64encode(b"short").decode())


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
def test_interoperates_with_openssl(tmp_path, bundle):
    """A key from `openssl genpkey -algorithm ed25519` signs; openssl verifies our signature."""
    key = tmp_path / "fleet.key"
    subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", str(key)], check=True)
    signing.sign_bundle(bundle, key)
    der = subprocess.run(["openssl", "pkey", "-in", str(key), "-pubout", "-outform", "DER"],
                         check=True, capture_output=True).stdout
    pub_b64 = base64.b64encode(der[-32:]).decode()  # SPKI DER ends with the raw 32 bytes
    assert signing.verify_bundle_signature(bundle, [pub_b64]) == 0
    (tmp_path / "sig.bin").write_bytes(base64.b64decode((bundle / "manifest.sig").read_text()))
    pem_pub = tmp_path / "pub.pem"
    subprocess.run(["openssl", "pkey", "-in", str(key), "-pubout", "-out", str(pem_pub)], check=True)
    r = subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", str(pem_pub), "-rawin",
                        "-in", str(bundle / "manifest.json"), "-sigfile", str(tmp_path / "sig.bin")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
