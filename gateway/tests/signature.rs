//! Signed bundles: the shipped flow bundle, copied and signed here with a fresh ed25519 key, is
//! accepted with the right key and refused (with the reason) when altered, unsigned or signed by
//! another key; `netwarden model check --key` applies the same rule.

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use netwarden::models::{Bundle, BundleError, PublicKey, SignatureError, SignatureStatus, Trust};
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair};

struct Signer {
    pair: Ed25519KeyPair,
}

impl Signer {
    fn new() -> Signer {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).expect("keygen");
        Signer {
            pair: Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("pkcs8"),
        }
    }

    fn public_b64(&self) -> String {
        STANDARD.encode(self.pair.public_key().as_ref())
    }

    fn public(&self) -> PublicKey {
        PublicKey::from_base64(&self.public_b64()).expect("key")
    }

    fn sign_dir(&self, dir: &Path) {
        let manifest = std::fs::read(dir.join("manifest.json")).expect("manifest");
        let sig = STANDARD.encode(self.pair.sign(&manifest).as_ref());
        std::fs::write(dir.join("manifest.sig"), sig + "\n").expect("write sig");
    }
}

fn copy_flow_bundle(into: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/bundles/flow-ae");
    let dst = into.join("flow-ae");
    std::fs::create_dir_all(&dst).expect("mkdir");
    for f in ["manifest.json", "model.onnx"] {
        std::fs::copy(src.join(f), dst.join(f)).expect("copy");
    }
    dst
}

#[test]
fn signed_bundle_verifies_and_tampering_is_refused() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = copy_flow_bundle(tmp.path());
    let signer = Signer::new();
    let other = Signer::new();

    // Unsigned: fine on a gateway that trusts no key, refused on one that does.
    let b = Bundle::load_dir(&dir, 8, &Trust::none()).expect("unsigned, no keys");
    assert_eq!(b.signature, SignatureStatus::Unsigned);
    let err = Bundle::load_dir(&dir, 8, &Trust::keys(vec![signer.public()])).expect_err("unsigned");
    assert!(
        matches!(err, BundleError::Signature(SignatureError::Unsigned(1))),
        "{err}"
    );

    signer.sign_dir(&dir);
    let b = Bundle::load_dir(&dir, 8, &Trust::keys(vec![other.public(), signer.public()]))
        .expect("signed with a trusted key");
    assert_eq!(
        b.signature,
        SignatureStatus::Verified {
            key_id: signer.public().id()
        }
    );
    let err = Bundle::load_dir(&dir, 8, &Trust::keys(vec![other.public()])).expect_err("other key");
    assert!(err.to_string().contains("does not verify"), "{err}");

    // Raising the threshold by hand (the attack a signature exists for) breaks the signature,
    // even though the manifest is still valid JSON and the model hash still matches.
    let path = dir.join("manifest.json");
    let text = std::fs::read_to_string(&path).expect("manifest");
    let mut m: serde_json::Value = serde_json::from_str(&text).expect("json");
    m["threshold"]["value"] = serde_json::json!(1000.0);
    std::fs::write(&path, serde_json::to_string_pretty(&m).expect("json")).expect("write");
    let err = Bundle::load_dir(&dir, 8, &Trust::keys(vec![signer.public()])).expect_err("altered");
    assert!(
        matches!(err, BundleError::Signature(SignatureError::Mismatch(1))),
        "{err}"
    );
}

#[test]
fn model_check_cli_takes_keys_as_files_or_text() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = copy_flow_bundle(tmp.path());
    let signer = Signer::new();
    signer.sign_dir(&dir);
    let pub_file = tmp.path().join("fleet.pub");
    std::fs::write(&pub_file, signer.public_b64() + "\n").expect("pub");

    let check = |key: &str| {
        Command::new(env!("CARGO_BIN_EXE_netwarden"))
            .args(["model", "check"])
            .arg(&dir)
            .args(["--key", key])
            .output()
            .expect("run netwarden")
    };
    let ok = check(pub_file.to_str().expect("utf8"));
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert!(
        ok.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(stdout.contains("signature verified"), "{stdout}");

    let bad = check(&Signer::new().public_b64());
    assert!(!bad.status.success());
    let stderr = String::from_utf8_lossy(&bad.stderr);
    // Each layer of the error chain adds its context once: the cause is not repeated.
    assert_eq!(stderr.matches("does not verify").count(), 1, "{stderr}");

    let garbage = check("not-a-key");
    assert!(!garbage.status.success());
    assert!(String::from_utf8_lossy(&garbage.stderr).contains("--key"));
}

/// An error and its `source()` chain, joined as anyhow's `{:#}` prints it.
fn chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut next = e.source();
    while let Some(s) = next {
        parts.push(s.to_string());
        next = s.source();
    }
    parts.join(": ")
}

#[test]
fn a_refused_bundle_names_its_cause_once() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = copy_flow_bundle(tmp.path());
    Signer::new().sign_dir(&dir);
    let trust = Trust::keys(vec![Signer::new().public()]);
    let err = netwarden::models::load_flow_bundle(Some(&dir), 8, &trust).expect_err("other key");
    assert_eq!(
        chain(&err),
        format!(
            "flow model {}: signature: manifest.sig does not verify against any of the 1 \
             trusted key(s): the manifest was altered or signed with another key",
            dir.display()
        )
    );
}
