//! Static int8 (QDQ) models in tract, as the gateway runs them: a row's output is exactly the
//! same alone and inside batches of 8 and 64 random other rows (the activation scales are
//! fixed in the graph), the int8 file stays close to its fp32 source on the shipped bundle's
//! golden vectors, and a flow bundle holding the int8 model passes the gateway's own loader
//! with golden outputs computed one row at a time. Fixtures: `tests/data/int8/` (made by
//! `python -m netwarden_models quantize --bundle ... --out`, see tests/data/README.md).
//! The timing test prints µs per row at batches 1, 8 and 64 (run with `--nocapture`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use netwarden::models::flow_scorer::row_of;
use netwarden::models::Bundle;
use netwarden_firmware::features::FLOW_WIDTH;
use netwarden_firmware::series::SERIES_WIDTH;
use sha2::{Digest, Sha256};
use tract_onnx::prelude::*;

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(p)
}

fn data(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/int8")
        .join(p)
}

type Plan = Arc<TypedRunnableModel>;

/// A plan as the gateway's scorers build it (`flow_scorer::plan`, `series_scorer::plan`).
fn plan(bytes: &[u8], shape: &[usize]) -> Plan {
    tract_onnx::onnx()
        .with_ignore_output_shapes(true)
        .with_ignore_value_info(true)
        .model_for_read(&mut &bytes[..])
        .expect("onnx parses")
        .with_input_fact(0, f32::fact(shape).into())
        .expect("input fact")
        .into_optimized()
        .expect("tract optimises the model")
        .into_runnable()
        .expect("runnable")
}

fn run(plan: &Plan, shape: &[usize], flat: &[f32]) -> Vec<f32> {
    let input = Tensor::from_shape(shape, flat).expect("input tensor");
    let out = plan.run(tvec!(input.into_tvalue())).expect("tract runs");
    out[0]
        .try_as_plain_ram()
        .expect("plain tensor")
        .as_slice::<f32>()
        .expect("f32 output")
        .to_vec()
}

/// Deterministic pseudo-random values in [0, 1.5): scaled rows, a little out of range too.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> f32 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 1.5
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() / 1.5 * n as f32) as usize % n
    }
}

/// Max abs difference between each probe row's output alone and inside batches of 8 and 64
/// (random other rows, or zeros), at a random position.
fn batch_dependence(bytes: &[u8], row_shape: &[usize]) -> f32 {
    let row: usize = row_shape.iter().product();
    let shape_of = |b: usize| [&[b][..], row_shape].concat();
    let one = plan(bytes, &shape_of(1));
    let mut rng = Lcg(42);
    let probes: Vec<Vec<f32>> = (0..6)
        .map(|_| (0..row).map(|_| rng.next()).collect())
        .collect();
    let alone: Vec<Vec<f32>> = probes.iter().map(|p| run(&one, &shape_of(1), p)).collect();
    let mut worst = 0.0f32;
    for b in [8usize, 64] {
        let pb = plan(bytes, &shape_of(b));
        for zeros in [false, true] {
            for (p, a) in probes.iter().zip(&alone) {
                let mut flat: Vec<f32> = (0..b * row)
                    .map(|_| if zeros { 0.0 } else { rng.next() })
                    .collect();
                let pos = rng.below(b);
                flat[pos * row..(pos + 1) * row].copy_from_slice(p);
                let y = run(&pb, &shape_of(b), &flat);
                let out_row = y.len() / b;
                assert_eq!(out_row, a.len(), "output width");
                for (u, v) in y[pos * out_row..(pos + 1) * out_row].iter().zip(a) {
                    worst = worst.max((u - v).abs());
                }
            }
        }
    }
    worst
}

#[test]
fn static_int8_outputs_do_not_depend_on_the_rest_of_the_batch() {
    let flow = std::fs::read(data("flow-ae-int8.onnx")).expect("flow int8 fixture");
    assert_eq!(batch_dependence(&flow, &[FLOW_WIDTH]), 0.0, "flow int8");
    let series = std::fs::read(data("series-ae-int8.onnx")).expect("series int8 fixture");
    assert_eq!(
        batch_dependence(&series, &[50, SERIES_WIDTH]),
        0.0,
        "series int8"
    );
}

