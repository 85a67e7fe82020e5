//! The Rust half of the Rust/Python golden feature test: the gateway's feature export of the
//! committed inputs must equal the committed golden files byte for byte. The Python half
//! (models/tests/test_golden_features.py) checks that its loaders read those same files value
//! by value, so training sees exactly what the gateway computes. After an intended feature
//! change, regenerate both with `python -m netwarden_models golden` and say so in the commit.

use std::path::{Path, PathBuf};

use netwarden::cli::{features, series};
use netwarden_firmware::SeriesParams;

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)
}

fn first_difference(got: &str, want: &str) -> String {
    for (n, (g, w)) in got.lines().zip(want.lines()).enumerate() {
        if g != w {
            return format!("line {}:\n  gateway: {g}\n  golden:  {w}", n + 1);
        }
    }
    format!(
        "{} lines from the gateway, {} in the golden file",
        got.lines().count(),
        want.lines().count()
    )
}

fn check(got: Vec<u8>, golden: &str) {
    let got = String::from_utf8(got).expect("utf-8");
    let want = std::fs::read_to_string(repo(golden)).expect("golden file");
    assert!(
        got == want,
        "{golden} differs from the gateway's features: {}",
        first_difference(&got, &want)
    );
}

#[test]
fn flow_features_equal_the_golden_file() {
    let mut out = Vec::new();
    features::write_csv(
        &[repo("tests/data/netflow/softflowd-v5-scan-mixed.pcap")],
        &mut out,
        Path::new("-"),
    )
    .expect("features");
    check(out, "models/tests/data/golden-flow-features.csv");
}

#[test]
fn flow_v2_features_equal_the_golden_file() {
    let mut out = Vec::new();
    features::write_csv_set(
        &[repo("tests/data/netflow/softflowd-v5-scan-mixed.pcap")],
        &mut out,
        Path::new("-"),
        features::FeatureSet::FlowV2,
        // models/netwarden_models/golden.py FLOW_V2_LEARN_UNTIL: just before the scan.
        features::V2Params::learnt_until(Some(1_795_396_942_000)),
    )
    .expect("features");
    check(out, "models/tests/data/golden-flow-v2-features.csv");
}

#[test]
fn series_features_equal_the_golden_file() {
    let samples =
        series::read_rates_file(&repo("models/tests/data/golden-series-rates.csv")).expect("rates");
    let mut out = Vec::new();
    series::write_features(&samples, &SeriesParams::DEFAULT, &mut out, Path::new("-"))
        .expect("features");
    check(out, "models/tests/data/golden-series-features.csv");
}

#[test]
fn graph_features_equal_the_golden_file() {
    let mut out = Vec::new();
    features::write_csv_set(
        &[repo("tests/data/netflow/softflowd-v9-benign.pcap")],
        &mut out,
        Path::new("-"),
        features::FeatureSet::GraphV1,
        features::V2Params::default(),
    )
    .expect("features");
    check(out, "models/tests/data/golden-graph-features.csv");
}
