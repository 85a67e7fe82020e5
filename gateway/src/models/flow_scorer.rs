//! The dense autoencoder detector on `flow-v1` or `flow-v2` vectors, run by tract.
//!
//! Rows travel as [`FlowRow`]s, wide enough for `flow-v2`; a `flow-v1` model reads the first 8
//! values of each (the `flow-v1` part of a `flow-v2` row is exactly `flow-v1`).
//!
//! The model is loaded and optimised once, for two fixed batch shapes (a small one for a quiet
//! network, `batch_size` for bursts); a partial batch is zero-padded. The plans' states are kept
//! and reused across runs, so scoring allocates only the input tensor.

use std::sync::Arc;

use netwarden_firmware::features_v2::FLOW_V2_WIDTH;
use netwarden_firmware::Scaler;
use tract_onnx::prelude::*;

use crate::models::Manifest;

#[derive(Debug, thiserror::Error)]
pub enum DetectorError {
    // The message is tract's whole chain, so the error is not also a `source`.
    #[error("{0:#}")]
    Tract(TractError),
    #[error("model output has {got} values for {rows} rows of {width}")]
    OutputShape {
        got: usize,
        rows: usize,
        width: usize,
    },
}

impl From<TractError> for DetectorError {
    fn from(e: TractError) -> Self {
        DetectorError::Tract(e)
    }
}

type Plan = Arc<TypedRunnableModel>;

/// Values a pipeline row carries: the widest feature set's.
pub const ROW: usize = FLOW_V2_WIDTH;

/// One flow's raw or scaled values; a `flow-v1` model uses the first `FLOW_WIDTH` (8).
pub type FlowRow = [f32; ROW];

pub use crate::records::FlowSet;

/// A `flow-v1` vector as a row (the rest zero).
pub fn row_of(values: &[f32]) -> FlowRow {
    let mut r = [0.0; ROW];
    for (d, s) in r.iter_mut().zip(values) {
        *d = *s;
    }
    r
}

#[derive(Debug)]
struct Shaped {
    batch: usize,
    state: TypedSimpleState,
}

/// A loaded, optimised flow autoencoder.
#[derive(Debug)]
pub struct FlowAe {
    /// One plan per batch shape, smallest first: [`PLAN_BATCHES`] up to `batch_size`, and
    /// `batch_size` itself.
    plans: Vec<Shaped>,
    scaler: Scaler<ROW>,
    set: FlowSet,
    pub threshold: f32,
    pub high_ratio: f32,
    /// Reused input staging buffer.
    flat: Vec<f32>,
}

/// Batch shapes compiled besides `batch_size`. The daemon scores whatever one receive batch
/// gave (often one or a few datagrams, 20-30 records each), and a run costs about its shape's
/// rows whatever the real ones: with only 16 and 512, 30 records ran 512 rows, a 17x waste
/// that was most of the pipeline's cost per record under load (docs/performance.md). With
/// powers of two a partial batch pads less than 2x.
const PLAN_BATCHES: [usize; 6] = [16, 32, 64, 128, 256, 512];

/// The smaller of the two compiled batch shapes of the flow and graph scorers.
pub(super) const SMALL_BATCH: usize = 16;

/// A tract plan of a `[batch, width]`-input ONNX model (the flow and graph scorers).
pub(super) fn plan(bytes: &[u8], batch: usize, width: usize) -> TractResult<Plan> {
    tract_onnx::onnx()
        .with_ignore_output_shapes(true)
        .with_ignore_value_info(true)
        .model_for_read(&mut &bytes[..])?
        .with_input_fact(0, f32::fact([batch, width]).into())?
        .into_optimized()?
        .into_runnable()
}

impl FlowAe {
    pub fn load(
        bytes: &[u8],
        m: &Manifest,
        scaler: Scaler<ROW>,
        set: FlowSet,
        batch_size: usize,
    ) -> Result<FlowAe, DetectorError> {
        let large_batch = batch_size.max(SMALL_BATCH);
        let width = set.width();
        let mut batches: Vec<usize> = PLAN_BATCHES
            .iter()
            .copied()
            .filter(|&b| b < large_batch)
            .collect();
        batches.push(large_batch);
        let mut plans = Vec::with_capacity(batches.len());
        for batch in batches {
            let p = plan(bytes, batch, width)?;
            plans.push(Shaped {
                batch,
                state: TypedSimpleState::new(&p)?,
            });
        }
        Ok(FlowAe {
            plans,
            scaler,
            set,
            threshold: m.threshold.value,
            high_ratio: m.severity.high_ratio,
            flat: Vec::with_capacity(large_batch * width),
        })
    }

