//! Model bundles: `manifest.json` + `model.onnx`, checked before use (docs/bundle-format.md).
//!
//! A bundle is refused, with the reason, when its format or kind is unknown, its feature schema
//! differs from the gateway's, the model's SHA-256 differs from the manifest's, tract cannot
//! load it, or its golden vectors do not reproduce. Signature checks come with issue 4.

use std::path::{Path, PathBuf};

use netwarden_firmware::features::{FLOW_FEATURES, FLOW_SCHEMA, FLOW_WIDTH};
use netwarden_firmware::{Scaler, Verdict};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::pipeline::detector::{DetectorError, FlowAe};

/// The bundle the gateway ships with, compiled in so that `netwarden run` needs no files.
pub const BUILTIN_MANIFEST: &str = include_str!("../../../models/bundles/flow-ae/manifest.json");
pub const BUILTIN_MODEL: &[u8] = include_bytes!("../../../models/bundles/flow-ae/model.onnx");

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("cannot read {path}: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("manifest.json is not valid: {0}")]
    Manifest(#[from] serde_json::Error),
    #[error("manifest format {0} is not supported (this gateway reads format 1)")]
    Format(u32),
    #[error("bundle kind {0:?} is not one this gateway runs (flow_ae)")]
    Kind(String),
    #[error("feature schema mismatch: bundle has {bundle:?} {names:?}, gateway computes {FLOW_SCHEMA:?} {FLOW_FEATURES:?}")]
    Schema { bundle: String, names: Vec<String> },
    #[error("model.onnx SHA-256 is {actual}, manifest says {expected}: the bundle was altered or is incomplete")]
    Hash { expected: String, actual: String },
    #[error("manifest: {0}")]
    Invalid(String),
    #[error("tract cannot run the model: {0}")]
    Model(#[from] DetectorError),
    #[error("golden vector {index} does not reproduce: {what} differs by {diff:e} (tolerance {tolerance:e})")]
    Golden {
        index: usize,
        what: String,
        diff: f32,
        tolerance: f32,
    },
}

#[derive(Debug, Clone, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub name: String,
    pub kind: String,
    pub version: String,
    pub model: ModelSection,
    pub features: FeatureSection,
    pub threshold: ThresholdSection,
    pub severity: SeveritySection,
    pub golden: GoldenSection,
    #[serde(default)]
    pub training: serde_json::Value,
    #[serde(default)]
    pub created_utc: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ModelSection {
    pub file: String,
    pub sha256: String,
    pub input_name: String,
    pub output_name: String,
    pub input_width: usize,
    pub precision: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct FeatureSection {
    pub schema: String,
    pub names: Vec<String>,
    pub scaling: Vec<ScalingEntry>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ScalingEntry {
    pub name: String,
    pub log1p: bool,
    pub min: f64,
    pub max: f64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ThresholdSection {
    pub value: f32,
    pub method: String,
    #[serde(default)]
    pub quantile: Option<f64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SeveritySection {
    pub high_ratio: f32,
}

#[derive(Debug, Clone, Deserialize)]
pub struct GoldenSection {
    pub inputs: Vec<Vec<f32>>,
    pub outputs: Vec<Vec<f32>>,
    pub errors: Vec<f32>,
    pub tolerance: f32,
}

/// A checked bundle, ready to run.
#[derive(Debug)]
pub struct Bundle {
    pub manifest: Manifest,
    pub source: String,
    pub detector: FlowAe,
}

/// Where a bundle came from, for messages.
pub fn describe_builtin() -> String {
    "built-in flow-ae bundle".to_string()
}

impl Bundle {
    /// The compiled-in default flow model.
    pub fn builtin(batch_size: usize) -> Result<Bundle, BundleError> {
        Bundle::from_parts(
            BUILTIN_MANIFEST,
            BUILTIN_MODEL,
            describe_builtin(),
            batch_size,
        )
    }

    /// A bundle directory.
    pub fn load_dir(dir: &Path, batch_size: usize) -> Result<Bundle, BundleError> {
        let read =
            |p: PathBuf| std::fs::read(&p).map_err(|error| BundleError::Read { path: p, error });
        let manifest = read(dir.join("manifest.json"))?;
        let manifest = String::from_utf8_lossy(&manifest).into_owned();
        let parsed: Manifest = serde_json::from_str(&manifest)?;
        let model = read(dir.join(&parsed.model.file))?;
        Bundle::from_parts(&manifest, &model, dir.display().to_string(), batch_size)
    }

    pub fn from_parts(
        manifest: &str,
        model: &[u8],
        source: String,
        batch_size: usize,
    ) -> Result<Bundle, BundleError> {
        let m: Manifest = serde_json::from_str(manifest)?;
        check_manifest(&m)?;
        let actual = hex(&Sha256::digest(model));
        if !actual.eq_ignore_ascii_case(&m.model.sha256) {
            return Err(BundleError::Hash {
                expected: m.model.sha256.clone(),
                actual,
            });
        }
        let scaler = scaler(&m)?;
        let mut detector = FlowAe::load(model, &m, scaler, batch_size)?;
        check_golden(&m, &mut detector)?;
        Ok(Bundle {
            manifest: m,
            source,
            detector,
        })
    }
}

fn check_manifest(m: &Manifest) -> Result<(), BundleError> {
    if m.format != 1 {
        return Err(BundleError::Format(m.format));
    }
    if m.kind != "flow_ae" {
        return Err(BundleError::Kind(m.kind.clone()));
    }
    if m.features.schema != FLOW_SCHEMA
        || m.features
            .names
            .iter()
            .map(String::as_str)
            .ne(FLOW_FEATURES.iter().copied())
    {
        return Err(BundleError::Schema {
            bundle: m.features.schema.clone(),
            names: m.features.names.clone(),
        });
    }
    if m.model.input_width != FLOW_WIDTH {
        return Err(BundleError::Invalid(format!(
            "model.input_width is {}, schema has {FLOW_WIDTH}",
            m.model.input_width
        )));
    }
    if !(m.threshold.value.is_finite() && m.threshold.value > 0.0) {
        return Err(BundleError::Invalid(format!(
            "threshold.value {} is not a positive number",
            m.threshold.value
        )));
    }
    if !(m.severity.high_ratio.is_finite() && m.severity.high_ratio >= 1.0) {
        return Err(BundleError::Invalid(format!(
            "severity.high_ratio {} is below 1",
            m.severity.high_ratio
        )));
    }
    let g = &m.golden;
    if g.inputs.is_empty() || g.inputs.len() != g.outputs.len() || g.inputs.len() != g.errors.len()
    {
        return Err(BundleError::Invalid(
            "golden inputs, outputs and errors must be non-empty and of equal length".into(),
        ));
    }
    if g.inputs
        .iter()
        .chain(&g.outputs)
        .any(|v| v.len() != FLOW_WIDTH)
    {
        return Err(BundleError::Invalid(format!(
            "every golden vector must have {FLOW_WIDTH} values"
        )));
    }
    if !(g.tolerance.is_finite() && g.tolerance > 0.0 && g.tolerance <= 0.1) {
        return Err(BundleError::Invalid(format!(
            "golden.tolerance {} is not in (0, 0.1]",
            g.tolerance
        )));
    }
    Ok(())
}

fn scaler(m: &Manifest) -> Result<Scaler<FLOW_WIDTH>, BundleError> {
    let s = &m.features.scaling;
    if s.len() != FLOW_WIDTH || s.iter().zip(FLOW_FEATURES).any(|(e, n)| e.name != n) {
        return Err(BundleError::Invalid(
            "features.scaling must list the schema's features in order".into(),
        ));
    }
    if s.iter().any(|e| !e.min.is_finite() || !e.max.is_finite()) {
        return Err(BundleError::Invalid(
            "features.scaling has a non-finite min or max".into(),
        ));
    }
    let mut log1p = [false; FLOW_WIDTH];
    let mut min = [0.0; FLOW_WIDTH];
    let mut max = [0.0; FLOW_WIDTH];
    for (i, e) in s.iter().enumerate() {
        log1p[i] = e.log1p;
        min[i] = e.min;
        max[i] = e.max;
    }
    Ok(Scaler::new(log1p, min, max))
}

fn check_golden(m: &Manifest, detector: &mut FlowAe) -> Result<(), BundleError> {
    let g = &m.golden;
    let raw: Vec<[f32; FLOW_WIDTH]> = g.inputs.iter().map(|v| to_array(v)).collect();
    let outputs = detector.reconstruct(&raw)?;
    for (i, out) in outputs.chunks(FLOW_WIDTH).enumerate() {
        let tol = g.tolerance;
        for (j, (&a, &b)) in out.iter().zip(&g.outputs[i]).enumerate() {
            let diff = (a - b).abs();
            if diff.is_nan() || diff > tol {
                return Err(BundleError::Golden {
                    index: i,
                    what: format!("output[{j}]"),
                    diff,
                    tolerance: tol,
                });
            }
        }
        let scaled = detector.scaler().scale(&raw[i]);
        let v =
            Verdict::<FLOW_WIDTH>::judge(&scaled, out, m.threshold.value, m.severity.high_ratio);
        let diff = (v.error - g.errors[i]).abs();
        if diff.is_nan() || diff > tol {
            return Err(BundleError::Golden {
                index: i,
                what: "error".into(),
                diff,
                tolerance: tol,
            });
        }
    }
    Ok(())
}

fn to_array(v: &[f32]) -> [f32; FLOW_WIDTH] {
    let mut a = [0.0; FLOW_WIDTH];
    for (d, s) in a.iter_mut().zip(v) {
        *d = *s;
    }
    a
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_bundle_loads_and_reproduces_its_golden_vectors() {
        let b = Bundle::builtin(64).expect("built-in bundle is valid");
        assert_eq!(b.manifest.kind, "flow_ae");
        assert!(b.manifest.threshold.value > 0.0);
    }

    #[test]
    fn altered_model_is_refused_by_hash() {
        let mut model = BUILTIN_MODEL.to_vec();
        let last = model.len() - 1;
        model[last] ^= 1;
        let err = Bundle::from_parts(BUILTIN_MANIFEST, &model, "t".into(), 8).expect_err("altered");
        assert!(matches!(err, BundleError::Hash { .. }), "{err}");
    }

    #[test]
    fn wrong_golden_outputs_are_refused() {
        let mut m: serde_json::Value = serde_json::from_str(BUILTIN_MANIFEST).expect("json");
        let v = m["golden"]["outputs"][0][0].as_f64().expect("number");
        m["golden"]["outputs"][0][0] = serde_json::json!(v + 0.5);
        let err =
            Bundle::from_parts(&m.to_string(), BUILTIN_MODEL, "t".into(), 8).expect_err("golden");
        assert!(err.to_string().contains("golden vector 0"), "{err}");
    }

    #[test]
    fn schema_mismatch_says_which() {
        let mut m: serde_json::Value = serde_json::from_str(BUILTIN_MANIFEST).expect("json");
        m["features"]["names"][0] = serde_json::json!("packets");
        let err =
            Bundle::from_parts(&m.to_string(), BUILTIN_MODEL, "t".into(), 8).expect_err("schema");
        assert!(err.to_string().contains("feature schema mismatch"), "{err}");
    }
}
