//! The interface-series path end to end, in process: rates CSV -> `series-v1` rows (checked
//! against an independent Python computation) -> tiny LSTM bundle in tract -> interface alerts,
//! batched and unbatched, and threshold calibration. Fixtures: `tests/data/series/` and
//! `tests/data/series-tiny/` (see tests/data/README.md).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use netwarden::cli::series::{
    calibrate, read_rates_file, window_errors, write_calibrated, write_features,
};
use netwarden::models::{Bundle, BundleError, SeriesBundle, Trust};
use netwarden::pipeline::series::{SeriesOptions, SeriesPipeline};
use netwarden::records::Alert;
use netwarden::records::RateSample;
use netwarden_firmware::SeriesParams;

fn data(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(p)
}

fn tiny(batches: &[usize]) -> SeriesBundle {
    SeriesBundle::load_dir(&data("series-tiny"), batches, &Trust::none())
        .expect("tiny series bundle loads")
}

fn normal() -> Vec<RateSample> {
    read_rates_file(&data("series/rates-normal.csv")).expect("rates fixture")
}

fn clock() -> u64 {
    1_795_000_000_000
}

fn pipeline(batches: &[usize]) -> SeriesPipeline {
    SeriesPipeline::new(tiny(batches), "s", "d", SeriesOptions::default()).with_clock(clock)
}

/// Feeds samples grouped by poll time, as a poller hands them over.
fn replay_grouped(p: &mut SeriesPipeline, samples: &[RateSample]) -> Vec<Alert> {
    let mut alerts = Vec::new();
    for group in samples.chunk_by(|a, b| a.ts_ms == b.ts_ms) {
        alerts.extend(p.ingest_many(group));
    }
    alerts
}

#[test]
fn bundle_kinds_are_kept_apart_and_checked() {
    // series-tiny's manifest says the kind's old name, `series_lstm`: it loads as `series_ae`.
    let b = tiny(&[1, 4]);
    assert_eq!(b.manifest.kind, "series_ae");
    assert_eq!(b.detector.batch_sizes(), [1, 4]);
    let err =
        Bundle::load_dir(&data("series-tiny"), 8, &Trust::none()).expect_err("flow loader refuses");
    assert!(
        matches!(err, BundleError::Kind { .. }) && err.to_string().contains("flow_ae"),
        "{err}"
    );
    let err = SeriesBundle::from_parts(
        netwarden::models::bundle::BUILTIN_MANIFEST,
        netwarden::models::bundle::BUILTIN_MODEL,
        "builtin".into(),
        &[1],
    )
    .expect_err("series loader refuses a flow bundle");
    assert!(err.to_string().contains("model.window"), "{err}");

    let manifest = std::fs::read_to_string(data("series-tiny/manifest.json")).expect("manifest");
    let model = std::fs::read(data("series-tiny/model.onnx")).expect("model");
    let mut m: serde_json::Value = serde_json::from_str(&manifest).expect("json");
    let v = m["golden"]["outputs"][1][17].as_f64().expect("number");
    m["golden"]["outputs"][1][17] = serde_json::json!(v + 0.01);
    let err =
        SeriesBundle::from_parts(&m.to_string(), &model, "t".into(), &[1]).expect_err("golden");
    assert!(
        err.to_string()
            .contains("golden vector 1 does not reproduce: output[step 2][out_bps]"),
        "{err}"
    );
    let mut m: serde_json::Value = serde_json::from_str(&manifest).expect("json");
    m["model"]["window"] = serde_json::json!(30);
    let err =
        SeriesBundle::from_parts(&m.to_string(), &model, "t".into(), &[1]).expect_err("window");
    assert!(err.to_string().contains("windows of 50 steps"), "{err}");
    let mut m: serde_json::Value = serde_json::from_str(&manifest).expect("json");
    m["features"]["names"][2] = serde_json::json!("hour_of_day");
    let err =
        SeriesBundle::from_parts(&m.to_string(), &model, "t".into(), &[1]).expect_err("schema");
    assert!(err.to_string().contains("series-v1"), "{err}");
}

