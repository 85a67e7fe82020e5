//! Fleet model delivery helpers (tests/e2e/fleet.rs): signing keys, bundles made from the
//! flow-v1 bundle models/bundles/flow-ae (built in until issue 18) around any model (golden vectors recomputed in tract, then signed),
//! raw publishing with `mosquitto_pub` (for what `netwarden fleet publish` would never send),
//! and the appliances' retained state read with `netwarden fleet status --json`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use netwarden::models::flow_scorer::{row_of, FlowAe};
use netwarden::models::manifest::check_flow_manifest;
use netwarden_firmware::Verdict;
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair};
use sha2::{Digest, Sha256};

use crate::{netwarden_bin, repo_root};

/// An ed25519 key pair made for the test.
pub struct Signer {
    pair: Ed25519KeyPair,
    pub public: String,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signer({})", self.public)
    }
}

impl Signer {
    pub fn new() -> anyhow::Result<Signer> {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
            .map_err(|_| anyhow::anyhow!("keygen"))?;
        let pair =
            Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|_| anyhow::anyhow!("pkcs8"))?;
        let public = STANDARD.encode(pair.public_key().as_ref());
        Ok(Signer { pair, public })
    }

    pub fn sign(&self, msg: &[u8]) -> String {
        format!("{}\n", STANDARD.encode(self.pair.sign(msg).as_ref()))
    }
}

/// The flow-v1 bundle's model (models/bundles/flow-ae, built in until issue 18; the fleet
/// tests' gateways run it).
pub fn shipped_model() -> anyhow::Result<Vec<u8>> {
    Ok(std::fs::read(
        repo_root().join("models/bundles/flow-ae/model.onnx"),
    )?)
}

/// A model of tests/data/fleet (make-models.py).
pub fn fixture_model(name: &str) -> anyhow::Result<Vec<u8>> {
    let p = crate::fixture(&format!("fleet/{name}"));
    std::fs::read(&p).with_context(|| format!("cannot read {}", p.display()))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Writes a signed bundle to `dir`: the shipped manifest with `version`, the model's SHA-256,
/// golden outputs and errors recomputed with this model in tract (kept when they come out
/// non-finite, so a NaN model still has a well-formed manifest), then `edit`, then the
/// signature over the exact bytes written.
pub fn make_bundle(
    dir: &Path,
    model: &[u8],
    version: &str,
    signer: &Signer,
    edit: impl FnOnce(&mut serde_json::Value),
) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let text = std::fs::read_to_string(repo_root().join("models/bundles/flow-ae/manifest.json"))?;
    let mut m: serde_json::Value = serde_json::from_str(&text)?;
    m["version"] = version.into();
    m["model"]["sha256"] = hex(&Sha256::digest(model)).into();
    if let Some((outputs, errors)) = golden(&serde_json::to_string(&m)?, model) {
        m["golden"]["outputs"] = serde_json::to_value(outputs)?;
        m["golden"]["errors"] = serde_json::to_value(errors)?;
    }
    edit(&mut m);
    let manifest = serde_json::to_string_pretty(&m)?;
    std::fs::write(dir.join("manifest.json"), &manifest)?;
    std::fs::write(dir.join("model.onnx"), model)?;
    std::fs::write(dir.join("manifest.sig"), signer.sign(manifest.as_bytes()))?;
    Ok(dir.to_path_buf())
}

type Golden = (Vec<Vec<f32>>, Vec<f32>);

fn golden(manifest: &str, model: &[u8]) -> Option<Golden> {
    let (m, scaler, set) = check_flow_manifest(manifest, model).ok()?;
    let mut ae = FlowAe::load(model, &m, scaler, set, 16).ok()?;
    let width = ae.width();
    let raw: Vec<_> = m.golden.inputs.iter().map(|v| row_of(v)).collect();
    let out = ae.reconstruct(&raw).ok()?;
    if out.len() != raw.len() * width || out.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let mut outputs = Vec::new();
    let mut errors = Vec::new();
    for (r, o) in raw.iter().zip(out.chunks(width)) {
        let scaled = ae.scaler().scale(r);
        let v = Verdict::judge_first(&scaled, width, o, m.threshold.value, m.severity.high_ratio);
        outputs.push(o.to_vec());
        errors.push(v.error);
    }
    Some((outputs, errors))
}

/// `netwarden fleet ...` with `args`; fails with its output unless it succeeds.
pub fn fleet_cli(args: &[&str]) -> anyhow::Result<String> {
    crate::output_ok(
        Command::new(netwarden_bin()?).arg("fleet").args(args),
        &format!("netwarden fleet {}", args.join(" ")),
    )
}

/// One retained message with `mosquitto_pub` (`-r`, QoS 1); `auth` is user and password.
pub fn mosquitto_pub(
    port: u16,
    topic: &str,
    payload: &[u8],
    auth: Option<(&str, &str)>,
) -> anyhow::Result<()> {
    crate::require("mosquitto_pub")?;
    let dir = crate::tempdir::Dir::new("pub")?;
    let file = dir.path().join("payload");
    std::fs::write(&file, payload)?;
    let mut cmd = Command::new("mosquitto_pub");
    cmd.args([
        "-h",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "-q",
        "1",
        "-r",
        "-t",
        topic,
    ])
    .arg("-f")
    .arg(&file);
    if let Some((u, p)) = auth {
        cmd.args(["-u", u, "-P", p]);
    }
    let out = cmd.output()?;
    if !out.status.success() {
        bail!(
            "mosquitto_pub {topic}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// Every appliance's retained state (`fleet status --json`), keyed by device.
pub fn states(
    port: u16,
    auth: &[&str],
) -> anyhow::Result<std::collections::BTreeMap<String, serde_json::Value>> {
    let url = format!("mqtt://127.0.0.1:{port}");
    let mut args = vec!["status", "--mqtt", url.as_str(), "--json", "--wait", "0.6"];
    args.extend_from_slice(auth);
    let text = fleet_cli(&args)?;
    Ok(text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| Some((v["device"].as_str()?.to_string(), v)))
        .collect())
}

/// A NetFlow v5 datagram of one flow of `bytes` bytes (4 packets), now.
pub fn v5_big_flow(bytes: u32, seq: u32) -> Vec<u8> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as u32)
        .unwrap_or(0);
    let up: u32 = 100_000_000;
    let mut d = Vec::with_capacity(72);
    d.extend_from_slice(&5u16.to_be_bytes());
    d.extend_from_slice(&1u16.to_be_bytes());
    d.extend_from_slice(&up.to_be_bytes());
    d.extend_from_slice(&now.to_be_bytes());
    d.extend_from_slice(&0u32.to_be_bytes());
    d.extend_from_slice(&seq.to_be_bytes());
    d.extend_from_slice(&[0; 4]);
    d.extend_from_slice(&[10, 9, 9, 9]);
    d.extend_from_slice(&[192, 168, 9, 9]);
    d.extend_from_slice(&[0; 8]);
    d.extend_from_slice(&4u32.to_be_bytes());
    d.extend_from_slice(&bytes.to_be_bytes());
    d.extend_from_slice(&(up - 5_000).to_be_bytes());
    d.extend_from_slice(&(up - 100).to_be_bytes());
    d.extend_from_slice(&40000u16.to_be_bytes());
    d.extend_from_slice(&443u16.to_be_bytes());
    d.extend_from_slice(&[0, 0x18, 6, 0]);
    d.extend_from_slice(&[0; 8]);
    d
}
