//! The series detector calibrates itself in a learning period (issue 18): on the normal rates
//! fixture it learns a day of poll time, then judges the rest with the fitted threshold; the
//! 40x surge of `tests/series.rs` on day 3 is still a high alert on its interface.

use std::path::{Path, PathBuf};
use std::time::Duration;

use netwarden::cli::series::read_rates_file;
use netwarden::models::{SeriesBundle, Trust};
use netwarden::pipeline::learning::{Learner, LearningConfig};
use netwarden::pipeline::series::{SeriesOptions, SeriesPipeline};
use netwarden::records::{Alert, RateSample};

fn data(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(p)
}

fn learning_pipeline() -> SeriesPipeline {
    let bundle = SeriesBundle::load_dir(&data("series-tiny"), &[1, 8], &Trust::none())
        .expect("tiny series bundle loads");
    let shipped = bundle.manifest.threshold.value;
    let cfg = LearningConfig {
        min_samples: 100,
        ..LearningConfig::with_period(Duration::from_secs(86_400))
    };
    SeriesPipeline::new(bundle, "s", "d", SeriesOptions::default())
        .with_clock(|| 1_795_000_000_000)
        .with_learning(Learner::new("series_ae", cfg, shipped))
}

fn replay(p: &mut SeriesPipeline, samples: &[RateSample]) -> Vec<Alert> {
    samples
        .chunk_by(|a, b| a.ts_ms == b.ts_ms)
        .flat_map(|g| p.ingest_many(g))
        .collect()
}

#[test]
fn the_series_detector_learns_its_threshold_and_still_sees_a_surge() {
    let samples = read_rates_file(&data("series/rates-normal.csv")).expect("rates");
    let mut p = learning_pipeline();
    let quiet = replay(&mut p, &samples);
    let l = p.learning().expect("learner").status().clone();
    let fitted = l.fitted.clone().expect("a day of polls is over");
    assert!(p.take_learning_changed());
    assert!(fitted.samples >= 100, "{l:?}");
    assert!(fitted.threshold > 0.0);
    assert_eq!(p.detector().threshold, fitted.threshold);
    // After the day of learning, normal traffic raises (almost) nothing.
    let after: Vec<&Alert> = quiet
        .iter()
        .filter(|a| {
            a.subject
                .interface()
                .is_some_and(|i| i.window_last_ms > fitted.at_ms)
        })
        .collect();
    assert!(
        after.len() <= 2,
        "{} alerts after learning: {after:#?}",
        after.len()
    );

    let start = samples[1200].ts_ms;
    assert!(
        start > fitted.at_ms,
        "the surge comes after the learning period"
    );
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
    let mut p = learning_pipeline();
    let alerts = replay(&mut p, &surged);
    let high = alerts
        .iter()
        .find(|a| a.severity == "high" && a.subject.interface().is_some_and(|i| i.if_index == 2))
        .unwrap_or_else(|| panic!("no high alert on ge-0/0/1: {alerts:#?}"));
    assert!(high.subject.interface().expect("iface").window_last_ms >= start);
}