/// The Rust rows equal rows computed independently in Python (numpy) from the same rates,
/// with the same rules for unknown steps and restarts: the train/serve contract.
#[test]
fn series_features_match_the_python_reference() {
    let samples = normal();
    let mut out = Vec::new();
    let summary = write_features(&samples, &SeriesParams::DEFAULT, &mut out, Path::new("mem"))
        .expect("features");
    assert_eq!(summary.interfaces, 2);
    assert_eq!(summary.unknown_steps, 4);
    assert_eq!(summary.restarts, 1);
    let parse = |text: &str| -> HashMap<(String, String, String), Vec<f64>> {
        let mut lines = text.lines();
        let header = lines.next().expect("header");
        assert_eq!(
            header,
            "ts_ms,target,if_index,if_name,segment,in_bps,out_bps,hour,day_of_week,in_bps_ma,out_bps_ma,in_bps_std,out_bps_std"
        );
        lines
            .map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                let nums = f[4..]
                    .iter()
                    .map(|x| x.parse::<f64>().expect("number"))
                    .collect();
                ((f[0].into(), f[1].into(), f[2].into()), nums)
            })
            .collect()
    };
    let ours = parse(&String::from_utf8(out).expect("utf8"));
    let reference =
        parse(&std::fs::read_to_string(data("series/features-normal.csv")).expect("reference"));
    assert_eq!(ours.len(), reference.len());
    assert_eq!(ours.len() as u64, summary.rows);
    for (k, want) in &reference {
        let got = ours.get(k).unwrap_or_else(|| panic!("no row for {k:?}"));
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            let tol = 1e-6 * w.abs().max(1.0);
            assert!((g - w).abs() <= tol, "{k:?} column {i}: {g} vs {w}");
        }
    }
}

#[test]
fn normal_traffic_stays_quiet_and_a_surge_alerts_on_its_interface() {
    let samples = normal();
    let mut p = pipeline(&[1, 8]);
    let quiet = replay_grouped(&mut p, &samples);
    let c = p.counters();
    // Same windows the threshold was chosen on (95th percentile): about 5% exceed it.
    assert_eq!(c.series_windows_scored, 1562);
    assert!(
        c.series_windows_anomalous * 100 <= c.series_windows_scored * 7,
        "{c:?}"
    );
    assert_eq!(
        c.series_alerts_raised + c.series_alerts_suppressed_dedupe,
        c.series_windows_anomalous
    );
    assert!(quiet.iter().all(|a| a.severity == "medium"), "{quiet:#?}");
    assert_eq!(c.series_inference_errors, 0);

    // ge-0/0/1 suddenly receives 40x its usual traffic for 6 polls (an exfiltration-sized
    // download), on day 3 after its windows are warm.
    let start = samples[1200].ts_ms;
    let surged: Vec<RateSample> = samples
        .iter()
        .map(|s| {
            let mut s = s.clone();
            if s.if_index == 2 && s.ts_ms >= start && s.ts_ms < start + 6 * 300_000 {
                s.in_bps = s.in_bps.map(|v| v * 40.0);
            }
            s
        })
        .collect();
    let mut p = pipeline(&[1, 8]);
    let alerts = replay_grouped(&mut p, &surged);
    let first = alerts
        .iter()
        .find(|a| a.severity == "high")
        .unwrap_or_else(|| panic!("no high alert: {alerts:#?}"));
    let subject = first.subject.interface().expect("interface subject");
    assert_eq!(
        (
            subject.target.as_str(),
            subject.if_index,
            subject.if_name.as_str()
        ),
        ("r1", 2, "ge-0/0/1")
    );
    // The tiny fixture model spreads a surge's error over every feature (its top feature
    // here is `hour`), so only the robust part of the explanation is asserted: not "out".
    assert!(
        ["in", "both"].contains(&subject.direction.as_str()),
        "{first:#?}"
    );
    assert!(subject.window_last_ms >= start && subject.window_last_ms < start + 6 * 300_000);
    assert_eq!(
        subject.window_last_ms - subject.window_first_ms,
        49 * 300_000
    );
    assert_eq!(first.top_features.len(), 3);
    assert!(first.score > 2.0 * first.threshold);
    assert_eq!(first.detector, "series_ae");
    assert!(
        first.summary.starts_with("high r1 ge-0/0/1 (ifIndex 2) "),
        "{}",
        first.summary
    );
    let json = serde_json::to_value(first).expect("json");
    assert_eq!(json["subject"]["kind"], "interface");
    assert_eq!(json["subject"]["if_index"], 2);
    // The surge stays in view for 50 sliding windows; de-duplication (30 min) folds most.
    let c = p.counters();
    let on_iface2 = alerts
        .iter()
        .filter_map(|a| a.subject.interface())
        .filter(|i| i.if_index == 2)
        .filter(|i| i.window_last_ms >= start && i.window_last_ms < start + 50 * 300_000)
        .count();
    // 250 minutes in view / 30 minute de-duplication, plus medium -> high escalations.
    assert!(on_iface2 <= 12, "{on_iface2} alerts: {alerts:#?}");
    assert!(c.series_alerts_suppressed_dedupe > 0, "{c:?}");
    println!(
        "surge alert: {}",
        serde_json::to_string_pretty(first).expect("json")
    );
}

