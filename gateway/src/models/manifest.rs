//! `manifest.json` of a model bundle (docs/bundle-format.md) and the checks a bundle of each
//! kind must pass before tract sees its model: format, kind, feature schema, shapes, threshold,
//! golden vectors well-formed, the model's SHA-256, usable scaling.

use netwarden_firmware::features::{FLOW_FEATURES, FLOW_SCHEMA};
use netwarden_firmware::features_v2::{FLOW_V2_FEATURES, FLOW_V2_SCHEMA};

use crate::models::flow_scorer::{FlowSet, ROW};
use netwarden_firmware::series::{SERIES_FEATURES, SERIES_SCHEMA, SERIES_WIDTH, WINDOW_STEPS};
use netwarden_firmware::Scaler;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::bundle::BundleError;

/// `kind` of a flow autoencoder bundle.
pub const KIND_FLOW: &str = "flow_ae";
/// `kind` of an interface-series autoencoder bundle (convolutional or LSTM: `model.variant`).
pub const KIND_SERIES: &str = "series_ae";
/// The series kind's name before issue 14; a manifest that says it loads as [`KIND_SERIES`]
/// (docs/bundle-format.md), so bundles made before the rename keep working.
pub const KIND_SERIES_ALIAS: &str = "series_lstm";

/// Reads `kind`, mapping [`KIND_SERIES_ALIAS`] to [`KIND_SERIES`].
fn kind_with_alias<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let kind = String::deserialize(d)?;
    Ok(if kind == KIND_SERIES_ALIAS {
        KIND_SERIES.to_string()
    } else {
        kind
    })
}

#[derive(Debug, Clone, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub name: String,
    /// The bundle's kind, [`KIND_SERIES_ALIAS`] already mapped to [`KIND_SERIES`].
    #[serde(deserialize_with = "kind_with_alias")]
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
    /// The fp32/int8 measurement and choice (`quantize`), informational: `model check` prints it.
    #[serde(default)]
    pub quantization: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ModelSection {
    pub file: String,
    pub sha256: String,
    pub input_name: String,
    pub output_name: String,
    pub input_width: usize,
    pub precision: String,
    /// Steps per window (`series_ae` only).
    #[serde(default)]
    pub window: Option<usize>,
    /// Model family (`seed`, `edge`, `attention`, `ensemble`), informational.
    #[serde(default)]
    pub variant: Option<String>,
    /// Output classes of a classifier (`graph_tgat`: the pattern head, `benign` first).
    #[serde(default)]
    pub classes: Option<Vec<String>>,
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
    /// Errors the quantile was taken over.
    #[serde(default)]
    pub n: Option<u64>,
    /// Where those errors came from (training set, a device's own history ...).
    #[serde(default)]
    pub source: Option<String>,
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

pub(crate) fn check_hash(m: &Manifest, model: &[u8]) -> Result<(), BundleError> {
    let actual = hex(&Sha256::digest(model));
    if !actual.eq_ignore_ascii_case(&m.model.sha256) {
        return Err(BundleError::Hash {
            expected: m.model.sha256.clone(),
            actual,
        });
    }
    Ok(())
}

/// Checks shared by both kinds; `golden_len` is the values per golden input/output.
fn check_manifest(
    m: &Manifest,
    kind: &'static str,
    schema: &'static str,
    names: &'static [&'static str],
    golden_len: usize,
) -> Result<(), BundleError> {
    if m.format != 1 {
        return Err(BundleError::Format(m.format));
    }
    if m.kind != kind {
        return Err(BundleError::Kind {
            got: m.kind.clone(),
            expected: kind,
        });
    }
    if m.features.schema != schema
        || m.features
            .names
            .iter()
            .map(String::as_str)
            .ne(names.iter().copied())
    {
        return Err(BundleError::Schema {
            bundle: m.features.schema.clone(),
            names: m.features.names.clone(),
            schema,
            expected: names,
        });
    }
    if m.model.input_width != names.len() {
        return Err(BundleError::Invalid(format!(
            "model.input_width is {}, schema has {}",
            m.model.input_width,
            names.len()
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
        .any(|v| v.len() != golden_len)
    {
        return Err(BundleError::Invalid(format!(
            "every golden vector must have {golden_len} values"
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

/// The manifest's scaling for `names`, in a scaler of `N >= names.len()` features (the rest
/// pass through: a `flow-v1` bundle's scaler over a `flow-v2`-wide row).
fn scaler<const N: usize>(m: &Manifest, names: &[&str]) -> Result<Scaler<N>, BundleError> {
    let s = &m.features.scaling;
    if s.len() != names.len() || s.len() > N || s.iter().zip(names).any(|(e, n)| e.name != *n) {
        return Err(BundleError::Invalid(
            "features.scaling must list the schema's features in order".into(),
        ));
    }
    if s.iter().any(|e| !e.min.is_finite() || !e.max.is_finite()) {
        return Err(BundleError::Invalid(
            "features.scaling has a non-finite min or max".into(),
        ));
    }
    let mut log1p = [false; N];
    let mut min = [0.0; N];
    let mut max = [1.0; N];
    for (i, e) in s.iter().enumerate() {
        log1p[i] = e.log1p;
        min[i] = e.min;
        max[i] = e.max;
    }
    Ok(Scaler::new(log1p, min, max))
}

/// Everything a flow bundle must pass before tract sees its model: the manifest parses, its
/// schema, shapes, threshold and golden vectors are well-formed, the model's SHA-256 matches,
/// and the scaling is usable. The schema is `flow-v1` or `flow-v2`; the scaler is as wide as a
/// `flow-v2` row either way. (Fuzzed: `fuzz/fuzz_targets/bundle_manifest.rs`.)
pub fn check_flow_manifest(
    manifest: &str,
    model: &[u8],
) -> Result<(Manifest, Scaler<ROW>, FlowSet), BundleError> {
    let m: Manifest = serde_json::from_str(manifest)?;
    let set = FlowSet::from_schema(&m.features.schema).unwrap_or(FlowSet::V1);
    let (schema, names): (&'static str, &'static [&'static str]) = match set {
        FlowSet::V1 => (FLOW_SCHEMA, &FLOW_FEATURES),
        FlowSet::V2 => (FLOW_V2_SCHEMA, &FLOW_V2_FEATURES),
    };
    check_manifest(&m, KIND_FLOW, schema, names, set.width())?;
    check_hash(&m, model)?;
    let scaler = scaler(&m, names)?;
    Ok((m, scaler, set))
}

/// As [`check_flow_manifest`], for a `series_ae` bundle; also returns its window length.
pub fn check_series_manifest(
    manifest: &str,
    model: &[u8],
) -> Result<(Manifest, usize, Scaler<SERIES_WIDTH>), BundleError> {
    let m: Manifest = serde_json::from_str(manifest)?;
    let window = match m.model.window {
        Some(w) if (1..=10_000).contains(&w) => w,
        other => {
            return Err(BundleError::Invalid(format!(
                "model.window is {other:?}; a series_ae bundle needs the window length (50)"
            )))
        }
    };
    if window != WINDOW_STEPS {
        return Err(BundleError::Invalid(format!(
            "model.window is {window}, the gateway builds windows of {WINDOW_STEPS} steps"
        )));
    }
    check_manifest(
        &m,
        KIND_SERIES,
        SERIES_SCHEMA,
        &SERIES_FEATURES,
        window * SERIES_WIDTH,
    )?;
    check_hash(&m, model)?;
    let scaler = scaler(&m, &SERIES_FEATURES)?;
    Ok((m, window, scaler))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
