//! The dense autoencoder detector on `flow-v1` vectors, run by tract.
//!
//! The model is loaded and optimised once, for two fixed batch shapes (a small one for a quiet
//! network, `batch_size` for bursts); a partial batch is zero-padded. The plans' states are kept
//! and reused across runs, so scoring allocates only the input tensor.

use std::sync::Arc;

use netwarden_firmware::features::FLOW_WIDTH;
use netwarden_firmware::Scaler;
use tract_onnx::prelude::*;

use crate::models::Manifest;

#[derive(Debug, thiserror::Error)]
pub enum DetectorError {
    // The message is tract's whole chain, so the error is not also a `source`.
    #[error("{0:#}")]
    Tract(TractError),
    #[error("model output has {got} values for {rows} rows of {FLOW_WIDTH}")]
    OutputShape { got: usize, rows: usize },
}

impl From<TractError> for DetectorError {
    fn from(e: TractError) -> Self {
        DetectorError::Tract(e)
    }
}

type Plan = Arc<TypedRunnableModel>;

#[derive(Debug)]
struct Shaped {
    batch: usize,
    state: TypedSimpleState,
}

/// A loaded, optimised flow autoencoder.
#[derive(Debug)]
pub struct FlowAe {
    small: Shaped,
    large: Shaped,
    scaler: Scaler<FLOW_WIDTH>,
    pub threshold: f32,
    pub high_ratio: f32,
    /// Reused input staging buffer.
    flat: Vec<f32>,
}

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
        scaler: Scaler<FLOW_WIDTH>,
        batch_size: usize,
    ) -> Result<FlowAe, DetectorError> {
        let large_batch = batch_size.max(SMALL_BATCH);
        let small = plan(bytes, SMALL_BATCH, FLOW_WIDTH)?;
        let large = if large_batch == SMALL_BATCH {
            small.clone()
        } else {
            plan(bytes, large_batch, FLOW_WIDTH)?
        };
        Ok(FlowAe {
            small: Shaped {
                batch: SMALL_BATCH,
                state: TypedSimpleState::new(&small)?,
            },
            large: Shaped {
                batch: large_batch,
                state: TypedSimpleState::new(&large)?,
            },
            scaler,
            threshold: m.threshold.value,
            high_ratio: m.severity.high_ratio,
            flat: Vec::with_capacity(large_batch * FLOW_WIDTH),
        })
    }

    pub fn scaler(&self) -> &Scaler<FLOW_WIDTH> {
        &self.scaler
    }

    /// Rows per model run at most.
    pub fn batch_size(&self) -> usize {
        self.large.batch
    }

    /// Values per row the model outputs (run once on a batch of zeros): fleet verification
    /// refuses a model whose width is not `FLOW_WIDTH`, which [`FlowAe::run_scaled`] alone
    /// would not notice when the model outputs more.
    pub fn output_width(&mut self) -> Result<usize, DetectorError> {
        let batch = self.small.batch;
        let input = Tensor::from_shape(&[batch, FLOW_WIDTH], &vec![0.0f32; batch * FLOW_WIDTH])?;
        let result = self.small.state.run(tvec!(input.into_tvalue()))?;
        let first = result.first().ok_or(DetectorError::OutputShape {
            got: 0,
            rows: batch,
        })?;
        Ok(first.len() / batch)
    }

    /// Scales raw vectors and returns the model's outputs, `FLOW_WIDTH` per row, row-major.
    pub fn reconstruct(&mut self, raw: &[[f32; FLOW_WIDTH]]) -> Result<Vec<f32>, DetectorError> {
        let scaled: Vec<[f32; FLOW_WIDTH]> = raw.iter().map(|r| self.scaler.scale(r)).collect();
        let mut out = Vec::with_capacity(raw.len() * FLOW_WIDTH);
        self.run_scaled(&scaled, &mut out)?;
        Ok(out)
    }

    /// Runs already-scaled rows, appending outputs to `out`. Any number of rows.
    pub fn run_scaled(
        &mut self,
        scaled: &[[f32; FLOW_WIDTH]],
        out: &mut Vec<f32>,
    ) -> Result<(), DetectorError> {
        let large = self.large.batch;
        for chunk in scaled.chunks(large) {
            let shaped = if chunk.len() <= SMALL_BATCH {
                &mut self.small
            } else {
                &mut self.large
            };
            let batch = shaped.batch;
            self.flat.clear();
            self.flat.extend(chunk.iter().flatten());
            self.flat.resize(batch * FLOW_WIDTH, 0.0);
            let input = Tensor::from_shape(&[batch, FLOW_WIDTH], &self.flat)?;
            let result = shaped.state.run(tvec!(input.into_tvalue()))?;
            let first = result.first().ok_or(DetectorError::OutputShape {
                got: 0,
                rows: chunk.len(),
            })?;
            let values = first.try_as_plain_ram()?.as_slice::<f32>()?;
            let need = chunk.len() * FLOW_WIDTH;
            if values.len() < need {
                return Err(DetectorError::OutputShape {
                    got: values.len(),
                    rows: chunk.len(),
                });
            }
            out.extend_from_slice(&values[..need]);
        }
        Ok(())
    }
}