    pub fn scaler(&self) -> &Scaler<ROW> {
        &self.scaler
    }

    /// The feature set the model reads.
    pub fn set(&self) -> FlowSet {
        self.set
    }

    /// Values per row the model reads.
    pub fn width(&self) -> usize {
        self.set.width()
    }

    /// Rows per model run at most.
    pub fn batch_size(&self) -> usize {
        self.plans.last().map_or(SMALL_BATCH, |p| p.batch)
    }

    /// Keeps only the compiled shapes `keep` lists (the largest always stays): the pipeline
    /// bench runs the shapes of before issue 20 (16 and 512) beside today's with this.
    pub fn retain_batches(&mut self, keep: &[usize]) {
        let largest = self.batch_size();
        self.plans
            .retain(|p| p.batch == largest || keep.contains(&p.batch));
    }

    /// The compiled batch shapes, smallest first.
    pub fn batches(&self) -> Vec<usize> {
        self.plans.iter().map(|p| p.batch).collect()
    }

    /// The smallest plan that takes `rows` (the largest when none does; `load` makes at least
    /// one).
    fn plan_for(&self, rows: usize) -> usize {
        self.plans
            .iter()
            .position(|p| p.batch >= rows)
            .unwrap_or(self.plans.len() - 1)
    }

    /// Values per row the model outputs (run once on a batch of zeros): fleet verification
    /// refuses a model whose width is not its feature set's, which [`FlowAe::run_scaled`] alone
    /// would not notice when the model outputs more.
    pub fn output_width(&mut self) -> Result<usize, DetectorError> {
        let width = self.width();
        let shaped = &mut self.plans[0];
        let batch = shaped.batch;
        let input = Tensor::from_shape(&[batch, width], &vec![0.0f32; batch * width])?;
        let result = shaped.state.run(tvec!(input.into_tvalue()))?;
        let first = result.first().ok_or(DetectorError::OutputShape {
            got: 0,
            rows: batch,
            width,
        })?;
        Ok(first.len() / batch)
    }

    /// Scales raw rows and returns the model's outputs, [`FlowAe::width`] per row, row-major.
    pub fn reconstruct(&mut self, raw: &[FlowRow]) -> Result<Vec<f32>, DetectorError> {
        let scaled: Vec<FlowRow> = raw.iter().map(|r| self.scaler.scale(r)).collect();
        let mut out = Vec::with_capacity(raw.len() * self.width());
        self.run_scaled(&scaled, &mut out)?;
        Ok(out)
    }

    /// Runs already-scaled rows, appending outputs to `out`. Any number of rows.
    pub fn run_scaled(
        &mut self,
        scaled: &[FlowRow],
        out: &mut Vec<f32>,
    ) -> Result<(), DetectorError> {
        let large = self.batch_size();
        let width = self.width();
        for chunk in scaled.chunks(large) {
            let at = self.plan_for(chunk.len());
            let shaped = &mut self.plans[at];
            let batch = shaped.batch;
            self.flat.clear();
            self.flat.extend(chunk.iter().flat_map(|r| &r[..width]));
            self.flat.resize(batch * width, 0.0);
            let input = Tensor::from_shape(&[batch, width], &self.flat)?;
            let result = shaped.state.run(tvec!(input.into_tvalue()))?;
            let first = result.first().ok_or(DetectorError::OutputShape {
                got: 0,
                rows: chunk.len(),
                width,
            })?;
            let values = first.try_as_plain_ram()?.as_slice::<f32>()?;
            let need = chunk.len() * width;
            if values.len() < need {
                return Err(DetectorError::OutputShape {
                    got: values.len(),
                    rows: chunk.len(),
                    width,
                });
            }
            out.extend_from_slice(&values[..need]);
        }
        Ok(())
    }
}
