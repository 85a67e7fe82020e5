//! Model bundles: `manifest.json` + `model.onnx`, checked before use (docs/bundle-format.md).
//!
//! Two kinds share format 1: `flow_ae` (dense autoencoder on `flow-v1` vectors, [`Bundle`]) and
//! `series_ae` (the series autoencoder, convolutional or LSTM, on 50-step `series-v1` windows,
//! [`SeriesBundle`]). Each loader refuses the other kind; [`AnyBundle::load_dir`] picks by the
//! manifest's `kind`.
//!
//! A bundle is refused, with the reason, when its format or kind is unknown, its feature schema
//! differs from the gateway's, the model's SHA-256 differs from the manifest's, tract cannot
//! load it, its golden vectors do not reproduce, or its `manifest.sig` fails the gateway's trust
//! rule ([`Trust`], module [`super::signature`]).
//!
//! The manifest and the checks it must pass before tract sees the model are in
//! [`super::manifest`].

use std::path::{Path, PathBuf};

use netwarden_firmware::series::{judge_window, SeriesRow, SERIES_FEATURES, SERIES_WIDTH};
use netwarden_firmware::Verdict;

#[cfg(test)]
use super::manifest::KIND_SERIES_ALIAS;
use super::manifest::{check_flow_manifest, check_series_manifest, Manifest, KIND_SERIES};
use super::signature::{SignatureError, SignatureStatus, Trust, SIGNATURE_FILE};
use crate::models::flow_scorer::{row_of, DetectorError, FlowAe, FlowRow};
use crate::models::series_scorer::{SeriesAe, SeriesDetectorError};

/// The bundle the gateway ships with, compiled in so that `netwarden run` needs no files.
pub const BUILTIN_MANIFEST: &str = include_str!("../../../models/bundles/flow-ae-v2/manifest.json");
pub const BUILTIN_MODEL: &[u8] = include_bytes!("../../../models/bundles/flow-ae-v2/model.onnx");
/// The default interface-series bundle, used when SNMP targets are polled and no
/// `detector.series_model` is configured.
pub const BUILTIN_SERIES_MANIFEST: &str =
    include_str!("../../../models/bundles/series-ae/manifest.json");
pub const BUILTIN_SERIES_MODEL: &[u8] =
    include_bytes!("../../../models/bundles/series-ae/model.onnx");

/// Why a bundle was refused. Each variant's message includes its cause's, so none is also a
/// `source` (a `{:#}` chain would print the cause twice); `?` still converts via `From`.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("cannot read {path}: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("manifest.json is not valid: {0}")]
    Manifest(serde_json::Error),
    #[error("manifest format {0} is not supported (this gateway reads format 1)")]
    Format(u32),
    #[error("bundle kind {got:?} is not what this loader runs ({expected})")]
    Kind { got: String, expected: &'static str },
    #[error("feature schema mismatch: bundle has {bundle:?} {names:?}, gateway computes {schema:?} {expected:?}")]
    Schema {
        bundle: String,
        names: Vec<String>,
        schema: &'static str,
        expected: &'static [&'static str],
    },
    #[error("model.onnx SHA-256 is {actual}, manifest says {expected}: the bundle was altered or is incomplete")]
    Hash { expected: String, actual: String },
    #[error("manifest: {0}")]
    Invalid(String),
    #[error("signature: {0}")]
    Signature(SignatureError),
    #[error("tract cannot run the model: {0}")]
    Model(DetectorError),
    #[error("tract cannot run the model: {0}")]
    SeriesModel(SeriesDetectorError),
    #[error("golden vector {index} does not reproduce: {what} differs by {diff:e} (tolerance {tolerance:e})")]
    Golden {
        index: usize,
        what: String,
        diff: f32,
        tolerance: f32,
    },
}

macro_rules! bundle_error_from {
    ($($from:ty => $variant:ident),* $(,)?) => {$(
        impl From<$from> for BundleError {
            fn from(e: $from) -> Self {
                BundleError::$variant(e)
            }
        }
    )*};
}

bundle_error_from!(
    serde_json::Error => Manifest,
    SignatureError => Signature,
    DetectorError => Model,
    SeriesDetectorError => SeriesModel,
);

/// A checked bundle, ready to run.
#[derive(Debug)]
pub struct Bundle {
    pub manifest: Manifest,
    pub source: String,
    pub detector: FlowAe,
    pub signature: SignatureStatus,
}

/// Where a bundle came from, for messages.
pub fn describe_builtin() -> String {
    "built-in flow-ae-v2 bundle".to_string()
}

