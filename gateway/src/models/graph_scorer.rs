//! The temporal graph's edge classifier (`graph_tgat` bundles), run by tract.
//!
//! Input: rows of the `graph-v1` layout (the pipeline gathers them: `pipeline/graph/`); this
//! module knows only their width and column names, which the caller passes in, so the models
//! layer stays below the pipeline. Output: one probability per pattern class (`model.classes`,
//! class 0 is `benign`). Like the flow scorer, two plans are optimised once (a small batch and
//! the configured one), partial batches are zero-padded, and the states are reused.

use std::path::Path;

use tract_onnx::prelude::*;

use super::bundle::{read_dir, BundleError};
use super::flow_scorer::{plan, DetectorError, SMALL_BATCH};
use super::manifest::{check_hash, Manifest};
use super::signature::{SignatureStatus, Trust};

/// `kind` of a temporal graph bundle.
pub const KIND_GRAPH: &str = "graph_tgat";
/// The schema the pipeline computes.
pub const GRAPH_SCHEMA: &str = "graph-v1";

/// The built-in graph bundle (trained on lab runs; docs/graph-model.md).
pub const BUILTIN_GRAPH_MANIFEST: &str =
    include_str!("../../../models/bundles/graph-tgat/manifest.json");
pub const BUILTIN_GRAPH_MODEL: &[u8] =
    include_bytes!("../../../models/bundles/graph-tgat/model.onnx");

#[derive(Debug)]
struct Shaped {
    batch: usize,
    state: TypedSimpleState,
}

/// A loaded, optimised edge classifier.
#[derive(Debug)]
pub struct GraphScorer {
    small: Shaped,
    large: Shaped,
    width: usize,
    /// Pattern names, in output order; `classes[0]` is benign.
    pub classes: Vec<String>,
    /// An edge is anomalous when `1 - P(benign)` exceeds this.
    pub threshold: f32,
    pub high_ratio: f32,
    flat: Vec<f32>,
}

impl GraphScorer {
    fn load(
        bytes: &[u8],
        m: &Manifest,
        classes: Vec<String>,
        batch_size: usize,
    ) -> Result<GraphScorer, DetectorError> {
        let width = m.model.input_width;
        let large_batch = batch_size.max(SMALL_BATCH);
        let small = plan(bytes, SMALL_BATCH, width)?;
        let large = if large_batch == SMALL_BATCH {
            small.clone()
        } else {
            plan(bytes, large_batch, width)?
        };
        Ok(GraphScorer {
            small: Shaped {
                batch: SMALL_BATCH,
                state: TypedSimpleState::new(&small)?,
            },
            large: Shaped {
                batch: large_batch,
                state: TypedSimpleState::new(&large)?,
            },
            width,
            classes,
            threshold: m.threshold.value,
            high_ratio: m.severity.high_ratio,
            flat: Vec::with_capacity(large_batch * width),
        })
    }

    /// Values per input row.
    pub fn width(&self) -> usize {
        self.width
    }

    pub fn batch_size(&self) -> usize {
        self.large.batch
    }

    /// Runs `rows` (row-major, [`Self::width`] values each), appending one probability per class
    /// per row to `out`. Any number of rows.
    pub fn run(&mut self, rows: &[f32], out: &mut Vec<f32>) -> Result<(), DetectorError> {
        let width = self.width;
        let classes = self.classes.len();
        let n = rows.len() / width;
        let large = self.large.batch;
        for start in (0..n).step_by(large) {
            let count = (n - start).min(large);
            let shaped = if count <= SMALL_BATCH {
                &mut self.small
            } else {
                &mut self.large
            };
            let batch = shaped.batch;
            let chunk = &rows[start * width..(start + count) * width];
            // A full batch goes straight into the tensor; a partial one is padded first.
            let input = if count == batch {
                Tensor::from_shape(&[batch, width], chunk)?
            } else {
                self.flat.clear();
                self.flat.extend_from_slice(chunk);
                self.flat.resize(batch * width, 0.0);
                Tensor::from_shape(&[batch, width], &self.flat)?
            };
            let result = shaped.state.run(tvec!(input.into_tvalue()))?;
            let first = result.first().ok_or(DetectorError::OutputShape {
                got: 0,
                rows: count,
                width: classes,
            })?;
            let values = first.try_as_plain_ram()?.as_slice::<f32>()?;
            if values.len() < count * classes {
                return Err(DetectorError::OutputShape {
                    got: values.len(),
                    rows: count,
                    width: classes,
                });
            }
            out.extend_from_slice(&values[..count * classes]);
        }
        Ok(())
    }
}

