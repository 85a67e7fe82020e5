//! Which bundle each detector runs: the configured directory, else the built-in one. The one
//! place that decides it; the runtime, the HTTP scorer and the CLI all ask here.

use std::path::{Path, PathBuf};

use super::bundle::{describe_builtin, BUILTIN_SERIES_MANIFEST};
use super::series_scorer::DEFAULT_BATCHES;
use super::{Bundle, BundleError, Manifest, ModelInfo, SeriesBundle, SignatureStatus, Trust};
use crate::records::SERIES_DETECTOR;

/// A bundle that could not be loaded, and which one it was.
#[derive(Debug, thiserror::Error)]
#[error("{what} {source_name}: {error}")]
pub struct LoadError {
    /// `flow model` or `series model`.
    pub what: &'static str,
    /// The directory, or the built-in bundle's name.
    pub source_name: String,
    // Interpolated above, so not also a `source` (the cause would print twice with `{:#}`).
    pub error: BundleError,
}

/// Where the detectors' bundles come from (`detector.flow_model`, `detector.series_model`)
/// and which signatures are trusted (`[bundles]`).
#[derive(Debug, Clone, Default)]
pub struct ModelSources {
    pub flow_model: Option<PathBuf>,
    pub series_model: Option<PathBuf>,
    pub trust: Trust,
}

impl ModelSources {
    /// The flow model, with tract plans for batches of `batch_size`.
    pub fn load_flow(&self, batch_size: usize) -> Result<Bundle, LoadError> {
        load_flow_bundle(self.flow_model.as_deref(), batch_size, &self.trust)
    }

    /// The series model, with tract plans for the default batch sizes.
    pub fn load_series(&self) -> Result<SeriesBundle, LoadError> {
        let batches = &DEFAULT_BATCHES;
        match &self.series_model {
            Some(dir) => {
                SeriesBundle::load_dir(dir, batches, &self.trust).map_err(|error| LoadError {
                    what: "series model",
                    source_name: dir.display().to_string(),
                    error,
                })
            }
            None => SeriesBundle::builtin(batches).map_err(|error| LoadError {
                what: "series model",
                source_name: "built-in".to_string(),
                error,
            }),
        }
    }

    /// The series model as `/models` shows it when nothing feeds it (it is loaded only for
    /// `/detect`, on first use): from its manifest, without loading the model.
    pub fn idle_series_info(&self) -> Option<ModelInfo> {
        let (text, source, signature) = match &self.series_model {
            Some(dir) => (
                std::fs::read_to_string(dir.join("manifest.json")).ok()?,
                dir.display().to_string(),
                SignatureStatus::NotChecked,
            ),
            None => (
                BUILTIN_SERIES_MANIFEST.to_string(),
                "built-in series-ae bundle".to_string(),
                SignatureStatus::Builtin,
            ),
        };
        let m: Manifest = serde_json::from_str(&text).ok()?;
        Some(ModelInfo::from_manifest(
            SERIES_DETECTOR,
            &m,
            &source,
            &signature,
            "idle",
        ))
    }
}

/// Loads the flow bundle in `dir`, or the built-in one.
pub fn load_flow_bundle(
    dir: Option<&Path>,
    batch_size: usize,
    trust: &Trust,
) -> Result<Bundle, LoadError> {
    match dir {
        Some(dir) => Bundle::load_dir(dir, batch_size, trust).map_err(|error| LoadError {
            what: "flow model",
            source_name: dir.display().to_string(),
            error,
        }),
        None => Bundle::builtin(batch_size).map_err(|error| LoadError {
            what: "flow model",
            source_name: describe_builtin(),
            error,
        }),
    }
}