impl Bundle {
    /// The compiled-in default flow model.
    pub fn builtin(batch_size: usize) -> Result<Bundle, BundleError> {
        let mut b = Bundle::from_parts(
            BUILTIN_MANIFEST,
            BUILTIN_MODEL,
            describe_builtin(),
            batch_size,
        )?;
        b.signature = SignatureStatus::Builtin;
        Ok(b)
    }

    /// A bundle directory, its signature checked by `trust`.
    pub fn load_dir(dir: &Path, batch_size: usize, trust: &Trust) -> Result<Bundle, BundleError> {
        let (manifest, _, model, signature) = read_dir(dir, trust)?;
        let mut b = Bundle::from_parts(&manifest, &model, dir.display().to_string(), batch_size)?;
        b.signature = signature;
        Ok(b)
    }

    pub fn from_parts(
        manifest: &str,
        model: &[u8],
        source: String,
        batch_size: usize,
    ) -> Result<Bundle, BundleError> {
        let (m, scaler, set) = check_flow_manifest(manifest, model)?;
        let mut detector = FlowAe::load(model, &m, scaler, set, batch_size)?;
        check_golden(&m, &mut detector)?;
        Ok(Bundle {
            manifest: m,
            source,
            detector,
            signature: SignatureStatus::NotChecked,
        })
    }
}

type DirParts = (String, Manifest, Vec<u8>, SignatureStatus);

/// Reads a bundle directory; the signature is checked first, over the manifest's raw bytes.
pub(crate) fn read_dir(dir: &Path, trust: &Trust) -> Result<DirParts, BundleError> {
    let read = |p: PathBuf| std::fs::read(&p).map_err(|error| BundleError::Read { path: p, error });
    let raw = read(dir.join("manifest.json"))?;
    let sig_path = dir.join(SIGNATURE_FILE);
    let sig = match std::fs::read(&sig_path) {
        Ok(s) => Some(s),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(error) => {
            return Err(BundleError::Read {
                path: sig_path,
                error,
            })
        }
    };
    let status = trust.check(&raw, sig.as_deref())?;
    let manifest = String::from_utf8(raw)
        .map_err(|_| BundleError::Invalid("manifest.json is not UTF-8".into()))?;
    let parsed: Manifest = serde_json::from_str(&manifest)?;
    let model = read(dir.join(&parsed.model.file))?;
    Ok((manifest, parsed, model, status))
}

