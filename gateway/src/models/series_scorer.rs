//! The series autoencoder on `series-v1` windows, run by tract: the shipped convolutional
//! one (`conv`) or any of the LSTM variants a bundle carries (docs/models.md).
//!
//! One window is `[1, 50, 8]`; an LSTM over it is 100 small sequential matrix products, so
//! per-run overhead dominates at batch 1 and batching windows of several interfaces into one
//! run is the main speed lever (see docs/performance.md). The model is therefore optimised once
//! at load for a few fixed batch sizes (concrete shapes let tract pick its kernels and fold
//! the shape arithmetic of the PyTorch export); a run takes the smallest plan that holds the
//! windows due, zero-padding the rest. Larger sets go in chunks of the plan that was fastest
//! per window when timed at load: that is model-dependent and not monotone in the batch size
//! (a seed-sized GRU gained nothing past batch 8 and in one run lost 1.5x at 32, while a small
//! LSTM kept gaining up to 32; docs/performance.md).
//!
//! A plan with a stateful op starts every run from a fresh tract state. tract's recurrent ops
//! (the `Scan` an ONNX LSTM becomes) carry their hidden state from one run of a `SimpleState`
//! to the next, for streaming; reusing the state as the flow detector does would start each
//! window where the previous window (of another interface, or another batch row layout) ended,
//! and the golden check fails by up to 0.4. The reset costs one state allocation per run (see
//! docs/performance.md). A plan with no stateful op (the convolutional or dense forms: every
//! `op_states` entry is `None`) has nothing to carry over, so it keeps one state and reuses
//! it, as the flow detector does.

use std::sync::Arc;

use netwarden_firmware::series::{SeriesRow, SERIES_WIDTH};
use netwarden_firmware::Scaler;
use tract_onnx::prelude::*;

#[derive(Debug, thiserror::Error)]
pub enum SeriesDetectorError {
    // The message is tract's whole chain, so the error is not also a `source`.
    #[error("{0:#}")]
    Tract(TractError),
    #[error("model output has {got} values for {windows} windows of {per} values")]
    OutputShape {
        got: usize,
        windows: usize,
        per: usize,
    },
    #[error("input has {got} values, not a whole number of {per}-value windows")]
    InputShape { got: usize, per: usize },
}

impl From<TractError> for SeriesDetectorError {
    fn from(e: TractError) -> Self {
        SeriesDetectorError::Tract(e)
    }
}

type Plan = Arc<TypedRunnableModel>;

#[derive(Debug)]
struct Shaped {
    batch: usize,
    plan: Plan,
    /// A state kept across runs, only for a plan without stateful ops.
    reusable: Option<TypedSimpleState>,
}

impl Shaped {
    fn new(batch: usize, plan: Plan) -> TractResult<Shaped> {
        let state = TypedSimpleState::new(&plan)?;
        let stateless = state.op_states.iter().all(Option::is_none);
        Ok(Shaped {
            batch,
            plan,
            reusable: stateless.then_some(state),
        })
    }

    fn run(&mut self, input: Tensor) -> TractResult<TVec<TValue>> {
        match &mut self.reusable {
            Some(state) => state.run(tvec!(input.into_tvalue())),
            // A fresh state per run: see the module docs (recurrent state carry-over).
            None => TypedSimpleState::new(&self.plan)?.run(tvec!(input.into_tvalue())),
        }
    }
}

/// Batch sizes optimised at load unless the caller asks for others.
pub const DEFAULT_BATCHES: [usize; 3] = [1, 8, 32];

/// A loaded, optimised series autoencoder.
#[derive(Debug)]
pub struct SeriesAe {
    /// Ascending batch sizes.
    plans: Vec<Shaped>,
    scaler: Scaler<SERIES_WIDTH>,
    window: usize,
    /// Windows per run when more are due than fit one run (index into `plans`).
    chunk_plan: usize,
    pub threshold: f32,
    pub high_ratio: f32,
    flat: Vec<f32>,
}

fn plan(bytes: &[u8], batch: usize, window: usize) -> TractResult<Plan> {
    tract_onnx::onnx()
        .with_ignore_output_shapes(true)
        .with_ignore_value_info(true)
        .model_for_read(&mut &bytes[..])?
        .with_input_fact(0, f32::fact([batch, window, SERIES_WIDTH]).into())?
        .into_optimized()?
        .into_runnable()
}

impl SeriesAe {
    /// Loads `bytes` (ONNX, input `[batch, window, 8]`) and optimises one plan per batch size.
    pub fn load(
        bytes: &[u8],
        window: usize,
        scaler: Scaler<SERIES_WIDTH>,
        threshold: f32,
        high_ratio: f32,
        batches: &[usize],
    ) -> Result<SeriesAe, SeriesDetectorError> {
        let mut sizes: Vec<usize> = batches.iter().copied().filter(|b| *b > 0).collect();
        if sizes.is_empty() {
            sizes.push(1);
        }
        sizes.sort_unstable();
        sizes.dedup();
        let mut plans = Vec::with_capacity(sizes.len());
        for batch in sizes {
            plans.push(Shaped::new(batch, plan(bytes, batch, window)?)?);
        }
        let largest = plans.last().map_or(1, |p| p.batch);
        let mut det = SeriesAe {
            plans,
            scaler,
            window,
            chunk_plan: 0,
            threshold,
            high_ratio,
            flat: Vec::with_capacity(largest * window * SERIES_WIDTH),
        };
        det.chunk_plan = det.fastest_plan()?;
        Ok(det)
    }