#[test]
fn batched_scoring_equals_one_window_at_a_time() {
    let samples = &normal()[..600];
    let mut single = pipeline(&[1]);
    let mut one_by_one = Vec::new();
    for s in samples {
        one_by_one.extend(single.ingest(s));
    }
    let mut batched = pipeline(&[1, 8, 32]);
    let grouped = replay_grouped(&mut batched, samples);
    let (a, b) = (single.counters(), batched.counters());
    assert_eq!(a.series_windows_scored, b.series_windows_scored);
    assert_eq!(a.series_windows_anomalous, b.series_windows_anomalous);
    assert!(
        b.series_inference_runs < a.series_inference_runs,
        "{a:?} {b:?}"
    );
    assert_eq!(one_by_one.len(), grouped.len());
    for (x, y) in one_by_one.iter().zip(&grouped) {
        assert_eq!(x.subject, y.subject);
        assert!(
            (x.score - y.score).abs() < 1e-5,
            "{} vs {}",
            x.score,
            y.score
        );
    }
}

/// Calibrating on the training traffic must give back the training threshold (the Python
/// trainer took numpy's 95th percentile over the same windows), and the written bundle loads.
#[test]
fn calibration_reproduces_the_training_quantile_and_writes_a_loadable_bundle() {
    let samples = normal();
    let mut b = tiny(&[32]);
    let trained = b.manifest.threshold.value as f64;
    let errors = window_errors(&mut b, &samples, &SeriesParams::DEFAULT).expect("errors");
    assert_eq!(errors.len(), 1562);
    let cal = calibrate(
        &mut b,
        &samples,
        &SeriesParams::DEFAULT,
        0.95,
        "rates-normal.csv".into(),
    )
    .expect("calibrate");
    assert_eq!(cal.n, 1562);
    assert!(
        (cal.threshold - trained).abs() < 1e-5,
        "{} vs {trained}",
        cal.threshold
    );
    let q99 =
        calibrate(&mut b, &samples, &SeriesParams::DEFAULT, 0.99, "x".into()).expect("calibrate");
    assert!(q99.threshold > cal.threshold);
    assert!(calibrate(
        &mut b,
        &samples[..200],
        &SeriesParams::DEFAULT,
        0.95,
        "x".into()
    )
    .expect_err("too few")
    .to_string()
    .contains("complete windows"));

    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("calibrated");
    write_calibrated(&data("series-tiny"), &out, &q99, 1_795_000_000_000).expect("write");
    let again =
        SeriesBundle::load_dir(&out, &[1], &Trust::none()).expect("calibrated bundle loads");
    let t = &again.manifest.threshold;
    assert!((t.value as f64 - q99.threshold).abs() < 1e-9);
    assert_eq!(t.method, "device_error_quantile");
    assert_eq!((t.quantile, t.n), (Some(0.99), Some(1562)));
    assert_eq!(t.source.as_deref(), Some("x"));
    assert!(write_calibrated(&data("series-tiny"), &out, &q99, 0).is_err());

    // The same through the CLI.
    let cli_out = dir.path().join("cli");
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_netwarden"))
        .args(["calibrate", "--series-model"])
        .arg(data("series-tiny"))
        .arg("--rates")
        .arg(data("series/rates-normal.csv"))
        .args(["--quantile", "0.9", "--out"])
        .arg(&cli_out)
        .output()
        .expect("run netwarden");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(stdout.contains("quantile 0.9 of 1562 windows"), "{stdout}");
    SeriesBundle::load_dir(&cli_out, &[1], &Trust::none()).expect("CLI-calibrated bundle loads");
}