fn check_golden(m: &Manifest, detector: &mut FlowAe) -> Result<(), BundleError> {
    let g = &m.golden;
    let raw: Vec<FlowRow> = g.inputs.iter().map(|v| row_of(v)).collect();
    let outputs = detector.reconstruct(&raw)?;
    let width = detector.width();
    for (i, out) in outputs.chunks(width).enumerate() {
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
        let v = Verdict::judge_first(
            &scaled,
            width,
            out,
            m.threshold.value,
            m.severity.high_ratio,
        );
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

/// A checked `series_ae` bundle, ready to run.
#[derive(Debug)]
pub struct SeriesBundle {
    pub manifest: Manifest,
    pub source: String,
    pub detector: SeriesAe,
    pub signature: SignatureStatus,
}

impl SeriesBundle {
    /// The compiled-in default series model.
    pub fn builtin(batches: &[usize]) -> Result<SeriesBundle, BundleError> {
        let mut b = SeriesBundle::from_parts(
            BUILTIN_SERIES_MANIFEST,
            BUILTIN_SERIES_MODEL,
            "built-in series-ae bundle".to_string(),
            batches,
        )?;
        b.signature = SignatureStatus::Builtin;
        Ok(b)
    }

    /// A bundle directory, with tract plans for `batches` windows per run.
    pub fn load_dir(
        dir: &Path,
        batches: &[usize],
        trust: &Trust,
    ) -> Result<SeriesBundle, BundleError> {
        let (manifest, _, model, signature) = read_dir(dir, trust)?;
        let mut b =
            SeriesBundle::from_parts(&manifest, &model, dir.display().to_string(), batches)?;
        b.signature = signature;
        Ok(b)
    }

    pub fn from_parts(
        manifest: &str,
        model: &[u8],
        source: String,
        batches: &[usize],
    ) -> Result<SeriesBundle, BundleError> {
        let (m, window, scaler) = check_series_manifest(manifest, model)?;
        let mut detector = SeriesAe::load(
            model,
            window,
            scaler,
            m.threshold.value,
            m.severity.high_ratio,
            batches,
        )?;
        check_series_golden(&m, &mut detector)?;
        Ok(SeriesBundle {
            manifest: m,
            source,
            detector,
            signature: SignatureStatus::NotChecked,
        })
    }
}

/// A bundle of either kind, for tools that take whatever directory they are given.
// Built once per command, never moved around in bulk: boxing would only add noise.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum AnyBundle {
    Flow(Bundle),
    Series(SeriesBundle),
}

impl AnyBundle {
    /// Loads `dir` with the loader its manifest's `kind` names.
    pub fn load_dir(
        dir: &Path,
        flow_batch: usize,
        series_batches: &[usize],
        trust: &Trust,
    ) -> Result<AnyBundle, BundleError> {
        let (manifest, parsed, model, signature) = read_dir(dir, trust)?;
        let source = dir.display().to_string();
        Ok(match parsed.kind.as_str() {
            KIND_SERIES => {
                let mut b = SeriesBundle::from_parts(&manifest, &model, source, series_batches)?;
                b.signature = signature;
                AnyBundle::Series(b)
            }
            _ => {
                let mut b = Bundle::from_parts(&manifest, &model, source, flow_batch)?;
                b.signature = signature;
                AnyBundle::Flow(b)
            }
        })
    }

    pub fn signature(&self) -> &SignatureStatus {
        match self {
            AnyBundle::Flow(b) => &b.signature,
            AnyBundle::Series(b) => &b.signature,
        }
    }

    pub fn manifest(&self) -> &Manifest {
        match self {
            AnyBundle::Flow(b) => &b.manifest,
            AnyBundle::Series(b) => &b.manifest,
        }
    }
}

fn check_series_golden(m: &Manifest, detector: &mut SeriesAe) -> Result<(), BundleError> {
    let g = &m.golden;
    let raw: Vec<f32> = g.inputs.iter().flatten().copied().collect();
    let outputs = detector.reconstruct_raw(&raw)?;
    let per = detector.window_len();
    let tol = g.tolerance;
    for (i, out) in outputs.chunks(per).enumerate() {
        for (j, (&a, &b)) in out.iter().zip(&g.outputs[i]).enumerate() {
            let diff = (a - b).abs();
            if diff.is_nan() || diff > tol {
                return Err(BundleError::Golden {
                    index: i,
                    what: format!(
                        "output[step {}][{}]",
                        j / SERIES_WIDTH,
                        SERIES_FEATURES[j % SERIES_WIDTH]
                    ),
                    diff,
                    tolerance: tol,
                });
            }
        }
        let rows: Vec<SeriesRow> = g.inputs[i]
            .chunks_exact(SERIES_WIDTH)
            .map(|c| {
                let mut r = [0.0; SERIES_WIDTH];
                r.copy_from_slice(c);
                r
            })
            .collect();
        let mut scaled = Vec::with_capacity(per);
        detector.scale_rows(rows.iter(), &mut scaled);
        let v = judge_window(&scaled, out, m.threshold.value, m.severity.high_ratio);
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
    fn builtin_series_bundle_loads_and_reproduces_its_golden_windows() {
        let b = SeriesBundle::builtin(&[1, 8]).expect("built-in series bundle is valid");
        assert_eq!(b.manifest.kind, KIND_SERIES);
        assert_eq!(b.signature, SignatureStatus::Builtin);
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

    #[test]
    fn a_manifest_of_the_old_series_lstm_kind_loads_as_series_ae() {
        // A bundle directory made before issue 14 renamed the kind: same model, old `kind`.
        let dir = tempfile::tempdir().expect("tempdir");
        let old = BUILTIN_SERIES_MANIFEST.replace(
            &format!("\"kind\": \"{KIND_SERIES}\""),
            &format!("\"kind\": \"{KIND_SERIES_ALIAS}\""),
        );
        assert!(
            old.contains("\"series_lstm\""),
            "the fixture must say the old kind"
        );
        std::fs::write(dir.path().join("manifest.json"), &old).expect("write manifest");
        std::fs::write(dir.path().join("model.onnx"), BUILTIN_SERIES_MODEL).expect("write model");
        let any = AnyBundle::load_dir(dir.path(), 8, &[1], &Trust::none()).expect("alias loads");
        let AnyBundle::Series(b) = any else {
            panic!("a series_lstm manifest must load with the series loader")
        };
        assert_eq!(b.manifest.kind, KIND_SERIES);
        // The series loader itself accepts it too; the flow loader still refuses it.
        SeriesBundle::from_parts(&old, BUILTIN_SERIES_MODEL, "t".into(), &[1]).expect("series");
        let err = Bundle::from_parts(&old, BUILTIN_SERIES_MODEL, "t".into(), 8).expect_err("flow");
        assert!(matches!(err, BundleError::Kind { .. }), "{err}");
    }
}
