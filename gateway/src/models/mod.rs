//! Model management: loading, checking and verifying bundles ([`bundle`], [`manifest`],
//! [`signature`]), the scorers that run them with tract ([`flow_scorer`], [`series_scorer`]),
//! and the choice between a configured bundle and the built-in one ([`select`]). Fleet delivery (verification, shadow, swap, rollback) is [`fleet`].
//!
//! Imports only [`crate::records`] of the crate: the pipelines and sinks use models, never the
//! other way round.

pub mod bundle;
pub mod config;
pub mod fleet;
pub mod flow_scorer;
pub mod graph_scorer;
pub mod manifest;
pub mod select;
pub mod series_scorer;
pub mod signature;

pub use bundle::{AnyBundle, Bundle, BundleError, SeriesBundle};
pub use manifest::Manifest;
pub use select::{load_flow_bundle, LoadError, ModelSources};
pub use signature::{PublicKey, SignatureError, SignatureStatus, Trust};

/// An active model as `/models` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ModelInfo {
    pub detector: String,
    pub name: String,
    pub version: String,
    pub kind: String,
    /// Where it was loaded from (a directory, or the built-in bundle).
    pub source: String,
    pub signature: String,
    pub threshold: f32,
    pub threshold_method: String,
    pub high_ratio: f32,
    /// `active` (scoring live traffic) or `idle` (loaded for `/detect` only, e.g. the series
    /// model without SNMP targets).
    pub state: String,
}

impl ModelInfo {
    pub fn from_manifest(
        detector: &str,
        m: &Manifest,
        source: &str,
        signature: &SignatureStatus,
        state: &str,
    ) -> ModelInfo {
        ModelInfo {
            detector: detector.to_string(),
            name: m.name.clone(),
            version: m.version.clone(),
            kind: m.kind.clone(),
            source: source.to_string(),
            signature: signature.to_string(),
            threshold: m.threshold.value,
            threshold_method: m.threshold.method.clone(),
            high_ratio: m.severity.high_ratio,
            state: state.to_string(),
        }
    }
}