#[test]
fn interfaces_beyond_capacity_evict_the_stalest() {
    let options = SeriesOptions {
        max_interfaces: 2,
        dedupe: Duration::from_secs(60),
        ..SeriesOptions::default()
    };
    let mut p = SeriesPipeline::new(tiny(&[1]), "s", "d", options).with_clock(clock);
    let sample = |if_index: u32, ts_ms: u64| RateSample {
        target: "r1".into(),
        if_index,
        if_name: format!("if{if_index}"),
        ts_ms,
        step_ms: 300_000,
        in_bps: Some(1e6),
        out_bps: Some(1e6),
    };
    p.ingest(&sample(1, 1_000));
    p.ingest(&sample(2, 2_000));
    p.ingest(&sample(3, 3_000));
    assert_eq!(p.interfaces(), 2);
    assert_eq!(p.counters().series_interface_evictions, 1);
    assert_eq!(p.counters().series_samples, 3);
}

/// A bundle's golden inputs (raw) and outputs, flattened.
fn golden_flat(b: &SeriesBundle) -> (Vec<f32>, Vec<f32>) {
    let g = &b.manifest.golden;
    let flat = |v: &Vec<Vec<f32>>| v.iter().flatten().copied().collect::<Vec<f32>>();
    (flat(&g.inputs), flat(&g.outputs))
}

fn worst_difference(got: &[f32], want: &[f32]) -> f32 {
    assert_eq!(got.len(), want.len());
    got.iter()
        .zip(want)
        .map(|(a, w)| (a - w).abs())
        .fold(0.0f32, f32::max)
}

/// Regression: tract's LSTM scan carries its hidden state from one run of a reused state to
/// the next, so the second window scored started where the first ended (errors up to 0.45).
#[test]
fn recurrent_state_does_not_leak_between_runs() {
    let mut b = tiny(&[1]);
    assert!(
        !b.detector.reuses_state(),
        "an LSTM plan has stateful ops: each run needs a fresh state"
    );
    let (raw, want) = golden_flat(&b);
    for _ in 0..2 {
        let out = b.detector.reconstruct_raw(&raw).expect("run");
        let worst = worst_difference(&out, &want);
        assert!(worst < 1e-4, "worst difference {worst}");
    }
}

/// A convolutional form has no stateful op: its plans keep one tract state and reuse it, and
/// repeated runs (at batch 1 and padded into batch 8) still give onnxruntime's outputs.
#[test]
fn stateless_plans_reuse_their_state_and_stay_exact() {
    let mut b = SeriesBundle::load_dir(&data("series-conv"), &[1, 8], &Trust::none())
        .expect("conv series fixture loads (golden checked at load)");
    assert!(b.detector.reuses_state());
    let (raw, want) = golden_flat(&b);
    let per = b.detector.window_len();
    for round in 0..3 {
        let out = b.detector.reconstruct_raw(&raw).expect("run");
        let worst = worst_difference(&out, &want);
        assert!(worst < 1e-4, "round {round}: worst difference {worst}");
        // One window at a time goes through the batch-1 plan's reused state.
        for (i, w) in raw.chunks(per).enumerate() {
            let one = b.detector.reconstruct_raw(w).expect("run one");
            let worst = worst_difference(&one, &want[i * per..(i + 1) * per]);
            assert!(worst < 1e-4, "round {round}, window {i}: {worst}");
        }
    }
}