#[test]
fn the_fixture_is_qdq_and_stays_close_to_its_fp32_source_on_the_golden_vectors() {
    let int8 = std::fs::read(data("flow-ae-int8.onnx")).expect("int8");
    let text = String::from_utf8_lossy(&int8);
    assert!(text.contains("QuantizeLinear") && text.contains("DequantizeLinear"));
    let fp32 = Bundle::load_dir(
        &repo("models/bundles/flow-ae"),
        64,
        &netwarden::models::Trust::none(),
    )
    .expect("shipped flow bundle");
    let g = &fp32.manifest.golden;
    let scaled: Vec<f32> = g
        .inputs
        .iter()
        .flat_map(|r| {
            // The scaler takes the widest row (flow-v2); a flow-v1 vector fills its start.
            fp32.detector.scaler().scale(&row_of(r))[..FLOW_WIDTH].to_vec()
        })
        .collect();
    let n = g.inputs.len();
    let y = run(&plan(&int8, &[n, FLOW_WIDTH]), &[n, FLOW_WIDTH], &scaled);
    let worst = y
        .iter()
        .zip(g.outputs.iter().flatten())
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    // int8 moves outputs by a few quantisation steps, not more (measured 0.03 here).
    assert!(
        worst > 0.0 && worst < 0.1,
        "int8 vs fp32 golden outputs: {worst}"
    );
}

#[test]
fn a_flow_bundle_with_the_int8_model_passes_the_gateways_loader() {
    // Golden outputs computed one row at a time (batch 1); the loader replays them in its
    // zero-padded batch of 16, so this passes only if the model is batch independent.
    let int8 = std::fs::read(data("flow-ae-int8.onnx")).expect("int8");
    let dir = repo("models/bundles/flow-ae");
    let mut m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).expect("manifest"))
            .expect("json");
    let fp32 = Bundle::load_dir(&dir, 64, &netwarden::models::Trust::none()).expect("fp32");
    let one = plan(&int8, &[1, FLOW_WIDTH]);
    let mut outputs = Vec::new();
    let mut errors = Vec::new();
    for r in &fp32.manifest.golden.inputs {
        let x = &fp32.detector.scaler().scale(&row_of(r))[..FLOW_WIDTH];
        let y = run(&one, &[1, FLOW_WIDTH], x);
        let e = x
            .iter()
            .zip(&y)
            .map(|(u, v)| (u - v) * (u - v))
            .sum::<f32>()
            / FLOW_WIDTH as f32;
        outputs.push(y);
        errors.push(e);
    }
    m["golden"]["outputs"] = serde_json::json!(outputs);
    m["golden"]["errors"] = serde_json::json!(errors);
    m["golden"]["tolerance"] = serde_json::json!(1e-6);
    m["model"]["precision"] = serde_json::json!("int8");
    m["model"]["sha256"] = serde_json::json!(Sha256::digest(&int8)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>());
    let b = Bundle::from_parts(&m.to_string(), &int8, "int8 test".into(), 64)
        .expect("the int8 bundle loads and reproduces golden outputs made at batch 1");
    assert_eq!(b.manifest.model.precision, "int8");
    // A wrong golden output is still refused.
    m["golden"]["outputs"][0][0] = serde_json::json!(outputs[0][0] + 1e-3);
    let err = Bundle::from_parts(&m.to_string(), &int8, "t".into(), 64).expect_err("refused");
    assert!(err.to_string().contains("golden vector 0"), "{err}");
}

#[test]
fn timing_fp32_and_int8_per_row() {
    // Prints, never asserts: a shared test machine's timing is not a test result.
    for (name, fp32, int8, row) in [
        (
            "flow",
            repo("models/bundles/flow-ae/model.onnx"),
            data("flow-ae-int8.onnx"),
            vec![FLOW_WIDTH],
        ),
        (
            "series",
            repo("models/bundles/series-ae/model.onnx"),
            data("series-ae-int8.onnx"),
            vec![50, SERIES_WIDTH],
        ),
    ] {
        let bytes = [
            std::fs::read(fp32).expect("fp32"),
            std::fs::read(int8).expect("int8"),
        ];
        let per_row: usize = row.iter().product();
        for b in [1usize, 8, 64] {
            let shape = [&[b][..], &row[..]].concat();
            let mut rng = Lcg(7);
            let x: Vec<f32> = (0..b * per_row).map(|_| rng.next()).collect();
            let plans: Vec<Plan> = bytes.iter().map(|m| plan(m, &shape)).collect();
            let iters = (2000 / b).clamp(20, 400);
            let mut us = [0.0f64; 2];
            for _round in 0..3 {
                for (k, p) in plans.iter().enumerate() {
                    let mut state = TypedSimpleState::new(p).expect("state");
                    let t = Instant::now();
                    for _ in 0..iters {
                        let input = Tensor::from_shape(&shape, &x).expect("tensor");
                        state.run(tvec!(input.into_tvalue())).expect("run");
                    }
                    let v = t.elapsed().as_secs_f64() * 1e6 / (iters * b) as f64;
                    us[k] = if us[k] == 0.0 { v } else { us[k].min(v) };
                }
            }
            println!(
                "int8-timing {name} batch {b:>2}: fp32 {:>8.2} us/row, int8 {:>8.2} us/row",
                us[0], us[1]
            );
        }
    }
}