    /// The plan with the lowest time per window on a zero input (best of 3 runs each). Only
    /// steers chunking; results do not depend on it.
    fn fastest_plan(&mut self) -> Result<usize, SeriesDetectorError> {
        if self.plans.len() < 2 {
            return Ok(0);
        }
        let mut best = (0, f64::INFINITY);
        for (i, p) in self.plans.iter_mut().enumerate() {
            let input = Tensor::zero::<f32>(&[p.batch, self.window, SERIES_WIDTH])?;
            let mut fastest = f64::INFINITY;
            for _ in 0..3 {
                let started = std::time::Instant::now();
                p.run(input.clone())?;
                fastest = fastest.min(started.elapsed().as_secs_f64());
            }
            let per_window = fastest / p.batch as f64;
            if per_window < best.1 {
                best = (i, per_window);
            }
        }
        Ok(best.0)
    }

    /// Windows per run when many are due (the fastest plan per window, timed at load).
    pub fn chunk_size(&self) -> usize {
        self.plans.get(self.chunk_plan).map_or(1, |p| p.batch)
    }

    pub fn scaler(&self) -> &Scaler<SERIES_WIDTH> {
        &self.scaler
    }

    /// Steps per window.
    pub fn window(&self) -> usize {
        self.window
    }

    /// Values per window (`window * 8`).
    pub fn window_len(&self) -> usize {
        self.window * SERIES_WIDTH
    }

    /// Whether runs reuse one tract state (no stateful op in the model).
    pub fn reuses_state(&self) -> bool {
        self.plans.iter().all(|p| p.reusable.is_some())
    }

    /// The batch sizes there are plans for, ascending.
    pub fn batch_sizes(&self) -> Vec<usize> {
        self.plans.iter().map(|p| p.batch).collect()
    }

    /// Appends the scaled values of `rows` (one window, oldest first) to `out`.
    pub fn scale_rows<'a>(&self, rows: impl Iterator<Item = &'a SeriesRow>, out: &mut Vec<f32>) {
        for r in rows {
            out.extend_from_slice(&self.scaler.scale(r));
        }
    }

    /// Runs already-scaled windows (`n * window_len()` values, row-major), appending the
    /// reconstructions (same layout) to `out`.
    pub fn run_scaled(
        &mut self,
        scaled: &[f32],
        out: &mut Vec<f32>,
    ) -> Result<(), SeriesDetectorError> {
        let per = self.window_len();
        if !scaled.len().is_multiple_of(per) {
            return Err(SeriesDetectorError::InputShape {
                got: scaled.len(),
                per,
            });
        }
        let chunk_windows = self.chunk_size();
        for chunk in scaled.chunks(chunk_windows * per) {
            let windows = chunk.len() / per;
            let Some(shaped) = self.plans.iter_mut().find(|p| p.batch >= windows) else {
                // Unreachable: chunks are at most one plan's size.
                return Err(SeriesDetectorError::InputShape {
                    got: chunk.len(),
                    per,
                });
            };
            let batch = shaped.batch;
            let input = if windows == batch {
                Tensor::from_shape(&[batch, self.window, SERIES_WIDTH], chunk)?
            } else {
                self.flat.clear();
                self.flat.extend_from_slice(chunk);
                self.flat.resize(batch * per, 0.0);
                Tensor::from_shape(&[batch, self.window, SERIES_WIDTH], &self.flat)?
            };
            let result = shaped.run(input)?;
            let shape_err = |got| SeriesDetectorError::OutputShape { got, windows, per };
            let first = result.first().ok_or(shape_err(0))?;
            let values = first.try_as_plain_ram()?.as_slice::<f32>()?;
            if values.len() < chunk.len() {
                return Err(shape_err(values.len()));
            }
            out.extend_from_slice(&values[..chunk.len()]);
        }
        Ok(())
    }

    /// Scales raw windows (`n * window_len()` values) and reconstructs them.
    pub fn reconstruct_raw(&mut self, raw: &[f32]) -> Result<Vec<f32>, SeriesDetectorError> {
        let mut scaled = Vec::with_capacity(raw.len());
        for row in raw.chunks_exact(SERIES_WIDTH) {
            let mut r = [0.0f32; SERIES_WIDTH];
            r.copy_from_slice(row);
            scaled.extend_from_slice(&self.scaler.scale(&r));
        }
        let mut out = Vec::with_capacity(raw.len());
        self.run_scaled(&scaled, &mut out)?;
        Ok(out)
    }
}