#[test]
fn run_config_loads_the_series_model_and_feeds_global_counters() {
    let toml = format!(
        "[detector]\nseries_model = {:?}\nseries_utc_offset_secs = 3600\nseries_dedupe_window_secs = 600\n",
        data("series-tiny").display().to_string()
    );
    let raw: netwarden::config::RawConfig = toml::from_str(&toml).expect("toml");
    let cfg = raw.validate().expect("valid");
    assert_eq!(cfg.detector.series_utc_offset_secs, 3600);
    assert_eq!(cfg.detector.series_dedupe, Duration::from_secs(600));
    let metrics = std::sync::Arc::new(netwarden::metrics::Metrics::default());
    let mut p = netwarden::runtime::series::series_pipeline(&cfg, metrics.clone()).expect("loads");
    replay_grouped(&mut p, &normal()[..400]);
    let s = metrics.snapshot();
    assert_eq!(s.series_windows_scored, p.counters().series_windows_scored);
    assert!(s.series_windows_scored > 0 && s.series_inference_runs > 0);

    let bad: netwarden::config::RawConfig = toml::from_str(
        "[detector]\nseries_model = \"/nonexistent\"\nseries_utc_offset_secs = 90000\n",
    )
    .expect("toml");
    let problems = bad.validate().expect_err("invalid");
    let keys: Vec<_> = problems.iter().map(|p| p.key.as_str()).collect();
    assert!(
        keys.contains(&"detector.series_model")
            && keys.contains(&"detector.series_utc_offset_secs"),
        "{keys:?}"
    );
    let none = netwarden::config::RawConfig::default()
        .validate()
        .expect("defaults");
    // No series_model: the built-in bundle.
    let builtin = netwarden::runtime::series::series_pipeline(&none, metrics).expect("built in");
    assert_eq!(builtin.detector().window(), 50);
}

#[test]
fn warm_history_makes_the_next_live_step_scored() {
    let b = tiny(&[1, 8]);
    let mut p = SeriesPipeline::new(b, "s", "d", SeriesOptions::default());
    let all = normal();
    let first = (&all[0].target, all[0].if_index);
    let rows: Vec<RateSample> = all
        .iter()
        .filter(|s| (&s.target, s.if_index) == first)
        .cloned()
        .collect();
    // 55 steps fill the window (6 rolling + 50 rows, the first row with the 6th step).
    let (history, live) = rows.split_at(60);
    assert!(p.warm(history) >= 1, "a full window after warming");
    assert_eq!(
        p.counters().series_windows_scored,
        0,
        "history is not scored"
    );
    let _ = p.ingest(&live[0]);
    assert_eq!(p.counters().series_windows_scored, 1);
}

/// Configs written before issue 14 name a bundle directory whose manifest says the old kind
/// `series_lstm` (and often a directory called `series-lstm`): the daemon still loads it.
#[test]
fn a_config_naming_an_old_series_lstm_bundle_still_loads_it() {
    let tmp = tempfile::tempdir().expect("tmp");
    let old_dir = tmp.path().join("series-lstm");
    std::fs::create_dir(&old_dir).expect("mkdir");
    for f in ["manifest.json", "model.onnx"] {
        std::fs::copy(data("series-tiny").join(f), old_dir.join(f)).expect("copy");
    }
    let manifest = std::fs::read_to_string(old_dir.join("manifest.json")).expect("read");
    assert!(
        manifest.contains(r#""kind": "series_lstm""#),
        "fixture keeps the old kind"
    );
    let file = tmp.path().join("netwarden.toml");
    let toml = format!(
        "[detector]\nseries_model = {:?}\n",
        old_dir.display().to_string()
    );
    std::fs::write(&file, toml).expect("write config");
    let cfg = netwarden::config::RawConfig::from_file(&file)
        .expect("parses")
        .validate()
        .expect("valid");
    let b = netwarden::runtime::series::model_sources(&cfg)
        .load_series()
        .expect("the old-kind bundle loads");
    assert_eq!(b.manifest.kind, "series_ae");
    assert_eq!(b.manifest.name, "series-tiny");
}

/// `netwarden model check` takes the shipped bundle (kind `series_ae`) and one made before the
/// rename (kind `series_lstm`), and reports both as `series_ae`.
#[test]
fn model_check_accepts_the_series_kind_and_its_old_name() {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/bundles/series-ae");
    for dir in [shipped, data("series-tiny")] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_netwarden"))
            .args(["model", "check"])
            .arg(&dir)
            .output()
            .expect("run netwarden");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}: {stdout}{}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("series_ae"), "{}: {stdout}", dir.display());
        assert!(
            !stdout.contains("series_lstm"),
            "{}: {stdout}",
            dir.display()
        );
    }
}
