"""ed25519 signing of bundles (the contract with the gateway; docs/keys.md).

- private key: PKCS#8 PEM, what ``openssl genpkey -algorithm ed25519`` writes; ``keygen``
  writes ``NAME.key`` with mode 0600 (created so, never readable by others even briefly);
- public key file ``NAME.pub``: one line, standard base64 (padded) of the raw 32-byte key,
  then a newline; the same string goes in the gateway's ``[bundles] trusted_keys``;
- ``manifest.sig`` in the bundle directory: one line, standard base64 of the raw 64-byte
  signature over the exact bytes of ``manifest.json`` on disk, then a newline. The manifest
  holds the SHA-256 of ``model.onnx``, so the signature covers the model too.
"""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ..log import say

MANIFEST_FILE = "manifest.json"
SIGNATURE_FILE = "manifest.sig"


class SigningError(RuntimeError):
    pass


def keygen(out: str | Path, force: bool = False) -> tuple[Path, Path]:
    """Write ``OUT.key`` (PKCS#8 PEM, 0600) and ``OUT.pub``; returns their paths."""
    out = Path(out)
    key_path, pub_path = Path(f"{out}.key"), Path(f"{out}.pub")
    if not force and (key_path.exists() or pub_path.exists()):
        raise SigningError(f"{key_path} or {pub_path} exists; refusing to overwrite (--force)")
    key_path.parent.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    key_path.unlink(missing_ok=True)
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    os.chmod(key_path, 0o600)  # whatever the umask
    pub_path.write_text(public_key_b64(key.public_key()) + "\n", encoding="ascii")
    return key_path, pub_path


def load_private_key(path: str | Path) -> Ed25519PrivateKey:
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise SigningError(f"{path}: cannot read the signing key: {e.strerror or e}") from e
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as e:
        raise SigningError(f"{path}: not an unencrypted PKCS#8 PEM private key ({e})") from e
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningError(f"{path}: not an ed25519 key ({type(key).__name__})")
    return key


def public_key_b64(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


def _b64_exact(text: str, size: int, what: str) -> bytes:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as e:
        raise SigningError(f"{what}: not standard base64 ({e})") from e
    if len(raw) != size:
        raise SigningError(f"{what}: {len(raw)} bytes, expected {size}")
    return raw


def load_public_key(spec: str | Path) -> Ed25519PublicKey:
    """A public key from a ``.pub`` file path or the base64 string itself (as the gateway)."""
    text = str(spec)
    p = Path(text)
    if p.is_file():
        text, what = p.read_text(encoding="ascii"), str(p)
    else:
        what = "public key"
    return Ed25519PublicKey.from_public_bytes(_b64_exact(text, 32, what))


def sign_bundle(bundle_dir: str | Path, key_path: str | Path) -> Path:
    """Sign ``manifest.json`` as it is on disk; writes ``manifest.sig``."""
    d = Path(bundle_dir)
    manifest = d / MANIFEST_FILE
    try:
        data = manifest.read_bytes()
    except OSError as e:
        raise SigningError(f"{manifest}: {e.strerror or e}") from e
    sig = load_private_key(key_path).sign(data)
    out = d / SIGNATURE_FILE
    tmp = d / (SIGNATURE_FILE + ".tmp")
    tmp.write_text(base64.b64encode(sig).decode("ascii") + "\n", encoding="ascii")
    os.chmod(tmp, 0o644)
    os.replace(tmp, out)
    return out


def verify_bundle_signature(bundle_dir: str | Path, public_keys) -> int:
    """Index of the trusted key whose signature checks out; raises SigningError otherwise."""
    d = Path(bundle_dir)
    sig_path = d / SIGNATURE_FILE
    if not sig_path.exists():
        raise SigningError(f"{d}: no {SIGNATURE_FILE} (bundle is unsigned)")
    sig = _b64_exact(sig_path.read_text(encoding="ascii"), 64, str(sig_path))
    data = (d / MANIFEST_FILE).read_bytes()
    keys = [public_keys] if isinstance(public_keys, (str, Path)) else list(public_keys)
    for i, k in enumerate(keys):
        try:
            load_public_key(k).verify(sig, data)
            return i
        except InvalidSignature:
            continue
    raise SigningError(f"{d}: {SIGNATURE_FILE} does not verify with any of {len(keys)} trusted key(s)")


# --- commands `keygen` and `sign` ----------------------------------------------------------
def cmd_keygen(args) -> int:
    key, pub = keygen(args.out, force=args.force)
    print(pub.read_text().strip())
    say(args.quiet, f"wrote {key} (private, mode 0600: keep it offline, never commit it) and "
        f"{pub} (public: goes in the gateways' [bundles] trusted_keys)")
    return 0


def cmd_sign(args) -> int:
    sig = sign_bundle(args.bundle, args.key)
    pub = public_key_b64(load_private_key(args.key).public_key())
    verify_bundle_signature(args.bundle, [pub])
    print(pub)
    say(args.quiet, f"wrote {sig} (verifies with public key {pub})")
    return 0