/// A checked graph bundle, ready to run.
#[derive(Debug)]
pub struct GraphBundle {
    pub manifest: Manifest,
    pub source: String,
    pub scorer: GraphScorer,
    pub signature: SignatureStatus,
}

impl GraphBundle {
    /// The compiled-in bundle; `names` are the pipeline's `graph-v1` column names.
    pub fn builtin(names: &[String], batch_size: usize) -> Result<GraphBundle, BundleError> {
        let mut b = GraphBundle::from_parts(
            BUILTIN_GRAPH_MANIFEST,
            BUILTIN_GRAPH_MODEL,
            "built-in graph-tgat bundle".into(),
            names,
            batch_size,
        )?;
        b.signature = SignatureStatus::Builtin;
        Ok(b)
    }

    pub fn load_dir(
        dir: &Path,
        names: &[String],
        batch_size: usize,
        trust: &Trust,
    ) -> Result<GraphBundle, BundleError> {
        let (manifest, _, model, signature) = read_dir(dir, trust)?;
        let mut b = GraphBundle::from_parts(
            &manifest,
            &model,
            dir.display().to_string(),
            names,
            batch_size,
        )?;
        b.signature = signature;
        Ok(b)
    }

    pub fn from_parts(
        manifest: &str,
        model: &[u8],
        source: String,
        names: &[String],
        batch_size: usize,
    ) -> Result<GraphBundle, BundleError> {
        let m: Manifest = serde_json::from_str(manifest)?;
        let classes = check_graph_manifest(&m, names)?;
        check_hash(&m, model)?;
        let mut scorer = GraphScorer::load(model, &m, classes, batch_size)?;
        check_graph_golden(&m, &mut scorer)?;
        Ok(GraphBundle {
            manifest: m,
            source,
            scorer,
            signature: SignatureStatus::NotChecked,
        })
    }
}

/// Every check of a graph bundle's manifest and model hash, without tract (the fuzz target's
/// entry): the pattern classes, or why the bundle is refused.
pub fn check_graph_manifest_text(
    manifest: &str,
    model: &[u8],
    names: &[String],
) -> Result<Vec<String>, BundleError> {
    let m: Manifest = serde_json::from_str(manifest)?;
    let classes = check_graph_manifest(&m, names)?;
    check_hash(&m, model)?;
    Ok(classes)
}

/// The manifest's pattern classes, once the bundle is known to be a `graph-v1` classifier.
fn check_graph_manifest(m: &Manifest, names: &[String]) -> Result<Vec<String>, BundleError> {
    let invalid = |s: String| Err(BundleError::Invalid(s));
    if m.format != 1 {
        return Err(BundleError::Format(m.format));
    }
    if m.kind != KIND_GRAPH {
        return Err(BundleError::Kind {
            got: m.kind.clone(),
            expected: KIND_GRAPH,
        });
    }
    if m.features.schema != GRAPH_SCHEMA || m.features.names != names {
        return invalid(format!(
            "feature schema mismatch: bundle has {:?} with {} columns, the gateway computes {GRAPH_SCHEMA} with {}",
            m.features.schema,
            m.features.names.len(),
            names.len()
        ));
    }
    if m.model.input_width != names.len() {
        return invalid(format!(
            "model.input_width is {}, schema has {}",
            m.model.input_width,
            names.len()
        ));
    }
    let classes = model_classes(m)?;
    if classes.len() < 2 || classes[0] != "benign" {
        return invalid(format!(
            "model.classes must start with \"benign\" and name at least one pattern, got {classes:?}"
        ));
    }
    let t = m.threshold.value;
    if !(t.is_finite() && t > 0.0 && t < 1.0) {
        return invalid(format!(
            "threshold.value {t} is not a probability in (0, 1)"
        ));
    }
    let g = &m.golden;
    if g.inputs.is_empty()
        || g.inputs.len() != g.outputs.len()
        || g.inputs.iter().any(|v| v.len() != names.len())
        || g.outputs.iter().any(|v| v.len() != classes.len())
        || !(g.tolerance.is_finite() && g.tolerance > 0.0 && g.tolerance <= 0.1)
    {
        return invalid(
            "golden: inputs of the schema's width, outputs of one value per class, tolerance in (0, 0.1]"
                .into(),
        );
    }
    Ok(classes)
}

fn model_classes(m: &Manifest) -> Result<Vec<String>, BundleError> {
    m.model
        .classes
        .clone()
        .ok_or_else(|| BundleError::Invalid("model.classes is missing".into()))
}

fn check_graph_golden(m: &Manifest, scorer: &mut GraphScorer) -> Result<(), BundleError> {
    let g = &m.golden;
    let rows: Vec<f32> = g.inputs.iter().flatten().copied().collect();
    let mut out = Vec::new();
    scorer.run(&rows, &mut out)?;
    let c = scorer.classes.len();
    for (i, (got, want)) in out.chunks(c).zip(&g.outputs).enumerate() {
        for (j, (&a, &b)) in got.iter().zip(want).enumerate() {
            let diff = (a - b).abs();
            if diff.is_nan() || diff > g.tolerance {
                return Err(BundleError::Golden {
                    index: i,
                    what: format!("probs[{j}]"),
                    diff,
                    tolerance: g.tolerance,
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pipeline's column names (the models layer may not import the pipeline; the test
    /// takes them from the bundle itself and checks their count).
    fn names() -> Vec<String> {
        let m: Manifest = serde_json::from_str(BUILTIN_GRAPH_MANIFEST).expect("manifest");
        assert_eq!(m.features.names.len(), 340);
        m.features.names
    }

    #[test]
    fn the_builtin_bundle_loads_and_its_golden_edges_reproduce_in_tract() {
        let mut b = GraphBundle::builtin(&names(), 64).expect("built-in graph bundle");
        assert_eq!(b.scorer.classes[0], "benign");
        let rows: Vec<f32> = b.manifest.golden.inputs.iter().flatten().copied().collect();
        let mut out = Vec::new();
        b.scorer.run(&rows, &mut out).expect("run");
        let c = b.scorer.classes.len();
        for p in out.chunks(c) {
            assert!(
                (p.iter().sum::<f32>() - 1.0).abs() < 1e-4,
                "probabilities sum to 1"
            );
        }
        // Batch independence: one row alone scores as it did in the batch.
        let mut one = Vec::new();
        b.scorer.run(&rows[..340], &mut one).expect("run");
        for (a, z) in one.iter().zip(&out[..c]) {
            assert!((a - z).abs() < 1e-5);
        }
    }

    #[test]
    fn a_bundle_of_other_columns_or_classes_is_refused() {
        let mut short = names();
        short.pop();
        let e = check_graph_manifest_text(BUILTIN_GRAPH_MANIFEST, BUILTIN_GRAPH_MODEL, &short);
        assert!(e.is_err());
        let renamed = BUILTIN_GRAPH_MANIFEST.replacen("\"benign\"", "\"normal\"", 1);
        let e = check_graph_manifest_text(&renamed, BUILTIN_GRAPH_MODEL, &names())
            .expect_err("classes must start with benign");
        assert!(e.to_string().contains("benign"), "{e}");
        let e = check_graph_manifest_text(BUILTIN_GRAPH_MANIFEST, b"not the model", &names())
            .expect_err("hash");
        assert!(e.to_string().contains("SHA-256"), "{e}");
    }
}
